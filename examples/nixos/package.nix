# SPDX-License-Identifier: GPL-2.0-or-later
# vfio-agent for nixpkgs' callPackage: the flake's package, and the module's
# default when it is imported from a checkout without the flake.
{ lib, stdenv, pkg-config, clang, llvm, bpftools, mandoc
, libnftnl, libmnl, json_c, libbpf, kmod, libxml2, systemd, libvirt, elfutils, zlib, libdrm
, coreutils
, src ? lib.cleanSourceWith {
    src = lib.cleanSource ../..;
    filter = path: type: !(builtins.elem (baseNameOf path) [ "build" "build-asan" "result" ]);
  }
}:

stdenv.mkDerivation {
  pname = "vfio-agent";
  version = "0.1";
  inherit src;

  # the Makefile's pkg-config checks: PKGS (linked and opened) and libdrm (the
  # test helper's headers); libtirpc only for SANITIZE=1
  nativeBuildInputs = [ pkg-config clang llvm bpftools mandoc ];
  buildInputs = [ libnftnl libmnl json_c libbpf kmod libxml2 systemd libvirt elfutils zlib libdrm ];
  # BPF objects are built with clang for the bpf target: no hardening flags there
  hardeningDisable = [ "zerocallusedregs" ];
  makeFlags = [ "PREFIX=$(out)" "BINDIR=$(out)/bin" "SYSCONFDIR=$(out)/etc" "QEMU_D=yes" ];
  installTargets = [ "install" ];
  # the unit's reload: NixOS has no /bin/kill
  postInstall = ''
    substituteInPlace $out/lib/systemd/system/vfio-agent.service \
      --replace-fail /bin/kill ${coreutils}/bin/kill
  '';
  # libvirt, libkmod, libxml2 and libsystemd are opened by soname when a verb
  # needs them (agent/dl.c): their directories go into the RUNPATH after
  # fixup has shrunk it to the linked libraries
  postFixup = ''
    patchelf --add-rpath ${lib.makeLibraryPath [ libvirt kmod libxml2 systemd ]} \
      $out/bin/vfio-agent
  '';

  meta = {
    description = "Single-GPU passthrough for libvirt guests: handoff, holders, VNC forward";
    license = lib.licenses.gpl2Plus;
    platforms = [ "x86_64-linux" "aarch64-linux" ];
    mainProgram = "vfio-agent";
  };
}
