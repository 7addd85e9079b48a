/*  test_conv: kernels/conv.cl against wrk_ref_im2col and
 *  wrk_ref_conv2d_nhwc on 13x11 images with 3 and 5 channels, several
 *  strides, pads and dilations.
 *
 *  Error bounds: im2col only moves values and writes zeros, so it must
 *  match bit for bit. The direct convolution sums K = kh kw c float
 *  products, then multiplies by the scale and adds the bias (two more
 *  roundings): |y - ref| <= ((K + 3) u / (1 - K u)) (|scale| sum |w x| +
 *  |bias|) + u |ref|, u = 2^-24; ReLU is 1-Lipschitz and adds nothing.
 */
#include "kernels/kernel_test.h"

//  Geometries: 3x3 same-padding, strided 5x3 with dilation, 1x1, and a
//  kernel as large as the padded image.
static const wrk_conv_t s_geoms [] = {
    { .n = 2, .c = 3, .h = 13, .w = 11, .oc = 5, .kh = 3, .kw = 3, .stride_h = 1,
      .stride_w = 1, .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1 },
    { .n = 1, .c = 5, .h = 13, .w = 11, .oc = 3, .kh = 5, .kw = 3, .stride_h = 2,
      .stride_w = 3, .pad_h = 2, .pad_w = 1, .dil_h = 2, .dil_w = 2 },
    { .n = 3, .c = 5, .h = 13, .w = 11, .oc = 9, .kh = 1, .kw = 1, .stride_h = 1,
      .stride_w = 2, .pad_h = 0, .pad_w = 0, .dil_h = 1, .dil_w = 1 },
    { .n = 1, .c = 3, .h = 13, .w = 11, .oc = 4, .kh = 15, .kw = 13, .stride_h = 1,
      .stride_w = 1, .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1 },
};
#define S_NGEOMS (sizeof s_geoms / sizeof s_geoms [0])

static void
s_im2col (const wrk_conv_t *cv, int layout, uint64_t seed)
{
    int oh, ow;
    cr_assert_eq (wrk_kernels_conv_out (cv, &oh, &ow), 0);
    const size_t n_in = (size_t) cv->n * cv->c * cv->h * cv->w;
    const size_t n_col = (size_t) cv->n * oh * ow * cv->c * cv->kh * cv->kw;
    float *in = kt_alloc (n_in * sizeof *in);
    float *ref = kt_alloc (n_col * sizeof *ref);
    wrk_ref_fill (in, n_in, seed, -1.0f, 1.0f);
    cr_assert_eq (wrk_ref_im2col (layout, in, ref, cv), 0);
    cl_mem din = kt_in (in, n_in * sizeof *in);
    cl_mem dcol = kt_out (n_col);
    KT_OK (wrk_kernels_im2col (kt_dev, layout, din, dcol, cv, NULL, err));
    float *got = kt_result (dcol, n_col);
    char what [64];
    snprintf (what, sizeof what, "im2col %s c %d k %dx%d seed %llu",
              layout == WRK_LAYOUT_NCHW ? "nchw" : "nhwc", cv->c, cv->kh, cv->kw,
              (unsigned long long) seed);
    kt_check_exact (what, got, ref, n_col);
    clReleaseMemObject (din);
    clReleaseMemObject (dcol);
    free (got);
    free (in);
    free (ref);
}

