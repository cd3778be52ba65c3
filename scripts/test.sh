#!/usr/bin/env bash
# Installs, builds, and runs the whole test suite with ctest; checks that the Arm and clang builds compile and
# resolve (scripts/check_builds); then builds the unit tests again with
# AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/) and runs them, the hostile-input table and a bounded
# run of each fuzz driver there. Goldens come from ../shared (or $MESHLM_SHARED); tests that need it say so and skip
# when it is absent. MESHLM_SKIP_SANITIZE=1 leaves out the sanitizer stage (a quicker local run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
(cd build && ctest --output-on-failure -j"$(nproc)")
# The 64-bit Arm build (Macs, Graviton, Ampere) and clang's, compiled here and checked for missing symbols.
bash scripts/check_builds
[ "${MESHLM_SKIP_SANITIZE:-0}" = 1 ] && exit 0

# Sanitizers: in-process suites (kernels, parsers, tokenizers, templates, scheduler) and the binary under the
# hostile-input table. Leak checks are off: Open MPI's initialisation keeps memory on purpose.
unit_tests=(test_kernels test_affine test_neon_emulated test_safetensors test_config test_tokenizer_unit
            test_tokenizer_golden test_chat_template test_sampler test_scheduler test_prompt_formats
            test_hostile_inputs)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHLM_SANITIZE=ON > /dev/null
cmake --build build-asan -j"$(nproc)" --target meshlm fuzz_inputs "${unit_tests[@]}"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in "${unit_tests[@]}"; do
  echo "sanitizers: $t"
  build-asan/tests/"$t" --gtest_brief=1
done
# Fuzz drivers (tests/fuzz_inputs.cpp): a fixed seed, so a finding reproduces; each also writes fuzz-TARGET-finding.
for target in safetensors prompt tokenizer jinja; do
  build-asan/tests/fuzz_inputs "$target" "${MESHLM_FUZZ_EXECUTIONS:-20000}" 1
done
echo "sanitizers: all clean"
