#!/usr/bin/env bash
# Cross-check: the reference `gguf` package (PyPI) reads a GGUF file that
# rxq wrote, and its dequantization of every llama.cpp type equals rxq's.
# Usage: tests/python/check_gguf.sh BUILD_DIR. Creates BUILD_DIR/venv with
# pinned packages on first use.
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
RXQ_GGUF_EXPORT="$out/rxq.gguf" RXQ_SOURCE_DIR="$PWD" RXQ_FIXTURES="$PWD/tests/fixtures" \
  "$build/tests/common_test_cmn_gguf" --filter 'gguf/write_read_every_type' >/dev/null
"$venv/bin/python" tests/python/check_gguf_roundtrip.py "$out/rxq.gguf"
