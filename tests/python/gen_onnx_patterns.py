#!/usr/bin/env python3
"""Writes small ONNX models (random weights, fixed seed) that contain the
patterns rxq's optimizer rewrites, so that check_onnx.py proves each
rewrite equivalent in onnxruntime: Conv+BatchNorm(+Relu), MatMul+Add,
decomposed LayerNorm (opset 17), x+0 / x*1 / x*0 / x-0 / x/1, double
Transpose, Reshape chain, Identity/Dropout chains, duplicate subexpressions,
constant subgraphs (Shape/Gather/Concat/Reshape), dead branches, and a
small conv net for the layout pass (--layout nhwc).

Usage: gen_onnx_patterns.py OUT_DIR   (writes OUT_DIR/<name>.onnx)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(8)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def save(out, name, nodes, inputs, outputs, inits, opset=17):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, name + ".onnx"))


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def main(out):
    os.makedirs(out, exist_ok=True)
    X = helper.make_tensor_value_info

    def Y(name, shape):
        return X(name, TensorProto.FLOAT, shape)
    # Conv + BatchNorm + Relu, twice, sharing nothing.
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "s1", "o1", "m1", "v1"], ["n1"], epsilon=1e-3),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c2", "s2", "o2", "m2", "v2"], ["y"]),
    ]
    inits = [init("w1", f32(8, 3, 3, 3)), init("b1", f32(8)), init("s1", f32(8)), init("o1", f32(8)),
             init("m1", f32(8)), init("v1", np.abs(f32(8)) + 0.5),
             init("w2", f32(4, 8, 3, 3)), init("s2", f32(4)), init("o2", f32(4)), init("m2", f32(4)),
             init("v2", np.abs(f32(4)) + 0.5)]
    save(out, "conv_bn_relu", nodes, [X("x", TensorProto.FLOAT, [1, 3, 16, 16])],
         [Y("y", [1, 4, 7, 7])], inits)
    # MatMul + Add (bias on either side) -> Gemm.
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["mm2"]),
        helper.make_node("Add", ["b2", "mm2"], ["y"]),
    ]
    save(out, "matmul_add", nodes, [X("x", TensorProto.FLOAT, [4, 16])], [Y("y", [4, 8])],
         [init("w", f32(16, 32)), init("b", f32(32)), init("w2", f32(32, 8)), init("b2", f32(1, 8))])
    # Decomposed layer norm as exported for opsets < 17, in an opset-17 model.
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mu"], axes=[-1]),
        helper.make_node("Sub", ["x", "mu"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["p"]),
        helper.make_node("ReduceMean", ["p"], ["var"], axes=[-1]),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["sd"]),
        helper.make_node("Div", ["d", "sd"], ["nrm"]),
        helper.make_node("Mul", ["nrm", "gamma"], ["sc"]),
        helper.make_node("Add", ["sc", "beta"], ["ln"]),
        helper.make_node("Relu", ["ln"], ["y"]),
    ]
    save(out, "layernorm_relu", nodes, [X("x", TensorProto.FLOAT, [2, 5, 24])], [Y("y", [2, 5, 24])],
         [init("two", np.float32(2)), init("eps", np.float32(1e-5)), init("gamma", f32(24)),
          init("beta", f32(24))])
    # A transformer block's feed-forward tail: LayerNorm pattern, MatMul +
    # Add, the exact GELU pattern in both groupings (opset 20).
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["mu"], keepdims=1),
        helper.make_node("Sub", ["x", "mu"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["p"]),
        helper.make_node("ReduceMean", ["p", "axes"], ["var"], keepdims=1),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["sd"]),
        helper.make_node("Div", ["d", "sd"], ["nrm"]),
        helper.make_node("Mul", ["nrm", "gamma"], ["sc"]),
        helper.make_node("Add", ["sc", "beta"], ["ln"]),
        helper.make_node("Div", ["ln", "sqrt2"], ["g1"]),
        helper.make_node("Erf", ["g1"], ["g2"]),
        helper.make_node("Add", ["g2", "one"], ["g3"]),
        helper.make_node("Mul", ["ln", "g3"], ["g4"]),
        helper.make_node("Mul", ["g4", "half"], ["h"]),
        helper.make_node("MatMul", ["h", "w"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["z"]),
        helper.make_node("Mul", ["z", "half"], ["k1"]),
        helper.make_node("Mul", ["z", "rsqrt2"], ["k2"]),
        helper.make_node("Erf", ["k2"], ["k3"]),
        helper.make_node("Add", ["one", "k3"], ["k4"]),
        helper.make_node("Mul", ["k1", "k4"], ["y"]),
    ]
    save(out, "ffn_gelu", nodes, [X("x", TensorProto.FLOAT, [6, 32])], [Y("y", [6, 16])],
         [init("two", np.float32(2)), init("eps", np.float32(1e-5)), init("gamma", f32(32)),
          init("beta", f32(32)), init("sqrt2", np.float32(1.4142135)), init("one", np.float32(1)),
          init("half", np.float32(0.5)), init("rsqrt2", np.float32(0.70710677)),
          init("w", f32(32, 16)), init("b", f32(16)), init("axes", np.array([-1], np.int64))], opset=20)
    # Algebraic identities, double transposes, reshape chains, no-ops, CSE,
    # constant shape arithmetic and a dead branch.
    nodes = [
        helper.make_node("Add", ["x", "zero"], ["a0"]),
        helper.make_node("Mul", ["one", "a0"], ["a1"]),
        helper.make_node("Sub", ["a1", "zero"], ["a2"]),
        helper.make_node("Div", ["a2", "one"], ["a3"]),
        helper.make_node("Identity", ["a3"], ["a4"]),
        helper.make_node("Dropout", ["a4"], ["a5"]),
        helper.make_node("Transpose", ["a5"], ["t1"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["t1"], ["t2"], perm=[0, 3, 1, 2]),
        helper.make_node("Shape", ["t2"], ["sh"]),
        helper.make_node("Gather", ["sh", "i0"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Concat", ["n1", "m1"], ["newshape"], axis=0),
        helper.make_node("Reshape", ["t2", "newshape"], ["r1"]),
        helper.make_node("Reshape", ["r1", "flat"], ["r2"]),
        helper.make_node("Exp", ["r2"], ["e1"]),
        helper.make_node("Exp", ["r2"], ["e2"]),
        helper.make_node("Add", ["e1", "e2"], ["s"]),
        helper.make_node("Mul", ["s", "zeros"], ["z"]),
        helper.make_node("Add", ["s", "z"], ["y"]),
        helper.make_node("Neg", ["x"], ["dead"]),
        helper.make_node("Mul", ["c1", "c2"], ["c3"]),
        helper.make_node("Add", ["y", "c3"], ["y2"]),
    ]
    save(out, "algebra_mix", nodes, [X("x", TensorProto.FLOAT, [2, 3, 4, 5])],
         [Y("y2", [6, 20])],
         [init("zero", np.zeros((1,), np.float32)), init("one", np.ones((1, 1, 1), np.float32)),
          init("i0", np.array(0, np.int64)), init("ax0", np.array([0], np.int64)),
          init("m1", np.array([-1], np.int64)), init("flat", np.array([6, 20], np.int64)),
          init("zeros", np.zeros((6, 20), np.float32)), init("c1", f32(20)), init("c2", f32(20))])
    # A small conv net for the layout pass (--layout nhwc): Conv +
    # BatchNorm + Relu, a depthwise conv, a residual Add, per-channel Mul
    # and PRelu constants, Concat on channels, max and average pooling,
    # Softmax over channels, ReduceMean (keepdims 0) and ReduceSum (axes
    # input), an Add with the input x (which the first conv already has in
    # NHWC), a Mul with a second input z that blocks propagation, global
    # pooling, Flatten and Gemm. Without --layout it checks the usual
    # passes on the same graph.
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "s1", "o1", "m1", "v1"], ["n1"]),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "wd"], ["dw"], pads=[1, 1, 1, 1], group=8),
        helper.make_node("Add", ["dw", "r1"], ["res"]),
        helper.make_node("Mul", ["res", "scale"], ["sc"]),
        helper.make_node("PRelu", ["sc", "slope"], ["pr"]),
        helper.make_node("Conv", ["pr", "w2"], ["c2"], kernel_shape=[1, 1]),
        helper.make_node("Sigmoid", ["c2"], ["sg"]),
        helper.make_node("Concat", ["pr", "sg"], ["cat"], axis=1),
        helper.make_node("MaxPool", ["cat"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Clip", ["mp", "lo", "hi"], ["cl"]),
        helper.make_node("AveragePool", ["cl"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Softmax", ["ap"], ["sm"], axis=1),
        helper.make_node("ReduceMean", ["sm"], ["rm"], axes=[2, 3], keepdims=0),
        helper.make_node("ReduceSum", ["ap", "ax23"], ["rs"], keepdims=1),
        helper.make_node("Add", ["ap", "rs"], ["apr"]),
        helper.make_node("GlobalAveragePool", ["apr"], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["fl"]),
        helper.make_node("Gemm", ["fl", "wg"], ["y"], transB=1),
        helper.make_node("Conv", ["x", "w3"], ["c3"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c3", "x"], ["res2"]),
        helper.make_node("Mul", ["res2", "z"], ["blk"]),
        helper.make_node("Conv", ["blk", "w4"], ["y2"]),
    ]
    save(out, "layout_convnet", nodes, [X("x", TensorProto.FLOAT, [2, 3, 12, 12]),
                                        X("z", TensorProto.FLOAT, [2, 3, 12, 12])],
         [Y("y", [2, 5]), Y("rm", [2, 16]), Y("y2", [2, 2, 10, 10])],
         [init("w1", f32(8, 3, 3, 3)), init("b1", f32(8)), init("s1", f32(8)), init("o1", f32(8)),
          init("m1", f32(8)), init("v1", np.abs(f32(8)) + 0.5), init("wd", f32(8, 1, 3, 3)),
          init("scale", f32(8, 1, 1)), init("slope", np.abs(f32(8, 1, 1)) * 0.1),
          init("w2", f32(8, 8, 1, 1)), init("lo", np.float32(-0.5)), init("hi", np.float32(2.0)),
          init("ax23", np.array([2, 3], np.int64)), init("wg", f32(5, 16)),
          init("w3", f32(3, 3, 3, 3)), init("w4", f32(2, 3, 3, 3))])


if __name__ == "__main__":
    main(sys.argv[1])
