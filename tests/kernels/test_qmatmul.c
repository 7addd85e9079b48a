/*  test_qmatmul: kernels/qmatmul.cl against wrk_ref_gemm_q on the test
 *  device, for Q4_0, Q4_1, Q8_0, Q4_K, Q6_K.
 *
 *  Weights are random floats quantized with cmn_quant_quantize_row; the
 *  reference dequantizes them with cmn_quant_dequantize_row and multiplies
 *  in double.
 *
 *  Error bound: the kernel decodes every weight to exactly the float that
 *  cmn_quant_dequantize_row gives (the products d*q, d*q + m, (d*sc)*q -
 *  dmin*m are exact or rounded once, as in ggml; see qmatmul.cl), so it
 *  differs from the exact sum only by float32 products and sums of COLS
 *  terms, in whatever order: |y - exact| <= gamma_cols * sum |w x|, with
 *  gamma_n = n u / (1 - n u), u = 2^-24 (Higham, ch. 3). The reference's
 *  own rounding to float adds u * |exact| <= u * sum |w x|. So
 *  |y - ref| <= ((cols + 1) u / (1 - cols u)) * sum |w x|.
 */
#include "kernels/kernel_test.h"
#include "cmn_quant.h"
#include "wrk_tune.h"
#include <msgpack.h>

//  Runs one product and checks it. GEMV when BATCH is 0 (batch 1).
static void
s_run (int type, int rows, int cols, int batch, uint64_t seed, float lo, float hi)
{
    const bool gemv = batch == 0;
    if (gemv)
        batch = 1;
    const size_t rb = cmn_quant_row_bytes (type, (size_t) cols);
    cr_assert_gt (rb, 0);
    float *wf = kt_alloc ((size_t) rows * cols * sizeof *wf);
    uint8_t *wq = kt_alloc ((size_t) rows * rb);
    float *x = kt_alloc ((size_t) batch * cols * sizeof *x);
    float *ref = kt_alloc ((size_t) batch * rows * sizeof *ref);
    double *absdot = kt_alloc ((size_t) batch * rows * sizeof *absdot);
    double *bound = kt_alloc ((size_t) batch * rows * sizeof *bound);

    wrk_ref_fill (wf, (size_t) rows * cols, seed, lo, hi);
    wrk_ref_fill (x, (size_t) batch * cols, seed ^ 0x5eed, -1.0f, 1.0f);
    for (int r = 0; r < rows; r++)
        cr_assert_eq (cmn_quant_quantize_row (type, wf + (size_t) r * cols,
                                              wq + (size_t) r * rb, (size_t) cols), 0);
    cr_assert_eq (wrk_ref_gemm_q (type, wq, x, ref, rows, cols, batch, absdot), 0);
    const double gamma = (cols + 1) * KT_U / (1 - cols * KT_U);
    for (int i = 0; i < batch * rows; i++)
        bound [i] = gamma * absdot [i];

    cl_mem dW = kt_in (wq, (size_t) rows * rb);
    cl_mem dX = kt_in (x, (size_t) batch * cols * sizeof *x);
    cl_mem dY = kt_out ((size_t) batch * rows);
    cl_event ev = NULL;
    if (gemv)
        KT_OK (wrk_kernels_gemv_q (kt_dev, type, dW, dX, dY, rows, cols, &ev, err));
    else
        KT_OK (wrk_kernels_gemm_q (kt_dev, type, dW, dX, dY, rows, cols, batch, &ev, err));
    cr_assert_not_null (ev);
    cr_assert_eq (clWaitForEvents (1, &ev), CL_SUCCESS);
    clReleaseEvent (ev);
    float *got = kt_result (dY, (size_t) batch * rows);
    char what [96];
    snprintf (what, sizeof what, "%s %s rows %d cols %d batch %d seed %llu",
              gemv ? "gemv" : "gemm", cmn_quant_type_name (type), rows, cols,
              batch, (unsigned long long) seed);
    kt_check (what, got, ref, bound, (size_t) batch * rows);

    clReleaseMemObject (dW);
    clReleaseMemObject (dX);
    clReleaseMemObject (dY);
    free (got);
    free (wf);
    free (wq);
    free (x);
    free (ref);
    free (absdot);
    free (bound);
}

//  Column counts per type: small (fewer units than a work-group), and
//  large enough that work-items take several units (73 and 80 units).
static const int s_cols_32 [] = { 96, 160, 288, 2336 };
static const int s_cols_256 [] = { 256, 512, 768, 2560 };

