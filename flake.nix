# SPDX-License-Identifier: GPL-2.0-or-later
# vfio-agent as a flake: the package (examples/nixos/package.nix), the NixOS
# module (virtualisation.vfio, examples/nixos/module.nix) with that package,
# and checks that `nix flake check` runs: the package builds, and the module
# evaluates and renders a config the built binary's `check` accepts.
{
  description = "Single-GPU passthrough for libvirt guests: handoff, holders, VNC forward";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      package = pkgs: pkgs.callPackage ./examples/nixos/package.nix { src = self; };

      module = { pkgs, lib, ... }: {
        imports = [ ./examples/nixos/module.nix ];
        virtualisation.vfio.package = lib.mkDefault
          (self.packages.${pkgs.stdenv.hostPlatform.system}.default or (package pkgs));
      };

      # the README's configuration, as a whole system around it
      example = system: lib.nixosSystem {
        inherit system;
        modules = [
          self.nixosModules.default
          {
            virtualisation.vfio = {
              enable = true; user = "nixos"; vm = "win11"; cpu = "intel"; gpu = "amd";
              pcis = [ "pci_0000_03_00_0" "pci_0000_03_00_1" ];
              vnc = { enable = true; interface = "wlp4s0"; host.ip = "auto"; guest.ip = "auto"; };
              forwards.rdp = { host.port = 3389; guest.port = 3389; };
            };
            users.users.nixos.isNormalUser = true;
            boot.loader.grub.enable = false;
            fileSystems."/".device = "none";
            system.stateVersion = lib.trivial.release;
          }
        ];
      };
      # its failed assertions, as nixos-rebuild would show them, or the
      # rendered config: a derivation whose build runs `vfio-agent check`
      checkedConfig = system:
        let
          inherit (example system) config;
          failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
        in
        if failed != [ ] then throw "Failed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}"
        else config.environment.etc."vfio-agent/vfio-agent.conf".source;
    in
    {
      packages = forSystems (pkgs: { default = package pkgs; });

      # the seed's import line, inputs.vfio.nixosModules.${system}.default, and the usual one
      nixosModules = { default = module; } // lib.genAttrs systems (_: { default = module; });

      checks = forSystems (pkgs:
        let system = pkgs.stdenv.hostPlatform.system; in {
          package = self.packages.${system}.default;
          module = checkedConfig system;
        });
    };
}
