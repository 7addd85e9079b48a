/*  gemv_probe.cl: Q4_0 GEMV layouts and decodes, for bench/gemv_probe.c.
 *
 *  Not product kernels: each isolates one cost of kernels/qmatmul.cl's
 *  GEMV so that the probe can say which one bounds it (docs/kernels.md,
 *  "GEMV speed"). WGS work-items per group own R rows; y = W x with W in
 *  Q4_0 (value j of a block in the low nibble of qs[j], j + 16 in the
 *  high one; w = d (q - 8)).
 *
 *  Layouts: "SoA" keeps a matrix's 16-byte quant arrays back to back (qs)
 *  apart from its fp16 scales (d, one per block); "interleaved" (ilv_sf)
 *  stores, for each run of 4 WGS slices of a row, the four words a work-
 *  item needs as one uint4.
 *
 *  read4, read16   the slice scheme's weight reads with no arithmetic:
 *                  the memory ceiling of that access pattern
 *  soa_f           one whole block per work-item (16-byte load), f32 x;
 *                  MODE 0 magic-number decode, 1 convert_float4 decode,
 *                  2 convert and d (sum q x - 8 sum x)
 *  soa_sf          slices of 8 values (one word) per work-item, f32 x
 *  ilv_sf          soa_sf's slices, four per 16-byte load
 *  soa_si8         slices of 16 values, x quantized to int8 per block of
 *                  32 (quant_x2, as ggml's Q8_0 but round-half-even and
 *                  f32 scale), integer products (mad24; -DDP4A=1 or 2:
 *                  PTX dp4a through asm or __asm__, NVIDIA only)
 *  aos_si8         soa_si8's slices read from the GGUF blocks (16-bit
 *                  loads); -DU=2, 4 slices per iteration were no faster
 *  aos_bi8         a whole GGUF block per work-item, read as the five
 *                  aligned words covering it and funnel-shifted: what
 *                  qmatmul.cl's qgemv_i8 kernels grew from
 */
#ifndef WGS
#define WGS 128
#endif
#ifndef R
#define R 2
#endif
#ifndef MODE
#define MODE 0
#endif
#define MAGIC 0x4B000000u       // float bits of 2^23
#define P23 8388608.0f

float4 bytes_magic (uint w, float bias)
{
    return (float4) (as_float (MAGIC | (w & 0xFFu)), as_float (MAGIC | ((w >> 8) & 0xFFu)),
                     as_float (MAGIC | ((w >> 16) & 0xFFu)), as_float (MAGIC | (w >> 24))) - bias;
}
float4 bytes_cvt (uint w)
{
    return convert_float4 (as_uchar4 (w));
}

void reduce_store (__local float *red, float *acc, __global float *y, int r0, int rows)
{
    const int lid = get_local_id (0);
    for (int r = 0; r < R; r++)
        red [r * WGS + lid] = acc [r];
    barrier (CLK_LOCAL_MEM_FENCE);
    for (int s = WGS / 2; s > 0; s >>= 1) {
        if (lid < s)
            for (int r = 0; r < R; r++)
                red [r * WGS + lid] += red [r * WGS + lid + s];
        barrier (CLK_LOCAL_MEM_FENCE);
    }
    if (lid < R && r0 + lid < rows)
        y [r0 + lid] = red [lid * WGS];
}

__kernel __attribute__ ((reqd_work_group_size (WGS, 1, 1))) void
soa_f (const __global uint4 *qs, const __global half *d, const __global float4 *x4,
       __global float *y, int rows, int cols)
{
    __local float red [R * WGS];
    const int lid = get_local_id (0);
    const int r0 = get_group_id (0) * R;
    const int nb = cols / 32;
    float acc [R];
    size_t base [R];
    for (int r = 0; r < R; r++) {
        acc [r] = 0.0f;
        base [r] = (size_t) min (r0 + r, rows - 1) * nb;
    }
    for (int b = lid; b < nb; b += WGS) {
        float4 xv [8];
        for (int k = 0; k < 8; k++)
            xv [k] = x4 [8 * b + k];
#if MODE == 2
        float4 sx4 = ((xv [0] + xv [1]) + (xv [2] + xv [3])) + ((xv [4] + xv [5]) + (xv [6] + xv [7]));
        const float sx = (sx4.x + sx4.y) + (sx4.z + sx4.w);
#endif
        for (int r = 0; r < R; r++) {
            const uint4 w = qs [base [r] + b];
            const float dd = vload_half (base [r] + b, d);
            const uint wk [4] = { w.x, w.y, w.z, w.w };
            float t = 0.0f;
            for (int k = 0; k < 4; k++) {
#if MODE == 0
                t += dot (bytes_magic (wk [k] & 0x0F0F0F0Fu, P23 + 8.0f), xv [k]);
                t += dot (bytes_magic ((wk [k] >> 4) & 0x0F0F0F0Fu, P23 + 8.0f), xv [4 + k]);
#elif MODE == 1
                t += dot (bytes_cvt (wk [k] & 0x0F0F0F0Fu) - 8.0f, xv [k]);
                t += dot (bytes_cvt ((wk [k] >> 4) & 0x0F0F0F0Fu) - 8.0f, xv [4 + k]);
#else
                t += dot (bytes_cvt (wk [k] & 0x0F0F0F0Fu), xv [k]);
                t += dot (bytes_cvt ((wk [k] >> 4) & 0x0F0F0F0Fu), xv [4 + k]);
#endif
            }
#if MODE == 2
            t -= 8.0f * sx;
#endif
            acc [r] += dd * t;
        }
    }
    reduce_store (red, acc, y, r0, rows);
}

