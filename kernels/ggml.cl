/*  ggml.cl: llama.cpp's CPU backend (ggml-cpu, x86 with AVX2 / AVX-512 and
 *  VNNI) reproduced bit for bit, for the forward pass's llama.cpp-compatible
 *  numerics (wrk_llm, WRK_LLM_NUMERICS_GGML; docs/llm.md "Correctness").
 *
 *  Why bit for bit and not only "the same roundings": ggml rounds every
 *  activation row to 8 bits before a quantized product, and K, V, Q and
 *  the attention probabilities to F16. A rounding turns a difference of
 *  one float ulp upstream into a whole 8-bit or F16 step now and then, and
 *  those steps cascade through the blocks: reproducing the roundings with
 *  another summation order gave logits as far from llama.cpp's (mean
 *  |diff| 0.1..0.3) as plain float32 (measured). So everything upstream of
 *  a rounding follows ggml's operations in ggml's order:
 *
 *  ggml_quant_q8_1 (x float[nb * 32], qs char[nb * 32], d, s float[nb], nb)
 *      quantize_row_q8_1 (x86): per block of 32, amax = max |x|, d = amax
 *      / 127, q = round-half-even (x * (127 / amax)); d and s = d * sum q
 *      stored as fp16 (given here as floats).
 *  ggml_mm_q4_1 (W block_q4_1 [rows * nb], qs, d, s, y float[batch * rows],
 *                rows, nb, batch)
 *      ggml_vec_dot_q4_1_q8_1 (AVX2 + VNNI): per block, 8 integer lanes of
 *      4 products each, acc_i = fma (d_w * d_x, lane_i, acc_i); minimum
 *      terms summs = fma (m, s, summs) (GCC contracts summs += m * s);
 *      y = hsum_float_8 (acc) + summs. One work-item per (row, token).
 *  ggml_rms_norm (x, w, y, rows, n, eps)
 *      ggml_compute_forward_rms_norm_f32: squares summed in double,
 *      scale = 1 / sqrtf ((float) (sum / n) + eps), y = x * scale * w.
 *  ggml_swiglu (g, u, y, n)
 *      ggml_vec_swiglu_f32 (AVX-512): g / (1 + v_expf (-g)) * u, with
 *      ggml_v_expf's polynomial.
 *  ggml_rope (x, strides, y, strides, cs, head_dim, n_dims, mode)
 *      rotate_pairs with the host's table of cosf / sinf (ggml_rope_cache_
 *      init's theta recurrence; wrk_llm computes it with the C library).
 *  attention_ggml (as attention.cl's arguments, then gen, scratch)
 *      the non-flash path: KQ = K (f16) . fp16 (Q); softmax of scale * KQ
 *      with v_expf, 16-key chunks summed in float then in double,
 *      p = e * (float) (1 / sum); KQV = V (f16) . fp16 (p). The dot products
 *      in ggml_vec_dot_f16's order when llama.cpp's batch held one token
 *      (GEN), else tinyBLAS's (llamafile sgemm). One work-item per (query,
 *      head); SCRATCH holds each one's ctx scores.
 *  ggml_round_f16 (x float[n], n)
 *      x = fp16 (x) in place: the F16 KV cache, on entry.
 *  ggml_round_q8 (x, y, n_blocks), ggml_round_q8_k (x, y, n_blocks)
 *      for weight types other than Q4_1: x' = the dequantized Q8_0 block
 *      values (Q4_0, Q8_0 weights) or Q8_K's (quantize_row_q8_K_ref:
 *      blocks of 256, iscale = -127 / the largest-magnitude element,
 *      q = min (127, round (iscale * x)), x' = q / iscale), to be
 *      multiplied by qmatmul.cl in float32: the roundings, not the order.
 *
 *  Requires IEEE float32 with denormals, correctly rounded division and
 *  sqrt (the host builds with -cl-fp32-correctly-rounded-divide-sqrt),
 *  fma, and cl_khr_fp64 for the norm's and the softmax's double sums
 *  (without it they are float sums and no longer bit-exact). No
 *  contraction into FMA other than the explicit fma() calls (pragma
 *  below). binary16 conversions by integer code (cmn_quant_blocks.h),
 *  so no driver's vstore_half rounding mode matters.
 */
#pragma OPENCL FP_CONTRACT OFF

//  F rounded to binary16 (nearest even) and back, by integer code
//  (cmn_quant_blocks.h).
float
gg_half (float f)
{
    return cmn_f16_bits_to_f32 (cmn_f32_to_f16_bits (f));
}

