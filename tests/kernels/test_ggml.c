/*  test_ggml: kernels/ggml.cl, llama.cpp's CPU operations (ggml-cpu, x86)
 *  reproduced bit for bit.
 *
 *  Each kernel is compared with a host port of the ggml code it follows
 *  (quantize_row_q8_1 and _q8_0 of arch/x86/quants.c, quantize_row_q8_K_ref,
 *  ggml_vec_dot_q4_1_q8_1 with its hsum_float_8, rms_norm_f32, ggml_v_expf
 *  and ggml_vec_swiglu_f32, rotate_pairs, the F16 conversion): same
 *  operations in the same order, so the results must be identical bits.
 *  The ports are written in plain C with fmaf where ggml's code (or GCC's
 *  contraction of it) fuses; the Q8_1, Q4_1 product and SiLU ports are
 *  also checked against double precision within the error the operation
 *  allows (|x - d q| <= d / 2 plus d's F16 rounding; (2 nb + 8) u of the
 *  sum of |terms|; 8 u relative). The attention kernel,
 *  whose ggml order spans several functions, is compared with a double
 *  precision reference on the same F16 inputs: the F16 rounding of the
 *  probabilities bounds the error by 2^-11 sum p |v| plus the float
 *  sums, within 1e-3 max |v| (stated tolerance).
 *
 *  The end-to-end check, 32 greedy tokens of llama.cpp on five prompts,
 *  is tests/worker/test_wrk_llm.c (llm::ggml_numerics_match_llama_cpp).
 */
#include "kernels/kernel_test.h"
#include "cmn_quant.h"
#include "cmn_quant_blocks.h"
#include <stdint.h>
#include <string.h>

static uint64_t s_rng = 0x9e3779b97f4a7c15ull;

//  Uniform in [-1, 1).
static float
s_rand (void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (float) ((double) (s_rng >> 11) / 4503599627370496.0 - 1.0);
}

static float
s_half (float f)
{
    return cmn_fp16_to_fp32 (cmn_fp32_to_fp16 (f));
}

