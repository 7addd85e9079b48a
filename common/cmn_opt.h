/*  cmn_opt: the ONNX optimizer's pass manager and report.
 *
 *  Runs the passes chosen by a level and per-pass switches over a model
 *  (cmn_onnx) through the graph view (cmn_graph), to a fixed point, and
 *  fills a report: node counts by op type, estimated FLOPs and peak memory
 *  before and after, each pass with its number of rewrites, and the time.
 *  Passes live in pass-family files: cmn_opt_clean (dead code, no-ops,
 *  CSE), cmn_opt_fold (constant folding, algebraic simplification),
 *  cmn_opt_fuse (Conv+BatchNorm, MatMul+Add, LayerNorm, GELU),
 *  cmn_opt_layout (NCHW to NHWC), cmn_opt_mem (FLOPs and memory plan). docs/optimize.md is the manual.
 */
#ifndef CMN_OPT_H
#define CMN_OPT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "cmn_error.h"
#include "cmn_onnx.h"

//  The passes, in the order a sweep runs them. Level 3 is above every -O
//  level: `layout` runs only when switched on (--layout nhwc, a target
//  that prefers NHWC, or --enable layout).
#define CMN_OPT_PASSES(X) \
    X (NOOP,   "noop",   1, "remove Identity, inference Dropout and other no-op nodes") \
    X (FOLD,   "fold",   1, "constant folding: evaluate nodes whose inputs are all constant") \
    X (ALGEBRA,"algebra",1, "algebraic simplification: x+0, x*1, x*0, double Transpose, Reshape chains") \
    X (CSE,    "cse",    1, "common-subexpression elimination") \
    X (FUSE_CONV_BN, "fuse-conv-bn", 2, "fold BatchNormalization into the preceding Conv") \
    X (FUSE_GEMM,    "fuse-gemm",    2, "MatMul + Add into Gemm") \
    X (FUSE_LAYERNORM, "fuse-layernorm", 2, "decomposed layer norm into LayerNormalization (opset 17+)") \
    X (FUSE_GELU,      "fuse-gelu",      2, "x*0.5*(1+erf(x/sqrt2)) into Gelu (opset 20+)") \
    X (LAYOUT, "layout", 3, "NCHW to NHWC (com.rxq Nhwc* ops) with transpose elimination; --layout nhwc") \
    X (DCE,    "dce",    1, "dead-code elimination: nodes and initializers nothing uses")

typedef enum {
#define CMN_OPT_ENUM(id, name, level, help) CMN_OPT_##id,
    CMN_OPT_PASSES (CMN_OPT_ENUM)
#undef CMN_OPT_ENUM
    CMN_OPT_NPASSES
} cmn_opt_pass_t;

typedef struct {
    int level;              // 0, 1 or 2: passes whose level is <= this run
    int8_t force [CMN_OPT_NPASSES]; // per pass: 1 on, -1 off, 0 by level
    int max_sweeps;         // fixed-point iterations, e.g. 8
    size_t fold_max_bytes;  // largest tensor constant folding may create
} cmn_opt_opts_t;

//  Level 1, no forcing, 8 sweeps, 64 MiB folded tensors.
extern const cmn_opt_opts_t cmn_opt_opts_default;

#define CMN_OPT_MAX_OPS 256

typedef struct {
    char op [64];           // op type ("Conv"; "domain:Op" outside ai.onnx)
    size_t before;          // nodes of this type before
    size_t after;           // nodes of this type after
} cmn_opt_opcount_t;

typedef struct {
    size_t nodes_before;    // nodes before
    size_t nodes_after;     // nodes after
    cmn_opt_opcount_t ops [CMN_OPT_MAX_OPS]; // per op type
    size_t nops;            // entries of ops
    size_t applied [CMN_OPT_NPASSES]; // rewrites per pass
    bool enabled [CMN_OPT_NPASSES];   // which passes ran
    double flops_before;    // estimated FLOPs of one run, before
    double flops_after;     // and after
    bool flops_partial;     // some node's FLOPs were unknown (not counted)
    int64_t mem_naive_before; // bytes of all intermediate tensors, no reuse
    int64_t mem_peak_before;  // bytes of the memory plan (buffer reuse), before
    int64_t mem_naive_after;  // same, after
    int64_t mem_peak_after;   // same, after
    int64_t weights_before;   // bytes of initializers, before
    int64_t weights_after;    // after
    size_t buffers_after;     // buffers the plan uses after optimisation
    size_t tensors_after;     // intermediate tensors sharing those buffers
    bool mem_partial;         // some tensor sizes were unknown (not counted)
    size_t layout_converted;  // layout: nodes rewritten into NHWC ops
    size_t layout_inserted;   // layout: Transpose nodes it created
    size_t layout_removed;    // layout: Transpose nodes it cancelled or dropped
    size_t transposes_after;  // Transpose nodes in the optimized graph
    int sweeps;               // sweeps run
    double seconds;           // wall time of the optimisation
} cmn_opt_report_t;

//  Parses a pass name ("fold") into *PASS. Returns 0 or -1.
int cmn_opt_pass_parse (const char *name, cmn_opt_pass_t *pass);

//  The name and description of PASS.
const char *cmn_opt_pass_name (cmn_opt_pass_t pass);
const char *cmn_opt_pass_help (cmn_opt_pass_t pass);

//  Optimises MODEL in place. REPORT (may be NULL) is filled. Returns 0, or
//  -1 with ERR set (the model's validation errors from cmn_graph_new,
//  naming the node; RXQ_E_NOMEM). On error the model may be partly
//  rewritten: callers discard it.
int cmn_opt_run (cmn_onnx_model_t *model, const cmn_opt_opts_t *opts,
                 cmn_opt_report_t *report, cmn_err_t *err);

//  Prints REPORT as text to OUT.
void cmn_opt_report_print (const cmn_opt_report_t *report, FILE *out);

//  Returns REPORT as a malloc'd JSON object (the caller frees), or NULL.
char *cmn_opt_report_json (const cmn_opt_report_t *report);

#endif
