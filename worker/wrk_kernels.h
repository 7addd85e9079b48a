/*  wrk_kernels: enqueues the compute kernels of kernels/ (qmatmul, norm,
 *  softmax, rope, attention, elementwise, transpose, conv) on a
 *  wrk_device_t.
 *
 *  Every launcher has the same contract:
 *    - buffers are the caller's; the launcher does not retain or release
 *      them and they must stay alive until the kernel has finished;
 *    - the kernel is enqueued on the device's in-order queue and the call
 *      returns without waiting; when EVENT is not NULL it receives the
 *      kernel's profiling event, which the caller releases;
 *    - returns 0, or -1 with ERR set: RXQ_E_INVAL for a shape the kernel
 *      does not accept or a buffer smaller than the shape needs (each
 *      buffer's CL_MEM_SIZE is checked, so a wrong size never turns into
 *      an out-of-bounds write on the device), RXQ_E_LIMIT for sizes past
 *      what the kernels index (2^30 elements), RXQ_E_OPENCL or
 *      RXQ_E_OPENCL_BUILD from the driver (through wrk_device_cl_error and
 *      wrk_device_program). On failure *EVENT is NULL.
 *  Layouts, parameter meanings and error bounds are documented in each
 *  kernel file's opening comment and in docs/kernels.md.
 *
 *  Tuning parameters (work-group sizes, tiles) are chosen per device by
 *  wrk_tune (its table row and any installed override, clamped to the
 *  device's limits; docs/tuning.md) and passed to the program as -D
 *  options.
 */
#ifndef WRK_KERNELS_H
#define WRK_KERNELS_H
#include <CL/cl.h>
#include <stdbool.h>
#include <stddef.h>
#include "cmn_error.h"
#include "wrk_device.h"

//  Fused epilogues of the normalisations (values match kernels/norm.cl).
typedef enum {
    WRK_ACT_NONE = 0,           // identity
    WRK_ACT_GELU = 1,           // GELU, tanh approximation (ggml_gelu)
    WRK_ACT_RELU = 2            // max (x, 0)
} wrk_act_t;

//  Rotary embedding modes (ggml's numbers).
typedef enum {
    WRK_ROPE_NORMAL = 0,        // llama: rotate pairs (2i, 2i + 1)
    WRK_ROPE_NEOX = 2           // GPT-NeoX: rotate pairs (i, i + n_dims / 2)
} wrk_rope_mode_t;

//  Image layouts for im2col.
typedef enum {
    WRK_LAYOUT_NCHW = 0,        // [N, C, H, W]
    WRK_LAYOUT_NHWC = 1         // [N, H, W, C]
} wrk_layout_t;

//  Shape of a rotary embedding launch. Element d of (token t, head h) is
//  x[t * xs_tok + h * xs_head + d], likewise for y.
typedef struct {
    int n_tokens;               // tokens, entries of pos
    int n_heads;                // heads per token
    int head_dim;               // floats per head, even
    int n_dims;                 // rotated floats per head, even, <= head_dim
    int mode;                   // wrk_rope_mode_t
    float freq_base;            // theta base, 10000 for llama
    int xs_tok, xs_head;        // strides of x, floats
    int ys_tok, ys_head;        // strides of y, floats
} wrk_rope_t;

//  Shape of a causal attention launch over a KV cache.
typedef struct {
    int n_q_heads;              // query heads
    int n_kv_heads;             // key/value heads; divides n_q_heads
    int n_tokens;               // queries per head in this batch
    int head_dim;               // floats per head, multiple of 4
    int ctx;                    // rows per head allocated in the K/V cache
    int n_past;                 // cache rows before this batch; query t is
                                // at position n_past + t
    float scale;                // score scale, usually 1 / sqrt (head_dim)
    int q_rows;                 // rows between heads of Q and O; 0 means
                                // n_tokens (Q, O are a window of a batch)
    size_t q_off;               // floats before query (0, 0) in Q and O
    size_t kv_off;              // floats before head 0 in K and V
} wrk_attn_t;

