/*  test_quant: kernels/quant.cl (through wrk_quant) against the CPU
 *  reference cmn_quant on the test device.
 *
 *  Error bound: none. For every type the device's quantized bytes must
 *  equal cmn_quant_quantize_row's byte for byte (memcmp), and its
 *  dequantization must equal cmn_quant_dequantize_row's bit for bit
 *  (NaN only where the reference has NaN, which finite input never gives
 *  with the data below). Data: uniform, zeros, constants, ten decades of
 *  range, subnormals, negative only, sparse outliers; row lengths of one,
 *  three and 129 blocks and several row counts. Writes past the output
 *  are caught by a poisoned guard zone.
 *
 *  Statistics (quant_stats): within 1e-6 relative of a double
 *  computation (the kernel's compensated sums are good to a few float
 *  roundings, about 4e-7 at worst).
 */
#include "kernels/kernel_test.h"
#include "cmn_quant.h"
#include "wrk_quant.h"

static wrk_quant_t *s_q;

static void
s_setup (void)
{
    kt_open ();
    cmn_err_t err = { 0 };
    s_q = wrk_quant_new (kt_dev, &err);
    cr_assert_not_null (s_q, "wrk_quant_new: %s", err.msg);
}

static void
s_teardown (void)
{
    wrk_quant_destroy (&s_q);
    kt_close ();
}

TestSuite (quant, .init = s_setup, .fini = s_teardown, .timeout = 120);

static const int s_types [] = {
    GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0,
    GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, RXQ_TYPE_INT4_G32, RXQ_TYPE_INT4_G64,
    RXQ_TYPE_INT4_G128, GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16,
};
#define S_NTYPES (sizeof s_types / sizeof s_types [0])

typedef enum { D_UNIFORM, D_ZEROS, D_CONST, D_DECADES, D_SUBNORMAL, D_NEGATIVE,
               D_OUTLIERS, D_COUNT } s_data_t;
static const char *s_data_name [] = { "uniform", "zeros", "constant", "decades",
                                      "subnormal", "negative", "outliers" };

static uint64_t
s_next (uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double
s_unit (uint64_t *s)
{
    return (double) (s_next (s) >> 11) / 9007199254740992.0;
}

static void
s_fill (float *x, size_t n, s_data_t kind, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        double u = s_unit (&s) * 2 - 1;
        switch (kind) {
            case D_UNIFORM:   x [i] = (float) u; break;
            case D_ZEROS:     x [i] = 0.0f; break;
            case D_CONST:     x [i] = 0.3125f; break;
            case D_DECADES:   x [i] = (float) ((u < 0 ? -1 : 1) * pow (10.0, -5 + 10 * s_unit (&s))); break;
            case D_SUBNORMAL: x [i] = (float) (u * 1e-39); break;
            case D_NEGATIVE:  x [i] = (float) (-fabs (u) * 3.5 - 0.01); break;
            case D_OUTLIERS:  x [i] = (float) (i % 37 == 5 ? u * 300 : u * 0.02); break;
            default:          x [i] = 0; break;
        }
    }
}

//  Quantizes ROWS x COLS values of KIND on the device and on the CPU and
//  requires identical bytes, then identical dequantization.
static void
s_check (int type, size_t rows, size_t cols, s_data_t kind, uint64_t seed)
{
    const size_t n = rows * cols;
    const size_t rb = cmn_quant_row_bytes (type, cols);
    cr_assert_gt (rb, 0);
    const size_t bytes = rows * rb;
    float *x = kt_alloc (n * sizeof *x);
    s_fill (x, n, kind, seed);
    uint8_t *ref = kt_alloc (bytes);
    for (size_t r = 0; r < rows; r++)
        cr_assert_eq (cmn_quant_quantize_row (type, x + r * cols, ref + r * rb, cols), 0);

    uint8_t *poison = kt_alloc (bytes + 256);
    memset (poison, 0xa5, bytes + 256);
    cl_mem dx = kt_in (x, n * sizeof *x);
    cl_mem dq = kt_in (poison, bytes + 256);
    KT_OK (wrk_quant_quantize (s_q, type, dx, dq, n, err));
    KT_OK (wrk_quant_finish (s_q, NULL, err));
    uint8_t *got = kt_alloc (bytes + 256);
    cr_assert_eq (clEnqueueReadBuffer (wrk_device_queue (kt_dev), dq, CL_TRUE, 0, bytes + 256,
                                       got, 0, NULL, NULL), CL_SUCCESS);
    const char *tn = cmn_quant_type_name (type);
    for (size_t i = 0; i < bytes; i++)
        cr_assert_eq (got [i], ref [i], "%s %zux%zu %s: byte %zu (block %zu) is 0x%02x, "
                      "CPU 0x%02x", tn, rows, cols, s_data_name [kind], i,
                      i / cmn_quant_block_bytes (type), got [i], ref [i]);
    cr_assert_eq (memcmp (got + bytes, poison + bytes, 256), 0, "%s: write past the end", tn);

    //  Dequantize the (identical) bytes on both sides.
    float *dref = kt_alloc (n * sizeof *dref);
    for (size_t r = 0; r < rows; r++)
        cr_assert_eq (cmn_quant_dequantize_row (type, ref + r * rb, dref + r * cols, cols), 0);
    cl_mem dy = kt_out (n);
    KT_OK (wrk_quant_dequantize (s_q, type, dq, dy, n, err));
    float *dgot = kt_result (dy, n);
    for (size_t i = 0; i < n; i++)
        cr_assert (memcmp (&dgot [i], &dref [i], sizeof (float)) == 0
                   || (isnan (dgot [i]) && isnan (dref [i])),
                   "%s %zux%zu %s: dequantized value %zu is %.9g, CPU %.9g", tn, rows, cols,
                   s_data_name [kind], i, dgot [i], dref [i]);

    //  Statistics against double.
    double sse = 0, ssq = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double) x [i] - dref [i];
        sse += d * d;
        ssq += (double) x [i] * x [i];
        if (fabs (d) > mx)
            mx = fabs (d);
    }
    wrk_quant_stats_t st = { 0 };
    KT_OK (wrk_quant_stats (s_q, dx, dy, n, &st, err));
    cr_assert_eq (st.n, n);
    cr_assert ((isinf (sse) && st.sse == sse) || fabs (st.sse - sse) <= 1e-6 * sse, "%s %s: sse %.17g, double %.17g", tn,
               s_data_name [kind], st.sse, sse);
    cr_assert (fabs (st.ssq - ssq) <= 1e-6 * ssq, "%s: ssq %.17g, double %.17g", tn, st.ssq, ssq);
    cr_assert ((isinf (mx) && st.max_abs == mx) || fabs (st.max_abs - mx) <= 1e-6 * mx, "%s: max %.17g, double %.17g", tn,
               st.max_abs, mx);

    clReleaseMemObject (dx);
    clReleaseMemObject (dq);
    clReleaseMemObject (dy);
    free (x); free (ref); free (poison); free (got); free (dref); free (dgot);
}

