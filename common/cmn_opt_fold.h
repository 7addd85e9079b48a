/*  cmn_opt_fold: constant folding and algebraic simplification (see
 *  cmn_opt.h). Both return the number of rewrites, or -1 with ERR set.
 *
 *  - fold: Constant nodes become initializers; nodes of the ops below
 *    whose inputs are all constant (initializers that are not graph
 *    inputs) are evaluated on the CPU and replaced by an initializer, when
 *    the result is at most MAX_BYTES and not a graph output. Shape (and
 *    Size) fold as soon as their input's shape is static, constant or not.
 *    Ops evaluated: Add Sub Mul Div Pow (numpy broadcasting), Neg Sqrt
 *    Reciprocal Relu Exp Log Abs Sigmoid Tanh Erf Floor Ceil, Cast
 *    between FLOAT/DOUBLE/INT32/INT64/BOOL, Reshape Unsqueeze Squeeze
 *    Flatten Identity, Concat, Transpose, Gather, Slice (1-D),
 *    ConstantOfShape, Shape, Size, Range. Floats are computed in double and
 *    rounded once, integers exactly (Div truncates, as onnxruntime does).
 *  - algebra: x+0, 0+x, x-0, x*1, 1*x, x/1 become x when the output has
 *    x's static shape and type; x*0 becomes a zero initializer (integer
 *    types always; floating point too: IEEE x*0 is NaN for infinite or NaN
 *    x, which this rewrite does not preserve, see docs/optimize.md);
 *    Transpose(Transpose(x)) becomes one Transpose (removed by noop when
 *    the identity); Reshape(Reshape(x)) reads x directly when the outer
 *    shape has no 0 entries.
 */
#ifndef CMN_OPT_FOLD_H
#define CMN_OPT_FOLD_H
#include "cmn_graph.h"

int cmn_opt_fold_constants (cmn_graph_t *g, size_t max_bytes, cmn_err_t *err);
int cmn_opt_fold_algebra (cmn_graph_t *g, size_t max_bytes, cmn_err_t *err);

#endif
