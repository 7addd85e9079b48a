#!/usr/bin/env bash
# Installs everything rxq needs to build, run and test on Debian 12.
# Idempotent: does nothing when every package is already installed.
# Run as root, or as a user with sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libzmq3-dev libczmq-dev libmsgpack-dev libhiredis-dev libsodium-dev
  ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo
  libcriterion-dev redis-server libclblast-dev libpcre2-dev
  python3 python3-venv python3-pip
  libonnx-testdata
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# redis-server's Debian package starts a system instance on port 6379; rxq
# starts its own private instances and does not need or use that one.
echo "install-deps: all packages present"
