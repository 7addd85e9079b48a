/*  qmatmul.cl: products with quantized weights, dequantized in registers.
 *
 *  qgemv_<type>:  y = W x        W [rows, cols] quantized, x [cols], y [rows]
 *  qgemm_<type>:  Y = X W^T      X [batch, cols], Y [batch, rows] (row-major)
 *  for <type> in q4_0, q4_1, q8_0, q4_K, q6_K.
 *
 *  W is GGUF's layout: row r is cols / QK consecutive blocks (block_q4_0 ...
 *  from cmn_quant_blocks.h, which the host prepends), rows back to back,
 *  passed as bytes. x, X, y, Y are float32. F32 weights are never written:
 *  each work-item decodes a 32-value "unit" (a whole Q4_0/Q4_1/Q8_0 block,
 *  or one eighth of a Q4_K/Q6_K super-block) into two float16 vectors and
 *  multiplies it straight away. Every K-quant unit has one scale and min
 *  (Q4_K) or two scales (Q6_K), so all types share the same loop.
 *
 *  Dequantization repeats ggml's arithmetic exactly (each weight is d*q,
 *  d*q + m, (d*sc)*q - dmin*m or (d*sc)*q, whose products are exact in
 *  float32), so a result differs from "dequantize, then multiply" only by
 *  the order of the float32 sums.
 *
 *  Work decomposition: a work-group of QMM_WGS work-items owns GEMV_ROWS
 *  rows (GEMM: GEMM_ROWS rows x GEMM_BT batch rows). Work-item i takes
 *  units i, i + QMM_WGS, ... of each row, so the group reads the row's
 *  blocks contiguously (coalesced), keeps its partial sums in registers,
 *  and the group reduces them through local memory at the end. In the GEMM
 *  a decoded unit stays in registers while it is applied to the GEMM_BT
 *  batch rows of the tile, so each weight byte is fetched once per tile.
 *
 *  NDRange: gemv global (ceil(rows / GEMV_ROWS) * QMM_WGS), local QMM_WGS;
 *  gemm global (ceil(rows / GEMM_ROWS) * QMM_WGS, ceil(batch / GEMM_BT)),
 *  local (QMM_WGS, 1).
 *  Constraints: cols a multiple of 32 (256 for q4_K, q6_K); QMM_WGS a power
 *  of two; rows, cols, batch >= 1; x, X float-aligned.
 */

#ifndef QMM_WGS
#define QMM_WGS 64              // work-items per group, power of two
#endif
#ifndef GEMV_ROWS
#define GEMV_ROWS 2             // output rows per work-group (GEMV)
#endif
#ifndef GEMM_ROWS
#define GEMM_ROWS 2             // weight rows per work-group (GEMM)
#endif
#ifndef GEMM_BT
#define GEMM_BT 4               // batch rows per work-group (GEMM)
#endif

#if (QMM_WGS & (QMM_WGS - 1)) != 0
#error "QMM_WGS must be a power of two"
#endif

float
qmm_half (const __global cmn_f16 *p)
{
    return vload_half (0, (const __global half *) p);
}

float
qmm_hsum16 (float16 v)
{
    float8 a = v.lo + v.hi;
    float4 b = a.lo + a.hi;
    return (b.x + b.y) + (b.z + b.w);
}

//  Q4_0: w = d * (q - 8); value j in the low nibble of qs[j], j + 16 in the
//  high nibble.
void
qmm_unit_q4_0 (const __global uchar *row, int u, float16 *lo, float16 *hi)
{
    const __global block_q4_0 *b = (const __global block_q4_0 *) row + u;
    const float d = qmm_half (&b->d);
    const uchar16 q = vload16 (0, b->qs);
    *lo = (convert_float16 (q & (uchar) 0xF) - 8.0f) * d;
    *hi = (convert_float16 (q >> (uchar) 4) - 8.0f) * d;
}

//  Q4_1: w = d * q + m.
void
qmm_unit_q4_1 (const __global uchar *row, int u, float16 *lo, float16 *hi)
{
    const __global block_q4_1 *b = (const __global block_q4_1 *) row + u;
    const float d = qmm_half (&b->d);
    const float m = qmm_half (&b->m);
    const uchar16 q = vload16 (0, b->qs);
    *lo = convert_float16 (q & (uchar) 0xF) * d + m;
    *hi = convert_float16 (q >> (uchar) 4) * d + m;
}

//  Q8_0: w = d * q.
void
qmm_unit_q8_0 (const __global uchar *row, int u, float16 *lo, float16 *hi)
{
    const __global block_q8_0 *b = (const __global block_q8_0 *) row + u;
    const float d = qmm_half (&b->d);
    *lo = convert_float16 (vload16 (0, b->qs)) * d;
    *hi = convert_float16 (vload16 (1, b->qs)) * d;
}

