#!/usr/bin/env python3
"""Equivalence check for `rxq optimize` (issue 8, docs/optimize.md).

For every model.onnx under the given directories (libonnx-testdata's
node/, pytorch-converted/, pytorch-operator/, simple/, or any directory of
.onnx files), runs `rxq optimize --local -O<level>` and then:
  - onnx.checker.check_model on the optimized model must pass;
  - onnxruntime runs the original and the optimized model on the same
    inputs (the test_data_set_*/input_*.pb files when present, else
    seeded random inputs of the declared shapes) and every output must
    agree: |a - b| <= rtol * max(|a|, |b|) + atol, rtol 1e-4, atol 1e-6
    times max(1, the largest |value| of the original's output tensor), so
    that values that are 0 up to float32 rounding compare equal.
Models rxq refuses are counted with rxq's error. Models onnxruntime cannot
load (opsets it dropped) are compared with onnx's reference evaluator
instead ("pass_ref"); those neither can run are "no reference", not passes.
Prints one line per failure and a summary per directory; exits 1 when any
model rxq loaded fails the checker or the comparison.

With --layout nhwc, only the models with a Conv or a pooling node are
checked, optimized with `--layout nhwc`. The optimized model (with rxq's
com.rxq Nhwc* operators) must pass onnx.checker; onnxruntime cannot run
those operators, so each is expanded back by its definition
(cmn_opt_layout.h: Transpose to NCHW, the ONNX op, with NhwcConv's OHWI
weight transposed to OIHW, Transpose to NHWC) and that model is compared
with the original. This checks everything the pass did around the NHWC
nodes (the Transposes, the constants it permuted, the axes it remapped);
it does not check an NHWC kernel.

Usage: check_onnx.py RXQ_BIN LEVEL DIR... [--layout nhwc] [--json OUT] [--verbose]
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

RTOL, ATOL = 1e-4, 1e-6
NHWC_DOMAIN = "com.rxq"
LAYOUT_OPS = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}
LAYOUT = None       # "nhwc" with --layout nhwc


def expand_nhwc(model):
    """The model with every com.rxq Nhwc<Op> node replaced by its
    definition: Transpose(X, [0,3,1,2]) -> Op -> Transpose(., [0,2,3,1]),
    NhwcConv's OHWI weight through Transpose(W, [0,3,1,2]) (OIHW)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    nodes = []
    for n in m.graph.node:
        if n.domain != NHWC_DOMAIN or not n.op_type.startswith("Nhwc"):
            nodes.append(n)
            continue
        op, y = n.op_type[4:], n.output[0]
        ins = [f"{y}__x_nchw"] + list(n.input[1:])
        nodes.append(onnx.helper.make_node("Transpose", [n.input[0]], [ins[0]], perm=[0, 3, 1, 2]))
        if op == "Conv":
            ins[1] = f"{y}__w_oihw"
            nodes.append(onnx.helper.make_node("Transpose", [n.input[1]], [ins[1]], perm=[0, 3, 1, 2]))
        core = onnx.helper.make_node(op, ins, [f"{y}__y_nchw"], name=n.name)
        core.attribute.extend(n.attribute)
        nodes.append(core)
        nodes.append(onnx.helper.make_node("Transpose", [f"{y}__y_nchw"], [y], perm=[0, 2, 3, 1]))
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    keep = [o for o in m.opset_import if o.domain != NHWC_DOMAIN]
    del m.opset_import[:]
    m.opset_import.extend(keep)
    return m


def has_layout_ops(path):
    try:
        g = onnx.load(path, load_external_data=False).graph
    except Exception:  # noqa: BLE001 - rxq reports unreadable models
        return True
    return any(n.op_type in LAYOUT_OPS and n.domain in ("", "ai.onnx") for n in g.node)


def load_input(path, vi):
    data = open(path, "rb").read()
    t = vi.type
    if t.HasField("sequence_type"):
        s = onnx.SequenceProto()
        s.ParseFromString(data)
        return numpy_helper.to_list(s)
    if t.HasField("optional_type"):
        o = onnx.OptionalProto()
        o.ParseFromString(data)
        return numpy_helper.to_optional(o)
    if t.HasField("map_type"):
        m = onnx.MapProto()
        m.ParseFromString(data)
        return numpy_helper.to_dict(m)
    tp = onnx.TensorProto()
    tp.ParseFromString(data)
    return numpy_helper.to_array(tp)


# --inputs "name=1x512,sr=16000,ids=1x16:0:30000": shapes for random
# inputs whose dimensions are symbolic ("AxB"), optionally with the
# inclusive range of an integer input's values (":LO:HI", default 0..3),
# or the value of an integer scalar ("=V").
SPEC = {}


