/*  test_transpose: kernels/transpose.cl against wrk_ref_transpose. A
 *  transpose only moves values, so the result must match bit for bit;
 *  sizes straddle the tile (32) and its rows (8) on both axes, including
 *  single rows and columns.
 */
#include "kernels/kernel_test.h"

static void
s_run (int rows, int cols, uint64_t seed)
{
    const size_t n = (size_t) rows * cols;
    float *a = kt_alloc (n * sizeof *a);
    float *ref = kt_alloc (n * sizeof *ref);
    wrk_ref_fill (a, n, seed, -100.0f, 100.0f);
    wrk_ref_transpose (a, ref, rows, cols);
    cl_mem da = kt_in (a, n * sizeof *a);
    cl_mem db = kt_out (n);
    KT_OK (wrk_kernels_transpose (kt_dev, da, db, rows, cols, NULL, err));
    float *got = kt_result (db, n);
    char what [64];
    snprintf (what, sizeof what, "transpose %dx%d seed %llu", rows, cols,
              (unsigned long long) seed);
    kt_check_exact (what, got, ref, n);
    clReleaseMemObject (da);
    clReleaseMemObject (db);
    free (got);
    free (a);
    free (ref);
}

TestSuite (transpose, .init = kt_open, .fini = kt_close);

Test (transpose, awkward_sizes_bit_exact)
{
    static const int sizes [][2] = {
        { 37, 29 }, { 1, 100 }, { 100, 1 }, { 64, 96 }, { 33, 65 }, { 1, 1 },
        { 7, 300 }, { 129, 31 }
    };
    for (uint64_t seed = 1; seed <= 3; seed++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes [0]; i++)
            s_run (sizes [i][0], sizes [i][1], seed * 100 + i);
}

Test (transpose, rejects_bad_arguments)
{
    float x [16] = { 0 };
    cl_mem d = kt_in (x, sizeof x);
    cl_mem o = kt_out (16);
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_transpose (kt_dev, d, o, 0, 4, NULL, err));
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_transpose (kt_dev, d, o, 5, 4, NULL, err));
    clReleaseMemObject (d);
    clReleaseMemObject (o);
}