__kernel void
ggml_round_q8 (const __global float *x, __global float *y, uint n_blocks)
{
    const uint b = get_global_id (0);
    if (b >= n_blocks)
        return;
    x += (size_t) b * 32;
    y += (size_t) b * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        amax = fmax (amax, fabs (x [j]));
    const float d16 = gg_half (amax / 127.0f);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int j = 0; j < 32; j++)
        y [j] = d16 * (float) (int) rint (x [j] * id);     // q is an integer: no -0
}

__kernel void
ggml_round_q8_k (const __global float *x, __global float *y, uint n_blocks)
{
    const uint b = get_global_id (0);
    if (b >= n_blocks)
        return;
    x += (size_t) b * 256;
    y += (size_t) b * 256;
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < 256; j++) {
        const float ax = fabs (x [j]);
        if (ax > amax) {
            amax = ax;
            max = x [j];
        }
    }
    if (amax == 0.0f) {
        for (int j = 0; j < 256; j++)
            y [j] = 0.0f;
        return;
    }
    const float iscale = -127.0f / max;
    const float d = 1.0f / iscale;
    for (int j = 0; j < 256; j++) {
        const int q = min (127, (int) rint (iscale * x [j]));
        y [j] = d * (float) q;
    }
}

__kernel void
ggml_round_f16 (__global float *x, uint n)
{
    const uint i = get_global_id (0);
    if (i < n)
        x [i] = gg_half (x [i]);
}

//  ---------------------------------------------------------------------------
//  The operations that feed a rounding, in ggml-cpu's own evaluation order
//  (x86 AVX2 / AVX-512 kernels), for Q4_1 models