static void
s_type_cases (int type, int batch)
{
    const int *cols = cmn_quant_block_values (type) == 256 ? s_cols_256 : s_cols_32;
    for (uint64_t seed = 1; seed <= 3; seed++)
        for (int c = 0; c < 4; c++) {
            //  Seed 3 uses one-sided weights: the min/offset paths of Q4_1
            //  and Q4_K then carry most of the value.
            const float lo = seed == 3 ? -3.0f : -1.0f, hi = seed == 3 ? 0.5f : 1.0f;
            s_run (type, 37, cols [c], batch, seed * 1000 + c, lo, hi);
        }
}

TestSuite (qmatmul, .init = kt_open, .fini = kt_close);

static const int s_types [] = { GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q8_0,
                                 GGML_TYPE_Q4_K, GGML_TYPE_Q6_K };

Test (qmatmul, gemv_every_type_matches_dequantized_reference)
{
    for (size_t t = 0; t < sizeof s_types / sizeof s_types [0]; t++)
        s_type_cases (s_types [t], 0);
}

Test (qmatmul, gemm_batch_5_matches_dequantized_reference)
{
    for (size_t t = 0; t < sizeof s_types / sizeof s_types [0]; t++)
        s_type_cases (s_types [t], 5);
}

Test (qmatmul, gemm_small_batches_and_single_row)
{
    //  Batches below, at and above one tile; one row, fewer rows than a group.
    for (int batch = 1; batch <= 9; batch += 4)
        s_run (GGML_TYPE_Q4_0, 1, 96, batch, 77, -1.0f, 1.0f);
    s_run (GGML_TYPE_Q6_K, 3, 256, 2, 78, -1.0f, 1.0f);
    s_run (GGML_TYPE_Q8_0, 1, 32, 0, 79, -1.0f, 1.0f);
}

Test (qmatmul, rejects_bad_shapes_and_small_buffers)
{
    const int rows = 4, cols = 64;
    const size_t rb = cmn_quant_row_bytes (GGML_TYPE_Q4_0, cols);
    uint8_t *wq = kt_alloc (rows * rb);
    float x [64] = { 0 };
    cl_mem dW = kt_in (wq, rows * rb);
    cl_mem dX = kt_in (x, sizeof x);
    cl_mem dY = kt_out (rows);
    cl_event ev = (cl_event) 1;
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_gemv_q (kt_dev, GGML_TYPE_Q4_0, dW, dX, dY,
                                               rows, 48, &ev, err));
    cr_assert_null (ev);
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_gemv_q (kt_dev, GGML_TYPE_Q4_K, dW, dX, dY,
                                               rows, cols, NULL, err));
    //  One row too many for the weight buffer: caught before the device.
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_gemv_q (kt_dev, GGML_TYPE_Q4_0, dW, dX, dY,
                                               rows + 1, cols, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_gemm_q (kt_dev, GGML_TYPE_Q4_0, dW, dX, dY,
                                               rows, cols, 2, NULL, err));
    KT_FAILS (RXQ_E_UNSUPPORTED, wrk_kernels_gemv_q (kt_dev, GGML_TYPE_Q5_0, dW, dX,
                                                     dY, rows, cols, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_gemv_q (kt_dev, GGML_TYPE_Q4_0, dW, dX, dY,
                                               0, cols, NULL, err));
    clReleaseMemObject (dW);
    clReleaseMemObject (dX);
    clReleaseMemObject (dY);
    free (wq);
}

