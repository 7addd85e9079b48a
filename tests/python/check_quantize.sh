#!/usr/bin/env bash
# Cross-check: the reference `gguf` package (PyPI) loads the GGUF files
# rxq's quantization pipeline writes, and its numpy quantizers produce the
# same bytes for every type they implement.
# Usage: tests/python/check_quantize.sh BUILD_DIR. Creates BUILD_DIR/venv
# with pinned packages on first use (as check_gguf.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
venv="$build/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check gguf==0.19.0 numpy==2.2.6
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
RXQ_QUANTIZE_EXPORT="$out" RXQ_SOURCE_DIR="$PWD" RXQ_FIXTURES="$PWD/tests/fixtures" \
  "$build/tests/worker_test_wrk_quantize" --filter 'quantize/export_for_python' >/dev/null
"$venv/bin/python" tests/python/check_quantize.py "$out"
