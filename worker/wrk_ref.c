/*  wrk_ref: CPU references for the compute kernels (see wrk_ref.h). Sums
 *  run in double; each output is rounded to float once.
 */
#include "wrk_ref.h"
#include "cmn_quant.h"
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

void
wrk_ref_fill (float *x, size_t n, uint64_t seed, float lo, float hi)
{
    assert (x || n == 0);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        //  splitmix64
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        const double u = (double) (z >> 11) / 9007199254740992.0;   // [0, 1)
        x [i] = (float) (lo + (hi - lo) * u);
    }
}

int
wrk_ref_gemm_q (int type, const void *W, const float *X, float *Y, int rows,
                int cols, int batch, double *absdot)
{
    assert (W && X && Y && rows >= 0 && cols >= 0 && batch >= 0);
    const size_t rb = cmn_quant_row_bytes (type, (size_t) cols);
    if (cols > 0 && rb == 0)
        return -1;
    float *w = malloc ((size_t) (cols ? cols : 1) * sizeof (float));
    if (!w)
        return -1;
    for (int r = 0; r < rows; r++) {
        if (cmn_quant_dequantize_row (type, (const char *) W + (size_t) r * rb,
                                      w, (size_t) cols)) {
            free (w);
            return -1;
        }
        for (int b = 0; b < batch; b++) {
            const float *x = X + (size_t) b * cols;
            double s = 0, a = 0;
            for (int c = 0; c < cols; c++) {
                s += (double) w [c] * x [c];
                a += fabs ((double) w [c] * x [c]);
            }
            Y [(size_t) b * rows + r] = (float) s;
            if (absdot)
                absdot [(size_t) b * rows + r] = a;
        }
    }
    free (w);
    return 0;
}

int
wrk_ref_i8_slack (int type, const void *W, const float *x, int rows, int cols, double *slack)
{
    assert (W && x && slack && rows >= 1 && cols >= 32 && cols % 32 == 0);
    const size_t rb = cmn_quant_row_bytes (type, (size_t) cols);
    float *w = malloc ((size_t) cols * sizeof *w);
    if (!rb || !w) {
        free (w);
        return -1;
    }
    for (int r = 0; r < rows; r++) {
        if (cmn_quant_dequantize_row (type, (const uint8_t *) W + (size_t) r * rb, w,
                                      (size_t) cols)) {
            free (w);
            return -1;
        }
        slack [r] = 0;
        for (int b = 0; b < cols / 32; b++) {
            double amax = 0, sw = 0;
            for (int j = 0; j < 32; j++) {
                amax = fmax (amax, fabs (x [32 * b + j]));
                sw += fabs (w [32 * b + j]);
            }
            slack [r] += amax / 254.0 * (1 + 1e-6) * sw;
        }
    }
    free (w);
    return 0;
}

double
wrk_ref_act (int act, double v)
{
    switch (act) {
        case WRK_ACT_GELU:
            return 0.5 * v * (1.0 + tanh (0.7978845608028654 * v * (1.0 + 0.044715 * v * v)));
        case WRK_ACT_RELU:
            return v > 0 ? v : 0;
        default:
            return v;
    }
}

void
wrk_ref_rms_norm (const float *x, const float *w, float *y, int rows, int n,
                  float eps, int act)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t) r * n;
        float *yr = y + (size_t) r * n;
        double ss = 0;
        for (int i = 0; i < n; i++)
            ss += (double) xr [i] * xr [i];
        const double scale = 1.0 / sqrt (ss / n + eps);
        for (int i = 0; i < n; i++)
            yr [i] = (float) wrk_ref_act (act, xr [i] * scale * (w ? w [i] : 1.0));
    }
}

void
wrk_ref_layer_norm (const float *x, const float *w, const float *b, float *y,
                    int rows, int n, float eps, int act)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t) r * n;
        float *yr = y + (size_t) r * n;
        double s = 0, ss = 0;
        for (int i = 0; i < n; i++)
            s += xr [i];
        const double mean = s / n;
        for (int i = 0; i < n; i++)
            ss += (xr [i] - mean) * (xr [i] - mean);
        const double scale = 1.0 / sqrt (ss / n + eps);
        for (int i = 0; i < n; i++) {
            const double v = (xr [i] - mean) * scale * (w ? w [i] : 1.0) + (b ? b [i] : 0.0);
            yr [i] = (float) wrk_ref_act (act, v);
        }
    }
}