//  Installs {qmatmul: {QMM_WGS: wgs, GEMV_ROWS and GEMV_I8_ROWS: rows,
//  GEMV_I8_KROWS: rows - 1 or, for 1, 2 (so a launch sized by the wrong one
//  leaves rows out),
//  GEMV_UNIT: unit, GEMV_I8_KU: ku}} as the test device's tuning override
//  (NULL entry when WGS is 0: removes it).
static void
s_qmm_override (int wgs, int rows, int unit, int ku)
{
    cmn_err_t e = { 0 };
    cmn_err_t *err = &e;
    if (wgs == 0) {
        cr_assert_eq (wrk_tune_set_override (kt_dev, NULL, err), 0);
        return;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    msgpack_pack_str_with_body (&pk, "qmatmul", 7);
    msgpack_pack_map (&pk, 6);
    msgpack_pack_str_with_body (&pk, "QMM_WGS", 7);
    msgpack_pack_int (&pk, wgs);
    msgpack_pack_str_with_body (&pk, "GEMV_ROWS", 9);
    msgpack_pack_int (&pk, rows);
    msgpack_pack_str_with_body (&pk, "GEMV_I8_ROWS", 12);
    msgpack_pack_int (&pk, rows);
    msgpack_pack_str_with_body (&pk, "GEMV_UNIT", 9);
    msgpack_pack_int (&pk, unit);
    msgpack_pack_str_with_body (&pk, "GEMV_I8_KU", 10);
    msgpack_pack_int (&pk, ku);
    msgpack_pack_str_with_body (&pk, "GEMV_I8_KROWS", 13);
    msgpack_pack_int (&pk, rows > 1 ? rows - 1 : 2);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    cr_assert_eq (msgpack_unpack_next (&up, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq (wrk_tune_set_override (kt_dev, &up.data, err), 0, "%s", err->msg);
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}

//  Every GEMV scheme on whatever device runs the tests: the sliced one
//  (GEMV_UNIT=0, the GPU rows), the per-unit one (1, the CPU row) and the
//  team one (2), with groups wider than a row's slices, row counts that
//  are not multiples of GEMV_ROWS (the clamped tail rows), and several
//  slices per work-item. For the team scheme: one team (16 x 3), more
//  teams than rows (256 x 4: 8 teams), uneven rows per team (64 x 5),
//  teams smaller than 16 slices (4 x 8), and columns that end inside a
//  chunk (2336 and 2560 columns: 292 and 160 slices, chunks of 128 at
//  256 x 16 and 64 x 5).
Test (qmatmul, gemv_both_schemes_match_dequantized_reference)
{
    static const int cfg [][3] = {
        { 16, 3, 0 }, { 64, 1, 0 }, { 4, 8, 0 }, { 256, 4, 0 }, { 32, 2, 1 },
        { 16, 3, 2 }, { 256, 4, 2 }, { 64, 5, 2 }, { 4, 8, 2 }, { 256, 16, 2 },
        { 1, 2, 2 },
    };
    for (size_t c = 0; c < sizeof cfg / sizeof cfg [0]; c++) {
        s_qmm_override (cfg [c][0], cfg [c][1], cfg [c][2], 1);
        for (size_t t = 0; t < sizeof s_types / sizeof s_types [0]; t++) {
            const int *cols = cmn_quant_block_values (s_types [t]) == 256 ? s_cols_256
                                                                           : s_cols_32;
            for (int i = 0; i < 4; i++)
                s_run (s_types [t], 1 + 11 * i, cols [i], 0, 4000 + 10 * c + (uint64_t) i,
                       i == 3 ? -3.0f : -1.0f, i == 3 ? 0.5f : 1.0f);
        }
    }
    s_qmm_override (0, 0, 0, 0);
}

//  ---------------------------------------------------------------------------
//  The GEMV on int8 x (wrk_kernels_quant_i8, wrk_kernels_gemv_q_i8).
//
//  qi8_quant is checked against its definition: xd within 3 ulp of
//  amax / 127 (OpenCL's division is not correctly rounded by default),
//  each q the nearest integer to x / xd (ties either way; the device's
//  reciprocal may differ from the host's by an ulp), |x - xd q| <= xd / 2
//  (1 + 2^-20), xs the sum of the q. The GEMV is then checked against W
//  times the device's own rounded x (xd q), computed in double, with
//  qmatmul's bound: each block adds an exact integer sum, scaled with two
//  roundings, so |y - ref| <= ((cols + 1) u / (1 - cols u)) * M, where M
//  sums |d (q - 8)| |xd qx| (Q4_0), (|d q| + |m|) |xd qx| (Q4_1),
//  (|d sc q| + |dmin m|) |xd qx| (Q4_K) or |w| |xd qx| (Q8_0, Q6_K): the
//  magnitudes of the terms the kernel rounds (each written as |w| + 2 |m|).
//  |dmin m| of sub-block S of Q4_K block B (ggml's get_scale_min_k4).
static double
s_q4k_min (const block_q4_K *b, int s)
{
    return fabs (cmn_f16_bits_to_f32 (b->dmin) * CMN_Q4K_MIN (s, b->scales));
}

static void
s_run_i8 (int type, int rows, int cols, uint64_t seed, float lo, float hi)
{
    const size_t rb = cmn_quant_row_bytes (type, (size_t) cols), nb = (size_t) cols / 32;
    float *wf = kt_alloc ((size_t) rows * cols * sizeof *wf);
    float *wd = kt_alloc ((size_t) cols * sizeof *wd);
    uint8_t *wq = kt_alloc ((size_t) rows * rb);
    float *x = kt_alloc ((size_t) cols * sizeof *x), *xd = kt_alloc (nb * sizeof *xd);
    int8_t *xq = kt_alloc ((size_t) cols);
    int32_t *xs = kt_alloc (nb * sizeof *xs);
    float *ref = kt_alloc ((size_t) rows * sizeof *ref);
    double *bound = kt_alloc ((size_t) rows * sizeof *bound);
    wrk_ref_fill (wf, (size_t) rows * cols, seed, lo, hi);
    wrk_ref_fill (x, (size_t) cols, seed ^ 0x5eed, -1.0f, 1.0f);
    if (seed % 4 == 0)
        for (int i = 0; i < 32; i++)
            x [i] = 0.0f;                       // an all-zero block: xd 0
    for (int r = 0; r < rows; r++)
        cr_assert_eq (cmn_quant_quantize_row (type, wf + (size_t) r * cols,
                                              wq + (size_t) r * rb, (size_t) cols), 0);
    cl_mem dW = kt_in (wq, (size_t) rows * rb), dX = kt_in (x, (size_t) cols * sizeof *x);
    cl_mem dQ = kt_in (xq, (size_t) cols), dD = kt_in (xd, nb * sizeof *xd);
    cl_mem dS = kt_in (xs, nb * sizeof *xs), dY = kt_out ((size_t) rows);
    KT_OK (wrk_kernels_quant_i8 (kt_dev, dX, dQ, dD, dS, cols, NULL, err));
    KT_OK (wrk_kernels_gemv_q_i8 (kt_dev, type, dW, dQ, dD, dS, dY, rows, cols, NULL, err));
    float *got = kt_result (dY, (size_t) rows);
    cl_command_queue q = wrk_device_queue (kt_dev);
    cr_assert_eq (clEnqueueReadBuffer (q, dQ, CL_TRUE, 0, (size_t) cols, xq, 0, NULL, NULL), 0);
    cr_assert_eq (clEnqueueReadBuffer (q, dD, CL_TRUE, 0, nb * sizeof *xd, xd, 0, NULL, NULL), 0);
    cr_assert_eq (clEnqueueReadBuffer (q, dS, CL_TRUE, 0, nb * sizeof *xs, xs, 0, NULL, NULL), 0);

    for (size_t b = 0; b < nb; b++) {
        float amax = 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf (amax, fabsf (x [32 * b + j]));
        const double want_d = (double) amax / 127.0;
        cr_assert (fabs (xd [b] - want_d) <= 3 * KT_U * want_d, "block %zu: xd %.9g, amax / "
                   "127 = %.9g", b, xd [b], want_d);
        for (int j = 0; j < 32; j++) {
            const int v = xq [32 * b + j];
            const double e = xd [b] > 0 ? x [32 * b + j] / (double) xd [b] : 0.0;
            cr_assert (fabs (e - v) <= 0.5 + 1e-5 && abs (v) <= 127, "block %zu value %d: q %d "
                       "for x / xd = %.9g", b, j, v, e);
            cr_assert (fabs (x [32 * b + j] - (double) xd [b] * v)
                       <= xd [b] / 2.0 * (1 + 0x1p-20), "block %zu value %d: rounding error",
                       b, j);
            sum += v;
        }
        cr_assert_eq (xs [b], sum, "block %zu: xs %d, sum of q %d", b, xs [b], sum);
    }
    const double gamma = (cols + 1) * KT_U / (1 - cols * KT_U);
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = wq + (size_t) r * rb;
        cr_assert_eq (cmn_quant_dequantize_row (type, row, wd, (size_t) cols), 0);
        double s = 0, mag = 0;
        for (size_t b = 0; b < nb; b++) {
            const double m = type == GGML_TYPE_Q4_1
                           ? fabs (cmn_f16_bits_to_f32 (((const block_q4_1 *) row) [b].m))
                           : type == GGML_TYPE_Q4_K ? s_q4k_min ((const block_q4_K *) row + b / 8,
                                                                 (int) (b % 8))
                           : 0;
            for (int j = 0; j < 32; j++) {
                const double xv = (double) xd [b] * xq [32 * b + j], w = wd [32 * b + j];
                s += w * xv;
                mag += (fabs (w) + 2 * m) * fabs (xv);
            }
        }
        ref [r] = (float) s;
        bound [r] = gamma * mag + KT_U * fabs (s);
    }
    char what [96];
    snprintf (what, sizeof what, "gemv_i8 %s rows %d cols %d seed %llu",
              cmn_quant_type_name (type), rows, cols, (unsigned long long) seed);
    kt_check (what, got, ref, bound, (size_t) rows);
    clReleaseMemObject (dW); clReleaseMemObject (dX); clReleaseMemObject (dQ);
    clReleaseMemObject (dD); clReleaseMemObject (dS); clReleaseMemObject (dY);
    free (got); free (wf); free (wd); free (wq); free (x); free (xd); free (xq); free (xs);
    free (ref); free (bound);
}

//  qgemv_i8 on every type it takes, for the tuned shape and three
//  overrides: fewer blocks than work-items (cols 96, 160: 3 and 5 blocks;
//  K-quants 256, 768: 1 and 3 super-blocks, the Q6_K ones alternately
//  word-aligned and not),
//  several per work-item (2336: 73; 4096: 128), rows not a multiple of
//  GEMV_ROWS, odd and even block counts (so the matrix ends with a word-
//  aligned Q4_0 or Q8_0 block, whose last 2 bytes the kernel must not
//  read past: rows 1 x 3 blocks, 23 x 73), and one-sided weights (the Q4_1
//  minimum) for the last column count. K-quant spans (GEMV_I8_KU 2 and 4)
//  run where a row has at least GEMV_I8_KU x QMM_WGS units: at 4 x 8 from
//  768 columns, at 16 x 3 from 2560 (2 spans) or 4096 (4 spans), at 64 x 1
//  only for 4096; Q6_K super-blocks of both alignments come in every row.
//  Smaller rows take single units.
Test (qmatmul, gemv_i8_matches_reference_on_rounded_x)
{
    static const int types [] = { GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q8_0,
                                  GGML_TYPE_Q4_K, GGML_TYPE_Q6_K };
    static const int cols [] = { 96, 160, 2336, 4096 };
    static const int cols_k [] = { 256, 768, 2560, 4096 };
    static const int cfg [][3] = { { 0, 0, 0 }, { 16, 3, 1 }, { 4, 8, 1 }, { 64, 1, 1 },
                                   { 16, 3, 2 }, { 4, 8, 4 }, { 64, 1, 2 }, { 4, 8, 2 },
                                   { 16, 3, 4 } };
    for (size_t c = 0; c < sizeof cfg / sizeof cfg [0]; c++) {
        s_qmm_override (cfg [c][0], cfg [c][1], 0, cfg [c][2]);
        for (size_t t = cfg [c][2] > 1 ? 3 : 0; t < 5; t++)
            for (int i = 0; i < 4; i++)
                s_run_i8 (types [t], 1 + 11 * i, t < 3 ? cols [i] : cols_k [i],
                          5000 + 10 * c + (uint64_t) i, i == 3 ? -3.0f : -1.0f,
                          i == 3 ? 0.5f : 1.0f);
    }
    s_qmm_override (0, 0, 0, 0);
}

Test (qmatmul, gemv_i8_rejects_bad_types_shapes_and_buffers)
{
    const int rows = 4, cols = 64;
    const size_t rb = cmn_quant_row_bytes (GGML_TYPE_Q4_0, cols);
    uint8_t *wq = kt_alloc (rows * rb);
    float x [64] = { 0 };
    cl_mem dW = kt_in (wq, rows * rb), dX = kt_in (x, sizeof x), dQ = kt_in (x, 64);
    cl_mem dD = kt_in (x, 8), dS = kt_in (x, 8), dY = kt_out (rows);
    KT_FAILS (RXQ_E_UNSUPPORTED, wrk_kernels_gemv_q_i8 (kt_dev, GGML_TYPE_Q5_0, dW, dQ, dD, dS,
                                                        dY, rows, cols, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_gemv_q_i8 (kt_dev, GGML_TYPE_Q4_K, dW, dQ, dD, dS, dY,
                                                  rows, cols, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_gemv_q_i8 (kt_dev, GGML_TYPE_Q4_0, dW, dQ, dD, dS, dY,
                                                  rows, 48, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_gemv_q_i8 (kt_dev, GGML_TYPE_Q4_0, dW, dQ, dD, dS, dY,
                                                  rows + 1, cols, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_gemv_q_i8 (kt_dev, GGML_TYPE_Q8_0, dW, dQ, dD, dS, dY,
                                                  rows, cols, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_quant_i8 (kt_dev, dX, dQ, dD, dS, 96, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_quant_i8 (kt_dev, dX, dQ, dD, dS, 0, NULL, err));
    //  PoCL has no int8 dot product path; a GPU's answer depends on it.
    if (strstr (wrk_device_info (kt_dev)->platform, "Portable"))
        cr_assert (!wrk_kernels_i8_dot (kt_dev));
    clReleaseMemObject (dW); clReleaseMemObject (dX); clReleaseMemObject (dQ);
    clReleaseMemObject (dD); clReleaseMemObject (dS); clReleaseMemObject (dY);
    free (wq);
}
