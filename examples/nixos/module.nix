# SPDX-License-Identifier: GPL-2.0-or-later
# virtualisation.vfio: single-GPU passthrough with vfio-agent. It writes
# /etc/vfio-agent/vfio-agent.conf (see vfio-agent.conf(5)) and checks it at
# build time with the package's own `vfio-agent check`, installs the libvirt
# hook, runs the package's own systemd unit for the forward, and sets the
# host up for VFIO as the seed module did: the IOMMU kernel parameters for
# the CPU vendor, the vfio modules, KVM's options for Windows guests, swtpm,
# libvirtd's onBoot/onShutdown and the user's groups.
{ config, lib, pkgs, ... }:

let
  cfg = config.virtualisation.vfio;
  inherit (lib) mkOption mkEnableOption mkIf mkDefault types;
  keys = import ./keys.nix;
  rules = import ./rules.nix { inherit lib; };

  value = v:
    if builtins.isBool v then (if v then "true" else "false")
    else if builtins.isList v then builtins.concatStringsSep " " (map toString v)
    else toString v;
  get = path: attrs: lib.attrByPath path null attrs;
  line = attrs: k:
    let v = get (lib.drop (if lib.hasPrefix "forward" k.section then 2 else 0) k.option) attrs;
    in lib.optionalString (v != null && v != [ ]) "${k.key} = ${value v}\n";
  section = name: attrs: ks:
    "[${name}]\n" + lib.concatMapStrings (line attrs) ks + "\n";
  inSection = s: builtins.filter (k: k.section == s) keys;
  forwardKeys = builtins.filter (k: k.section == "forward <name>") keys;
  text = section "vfio" cfg (inSection "vfio")
    + lib.optionalString cfg.vnc.enable (section "vnc" cfg (inSection "vnc"))
    + lib.concatStrings (lib.mapAttrsToList
      (name: fwd: section "forward ${name}" fwd forwardKeys)
      cfg.forwards);
  configFile = pkgs.writeTextFile {
    name = "vfio-agent.conf";
    inherit text;
    # what the agent would refuse fails the build, not the guest's start
    checkPhase = ''
      ${cfg.package}/bin/vfio-agent --config "$target" check
    '';
  };

  # the rules of core/config.c:config_check() that span options
  fwds = lib.mapAttrsToList (name: f: f // { inherit name; }) cfg.forwards;
  opt = name: "virtualisation.vfio.forwards.${name}";
  forwardAssertions = [
    {
      assertion = fwds == [ ] || cfg.vnc.enable;
      message = "${opt (lib.head fwds).name}: needs virtualisation.vfio.vnc.enable = true (forwards use its interface and addresses)";
    }
    {
      assertion = builtins.length fwds <= rules.maxForwards;
      message = "virtualisation.vfio.forwards: more than ${toString rules.maxForwards} forwards";
    }
  ] ++ map (l: {
    # the longest line vfio-agent reads (core/config.c: CONFIG_MAX_LINE)
    assertion = builtins.stringLength l <= rules.maxLine;
    message = "virtualisation.vfio: the config line '${l}' is ${toString (builtins.stringLength l)} characters, more than vfio-agent reads in a line (${toString rules.maxLine})";
  }) (lib.splitString "\n" text)
  ++ lib.concatLists (lib.imap0 (i: f: [
    {
      assertion = rules.isForwardName f.name;
      message = "${opt f.name}: '${f.name}' is not a forward name (1-55 letters, digits or ._+-@, not starting with . or -)";
    }
    {
      assertion = !(cfg.vnc.enable && f.proto == "tcp" && f.host.port == cfg.vnc.host.port);
      message = "${opt f.name}.host.port: ${toString f.host.port} is the VNC port already";
    }
    {
      assertion = lib.all (g: g.proto != f.proto || g.host.port != f.host.port) (lib.take i fwds);
      message = "${opt f.name}.host.port: ${toString f.host.port} is taken by ${opt
        (lib.findFirst (g: g.proto == f.proto && g.host.port == f.host.port) f fwds).name}";
    }
  ]) fwds);

  removed = path: why: lib.mkRemovedOptionModule ([ "virtualisation" "vfio" ] ++ path) why;
