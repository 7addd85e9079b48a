/*  quant.cl: quantization and dequantization of float32 rows on the
 *  device, bit-identical with common/cmn_quant.c (and so with llama.cpp's
 *  reference quantizers), plus error statistics and F16/BF16 conversion.
 *
 *  quantize_<t>   (src float[n_blocks * QK], dst blocks[n_blocks], n_blocks, bad)
 *  dequantize_<t> (src blocks[n_blocks], dst float[n_blocks * QK], n_blocks)
 *      for <t> in q4_0 q4_1 q5_0 q5_1 q8_0 q4_K q5_K q6_K int4_g32
 *      int4_g64 int4_g128 (block layouts from cmn_quant_blocks.h, which the
 *      host prepends), and f32 f16 bf16 with a "block" of one value.
 *      One work-item per block: block b covers values [b*QK, (b+1)*QK).
 *      Rows of a tensor are back to back and a row is a whole number of
 *      blocks, so a chunk of rows is a flat array of blocks.
 *      A block holding a NaN or an infinity (llama.cpp defines no result
 *      for it; cmn_quant_quantize_row refuses the row) is not written; the
 *      kernel stores the smallest such block index into *bad with
 *      atomic_min (the host sets *bad to INT_MAX first).
 *  quant_stats (x float[n], y float[n], n, part float[5 * groups])
 *      per work-group: sum (x-y)^2, its compensation, max |x-y|, sum x^2,
 *      its compensation. The host adds the groups' partials in double.
 *
 *  Bit-exactness (docs/quantize.md):
 *    - the same single-precision operations in the same order as
 *      cmn_quant.c (do not "simplify" expressions);
 *    - no contraction into fused multiply-adds (the pragma below; the host
 *      never passes -cl-mad-enable or -cl-fast-relaxed-math);
 *    - correctly rounded division and sqrt: the host builds with
 *      -cl-fp32-correctly-rounded-divide-sqrt and refuses devices without
 *      CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT or CL_FP_DENORM;
 *    - rounding by ggml's 1.5 * 2^23 trick (round half to even), round()
 *      (half away from zero, as C's roundf) where ggml uses roundf, and
 *      truncating conversions where ggml casts;
 *    - binary16 conversions by integer code (cmn_f32_to_f16_bits and
 *      cmn_f16_bits_to_f32 in cmn_quant_blocks.h, the OpenCL twins of
 *      cmn_fp32_to_fp16 / cmn_fp16_to_fp32), not vstore_half, whose
 *      rounding mode and NaN handling vary between drivers.
 *  Portable OpenCL C 1.2, no extension.
 */
#pragma OPENCL FP_CONTRACT OFF

#ifndef QS_WGS
#define QS_WGS 64               // work-items per group of quant_stats, power of two
#endif

#if (QS_WGS & (QS_WGS - 1)) != 0
#error "QS_WGS must be a power of two"
#endif

#define QT_GROUP_MAX_EPS 1e-15f
#define QT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define QT_MAX(a, b) ((a) > (b) ? (a) : (b))

//  ---------------------------------------------------------------------------
//  binary16 and bfloat16

