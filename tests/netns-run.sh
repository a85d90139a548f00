#!/bin/bash
# Run a command in a throwaway network namespace holding `lo` and a veth pair whose end h0 has
# 198.18.0.1/24 (RFC 2544 benchmarking range). Nothing inside can reach the outside network and
# the namespace disappears with the command. Needs root (or an unprivileged user namespace).
#
# WebRTC stacks (Chromium, libjuice) never offer loopback ICE candidates, so tests where
# browsers exchange data over WebRTC bind their servers to 198.18.0.1 inside this namespace.
# The default route through h0 leads nowhere; Chromium needs one to pick the address it offers
# (without it a page gathers no ICE candidate at all).
# Usage: tests/netns-run.sh CMD [ARGS...]
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
exec unshare --net -- bash -c '
set -euo pipefail
ip link set lo up
ip link add h0 type veth peer name h1
ip addr add 198.18.0.1/24 dev h0
ip link set h1 up
ip link set h0 up
ip route add default dev h0
exec "$@"' netns-run "$@"