void
wrk_ref_softmax (const float *x, float *y, int rows, int n, float scale,
                 int q_len, int n_past)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t) r * n;
        float *yr = y + (size_t) r * n;
        int last = n - 1;
        if (q_len > 0 && n_past + r % q_len < last)
            last = n_past + r % q_len;
        double m = -INFINITY, s = 0;
        for (int j = 0; j <= last; j++)
            if ((double) scale * xr [j] > m)
                m = (double) scale * xr [j];
        for (int j = 0; j <= last; j++)
            s += exp ((double) scale * xr [j] - m);
        for (int j = 0; j < n; j++)
            yr [j] = j <= last ? (float) (exp ((double) scale * xr [j] - m) / s) : 0.0f;
    }
}

void
wrk_ref_rope (const float *x, float *y, const int32_t *pos, const wrk_rope_t *r)
{
    const int half = r->n_dims / 2;
    for (int t = 0; t < r->n_tokens; t++)
        for (int h = 0; h < r->n_heads; h++) {
            const float *xp = x + (size_t) t * r->xs_tok + (size_t) h * r->xs_head;
            float *yp = y + (size_t) t * r->ys_tok + (size_t) h * r->ys_head;
            for (int d = r->n_dims; d < r->head_dim; d++)
                yp [d] = xp [d];
            for (int i = 0; i < half; i++) {
                const int i0 = r->mode == WRK_ROPE_NEOX ? i : 2 * i;
                const int i1 = r->mode == WRK_ROPE_NEOX ? i + half : 2 * i + 1;
                const double theta = pos [t] * pow (r->freq_base, -2.0 * i / r->n_dims);
                const double a = xp [i0], b = xp [i1];
                yp [i0] = (float) (a * cos (theta) - b * sin (theta));
                yp [i1] = (float) (a * sin (theta) + b * cos (theta));
            }
        }
}

void
wrk_ref_attention (const float *Q, const float *K, const float *V, float *O,
                   const wrk_attn_t *a)
{
    const int hd = a->head_dim;
    const int group = a->n_q_heads / a->n_kv_heads;
    double *p = malloc ((size_t) (a->n_past + a->n_tokens) * sizeof (double));
    assert (p);
    for (int h = 0; h < a->n_q_heads; h++)
        for (int t = 0; t < a->n_tokens; t++) {
            const float *q = Q + ((size_t) h * a->n_tokens + t) * hd;
            const float *Kh = K + (size_t) (h / group) * a->ctx * hd;
            const float *Vh = V + (size_t) (h / group) * a->ctx * hd;
            const int n_kv = a->n_past + t + 1;
            double m = -INFINITY, l = 0;
            for (int j = 0; j < n_kv; j++) {
                double s = 0;
                for (int d = 0; d < hd; d++)
                    s += (double) q [d] * Kh [(size_t) j * hd + d];
                p [j] = s * a->scale;
                if (p [j] > m)
                    m = p [j];
            }
            for (int j = 0; j < n_kv; j++) {
                p [j] = exp (p [j] - m);
                l += p [j];
            }
            for (int d = 0; d < hd; d++) {
                double o = 0;
                for (int j = 0; j < n_kv; j++)
                    o += p [j] * Vh [(size_t) j * hd + d];
                O [((size_t) h * a->n_tokens + t) * hd + d] = (float) (o / l);
            }
        }
    free (p);
}

void
wrk_ref_add (const float *a, const float *b, float *y, size_t n, size_t bn)
{
    for (size_t i = 0; i < n; i++)
        y [i] = (float) ((double) a [i] + b [i % bn]);
}

void
wrk_ref_mul (const float *a, const float *b, float *y, size_t n, size_t bn)
{
    for (size_t i = 0; i < n; i++)
        y [i] = (float) ((double) a [i] * b [i % bn]);
}