in
{
  # the seed's options that have no place here: one line each on what replaces them
  imports = [
    (removed [ "display" ]
      "vfio-agent does not write the domain XML: keep the guest's own display (QXL, SPICE, VNC) in it.")
    (removed [ "ovmf" ]
      "vfio-agent does not write the domain XML: name the firmware there (<os firmware='efi'>, QEMU's OVMF images).")
    (removed [ "hooks" "qemu" ]
      "vfio-agent is libvirt's qemu hook itself (virtualisation.libvirtd.hooks.qemu.vfio-agent); add your own beside it there.")
    (removed [ "hooks" "start" ]
      "vfio-agent stops the units of virtualisation.vfio.stopUnits before the handoff: list there what your start hook stopped.")
    (removed [ "hooks" "stop" ]
      "vfio-agent starts the units of virtualisation.vfio.stopUnits again at release: list there what your stop hook started.")
    (removed [ "vnc" "hook" ]
      "vfio-agent makes the VNC forward in nftables and its daemon keeps it: the virtualisation.vfio.vnc options say where.")
  ];

  options.virtualisation.vfio = {
    enable = mkEnableOption "single-GPU passthrough with vfio-agent";
    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { } (the flake sets its own package)";
      description = "The vfio-agent package: its binary, hook and systemd unit.";
    };
    user = mkOption {
      type = rules.userName;
      example = "nixos";
      description = "The desktop user: added to the libvirtd, kvm and input groups.";
    };
    vm = mkOption {
      type = rules.domainName;
      example = "win11";
      description = "The libvirt domain the GPU is handed to.";
    };
    cpu = mkOption {
      type = types.enum [ "intel" "amd" ];
      description = "The CPU vendor: which IOMMU kernel parameter is set.";
    };
    gpu = mkOption {
      type = types.enum [ "amd" "nvidia" ];
      description = "The GPU vendor.";
    };
    pcis = mkOption {
      type = types.listOf rules.pci;
      default = [ ];
      example = [ "pci_0000_03_00_0" "pci_0000_03_00_1" ];
      description = "The GPU's PCI functions; empty: the domain's PCI hostdevs.";
    };
    allowNonGpu = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = ''
        PCI devices that may be handed over although they are neither display
        devices nor functions of the GPU. Dangerous: the host loses them (a
        disk controller takes the root filesystem with it).
      '';
    };
    passthrough = mkOption {
      type = types.bool;
      # the seed's default, and the agent's: handing the only GPU over blanks the host
      default = false;
      description = "Hand the GPU to vfio-pci when the guest starts, take it back when it ends.";
    };
    stopUnits = mkOption {
      type = types.listOf rules.unit;
      # what the seed's start and stop hooks stopped and started; a unit that does not exist is skipped
      default = [ "display-manager.service" "lactd.service" ];
      description = "Units stopped before the handoff and started after it.";
    };
    onHolders = mkOption {
      type = types.enum [ "stop" "stop,wait" "stop,kill" "stop,fail" "wait" "kill" "fail" ];
      default = "stop";
      description = ''
        What the handoff does with processes still holding the GPU: stop their
        units (system or user; started again at release), then wait for, kill
        or fail on the processes in no unit (stop alone: wait).
      '';
    };
    holderTimeout = mkOption {
      type = types.ints.between 0 3600;
      default = 10;
      description = "Seconds to wait for holders and for a busy driver module.";
    };
    vnc = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = "Forward the guest's VNC port from the LAN.";
      };
      interface = mkOption {
        type = rules.interface;
        example = "wlp4s0";
        description = "The LAN interface clients come in on; nothing is exposed elsewhere.";
      };
      host.ip = mkOption {
        type = rules.addresses;
        default = "auto";
        description = "The address clients connect to, or auto: the interface's.";
      };
      host.port = mkOption {
        type = rules.port;
        default = 5900;
        description = "The port clients connect to.";
      };
      guest.ip = mkOption {
        type = rules.addresses;
        default = "auto";
        description = "The guest's address, or auto: learned from libvirt's leases.";
      };
      guest.port = mkOption {
        type = rules.port;
        default = 5900;
        description = "The guest's VNC port.";
      };
      allow = mkOption {
        type = types.listOf rules.prefix;
        default = [ ];
        example = [ "192.168.178.0/24" ];
        description = "Prefixes allowed to connect; empty: the interface's subnet.";
      };
      masquerade = mkOption {
        type = types.bool;
        default = false;
        description = "Make the guest see the host, not the client, as the peer.";
      };
      exempt = mkOption {
        type = rules.exempt;
        default = "libvirt";
        example = "auto";
        description = ''
          Where the forward puts a tagged accept for its flow, removed with it:
          libvirt (libvirt's own forward chains), auto (those, and any other
          firewall's base chain on the path that would drop the flow: ufw, a
          hand-written ruleset), or none (nowhere; forward status says BLOCKED
          if a chain drops it). networking.firewall.filterForward needs none:
          its forward-allow chain accepts DNATed flows, and the judge follows
          the verdict map that jumps there.
        '';
      };
    };
    forwards = mkOption {
      default = { };
      example = { rdp = { host.port = 3389; guest.port = 3389; }; };
      description = "More forwards on the VNC forward's interface and addresses (needs vnc.enable).";
      type = types.attrsOf (types.submodule {
        options = {
          proto = mkOption {
            type = types.enum [ "tcp" "udp" ];
            default = "tcp";
            description = "The protocol.";
          };
          host.port = mkOption {
            type = rules.port;
            description = "The port on the host.";
          };
          guest.port = mkOption {
            type = rules.port;
            description = "The port on the guest.";
          };
        };
      });
    };
  };

  config = mkIf cfg.enable {
    assertions = forwardAssertions;

    environment.etc."vfio-agent/vfio-agent.conf".source = configFile;
    environment.systemPackages = [ cfg.package ];

    boot.kernelParams = [ "${cfg.cpu}_iommu=on" "iommu=pt" ];
    boot.kernelModules = [ "vfio" "vfio_pci" "vfio_iommu_type1" ];
    boot.extraModprobeConfig = ''
      options kvm ignore_msrs=1 report_ignored_msrs=0
    '';

    virtualisation.libvirtd = {
      enable = true;
      # the seed's: guests are not resumed at boot (the GPU is the host's then), and shut down
      onBoot = mkDefault "ignore";
      onShutdown = mkDefault "shutdown";
      # the seed's win11.xml has <tpm><backend type='emulator'>
      qemu.swtpm.enable = mkDefault true;
      hooks.qemu.vfio-agent = "${cfg.package}/etc/libvirt/hooks/qemu.d/vfio-agent";
    };
    users.users.${cfg.user}.extraGroups = [ "libvirtd" "kvm" "input" ];

    # the unit `make install` installs, hardened as the VM tier tests it; NixOS
    # only enables it and restarts it when the config changes
    systemd.packages = [ cfg.package ];
    systemd.services.vfio-agent = mkIf cfg.vnc.enable {
      wantedBy = [ "multi-user.target" ];
      restartTriggers = [ configFile ];
    };
  };
}