//  Geometry of a 2D convolution.
typedef struct {
    int n;                      // images
    int c;                      // input channels
    int h, w;                   // input height, width, pixels
    int oc;                     // output channels (conv2d only)
    int kh, kw;                 // kernel height, width, taps
    int stride_h, stride_w;     // strides, pixels, >= 1
    int pad_h, pad_w;           // zero padding on each side, pixels, >= 0
    int dil_h, dil_w;           // dilations, >= 1
} wrk_conv_t;

//  Output height and width of CV into *OH and *OW. Returns 0, or -1 when
//  the geometry is invalid (a size, stride or dilation below 1, a negative
//  pad) or leaves no output pixel.
int wrk_kernels_conv_out (const wrk_conv_t *cv, int *oh, int *ow);

//  y = W x. W: ROWS rows of COLS values of quant TYPE (GGML_TYPE_Q4_0,
//  Q4_1, Q8_0, Q4_K, Q6_K) in GGUF's block layout; x [COLS], y [ROWS]
//  float32. COLS must be a multiple of the type's block size.
int wrk_kernels_gemv_q (wrk_device_t *dev, int type, cl_mem W, cl_mem x,
                        cl_mem y, int rows, int cols, cl_event *event,
                        cmn_err_t *err);

//  Y = X W^T for BATCH rows of X: X [BATCH, COLS], Y [BATCH, ROWS]
//  float32; W as for wrk_kernels_gemv_q.
int wrk_kernels_gemm_q (wrk_device_t *dev, int type, cl_mem W, cl_mem X,
                        cl_mem Y, int rows, int cols, int batch,
                        cl_event *event, cmn_err_t *err);

//  x [COLS] float32 rounded to int8 per block of 32 for
//  wrk_kernels_gemv_q_i8 (dx = amax / 127, q = rint (x / dx)): XQ [COLS]
//  bytes, XD [COLS / 32] float32 scales, XS [COLS / 32] int32 sums of each
//  block's q. COLS must be a multiple of 32. One x serves any number of
//  products.
int wrk_kernels_quant_i8 (wrk_device_t *dev, cl_mem x, cl_mem xq, cl_mem xd,
                          cl_mem xs, int cols, cl_event *event, cmn_err_t *err);

//  y = W x', x' the int8 x of wrk_kernels_quant_i8 (XQ, XD, XS), by exact
//  integer dot products per block (qmatmul.cl, "GEMV on int8 x"): the
//  method of llama.cpp's GPU backends, faster than wrk_kernels_gemv_q on
//  a GPU and less exact (x's rounding, at most dx / 2 per value). TYPE:
//  GGML_TYPE_Q4_0, Q4_1, Q8_0, Q4_K or Q6_K, else RXQ_E_UNSUPPORTED (also
//  on a big-endian device); COLS a multiple of the type's block size.
int wrk_kernels_gemv_q_i8 (wrk_device_t *dev, int type, cl_mem W, cl_mem xq,
                           cl_mem xd, cl_mem xs, cl_mem y, int rows, int cols,
                           cl_event *event, cmn_err_t *err);

//  Whether wrk_kernels_gemv_q_i8 uses the device's int8 dot product
//  instruction (NVIDIA's dp4a through inline PTX, after a self-test the
//  first time) rather than portable mad24 chains. Decided once per device.
bool wrk_kernels_i8_dot (wrk_device_t *dev);

//  RMSNorm of each of ROWS rows of N floats, times weight W [N] (NULL: 1),
//  then ACT (wrk_act_t). Y may be X.
int wrk_kernels_rms_norm (wrk_device_t *dev, cl_mem x, cl_mem w, cl_mem y,
                          int rows, int n, float eps, int act,
                          cl_event *event, cmn_err_t *err);