//  x86 quantize_row_q8_1 for one block: QS, fp16 (d), fp16 (d sum q).
static void
s_q8_1 (const float *x, int8_t *qs, float *d16, float *s16)
{
    float amax = 0;
    for (int j = 0; j < 32; j++)
        amax = fmaxf (amax, fabsf (x [j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        qs [j] = (int8_t) rintf (x [j] * id);
        sum += qs [j];
    }
    *d16 = s_half (d);
    *s16 = s_half (d * (float) sum);
}

//  Rows of N floats scaled per row so that blocks of very different
//  magnitudes, exact zeros and a zero block occur.
static float *
s_acts (int rows, int n)
{
    float *x = kt_alloc ((size_t) rows * n * sizeof *x);
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < n; i++) {
            const float scale = (i / 32) % 3 == 2 ? 40.0f : 1.0f + (float) r;
            x [(size_t) r * n + i] = (i / 32) == 1 ? 0.0f : s_rand () * scale;
        }
    return x;
}

TestSuite (ggml, .init = kt_open, .fini = kt_close);

Test (ggml, quant_q8_1_matches_x86)
{
    const int rows = 3, cols = 128, nb = rows * cols / 32;
    float *x = s_acts (rows, cols);
    cl_mem X = kt_in (x, (size_t) rows * cols * sizeof *x);
    cl_mem QS = kt_out ((size_t) rows * cols / 4), D = kt_out (nb), S = kt_out (nb);
    KT_OK (wrk_kernels_ggml_quant_q8_1 (kt_dev, X, QS, D, S, rows, cols, NULL, err));
    int8_t *qs = kt_alloc ((size_t) rows * cols);
    kt_read (QS, (float *) qs, (size_t) rows * cols / 4);
    float *d = kt_result (D, nb), *s = kt_result (S, nb);
    for (int b = 0; b < nb; b++) {
        int8_t rq [32];
        float rd, rs;
        s_q8_1 (x + b * 32, rq, &rd, &rs);
        cr_assert (memcmp (rq, qs + b * 32, 32) == 0, "block %d: values differ", b);
        cr_assert (d [b] == rd && s [b] == rs, "block %d: d %g s %g, expected %g %g", b,
                   d [b], s [b], rd, rs);
        //  The port itself: |x - d q| <= d / 2 (plus d's F16 rounding).
        for (int j = 0; j < 32; j++)
            cr_assert_leq (fabs (x [b * 32 + j] - (double) rd * rq [j]),
                           0.5 * rd + fabs (x [b * 32 + j]) * 1e-3 + 1e-30);
    }
    clReleaseMemObject (X);
    clReleaseMemObject (QS);
    clReleaseMemObject (D);
    clReleaseMemObject (S);
    free (x); free (qs); free (d); free (s);
}

Test (ggml, round_q8_and_q8_k_and_f16_match_ggml)
{
    const int rows = 2, cols = 512, n = rows * cols;
    float *x = s_acts (rows, cols);
    cl_mem X = kt_in (x, (size_t) n * sizeof *x);
    cl_mem Y8 = kt_out (n), YK = kt_out (n);
    KT_OK (wrk_kernels_ggml_round_act (kt_dev, GGML_TYPE_Q8_0, X, Y8, rows, cols, NULL, err));
    KT_OK (wrk_kernels_ggml_round_act (kt_dev, GGML_TYPE_Q6_K, X, YK, rows, cols, NULL, err));
    KT_OK (wrk_kernels_ggml_round_f16 (kt_dev, X, (size_t) n, NULL, err));
    float *y8 = kt_result (Y8, n), *yk = kt_result (YK, n);
    float *h = kt_alloc ((size_t) n * sizeof *h);
    cl_int rc = clEnqueueReadBuffer (wrk_device_queue (kt_dev), X, CL_TRUE, 0,
                                     (size_t) n * sizeof *h, h, 0, NULL, NULL);
    cr_assert_eq (rc, CL_SUCCESS);
    float *r8 = kt_alloc ((size_t) n * sizeof *r8), *rk = kt_alloc ((size_t) n * sizeof *rk);
    float *rh = kt_alloc ((size_t) n * sizeof *rh);
    for (int b = 0; b < n / 32; b++) {
        int8_t q [32];
        float d, s;
        s_q8_1 (x + b * 32, q, &d, &s);
        for (int j = 0; j < 32; j++)
            r8 [b * 32 + j] = d * (float) q [j];
    }
    //  quantize_row_q8_K_ref: the largest-magnitude element (first such)
    //  sets iscale = -127 / max; x' = q / iscale.
    for (int b = 0; b < n / 256; b++) {
        const float *xb = x + b * 256;
        float max = 0, amax = 0;
        for (int j = 0; j < 256; j++)
            if (fabsf (xb [j]) > amax) {
                amax = fabsf (xb [j]);
                max = xb [j];
            }
        const float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++)
            rk [b * 256 + j] = (1.0f / iscale) * (float) (int) fminf (127.0f,
                                                                     rintf (iscale * xb [j]));
    }
    for (int i = 0; i < n; i++)
        rh [i] = s_half (x [i]);
    kt_check_exact ("round q8_0", y8, r8, (size_t) n);
    kt_check_exact ("round q8_K", yk, rk, (size_t) n);
    kt_check_exact ("round f16", h, rh, (size_t) n);
    KT_FAILS (RXQ_E_UNSUPPORTED, wrk_kernels_ggml_round_act (kt_dev, GGML_TYPE_F32, X, Y8,
                                                               rows, cols, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_ggml_round_act (kt_dev, GGML_TYPE_Q4_K, X, Y8, 1, 96,
                                                         NULL, err));
    clReleaseMemObject (X);
    clReleaseMemObject (Y8);
    clReleaseMemObject (YK);
    free (x); free (y8); free (yk); free (h); free (r8); free (rk); free (rh);
}

Test (ggml, mm_q4_1_is_ggml_vec_dot_q4_1_q8_1)
{
    const int rows = 37, cols = 192, batch = 3, nb = cols / 32;
    block_q4_1 *w = kt_alloc ((size_t) rows * nb * sizeof *w);
    for (int i = 0; i < rows * nb; i++) {
        w [i].d = cmn_fp32_to_fp16 (0.01f + 0.02f * fabsf (s_rand ()));
        w [i].m = cmn_fp32_to_fp16 (-0.15f * fabsf (s_rand ()));
        for (int j = 0; j < 16; j++)
            w [i].qs [j] = (uint8_t) (s_rng >> (j * 4 % 56));
        s_rand ();
    }
    float *x = s_acts (batch, cols);
    cl_mem W = kt_in (w, (size_t) rows * nb * sizeof *w);
    cl_mem X = kt_in (x, (size_t) batch * cols * sizeof *x);
    cl_mem QS = kt_out ((size_t) batch * cols / 4);
    cl_mem D = kt_out ((size_t) batch * nb), S = kt_out ((size_t) batch * nb);
    cl_mem Y = kt_out ((size_t) batch * rows);
    KT_OK (wrk_kernels_ggml_quant_q8_1 (kt_dev, X, QS, D, S, batch, cols, NULL, err));
    KT_OK (wrk_kernels_ggml_mm_q4_1 (kt_dev, W, QS, D, S, Y, rows, cols, batch, NULL, err));
    float *y = kt_result (Y, (size_t) batch * rows);
    for (int t = 0; t < batch; t++)
        for (int r = 0; r < rows; r++) {
            //  AVX2 + VNNI: lane i holds values 4i .. 4i+3 of each block.
            float acc [8] = { 0 }, summs = 0;
            double exact = 0, mag = 0;
            for (int b = 0; b < nb; b++) {
                const block_q4_1 *wb = &w [r * nb + b];
                int8_t q [32];
                float d1, s1;
                s_q8_1 (x + (size_t) t * cols + b * 32, q, &d1, &s1);
                const float d0 = cmn_fp16_to_fp32 (wb->d), m0 = cmn_fp16_to_fp32 (wb->m);
                summs = fmaf (m0, s1, summs);
                for (int i = 0; i < 8; i++) {
                    int lane = 0;
                    for (int k = 0; k < 4; k++) {
                        const int e = 4 * i + k;
                        lane += (e < 16 ? wb->qs [e] & 15 : wb->qs [e - 16] >> 4) * q [e];
                    }
                    acc [i] = fmaf (d0 * d1, (float) lane, acc [i]);
                    exact += (double) d0 * d1 * lane;
                    mag += fabs ((double) d0 * d1 * lane);
                }
                exact += (double) m0 * s1;
                mag += fabs ((double) m0 * s1);
            }
            const float r0 = acc [4] + acc [0], r1 = acc [5] + acc [1];
            const float r2 = acc [6] + acc [2], r3 = acc [7] + acc [3];
            const float ref = ((r0 + r2) + (r1 + r3)) + summs;
            const float got = y [(size_t) t * rows + r];
            cr_assert (memcmp (&got, &ref, sizeof got) == 0, "row %d token %d: %.9g, ggml %.9g",
                       r, t, got, ref);
            cr_assert_leq (fabs (ref - exact), (2.0 * nb + 8) * KT_U * mag + 1e-30);
        }
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_ggml_mm_q4_1 (kt_dev, W, QS, D, S, Y, rows, 48, 1,
                                                       NULL, err));
    clReleaseMemObject (W); clReleaseMemObject (X); clReleaseMemObject (QS);
    clReleaseMemObject (D); clReleaseMemObject (S); clReleaseMemObject (Y);
    free (w); free (x); free (y);
}

