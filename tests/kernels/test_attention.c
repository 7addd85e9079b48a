/*  test_attention: kernels/attention.cl against wrk_ref_attention:
 *  multi-head, grouped-query and multi-query heads, with and without past
 *  tokens in the cache, key counts across the kernel's chunk boundary.
 *
 *  Error bound, per output element o = sum_j p_j v_j / sum_j p_j:
 *  each score is a float dot product of head_dim terms after the query is
 *  scaled (one more rounding): |ds_j| <= E = (hd + 2) u max_j S_j, with
 *  S_j = |scale| sum_d |q_d k_jd|. A weight p_j = exp (s_j - m) then has
 *  relative error 2 E + u R + 3 ulp, R = max_j |s_j - m| <= 2 max S. The
 *  running max is rescaled out by C <= ceil (n_kv / 16) + 1 chunk factors
 *  exp (m_old - m_new) (any ATT_WGS >= 16); their score errors telescope
 *  to that of the final max, and each adds only u R + 3 ulp of its own:
 *  e_w = 2 E + (C + 1) (u R + 3 ulp). Perturbing weights by e_w moves a
 *  convex combination by at most e_w max |v_j - o| <= 2 e_w V, V =
 *  max_j |v_jd|. The weighted sums of n_kv
 *  terms add n_kv u in the numerator and the denominator, and the final
 *  division 2.5 ulp:
 *  |o - ref| <= (2 e_w + 2 n_kv u + 2.5 ulp) V + u |ref|, u = 2^-24.
 */
#include "kernels/kernel_test.h"
#include <string.h>

#define ULP (2 * KT_U)

static void
s_run (int n_q_heads, int n_kv_heads, int n_tokens, int head_dim, int n_past,
       int ctx, uint64_t seed)
{
    const wrk_attn_t a = {
        .n_q_heads = n_q_heads, .n_kv_heads = n_kv_heads, .n_tokens = n_tokens,
        .head_dim = head_dim, .ctx = ctx, .n_past = n_past,
        .scale = (float) (1 / sqrt (head_dim))
    };
    const size_t nq = (size_t) n_q_heads * n_tokens * head_dim;
    const size_t nkv = (size_t) n_kv_heads * ctx * head_dim;
    float *Q = kt_alloc (nq * sizeof *Q);
    float *K = kt_alloc (nkv * sizeof *K);
    float *V = kt_alloc (nkv * sizeof *V);
    float *ref = kt_alloc (nq * sizeof *ref);
    double *bound = kt_alloc (nq * sizeof *bound);
    wrk_ref_fill (Q, nq, seed, -2.0f, 2.0f);
    wrk_ref_fill (K, nkv, seed + 1, -2.0f, 2.0f);
    wrk_ref_fill (V, nkv, seed + 2, -1.0f, 3.0f);
    wrk_ref_attention (Q, K, V, ref, &a);

    const int group = n_q_heads / n_kv_heads;
    for (int h = 0; h < n_q_heads; h++)
        for (int t = 0; t < n_tokens; t++) {
            const float *q = Q + ((size_t) h * n_tokens + t) * head_dim;
            const float *Kh = K + (size_t) (h / group) * ctx * head_dim;
            const float *Vh = V + (size_t) (h / group) * ctx * head_dim;
            const int n_kv = n_past + t + 1;
            double Smax = 0;
            for (int j = 0; j < n_kv; j++) {
                double S = 0;
                for (int d = 0; d < head_dim; d++)
                    S += fabs ((double) q [d] * Kh [(size_t) j * head_dim + d]);
                Smax = fmax (Smax, S * a.scale);
            }
            const double E = (head_dim + 2) * KT_U * Smax;
            const double C = ceil (n_kv / 16.0) + 1;
            const double e_w = 2 * E + (C + 1) * (KT_U * 2 * Smax + 3 * ULP);
            for (int d = 0; d < head_dim; d++) {
                double Vm = 0;
                for (int j = 0; j < n_kv; j++)
                    Vm = fmax (Vm, fabs (Vh [(size_t) j * head_dim + d]));
                const size_t k = ((size_t) h * n_tokens + t) * head_dim + d;
                bound [k] = (2 * e_w + 2 * n_kv * KT_U + 2.5 * ULP) * Vm
                          + KT_U * fabs (ref [k]);
            }
        }

    cl_mem dQ = kt_in (Q, nq * sizeof *Q);
    cl_mem dK = kt_in (K, nkv * sizeof *K);
    cl_mem dV = kt_in (V, nkv * sizeof *V);
    cl_mem dO = kt_out (nq);
    KT_OK (wrk_kernels_attention (kt_dev, dQ, dK, dV, dO, &a, NULL, err));
    float *got = kt_result (dO, nq);
    char what [112];
    snprintf (what, sizeof what, "attention heads %d/%d tokens %d hd %d n_past %d "
              "ctx %d seed %llu", n_q_heads, n_kv_heads, n_tokens, head_dim,
              n_past, ctx, (unsigned long long) seed);
    kt_check (what, got, ref, bound, nq);

    clReleaseMemObject (dQ);
    clReleaseMemObject (dK);
    clReleaseMemObject (dV);
    clReleaseMemObject (dO);
    free (got);
    free (Q);
    free (K);
    free (V);
    free (ref);
    free (bound);
}

TestSuite (attention, .init = kt_open, .fini = kt_close);

Test (attention, prompt_without_past)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        s_run (4, 4, 3, 64, 0, 3, seed);
        s_run (4, 2, 3, 64, 0, 7, seed + 10);
        s_run (4, 1, 37, 80, 0, 40, seed + 20);
    }
}

