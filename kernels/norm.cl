/*  norm.cl: row normalisations with a fused activation.
 *
 *  rms_norm:   y = act (x / sqrt (mean (x^2) + eps) * w)
 *  layer_norm: y = act ((x - mean (x)) / sqrt (var (x) + eps) * w + b)
 *
 *  x, y [rows, n] float32, row-major; w, b [n] float32, either may be a
 *  NULL buffer (then 1 and 0). y may be x (each element is read before the
 *  same work-item writes it, after the row's statistics are known).
 *  act: 0 none, 1 GELU, 2 ReLU. GELU is the tanh approximation, as ggml's
 *  ggml_gelu and GPT-2/BERT ports use: 0.5 x (1 + tanh (sqrt(2/pi) (x +
 *  0.044715 x^3))); it differs from the erf form by up to about 1e-3.
 *  Variance is the population variance (divides by n), computed in a
 *  second pass over x - mean, which stays accurate when |mean| >> std.
 *
 *  NDRange: global rows * NORM_WGS, local NORM_WGS: one work-group per row.
 *  Constraints: NORM_WGS a power of two; n >= 1.
 */

#ifndef NORM_WGS
#define NORM_WGS 256            // work-items per row, power of two
#endif

#if (NORM_WGS & (NORM_WGS - 1)) != 0
#error "NORM_WGS must be a power of two"
#endif

#define NORM_ACT_NONE 0
#define NORM_ACT_GELU 1
#define NORM_ACT_RELU 2

float
norm_act (int act, float v)
{
    if (act == NORM_ACT_GELU)
        return 0.5f * v * (1.0f + tanh (0.7978845608028654f * v * (1.0f + 0.044715f * v * v)));
    if (act == NORM_ACT_RELU)
        return fmax (v, 0.0f);
    return v;
}

//  Sum of V over the work-group; every work-item gets the total. RED holds
//  NORM_WGS floats and may be reused as soon as this returns.
float
norm_group_sum (float v, __local float *red)
{
    const int lid = get_local_id (0);
    red [lid] = v;
    barrier (CLK_LOCAL_MEM_FENCE);
    for (int s = NORM_WGS / 2; s > 0; s >>= 1) {
        if (lid < s)
            red [lid] += red [lid + s];
        barrier (CLK_LOCAL_MEM_FENCE);
    }
    const float total = red [0];
    barrier (CLK_LOCAL_MEM_FENCE);
    return total;
}

__kernel __attribute__ ((reqd_work_group_size (NORM_WGS, 1, 1))) void
rms_norm (const __global float *x, const __global float *w, __global float *y,
          int n, float eps, int act)
{
    __local float red [NORM_WGS];
    const int lid = get_local_id (0);
    const size_t off = (size_t) get_group_id (0) * n;
    x += off;
    y += off;

    float ss = 0.0f;
    for (int i = lid; i < n; i += NORM_WGS)
        ss += x [i] * x [i];
    ss = norm_group_sum (ss, red);
    const float r = rsqrt (ss / (float) n + eps);
    for (int i = lid; i < n; i += NORM_WGS) {
        float v = x [i] * r;
        if (w)
            v *= w [i];
        y [i] = norm_act (act, v);
    }
}

__kernel __attribute__ ((reqd_work_group_size (NORM_WGS, 1, 1))) void
layer_norm (const __global float *x, const __global float *w,
            const __global float *b, __global float *y,
            int n, float eps, int act)
{
    __local float red [NORM_WGS];
    const int lid = get_local_id (0);
    const size_t off = (size_t) get_group_id (0) * n;
    x += off;
    y += off;

    float s = 0.0f;
    for (int i = lid; i < n; i += NORM_WGS)
        s += x [i];
    const float mean = norm_group_sum (s, red) / (float) n;
    float ss = 0.0f;
    for (int i = lid; i < n; i += NORM_WGS) {
        const float d = x [i] - mean;
        ss += d * d;
    }
    const float r = rsqrt (norm_group_sum (ss, red) / (float) n + eps);
    for (int i = lid; i < n; i += NORM_WGS) {
        float v = (x [i] - mean) * r;
        if (w)
            v *= w [i];
        if (b)
            v += b [i];
        y [i] = norm_act (act, v);
    }
}