ushort
qt_f32_to_bf16 (float f)
{
    uint u = as_uint (f);
    if ((u & 0x7fffffff) > 0x7f800000)
        return (ushort) ((u >> 16) | 64);
    return (ushort) ((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

float
qt_bf16_to_f32 (ushort h)
{
    return as_float ((uint) h << 16);
}

//  ggml's nearest_int (see cmn_quant.c), a NaN giving 0 whatever its
//  payload.
int
qt_nearest_int (float fval)
{
    if (isnan (fval))
        return 0;
    float val = fval + 12582912.f;
    int i = as_int (val);
    return (i & 0x007fffff) - 0x00400000;
}

//  (int) F clamped to [0, HI], as cmn_quant.c's s_trunc.
int
qt_trunc (float f, int hi)
{
    if (!(f >= 0.0f))
        return 0;
    if (f >= (float) hi)
        return hi;
    return (int) f;
}

bool
qt_finite (__global const float *x, int n)
{
    for (int j = 0; j < n; j++)
        if (!isfinite (x [j]))
            return false;
    return true;
}

//  ---------------------------------------------------------------------------
//  32-value blocks

void
qt_quantize_q4_0 (__global const float *x, __global block_q4_0 *y)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK4_0; j++)
        if (amax < fabs (x [j])) {
            amax = fabs (x [j]);
            max = x [j];
        }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = cmn_f32_to_f16_bits (d);
    for (int j = 0; j < QK4_0 / 2; j++) {
        const float x0 = x [j] * id;
        const float x1 = x [QK4_0 / 2 + j] * id;
        const int q0 = qt_trunc (x0 + 8.5f, 15);
        const int q1 = qt_trunc (x1 + 8.5f, 15);
        y->qs [j] = (uchar) (q0 | (q1 << 4));
    }
}

void
qt_dequantize_q4_0 (__global const block_q4_0 *x, __global float *y)
{
    const float d = cmn_f16_bits_to_f32 (x->d);
    for (int j = 0; j < QK4_0 / 2; j++) {
        y [j] = ((x->qs [j] & 0x0f) - 8) * d;
        y [j + QK4_0 / 2] = ((x->qs [j] >> 4) - 8) * d;
    }
}

void
qt_minmax (__global const float *x, int n, float *min_p, float *max_p)
{
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x [j] < min) min = x [j];
        if (x [j] > max) max = x [j];
    }
    *min_p = min;
    *max_p = max;
}

void
qt_quantize_q4_1 (__global const float *x, __global block_q4_1 *y)
{
    float min, max;
    qt_minmax (x, QK4_1, &min, &max);
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = cmn_f32_to_f16_bits (d);
    y->m = cmn_f32_to_f16_bits (min);
    for (int j = 0; j < QK4_1 / 2; j++) {
        const float x0 = (x [j] - min) * id;
        const float x1 = (x [QK4_1 / 2 + j] - min) * id;
        const int q0 = qt_trunc (x0 + 0.5f, 15);
        const int q1 = qt_trunc (x1 + 0.5f, 15);
        y->qs [j] = (uchar) (q0 | (q1 << 4));
    }
}

void
qt_dequantize_q4_1 (__global const block_q4_1 *x, __global float *y)
{
    const float d = cmn_f16_bits_to_f32 (x->d);
    const float m = cmn_f16_bits_to_f32 (x->m);
    for (int j = 0; j < QK4_1 / 2; j++) {
        y [j] = (x->qs [j] & 0x0f) * d + m;
        y [j + QK4_1 / 2] = (x->qs [j] >> 4) * d + m;
    }
}

void
qt_pack_q5 (const int *q, __global uchar *qs, __global uchar *qh_bytes)
{
    uint qh = 0;
    for (int j = 0; j < 16; j++) {
        qs [j] = (uchar) ((q [j] & 0x0f) | ((q [j + 16] & 0x0f) << 4));
        qh |= ((uint) (q [j] & 0x10) >> 4) << j;
        qh |= ((uint) (q [j + 16] & 0x10) >> 4) << (j + 16);
    }
    for (int b = 0; b < 4; b++)
        qh_bytes [b] = (uchar) (qh >> (8 * b));
}

uint
qt_load_qh (__global const uchar *qh)
{
    return (uint) qh [0] | (uint) qh [1] << 8 | (uint) qh [2] << 16 | (uint) qh [3] << 24;
}

void
qt_quantize_q5_0 (__global const float *x, __global block_q5_0 *y)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK5_0; j++)
        if (amax < fabs (x [j])) {
            amax = fabs (x [j]);
            max = x [j];
        }
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = cmn_f32_to_f16_bits (d);
    int q [QK5_0];
    for (int j = 0; j < QK5_0; j++) {
        const float v = x [j] * id;
        q [j] = qt_trunc (v + 16.5f, 31);
    }
    qt_pack_q5 (q, y->qs, y->qh);
}

