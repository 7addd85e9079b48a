/*  cmn_opt_layout: NCHW to NHWC layout conversion with transpose
 *  elimination (the optimizer's `layout` pass, see cmn_opt.h and
 *  docs/optimize.md "Layout").
 *
 *  Standard ONNX has no NHWC convolution, so the converted nodes go to
 *  rxq's own operator domain CMN_GRAPH_NHWC_DOMAIN ("com.rxq", version 1):
 *
 *    NhwcConv (X, W, B?) -> Y    X [N, H, W, C], W [M, kH, kW, C/group]
 *                                (OHWI: the weight layout of kernels/conv.cl),
 *                                B [M], Y [N, OH, OW, M]; the attributes
 *                                and their meaning are ONNX Conv's.
 *    NhwcMaxPool (X) -> Y        ONNX MaxPool on X [N, H, W, C], one
 *                                output (no Indices)
 *    NhwcAveragePool (X) -> Y    ONNX AveragePool on NHWC
 *    NhwcGlobalAveragePool (X)   ONNX GlobalAveragePool on NHWC, Y [N, 1, 1, C]
 *    NhwcGlobalMaxPool (X)       likewise
 *
 *  So NhwcOp (X, ...) == Transpose (Op (Transpose (X, [0,3,1,2]), ...),
 *  [0,2,3,1]), with W = Transpose (W_oihw, [0,2,3,1]) for NhwcConv: that
 *  identity is what tests/python/check_onnx.py expands the nodes back
 *  into to check the rest of the rewrite in onnxruntime.
 *
 *  The pass: (1) each 2-D Conv with a constant weight, and each 2-D
 *  MaxPool (without Indices), AveragePool, GlobalAveragePool and
 *  GlobalMaxPool, becomes its Nhwc form between a Transpose to NHWC and
 *  one back; (2) Transposes are pushed down through layout-agnostic nodes
 *  (elementwise unary ops, broadcasting binary ops whose other operands
 *  are transposed the same way, scalars, or constants, which are permuted;
 *  Concat, Softmax/LogSoftmax from opset 13, Reduce* with axes, the axes
 *  remapped), when that removes a Transpose or meets inverse ones; (3) a
 *  Transpose of a Transpose that composes to the identity is cancelled,
 *  and Transposes nobody reads are removed. A conv chain keeps one
 *  Transpose where it starts and one where it ends.
 */
#ifndef CMN_OPT_LAYOUT_H
#define CMN_OPT_LAYOUT_H
#include <stddef.h>
#include "cmn_graph.h"

typedef struct {
    size_t converted;       // nodes rewritten into their NHWC form
    size_t inserted;        // Transpose nodes the pass created
    size_t removed;         // Transpose nodes the pass cancelled or dropped
} cmn_opt_layout_stats_t;

//  Runs the pass over G, adding to STATS (not reset). Returns the number
//  of rewrites (conversions, pushes, cancellations), or -1 with ERR set
//  (RXQ_E_NOMEM, or a refresh error). Does nothing below opset 11.
int cmn_opt_layout_nhwc (cmn_graph_t *g, cmn_opt_layout_stats_t *stats, cmn_err_t *err);

#endif