Test (quant, every_type_every_pattern_bit_identical)
{
    for (size_t t = 0; t < S_NTYPES; t++) {
        const size_t qk = cmn_quant_block_values (s_types [t]) == 1
                        ? 32 : cmn_quant_block_values (s_types [t]);
        const size_t cols [] = { qk, 3 * qk, 129 * qk > 16384 ? 9 * qk : 129 * qk };
        const size_t rows [] = { 1, 3, 5 };
        for (int k = 0; k < D_COUNT; k++)
            for (int s = 0; s < 3; s++)
                s_check (s_types [t], rows [s], cols [(s + k) % 3], (s_data_t) k,
                         1000 * t + 10 * k + s);
    }
}

Test (quant, many_blocks_random)
{
    //  Enough blocks for several work-groups and every rounding corner the
    //  random data finds.
    for (size_t t = 0; t < S_NTYPES; t++)
        s_check (s_types [t], 64, 1024, D_UNIFORM, 77 + t);
}

Test (quant, stats_large_sum_within_bound)
{
    //  2^20 values: float accumulation without compensation would drift by
    //  far more than 1e-6 here.
    s_check (GGML_TYPE_Q4_0, 512, 2048, D_DECADES, 5);
}

Test (quant, non_finite_block_reported)
{
    float x [96];
    s_fill (x, 96, D_UNIFORM, 3);
    x [70] = NAN;
    uint8_t q [3 * sizeof (block_q8_0)];
    cmn_err_t err = { 0 };
    cr_assert_eq (wrk_quant_row (s_q, GGML_TYPE_Q8_0, x, q, 96, &err), -1);
    cr_assert_eq (err.code, RXQ_E_INVAL);
    cr_assert (strstr (err.msg, "block 2"), "%s", err.msg);
    //  The flag is reset for the next launch.
    x [70] = 1.0f;
    cr_assert_eq (wrk_quant_row (s_q, GGML_TYPE_Q8_0, x, q, 96, &err), 0, "%s", err.msg);
    uint8_t ref [sizeof q];
    cr_assert_eq (cmn_quant_quantize_row (GGML_TYPE_Q8_0, x, ref, 96), 0);
    cr_assert_eq (memcmp (q, ref, sizeof q), 0);
}

Test (quant, bad_shapes_refused)
{
    cl_mem a = kt_out (256);
    cl_mem b = kt_out (256);
    KT_FAILS (RXQ_E_INVAL, wrk_quant_quantize (s_q, GGML_TYPE_Q4_K, a, b, 128, err));
    KT_FAILS (RXQ_E_INVAL, wrk_quant_quantize (s_q, GGML_TYPE_Q2_K, a, b, 256, err));
    KT_FAILS (RXQ_E_INVAL, wrk_quant_dequantize (s_q, GGML_TYPE_Q8_0, a, b, 0, err));
    //  The output needs 4096 floats; b holds 256 + guard.
    KT_FAILS (RXQ_E_INVAL, wrk_quant_dequantize (s_q, GGML_TYPE_Q8_0, a, b, 4096, err));
    clReleaseMemObject (a);
    clReleaseMemObject (b);
}

Test (quant, f16_bf16_input_conversion)
{
    //  Every binary16 bit pattern, and bfloat16 patterns of every exponent.
    const size_t n = 65536;
    uint16_t *h = kt_alloc (n * sizeof *h);
    for (size_t i = 0; i < n; i++)
        h [i] = (uint16_t) i;
    float *ref = kt_alloc (n * sizeof *ref);
    float *got = kt_alloc (n * sizeof *got);
    for (int bf = 0; bf < 2; bf++) {
        const int type = bf ? GGML_TYPE_BF16 : GGML_TYPE_F16;
        cr_assert_eq (cmn_quant_dequantize_row (type, h, ref, n), 0);
        KT_OK (wrk_quant_dequant_row (s_q, type, h, got, n, err));
        cr_assert_eq (memcmp (got, ref, n * sizeof *ref), 0, "%s conversion differs",
                      cmn_quant_type_name (type));
    }
    free (h); free (ref); free (got);
}
