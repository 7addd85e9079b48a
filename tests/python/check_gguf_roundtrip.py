#!/usr/bin/env python3
"""Cross-check an rxq-written GGUF file with the `gguf` package.

The file comes from tests/common/test_cmn_gguf.c (gguf::write_read_every_type)
run with RXQ_GGUF_EXPORT=PATH. For every tensor X that has a companion
"X.rxq_dequant" (rxq's own dequantization, F32), this script
  * reads the file with gguf.GGUFReader (so the layout, metadata and
    alignment must be what llama.cpp's Python tooling expects),
  * dequantizes X with gguf.quants and requires it to equal the companion
    bit for bit,
  * where gguf has a numpy quantizer for X's type, quantizes the "source"
    tensor and requires the bytes to equal X's blocks.
It prints one line per tensor and a summary, and exits 1 on any mismatch.

Usage: check_gguf_roundtrip.py PATH.gguf
"""
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

QUANTIZE_OK = {T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0}


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    reader = gguf.GGUFReader(sys.argv[1])
    tensors = {t.name: t for t in reader.tensors}
    source = tensors.get("source")
    failures = 0
    checked = 0
    for name, t in tensors.items():
        companion = tensors.get(name + ".rxq_dequant")
        if companion is None:
            continue
        qtype = T(t.tensor_type)
        checked += 1
        ours = np.asarray(companion.data, dtype=np.float32).reshape(-1)
        theirs = quants.dequantize(np.asarray(t.data), qtype).astype(np.float32).reshape(-1)
        ok = ours.shape == theirs.shape and np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))
        note = "dequantize identical" if ok else (
            f"dequantize differs: max |diff| {np.max(np.abs(ours - theirs)) if ours.shape == theirs.shape else 'shape'}")
        if ok and source is not None and qtype in QUANTIZE_OK:
            src = np.asarray(source.data, dtype=np.float32).reshape(-1, int(source.shape[0]))
            blocks = quants.quantize(src, qtype)
            same = np.asarray(blocks).tobytes() == np.asarray(t.data).tobytes()
            note += ", quantize identical" if same else ", quantize DIFFERS"
            ok = ok and same
        print(f"{'ok  ' if ok else 'FAIL'} {name:32s} {qtype.name:6s} {note}")
        failures += 0 if ok else 1
    if checked == 0:
        print("no tensor with an .rxq_dequant companion found", file=sys.stderr)
        return 1
    print(f"{checked} tensors checked, {failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
