# SPDX-License-Identifier: GPL-2.0-or-later
# vfio-agent's rules for config values (core/config.c), as option types, so
# that a value the agent would refuse fails the evaluation, with the agent's
# own words. Kept equal to the C by tests/fixture/nixos-lib.sh, which gives
# the same values to both.
{ lib }:

let
  inherit (builtins) match length elemAt filter stringLength;
  inherit (lib) all any;

  ruled = name: description: valid: lib.mkOptionType {
    inherit name description;
    check = s: builtins.isString s && valid s;
    descriptionClass = "noun";
    merge = lib.mergeEqualOption;
  };

  # valid_name(): 1 to max-1 bytes of letters, digits and ._+-@, not starting with . or -
  isName = max: s: match "[A-Za-z0-9_+@][A-Za-z0-9._+@-]*" s != null && stringLength s < max;

  # the kernel's dev_valid_name(): 1-15 printable bytes, no space, '/' or ':', not . or ..;
  # and not starting with # or ;, which would make the value a comment
  isIfname = s: match "[!\"$-.0-9<-~][!-.0-9;-~]{0,14}" s != null && s != "." && s != "..";

  octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])";
  isIPv4 = s: match "${octet}\\.${octet}\\.${octet}\\.${octet}" s != null;

  # as glibc's inet_pton(AF_INET6): groups of 1-4 hex digits, one "::" standing
  # for at least one group, an IPv4 address as the last two groups
  hexGroup = "[0-9a-fA-F]{1,4}";
  groupsOf = part:
    if part == "" then [ ] else lib.splitString ":" part;
  groupCount = gs:
    let
      last = if gs == [ ] then "" else elemAt gs (length gs - 1);
      v4 = gs != [ ] && isIPv4 last;
      hex = if v4 then lib.init gs else gs;
    in
    if all (g: match hexGroup g != null) hex && (v4 || gs == [ ] || match hexGroup last != null)
    then length hex + (if v4 then 2 else 0)
    else null;
  isIPv6 = s:
    let
      halves = lib.splitString "::" s;
      n = length halves;
      left = groupsOf (elemAt halves 0);
      right = groupsOf (elemAt halves 1);
      # an IPv4 tail only at the very end
      leftOk = n == 1 || left == [ ] || !(isIPv4 (lib.last left));
      cl = groupCount left;
      cr = if n == 2 then groupCount right else 0;
    in
    match "[0-9a-fA-F:.]+" s != null && n <= 2 && leftOk && cl != null && cr != null
    && (if n == 1 then cl == 8 else cl + cr <= 7);

  isAddr = s: isIPv4 s || isIPv6 s;

  # each_word(): the agent splits lists on spaces, tabs and commas
  words = s: filter (w: w != "" && !(builtins.isList w)) (builtins.split "[ \t,]+" s);

  # host.ip, guest.ip: auto, or at most one IPv4 and one IPv6 address
  isAddrs = s:
    let
      ws = words s;
      v4 = filter isIPv4 ws;
      v6 = filter isIPv6 ws;
    in
    s == "auto" || (ws != [ ] && all isAddr ws && length v4 <= 1 && length v6 <= 1);

  # the address as numbers and their width in bits: 4 octets, or 8 groups
  pow2 = n: if n == 0 then 1 else 2 * pow2 (n - 1);
  hexDigits = lib.listToAttrs (lib.imap0 (i: c: lib.nameValuePair c (lib.mod i 16))
    (lib.stringToCharacters "0123456789abcdefABCDEF"));
  hexVal = g: lib.foldl (acc: c: acc * 16 + hexDigits.${c}) 0 (lib.stringToCharacters g);
  v4Parts = s: map lib.toIntBase10 (lib.splitString "." s);
  v6Parts = s:
    let
      halves = lib.splitString "::" s;
      expand = part: lib.concatMap (g: if isIPv4 g
        then let o = v4Parts g; in [ (elemAt o 0 * 256 + elemAt o 1) (elemAt o 2 * 256 + elemAt o 3) ]
        else [ (hexVal g) ]) (groupsOf part);
      l = expand (elemAt halves 0);
      r = if length halves == 2 then expand (elemAt halves 1) else [ ];
    in
    l ++ lib.genList (_: 0) (8 - length l - length r) ++ r;

  # parse_prefix(): ADDR or ADDR/LEN (decimal, leading zeros allowed), shorter than
  # INET6_ADDRSTRLEN + 8 bytes, with no host bits set
  prefixParts = s:
    let
      m = match "([^/]+)(/0*([0-9]+))?" s;
      addr = elemAt m 0;
      len = elemAt m 2;
      v4 = isIPv4 addr;
      max = if v4 then 32 else 128;
      width = if v4 then 8 else 16;
      parts = if v4 then v4Parts addr else v6Parts addr;
      plen = if len == null then max else lib.toIntBase10 len;
      hostBits = i: p:
        let keep = lib.min width (lib.max 0 (plen - i * width)); in
        lib.mod p (pow2 (width - keep)) != 0;
    in
    if stringLength s >= 54 || m == null || !isAddr addr
      || (len != null && (stringLength len > 3 || plen > max)) then null
    else { inherit plen max; hostBits = any (x: x) (lib.imap0 hostBits parts); };
  isPrefix = s: let p = prefixParts s; in p != null && !p.hostBits;

  # parse_pci(): libvirt's pci_0000_03_00_0, or 0000:03:00.0, or 03:00.0; device 0-1f, function 0-7
  h = "[0-9a-fA-F]";
  isPci = s:
    match "pci_${h}{4}_${h}{2}_[01]${h}_[0-7]" s != null
    || match "(${h}{4}:)?${h}{2}:[01]${h}\\.[0-7]" s != null;

  # unit_name_valid(): systemd's characters, at most 255 bytes, one '@' at most and
  # before the suffix, a service, socket or scope; unit_spec_parse(): user:UID: first
  isUnitName = s:
    stringLength s <= 255
    && match "[A-Za-z0-9:_.\\@-]+" s != null
    && !lib.hasPrefix "@" s
    && builtins.any (k: lib.hasSuffix k s && stringLength s > stringLength k) [ ".service" ".socket" ".scope" ]
    && builtins.length (lib.splitString "@" s) <= 2;
  isUnit = s:
    let m = match "user:([0-9]{1,10}):(.*)" s; in
    if lib.hasPrefix "user:" s
    then m != null && lib.toInt (builtins.head m) < 2147483647 && isUnitName (lib.last m)
    else isUnitName s;
