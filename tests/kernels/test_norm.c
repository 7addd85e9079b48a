/*  test_norm: kernels/norm.cl (RMSNorm, LayerNorm, fused activations)
 *  against wrk_ref_rms_norm / wrk_ref_layer_norm.
 *
 *  Error bound, per element, from OpenCL 1.2's accuracy table (division
 *  2.5 ulp, rsqrt 2 ulp, tanh 5 ulp; + - * correctly rounded) with
 *  ulp <= 2^-23 relative and u = 2^-24:
 *    r = rsqrt (sum x^2 / n + eps): the float sum of n squares has relative
 *    error <= (n + 1) u; the division, the + eps and rsqrt add 2.5 + 1 + 2
 *    ulp, and the square root halves the sum's share, so
 *    e_r = ((n + 1) / 2) u + 6 ulp.
 *    RMSNorm z = x r w: |dz| <= (e_r + 2u) |z|.
 *    LayerNorm: the mean's absolute error is e_m <= (n + 2) u mean|x|; it
 *    does not move the variance to first order (sum (x - mean) = 0), so r
 *    keeps e_r, and z = (x - mean) r w + b:
 *    |dz| <= |w| r (|x - mean| (e_r + 2u) + e_m) + u |z|.
 *    The activation adds: none, ReLU: nothing (ReLU is 1-Lipschitz);
 *    GELU: a factor 1.13 (its largest slope) on |dz|, plus its own float
 *    evaluation, 0.5 |z| (tanh 5 ulp + 4 roundings of the argument and
 *    of 1 + tanh) <= 0.5 |z| (5 ulp + 8 u |arg| + 2 u), arg the tanh input.
 *  The reference's rounding to float adds u |ref|. Statistics r, mean are
 *  recomputed here in double to evaluate the bound.
 */
#include "kernels/kernel_test.h"

#define ULP (2 * KT_U)

static double
s_act_bound (int act, double z, double dz)
{
    if (act != WRK_ACT_GELU)
        return dz;
    const double arg = 0.7978845608028654 * z * (1 + 0.044715 * z * z);
    return 1.13 * dz + 0.5 * fabs (z) * (5 * ULP + 8 * KT_U * fabs (arg) + 2 * KT_U);
}

