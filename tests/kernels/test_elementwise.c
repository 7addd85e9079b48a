/*  test_elementwise: kernels/elementwise.cl against wrk_ref_*.
 *
 *  Error bounds, u = 2^-24, ulp <= 2u relative:
 *    add, mul, scale: one correctly rounded float operation (OpenCL 1.2
 *    requires it for + and *), and the reference rounds the exact double
 *    result once, so the bits must be equal.
 *    silu v / (1 + exp (-v)): exp 3 ulp, the + and the division (2.5 ulp):
 *    relative error <= 3 ulp + u + 2.5 ulp < 6 ulp; plus the reference's
 *    rounding u.
 *    gelu 0.5 v (1 + tanh (c v (1 + k v^2))): the tanh argument carries 4
 *    roundings (4 u |arg|, and tanh is 1-Lipschitz), tanh 5 ulp, then
 *    1 + t and two products: |dy| <= 0.5 |v| (4 u |arg| + 5 ulp + 2 u)
 *    + 2 u |y|.
 *    swiglu silu (a) b: the silu bound times |b|, plus one product.
 *  Lengths are not multiples of the work-group size, and broadcasting uses
 *  a row length that is not a power of two.
 */
#include "kernels/kernel_test.h"

#define ULP (2 * KT_U)
#define N 407                   // 37 rows of 11

typedef enum { S_ADD, S_MUL, S_SCALE, S_SILU, S_GELU, S_SWIGLU } s_op_t;

static void
s_run (s_op_t op, size_t n, size_t bn, bool in_place, uint64_t seed)
{
    float *a = kt_alloc (n * sizeof *a);
    float *b = kt_alloc (n * sizeof *b);
    float *ref = kt_alloc (n * sizeof *ref);
    double *bound = kt_alloc (n * sizeof *bound);
    wrk_ref_fill (a, n, seed, -8.0f, 8.0f);
    wrk_ref_fill (b, n, seed + 1, -3.0f, 3.0f);
    const float s = 0.37f;
    cl_mem da, dy;
    if (in_place) {
        da = dy = kt_out (n);
        cr_assert_eq (clEnqueueWriteBuffer (wrk_device_queue (kt_dev), da, CL_TRUE, 0,
                                            n * sizeof *a, a, 0, NULL, NULL),
                      CL_SUCCESS);
    }
    else {
        da = kt_in (a, n * sizeof *a);
        dy = kt_out (n);
    }
    cl_mem db = kt_in (b, (op == S_ADD || op == S_MUL ? bn : n) * sizeof *b);
    const char *name = "";
    switch (op) {
        case S_ADD:
            name = "add";
            wrk_ref_add (a, b, ref, n, bn);
            KT_OK (wrk_kernels_add (kt_dev, da, db, dy, n, bn, NULL, err));
            break;
        case S_MUL:
            name = "mul";
            wrk_ref_mul (a, b, ref, n, bn);
            KT_OK (wrk_kernels_mul (kt_dev, da, db, dy, n, bn, NULL, err));
            break;
        case S_SCALE:
            name = "scale";
            wrk_ref_scale (a, ref, n, s);
            KT_OK (wrk_kernels_scale (kt_dev, da, dy, n, s, NULL, err));
            break;
        case S_SILU:
            name = "silu";
            wrk_ref_silu (a, ref, n);
            KT_OK (wrk_kernels_silu (kt_dev, da, dy, n, NULL, err));
            break;
        case S_GELU:
            name = "gelu";
            wrk_ref_gelu (a, ref, n);
            KT_OK (wrk_kernels_gelu (kt_dev, da, dy, n, NULL, err));
            break;
        case S_SWIGLU:
            name = "swiglu";
            wrk_ref_swiglu (a, b, ref, n);
            KT_OK (wrk_kernels_swiglu (kt_dev, da, db, dy, n, NULL, err));
            break;
    }
    float *got = kt_result (dy, n);
    char what [80];
    snprintf (what, sizeof what, "%s n %zu bn %zu in-place %d seed %llu", name, n,
              bn, in_place, (unsigned long long) seed);
    if (op == S_ADD || op == S_MUL || op == S_SCALE)
        kt_check_exact (what, got, ref, n);
    else {
        for (size_t i = 0; i < n; i++) {
            const double v = a [i];
            const double silu_e = 6 * ULP * fabs (v / (1 + exp (-v)));
            if (op == S_SILU)
                bound [i] = silu_e + KT_U * fabs (ref [i]);
            else if (op == S_SWIGLU)
                bound [i] = silu_e * fabs (b [i]) + 2 * KT_U * fabs (ref [i]);
            else {
                const double arg = 0.7978845608028654 * v * (1 + 0.044715 * v * v);
                bound [i] = 0.5 * fabs (v) * (4 * KT_U * fabs (arg) + 5 * ULP + 2 * KT_U)
                          + 2 * KT_U * fabs (ref [i]);
            }
        }
        kt_check (what, got, ref, bound, n);
    }
    if (!in_place)
        clReleaseMemObject (dy);
    clReleaseMemObject (da);
    clReleaseMemObject (db);
    free (got);
    free (a);
    free (b);
    free (ref);
    free (bound);
}

TestSuite (elementwise, .init = kt_open, .fini = kt_close);

Test (elementwise, add_and_mul_exact_with_and_without_broadcast)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        s_run (S_ADD, N, N, false, seed);
        s_run (S_ADD, N, 11, false, seed + 10);
        s_run (S_MUL, N, N, false, seed + 20);
        s_run (S_MUL, N, 11, true, seed + 30);
        s_run (S_ADD, 1, 1, false, seed + 40);
    }
}

Test (elementwise, scale_exact)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        s_run (S_SCALE, N, N, false, seed);
        s_run (S_SCALE, 1000, 1000, true, seed + 10);
    }
}

Test (elementwise, activations_within_bound)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        s_run (S_SILU, N, N, false, seed);
        s_run (S_GELU, N, N, false, seed + 10);
        s_run (S_SWIGLU, N, N, false, seed + 20);
        s_run (S_SILU, 1000, 1000, true, seed + 30);
        s_run (S_GELU, 257, 257, true, seed + 40);
    }
}

Test (elementwise, rejects_bad_arguments)
{
    float x [16] = { 0 };
    cl_mem d = kt_in (x, sizeof x);
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_add (kt_dev, d, d, d, 16, 5, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_mul (kt_dev, d, d, d, 0, 1, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_silu (kt_dev, d, d, 17, NULL, err));
    clReleaseMemObject (d);
}
