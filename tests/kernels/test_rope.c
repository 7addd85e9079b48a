/*  test_rope: kernels/rope.cl against wrk_ref_rope, both modes, full and
 *  partial rotation, in place and into the attention layout.
 *
 *  Error bound, per element of a rotated pair (a, b) at angle theta:
 *  the inverse frequency base^(-2i/n_dims) has relative error
 *  e_f <= 16 ulp (pow) + 2.5 ulp ln (base) (the exponent's division error,
 *  scaled by pow's sensitivity) + 1 ulp; theta = p * f adds u, so
 *  |d theta| <= |theta| (e_f + u). sincos adds 4 ulp to sin and cos
 *  (|sin|, |cos| <= 1), and a c - b s rounds twice:
 *  |y - ref| <= (|a| + |b|) (|theta| (e_f + u) + 4 ulp + 2 u) + u |ref|.
 *  Copied (unrotated) elements must be exact.
 */
#include "kernels/kernel_test.h"

#define ULP (2 * KT_U)

//  Layouts of the test: x is [tokens, heads, head_dim] (as a projection
//  writes it); y is the same buffer, or [heads, tokens, head_dim].
static void
s_run (int mode, int n_tokens, int n_heads, int head_dim, int n_dims,
       float base, int pos0, bool permute, uint64_t seed)
{
    const size_t total = (size_t) n_tokens * n_heads * head_dim;
    wrk_rope_t r = {
        .n_tokens = n_tokens, .n_heads = n_heads, .head_dim = head_dim,
        .n_dims = n_dims, .mode = mode, .freq_base = base,
        .xs_tok = n_heads * head_dim, .xs_head = head_dim,
        .ys_tok = permute ? head_dim : n_heads * head_dim,
        .ys_head = permute ? n_tokens * head_dim : head_dim
    };
    float *x = kt_alloc (total * sizeof *x);
    float *ref = kt_alloc (total * sizeof *ref);
    double *bound = kt_alloc (total * sizeof *bound);
    int32_t *pos = kt_alloc ((size_t) n_tokens * sizeof *pos);
    wrk_ref_fill (x, total, seed, -2.0f, 2.0f);
    for (int t = 0; t < n_tokens; t++)
        pos [t] = pos0 + t * (1 + (int) (seed % 3));
    wrk_ref_rope (x, ref, pos, &r);

    const double e_f = 16 * ULP + 2.5 * ULP * log (base) + ULP;
    const int half = n_dims / 2;
    for (int t = 0; t < n_tokens; t++)
        for (int h = 0; h < n_heads; h++) {
            const float *xp = x + (size_t) t * r.xs_tok + (size_t) h * r.xs_head;
            const size_t yo = (size_t) t * r.ys_tok + (size_t) h * r.ys_head;
            for (int d = n_dims; d < head_dim; d++)
                bound [yo + d] = 0;
            for (int i = 0; i < half; i++) {
                const int i0 = mode == WRK_ROPE_NEOX ? i : 2 * i;
                const int i1 = mode == WRK_ROPE_NEOX ? i + half : 2 * i + 1;
                const double theta = pos [t] * pow (base, -2.0 * i / n_dims);
                const double e = (fabs (xp [i0]) + fabs (xp [i1]))
                               * (fabs (theta) * (e_f + KT_U) + 4 * ULP + 2 * KT_U);
                bound [yo + i0] = e + KT_U * fabs (ref [yo + i0]);
                bound [yo + i1] = e + KT_U * fabs (ref [yo + i1]);
            }
        }

    cl_mem dx, dy;
    if (permute) {
        dx = kt_in (x, total * sizeof *x);
        dy = kt_out (total);
    }
    else {
        dx = dy = kt_out (total);
        cr_assert_eq (clEnqueueWriteBuffer (wrk_device_queue (kt_dev), dx, CL_TRUE, 0,
                                            total * sizeof *x, x, 0, NULL, NULL),
                      CL_SUCCESS);
    }
    cl_mem dpos = kt_in (pos, (size_t) n_tokens * sizeof *pos);
    KT_OK (wrk_kernels_rope (kt_dev, dx, dy, dpos, &r, NULL, err));
    float *got = kt_result (dy, total);
    char what [112];
    snprintf (what, sizeof what, "rope mode %d hd %d n_dims %d base %g pos0 %d "
              "permute %d seed %llu", mode, head_dim, n_dims, base, pos0, permute,
              (unsigned long long) seed);
    kt_check (what, got, ref, bound, total);

    if (permute)
        clReleaseMemObject (dy);
    clReleaseMemObject (dx);
    clReleaseMemObject (dpos);
    free (got);
    free (x);
    free (ref);
    free (bound);
    free (pos);
}

TestSuite (rope, .init = kt_open, .fini = kt_close);

Test (rope, normal_and_neox_in_place)
{
    for (uint64_t seed = 1; seed <= 3; seed++)
        for (int mode = 0; mode <= 2; mode += 2) {
            s_run (mode, 3, 5, 64, 64, 10000.0f, 0, false, seed);
            s_run (mode, 3, 5, 64, 64, 10000.0f, 100, false, seed + 10);
            s_run (mode, 7, 3, 128, 128, 1000000.0f, 490, false, seed + 20);
        }
}

Test (rope, partial_rotation_and_permuted_output)
{
    for (uint64_t seed = 1; seed <= 3; seed++)
        for (int mode = 0; mode <= 2; mode += 2) {
            s_run (mode, 3, 5, 64, 32, 10000.0f, 17, true, seed);
            s_run (mode, 3, 5, 80, 24, 10000.0f, 3, false, seed + 5);
            s_run (mode, 1, 1, 2, 2, 10000.0f, 9, true, seed + 7);
        }
}

Test (rope, rejects_bad_arguments)
{
    float x [64] = { 0 };
    int32_t pos [1] = { 0 };
    cl_mem dx = kt_in (x, sizeof x);
    cl_mem dp = kt_in (pos, sizeof pos);
    wrk_rope_t r = { .n_tokens = 1, .n_heads = 1, .head_dim = 64, .n_dims = 66,
                     .mode = 0, .freq_base = 10000, .xs_tok = 64, .xs_head = 64,
                     .ys_tok = 64, .ys_head = 64 };
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_rope (kt_dev, dx, dx, dp, &r, NULL, err));
    r.n_dims = 64;
    r.mode = 1;
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_rope (kt_dev, dx, dx, dp, &r, NULL, err));
    r.mode = 0;
    r.n_tokens = 2;             // pos and x hold one token
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_rope (kt_dev, dx, dx, dp, &r, NULL, err));
    clReleaseMemObject (dx);
    clReleaseMemObject (dp);
}