static void
s_run (bool layer, int rows, int n, int act, bool use_w, bool use_b,
       bool in_place, uint64_t seed)
{
    const size_t total = (size_t) rows * n;
    float *x = kt_alloc (total * sizeof *x);
    float *w = kt_alloc ((size_t) n * sizeof *w);
    float *b = kt_alloc ((size_t) n * sizeof *b);
    float *ref = kt_alloc (total * sizeof *ref);
    float *z = kt_alloc (total * sizeof *z);
    double *bound = kt_alloc (total * sizeof *bound);
    //  LayerNorm inputs are off-centre (mean 1) to exercise the centring.
    wrk_ref_fill (x, total, seed, layer ? -1.0f : -2.0f, layer ? 3.0f : 2.0f);
    wrk_ref_fill (w, (size_t) n, seed + 1, -1.5f, 1.5f);
    wrk_ref_fill (b, (size_t) n, seed + 2, -0.5f, 0.5f);
    const float eps = 1e-5f;
    const float *wp = use_w ? w : NULL, *bp = use_b ? b : NULL;
    if (layer) {
        wrk_ref_layer_norm (x, wp, bp, ref, rows, n, eps, act);
        wrk_ref_layer_norm (x, wp, bp, z, rows, n, eps, WRK_ACT_NONE);
    }
    else {
        wrk_ref_rms_norm (x, wp, ref, rows, n, eps, act);
        wrk_ref_rms_norm (x, wp, z, rows, n, eps, WRK_ACT_NONE);
    }
    const double e_r = (n + 1) / 2.0 * KT_U + 6 * ULP;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t) r * n;
        double s = 0, sa = 0, ss = 0;
        for (int i = 0; i < n; i++) {
            s += xr [i];
            sa += fabs (xr [i]);
        }
        const double mean = layer ? s / n : 0;
        for (int i = 0; i < n; i++)
            ss += (xr [i] - mean) * (xr [i] - mean);
        const double rs = 1 / sqrt (ss / n + eps);
        const double e_m = layer ? (n + 2) * KT_U * sa / n : 0;
        for (int i = 0; i < n; i++) {
            const size_t k = (size_t) r * n + i;
            const double wi = use_w ? fabs (w [i]) : 1;
            const double dz = wi * rs * (fabs (xr [i] - mean) * (e_r + 2 * KT_U) + e_m)
                            + KT_U * fabs (z [k]);
            bound [k] = s_act_bound (act, z [k], dz) + KT_U * fabs (ref [k]);
        }
    }

    cl_mem dx, dy;
    if (in_place) {
        //  y = x: the one buffer is the output, so it carries the guard.
        dx = dy = kt_out (total);
        cr_assert_eq (clEnqueueWriteBuffer (wrk_device_queue (kt_dev), dx, CL_TRUE, 0,
                                            total * sizeof *x, x, 0, NULL, NULL),
                      CL_SUCCESS);
    }
    else {
        dx = kt_in (x, total * sizeof *x);
        dy = kt_out (total);
    }
    cl_mem dw = kt_in (w, (size_t) n * sizeof *w);
    cl_mem db = kt_in (b, (size_t) n * sizeof *b);
    cl_mem nw = use_w ? dw : NULL, nb = use_b ? db : NULL;
    if (layer)
        KT_OK (wrk_kernels_layer_norm (kt_dev, dx, nw, nb, dy, rows, n, eps, act, NULL, err));
    else
        KT_OK (wrk_kernels_rms_norm (kt_dev, dx, nw, dy, rows, n, eps, act, NULL, err));
    float *got = kt_result (dy, total);
    char what [96];
    snprintf (what, sizeof what, "%s n %d act %d w %d b %d in-place %d seed %llu",
              layer ? "layer_norm" : "rms_norm", n, act, use_w, use_b, in_place,
              (unsigned long long) seed);
    kt_check (what, got, ref, bound, total);

    if (!in_place)
        clReleaseMemObject (dy);
    clReleaseMemObject (dx);
    clReleaseMemObject (dw);
    clReleaseMemObject (db);
    free (got);
    free (x);
    free (w);
    free (b);
    free (ref);
    free (z);
    free (bound);
}

TestSuite (norm, .init = kt_open, .fini = kt_close);

//  Row lengths: one element, below, between and above work-group sizes.
static const int s_n [] = { 1, 37, 300, 1029 };

Test (norm, rms_norm_every_activation)
{
    for (int act = WRK_ACT_NONE; act <= WRK_ACT_RELU; act++)
        for (int i = 0; i < 4; i++)
            for (uint64_t seed = 1; seed <= 2; seed++)
                s_run (false, 7, s_n [i], act, true, false, false, seed * 10 + act);
}

Test (norm, layer_norm_every_activation)
{
    for (int act = WRK_ACT_NONE; act <= WRK_ACT_RELU; act++)
        for (int i = 0; i < 4; i++)
            for (uint64_t seed = 1; seed <= 2; seed++)
                s_run (true, 7, s_n [i], act, true, true, false, seed * 10 + act);
}

Test (norm, optional_weight_and_bias_and_in_place)
{
    s_run (false, 5, 300, WRK_ACT_NONE, false, false, false, 41);
    s_run (false, 5, 300, WRK_ACT_GELU, true, false, true, 42);
    s_run (true, 5, 300, WRK_ACT_NONE, false, false, false, 43);
    s_run (true, 5, 300, WRK_ACT_RELU, true, false, false, 44);
    s_run (true, 5, 300, WRK_ACT_NONE, false, true, true, 45);
}

Test (norm, rejects_bad_arguments)
{
    float x [8] = { 0 };
    cl_mem dx = kt_in (x, sizeof x);
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_rms_norm (kt_dev, dx, NULL, dx, 1, 8, 1e-5f,
                                                 7, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_rms_norm (kt_dev, dx, NULL, dx, 2, 8, 1e-5f,
                                                 WRK_ACT_NONE, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_layer_norm (kt_dev, dx, dx, dx, dx, 1, 0, 1e-5f,
                                                   WRK_ACT_NONE, NULL, err));
    clReleaseMemObject (dx);
}
