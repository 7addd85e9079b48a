#!/usr/bin/env bash
# Runs every test: installs dependencies, builds rxq twice (normal, and
# with AddressSanitizer + UndefinedBehaviorSanitizer), runs the Criterion
# suites of both builds through ctest, then the Python cross-checks
# against reference implementations (gguf) in a private virtualenv.
# Exit status is non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh

jobs=$(nproc)
echo "== build (RelWithDebInfo)"
deploy/build.sh build
echo "== build (ASan + UBSan)"
deploy/build.sh build-san -DRXQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug

# Sanitizer settings: leaks inside the OpenCL runtime (PoCL, LLVM) are not
# ours and are suppressed by library; our own leaks still fail the run.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export LSAN_OPTIONS="suppressions=$PWD/deploy/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# PoCL compiles kernels on first use; a private cache keeps runs independent.
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-$PWD/build/pocl-cache}"

status=0
echo "== tests (RelWithDebInfo)"
ctest --test-dir build --output-on-failure -j"$jobs" || status=1
echo "== tests (ASan + UBSan)"
ctest --test-dir build-san --output-on-failure -j"$jobs" || status=1

if [ -d tests/python ] && ls tests/python/*.sh >/dev/null 2>&1; then
  echo "== Python cross-checks"
  for t in tests/python/*.sh; do
    bash "$t" build || status=1
  done
fi
exit $status
