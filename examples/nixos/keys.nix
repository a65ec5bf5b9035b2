# SPDX-License-Identifier: GPL-2.0-or-later
# The one map between virtualisation.vfio's options and vfio-agent.conf's
# keys: the module renders the file from it, and the tests check it against
# both the module's options and the keys vfio-agent knows.
[
  { option = [ "vm" ];              section = "vfio"; key = "vm"; }
  { option = [ "user" ];            section = "vfio"; key = "user"; }
  { option = [ "cpu" ];             section = "vfio"; key = "cpu"; }
  { option = [ "gpu" ];             section = "vfio"; key = "gpu"; }
  { option = [ "pcis" ];            section = "vfio"; key = "pcis"; }
  { option = [ "allowNonGpu" ];     section = "vfio"; key = "allow-non-gpu"; }
  { option = [ "passthrough" ];     section = "vfio"; key = "passthrough"; }
  { option = [ "stopUnits" ];       section = "vfio"; key = "stop-units"; }
  { option = [ "onHolders" ];       section = "vfio"; key = "on-holders"; }
  { option = [ "holderTimeout" ];   section = "vfio"; key = "holder-timeout"; }
  { option = [ "vnc" "enable" ];    section = "vnc";  key = "enable"; }
  { option = [ "vnc" "interface" ]; section = "vnc";  key = "interface"; }
  { option = [ "vnc" "host" "ip" ];   section = "vnc"; key = "host.ip"; }
  { option = [ "vnc" "host" "port" ]; section = "vnc"; key = "host.port"; }
  { option = [ "vnc" "guest" "ip" ];   section = "vnc"; key = "guest.ip"; }
  { option = [ "vnc" "guest" "port" ]; section = "vnc"; key = "guest.port"; }
  { option = [ "vnc" "allow" ];      section = "vnc"; key = "allow"; }
  { option = [ "vnc" "masquerade" ]; section = "vnc"; key = "masquerade"; }
  { option = [ "vnc" "exempt" ];     section = "vnc"; key = "exempt"; }
  { option = [ "forwards" "<name>" "proto" ];      section = "forward <name>"; key = "proto"; }
  { option = [ "forwards" "<name>" "host" "port" ];  section = "forward <name>"; key = "host.port"; }
  { option = [ "forwards" "<name>" "guest" "port" ]; section = "forward <name>"; key = "guest.port"; }
]
