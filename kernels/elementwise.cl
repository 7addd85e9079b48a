/*  elementwise.cl: element-wise float32 operations over n elements.
 *
 *  ew_add:    y[i] = a[i] + b[i % bn]      (bn = n: plain; bn = row length:
 *  ew_mul:    y[i] = a[i] * b[i % bn]       b is broadcast over the rows)
 *  ew_scale:  y[i] = s * a[i]
 *  ew_silu:   y[i] = a[i] / (1 + exp (-a[i]))
 *  ew_gelu:   y[i] = 0.5 a (1 + tanh (sqrt(2/pi) (a + 0.044715 a^3)))
 *             (tanh approximation, as ggml_gelu and norm.cl's epilogue)
 *  ew_swiglu: y[i] = silu (a[i]) * b[i]    (the gate of a SwiGLU FFN)
 *
 *  All arrays float32; y may be a (or b). n <= 2^30; 1 <= bn, n % bn == 0.
 *  Each work-item does one element: the ops are bound by memory traffic
 *  (8 to 12 bytes per element) and a flat mapping keeps consecutive
 *  work-items on consecutive addresses.
 *
 *  NDRange: global n rounded up to EW_WGS, local EW_WGS.
 */

#ifndef EW_WGS
#define EW_WGS 256              // work-items per group
#endif

float
ew_silu_f (float v)
{
    return v / (1.0f + exp (-v));
}

__kernel __attribute__ ((reqd_work_group_size (EW_WGS, 1, 1))) void
ew_add (const __global float *a, const __global float *b, __global float *y,
        uint n, uint bn)
{
    const uint i = get_global_id (0);
    if (i < n)
        y [i] = a [i] + b [i % bn];
}

__kernel __attribute__ ((reqd_work_group_size (EW_WGS, 1, 1))) void
ew_mul (const __global float *a, const __global float *b, __global float *y,
        uint n, uint bn)
{
    const uint i = get_global_id (0);
    if (i < n)
        y [i] = a [i] * b [i % bn];
}

__kernel __attribute__ ((reqd_work_group_size (EW_WGS, 1, 1))) void
ew_scale (const __global float *a, __global float *y, uint n, float s)
{
    const uint i = get_global_id (0);
    if (i < n)
        y [i] = s * a [i];
}

__kernel __attribute__ ((reqd_work_group_size (EW_WGS, 1, 1))) void
ew_silu (const __global float *a, __global float *y, uint n)
{
    const uint i = get_global_id (0);
    if (i < n)
        y [i] = ew_silu_f (a [i]);
}

__kernel __attribute__ ((reqd_work_group_size (EW_WGS, 1, 1))) void
ew_gelu (const __global float *a, __global float *y, uint n)
{
    const uint i = get_global_id (0);
    if (i < n) {
        const float v = a [i];
        y [i] = 0.5f * v * (1.0f + tanh (0.7978845608028654f * v * (1.0f + 0.044715f * v * v)));
    }
}

__kernel __attribute__ ((reqd_work_group_size (EW_WGS, 1, 1))) void
ew_swiglu (const __global float *a, const __global float *b, __global float *y,
           uint n)
{
    const uint i = get_global_id (0);
    if (i < n)
        y [i] = ew_silu_f (a [i]) * b [i];
}