Test (attention, decode_and_prompt_after_past)
{
    //  n_past 70: keys 0..72 span two chunks of 64 (and more of 16).
    for (uint64_t seed = 1; seed <= 3; seed++) {
        s_run (4, 2, 3, 64, 70, 80, seed);
        s_run (6, 3, 1, 64, 130, 131, seed + 10);
        s_run (2, 2, 5, 256, 9, 20, seed + 20);
        s_run (3, 1, 2, 4, 1, 3, seed + 30);
    }
}

//  A window of a batch (q_rows, q_off) over one sequence's cache among
//  several (kv_off) gives exactly what a plain launch on copies of those
//  rows gives, and leaves the batch's other rows of O alone.
Test (attention, window_of_a_batch_matches_plain_launch)
{
    const int H = 4, Hkv = 2, D = 64, ctx = 40, R = 7, t0 = 2, n = 3, n_past = 20, seq = 1;
    const size_t nq_big = (size_t) H * R * D, nkv1 = (size_t) Hkv * ctx * D;
    const size_t nq = (size_t) H * n * D;
    float *Q = kt_alloc (nq_big * sizeof *Q), *K = kt_alloc (2 * nkv1 * sizeof *K);
    float *V = kt_alloc (2 * nkv1 * sizeof *V), *q = kt_alloc (nq * sizeof *q);
    float *O = kt_alloc (nq_big * sizeof *O);
    wrk_ref_fill (Q, nq_big, 5, -2.0f, 2.0f);
    wrk_ref_fill (K, 2 * nkv1, 6, -2.0f, 2.0f);
    wrk_ref_fill (V, 2 * nkv1, 7, -1.0f, 3.0f);
    for (int h = 0; h < H; h++)
        memcpy (q + (size_t) h * n * D, Q + ((size_t) h * R + t0) * D, (size_t) n * D * 4);
    for (size_t i = 0; i < nq_big; i++)
        O [i] = -7.0f;
    const wrk_attn_t plain = { .n_q_heads = H, .n_kv_heads = Hkv, .n_tokens = n,
                               .head_dim = D, .ctx = ctx, .n_past = n_past, .scale = 0.125f };
    wrk_attn_t win = plain;
    win.q_rows = R;
    win.q_off = (size_t) t0 * D;
    win.kv_off = (size_t) seq * nkv1;
    cl_mem dQ = kt_in (Q, nq_big * sizeof *Q), dq = kt_in (q, nq * sizeof *q);
    cl_mem dK = kt_in (K, 2 * nkv1 * sizeof *K), dV = kt_in (V, 2 * nkv1 * sizeof *V);
    cl_mem dK1 = kt_in (K + nkv1, nkv1 * sizeof *K), dV1 = kt_in (V + nkv1, nkv1 * sizeof *V);
    cl_mem dO = kt_in (O, nq_big * sizeof *O), dOp = kt_out (nq);
    KT_OK (wrk_kernels_attention (kt_dev, dQ, dK, dV, dO, &win, NULL, err));
    KT_OK (wrk_kernels_attention (kt_dev, dq, dK1, dV1, dOp, &plain, NULL, err));
    float *got = kt_alloc (nq_big * sizeof *got), *want = kt_result (dOp, nq);
    cr_assert_eq (clEnqueueReadBuffer (wrk_device_queue (kt_dev), dO, CL_TRUE, 0,
                                       nq_big * sizeof *got, got, 0, NULL, NULL), CL_SUCCESS);
    for (int h = 0; h < H; h++)
        for (int t = 0; t < R; t++)
            for (int d = 0; d < D; d++) {
                const float g = got [((size_t) h * R + t) * D + d];
                if (t >= t0 && t < t0 + n)
                    cr_assert_eq (g, want [((size_t) h * n + t - t0) * D + d],
                                  "head %d row %d dim %d", h, t, d);
                else
                    cr_assert_eq (g, -7.0f, "head %d row %d outside the window written", h, t);
            }
    win.q_rows = n - 1;         // fewer rows between heads than queries
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_attention (kt_dev, dQ, dK, dV, dO, &win, NULL, err));
    win.q_rows = R;
    win.kv_off = 2 * nkv1;      // past the end of the caches
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_attention (kt_dev, dQ, dK, dV, dO, &win, NULL, err));
    cl_mem m [] = { dQ, dq, dK, dV, dK1, dV1, dO, dOp };
    for (size_t i = 0; i < sizeof m / sizeof m [0]; i++)
        clReleaseMemObject (m [i]);
    free (got);
    free (want);
    free (Q);
    free (K);
    free (V);
    free (q);
    free (O);
}

Test (attention, rejects_bad_arguments)
{
    float x [256] = { 0 };
    cl_mem d = kt_in (x, sizeof x);
    wrk_attn_t a = { .n_q_heads = 3, .n_kv_heads = 2, .n_tokens = 1,
                     .head_dim = 4, .ctx = 4, .n_past = 0, .scale = 1 };
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_attention (kt_dev, d, d, d, d, &a, NULL, err));
    a.n_kv_heads = 1;
    a.head_dim = 6;
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_attention (kt_dev, d, d, d, d, &a, NULL, err));
    a.head_dim = 260;
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_attention (kt_dev, d, d, d, d, &a, NULL, err));
    a.head_dim = 4;
    a.n_past = 4;               // past + tokens beyond ctx
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_attention (kt_dev, d, d, d, d, &a, NULL, err));
    clReleaseMemObject (d);
}
