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
