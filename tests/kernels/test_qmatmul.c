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

//  Installs {qmatmul: {QMM_WGS: wgs, GEMV_ROWS: rows, GEMV_UNIT: unit}} as
//  the test device's tuning override (NULL entry when WGS is 0: removes it).
static void
s_qmm_override (int wgs, int rows, int unit)
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
    msgpack_pack_map (&pk, 3);
    msgpack_pack_str_with_body (&pk, "QMM_WGS", 7);
    msgpack_pack_int (&pk, wgs);
    msgpack_pack_str_with_body (&pk, "GEMV_ROWS", 9);
    msgpack_pack_int (&pk, rows);
    msgpack_pack_str_with_body (&pk, "GEMV_UNIT", 9);
    msgpack_pack_int (&pk, unit);
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
        s_qmm_override (cfg [c][0], cfg [c][1], cfg [c][2]);
        for (size_t t = 0; t < sizeof s_types / sizeof s_types [0]; t++) {
            const int *cols = cmn_quant_block_values (s_types [t]) == 256 ? s_cols_256
                                                                           : s_cols_32;
            for (int i = 0; i < 4; i++)
                s_run (s_types [t], 1 + 11 * i, cols [i], 0, 4000 + 10 * c + (uint64_t) i,
                       i == 3 ? -3.0f : -1.0f, i == 3 ? 0.5f : 1.0f);
        }
    }
    s_qmm_override (0, 0, 0);
}