def random_inputs(model, rng):
    feeds = {}
    inits = {i.name for i in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                 for d in tt.shape.dim]
        spec = SPEC.get(vi.name)
        lo, hi = 0, 3
        if spec is not None and spec.count(":") == 2:
            spec, lo, hi = spec.split(":")
            lo, hi = int(lo), int(hi)
        if spec is not None and "x" not in spec and not shape:
            feeds[vi.name] = np.array(int(spec), dtype=dtype)
            continue
        if spec is not None:
            # The spec fills symbolic dimensions only; fixed ones stay.
            want = [int(x) for x in spec.split("x")]
            if len(want) == len(shape):
                shape = [w if not (d.HasField("dim_value") and d.dim_value > 0) else s
                         for w, s, d in zip(want, shape, tt.shape.dim)]
        if np.issubdtype(dtype, np.floating):
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[vi.name] = rng.integers(0, 2, shape).astype(dtype)
        else:
            feeds[vi.name] = rng.integers(lo, hi + 1, shape).astype(dtype)
    return feeds


def input_sets(model, model_path):
    inits = {i.name for i in model.graph.initializer}
    ins = [vi for vi in model.graph.input if vi.name not in inits]
    sets = sorted(glob.glob(os.path.join(os.path.dirname(model_path), "test_data_set_*")))
    out = []
    for s in sets:
        files = sorted(glob.glob(os.path.join(s, "input_*.pb")),
                       key=lambda p: int(p.rsplit("_", 1)[1].split(".")[0]))
        feeds = {}
        for vi, f in zip(ins, files):
            feeds[vi.name] = load_input(f, vi)
        out.append(feeds)
    if not out:
        out.append(random_inputs(model, np.random.default_rng(0)))
    return out


def close(a, b, where):
    if isinstance(a, list) or isinstance(b, list):
        if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b):
            return f"{where}: sequence mismatch"
        for i, (x, y) in enumerate(zip(a, b)):
            r = close(x, y, f"{where}[{i}]")
            if r:
                return r
        return None
    if a is None or b is None:
        return None if a is None and b is None else f"{where}: optional mismatch"
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return f"{where}: shape {a.shape} vs {b.shape}"
    if a.dtype != b.dtype:
        return f"{where}: dtype {a.dtype} vs {b.dtype}"
    if a.dtype.kind in "fc":
        a64, b64 = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64), \
            b.astype(np.complex128 if b.dtype.kind == "c" else np.float64)
        nan = np.isnan(a64) != np.isnan(b64)
        if nan.any():
            return f"{where}: NaN pattern differs"
        finite = np.abs(a64[np.isfinite(a64)])
        # The absolute floor scales with the tensor: float32 rounding of a
        # tensor whose values reach M is about M * 1e-7 per operation.
        atol = ATOL * max(1.0, float(finite.max()) if finite.size else 1.0)
        with np.errstate(invalid="ignore", over="ignore"):
            ok = np.isnan(a64) | (a64 == b64) | \
                (np.abs(a64 - b64) <= RTOL * np.maximum(np.abs(a64), np.abs(b64)) + atol)
        if not ok.all():
            i = np.argmax(~ok.ravel())
            return f"{where}: {a64.ravel()[i]} vs {b64.ravel()[i]}"
        return None
    if not np.array_equal(a, b):
        return f"{where}: values differ"
    return None


def session(path):
    so = ort.SessionOptions()
    # Compare graphs, not onnxruntime's own rewrites of them.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def check_reference(path, out, model, report, why):
    try:
        from onnx.reference import ReferenceEvaluator
        ref = ReferenceEvaluator(path)
        sets = input_sets(model, path)
        a = [ref.run(None, f) for f in sets]
    except Exception as e:  # noqa: BLE001
        return "noref", f"{why}; reference evaluator: {str(e).splitlines()[0][:80] if str(e) else type(e).__name__}", report
    try:
        opt = ReferenceEvaluator(out)
        b = [opt.run(None, f) for f in sets]
    except Exception as e:  # noqa: BLE001
        return "fail", f"reference evaluator cannot run the optimized model: {str(e)[:200]}", report
    for k, (x, y) in enumerate(zip(a, b)):
        for i, (u, v) in enumerate(zip(x, y)):
            r = close(u, v, f"set {k} output {i} (reference evaluator)")
            if r:
                return "fail", r, report
    return "pass_ref", "", report