//  Q8_1 blocks of x (quantize_row_q8_1, x86): int8 values into QS, fp16 (d)
//  into D and fp16 (d * sum q) into S, as floats.
__kernel void
ggml_quant_q8_1 (const __global float *x, __global char *qs, __global float *dd,
                 __global float *ss, uint n_blocks)
{
    const uint b = get_global_id (0);
    if (b >= n_blocks)
        return;
    x += (size_t) b * 32;
    qs += (size_t) b * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        amax = fmax (amax, fabs (x [j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        const int q = (int) rint (x [j] * id);
        sum += q;
        qs [j] = (char) q;
    }
    dd [b] = gg_half (d);
    ss [b] = gg_half (d * (float) sum);
}

//  Horizontal sums in the orders of the x86 intrinsics ggml uses.
//  hsum_float_8 (quants.c): ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)).
float
gg_hsum8 (const float *a)
{
    const float r0 = a [4] + a [0], r1 = a [5] + a [1], r2 = a [6] + a [2], r3 = a [7] + a [3];
    return (r0 + r2) + (r1 + r3);
}

//  _mm512_reduce_add_ps as GCC implements it: halves, quarters, then
//  (t0 + t2) + (t1 + t3).
float
gg_reduce16 (const float *a)
{
    float t [8];
    for (int i = 0; i < 8; i++)
        t [i] = a [8 + i] + a [i];
    const float u0 = t [4] + t [0], u1 = t [5] + t [1], u2 = t [6] + t [2], u3 = t [7] + t [3];
    return (u0 + u2) + (u1 + u3);
}

//  Y [T, rows] = ggml_vec_dot_q4_1_q8_1 of each weight row with each
//  token's Q8_1 row (x86 AVX2 with VNNI): per block, lane i (0..7) of the
//  integer products sums elements 4i .. 4i+3 and accumulates
//  fma (d_w * d_x, lane, acc_i); the minimum terms accumulate
//  fma (m, s, summs) (GCC contracts summs += m * s); result hsum8 (acc) +
//  summs.
__kernel void
ggml_mm_q4_1 (const __global block_q4_1 *W, const __global char *qs, const __global float *dd,
              const __global float *ss, __global float *y, int rows, int nb, int batch)
{
    const int r = get_global_id (0);
    const int t = get_global_id (1);
    if (r >= rows || t >= batch)
        return;
    const __global block_q4_1 *w = W + (size_t) r * nb;
    const __global char *q = qs + (size_t) t * nb * 32;
    float8 acc = 0.0f;
    float summs = 0.0f;
    for (int b = 0; b < nb; b++) {
        const float d0 = vload_half (0, (const __global half *) &w [b].d);
        const float m0 = vload_half (0, (const __global half *) &w [b].m);
        const float d1 = dd [(size_t) t * nb + b];
        summs = fma (m0, ss [(size_t) t * nb + b], summs);
        const float d01 = d0 * d1;
        //  Values 0..15 are the low nibbles, 16..31 the high ones; lane i
        //  sums the products of values 4i .. 4i+3 (exact integers).
        const uchar16 wq = vload16 (0, (const __global uchar *) w [b].qs);
        const __global char *qb = q + (size_t) b * 32;
        const int16 plo = convert_int16 (wq & (uchar16) 0x0f) * convert_int16 (vload16 (0, qb));
        const int16 phi = convert_int16 (wq >> (uchar16) 4) * convert_int16 (vload16 (1, qb));
        const int8 plo2 = plo.even + plo.odd, phi2 = phi.even + phi.odd;
        const int8 lanes = (int8) (plo2.even + plo2.odd, phi2.even + phi2.odd);
        acc = fma ((float8) d01, convert_float8 (lanes), acc);
    }
    float a [8];
    vstore8 (acc, 0, a);
    y [(size_t) t * rows + r] = gg_hsum8 (a) + summs;
}

//  RMSNorm as ggml_compute_forward_rms_norm_f32 (fused with the weight):
//  sum of float squares in double, mean = (float) (sum / n), scale =
//  1 / sqrtf (mean + eps), y = x * scale * w. One work-item per row.
#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#define GG_SUM double
#else
#define GG_SUM float            // no fp64: float sums (not bit-exact)
#endif
__kernel void
ggml_rms_norm (const __global float *x, const __global float *w, __global float *y, int rows,
               int n, float eps)
{
    const int r = get_global_id (0);
    if (r >= rows)
        return;
    x += (size_t) r * n;
    y += (size_t) r * n;
    GG_SUM sum = 0;
    for (int i = 0; i < n; i++)
        sum += (GG_SUM) (x [i] * x [i]);
    const float mean = (float) (sum / (GG_SUM) n);
    const float scale = 1.0f / sqrt (mean + eps);
    for (int i = 0; i < n; i++)
        y [i] = x [i] * scale * w [i];
}

//  expf of ggml_v_expf (vec.h, AVX-512 / AVX2 form: ARM's polynomial;
//  1.45 + 0.5 ulp), so results match llama.cpp's bit for bit.
float
gg_v_expf (float x)
{
    const float r = 0x1.8p23f;
    const float z = fma (x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fma (-n, 0x1.7f7d1cp-20f, fma (-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fma (fma (fma (0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                              fma (0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                         u, fma (0x1.ffffecp-1f, b, 1.0f));
    if (fabs (n) > 192.0f)
        return n <= 0.0f ? 0.0f : INFINITY;
    return ldexp (j, (int) n);
}

//  y = silu (g) * u as ggml_vec_swiglu_f32 (AVX-512): g / (1 + v_expf (-g)).
__kernel void
ggml_swiglu (const __global float *g, const __global float *u, __global float *y, uint n)
{
    const uint i = get_global_id (0);
    if (i >= n)
        return;
    const float x = g [i];
    const float e = gg_v_expf (0.0f - x);
    y [i] = (x / (1.0f + e)) * u [i];
}

//  RoPE as ggml_compute_forward_rope_flt with the host's cos/sin table
//  CS [n_tokens, n_dims / 2, 2] (ggml_rope_cache_init: theta = p, then
//  theta *= theta_scale per pair; cosf, sinf of glibc). Layout as rope.cl.
//  x0 c - x1 s and x0 s + x1 c are formed as GCC contracts them in
//  rotate_pairs (-ffp-contract=fast, FMA): fma (x0, c, -(x1 s)) and
//  fma (x0, s, x1 c). (Measured: without the contraction, 2 of the 5
//  reference prompts diverge from llama.cpp within 32 tokens.)
__kernel void
ggml_rope (const __global float *x, int xs_tok, int xs_head,
           __global float *y, int ys_tok, int ys_head,
           const __global float *cs, int head_dim, int n_dims, int mode)
{
    const int i = get_global_id (0);
    const int h = get_global_id (1);
    const int t = get_global_id (2);
    if (2 * i >= head_dim)
        return;
    x += (size_t) t * xs_tok + (size_t) h * xs_head;
    y += (size_t) t * ys_tok + (size_t) h * ys_head;
    const int half_dims = n_dims / 2;
    if (i >= half_dims) {
        const int d = n_dims + 2 * (i - half_dims);
        const float a = x [d], b = x [d + 1];
        y [d] = a;
        y [d + 1] = b;
        return;
    }
    const int i0 = mode == 2 ? i : 2 * i;
    const int i1 = mode == 2 ? i + half_dims : 2 * i + 1;
    const float c = cs [((size_t) t * half_dims + i) * 2];
    const float s = cs [((size_t) t * half_dims + i) * 2 + 1];
    const float a = x [i0], b = x [i1];
    y [i0] = fma (a, c, -(b * s));
    y [i1] = fma (a, s, b * c);
}

//  Attention as ggml's non-flash CPU path, bit for bit: one work-item per
//  (query, head). Q rounded to F16; K, V hold F16 values. GEN != 0: the
//  ubatch had one token, so llama.cpp's products ran ggml_vec_dot_f16 (4
//  accumulators of 16 lanes, element e in accumulator (e % 64) / 16, lane
//  e % 16; reduced a0 + a2, a1 + a3, then those, then the 16 lanes);
//  GEN == 0: tinyBLAS (16 lanes, element e in lane e % 16, fma in order,
//  then the 16 lanes). Softmax over keys in chunks of 16 from key 0:
//  v_expf (scale * kq - max), each chunk's 16 values reduced in float and
//  added in double; p = exp * (float) (1 / sum); P rounded to F16.
//  NDRange: global (n_tokens, n_q_heads).
float
gg_dot_gen (const float *p, int n)      // p: products, n a multiple of 16 (zero padded)
{
    float a [4][16];
    for (int j = 0; j < 4; j++)
        for (int c = 0; c < 16; c++)
            a [j][c] = 0.0f;
    for (int e = 0; e < n; e++)
        a [(e % 64) / 16][e % 16] += p [e];
    for (int c = 0; c < 16; c++) {
        a [0][c] = a [0][c] + a [2][c];
        a [1][c] = a [1][c] + a [3][c];
        a [0][c] = a [0][c] + a [1][c];
    }
    return gg_reduce16 (a [0]);
}

float
gg_dot_blas (const float *p, int n)
{
    float a [16];
    for (int c = 0; c < 16; c++)
        a [c] = 0.0f;
    for (int e = 0; e < n; e++)
        a [e % 16] += p [e];
    return gg_reduce16 (a);
}

__kernel void
attention_ggml (const __global float *Q, const __global float *K,
                      const __global float *V, __global float *O,
                      int n_tokens, int head_dim, int ctx, int n_past, int group,
                      float scale, int q_rows, ulong q_off, ulong kv_off, int gen,
                      __global float *scratch)
{
    const int t = get_global_id (0);
    const int h = get_global_id (1);
    if (t >= n_tokens)
        return;
    const size_t qoff = q_off + ((size_t) h * q_rows + t) * head_dim;
    const __global float *Kh = K + kv_off + (size_t) (h / group) * ctx * head_dim;
    const __global float *Vh = V + kv_off + (size_t) (h / group) * ctx * head_dim;
    //  This work-item's row of scores, then probabilities: ctx floats.
    __global float *sc = scratch + ((size_t) h * n_tokens + t) * ctx;
    const int n_kv = n_past + t + 1;
    const int n_pad = (n_kv + 15) / 16 * 16;
    float q [256], prod [256];
    for (int d = 0; d < head_dim; d++)
        q [d] = gg_half (Q [qoff + d]);
    float mx = -INFINITY;
    for (int j = 0; j < n_kv; j++) {
        const __global float *kr = Kh + (size_t) j * head_dim;
        for (int d = 0; d < head_dim; d++)
            prod [d] = q [d] * kr [d];          // exact: F16 x F16
        const float kq = gen ? gg_dot_gen (prod, head_dim) : gg_dot_blas (prod, head_dim);
        sc [j] = kq * scale;
        mx = fmax (mx, sc [j]);
    }
    GG_SUM sum = 0;
    for (int j0 = 0; j0 < n_pad; j0 += 16) {
        float e [16];
        for (int c = 0; c < 16; c++)
            e [c] = j0 + c < n_kv ? gg_v_expf (sc [j0 + c] - mx) : 0.0f;
        for (int c = 0; c < 16 && j0 + c < n_kv; c++)
            sc [j0 + c] = e [c];
        sum += (GG_SUM) gg_reduce16 (e);
    }
    const float inv = (float) ((GG_SUM) 1 / sum);
    for (int j = 0; j < n_kv; j++)
        sc [j] = gg_half (sc [j] * inv);
    for (int d = 0; d < head_dim; d++) {
        float o;
        if (gen) {
            float a [4][16];
            for (int jj = 0; jj < 4; jj++)
                for (int c = 0; c < 16; c++)
                    a [jj][c] = 0.0f;
            for (int j = 0; j < n_kv; j++)
                a [(j % 64) / 16][j % 16] = fma (sc [j], Vh [(size_t) j * head_dim + d],
                                                 a [(j % 64) / 16][j % 16]);
            for (int c = 0; c < 16; c++) {
                a [0][c] = a [0][c] + a [2][c];
                a [1][c] = a [1][c] + a [3][c];
                a [0][c] = a [0][c] + a [1][c];
            }
            o = gg_reduce16 (a [0]);
        }
        else {
            float a [16];
            for (int c = 0; c < 16; c++)
                a [c] = 0.0f;
            for (int j = 0; j < n_kv; j++)
                a [j % 16] = fma (sc [j], Vh [(size_t) j * head_dim + d], a [j % 16]);
            o = gg_reduce16 (a);
        }
        O [qoff + d] = o;
    }
}
