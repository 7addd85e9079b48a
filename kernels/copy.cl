/*  copy: dst[i] = src[i] for float4 elements, one element per work-item;
 *  the bandwidth yardstick of bench.device (every byte is read once and
 *  written once, so bytes moved = 2 * 16 * n).
 *
 *  Arguments:
 *    src  global float4[n], read
 *    dst  global float4[n], written; must not overlap src
 *    n    number of float4 elements; the global size may exceed it (it is
 *         rounded up to the work-group size), items past n do nothing
 *  No tuning parameters: the host picks the work-group size (any).
 */
__kernel void
copy_f4 (__global const float4 *restrict src, __global float4 *restrict dst,
         const uint n)
{
    const size_t i = get_global_id (0);
    if (i < n)
        dst [i] = src [i];
}
