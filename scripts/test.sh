#!/usr/bin/env bash
# Installs, builds, and runs the whole test suite with ctest. Goldens come from ../shared
# (or $MESHLM_SHARED); tests that need it say so and skip when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
cd build
ctest --output-on-failure -j"$(nproc)"
