#!/usr/bin/env bash
# Installs what meshlm needs to build and test on Debian 12. Idempotent: installs only what is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin
  libopenblas-dev
  libhdf5-dev
  libcxxopts-dev nlohmann-json3-dev
  libpcre2-dev libicu-dev zlib1g-dev
  libgtest-dev libbenchmark-dev
  libsimde-dev                                # tests: the NEON kernels, emulated on x86
  clang libc++-dev                            # tests: the Arm and clang compiles (scripts/check_builds)
  iproute2 iptables iputils-ping util-linux   # ../shared/cluster/vcluster, for the multi-host test
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