void
qt_dequantize_q5_0 (__global const block_q5_0 *x, __global float *y)
{
    const float d = cmn_f16_bits_to_f32 (x->d);
    const uint qh = qt_load_qh (x->qh);
    for (int j = 0; j < QK5_0 / 2; j++) {
        const int h0 = ((qh >> j) << 4) & 0x10;
        const int h1 = (qh >> (j + 12)) & 0x10;
        y [j] = (((x->qs [j] & 0x0f) | h0) - 16) * d;
        y [j + QK5_0 / 2] = (((x->qs [j] >> 4) | h1) - 16) * d;
    }
}

void
qt_quantize_q5_1 (__global const float *x, __global block_q5_1 *y)
{
    float min, max;
    qt_minmax (x, QK5_1, &min, &max);
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = cmn_f32_to_f16_bits (d);
    y->m = cmn_f32_to_f16_bits (min);
    int q [QK5_1];
    for (int j = 0; j < QK5_1; j++) {
        const float v = (x [j] - min) * id;
        q [j] = qt_trunc (v + 0.5f, 31);
    }
    qt_pack_q5 (q, y->qs, y->qh);
}

void
qt_dequantize_q5_1 (__global const block_q5_1 *x, __global float *y)
{
    const float d = cmn_f16_bits_to_f32 (x->d);
    const float m = cmn_f16_bits_to_f32 (x->m);
    const uint qh = qt_load_qh (x->qh);
    for (int j = 0; j < QK5_1 / 2; j++) {
        const int h0 = ((qh >> j) << 4) & 0x10;
        const int h1 = (qh >> (j + 12)) & 0x10;
        y [j] = ((x->qs [j] & 0x0f) | h0) * d + m;
        y [j + QK5_1 / 2] = ((x->qs [j] >> 4) | h1) * d + m;
    }
}

