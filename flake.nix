# SPDX-License-Identifier: GPL-2.0-or-later
# vfio-agent as a flake: the package, and the NixOS module
# (virtualisation.vfio, examples/nixos/module.nix) with the package set.
{
  description = "Single-GPU passthrough for libvirt guests: handoff, holders, VNC forward";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
    in
    {
      packages.${system}.default = pkgs.stdenv.mkDerivation {
        pname = "vfio-agent";
        version = "0.1";
        src = self;
        nativeBuildInputs = with pkgs; [ pkg-config clang llvm bpftools mandoc ];
        buildInputs = with pkgs; [
          libnftnl libmnl json_c libbpf kmod libxml2 systemd libvirt elfutils zlib libdrm
        ];
        # BPF objects are built with clang for the bpf target: no hardening flags there
        hardeningDisable = [ "zerocallusedregs" ];
        makeFlags = [ "PREFIX=$(out)" "BINDIR=$(out)/bin" "SYSCONFDIR=$(out)/etc" ];
        installTargets = [ "install" ];
        # libvirt, libkmod, libxml2 and libsystemd are opened by soname when a verb
        # needs them (agent/dl.c): their directories go into the RUNPATH after
        # fixup has shrunk it to the linked libraries
        postFixup = ''
          patchelf --add-rpath ${pkgs.lib.makeLibraryPath (with pkgs; [ libvirt kmod libxml2 systemd ])} \
            $out/bin/vfio-agent
        '';
      };

      nixosModules.default = { pkgs, lib, ... }: {
        imports = [ ./examples/nixos/module.nix ];
        virtualisation.vfio.package = lib.mkDefault self.packages.${pkgs.system}.default;
      };
    };
}