//  LayerNorm of each row, times W (NULL: 1), plus B (NULL: 0), then ACT.
int wrk_kernels_layer_norm (wrk_device_t *dev, cl_mem x, cl_mem w, cl_mem b,
                            cl_mem y, int rows, int n, float eps, int act,
                            cl_event *event, cmn_err_t *err);

//  Softmax of each row of SCALE * x; with Q_LEN > 0, row r is query r %
//  Q_LEN at position N_PAST + r % Q_LEN and later columns are masked (0).
int wrk_kernels_softmax (wrk_device_t *dev, cl_mem x, cl_mem y, int rows,
                         int n, float scale, int q_len, int n_past,
                         cl_event *event, cmn_err_t *err);

//  Rotary embedding of x into y (may be x with the same strides) at the
//  positions POS (int32 [n_tokens]).
int wrk_kernels_rope (wrk_device_t *dev, cl_mem x, cl_mem y, cl_mem pos,
                      const wrk_rope_t *shape, cl_event *event,
                      cmn_err_t *err);

//  Causal attention: Q, O [n_q_heads, n_tokens, head_dim]; K, V
//  [n_kv_heads, ctx, head_dim]; head_dim at most 256. With q_rows, q_off
//  and kv_off set, Q and O are [n_q_heads, q_rows, head_dim] from q_off
//  (rows 0 .. n_tokens - 1 of each head used) and K, V start at kv_off.
int wrk_kernels_attention (wrk_device_t *dev, cl_mem Q, cl_mem K, cl_mem V,
                           cl_mem O, const wrk_attn_t *shape,
                           cl_event *event, cmn_err_t *err);

//  llama.cpp-compatible numerics (kernels/ggml.cl; wrk_llm's ggml mode):
//  ggml's CPU operations in ggml's evaluation order.
//
//  Y [ROWS, COLS] = X rounded as ggml's CPU backend rounds an activation
//  row before its product with a weight of quant TYPE (the type's
//  vec_dot_type, dequantized): Q8_0 blocks for Q4_0, Q8_0 and Q4_1, Q8_K
//  for Q4_K and Q6_K. COLS a multiple of the block (32; 256 for Q8_K). Y
//  may be X. (Q4_1 products are reproduced exactly by the two below.)
int wrk_kernels_ggml_round_act (wrk_device_t *dev, int type, cl_mem x, cl_mem y,
                                int rows, int cols, cl_event *event, cmn_err_t *err);

//  Q8_1 blocks of X [ROWS, COLS] into QS (int8 [ROWS * COLS]), D and S (float
//  [ROWS * COLS / 32]: fp16 (d), fp16 (d * sum q)).
int wrk_kernels_ggml_quant_q8_1 (wrk_device_t *dev, cl_mem x, cl_mem qs, cl_mem d, cl_mem s,
                                 int rows, int cols, cl_event *event, cmn_err_t *err);

//  Y [BATCH, ROWS] = the Q4_1 matrix W [ROWS, COLS] times BATCH Q8_1 rows
//  (wrk_kernels_ggml_quant_q8_1's), in ggml_vec_dot_q4_1_q8_1's order.
int wrk_kernels_ggml_mm_q4_1 (wrk_device_t *dev, cl_mem W, cl_mem qs, cl_mem d, cl_mem s,
                              cl_mem y, int rows, int cols, int batch, cl_event *event,
                              cmn_err_t *err);

//  RMSNorm times W as ggml computes it (double sum); Y may be X.
int wrk_kernels_ggml_rms_norm (wrk_device_t *dev, cl_mem x, cl_mem w, cl_mem y, int rows,
                               int n, float eps, cl_event *event, cmn_err_t *err);

//  y = silu (g) * u with ggml's vectorised expf.
int wrk_kernels_ggml_swiglu (wrk_device_t *dev, cl_mem g, cl_mem u, cl_mem y, size_t n,
                             cl_event *event, cmn_err_t *err);

