#!/usr/bin/env python3
"""Regenerates tests/fixtures/onnx/: small valid and malformed ONNX files
and expected.txt, the error each must produce (see that README).

Usage: gen_onnx_fixtures.py DIR
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROWS = []

# Fuzzer finds kept as files: name, error, message substring.
FUZZ_FINDS = [
    ("fuzz_reshape_overflow.onnx", "RXQ_E_OK", "-"),
    ("fuzz_layernorm_arity.onnx", "RXQ_E_OK", "-"),
    ("fuzz_fold_huge_shape.onnx", "RXQ_E_OK", "-"),
    ("fuzz_reduce_empty_axes.onnx", "RXQ_E_OK", "-"),
]


def model(nodes, inputs, outputs, inits=(), opsets=(("", 17),), ir=8):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    m.ir_version = ir
    return m


def write(d, name, data, code, substring):
    if not isinstance(data, bytes):
        data = data.SerializeToString()
    open(os.path.join(d, name), "wb").write(data)
    ROWS.append(f"{name} {code} {substring}")


def main(d):
    os.makedirs(d, exist_ok=True)
    X = helper.make_tensor_value_info
    x = X("x", TensorProto.FLOAT, [2, 3])
    y = X("y", TensorProto.FLOAT, [2, 3])
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")

    ok = model([helper.make_node("Add", ["x", "w"], ["t"], name="add"),
                helper.make_node("Relu", ["t"], ["y"], name="relu")], [x], [y], [w])
    write(d, "valid_add_relu.onnx", ok, "RXQ_E_OK", "-")
    good = ok.SerializeToString()

    # Wire format.
    write(d, "truncated.onnx", good[:len(good) - 7], "RXQ_E_FORMAT_TRUNC", "past the")
    # Field 99 with wire type 3 (a protobuf group, which proto3 never uses).
    write(d, "bad_wire_type.onnx", b"\x9b\x06" + good, "RXQ_E_FORMAT", "unsupported wire type")
    write(d, "long_varint.onnx", b"\x08" + b"\xff" * 11, "RXQ_E_FORMAT", "varint")
    write(d, "huge_length.onnx", b"\x3a\xff\xff\xff\xff\x0f", "RXQ_E_FORMAT_TRUNC", "ModelProto.graph")
    write(d, "no_graph.onnx", b"\x08\x08", "RXQ_E_FORMAT", "no graph")
    # ir_version as a length-delimited field.
    write(d, "ir_version_wrong_type.onnx", b"\x0a\x01\x00" + good, "RXQ_E_FORMAT", "ModelProto.ir_version")

    # Tensors.
    bad = onnx.ModelProto()
    bad.CopyFrom(ok)
    bad.graph.initializer[0].raw_data = b"\0" * 20
    write(d, "init_size_mismatch.onnx", bad, "RXQ_E_FORMAT_SHAPE", "tensor 'w'")
    bad = onnx.ModelProto()
    bad.CopyFrom(ok)
    bad.graph.initializer[0].data_type = 99
    write(d, "init_bad_dtype.onnx", bad, "RXQ_E_FORMAT_TYPE", "tensor 'w'")
    ext = onnx.ModelProto()
    ext.CopyFrom(ok)
    t = ext.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="../../etc/passwd")
    write(d, "external_escape.onnx", ext, "RXQ_E_FORMAT_BOUNDS", "leaves the model's directory")
    ext2 = onnx.ModelProto()
    ext2.CopyFrom(ok)
    t = ext2.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="valid_external.bin")
    t.external_data.add(key="offset", value="8")
    t.external_data.add(key="length", value="24")
    open(os.path.join(d, "valid_external.bin"), "wb").write(
        b"\xee" * 8 + np.arange(6, dtype=np.float32).tobytes())
    write(d, "valid_external.onnx", ext2, "RXQ_E_OK", "-")
    ext3 = onnx.ModelProto()
    ext3.CopyFrom(ext2)
    ext3.graph.initializer[0].external_data[1].value = "16"
    write(d, "external_past_end.onnx", ext3, "RXQ_E_FORMAT_BOUNDS", "past the end")

    # Graph validation: each names the node.
    write(d, "missing_initializer.onnx",
          model([helper.make_node("Add", ["x", "nowhere"], ["y"], name="add_1")], [x], [y]),
          "RXQ_E_FORMAT", "node 'add_1' (Add): input 'nowhere'")
    write(d, "cycle.onnx",
          model([helper.make_node("Add", ["x", "b"], ["a"], name="n_a"),
                 helper.make_node("Relu", ["a"], ["b"], name="n_b"),
                 helper.make_node("Identity", ["a"], ["y"], name="n_y")], [x], [y]),
          "RXQ_E_FORMAT", "is on a cycle")
    write(d, "self_loop.onnx",
          model([helper.make_node("Add", ["x", "y"], ["y"], name="loop")], [x], [y]),
          "RXQ_E_FORMAT", "node 'loop' (Add): reads its own output")
    write(d, "unknown_opset.onnx",
          model([helper.make_node("Relu", ["x"], ["y"], name="r")], [x], [y], opsets=(("", 99),)),
          "RXQ_E_UNSUPPORTED", "node 'r' (Relu): ai.onnx opset 99")
    write(d, "unknown_domain.onnx",
          model([helper.make_node("Frob", ["x"], ["y"], name="f", domain="com.example")], [x], [y]),
          "RXQ_E_UNSUPPORTED", "node 'f' (Frob): domain 'com.example'")
    write(d, "duplicate_output.onnx",
          model([helper.make_node("Relu", ["x"], ["y"], name="r1"),
                 helper.make_node("Relu", ["x"], ["y"], name="r2")], [x], [y]),
          "RXQ_E_FORMAT", "node 'r2' (Relu): output 'y' is already defined")
    write(d, "missing_output.onnx",
          model([helper.make_node("Relu", ["x"], ["z"], name="r")], [x], [y]),
          "RXQ_E_FORMAT", "graph output 'y'")
    # An operator rxq knows nothing about passes through.
    write(d, "valid_unknown_op.onnx",
          model([helper.make_node("Frob", ["x"], ["y"], name="f", domain="com.example", color="blue")],
                [x], [y], opsets=(("", 17), ("com.example", 1))),
          "RXQ_E_OK", "-")
    # Fuzzer finds (tests/fixtures/onnx/README.md). The larger ones are
    # committed as found; only their rows are written here.
    write(d, "fuzz_empty_graph.onnx", b"\x00\x00\x3a\x00", "RXQ_E_OK", "-")
    for name, code, sub in FUZZ_FINDS:
        assert os.path.exists(os.path.join(d, name)), name
        ROWS.append(f"{name} {code} {sub}")

    # Models for the per-pass tests (tests/common/test_cmn_opt.c).
    write(d, "pass_dce.onnx",
          model([helper.make_node("Relu", ["x"], ["y"], name="live"),
                 helper.make_node("Exp", ["x"], ["d1"], name="dead1"),
                 helper.make_node("Neg", ["d1"], ["d2"], name="dead2"),
                 helper.make_node("Add", ["d2", "w"], ["d3"], name="dead3")], [x], [y],
                [w, numpy_helper.from_array(np.zeros(3, np.float32), "unused")]),
          "RXQ_E_OK", "-")
    write(d, "pass_noop.onnx",
          model([helper.make_node("Identity", ["x"], ["i1"], name="id1"),
                 helper.make_node("Dropout", ["i1"], ["i2"], name="drop"),
                 helper.make_node("Relu", ["i2"], ["r"], name="relu"),
                 helper.make_node("Cast", ["r"], ["c"], name="cast_same", to=TensorProto.FLOAT),
                 helper.make_node("Transpose", ["c"], ["t"], name="perm_id", perm=[0, 1]),
                 helper.make_node("Identity", ["t"], ["y"], name="id_out")], [x], [y]),
          "RXQ_E_OK", "-")
    write(d, "pass_cse.onnx",
          model([helper.make_node("Exp", ["x"], ["e1"], name="e1"),
                 helper.make_node("Exp", ["x"], ["e2"], name="e2"),
                 helper.make_node("Add", ["e1", "w"], ["a1"], name="a1"),
                 helper.make_node("Add", ["e2", "w"], ["a2"], name="a2"),
                 helper.make_node("Mul", ["a1", "a2"], ["y"], name="m")], [x], [y], [w]),
          "RXQ_E_OK", "-")
    write(d, "pass_fold.onnx",
          model([helper.make_node("Constant", [], ["k"], name="k",
                                  value=numpy_helper.from_array(np.array([3, 2], np.int64))),
                 helper.make_node("Shape", ["x"], ["s"], name="shape"),
                 helper.make_node("Add", ["s", "k"], ["s2"], name="add_shape"),
                 helper.make_node("Sub", ["s2", "k"], ["s3"], name="sub_shape"),
                 helper.make_node("Reshape", ["w", "s3"], ["w2"], name="reshape_w"),
                 helper.make_node("Add", ["x", "w2"], ["y"], name="add")], [x], [y], [w]),
          "RXQ_E_OK", "-")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gen_onnx_patterns
    gen_onnx_patterns.main(d)
    for name in ("algebra_mix", "conv_bn_relu", "layernorm_relu", "matmul_add", "ffn_gelu"):
        os.replace(os.path.join(d, name + ".onnx"), os.path.join(d, "pass_" + name + ".onnx"))
        ROWS.append(f"pass_{name}.onnx RXQ_E_OK -")
    with open(os.path.join(d, "expected.txt"), "w") as f:
        f.write("# file error-name message-substring (see README.md)\n")
        f.write("\n".join(ROWS) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