__kernel __attribute__ ((reqd_work_group_size (WGS, 1, 1))) void
soa_sf (const __global uint *qs, const __global half *d, const __global float4 *x4,
        __global float *y, int rows, int cols)
{
    __local float red [R * WGS];
    const int lid = get_local_id (0);
    const int r0 = get_group_id (0) * R;
    const int ns = cols / 8;
    float acc [R];
    size_t base [R];
    for (int r = 0; r < R; r++) {
        acc [r] = 0.0f;
        base [r] = (size_t) min (r0 + r, rows - 1) * ns;
    }
    for (int s = lid; s < ns; s += WGS) {
        const int u = s >> 2, k = s & 3;
        const float4 xa = x4 [8 * u + k], xb = x4 [8 * u + 4 + k];
        for (int r = 0; r < R; r++) {
            const uint w = qs [base [r] + s];
            const float dd = vload_half ((base [r] + s) >> 2, d);
            float t = dot (bytes_magic (w & 0x0F0F0F0Fu, P23 + 8.0f), xa);
            t += dot (bytes_magic ((w >> 4) & 0x0F0F0F0Fu, P23 + 8.0f), xb);
            acc [r] = fma (dd, t, acc [r]);
        }
    }
    reduce_store (red, acc, y, r0, rows);
}

//  Row r's uint4 number c * WGS + lid holds the words of slices
//  c * 4 WGS + j WGS + lid, j = 0..3 (cols / 8 a multiple of 4 WGS).
__kernel __attribute__ ((reqd_work_group_size (WGS, 1, 1))) void
ilv_sf (const __global uint4 *qs, const __global half *d, const __global float4 *x4,
        __global float *y, int rows, int cols)
{
    __local float red [R * WGS];
    const int lid = get_local_id (0);
    const int r0 = get_group_id (0) * R;
    const int ns = cols / 8, nc = ns / (4 * WGS);
    float acc [R];
    size_t base [R];
    for (int r = 0; r < R; r++) { acc [r] = 0.0f; base [r] = (size_t) min (r0 + r, rows - 1) * (ns / 4); }
    for (int c = 0; c < nc; c++) {
        uint4 w [R];
        for (int r = 0; r < R; r++)
            w [r] = qs [base [r] + c * WGS + lid];
        for (int j = 0; j < 4; j++) {
            const int s = c * 4 * WGS + j * WGS + lid;
            const int u = s >> 2, k = s & 3;
            const float4 xa = x4 [8 * u + k], xb = x4 [8 * u + 4 + k];
            for (int r = 0; r < R; r++) {
                const uint ww = j == 0 ? w [r].x : j == 1 ? w [r].y : j == 2 ? w [r].z : w [r].w;
                const float dd = vload_half (((size_t) min (r0 + r, rows - 1) * ns + s) >> 2, d);
                float t = dot (bytes_magic (ww & 0x0F0F0F0Fu, P23 + 8.0f), xa);
                t += dot (bytes_magic ((ww >> 4) & 0x0F0F0F0Fu, P23 + 8.0f), xb);
                acc [r] = fma (dd, t, acc [r]);
            }
        }
    }
    reduce_store (red, acc, y, r0, rows);
}
//  x to int8 in the order soa_si8 reads it: per block of 32, the words
//  (values 0-3, 16-19), (4-7, 20-23), (8-11, 24-27), (12-15, 28-31);
//  xd the block's scale, xs the sum of q over each 16-value slice.
__kernel void
quant_x2 (const __global float *x, __global uchar *xq, __global float *xd, __global int *xs, int cols)
{
    const int b = get_global_id (0);
    if (b >= cols / 32)
        return;
    float amax = 0.0f;
    for (int i = 0; i < 32; i++)
        amax = fmax (amax, fabs (x [32 * b + i]));
    const float dd = amax / 127.0f;
    const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
    int s0 = 0, s1 = 0;
    for (int k = 0; k < 4; k++)
        for (int hi = 0; hi < 2; hi++)
            for (int j = 0; j < 4; j++) {
                const int v = 16 * hi + 4 * k + j;
                const int q = (int) rint (x [32 * b + v] * id);
                xq [32 * b + 8 * k + 4 * hi + j] = (uchar) (char) q;
                if (k < 2) s0 += q; else s1 += q;
            }
    xd [b] = dd;
    xs [2 * b] = s0;
    xs [2 * b + 1] = s1;
}

