/*  conv.cl: 2D convolution building blocks, float32.
 *
 *  Geometry travels as one int16 argument g:
 *    g.s0 N (images), s1 C (input channels), s2 H, s3 W (input size),
 *    s4 OC (output channels), s5 KH, s6 KW (kernel size),
 *    s7 stride_h, s8 stride_w, s9 pad_h, sA pad_w (zeros, each side),
 *    sB dil_h, sC dil_w, sD OH, sE OW (output size: OH = (H + 2 pad_h -
 *    dil_h (KH - 1) - 1) / stride_h + 1, the host computes it), sF unused.
 *
 *  im2col_nchw: in [N, C, H, W] -> col [N*OH*OW, C*KH*KW], column index
 *               (c * KH + kh) * KW + kw (matches weights [OC, C, KH, KW]).
 *  im2col_nhwc: in [N, H, W, C] -> col [N*OH*OW, KH*KW*C], column index
 *               (kh * KW + kw) * C + c (matches weights [OC, KH, KW, C]).
 *  Row p = (n * OH + oh) * OW + ow. Taps that fall in the padding are 0.
 *  Then Y = col W^T (any GEMM) is the convolution, [N*OH*OW, OC] = NHWC.
 *
 *  conv2d_nhwc: direct convolution, in [N, H, W, C], w [OC, KH, KW, C],
 *  y [N, OH, OW, OC]; y = conv * scale[oc] + bias[oc] (batch norm folded
 *  into a per-channel affine; scale and bias may be NULL buffers: 1 and
 *  0), then max (y, 0) when relu != 0. Work-item (pixel, oc group)
 *  computes CONV_OCT neighbouring output channels, so each input value it
 *  loads is used CONV_OCT times; neighbouring work-items share the pixel,
 *  so the input reads hit the same cache lines and the writes of y are
 *  contiguous.
 *
 *  NDRange: im2col global (rows * cols) rounded up to CONV_WGS, local
 *  CONV_WGS; conv2d_nhwc global (N*OH*OW * ceil(OC / CONV_OCT)) rounded up
 *  to CONV_WGS, local CONV_WGS. Constraints: all sizes >= 1, strides and
 *  dilations >= 1, pads >= 0; element counts < 2^31.
 */

#ifndef CONV_WGS
#define CONV_WGS 64             // work-items per group
#endif
#ifndef CONV_OCT
#define CONV_OCT 4              // output channels per work-item (direct)
#endif

__kernel __attribute__ ((reqd_work_group_size (CONV_WGS, 1, 1))) void
im2col_nchw (const __global float *in, __global float *col, int16 g)
{
    const int C = g.s1, H = g.s2, W = g.s3, KH = g.s5, KW = g.s6;
    const int OH = g.sD, OW = g.sE;
    const int K = C * KH * KW;
    const int idx = get_global_id (0);
    if (idx >= g.s0 * OH * OW * K)
        return;
    const int p = idx / K, k = idx % K;
    const int n = p / (OH * OW), oh = (p / OW) % OH, ow = p % OW;
    const int c = k / (KH * KW), kh = (k / KW) % KH, kw = k % KW;
    const int ih = oh * g.s7 - g.s9 + kh * g.sB;
    const int iw = ow * g.s8 - g.sA + kw * g.sC;
    float v = 0.0f;
    if (ih >= 0 && ih < H && iw >= 0 && iw < W)
        v = in [((size_t) (n * C + c) * H + ih) * W + iw];
    col [idx] = v;
}

__kernel __attribute__ ((reqd_work_group_size (CONV_WGS, 1, 1))) void
im2col_nhwc (const __global float *in, __global float *col, int16 g)
{
    const int C = g.s1, H = g.s2, W = g.s3, KW = g.s6;
    const int OH = g.sD, OW = g.sE;
    const int K = g.s5 * KW * C;
    const int idx = get_global_id (0);
    if (idx >= g.s0 * OH * OW * K)
        return;
    const int p = idx / K, k = idx % K;
    const int n = p / (OH * OW), oh = (p / OW) % OH, ow = p % OW;
    const int kh = k / (KW * C), kw = (k / C) % KW, c = k % C;
    const int ih = oh * g.s7 - g.s9 + kh * g.sB;
    const int iw = ow * g.s8 - g.sA + kw * g.sC;
    float v = 0.0f;
    if (ih >= 0 && ih < H && iw >= 0 && iw < W)
        v = in [((size_t) (n * H + ih) * W + iw) * C + c];
    col [idx] = v;
}

__kernel __attribute__ ((reqd_work_group_size (CONV_WGS, 1, 1))) void
conv2d_nhwc (const __global float *in, const __global float *w,
             const __global float *scale, const __global float *bias,
             __global float *y, int16 g, int relu)
{
    const int C = g.s1, H = g.s2, W = g.s3, OC = g.s4, KH = g.s5, KW = g.s6;
    const int OH = g.sD, OW = g.sE;
    const int ocg = (OC + CONV_OCT - 1) / CONV_OCT;
    const int idx = get_global_id (0);
    if (idx >= g.s0 * OH * OW * ocg)
        return;
    const int p = idx / ocg;
    const int oc0 = (idx % ocg) * CONV_OCT;
    const int n = p / (OH * OW), oh = (p / OW) % OH, ow = p % OW;
    const size_t wstride = (size_t) KH * KW * C;    // floats per filter

    //  Channels past OC read filter OC - 1 (valid memory) and are not stored,
    //  which keeps the inner loop free of bounds tests.
    const __global float *wp [CONV_OCT];
    for (int o = 0; o < CONV_OCT; o++)
        wp [o] = w + (size_t) min (oc0 + o, OC - 1) * wstride;
    float acc [CONV_OCT];
    for (int o = 0; o < CONV_OCT; o++)
        acc [o] = 0.0f;

    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * g.s7 - g.s9 + kh * g.sB;
        if (ih < 0 || ih >= H)
            continue;
        for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * g.s8 - g.sA + kw * g.sC;
            if (iw < 0 || iw >= W)
                continue;
            const __global float *ip = in + ((size_t) (n * H + ih) * W + iw) * C;
            const int woff = (kh * KW + kw) * C;
            for (int c = 0; c < C; c++) {
                const float v = ip [c];
                for (int o = 0; o < CONV_OCT; o++)
                    acc [o] += v * wp [o][woff + c];
            }
        }
    }
    for (int o = 0; o < CONV_OCT; o++) {
        const int oc = oc0 + o;
        if (oc < OC) {
            float v = acc [o];
            if (scale)
                v *= scale [oc];
            if (bias)
                v += bias [oc];
            if (relu)
                v = fmax (v, 0.0f);
            y [(size_t) p * OC + oc] = v;
        }
    }
}
