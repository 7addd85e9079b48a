#!/usr/bin/env python3
"""Generate the quantization reference vectors in tests/fixtures/quant/.

Each fixture holds input floats, the block bytes llama.cpp's reference
quantizer produces for them, and the floats its dequantizer gives back.
tests/common/test_cmn_quant.c compares rxq's code with them byte for byte,
so CI needs no Python.

References:
  * the `gguf` package (gguf.quants, numpy ports of ggml-quants.c) for
    F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (quantize and dequantize) and
    for dequantizing Q4_K, Q5_K, Q6_K;
  * for quantizing Q4_K, Q5_K, Q6_K (gguf has no numpy quantizer for them):
    llama.cpp's own C reference, ggml/src/ggml-quants.c, built as a shared
    library and called through ctypes (--ggml-lib; see
    tests/fixtures/quant/README.md for the build command). With --ggml-lib
    the script also checks that gguf's numpy quantizers agree with the C
    reference bit for bit, and says so.

File format (little-endian):
  char magic[4] = "RXQV"; uint32 version = 1; uint32 ggml_type;
  uint32 n_values; uint32 n_bytes; uint32 flags (bit 0: the block bytes
  come from a reference quantizer and must match exactly);
  float32 input[n_values]; uint8 blocks[n_bytes]; float32 expected[n_values]

Usage: gen_quant_vectors.py [--ggml-lib libggmlref.so] [--out DIR]
"""
import argparse
import ctypes
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "fixtures", "quant")


def patterns(block: int, rng: np.random.Generator) -> np.ndarray:
    """Five groups of 256 values: random normal, all zeros, constant,
    huge dynamic range (1e-6 .. 1e4, mixed signs), negative only."""
    n = 256
    assert n % block == 0
    normal = rng.standard_normal(n)
    zeros = np.zeros(n)
    const = np.full(n, 0.3711)
    huge = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-6, 4, n)
    neg = -np.abs(rng.standard_normal(n)) * 3.0 - 0.01
    return np.concatenate([normal, zeros, const, huge, neg]).astype(np.float32)


def special_floats(rng: np.random.Generator) -> np.ndarray:
    """Values that exercise fp16/bf16 rounding: ties, subnormals, overflow,
    infinities, NaN, signed zeros, plus random bit patterns."""
    vals = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 65520.0, 70000.0, -1e9,
            np.inf, -np.inf, np.nan, 6.1035156e-05, 5.9604645e-08, 2.9802322e-08,
            2.9802326e-08, 1e-45, 3.4028235e38, 1.0009765625, 1.00048828125,
            1.00146484375, 0.333333343, 1.00390625, 1.005859375]
    bits = rng.integers(0, 2**32, 1000, dtype=np.uint64).astype(np.uint32)
    rnd = bits.view(np.float32)
    rnd = rnd[np.isfinite(rnd)]
    out = np.concatenate([np.array(vals, dtype=np.float32), rnd])
    return out[: (len(out) // 8) * 8]


class GgmlLib:
    """ctypes wrapper over llama.cpp's ggml-quants.c reference."""

    def __init__(self, path: str):
        self.lib = ctypes.CDLL(path)

    def quantize(self, qtype: T, x: np.ndarray) -> bytes:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        out = ctypes.create_string_buffer(len(x) // block * size)
        fn = getattr(self.lib, f"quantize_row_{qtype.name.lower().replace('_k', '_K')}_ref")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        xc = np.ascontiguousarray(x, dtype=np.float32)
        fn(xc.ctypes.data, out, len(x))
        return out.raw

    def dequantize(self, qtype: T, blocks: bytes, n: int) -> np.ndarray:
        y = np.zeros(n, dtype=np.float32)
        fn = getattr(self.lib, f"dequantize_row_{qtype.name.lower().replace('_k', '_K')}")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        buf = ctypes.create_string_buffer(blocks, len(blocks))
        fn(buf, y.ctypes.data, n)
        return y


def write(path: str, qtype: int, x: np.ndarray, blocks: bytes, y: np.ndarray, exact: bool):
    with open(path, "wb") as f:
        f.write(b"RXQV")
        f.write(struct.pack("<5I", 1, qtype, len(x), len(blocks), 1 if exact else 0))
        f.write(x.astype("<f4").tobytes())
        f.write(blocks)
        f.write(y.astype("<f4").tobytes())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ggml-lib", help="shared library built from llama.cpp ggml-quants.c")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=20240611)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    lib = GgmlLib(args.ggml_lib) if args.ggml_lib else None
    notes = []

    # fp16 / bf16
    x = special_floats(rng)
    with np.errstate(over="ignore"):
        h = x.astype(np.float16)
    write(os.path.join(args.out, "f16.bin"), T.F16, x, h.tobytes(), h.astype(np.float32), True)
    b = quants.quantize(x, T.BF16)
    write(os.path.join(args.out, "bf16.bin"), T.BF16, x, b.tobytes(),
          quants.dequantize(b, T.BF16).reshape(-1), True)

    for qtype in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
        x = patterns(32, rng)
        blocks = quants.quantize(x, qtype).tobytes()
        y = quants.dequantize(np.frombuffer(blocks, dtype=np.uint8), qtype).reshape(-1)
        if lib:
            ref = lib.quantize(qtype, x)
            same = ref == blocks
            notes.append(f"{qtype.name}: gguf numpy quantize {'==' if same else '!='} llama.cpp C reference")
            if not same:
                blocks = ref
                y = lib.dequantize(qtype, ref, len(x))
        write(os.path.join(args.out, f"{qtype.name.lower()}.bin"), qtype, x, blocks, y, True)

    for qtype in (T.Q4_K, T.Q5_K, T.Q6_K):
        x = patterns(256, rng)
        if lib:
            blocks = lib.quantize(qtype, x)
            exact = True
        else:
            # Without the C reference only dequantization can be checked:
            # random block bytes (with sane scales) through gguf's dequantizer.
            _, size = gguf.GGML_QUANT_SIZES[qtype]
            blocks = rng.integers(0, 256, len(x) // 256 * size, dtype=np.uint8).tobytes()
            exact = False
            notes.append(f"{qtype.name}: no --ggml-lib, dequantize-only vectors")
        y = quants.dequantize(np.frombuffer(blocks, dtype=np.uint8), qtype).reshape(-1)
        if lib:
            yc = lib.dequantize(qtype, blocks, len(x))
            same = np.array_equal(yc.view(np.uint32), y.astype(np.float32).view(np.uint32))
            notes.append(f"{qtype.name}: gguf numpy dequantize {'==' if same else '!='} llama.cpp C reference")
            y = yc
        write(os.path.join(args.out, f"{qtype.name.lower()}.bin"), qtype, x, blocks, y, exact)

    from importlib.metadata import version
    print(f"gguf {version('gguf')}, numpy {np.__version__}")
    for n in notes:
        print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