in
{
  inherit isName isIfname isIPv4 isIPv6 isAddr isAddrs isPrefix isPci isUnit prefixParts;

  domainName = ruled "vfioDomainName"
    "libvirt domain name (1-63 letters, digits or ._+-@, not starting with . or -)"
    (isName 64);
  userName = ruled "vfioUserName"
    "user name (1-32 letters, digits or ._+-@, not starting with . or -)"
    (isName 33);
  interface = ruled "vfioInterface"
    "interface name (1-15 characters, no '/', ':' or spaces)"
    isIfname;
  addresses = ruled "vfioAddresses"
    "\"auto\", or an IPv4 address, an IPv6 address, or one of each separated by a space"
    isAddrs;
  prefix = ruled "vfioPrefix"
    "address or CIDR with no host bits set (192.168.178.0/24, 2001:db8::/64)"
    isPrefix;
  pci = ruled "vfioPci"
    "PCI address (pci_0000_03_00_0 or 0000:03:00.0)"
    isPci;
  unit = ruled "vfioUnit"
    "service, socket or scope name (like display-manager.service, or user:1000:pipewire.service)"
    isUnit;
  port = lib.types.ints.between 1 65535;
  # [vnc] exempt: core/config.c's exempt_names
  exempt = lib.types.enum [ "libvirt" "auto" "none" ];

  # [forward NAME]: the section's name, "forward NAME", must fit in 63 bytes
  isForwardName = isName 56;
  maxForwards = 63;
  # the longest line vfio-agent reads (core/config.h: CONFIG_MAX_LINE)
  maxLine = 4095;
}