Test (ggml, rms_norm_is_ggml_rms_norm_f32)
{
    const int rows = 4, n = 576;
    float *x = s_acts (rows, n), *w = kt_alloc (n * sizeof *w);
    for (int i = 0; i < n; i++)
        w [i] = 1.0f + 0.5f * s_rand ();
    cl_mem X = kt_in (x, (size_t) rows * n * sizeof *x), Wn = kt_in (w, n * sizeof *w);
    cl_mem Y = kt_out ((size_t) rows * n);
    KT_OK (wrk_kernels_ggml_rms_norm (kt_dev, X, Wn, Y, rows, n, 1e-5f, NULL, err));
    float *y = kt_result (Y, (size_t) rows * n), *ref = kt_alloc ((size_t) rows * n * sizeof *ref);
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t) r * n;
        double sum = 0;
        for (int i = 0; i < n; i++)
            sum += (double) (xr [i] * xr [i]);
        const float mean = (float) (sum / n);
        const float scale = 1.0f / sqrtf (mean + 1e-5f);
        for (int i = 0; i < n; i++)
            ref [(size_t) r * n + i] = xr [i] * scale * w [i];
    }
    kt_check_exact ("ggml_rms_norm", y, ref, (size_t) rows * n);
    clReleaseMemObject (X); clReleaseMemObject (Wn); clReleaseMemObject (Y);
    free (x); free (w); free (y); free (ref);
}

