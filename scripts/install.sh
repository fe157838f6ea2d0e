#!/usr/bin/env bash
# Installs what krgo and its tests need on Debian 12 (run as root): Debian packages, then npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  docker-registry   # the CNCF distribution registry the tests and the demo run on loopback
  skopeo umoci      # the oracle: skopeo copies images, umoci unpacks them
  busybox-static    # a real static binary for fixture images
  debootstrap       # builds the real Debian test image from Debian's packages
  zstd attr time    # zstd layers in fixtures; getfattr for the oracle comparison; GNU time for bench RSS
  fuse libfuse2     # FUSE mounts (lazy mount)
  tinyproxy         # a real HTTP proxy on loopback for the proxy tests (HTTP_PROXY)
  archivemount      # a peer in the bench: FUSE mount of a tar.gz
  systemd-container # systemd-nspawn, a real container engine pointed at our trees
  runc              # runs the bundles `krgo bundle` writes
  ca-certificates git
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