static void
s_conv (const wrk_conv_t *cv, bool affine, bool relu, uint64_t seed)
{
    int oh, ow;
    cr_assert_eq (wrk_kernels_conv_out (cv, &oh, &ow), 0);
    const size_t n_in = (size_t) cv->n * cv->h * cv->w * cv->c;
    const size_t K = (size_t) cv->kh * cv->kw * cv->c;
    const size_t n_w = (size_t) cv->oc * K;
    const size_t n_y = (size_t) cv->n * oh * ow * cv->oc;
    float *in = kt_alloc (n_in * sizeof *in);
    float *w = kt_alloc (n_w * sizeof *w);
    float *scale = kt_alloc ((size_t) cv->oc * sizeof *scale);
    float *bias = kt_alloc ((size_t) cv->oc * sizeof *bias);
    float *ref = kt_alloc (n_y * sizeof *ref);
    double *absdot = kt_alloc (n_y * sizeof *absdot);
    double *bound = kt_alloc (n_y * sizeof *bound);
    wrk_ref_fill (in, n_in, seed, -1.0f, 1.0f);
    wrk_ref_fill (w, n_w, seed + 1, -0.5f, 0.5f);
    wrk_ref_fill (scale, (size_t) cv->oc, seed + 2, 0.5f, 2.0f);
    wrk_ref_fill (bias, (size_t) cv->oc, seed + 3, -1.0f, 1.0f);
    const float *sp = affine ? scale : NULL, *bp = affine ? bias : NULL;
    cr_assert_eq (wrk_ref_conv2d_nhwc (in, w, sp, bp, ref, cv, relu, absdot), 0);
    const double gamma = (K + 3) * KT_U / (1 - K * KT_U);
    for (size_t i = 0; i < n_y; i++)
        bound [i] = gamma * absdot [i] + KT_U * fabs (ref [i]);

    cl_mem din = kt_in (in, n_in * sizeof *in);
    cl_mem dw = kt_in (w, n_w * sizeof *w);
    cl_mem ds = affine ? kt_in (scale, (size_t) cv->oc * sizeof *scale) : NULL;
    cl_mem db = affine ? kt_in (bias, (size_t) cv->oc * sizeof *bias) : NULL;
    cl_mem dy = kt_out (n_y);
    KT_OK (wrk_kernels_conv2d_nhwc (kt_dev, din, dw, ds, db, dy, cv, relu, NULL, err));
    float *got = kt_result (dy, n_y);
    char what [80];
    snprintf (what, sizeof what, "conv2d c %d oc %d k %dx%d affine %d relu %d seed %llu",
              cv->c, cv->oc, cv->kh, cv->kw, affine, relu, (unsigned long long) seed);
    kt_check (what, got, ref, bound, n_y);
    if (relu)
        for (size_t i = 0; i < n_y; i++)
            cr_assert (got [i] >= 0.0f, "%s: element %zu is negative", what, i);

    clReleaseMemObject (din);
    clReleaseMemObject (dw);
    if (ds)
        clReleaseMemObject (ds);
    if (db)
        clReleaseMemObject (db);
    clReleaseMemObject (dy);
    free (got);
    free (in);
    free (w);
    free (scale);
    free (bias);
    free (ref);
    free (absdot);
    free (bound);
}

TestSuite (conv, .init = kt_open, .fini = kt_close);

Test (conv, im2col_nchw_and_nhwc_bit_exact)
{
    for (uint64_t seed = 1; seed <= 3; seed++)
        for (size_t g = 0; g < S_NGEOMS; g++) {
            s_im2col (&s_geoms [g], WRK_LAYOUT_NCHW, seed * 10 + g);
            s_im2col (&s_geoms [g], WRK_LAYOUT_NHWC, seed * 10 + g + 5);
        }
}

Test (conv, direct_nhwc_with_folded_batch_norm_and_relu)
{
    for (uint64_t seed = 1; seed <= 3; seed++)
        for (size_t g = 0; g < S_NGEOMS; g++) {
            s_conv (&s_geoms [g], true, false, seed * 10 + g);
            s_conv (&s_geoms [g], true, true, seed * 10 + g + 5);
        }
    s_conv (&s_geoms [0], false, false, 99);
    s_conv (&s_geoms [1], false, true, 98);
}

Test (conv, rejects_bad_geometry)
{
    float x [16] = { 0 };
    cl_mem d = kt_in (x, sizeof x);
    wrk_conv_t cv = s_geoms [0];
    cv.stride_h = 0;
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_im2col (kt_dev, WRK_LAYOUT_NCHW, d, d, &cv, NULL, err));
    cv = s_geoms [0];
    cv.kh = 40;                 // larger than the padded image: no output
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_conv2d_nhwc (kt_dev, d, d, NULL, NULL, d, &cv,
                                                    false, NULL, err));
    cv = s_geoms [0];           // valid, but the buffers are far too small
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_conv2d_nhwc (kt_dev, d, d, NULL, NULL, d, &cv,
                                                    false, NULL, err));
    cv.oc = 0;
    KT_FAILS (RXQ_E_INVAL, wrk_kernels_conv2d_nhwc (kt_dev, d, d, NULL, NULL, d, &cv,
                                                    false, NULL, err));
    clReleaseMemObject (d);
}