void
wrk_ref_scale (const float *a, float *y, size_t n, float s)
{
    for (size_t i = 0; i < n; i++)
        y [i] = (float) ((double) s * a [i]);
}

static double
s_silu (double v)
{
    return v / (1.0 + exp (-v));
}

void
wrk_ref_silu (const float *a, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y [i] = (float) s_silu (a [i]);
}

void
wrk_ref_gelu (const float *a, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y [i] = (float) wrk_ref_act (WRK_ACT_GELU, a [i]);
}

void
wrk_ref_swiglu (const float *a, const float *b, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y [i] = (float) (s_silu (a [i]) * b [i]);
}

void
wrk_ref_transpose (const float *a, float *b, int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            b [(size_t) c * rows + r] = a [(size_t) r * cols + c];
}

//  Input value at (n, c, ih, iw) of LAYOUT, 0 outside the image.
static float
s_pixel (int layout, const float *in, const wrk_conv_t *cv, int n, int c,
         int ih, int iw)
{
    if (ih < 0 || ih >= cv->h || iw < 0 || iw >= cv->w)
        return 0.0f;
    if (layout == WRK_LAYOUT_NCHW)
        return in [(((size_t) n * cv->c + c) * cv->h + ih) * cv->w + iw];
    return in [(((size_t) n * cv->h + ih) * cv->w + iw) * cv->c + c];
}

int
wrk_ref_im2col (int layout, const float *in, float *col, const wrk_conv_t *cv)
{
    int oh, ow;
    if (wrk_kernels_conv_out (cv, &oh, &ow))
        return -1;
    const size_t K = (size_t) cv->c * cv->kh * cv->kw;
    for (int n = 0; n < cv->n; n++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                float *row = col + (((size_t) n * oh + y) * ow + x) * K;
                for (int c = 0; c < cv->c; c++)
                    for (int kh = 0; kh < cv->kh; kh++)
                        for (int kw = 0; kw < cv->kw; kw++) {
                            const size_t k = layout == WRK_LAYOUT_NCHW
                                ? ((size_t) c * cv->kh + kh) * cv->kw + kw
                                : ((size_t) kh * cv->kw + kw) * cv->c + c;
                            row [k] = s_pixel (layout, in, cv, n, c,
                                               y * cv->stride_h - cv->pad_h + kh * cv->dil_h,
                                               x * cv->stride_w - cv->pad_w + kw * cv->dil_w);
                        }
            }
    return 0;
}

int
wrk_ref_conv2d_nhwc (const float *in, const float *w, const float *scale,
                     const float *bias, float *y, const wrk_conv_t *cv,
                     bool relu, double *absdot)
{
    int oh, ow;
    if (wrk_kernels_conv_out (cv, &oh, &ow) || cv->oc < 1)
        return -1;
    for (int n = 0; n < cv->n; n++)
        for (int py = 0; py < oh; py++)
            for (int px = 0; px < ow; px++) {
                const size_t p = ((size_t) n * oh + py) * ow + px;
                for (int oc = 0; oc < cv->oc; oc++) {
                    double s = 0, a = 0;
                    for (int kh = 0; kh < cv->kh; kh++)
                        for (int kw = 0; kw < cv->kw; kw++)
                            for (int c = 0; c < cv->c; c++) {
                                const double v = s_pixel (WRK_LAYOUT_NHWC, in, cv, n, c,
                                    py * cv->stride_h - cv->pad_h + kh * cv->dil_h,
                                    px * cv->stride_w - cv->pad_w + kw * cv->dil_w);
                                const double wv = w [(((size_t) oc * cv->kh + kh) * cv->kw + kw) * cv->c + c];
                                s += v * wv;
                                a += fabs (v * wv);
                            }
                    const double sc = scale ? scale [oc] : 1.0;
                    const double bi = bias ? bias [oc] : 0.0;
                    double v = s * sc + bi;
                    if (relu && v < 0)
                        v = 0;
                    y [p * cv->oc + oc] = (float) v;
                    if (absdot)
                        absdot [p * cv->oc + oc] = a * fabs (sc) + fabs (bi);
                }
            }
    return 0;
}