void
qt_quantize_q8_0 (__global const float *x, __global block_q8_0 *y)
{
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; j++)
        amax = QT_MAX (amax, fabs (x [j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = cmn_f32_to_f16_bits (d);
    for (int j = 0; j < QK8_0; j++) {
        const float v = QT_MAX (-127.f, QT_MIN (127.f, round (x [j] * id)));
        y->qs [j] = (char) (int) v;
    }
}

void
qt_dequantize_q8_0 (__global const block_q8_0 *x, __global float *y)
{
    const float d = cmn_f16_bits_to_f32 (x->d);
    for (int j = 0; j < QK8_0; j++)
        y [j] = x->qs [j] * d;
}

//  ---------------------------------------------------------------------------
//  K-quants

float
qt_make_qkx2_quants (int n, int nmax, __global const float *x, const float *weights,
                     uchar *L, float *the_min, uchar *Laux,
                     float rmin, float rdelta, int nstep)
{
    float min = x [0];
    float max = x [0];
    float sum_w = weights [0];
    float sum_x = sum_w * x [0];
    for (int i = 1; i < n; i++) {
        if (x [i] < min) min = x [i];
        if (x [i] > max) max = x [i];
        float w = weights [i];
        sum_w += w;
        sum_x += w * x [i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++)
            L [i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = qt_nearest_int (iscale * (x [i] - min));
        L [i] = (uchar) QT_MAX (0, QT_MIN (nmax, l));
        float diff = scale * L [i] + min - x [i];
        diff = diff * diff;
        best_error += weights [i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = qt_nearest_int (iscale * (x [i] - min));
            l = QT_MAX (0, QT_MIN (nmax, l));
            Laux [i] = (uchar) l;
            float w = weights [i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x [i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux [i] + this_min - x [i];
                diff = diff * diff;
                cur_error += weights [i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++)
                    L [i] = Laux [i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

float
qt_make_qx_quants (int n, int nmax, __global const float *x, char *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabs (x [i]);
        if (ax > amax) {
            amax = ax;
            max = x [i];
        }
    }
    if (amax < QT_GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++)
            L [i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = qt_nearest_int (iscale * x [i]);
        l = QT_MAX (-nmax, QT_MIN (nmax - 1, l));
        L [i] = (char) (l + nmax);
        float w = x [i] * x [i];
        sumlx += w * x [i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = qt_nearest_int (iscale * x [i]);
            l = QT_MAX (-nmax, QT_MIN (nmax - 1, l));
            float w = x [i] * x [i];
            sumlx += w * x [i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = qt_nearest_int (iscale * x [i]);
                L [i] = (char) (nmax + QT_MAX (-nmax, QT_MIN (nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

void
qt_get_scale_min_k4 (int j, const uchar *q, uchar *d, uchar *m)
{
    *d = (uchar) CMN_Q4K_SCALE (j, q);
    *m = (uchar) CMN_Q4K_MIN (j, q);
}

void
qt_get_scale_min_k4_g (int j, __global const uchar *q, uchar *d, uchar *m)
{
    *d = (uchar) CMN_Q4K_SCALE (j, q);
    *m = (uchar) CMN_Q4K_MIN (j, q);
}

//  The common part of Q4_K and Q5_K (cmn_quant.c s_quantize_k_scales);
//  Y_SCALES is built in private memory and copied by the caller.
void
qt_quantize_k_scales (__global const float *x, int nmax, float rmin, float rdelta, int nstep,
                      uchar *L, uchar *y_scales, ushort *y_d, ushort *y_dmin)
{
    uchar Laux [32];
    float weights [32];
    float mins [QK_K / 32];
    float scales [QK_K / 32];
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += x [32 * j + l] * x [32 * j + l];
        float av_x = sqrt (sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            weights [l] = av_x + fabs (x [32 * j + l]);
        scales [j] = qt_make_qkx2_quants (32, nmax, x + 32 * j, weights, L + 32 * j,
                                          &mins [j], Laux, rmin, rdelta, nstep);
        if (scales [j] > max_scale)
            max_scale = scales [j];
        if (mins [j] > max_min)
            max_min = mins [j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < K_SCALE_SIZE; j++)
        y_scales [j] = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        uchar ls = (uchar) qt_nearest_int (inv_scale * scales [j]);
        uchar lm = (uchar) qt_nearest_int (inv_min * mins [j]);
        ls = QT_MIN (63, ls);
        lm = QT_MIN (63, lm);
        if (j < 4) {
            y_scales [j] = ls;
            y_scales [j + 4] = lm;
        }
        else {
            y_scales [j + 4] = (uchar) ((ls & 0xf) | ((lm & 0xf) << 4));
            y_scales [j - 4] |= (uchar) ((ls >> 4) << 6);
            y_scales [j] |= (uchar) ((lm >> 4) << 6);
        }
    }
    *y_d = cmn_f32_to_f16_bits (max_scale / 63.f);
    *y_dmin = cmn_f32_to_f16_bits (max_min / 63.f);
    for (int j = 0; j < QK_K / 32; j++) {
        uchar sc, m;
        qt_get_scale_min_k4 (j, y_scales, &sc, &m);
        const float d = cmn_f16_bits_to_f32 (*y_d) * sc;
        if (d == 0.0f)
            continue;
        const float dm = cmn_f16_bits_to_f32 (*y_dmin) * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = qt_nearest_int ((x [32 * j + ii] + dm) / d);
            L [32 * j + ii] = (uchar) QT_MAX (0, QT_MIN (nmax, l));
        }
    }
}

void
qt_quantize_q4_K (__global const float *x, __global block_q4_K *y)
{
    uchar L [QK_K];
    uchar sc [K_SCALE_SIZE];
    ushort d, dmin;
    qt_quantize_k_scales (x, 15, -1.f, 0.1f, 20, L, sc, &d, &dmin);
    y->d = d;
    y->dmin = dmin;
    for (int j = 0; j < K_SCALE_SIZE; j++)
        y->scales [j] = sc [j];
    __global uchar *q = y->qs;
    for (int j = 0; j < QK_K; j += 64, q += 32)
        for (int l = 0; l < 32; l++)
            q [l] = (uchar) (L [j + l] | (L [j + l + 32] << 4));
}

void
qt_dequantize_q4_K (__global const block_q4_K *x, __global float *y)
{
    __global const uchar *q = x->qs;
    const float d = cmn_f16_bits_to_f32 (x->d);
    const float min = cmn_f16_bits_to_f32 (x->dmin);
    int is = 0;
    for (int j = 0; j < QK_K; j += 64, q += 32, is += 2) {
        uchar sc, m;
        qt_get_scale_min_k4_g (is, x->scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        qt_get_scale_min_k4_g (is + 1, x->scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (q [l] & 0xf) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (q [l] >> 4) - m2;
    }
}

void
qt_quantize_q5_K (__global const float *x, __global block_q5_K *y)
{
    uchar L [QK_K];
    uchar sc [K_SCALE_SIZE];
    ushort d, dmin;
    qt_quantize_k_scales (x, 31, -0.5f, 0.1f, 15, L, sc, &d, &dmin);
    y->d = d;
    y->dmin = dmin;
    for (int j = 0; j < K_SCALE_SIZE; j++)
        y->scales [j] = sc [j];
    uchar qh [QK_K / 8];
    for (int j = 0; j < QK_K / 8; j++)
        qh [j] = 0;
    __global uchar *ql = y->qs;
    uchar m1 = 1, m2 = 2;
    for (int n = 0; n < QK_K; n += 64, ql += 32) {
        for (int j = 0; j < 32; j++) {
            int l1 = L [n + j];
            if (l1 > 15) {
                l1 -= 16;
                qh [j] |= m1;
            }
            int l2 = L [n + j + 32];
            if (l2 > 15) {
                l2 -= 16;
                qh [j] |= m2;
            }
            ql [j] = (uchar) (l1 | (l2 << 4));
        }
        m1 = (uchar) (m1 << 2);
        m2 = (uchar) (m2 << 2);
    }
    for (int j = 0; j < QK_K / 8; j++)
        y->qh [j] = qh [j];
}

void
qt_dequantize_q5_K (__global const block_q5_K *x, __global float *y)
{
    __global const uchar *ql = x->qs;
    __global const uchar *qh = x->qh;
    const float d = cmn_f16_bits_to_f32 (x->d);
    const float min = cmn_f16_bits_to_f32 (x->dmin);
    int is = 0;
    uint u1 = 1, u2 = 2;
    for (int j = 0; j < QK_K; j += 64, ql += 32, is += 2, u1 <<= 2, u2 <<= 2) {
        uchar sc, m;
        qt_get_scale_min_k4_g (is, x->scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        qt_get_scale_min_k4_g (is + 1, x->scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * ((ql [l] & 0xf) + (qh [l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * ((ql [l] >> 4) + (qh [l] & u2 ? 16 : 0)) - m2;
    }
}

void
qt_quantize_q6_K (__global const float *x, __global block_q6_K *y)
{
    char L [QK_K];
    float scales [QK_K / 16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ib++) {
        const float scale = qt_make_qx_quants (16, 32, x + 16 * ib, L + 16 * ib);
        scales [ib] = scale;
        if (fabs (scale) > max_abs_scale) {
            max_abs_scale = fabs (scale);
            max_scale = scale;
        }
    }
    if (max_abs_scale < QT_GROUP_MAX_EPS) {
        __global uchar *p = (__global uchar *) y;
        for (int j = 0; j < (int) sizeof (block_q6_K); j++)
            p [j] = 0;
        return;
    }
    float iscale = -128.f / max_scale;
    const ushort dh = cmn_f32_to_f16_bits (1 / iscale);
    y->d = dh;
    char sc [QK_K / 16];
    for (int ib = 0; ib < QK_K / 16; ib++) {
        sc [ib] = (char) QT_MIN (127, qt_nearest_int (iscale * scales [ib]));
        y->scales [ib] = sc [ib];
    }
    for (int j = 0; j < QK_K / 16; j++) {
        float d = cmn_f16_bits_to_f32 (dh) * sc [j];
        if (d == 0.0f)
            continue;
        for (int ii = 0; ii < 16; ii++) {
            int l = qt_nearest_int (x [16 * j + ii] / d);
            l = QT_MAX (-32, QT_MIN (31, l));
            L [16 * j + ii] = (char) (l + 32);
        }
    }
    __global uchar *ql = y->ql;
    __global uchar *qh = y->qh;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            const uchar q1 = L [j + l] & 0xf;
            const uchar q2 = L [j + l + 32] & 0xf;
            const uchar q3 = L [j + l + 64] & 0xf;
            const uchar q4 = L [j + l + 96] & 0xf;
            ql [l] = (uchar) (q1 | (q3 << 4));
            ql [l + 32] = (uchar) (q2 | (q4 << 4));
            qh [l] = (uchar) ((L [j + l] >> 4) | ((L [j + l + 32] >> 4) << 2)
                              | ((L [j + l + 64] >> 4) << 4) | ((L [j + l + 96] >> 4) << 6));
        }
    }
}

void
qt_dequantize_q6_K (__global const block_q6_K *x, __global float *y)
{
    const float d = cmn_f16_bits_to_f32 (x->d);
    __global const uchar *ql = x->ql;
    __global const uchar *qh = x->qh;
    __global const char *sc = x->scales;
    for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            const int q1 = ((ql [l] & 0xf) | (((qh [l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql [l + 32] & 0xf) | (((qh [l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql [l] >> 4) | (((qh [l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql [l + 32] >> 4) | (((qh [l] >> 6) & 3) << 4)) - 32;
            y [l] = d * sc [is] * q1;
            y [l + 32] = d * sc [is + 2] * q2;
            y [l + 64] = d * sc [is + 4] * q3;
            y [l + 96] = d * sc [is + 6] * q4;
        }
    }
}

//  ---------------------------------------------------------------------------
//  rxq INT4 (docs/quantization.md); DST is the block's first byte.

void
qt_quantize_int4 (__global const float *x, __global uchar *dst, int g)
{
    float min = 0.0f, max = 0.0f;
    for (int j = 0; j < g; j++) {
        if (x [j] < min) min = x [j];
        if (x [j] > max) max = x [j];
    }
    const ushort dh = cmn_f32_to_f16_bits ((max - min) / 15.0f);
    const float d = cmn_f16_bits_to_f32 (dh);
    const float id = (d != 0.0f && isfinite (d)) ? 1.0f / d : 0.0f;
    int zp = qt_nearest_int (-min * id);
    zp = QT_MAX (0, QT_MIN (15, zp));
    dst [0] = (uchar) dh;
    dst [1] = (uchar) (dh >> 8);
    dst [2] = (uchar) zp;
    dst [3] = 0;
    __global uchar *qs = dst + 4;
    for (int j = 0; j < g; j += 2) {
        int q0 = qt_nearest_int (x [j] * id) + zp;
        int q1 = qt_nearest_int (x [j + 1] * id) + zp;
        q0 = QT_MAX (0, QT_MIN (15, q0));
        q1 = QT_MAX (0, QT_MIN (15, q1));
        qs [j / 2] = (uchar) (q0 | (q1 << 4));
    }
}

void
qt_dequantize_int4 (__global const uchar *src, __global float *y, int g)
{
    const ushort dh = (ushort) (src [0] | (src [1] << 8));
    const float d = cmn_f16_bits_to_f32 (dh);
    const int zp = src [2] & 0x0f;
    __global const uchar *qs = src + 4;
    for (int j = 0; j < g; j += 2) {
        y [j] = ((qs [j / 2] & 0x0f) - zp) * d;
        y [j + 1] = ((qs [j / 2] >> 4) - zp) * d;
    }
}

//  ---------------------------------------------------------------------------
//  Kernels

#define QT_BLOCK_KERNELS(name, BT, QK) \
__kernel void \
quantize_##name (__global const float *src, __global BT *dst, const uint n_blocks, \
                 __global int *bad) \
{ \
    const uint b = get_global_id (0); \
    if (b >= n_blocks) \
        return; \
    __global const float *x = src + (size_t) b * QK; \
    if (!qt_finite (x, QK)) { \
        atomic_min (bad, (int) b); \
        return; \
    } \
    qt_quantize_##name (x, dst + b); \
} \
__kernel void \
dequantize_##name (__global const BT *src, __global float *dst, const uint n_blocks) \
{ \
    const uint b = get_global_id (0); \
    if (b < n_blocks) \
        qt_dequantize_##name (src + b, dst + (size_t) b * QK); \
}

QT_BLOCK_KERNELS (q4_0, block_q4_0, QK4_0)
QT_BLOCK_KERNELS (q4_1, block_q4_1, QK4_1)
QT_BLOCK_KERNELS (q5_0, block_q5_0, QK5_0)
QT_BLOCK_KERNELS (q5_1, block_q5_1, QK5_1)
QT_BLOCK_KERNELS (q8_0, block_q8_0, QK8_0)
QT_BLOCK_KERNELS (q4_K, block_q4_K, QK_K)
QT_BLOCK_KERNELS (q5_K, block_q5_K, QK_K)
QT_BLOCK_KERNELS (q6_K, block_q6_K, QK_K)

#define QT_INT4_KERNELS(G) \
__kernel void \
quantize_int4_g##G (__global const float *src, __global uchar *dst, const uint n_blocks, \
                    __global int *bad) \
{ \
    const uint b = get_global_id (0); \
    if (b >= n_blocks) \
        return; \
    __global const float *x = src + (size_t) b * G; \
    if (!qt_finite (x, G)) { \
        atomic_min (bad, (int) b); \
        return; \
    } \
    qt_quantize_int4 (x, dst + (size_t) b * (4 + G / 2), G); \
} \
__kernel void \
dequantize_int4_g##G (__global const uchar *src, __global float *dst, const uint n_blocks) \
{ \
    const uint b = get_global_id (0); \
    if (b < n_blocks) \
        qt_dequantize_int4 (src + (size_t) b * (4 + G / 2), dst + (size_t) b * G, G); \
}

QT_INT4_KERNELS (32)
QT_INT4_KERNELS (64)
QT_INT4_KERNELS (128)

//  Float formats: one value per work-item; every value converts, NaN
//  included (as cmn_quant_quantize_row does), so BAD is never set.
__kernel void
quantize_f32 (__global const float *src, __global float *dst, const uint n, __global int *bad)
{
    const uint i = get_global_id (0);
    (void) bad;
    if (i < n)
        dst [i] = src [i];
}

__kernel void
quantize_f16 (__global const float *src, __global ushort *dst, const uint n, __global int *bad)
{
    const uint i = get_global_id (0);
    (void) bad;
    if (i < n)
        dst [i] = cmn_f32_to_f16_bits (src [i]);
}

__kernel void
quantize_bf16 (__global const float *src, __global ushort *dst, const uint n, __global int *bad)
{
    const uint i = get_global_id (0);
    (void) bad;
    if (i < n)
        dst [i] = qt_f32_to_bf16 (src [i]);
}

__kernel void
dequantize_f32 (__global const float *src, __global float *dst, const uint n)
{
    const uint i = get_global_id (0);
    if (i < n)
        dst [i] = src [i];
}

__kernel void
dequantize_f16 (__global const ushort *src, __global float *dst, const uint n)
{
    const uint i = get_global_id (0);
    if (i < n)
        dst [i] = cmn_f16_bits_to_f32 (src [i]);
}

__kernel void
dequantize_bf16 (__global const ushort *src, __global float *dst, const uint n)
{
    const uint i = get_global_id (0);
    if (i < n)
        dst [i] = qt_bf16_to_f32 (src [i]);
}

//  ---------------------------------------------------------------------------
//  Error statistics, in two launches. quant_absmax (x, n, part) stores each
//  group's max |x| in part[group]; the host picks K so that 2^K max |x| is
//  about 1. quant_stats (x, y, n, k, part) then sums squares of the values
//  scaled by 2^K (ldexp: exact), so neither tiny weights (whose squares
//  would underflow) nor huge ones (which would overflow) lose the sums; the
//  host scales back by 2^-2K in double. Each work-item walks i = gid, gid +
//  global size, ... with compensated sums; the group combines its (sum,
//  compensation) pairs by a tree of error-free TwoSum additions, so the
//  partials are good to a few units of float rounding whatever n is.

__kernel __attribute__ ((reqd_work_group_size (QS_WGS, 1, 1))) void
quant_absmax (__global const float *x, const uint n, __global float *part)
{
    __local float l_max [QS_WGS];
    const uint lid = get_local_id (0);
    float mx = 0;
    for (uint i = get_global_id (0); i < n; i += get_global_size (0)) {
        const float a = fabs (x [i]);
        mx = a > mx || isnan (a) ? a : mx;
    }
    l_max [lid] = mx;
    barrier (CLK_LOCAL_MEM_FENCE);
    for (uint w = QS_WGS / 2; w > 0; w >>= 1) {
        if (lid < w) {
            const float a = l_max [lid], b = l_max [lid + w];
            l_max [lid] = b > a || isnan (b) ? b : a;
        }
        barrier (CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        part [get_group_id (0)] = l_max [0];
}

void
qt_two_sum (float a, float b, float *s, float *e)
{
    float x = a + b;
    float bv = x - a;
    float av = x - bv;
    *s = x;
    //  An infinite sum (a dequantized value overflowed) stays infinite
    //  rather than turning the compensation into NaN.
    *e = isfinite (x) ? (a - av) + (b - bv) : 0.0f;
}

__kernel __attribute__ ((reqd_work_group_size (QS_WGS, 1, 1))) void
quant_stats (__global const float *x, __global const float *y, const uint n,
             const int k, __global float *part)
{
    __local float l_sse [QS_WGS], l_sse_c [QS_WGS], l_max [QS_WGS];
    __local float l_ssq [QS_WGS], l_ssq_c [QS_WGS];
    const uint lid = get_local_id (0);
    float sse = 0, sse_c = 0, ssq = 0, ssq_c = 0, mx = 0;
    for (uint i = get_global_id (0); i < n; i += get_global_size (0)) {
        const float d = x [i] - y [i];
        const float ad = fabs (d);
        mx = ad > mx || isnan (ad) ? ad : mx;
        const float ds = ldexp (d, k);
        const float xs = ldexp (x [i], k);
        float s, e;
        qt_two_sum (sse, ds * ds, &s, &e);
        sse = s;
        sse_c += e;
        qt_two_sum (ssq, xs * xs, &s, &e);
        ssq = s;
        ssq_c += e;
    }
    l_sse [lid] = sse;
    l_sse_c [lid] = sse_c;
    l_max [lid] = mx;
    l_ssq [lid] = ssq;
    l_ssq_c [lid] = ssq_c;
    barrier (CLK_LOCAL_MEM_FENCE);
    for (uint w = QS_WGS / 2; w > 0; w >>= 1) {
        if (lid < w) {
            float s, e;
            qt_two_sum (l_sse [lid], l_sse [lid + w], &s, &e);
            l_sse [lid] = s;
            l_sse_c [lid] = l_sse_c [lid] + l_sse_c [lid + w] + e;
            qt_two_sum (l_ssq [lid], l_ssq [lid + w], &s, &e);
            l_ssq [lid] = s;
            l_ssq_c [lid] = l_ssq_c [lid] + l_ssq_c [lid + w] + e;
            const float a = l_max [lid], b = l_max [lid + w];
            l_max [lid] = b > a || isnan (b) ? b : a;
        }
        barrier (CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        __global float *p = part + 5 * get_group_id (0);
        p [0] = l_sse [0];
        p [1] = l_sse_c [0];
        p [2] = l_max [0];
        p [3] = l_ssq [0];
        p [4] = l_ssq_c [0];
    }
}
