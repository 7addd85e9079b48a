/*  cmn_opt_fuse: the optimizer's fusions (see cmn_opt.h). Each returns
 *  the number of fusions made, or -1 with ERR set.
 *
 *  - conv_bn: Conv (constant float weights, optional constant bias)
 *    whose output only feeds an inference BatchNormalization with
 *    constant parameters: the normalisation is folded into new weights
 *    and bias (W' = W*s, b' = (b-mean)*s + beta, s = gamma/sqrt(var+eps)),
 *    computed in double. The ReLU that often follows stays a Relu node:
 *    ONNX has no standard Conv+Relu operator.
 *  - gemm: MatMul(A, B) with A of static rank 2, B a constant matrix,
 *    feeding only an Add of a constant C that broadcasts to [M, N]
 *    without growing the result: Gemm(A, B, C). FLOAT and DOUBLE.
 *  - layernorm: the decomposed layer norm exporters write for opsets
 *    before 17 (ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div,
 *    Mul gamma, Add beta over the last axis) becomes LayerNormalization,
 *    when the model's opset is 17 or more.
 *  - gelu: x * 0.5 * (1 + Erf(x / sqrt 2)) (either grouping of the
 *    products, Div by sqrt 2 or Mul by 1/sqrt 2) becomes Gelu, when the
 *    model's opset is 20 or more. With layernorm this covers the
 *    "LayerNorm + GELU" of transformer blocks; ReLU needs no fusion.
 */
#ifndef CMN_OPT_FUSE_H
#define CMN_OPT_FUSE_H
#include "cmn_graph.h"

int cmn_opt_fuse_conv_bn (cmn_graph_t *g, cmn_err_t *err);
int cmn_opt_fuse_gemm (cmn_graph_t *g, cmn_err_t *err);
int cmn_opt_fuse_layernorm (cmn_graph_t *g, cmn_err_t *err);
int cmn_opt_fuse_gelu (cmn_graph_t *g, cmn_err_t *err);

#endif
