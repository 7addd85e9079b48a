/*  transpose.cl: out-of-place 2D float32 transpose through local memory.
 *
 *  transpose_f32: b[c, r] = a[r, c]; a [rows, cols], b [cols, rows],
 *  row-major. a and b must not overlap.
 *
 *  A work-group moves one TR_TILE x TR_TILE tile: it reads tile rows from
 *  a (consecutive work-items, consecutive addresses), and writes tile
 *  columns to b, again consecutive in b. The tile is padded to TR_TILE + 1
 *  columns, so reading a tile column touches TR_TILE different local
 *  memory banks instead of one (stride TR_TILE + 1 is odd, hence coprime
 *  with any power-of-two bank count). Each work-item moves TR_TILE /
 *  TR_ROWS elements.
 *
 *  NDRange: global (ceil(cols / TR_TILE) * TR_TILE, ceil(rows / TR_TILE) *
 *  TR_ROWS), local (TR_TILE, TR_ROWS). Constraints: TR_ROWS divides TR_TILE.
 */

#ifndef TR_TILE
#define TR_TILE 32              // tile side, elements
#endif
#ifndef TR_ROWS
#define TR_ROWS 8               // work-group rows; TR_TILE * TR_ROWS items
#endif

#if TR_TILE % TR_ROWS != 0
#error "TR_ROWS must divide TR_TILE"
#endif

__kernel __attribute__ ((reqd_work_group_size (TR_TILE, TR_ROWS, 1))) void
transpose_f32 (const __global float *a, __global float *b, int rows, int cols)
{
    __local float tile [TR_TILE][TR_TILE + 1];
    const int tx = get_local_id (0);
    const int ty = get_local_id (1);
    const int c0 = get_group_id (0) * TR_TILE;
    const int r0 = get_group_id (1) * TR_TILE;

    for (int k = ty; k < TR_TILE; k += TR_ROWS)
        if (r0 + k < rows && c0 + tx < cols)
            tile [k][tx] = a [(size_t) (r0 + k) * cols + c0 + tx];
    barrier (CLK_LOCAL_MEM_FENCE);
    //  Row k of the output tile is column c0 + k of a.
    for (int k = ty; k < TR_TILE; k += TR_ROWS)
        if (c0 + k < cols && r0 + tx < rows)
            b [(size_t) (c0 + k) * rows + r0 + tx] = tile [tx][k];
}
