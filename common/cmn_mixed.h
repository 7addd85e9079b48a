/*  cmn_mixed: mixed-precision planning for `rxq quantize --type mixed`.
 *  Pure CPU, no OpenCL: a sensitivity measure per (tensor, candidate type)
 *  and a solver that picks one type per tensor so that the model fits a
 *  byte budget with the least total weighted error.
 *
 *  Sensitivity (docs/quantize.md): the relative quantization error
 *      e(t, q) = ||W_s - Q_q(W_s)||^2 / ||W_s||^2
 *  of a sample W_s of tensor t's rows, quantized and dequantized with the
 *  CPU reference (cmn_quant, bit-identical with the device), times an
 *  importance weight for the tensor's role (cmn_mixed_importance). The
 *  relative error is not scaled by the tensor's size: the noise a layer
 *  adds to its output grows with its weights' relative error, whatever the
 *  matrix's size, so small tensors with large influence (attn_v, output)
 *  get bits cheaply, as llama.cpp's hand-made mixes do.
 *
 *  Solver: a multiple-choice knapsack, minimise sum of weighted errors
 *  subject to sum of bytes <= budget. Lagrangian relaxation on each
 *  tensor's lower convex hull of (bytes, error), taken greedily in order
 *  of error saved per byte until the next step does not fit, then a
 *  repair pass that spends what is left on the best single-tensor
 *  changes that still fit. O(S log S) for S candidate choices in all.
 */
#ifndef CMN_MIXED_H
#define CMN_MIXED_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_error.h"

//  Most candidate types one tensor may have.
#define CMN_MIXED_MAX_CHOICES 12

//  One tensor of the plan. The caller fills name .. fixed; the solver
//  reads them and writes nothing here.
typedef struct {
    const char *name;               // tensor name, for messages (borrowed)
    int n_choices;                  // 1 .. CMN_MIXED_MAX_CHOICES
    int type [CMN_MIXED_MAX_CHOICES];       // GGML type of each choice
    uint64_t bytes [CMN_MIXED_MAX_CHOICES]; // bytes the tensor takes at that type
    double error [CMN_MIXED_MAX_CHOICES];   // weighted error at that type, >= 0
} cmn_mixed_tensor_t;

//  Importance weight of a tensor from its name (llama.cpp GGUF names and
//  Hugging Face names): output / lm_head 4, attn_v / v_proj 2, ffn_down /
//  down_proj 2, attn_output / o_proj 1.5, everything else 1. These follow
//  the tensors llama.cpp's own mixes give more bits (llama_tensor_get_type).
double cmn_mixed_importance (const char *name);

//  The candidate types for a 2-D tensor of row length NE0: those of
//  q4_0 q4_1 q5_0 q5_1 q8_0 q4_K q5_K q6_K f16 whose block divides NE0, in
//  that order, into TYPES (room for CMN_MIXED_MAX_CHOICES). Returns the count.
int cmn_mixed_candidates (uint64_t ne0, int *types);

//  Relative error ||x - Q(x)||^2 / ||x||^2 of ROWS rows of COLS floats at X
//  quantized to TYPE with cmn_quant (0 when x is all zeros). Returns 0, or
//  -1 with ERR: RXQ_E_INVAL when TYPE cannot hold rows of COLS values or
//  a value is NaN or infinite, RXQ_E_NOMEM.
int cmn_mixed_rel_error (int type, const float *x, size_t rows, size_t cols,
                         double *rel, cmn_err_t *err);

//  Picks CHOICE[i] (an index into T[i]'s choices) for each of the N
//  tensors so that OVERHEAD + sum bytes <= BUDGET with the least sum of
//  errors the method finds. Tensors with one choice are fixed. Returns 0
//  (and the totals in *BYTES and *ERROR when not NULL), or -1 with ERR:
//  RXQ_E_PARAM "budget 3.50 GB is below the smallest possible size 3.90
//  GB (every tensor at its smallest candidate type, kept ones as kept)"
//  when even the smallest choices do not fit; RXQ_E_NOMEM.
int cmn_mixed_solve (const cmn_mixed_tensor_t *t, size_t n, uint64_t budget,
                     uint64_t overhead, int *choice, uint64_t *bytes, double *error,
                     cmn_err_t *err);

//  Formats BYTES as "3.50 GB" / "12.3 MB" / "512 B" (decimal units) into
//  BUF of SIZE bytes; returns BUF.
const char *cmn_mixed_fmt_bytes (uint64_t bytes, char *buf, size_t size);

#endif