//  ggml_v_expf (vec.h, AVX-512 form) in scalar C.
static float
s_v_expf (float x)
{
    const float r = 0x1.8p23f;
    const float z = fmaf (x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf (-n, 0x1.7f7d1cp-20f, fmaf (-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fmaf (fmaf (fmaf (0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                fmaf (0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                          u, fmaf (0x1.ffffecp-1f, b, 1.0f));
    if (fabsf (n) > 192.0f)
        return n <= 0.0f ? 0.0f : INFINITY;
    return ldexpf (j, (int) n);
}

Test (ggml, swiglu_uses_ggml_v_expf)
{
    const int n = 4096;
    float *g = kt_alloc (n * sizeof *g), *u = kt_alloc (n * sizeof *u);
    for (int i = 0; i < n; i++) {
        g [i] = 12.0f * s_rand ();
        u [i] = s_rand ();
    }
    g [0] = -110.0f;                    // exp flushes to infinity: silu 0
    g [1] = 100.0f;                     // exp flushes to zero: silu x
    cl_mem G = kt_in (g, n * sizeof *g), U = kt_in (u, n * sizeof *u), Y = kt_out (n);
    KT_OK (wrk_kernels_ggml_swiglu (kt_dev, G, U, Y, (size_t) n, NULL, err));
    float *y = kt_result (Y, n), *ref = kt_alloc (n * sizeof *ref);
    for (int i = 0; i < n; i++) {
        ref [i] = (g [i] / (1.0f + s_v_expf (0.0f - g [i]))) * u [i];
        const double exact = (double) g [i] / (1.0 + exp (-(double) g [i])) * u [i];
        cr_assert_leq (fabs (ref [i] - exact), 8 * KT_U * fabs (exact) + 1e-37,
                       "port %d: %.9g vs %.9g", i, ref [i], exact);
    }
    kt_check_exact ("ggml_swiglu", y, ref, n);
    clReleaseMemObject (G); clReleaseMemObject (U); clReleaseMemObject (Y);
    free (g); free (u); free (y); free (ref);
}

Test (ggml, rope_is_rotate_pairs_with_the_table)
{
    const int T = 3, H = 2, D = 8, n_dims = 6;
    const wrk_rope_t r = { .n_tokens = T, .n_heads = H, .head_dim = D, .n_dims = n_dims,
                           .mode = WRK_ROPE_NORMAL, .xs_tok = H * D, .xs_head = D,
                           .ys_tok = D, .ys_head = T * D };
    float x [3 * 2 * 8], cs [3 * 3 * 2], ref [3 * 2 * 8];
    for (int i = 0; i < T * H * D; i++)
        x [i] = s_rand ();
    for (int i = 0; i < T * n_dims; i++)
        cs [i] = s_rand ();
    cl_mem X = kt_in (x, sizeof x), CS = kt_in (cs, sizeof cs), Y = kt_out (T * H * D);
    KT_OK (wrk_kernels_ggml_rope (kt_dev, X, Y, CS, &r, NULL, err));
    float *y = kt_result (Y, (size_t) T * H * D);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            const float *xi = x + t * H * D + h * D;
            float *yo = ref + h * T * D + t * D;
            for (int i = 0; i < n_dims / 2; i++) {
                const float c = cs [(t * n_dims / 2 + i) * 2], s = cs [(t * n_dims / 2 + i) * 2 + 1];
                const float a = xi [2 * i], b = xi [2 * i + 1];
                yo [2 * i] = fmaf (a, c, -(b * s));
                yo [2 * i + 1] = fmaf (a, s, b * c);
            }
            for (int d = n_dims; d < D; d++)
                yo [d] = xi [d];
        }
    kt_check_exact ("ggml_rope", y, ref, (size_t) T * H * D);
    clReleaseMemObject (X); clReleaseMemObject (CS); clReleaseMemObject (Y);
    free (y);
}

//  Attention on F16 inputs against double precision, GEN (one token, as
//  llama.cpp's ggml_vec_dot_f16) and batch (tinyBLAS) orders.
static void
s_attention (int n_tokens, int n_past, int gen)
{
    const int Hq = 4, Hkv = 2, D = 64, ctx = 80;
    const wrk_attn_t a = { .n_q_heads = Hq, .n_kv_heads = Hkv, .n_tokens = n_tokens,
                           .head_dim = D, .ctx = ctx, .n_past = n_past, .scale = 0.125f };
    const size_t nq = (size_t) Hq * n_tokens * D, nkv = (size_t) Hkv * ctx * D;
    float *q = kt_alloc (nq * sizeof *q), *k = kt_alloc (nkv * sizeof *k);
    float *v = kt_alloc (nkv * sizeof *v);
    for (size_t i = 0; i < nq; i++)
        q [i] = 3.0f * s_rand ();
    for (size_t i = 0; i < nkv; i++) {
        k [i] = s_half (s_rand ());
        v [i] = s_half (s_rand ());
    }
    cl_mem Q = kt_in (q, nq * sizeof *q), K = kt_in (k, nkv * sizeof *k);
    cl_mem V = kt_in (v, nkv * sizeof *v), O = kt_out (nq);
    cl_mem SC = kt_out ((size_t) Hq * n_tokens * ctx);
    KT_OK (wrk_kernels_attention_ggml (kt_dev, Q, K, V, O, SC, &a, gen, NULL, err));
    float *o = kt_result (O, nq);
    for (int h = 0; h < Hq; h++)
        for (int t = 0; t < n_tokens; t++) {
            const float *qr = q + ((size_t) h * n_tokens + t) * D;
            const float *kh = k + (size_t) (h / 2) * ctx * D, *vh = v + (size_t) (h / 2) * ctx * D;
            const int n_kv = n_past + t + 1;
            double s [80], m = -INFINITY, sum = 0;
            for (int j = 0; j < n_kv; j++) {
                s [j] = 0;
                for (int d = 0; d < D; d++)
                    s [j] += (double) s_half (qr [d]) * kh [j * D + d];
                s [j] *= 0.125;
                m = fmax (m, s [j]);
            }
            for (int j = 0; j < n_kv; j++)
                sum += (s [j] = exp (s [j] - m));
            for (int d = 0; d < D; d++) {
                double ref = 0;
                for (int j = 0; j < n_kv; j++)
                    ref += s [j] / sum * vh [j * D + d];
                const float got = o [((size_t) h * n_tokens + t) * D + d];
                cr_assert (fabs (got - ref) <= 1e-3, "head %d token %d dim %d: %.7g, "
                           "reference %.7g (gen %d)", h, t, d, got, ref, gen);
            }
        }
    clReleaseMemObject (Q); clReleaseMemObject (K); clReleaseMemObject (V);
    clReleaseMemObject (O); clReleaseMemObject (SC);
    free (q); free (k); free (v); free (o);
}

Test (ggml, attention_close_to_double_in_both_orders)
{
    s_attention (5, 0, 0);              // a prompt: tinyBLAS order
    s_attention (1, 70, 1);             // one token after 70: ggml_vec_dot_f16 order
    s_attention (3, 20, 0);
}
