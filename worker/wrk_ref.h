/*  wrk_ref: CPU reference implementations of the wrk_kernels operations,
 *  for kernel tests and for bench's output checks.
 *
 *  Each function computes the same mathematical result as its kernel
 *  (same layouts, same parameters, see wrk_kernels.h), accumulating sums,
 *  means and exponentials in double and rounding once to float at the end,
 *  so that its own error is negligible next to the kernel's bound. They are
 *  plain loops, written to be obviously right, not fast.
 *
 *  Pointers are the caller's; outputs must not overlap inputs unless a
 *  function says so.
 */
#ifndef WRK_REF_H
#define WRK_REF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "wrk_kernels.h"

//  Fills X[0..n) with uniform values in [LO, HI) from a generator seeded
//  with SEED (splitmix64): the same seed gives the same values everywhere.
void wrk_ref_fill (float *x, size_t n, uint64_t seed, float lo, float hi);

//  Y = X W^T with W quantized: dequantizes each row with
//  cmn_quant_dequantize_row, then sums in double. X [batch, cols],
//  Y [batch, rows]. When ABSDOT is not NULL it receives, per output,
//  sum |w x| (the scale of float32 rounding error in any summation
//  order). Returns 0, or -1 when TYPE/COLS is unsupported or memory runs
//  out.
int wrk_ref_gemm_q (int type, const void *W, const float *X, float *Y,
                    int rows, int cols, int batch, double *absdot);

//  How far x's rounding to int8 (wrk_kernels_quant_i8: per block of 32,
//  dx = amax / 127, error at most dx / 2 per value) can move each of
//  ROWS outputs of W x, W as for wrk_ref_gemm_q: sum over blocks of
//  dx / 2 sum |w|, with a 1e-6 margin for the device's division, into
//  SLACK [ROWS]. Returns 0, or -1 as wrk_ref_gemm_q.
int wrk_ref_i8_slack (int type, const void *W, const float *x, int rows, int cols,
                      double *slack);

//  The activation ACT (wrk_act_t) of V, in double.
double wrk_ref_act (int act, double v);

//  Row normalisations; W and B may be NULL (1 and 0).
void wrk_ref_rms_norm (const float *x, const float *w, float *y, int rows,
                       int n, float eps, int act);
void wrk_ref_layer_norm (const float *x, const float *w, const float *b,
                         float *y, int rows, int n, float eps, int act);

//  Row softmax of SCALE * x with the causal mask of wrk_kernels_softmax.
void wrk_ref_softmax (const float *x, float *y, int rows, int n, float scale,
                      int q_len, int n_past);

//  Rotary embedding; Y may be X when the strides are the same.
void wrk_ref_rope (const float *x, float *y, const int32_t *pos,
                   const wrk_rope_t *shape);

//  Causal attention with a two-pass softmax.
void wrk_ref_attention (const float *Q, const float *K, const float *V,
                        float *O, const wrk_attn_t *shape);

//  Elementwise operations of elementwise.cl; Y may be A.
void wrk_ref_add (const float *a, const float *b, float *y, size_t n, size_t bn);
void wrk_ref_mul (const float *a, const float *b, float *y, size_t n, size_t bn);
void wrk_ref_scale (const float *a, float *y, size_t n, float s);
void wrk_ref_silu (const float *a, float *y, size_t n);
void wrk_ref_gelu (const float *a, float *y, size_t n);
void wrk_ref_swiglu (const float *a, const float *b, float *y, size_t n);

//  b = a^T, a [rows, cols].
void wrk_ref_transpose (const float *a, float *b, int rows, int cols);

//  im2col of wrk_kernels_im2col. Returns -1 for invalid geometry.
int wrk_ref_im2col (int layout, const float *in, float *col, const wrk_conv_t *cv);

//  Direct NHWC convolution of wrk_kernels_conv2d_nhwc; SCALE, BIAS may be
//  NULL. ABSDOT, when not NULL, receives per output sum |w x| * |scale| +
//  |bias|. Returns -1 for invalid geometry.
int wrk_ref_conv2d_nhwc (const float *in, const float *w, const float *scale,
                         const float *bias, float *y, const wrk_conv_t *cv,
                         bool relu, double *absdot);

#endif
