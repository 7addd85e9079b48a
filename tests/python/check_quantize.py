#!/usr/bin/env python3
"""Cross-check `rxq quantize` output with the `gguf` package.

DIR holds in.gguf (an F32 model) and out-TYPE.gguf files that rxq's
quantization pipeline wrote from it (tests/worker/test_wrk_quantize.c,
quantize::export_for_python, run with RXQ_QUANTIZE_EXPORT=DIR). For each
output file this script
  * loads it with gguf.GGUFReader (layout, metadata and alignment as
    llama.cpp's Python tooling expects) and checks that the metadata of
    in.gguf was carried over and general.file_type is llama.cpp's number;
  * for every tensor, where gguf has a numpy quantizer for its type,
    quantizes the input tensor with gguf.quants.quantize and requires the
    bytes to equal rxq's; otherwise (K-quants) requires gguf's
    dequantization of rxq's bytes to be finite and close to the input
    (relative RMS error below 0.15).
Prints one line per (file, tensor) and a summary; exits 1 on a mismatch.

Usage: check_quantize.py DIR
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

FTYPE = {"f16": 1, "bf16": 32, "q4_0": 2, "q4_1": 3, "q5_0": 8, "q5_1": 9, "q8_0": 7,
         "q4_k": 14, "q5_k": 16, "q6_k": 18}


def field_value(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    return f.contents()


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = sys.argv[1]
    src = gguf.GGUFReader(os.path.join(d, "in.gguf"))
    inputs = {t.name: np.asarray(t.data, dtype=np.float32) for t in src.tensors}
    failures = checked = 0
    for name, ftype in FTYPE.items():
        path = os.path.join(d, f"out-{name}.gguf")
        if not os.path.exists(path):
            print(f"FAIL {path} missing")
            failures += 1
            continue
        out = gguf.GGUFReader(path)
        if field_value(out, "general.file_type") != ftype:
            print(f"FAIL {name}: general.file_type {field_value(out, 'general.file_type')}, want {ftype}")
            failures += 1
        if field_value(out, "general.name") != field_value(src, "general.name"):
            print(f"FAIL {name}: general.name not carried over")
            failures += 1
        for t in out.tensors:
            checked += 1
            qtype = T(t.tensor_type)
            x = inputs[t.name].reshape(-1, int(t.shape[0]))
            try:
                want = np.asarray(quants.quantize(x, qtype)).tobytes()
            except NotImplementedError:
                want = None
            got = np.asarray(t.data).tobytes()
            if want is not None:
                ok = want == got
                note = "quantize identical" if ok else "quantize DIFFERS"
            else:
                y = quants.dequantize(np.asarray(t.data), qtype).astype(np.float64).reshape(x.shape)
                rel = float(np.sqrt(np.sum((y - x) ** 2) / max(np.sum(x.astype(np.float64) ** 2), 1e-300)))
                ok = bool(np.all(np.isfinite(y))) and rel < 0.15
                note = f"dequantized by gguf, relative RMS error {rel:.4f}"
            print(f"{'ok  ' if ok else 'FAIL'} {name:5s} {t.name:26s} {qtype.name:5s} {note}")
            failures += 0 if ok else 1
    print(f"{checked} tensors checked, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