//  Q4_K unit s (0..7) of a super-block: values 32s .. 32s+31 are the low
//  (s even) or high (s odd) nibbles of qs[32 (s/2) ..], with 6-bit scale
//  and min number s (ggml's get_scale_min_k4).
void
qmm_unit_q4_K (const __global uchar *row, int u, float16 *lo, float16 *hi)
{
    const __global block_q4_K *b = (const __global block_q4_K *) row + (u >> 3);
    const int s = u & 7;
    const __global uchar *sc = b->scales;
    uchar scale, min;
    if (s < 4) {
        scale = sc [s] & 63;
        min = sc [s + 4] & 63;
    }
    else {
        scale = (sc [s + 4] & 0xF) | ((sc [s - 4] >> 6) << 4);
        min = (sc [s + 4] >> 4) | ((sc [s] >> 6) << 4);
    }
    const float d1 = qmm_half (&b->d) * (float) scale;
    const float m1 = qmm_half (&b->dmin) * (float) min;
    const __global uchar *q = b->qs + (s >> 1) * 32;
    //  Shift rather than branch on s, so neighbouring work-items (which
    //  hold neighbouring units) do not diverge.
    const uchar shift = (uchar) ((s & 1) * 4);
    const uchar16 q0 = (vload16 (0, q) >> shift) & (uchar) 0xF;
    const uchar16 q1 = (vload16 (1, q) >> shift) & (uchar) 0xF;
    *lo = convert_float16 (q0) * d1 - m1;
    *hi = convert_float16 (q1) * d1 - m1;
}

//  Q6_K unit s (0..7): half h = s / 4 of the super-block, quarter k = s % 4;
//  value l (0..31) has its low 4 bits in a nibble of ql[64h + 32(k%2) + l]
//  (low for k < 2), its high 2 bits at bit 2k of qh[32h + l], and scale
//  scales[8h + 2k + l/16].
void
qmm_unit_q6_K (const __global uchar *row, int u, float16 *lo, float16 *hi)
{
    const __global block_q6_K *b = (const __global block_q6_K *) row + (u >> 3);
    const int s = u & 7;
    const int h = s >> 2;
    const int k = s & 3;
    const __global uchar *ql = b->ql + 64 * h + 32 * (k & 1);
    const __global uchar *qh = b->qh + 32 * h;
    const uchar lsh = (uchar) ((k >> 1) * 4);
    const uchar hsh = (uchar) (2 * k);
    const int16 q0 = convert_int16 (((vload16 (0, ql) >> lsh) & (uchar) 0xF)
                     | (((vload16 (0, qh) >> hsh) & (uchar) 3) << (uchar) 4)) - 32;
    const int16 q1 = convert_int16 (((vload16 (1, ql) >> lsh) & (uchar) 0xF)
                     | (((vload16 (1, qh) >> hsh) & (uchar) 3) << (uchar) 4)) - 32;
    const float d = qmm_half (&b->d);
    const float sc0 = d * (float) b->scales [8 * h + 2 * k];
    const float sc1 = d * (float) b->scales [8 * h + 2 * k + 1];
    *lo = convert_float16 (q0) * sc0;
    *hi = convert_float16 (q1) * sc1;
}

//  TYPE is a literal in every caller, so the switch folds away once this
//  is inlined into the kernel.
void
qmm_unit (const int type, const __global uchar *row, int u,
          float16 *lo, float16 *hi)
{
    switch (type) {
        case GGML_TYPE_Q4_0: qmm_unit_q4_0 (row, u, lo, hi); break;
        case GGML_TYPE_Q4_1: qmm_unit_q4_1 (row, u, lo, hi); break;
        case GGML_TYPE_Q8_0: qmm_unit_q8_0 (row, u, lo, hi); break;
        case GGML_TYPE_Q4_K: qmm_unit_q4_K (row, u, lo, hi); break;
        default:             qmm_unit_q6_K (row, u, lo, hi); break;
    }
}

size_t
qmm_row_bytes (const int type, int cols)
{
    switch (type) {
        case GGML_TYPE_Q4_0: return (size_t) (cols / QK4_0) * sizeof (block_q4_0);
        case GGML_TYPE_Q4_1: return (size_t) (cols / QK4_1) * sizeof (block_q4_1);
        case GGML_TYPE_Q8_0: return (size_t) (cols / QK8_0) * sizeof (block_q8_0);
        case GGML_TYPE_Q4_K: return (size_t) (cols / QK_K) * sizeof (block_q4_K);
        default:             return (size_t) (cols / QK_K) * sizeof (block_q6_K);
    }
}