//  c + the dot product of w's four bytes (0..15) with x's four signed
//  bytes: NVIDIA's dp4a through inline PTX with -DDP4A=1 (asm) or 2
//  (__asm__) (the build fails elsewhere), mad24 otherwise.
int dot4n (uint w, uint x, int c)
{
#if DP4A == 2
    int r;
    __asm__ ("dp4a.u32.s32 %0, %1, %2, %3;" : "=r" (r) : "r" (w), "r" (x), "r" (c));
    return r;
#elif defined DP4A
    int r;
    asm ("dp4a.u32.s32 %0, %1, %2, %3;" : "=r" (r) : "r" (w), "r" (x), "r" (c));
    return r;
#else
    return mad24 ((int) (w & 0xFFu), (int) (char) (x & 0xFFu),
           mad24 ((int) ((w >> 8) & 0xFFu), (int) (char) ((x >> 8) & 0xFFu),
           mad24 ((int) ((w >> 16) & 0xFFu), (int) (char) ((x >> 16) & 0xFFu),
           mad24 ((int) (w >> 24), (int) (char) (x >> 24), c))));
#endif
}

int dot16n (uint2 w, uint4 xv)
{
    int t = dot4n (w.x & 0x0F0F0F0Fu, xv.x, 0);
    t = dot4n ((w.x >> 4) & 0x0F0F0F0Fu, xv.y, t);
    t = dot4n (w.y & 0x0F0F0F0Fu, xv.z, t);
    return dot4n ((w.y >> 4) & 0x0F0F0F0Fu, xv.w, t);
}

//  soa_si8 reads SoA buffers; aos_si8 the GGUF blocks themselves (18
//  bytes, so 2-byte aligned: the words are built from ushort loads).
__kernel __attribute__ ((reqd_work_group_size (WGS, 1, 1))) void
soa_si8 (const __global uint2 *qs, const __global half *d, const __global uint4 *xq,
         const __global float *xd, const __global int *xs, __global float *y, int rows, int cols)
{
    __local float red [R * WGS];
    const int lid = get_local_id (0);
    const int r0 = get_group_id (0) * R;
    const int ns = cols / 16;
    float acc [R];
    size_t base [R];
    for (int r = 0; r < R; r++) {
        acc [r] = 0.0f;
        base [r] = (size_t) min (r0 + r, rows - 1) * ns;
    }
    for (int s = lid; s < ns; s += WGS) {
        const uint4 xv = xq [s];
        const float dx = xd [s >> 1];
        const int sx8 = 8 * xs [s];
        for (int r = 0; r < R; r++) {
            const uint2 w = qs [base [r] + s];
            const float dd = vload_half ((base [r] + s) >> 1, d);
            acc [r] = fma (dd * dx, (float) (dot16n (w, xv) - sx8), acc [r]);
        }
    }
    reduce_store (red, acc, y, r0, rows);
}

#ifndef U
#define U 1                     // slices per work-item and iteration (aos_si8)
#endif
__kernel __attribute__ ((reqd_work_group_size (WGS, 1, 1))) void
aos_si8 (const __global ushort *blk, const __global half *unused, const __global uint4 *xq,
         const __global float *xd, const __global int *xs, __global float *y, int rows, int cols)
{
    __local float red [R * WGS];
    const int lid = get_local_id (0);
    const int r0 = get_group_id (0) * R;
    const int ns = cols / 16;
    float acc [R];
    size_t base [R];
    for (int r = 0; r < R; r++) {
        acc [r] = 0.0f;
        base [r] = (size_t) min (r0 + r, rows - 1) * (ns / 2) * 9;   // in ushorts
    }
    for (int s0 = lid; s0 < ns; s0 += U * WGS) {
        uint2 w [U][R];
        float dd [U][R];
        for (int u = 0; u < U; u++) {
            const int s = min (s0 + u * WGS, ns - 1);
            const size_t o = (size_t) (s >> 1) * 9;
            const int h = 1 + 4 * (s & 1);
            for (int r = 0; r < R; r++) {
                const __global ushort *b = blk + base [r] + o;
                w [u][r] = (uint2) (b [h] | (uint) b [h + 1] << 16, b [h + 2] | (uint) b [h + 3] << 16);
                dd [u][r] = vload_half (0, (const __global half *) b);
            }
        }
        for (int u = 0; u < U; u++) {
            const int s = s0 + u * WGS;
            if (s >= ns)
                break;
            const uint4 xv = xq [s];
            const float dx = xd [s >> 1];
            const int sx8 = 8 * xs [s];
            for (int r = 0; r < R; r++)
                acc [r] = fma (dd [u][r] * dx, (float) (dot16n (w [u][r], xv) - sx8), acc [r]);
        }
    }
    reduce_store (red, acc, y, r0, rows);
}