def check_one(rxq, level, path, tmp):
    out = os.path.join(tmp, "opt.onnx")
    rep = os.path.join(tmp, "report.json")
    layout = ["--layout", LAYOUT] if LAYOUT else []
    p = subprocess.run([rxq, "optimize", path, "--local", f"-O{level}", "-o", out,
                        "--report-json", rep] + layout, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        return "refused", p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}", None
    report = json.load(open(rep))
    try:
        onnx.checker.check_model(onnx.load(out))
    except Exception as e:  # noqa: BLE001 - any checker complaint is a failure
        return "fail", f"onnx.checker: {str(e).splitlines()[0][:200]}", report
    if LAYOUT:
        # onnxruntime's CPU build has no NHWC convolution: run the
        # definition of each Nhwc node instead (expand_nhwc).
        expanded = os.path.join(tmp, "opt_expanded.onnx")
        onnx.save(expand_nhwc(onnx.load(out)), expanded)
        out = expanded
    model = onnx.load(path)
    try:
        ref = session(path)
    except Exception as e:  # noqa: BLE001
        # Old opsets onnxruntime dropped: onnx's reference evaluator runs both.
        why = f"onnxruntime cannot load the original: {str(e).splitlines()[0][:120]}"
        return check_reference(path, out, model, report, why)
    try:
        opt = session(out)
    except Exception as e:  # noqa: BLE001
        return "fail", f"onnxruntime cannot load the optimized model: {str(e).splitlines()[0][:200]}", report
    try:
        sets = input_sets(model, path)
    except Exception as e:  # noqa: BLE001
        return "noref", f"cannot read inputs: {e}", report
    names = [o.name for o in ref.get_outputs()]
    if names != [o.name for o in opt.get_outputs()]:
        return "fail", f"outputs differ: {names} vs {[o.name for o in opt.get_outputs()]}", report
    for k, feeds in enumerate(sets):
        try:
            a = ref.run(None, feeds)
        except Exception as e:  # noqa: BLE001
            return "noref", f"onnxruntime cannot run the original: {str(e).splitlines()[0][:120]}", report
        try:
            b = opt.run(None, feeds)
        except Exception as e:  # noqa: BLE001
            return "fail", f"onnxruntime cannot run the optimized model: {str(e).splitlines()[0][:200]}", report
        for n, x, y in zip(names, a, b):
            r = close(x, y, f"set {k} output '{n}'")
            if r:
                return "fail", r, report
    return "pass", "", report


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    verbose = "--verbose" in sys.argv
    json_out = None
    if "--inputs" in sys.argv:
        spec = sys.argv[sys.argv.index("--inputs") + 1]
        args.remove(spec)
        SPEC.update(kv.split("=", 1) for kv in spec.split(","))
    if "--json" in sys.argv:
        json_out = sys.argv[sys.argv.index("--json") + 1]
        args.remove(json_out)
    if "--layout" in sys.argv:
        global LAYOUT
        LAYOUT = sys.argv[sys.argv.index("--layout") + 1]
        args.remove(LAYOUT)
    rxq, level, dirs = args[0], args[1], args[2:]
    bad = 0
    summary = {}
    totals = {"nodes_before": 0, "nodes_after": 0, "passes": {}, "layout": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for d in dirs:
            models = sorted(glob.glob(os.path.join(d, "*", "model.onnx"))) + \
                sorted(glob.glob(os.path.join(d, "*.onnx")))
            if LAYOUT:
                models = [m for m in models if has_layout_ops(m)]
            counts = {"models": len(models), "pass": 0, "pass_ref": 0, "fail": 0, "refused": 0,
                      "noref": 0}
            reasons = {}
            for m in models:
                name = os.path.relpath(m, os.path.dirname(d.rstrip("/")))
                try:
                    status, why, report = check_one(rxq, level, m, tmp)
                except subprocess.TimeoutExpired:
                    status, why, report = "fail", "rxq timed out", None
                counts[status] += 1
                if report:
                    totals["nodes_before"] += report["nodes"][0]
                    totals["nodes_after"] += report["nodes"][1]
                    for p, c in report["passes"].items():
                        totals["passes"][p] = totals["passes"].get(p, 0) + c
                    for k, c in report.get("layout", {}).items():
                        totals["layout"][k] = totals["layout"].get(k, 0) + c
                if status == "fail":
                    bad += 1
                    print(f"FAIL {name}: {why}", flush=True)
                elif status != "pass":
                    key = why.split("'")[0][:60] if status == "refused" else why[:60]
                    reasons.setdefault(f"{status}: {key}", []).append(name)
                    if verbose:
                        print(f"{status.upper()} {name}: {why}", flush=True)
            summary[d] = {"counts": counts, "reasons": {k: len(v) for k, v in reasons.items()}}
            print(f"{d}: {counts}", flush=True)
            for k, v in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
                print(f"    {len(v):4d} {k} (e.g. {v[0]})")
    print(f"nodes {totals['nodes_before']} -> {totals['nodes_after']}; rewrites {totals['passes']}")
    if LAYOUT:
        print(f"layout {LAYOUT}: {totals['layout']}")
    if json_out:
        json.dump({"summary": summary, "totals": totals}, open(json_out, "w"), indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