//  Sums NACC partial sums per work-item over the group: red holds
//  NACC * QMM_WGS floats, accumulator a of work-item i at red[a*QMM_WGS+i].
//  On return red[a * QMM_WGS] is the total of accumulator a.
void
qmm_reduce (__local float *red, const int nacc)
{
    const int lid = get_local_id (0);
    barrier (CLK_LOCAL_MEM_FENCE);
    for (int s = QMM_WGS / 2; s > 0; s >>= 1) {
        if (lid < s)
            for (int a = 0; a < nacc; a++)
                red [a * QMM_WGS + lid] += red [a * QMM_WGS + lid + s];
        barrier (CLK_LOCAL_MEM_FENCE);
    }
}

void
qgemv_body (const int type, const __global uchar *W, const __global float *x,
            __global float *y, int rows, int cols, __local float *red)
{
    const int lid = get_local_id (0);
    const int r0 = get_group_id (0) * GEMV_ROWS;
    const int units = cols / 32;
    const size_t rb = qmm_row_bytes (type, cols);
    float acc [GEMV_ROWS];
    for (int r = 0; r < GEMV_ROWS; r++)
        acc [r] = 0.0f;

    for (int u = lid; u < units; u += QMM_WGS) {
        const float16 x0 = vload16 (0, x + 32 * u);
        const float16 x1 = vload16 (1, x + 32 * u);
        for (int r = 0; r < GEMV_ROWS; r++)
            if (r0 + r < rows) {
                float16 lo, hi;
                qmm_unit (type, W + (size_t) (r0 + r) * rb, u, &lo, &hi);
                acc [r] += qmm_hsum16 (lo * x0 + hi * x1);
            }
    }
    for (int r = 0; r < GEMV_ROWS; r++)
        red [r * QMM_WGS + lid] = acc [r];
    qmm_reduce (red, GEMV_ROWS);
    if (lid < GEMV_ROWS && r0 + lid < rows)
        y [r0 + lid] = red [lid * QMM_WGS];
}

void
qgemm_body (const int type, const __global uchar *W, const __global float *X,
            __global float *Y, int rows, int cols, int batch, __local float *red)
{
    const int lid = get_local_id (0);
    const int r0 = get_group_id (0) * GEMM_ROWS;
    const int b0 = get_group_id (1) * GEMM_BT;
    const int units = cols / 32;
    const size_t rb = qmm_row_bytes (type, cols);
    float acc [GEMM_ROWS][GEMM_BT];
    for (int r = 0; r < GEMM_ROWS; r++)
        for (int b = 0; b < GEMM_BT; b++)
            acc [r][b] = 0.0f;

    for (int u = lid; u < units; u += QMM_WGS)
        for (int r = 0; r < GEMM_ROWS; r++)
            if (r0 + r < rows) {
                float16 lo, hi;
                qmm_unit (type, W + (size_t) (r0 + r) * rb, u, &lo, &hi);
                for (int b = 0; b < GEMM_BT; b++)
                    if (b0 + b < batch) {
                        const __global float *xb = X + (size_t) (b0 + b) * cols + 32 * u;
                        acc [r][b] += qmm_hsum16 (lo * vload16 (0, xb) + hi * vload16 (1, xb));
                    }
            }
    for (int r = 0; r < GEMM_ROWS; r++)
        for (int b = 0; b < GEMM_BT; b++)
            red [(r * GEMM_BT + b) * QMM_WGS + lid] = acc [r][b];
    qmm_reduce (red, GEMM_ROWS * GEMM_BT);
    for (int o = lid; o < GEMM_ROWS * GEMM_BT; o += QMM_WGS) {
        const int r = o / GEMM_BT;
        const int b = o % GEMM_BT;
        if (r0 + r < rows && b0 + b < batch)
            Y [(size_t) (b0 + b) * rows + r0 + r] = red [o * QMM_WGS];
    }
}

#define QMM_KERNELS(name, type)                                               \
__kernel __attribute__ ((reqd_work_group_size (QMM_WGS, 1, 1))) void          \
qgemv_##name (const __global uchar *W, const __global float *x,               \
              __global float *y, int rows, int cols)                          \
{                                                                             \
    __local float red [GEMV_ROWS * QMM_WGS];                                  \
    qgemv_body (type, W, x, y, rows, cols, red);                              \
}                                                                             \
__kernel __attribute__ ((reqd_work_group_size (QMM_WGS, 1, 1))) void          \
qgemm_##name (const __global uchar *W, const __global float *X,               \
              __global float *Y, int rows, int cols, int batch)               \
{                                                                             \
    __local float red [GEMM_ROWS * GEMM_BT * QMM_WGS];                        \
    qgemm_body (type, W, X, Y, rows, cols, batch, red);                       \
}

QMM_KERNELS (q4_0, GGML_TYPE_Q4_0)
QMM_KERNELS (q4_1, GGML_TYPE_Q4_1)
QMM_KERNELS (q8_0, GGML_TYPE_Q8_0)
QMM_KERNELS (q4_K, GGML_TYPE_Q4_K)
QMM_KERNELS (q6_K, GGML_TYPE_Q6_K)
