/*  test_softmax: kernels/softmax.cl against wrk_ref_softmax.
 *
 *  Error bound, per element y_j = exp (a_j - M) / S with a_j = s x_j:
 *  a_j is rounded once (u |a_j|) and a_j - M once (u |a_j - M|), exp adds
 *  3 ulp (OpenCL 1.2), so each exponential has relative error
 *  e_t <= u (|a_j| + |M| + |a_j - M|) + 3 ulp; we use e_t = 3 u A + 3 ulp,
 *  A = max |a| over the row. The running sum rescales a term each time its
 *  work-item's maximum grows and at each level of the group merge, at most
 *  L = ceil (n / 16) + 12 times for any SOFTMAX_WGS from 16 to 4096, each
 *  rescale adding another e_t; the float sum of n terms adds n u. So
 *  e_S <= (L + 1) e_t + n u, and the final division adds 2.5 ulp:
 *  |y - ref| <= (e_t + e_S + 2.5 ulp + u) |ref|, ulp = 2 u, u = 2^-24.
 *  Results below 2^-126 may be subnormal or flushed to zero (OpenCL 1.2
 *  allows flushing single-precision denormals), so 2^-125 is added as an
 *  absolute floor (S >= 1, so the division does not enlarge it).
 *  Masked entries must be exactly 0.
 */
#include "kernels/kernel_test.h"

#define ULP (2 * KT_U)

static void
s_run (int rows, int n, float scale, int q_len, int n_past, float range,
       bool in_place, uint64_t seed)
{
    const size_t total = (size_t) rows * n;
    float *x = kt_alloc (total * sizeof *x);
    float *ref = kt_alloc (total * sizeof *ref);
    double *bound = kt_alloc (total * sizeof *bound);
    wrk_ref_fill (x, total, seed, -range, range);
    wrk_ref_softmax (x, ref, rows, n, scale, q_len, n_past);
    for (int r = 0; r < rows; r++) {
        double A = 0;
        for (int j = 0; j < n; j++)
            A = fmax (A, fabs ((double) scale * x [(size_t) r * n + j]));
        const double e_t = 3 * KT_U * A + 3 * ULP;
        const double L = ceil (n / 16.0) + 12;
        const double e_S = (L + 1) * e_t + n * KT_U;
        for (int j = 0; j < n; j++) {
            const size_t k = (size_t) r * n + j;
            bound [k] = (e_t + e_S + 2.5 * ULP + KT_U) * ref [k] + 0x1p-125;
        }
    }
    cl_mem dx, dy;
    if (in_place) {
        dx = dy = kt_out (total);
        cr_assert_eq (clEnqueueWriteBuffer (wrk_device_queue (kt_dev), dx, CL_TRUE, 0,
                                            total * sizeof *x, x, 0, NULL, NULL),
                      CL_SUCCESS);
    }
    else {
        dx = kt_in (x, total * sizeof *x);
        dy = kt_out (total);
    }
    KT_OK (wrk_kernels_softmax (kt_dev, dx, dy, rows, n, scale, q_len, n_past, NULL, err));
    float *got = kt_result (dy, total);
    char what [96];
    snprintf (what, sizeof what, "softmax n %d scale %g q_len %d n_past %d seed %llu",
              n, scale, q_len, n_past, (unsigned long long) seed);
    kt_check (what, got, ref, bound, total);
    //  Each row sums to 1 within its bound, masked entries are exactly 0.
    for (int r = 0; r < rows; r++) {
        double s = 0, sb = 0;
        for (int j = 0; j < n; j++) {
            const size_t k = (size_t) r * n + j;
            s += got [k];
            sb += bound [k];
            if (q_len > 0 && j > n_past + r % q_len)
                cr_assert (got [k] == 0.0f, "%s: masked element %d,%d is %g", what,
                           r, j, got [k]);
        }
        cr_assert (fabs (s - 1) <= sb + n * KT_U, "%s: row %d sums to %.9g", what, r, s);
    }
    if (!in_place)
        clReleaseMemObject (dy);
    clReleaseMemObject (dx);
    free (got);
    free (x);
    free (ref);
    free (bound);
}

TestSuite (softmax, .init = kt_open, .fini = kt_close);

static const int s_n [] = { 1, 37, 300, 1029 };

Test (softmax, rows_without_mask)
{
    for (int i = 0; i < 4; i++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            s_run (6, s_n [i], 1.0f, 0, 0, 4.0f, false, seed * 100 + i);
            s_run (6, s_n [i], 0.125f, 0, 0, 30.0f, false, seed * 100 + i + 50);
        }
}

Test (softmax, causal_mask_with_n_past)
{
    //  2 heads x 3 queries; columns past n_past + query are masked, also
    //  when the row is longer than n_past + q_len.
    for (uint64_t seed = 1; seed <= 3; seed++) {
        s_run (6, 8, 0.125f, 3, 5, 8.0f, false, seed);
        s_run (6, 37, 1.0f, 3, 5, 4.0f, false, seed + 10);
        s_run (6, 300, 1.0f, 3, 290, 4.0f, false, seed + 20);
        s_run (5, 5, 1.0f, 5, 0, 4.0f, false, seed + 30);
    }
}

Test (softmax, in_place_and_large_values)
{
    //  Values of +-80: exp would overflow float without the max subtraction.
    s_run (4, 300, 1.0f, 0, 0, 80.0f, true, 7);
    s_run (6, 37, 1.0f, 3, 5, 80.0f, true, 8);
}

Test (softmax, rejects_bad_arguments)
{
    float x [8] = { 0 };
    cl_mem dx = kt_in (x, sizeof x);
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_softmax (kt_dev, dx, dx, 1, 8, 1, -1, 0, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_softmax (kt_dev, dx, dx, 3, 8, 1, 0, 0, NULL, err));
    clReleaseMemObject (dx);
}