//  aos_bi8: one whole GGUF block per work-item, read as the five aligned
//  words that cover it (block g starts at byte 18 g: word-aligned when g
//  is even, 2 bytes past a word when odd) and funnel-shifted into the
//  scale and four quant words. x as quant_x2 (two uint4 per block).
//  Reads up to 2 bytes past the last block: the buffer must be padded.
__kernel __attribute__ ((reqd_work_group_size (WGS, 1, 1))) void
aos_bi8 (const __global uint *blk, const __global half *unused, const __global uint4 *xq,
         const __global float *xd, const __global int2 *xs, __global float *y, int rows, int cols)
{
    __local float red [R * WGS];
    const int lid = get_local_id (0);
    const int r0 = get_group_id (0) * R;
    const int nb = cols / 32;
    float acc [R];
    size_t base [R];
    for (int r = 0; r < R; r++) {
        acc [r] = 0.0f;
        base [r] = (size_t) min (r0 + r, rows - 1) * nb;
    }
    for (int b = lid; b < nb; b += WGS) {
        const uint4 x0 = xq [2 * b], x1 = xq [2 * b + 1];
        const float dx = xd [b];
        const int2 s2 = xs [b];
        const int sx8 = 8 * (s2.x + s2.y);
        for (int r = 0; r < R; r++) {
            const size_t g = base [r] + b;
            const __global uint *p = blk + ((18 * g) >> 2);
            const uint odd = (uint) g & 1u, sh = 16u + 16u * odd;
            const uint w0 = p [0], w1 = p [1], w2 = p [2], w3 = p [3], w4 = p [4];
            const uint q0 = (uint) ((((ulong) w1 << 32) | w0) >> sh);
            const uint q1 = (uint) ((((ulong) w2 << 32) | w1) >> sh);
            const uint q2 = (uint) ((((ulong) w3 << 32) | w2) >> sh);
            const uint q3 = (uint) ((((ulong) w4 << 32) | w3) >> sh);
            const float dd = vload_half (0, (const __global half *) p + odd);
            int t = dot16n ((uint2) (q0, q1), x0);
            t += dot16n ((uint2) (q2, q3), x1);
            acc [r] = fma (dd * dx, (float) (t - sx8), acc [r]);
        }
    }
    reduce_store (red, acc, y, r0, rows);
}

//  The weights read as T (a uint or uint4 per work-item and row, VALUES
//  weights each) in the slice order, XOR-folded so nothing is optimized
//  away; y gets one bit per row. D and x4 are unused (same signature).
uint qs_fold (uint4 v) { return v.x ^ v.y ^ v.z ^ v.w; }
uint qs_fold1 (uint v) { return v; }
#define READ_KERNEL(name, T, VALUES, FOLD)                                     \
__kernel __attribute__ ((reqd_work_group_size (WGS, 1, 1))) void              \
name (const __global T *qs, const __global half *d, const __global float4 *x4, \
      __global float *y, int rows, int cols)                                   \
{                                                                             \
    __local float red [R * WGS];                                              \
    const int lid = get_local_id (0);                                         \
    const int r0 = get_group_id (0) * R;                                      \
    const int ns = cols / (VALUES);                                           \
    T acc [R];                                                                \
    size_t base [R];                                                          \
    for (int r = 0; r < R; r++) {                                             \
        acc [r] = 0;                                                          \
        base [r] = (size_t) min (r0 + r, rows - 1) * ns;                      \
    }                                                                         \
    for (int s = lid; s < ns; s += WGS)                                       \
        for (int r = 0; r < R; r++)                                           \
            acc [r] ^= qs [base [r] + s];                                     \
    float f [R];                                                              \
    for (int r = 0; r < R; r++)                                               \
        f [r] = (float) (FOLD (acc [r]) & 1);                                 \
    reduce_store (red, f, y, r0, rows);                                       \
}
READ_KERNEL (read4, uint, 8, qs_fold1)
READ_KERNEL (read16, uint4, 32, qs_fold)

__kernel void
copy_f4 (__global const float4 *restrict src, __global float4 *restrict dst, const uint n)
{
    const size_t i = get_global_id (0);
    if (i < n)
        dst [i] = src [i];
}
