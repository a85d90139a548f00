#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Shoal needs, only those missing.
#   deploy/system-deps.sh run    -> ffmpeg, npm (to run an instance; npm builds the web UI bundle)
#   deploy/system-deps.sh test   -> ffmpeg, chromium, nginx, aria2, transmission-cli, wrk, iproute2 (to run
#                                   the test suite; aria2c and transmission-cli are the BitTorrent clients;
#                                   `ip` builds the network namespace of the WebRTC tests)
set -euo pipefail

want=(ffmpeg npm)
if [[ ${1:-run} == test ]]; then
  want+=(chromium nginx aria2 transmission-cli wrk iproute2)
fi

declare -A binary=([ffmpeg]=ffmpeg [npm]=npm [chromium]=chromium [nginx]=nginx [aria2]=aria2c [transmission-cli]=transmission-cli [wrk]=wrk [iproute2]=ip)
missing=()
for pkg in "${want[@]}"; do
  command -v "${binary[$pkg]}" >/dev/null 2>&1 || [[ -x /usr/sbin/${binary[$pkg]} ]] || missing+=("$pkg")
done
((${#missing[@]})) || exit 0

if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null 2>&1; then
  echo "Shoal needs these packages: ${missing[*]}" >&2
  echo "Install them as root:  apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Shoal needs: ${missing[*]}. This is not a Debian/Ubuntu system: install them with your package manager." >&2
  exit 1
fi
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
echo "installing ${missing[*]} (apt-get)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
