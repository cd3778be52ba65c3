#!/usr/bin/env bash
# Installs, builds, and runs meshlm under mpirun on the embedded model with examples/prompts.jsonl.
# The generations are printed as JSON lines on stdout; the run summary goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh > build.log 2>&1 || { tail -50 build.log; exit 1; }
if [ "$(id -u)" -eq 0 ]; then  # Open MPI refuses root unless told otherwise (containers, CI)
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mpirun -np 1 build/meshlm generate --prompts examples/prompts.jsonl --output - --max-tokens 64