//  RoPE as wrk_kernels_rope (shape->freq_base unused), with cos and sin
//  from CS [n_tokens, n_dims / 2, 2], computed by the caller as ggml does.
int wrk_kernels_ggml_rope (wrk_device_t *dev, cl_mem x, cl_mem y, cl_mem cs,
                           const wrk_rope_t *shape, cl_event *event, cmn_err_t *err);

//  Attention as ggml's non-flash CPU path in its evaluation order: GEN
//  when llama.cpp's batch held one token (ggml_vec_dot_f16), else
//  tinyBLAS's order. SCRATCH: n_q_heads * n_tokens * ctx floats.
//  K and V must hold F16-rounded values (wrk_kernels_ggml_round_f16).
int wrk_kernels_attention_ggml (wrk_device_t *dev, cl_mem Q, cl_mem K, cl_mem V,
                                cl_mem O, cl_mem scratch, const wrk_attn_t *shape,
                                int gen, cl_event *event, cmn_err_t *err);

//  x = fp16 (x), round to nearest even, for N floats in place.
int wrk_kernels_ggml_round_f16 (wrk_device_t *dev, cl_mem x, size_t n,
                                cl_event *event, cmn_err_t *err);

//  y[i] = a[i] + b[i % bn] and a[i] * b[i % bn], for i < n; n % bn == 0
//  (bn = n: no broadcast; bn = row length: b added to every row).
int wrk_kernels_add (wrk_device_t *dev, cl_mem a, cl_mem b, cl_mem y,
                     size_t n, size_t bn, cl_event *event, cmn_err_t *err);
int wrk_kernels_mul (wrk_device_t *dev, cl_mem a, cl_mem b, cl_mem y,
                     size_t n, size_t bn, cl_event *event, cmn_err_t *err);

//  y = s * a; y = silu (a); y = gelu (a) (tanh form); y = silu (a) * b.
int wrk_kernels_scale (wrk_device_t *dev, cl_mem a, cl_mem y, size_t n,
                       float s, cl_event *event, cmn_err_t *err);
int wrk_kernels_silu (wrk_device_t *dev, cl_mem a, cl_mem y, size_t n,
                      cl_event *event, cmn_err_t *err);
int wrk_kernels_gelu (wrk_device_t *dev, cl_mem a, cl_mem y, size_t n,
                      cl_event *event, cmn_err_t *err);
int wrk_kernels_swiglu (wrk_device_t *dev, cl_mem a, cl_mem b, cl_mem y,
                        size_t n, cl_event *event, cmn_err_t *err);

//  b = a^T: a [rows, cols] -> b [cols, rows], float32, not overlapping.
int wrk_kernels_transpose (wrk_device_t *dev, cl_mem a, cl_mem b, int rows,
                           int cols, cl_event *event, cmn_err_t *err);

//  Column matrix of the images IN (LAYOUT, wrk_layout_t) for geometry CV:
//  col [n*OH*OW, c*kh*kw], column order (c, kh, kw) for NCHW and
//  (kh, kw, c) for NHWC. cv->oc is ignored.
int wrk_kernels_im2col (wrk_device_t *dev, int layout, cl_mem in, cl_mem col,
                        const wrk_conv_t *cv, cl_event *event,
                        cmn_err_t *err);

//  Direct convolution of NHWC images IN with filters W [oc, kh, kw, c]
//  into Y [n, OH, OW, oc], times SCALE [oc] (NULL: 1) plus BIAS [oc]
//  (NULL: 0), then max (y, 0) when RELU.
int wrk_kernels_conv2d_nhwc (wrk_device_t *dev, cl_mem in, cl_mem w,
                             cl_mem scale, cl_mem bias, cl_mem y,
                             const wrk_conv_t *cv, bool relu,
                             cl_event *event, cmn_err_t *err);

#endif
