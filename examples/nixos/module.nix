# SPDX-License-Identifier: GPL-2.0-or-later
# virtualisation.vfio: single-GPU passthrough with vfio-agent. It writes
# /etc/vfio-agent/vfio-agent.conf (see vfio-agent.conf(5)), installs the
# libvirt hook, runs the forwarding daemon, and sets the host up for VFIO:
# the IOMMU kernel parameters for the CPU vendor, the vfio modules, and
# KVM's options for Windows guests.
{ config, lib, pkgs, ... }:

let
  cfg = config.virtualisation.vfio;
  inherit (lib) mkOption mkEnableOption mkIf types;
  keys = import ./keys.nix;

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
  configFile = pkgs.writeText "vfio-agent.conf" (
    section "vfio" cfg (inSection "vfio")
    + lib.optionalString cfg.vnc.enable (section "vnc" cfg (inSection "vnc"))
    + lib.concatStrings (lib.mapAttrsToList
        (name: fwd: section "forward ${name}" fwd forwardKeys)
        cfg.forwards)
  );
  addrOrAuto = types.either (types.enum [ "auto" ]) types.str;
in
{
  options.virtualisation.vfio = {
    enable = mkEnableOption "single-GPU passthrough with vfio-agent";
    package = mkOption {
      type = types.package;
      description = "The vfio-agent package.";
    };
    user = mkOption {
      type = types.str;
      description = "The desktop user: added to the libvirtd and kvm groups.";
    };
    vm = mkOption {
      type = types.str;
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
      type = types.listOf types.str;
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
      default = true;
      description = "Hand the GPU to vfio-pci when the guest starts, take it back when it ends.";
    };
    stopUnits = mkOption {
      type = types.listOf types.str;
      default = [ "display-manager.service" ];
      description = "Units stopped before the handoff and started after it.";
    };
    onHolders = mkOption {
      type = types.enum [ "wait" "kill" "fail" ];
      default = "wait";
      description = "What the handoff does with processes still holding the GPU.";
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
        type = types.str;
        example = "wlp4s0";
        description = "The LAN interface clients come in on; nothing is exposed elsewhere.";
      };
      host.ip = mkOption {
        type = addrOrAuto;
        default = "auto";
        description = "The address clients connect to, or auto: the interface's.";
      };
      host.port = mkOption {
        type = types.port;
        default = 5900;
        description = "The port clients connect to.";
      };
      guest.ip = mkOption {
        type = addrOrAuto;
        default = "auto";
        description = "The guest's address, or auto: learned from libvirt's leases.";
      };
      guest.port = mkOption {
        type = types.port;
        default = 5900;
        description = "The guest's VNC port.";
      };
      allow = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "192.168.178.0/24" ];
        description = "Prefixes allowed to connect; empty: the interface's subnet.";
      };
      masquerade = mkOption {
        type = types.bool;
        default = false;
        description = "Make the guest see the host, not the client, as the peer.";
      };
    };
    forwards = mkOption {
      default = { };
      example = { rdp = { host.port = 3389; guest.port = 3389; }; };
      description = "More forwards on the same interface and addresses.";
      type = types.attrsOf (types.submodule {
        options = {
          proto = mkOption {
            type = types.enum [ "tcp" "udp" ];
            default = "tcp";
            description = "The protocol.";
          };
          host.port = mkOption {
            type = types.port;
            description = "The port on the host.";
          };
          guest.port = mkOption {
            type = types.port;
            description = "The port on the guest.";
          };
        };
      });
    };
  };

  config = mkIf cfg.enable {
    environment.etc."vfio-agent/vfio-agent.conf".source = configFile;
    environment.systemPackages = [ cfg.package ];

    boot.kernelParams = [ "${cfg.cpu}_iommu=on" "iommu=pt" ];
    boot.kernelModules = [ "vfio" "vfio_pci" "vfio_iommu_type1" ];
    boot.extraModprobeConfig = ''
      options kvm ignore_msrs=1 report_ignored_msrs=0
    '';

    virtualisation.libvirtd.enable = true;
    virtualisation.libvirtd.hooks.qemu.vfio-agent =
      pkgs.writeShellScript "vfio-agent-hook" ''exec ${cfg.package}/bin/vfio-agent hook "$@"'';
    users.users.${cfg.user}.extraGroups = [ "libvirtd" "kvm" ];

    systemd.services.vfio-agent = mkIf cfg.vnc.enable {
      description = "vfio-agent: the VM's port forward, kept in place";
      after = [ "network.target" "libvirtd.service" ];
      wants = [ "libvirtd.service" ];
      wantedBy = [ "multi-user.target" ];
      restartTriggers = [ configFile ];
      serviceConfig = {
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = "${cfg.package}/bin/vfio-agent daemon --foreground";
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        Restart = "on-failure";
        WatchdogSec = 30;
        CapabilityBoundingSet = [ "CAP_NET_ADMIN" ];
        NoNewPrivileges = true;
        RuntimeDirectory = "vfio-agent";
        RuntimeDirectoryMode = "0700";
        RuntimeDirectoryPreserve = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        RestrictAddressFamilies = [ "AF_UNIX" "AF_NETLINK" ];
        RestrictNamespaces = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
      };
    };
  };
}
