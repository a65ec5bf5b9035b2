#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make demo, as a newcomer runs it (without the apt-get step, which make
# deps did): it runs to the end, and what it shows held.
set -u
. "$(dirname "$0")/../lib.sh"
need_root demo
REPO=$(cd "$(dirname "$0")/../.." && pwd)
make -s -C "$REPO" --no-print-directory demo SKIP_DEPS=1 VFIO_AGENT="$VFIO_AGENT" >"$TMP/demo" 2>&1
rc=$?
check "make demo exits 0" [ $rc -eq 0 ]
check "demo: the client got through" grep -q "✓ the client got through to the guest" "$TMP/demo"
check "demo: the flushed forward came back" grep -q "✓ the daemon put the forward back" "$TMP/demo"
check "demo: forward status showed the forward in place" grep -q ":5900  in place" "$TMP/demo"
check "demo: the holder was named by its unit" grep -q "✓ diagnose named the holder by its unit" "$TMP/demo"
check "demo: nothing of it is left (no namespace, no rules)" \
	eval '! ip netns list | grep -q "^va[0-9]*-" && ! nft list table inet vfio_agent >/dev/null 2>&1'
[ $rc -eq 0 ] || sed 's/^/# /' "$TMP/demo" | tail -n 30
finish
