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
 *  rows (GEMM: GEMM_ROWS rows x GEMM_BT batch rows). In the GEMM, and in
 *  the GEMV with GEMV_UNIT=1 (CPUs), work-item i takes units i, i +
 *  QMM_WGS, ... of each row, so the group reads the row's blocks
 *  contiguously (coalesced), keeps its partial sums in registers, and the
 *  group reduces them through local memory at the end. In the GEMM a
 *  decoded unit stays in registers while it is applied to the GEMM_BT
 *  batch rows of the tile, so each weight byte is fetched once per tile.
 *  The GEMV with GEMV_UNIT=0 (GPUs) works on 8- or 16-value slices
 *  instead: see "GEMV" below; GEMV_UNIT=2 takes the same slices with x
 *  staged in local memory for teams of work-items that own different
 *  rows (qgemv_team).
 *
 *  NDRange: gemv global (ceil(rows / GEMV_ROWS) * QMM_WGS), local QMM_WGS;
 *  gemm global (ceil(rows / GEMM_ROWS) * QMM_WGS, ceil(batch / GEMM_BT)),
 *  local (QMM_WGS, 1).
 *  Constraints: cols a multiple of 32 (256 for q4_K, q6_K); QMM_WGS a power
 *  of two; rows, cols, batch >= 1; X float-aligned, x 16-byte aligned.
 */

#ifndef QMM_WGS
#define QMM_WGS 64              // work-items per group, power of two
#endif
#ifndef GEMV_ROWS
#define GEMV_ROWS 2             // output rows per work-group (GEMV)
#endif
#ifndef GEMV_UNIT
#define GEMV_UNIT 0             // GEMV scheme: 0 slices (GPUs), 1 whole units (CPUs), 2 teams
#endif
#ifndef GEMV_I8_ROWS
#define GEMV_I8_ROWS 2          // output rows per work-group (GEMV on int8 x)
#endif
#ifndef GEMV_I8_KROWS
#define GEMV_I8_KROWS 2         // output rows per work-group (GEMV on int8 x, q4_K and q6_K)
#endif
#ifndef GEMV_I8_KU
#define GEMV_I8_KU 1            // K-quant units per work-item step (GEMV on int8 x): 1, 2, 4
#endif
#ifndef GEMM_ROWS
#define GEMM_ROWS 2             // weight rows per work-group (GEMM)
#endif
#ifndef GEMM_BT
#define GEMM_BT 4               // batch rows per work-group (GEMM)
#endif

#if GEMV_I8_KU != 1 && GEMV_I8_KU != 2 && GEMV_I8_KU != 4
#error "GEMV_I8_KU must be 1, 2 or 4"
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
    const float d1 = qmm_half (&b->d) * (float) CMN_Q4K_SCALE (s, b->scales);
    const float m1 = qmm_half (&b->dmin) * (float) CMN_Q4K_MIN (s, b->scales);
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

//  --------------------------------------------------------------------------
//  GEMV
//
//  The GEMV is bound by memory, so it is written to move as few bytes and
//  issue as few instructions per weight as it can (docs/kernels.md):
//
//  - A row is cut into slices of 8 values (16 for Q4_K and Q6_K). Work-
//    item i of a group takes slices i, i + QMM_WGS, ... of the group's
//    GEMV_ROWS rows, so neighbouring work-items read neighbouring weight
//    words and neighbouring x words (coalesced), and each slice of x,
//    loaded as two (Q4_K, Q6_K: four) float4, serves GEMV_ROWS rows from
//    registers.
//  - Weights are read as 32-bit words (two 16-bit halves where a block is
//    only 2-byte aligned; Q4_K one 8-byte word), never byte by byte, and
//    the quants of a word become floats with the "magic number" trick:
//    the bits 0x4B000000 | q are the float 2^23 + q, so one OR and one
//    subtraction (which also removes Q4_0's 8, Q8_0's 128 after an XOR,
//    Q6_K's 32) give q exactly, without integer-to-float conversions.
//  - Q4_0, Q8_0 and Q6_K take the block or sub-block scale out of the sum:
//    d * sum ((q - o) x). Since d * (q - o) is exact (ggml's dequantized
//    weight), this is the same real number as sum (w x), rounded in a
//    different order: the error bound (docs/kernels.md) still holds, as
//    the longest chain of roundings any term passes through (product, sum
//    in the slice, scale, sum over slices, tree reduction) stays below
//    cols. Q4_1 and Q4_K have an offset, so they form each weight exactly
//    as ggml does (one fma) and multiply it.
//  - Rows past the end repeat the last row (their sums are dropped), so
//    the inner loop has no tests.
//
//  Needs x 16-byte aligned (a buffer's start is). Reads 32-bit words of
//  the little-endian weights; on a big-endian device (__ENDIAN_LITTLE__
//  unset) the words are put together from bytes.

#ifndef QMV_UNROLL
#define QMV_UNROLL 1                // slices per loop iteration (see below)
#endif
#define QMV_MAGIC 0x4B000000u       // float bits of 2^23
#define QMV_2P23 8388608.0f         // 2^23

//  The 32-bit little-endian word at P, which is 2-byte aligned.
uint
qmv_word2 (const __global uchar *p)
{
#ifdef __ENDIAN_LITTLE__
    const ushort2 h = vload2 (0, (const __global ushort *) p);
    return (uint) h.x | ((uint) h.y << 16);
#else
    return (uint) p [0] | ((uint) p [1] << 8) | ((uint) p [2] << 16) | ((uint) p [3] << 24);
#endif
}

//  The 32-bit little-endian word at P, which is 4-byte aligned.
uint
qmv_word4 (const __global uchar *p)
{
#ifdef __ENDIAN_LITTLE__
    return *(const __global uint *) p;
#else
    return qmv_word2 (p);
#endif
}

//  The four bytes of W (each < 2^23 after masking) as floats minus BIAS:
//  byte - (BIAS - 2^23), exact.
float4
qmv_bytes (uint w, float bias)
{
    return (float4) (as_float (QMV_MAGIC | (w & 0xFFu)),
                     as_float (QMV_MAGIC | ((w >> 8) & 0xFFu)),
                     as_float (QMV_MAGIC | ((w >> 16) & 0xFFu)),
                     as_float (QMV_MAGIC | (w >> 24))) - bias;
}

//  fma chain a.x*b.x + a.y*b.y + ... + acc, in that order.
float
qmv_dot4 (float4 a, float4 b, float acc)
{
    return fma (a.w, b.w, fma (a.z, b.z, fma (a.y, b.y, fma (a.x, b.x, acc))));
}

//  The float4 indexes into x of the slice of x that slice S uses, as
//  I[0..3] (Q4_K and Q6_K use all four, the others two); returns how many.
int
qmv_xidx (const int type, int s, int *i)
{
    switch (type) {
        case GGML_TYPE_Q4_0:
        case GGML_TYPE_Q4_1: {
            //  Slice k of unit u: values 4k..4k+3 and 16+4k..16+4k+3.
            const int u = s >> 2, k = s & 3;
            i [0] = 8 * u + k;
            i [1] = 8 * u + 4 + k;
            return 2;
        }
        case GGML_TYPE_Q8_0: {
            //  Slice k of unit u: values 8k..8k+7.
            const int u = s >> 2, k = s & 3;
            i [0] = 8 * u + 2 * k;
            i [1] = 8 * u + 2 * k + 1;
            return 2;
        }
        case GGML_TYPE_Q4_K: {
            //  Slice (p, j) of super-block b: values 8j..8j+7 of units 2p
            //  and 2p + 1.
            const int b = s >> 4, p = (s >> 2) & 3, j = s & 3;
            i [0] = 64 * b + 16 * p + 2 * j;
            i [1] = 64 * b + 16 * p + 2 * j + 1;
            i [2] = 64 * b + 16 * p + 8 + 2 * j;
            i [3] = 64 * b + 16 * p + 8 + 2 * j + 1;
            return 4;
        }
        default: {
            //  Q6_K slice (h, j) of super-block b: values 4j..4j+3 of
            //  units 4h + k, k = 0..3.
            const int b = s >> 4, h = (s >> 3) & 1, j = s & 7;
            for (int k = 0; k < 4; k++)
                i [k] = 64 * b + 32 * h + 8 * k + j;
            return 4;
        }
    }
}

//  The slice of x that slice S uses, as XV[0..3] (qmv_xidx). x4 is x as
//  float4.
void
qmv_x (const int type, const __global float4 *x4, int s, float4 *xv)
{
    int i [4];
    const int n = qmv_xidx (type, s, i);
    for (int k = 0; k < n; k++)
        xv [k] = x4 [i [k]];
}

//  Q4_0 slice k of unit u: the word qs[4k..4k+3] holds values 4k..4k+3 in
//  its low nibbles and 16+4k.. in its high ones.
float
qmv_q4_0 (const __global uchar *row, int s, const float4 *xv)
{
    const __global block_q4_0 *b = (const __global block_q4_0 *) row + (s >> 2);
    const uint w = qmv_word2 (b->qs + 4 * (s & 3));
    float t = qmv_dot4 (qmv_bytes (w & 0x0F0F0F0Fu, QMV_2P23 + 8.0f), xv [0], 0.0f);
    t = qmv_dot4 (qmv_bytes ((w >> 4) & 0x0F0F0F0Fu, QMV_2P23 + 8.0f), xv [1], t);
    return qmm_half (&b->d) * t;
}

//  Q4_1: as Q4_0, with w = d * q + m formed exactly as ggml does.
float
qmv_q4_1 (const __global uchar *row, int s, const float4 *xv)
{
    const __global block_q4_1 *b = (const __global block_q4_1 *) row + (s >> 2);
    const uint w = qmv_word4 (b->qs + 4 * (s & 3));
    const float4 d = (float4) qmm_half (&b->d), m = (float4) qmm_half (&b->m);
    float t = qmv_dot4 (fma (qmv_bytes (w & 0x0F0F0F0Fu, QMV_2P23), d, m), xv [0], 0.0f);
    return qmv_dot4 (fma (qmv_bytes ((w >> 4) & 0x0F0F0F0Fu, QMV_2P23), d, m), xv [1], t);
}

//  Q8_0 slice k: qs[8k..8k+7]; XOR 0x80 turns each int8 q into q + 128.
float
qmv_q8_0 (const __global uchar *row, int s, const float4 *xv)
{
    const __global block_q8_0 *b = (const __global block_q8_0 *) row + (s >> 2);
    const __global uchar *q = (const __global uchar *) b->qs + 8 * (s & 3);
    float t = qmv_dot4 (qmv_bytes (qmv_word2 (q) ^ 0x80808080u, QMV_2P23 + 128.0f),
                        xv [0], 0.0f);
    t = qmv_dot4 (qmv_bytes (qmv_word2 (q + 4) ^ 0x80808080u, QMV_2P23 + 128.0f), xv [1], t);
    return qmm_half (&b->d) * t;
}

//  Q4_K slice (p, j): the two words qs[32p + 8j ..] (8-byte aligned: the
//  block is 144 bytes, qs starts at 16) hold values 8j..8j+7 of unit 2p
//  (low nibbles) and of unit 2p + 1 (high nibbles). Scale and min of unit
//  u are ggml's get_scale_min_k4, read from the three words of `scales`
//  without branches: byte i = u & 3 of each word, and for u >= 4 the two
//  high bits of the first two words' bytes.
float
qmv_q4_K (const __global uchar *row, int s, const float4 *xv)
{
    const __global block_q4_K *b = (const __global block_q4_K *) row + (s >> 4);
    const int p = (s >> 2) & 3, j = s & 3;
#ifdef __ENDIAN_LITTLE__
    const uint2 w = *(const __global uint2 *) (b->qs + 32 * p + 8 * j);
#else
    const uint2 w = (uint2) (qmv_word4 (b->qs + 32 * p + 8 * j),
                             qmv_word4 (b->qs + 32 * p + 8 * j + 4));
#endif
    const uint s0 = qmv_word4 (b->scales), s1 = qmv_word4 (b->scales + 4);
    const uint s2 = qmv_word4 (b->scales + 8);
    const float d = qmm_half (&b->d), dmin = qmm_half (&b->dmin);
    float t = 0.0f;
    for (int h = 0; h < 2; h++) {
        const int u = 2 * p + h;
        const uint sh = 8 * (u & 3);
        const uint a = s0 >> sh, c = s1 >> sh, e = s2 >> sh;
        const uint scale = u < 4 ? a & 63 : (e & 0xF) | ((a >> 2) & 0x30);
        const uint min = u < 4 ? c & 63 : ((e >> 4) & 0xF) | ((c >> 2) & 0x30);
        const float4 d1 = (float4) (d * (float) scale), m1 = (float4) (dmin * (float) min);
        const float4 q0 = qmv_bytes ((w.x >> (4 * h)) & 0x0F0F0F0Fu, QMV_2P23);
        const float4 q1 = qmv_bytes ((w.y >> (4 * h)) & 0x0F0F0F0Fu, QMV_2P23);
        t = qmv_dot4 (fma (q0, d1, -m1), xv [2 * h], t);
        t = qmv_dot4 (fma (q1, d1, -m1), xv [2 * h + 1], t);
    }
    return t;
}

//  Q6_K slice (h, j): values l = 4j..4j+3 of units 4h + k; low 4 bits in
//  ql[64h + 32(k&1) + l] (high nibble for k >= 2), high 2 bits at bit 2k
//  of qh[32h + l], scale scales[8h + 2k + l/16].
float
qmv_q6_K (const __global uchar *row, int s, const float4 *xv)
{
    const __global block_q6_K *b = (const __global block_q6_K *) row + (s >> 4);
    const int h = (s >> 3) & 1, j = s & 7;
    const uint l0 = qmv_word2 (b->ql + 64 * h + 4 * j);
    const uint l1 = qmv_word2 (b->ql + 64 * h + 32 + 4 * j);
    const uint hi = qmv_word2 (b->qh + 32 * h + 4 * j);
    const __global char *sc = (const __global char *) b->scales + 8 * h + (j >> 2);
    const float d = qmm_half (&b->d);
    float t = 0.0f;
    for (int k = 0; k < 4; k++) {
        const uint lo = ((k & 1) ? l1 : l0) >> (4 * (k >> 1));
        const uint q = (lo & 0x0F0F0F0Fu) | (((hi >> (2 * k)) & 0x03030303u) << 4);
        const float st = qmv_dot4 (qmv_bytes (q, QMV_2P23 + 32.0f), xv [k], 0.0f);
        t = fma (d * (float) sc [2 * k], st, t);
    }
    return t;
}

float
qmv_slice (const int type, const __global uchar *row, int s, const float4 *xv)
{
    switch (type) {
        case GGML_TYPE_Q4_0: return qmv_q4_0 (row, s, xv);
        case GGML_TYPE_Q4_1: return qmv_q4_1 (row, s, xv);
        case GGML_TYPE_Q8_0: return qmv_q8_0 (row, s, xv);
        case GGML_TYPE_Q4_K: return qmv_q4_K (row, s, xv);
        default:             return qmv_q6_K (row, s, xv);
    }
}

#if GEMV_UNIT == 1
//  GEMV_UNIT=1 (CPUs): each work-item takes whole 32-value units, decoded
//  into two float16 (qmm_unit), so that the CPU compiler vectorises within
//  the work-item; the GEMM does the same.
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
    //  A group may have fewer work-items than rows.
    for (int r = lid; r < GEMV_ROWS; r += QMM_WGS)
        if (r0 + r < rows)
            y [r0 + r] = red [r * QMM_WGS];
}
#else
void
qgemv_body (const int type, const __global uchar *W, const __global float *x,
            __global float *y, int rows, int cols, __local float *red)
{
    const int lid = get_local_id (0);
    const int r0 = get_group_id (0) * GEMV_ROWS;
    const int slices = cols / (type == GGML_TYPE_Q6_K || type == GGML_TYPE_Q4_K ? 16 : 8);
    const size_t rb = qmm_row_bytes (type, cols);
    const __global uchar *row [GEMV_ROWS];
    float acc [GEMV_ROWS];
    for (int r = 0; r < GEMV_ROWS; r++) {
        row [r] = W + (size_t) min (r0 + r, rows - 1) * rb;
        acc [r] = 0.0f;
    }
    //  QMV_UNROLL slices per iteration (their loads in flight together),
    //  then the rest one by one; the partial sums are added in slice
    //  order. 1 by default: on the H200, 2 and 4 were no faster for Q4_0
    //  and Q8_0 and twice as slow for Q4_K and Q6_K (docs/kernels.md).
    const __global float4 *x4 = (const __global float4 *) x;
    int s = lid;
    for (; s + (QMV_UNROLL - 1) * QMM_WGS < slices; s += QMV_UNROLL * QMM_WGS) {
        float4 xv [QMV_UNROLL][4];
        float part [QMV_UNROLL][GEMV_ROWS];
        for (int i = 0; i < QMV_UNROLL; i++)
            qmv_x (type, x4, s + i * QMM_WGS, xv [i]);
        for (int i = 0; i < QMV_UNROLL; i++)
            for (int r = 0; r < GEMV_ROWS; r++)
                part [i][r] = qmv_slice (type, row [r], s + i * QMM_WGS, xv [i]);
        for (int i = 0; i < QMV_UNROLL; i++)
            for (int r = 0; r < GEMV_ROWS; r++)
                acc [r] += part [i][r];
    }
    for (; s < slices; s += QMM_WGS) {
        float4 xv [4];
        qmv_x (type, x4, s, xv);
        for (int r = 0; r < GEMV_ROWS; r++)
            acc [r] += qmv_slice (type, row [r], s, xv);
    }
    for (int r = 0; r < GEMV_ROWS; r++)
        red [r * QMM_WGS + lid] = acc [r];
    qmm_reduce (red, GEMV_ROWS);
    //  A group may have fewer work-items than rows.
    for (int r = lid; r < GEMV_ROWS; r += QMM_WGS)
        if (r0 + r < rows)
            y [r0 + r] = red [r * QMM_WGS];
}
#endif

#if GEMV_UNIT == 2
//  GEMV_UNIT=2, *teams* (GPUs): the slices of GEMV_UNIT=0, with x staged
//  in local memory and shared by many rows.
//
//  The group's QMM_WGS work-items form QMV_TEAMS teams of QMV_TM (a warp
//  or wavefront where QMV_TEAM is the device's sub-group width); team t
//  owns rows t * QMV_RPT .. of the group's GEMV_ROWS. All teams walk the
//  columns together, one chunk of QMV_CH slices at a time: the group
//  copies the chunk's x into local memory once, and lane l of each team
//  takes slices l, l + QMV_TM, ... of the chunk for its QMV_RPT rows,
//  reading x from local memory. So x comes from global memory once per
//  GEMV_ROWS rows (GEMV_UNIT=0: once per GEMV_ROWS rows too, but there
//  every work-item holds every row, so GEMV_ROWS stays small), and each
//  work-item has QMV_SPC * QMV_RPT independent slices of weights to load
//  per chunk.
//
//  x is double-buffered: the next chunk's float4 are loaded into registers
//  before the current chunk's products and stored to the other half after
//  them, so one barrier per chunk orders both (at iteration c it ensures
//  half c & 1 is complete and everyone is done reading the other half,
//  which is only written after it). The chunk (QMV_CH slices, at least 16)
//  covers whole blocks, so a slice's x lies in its chunk.
//
//  Decoding and summation are qmv_slice's, so results are those of
//  GEMV_UNIT=0 up to the order of the per-slice sums: the same bound.
#ifndef QMV_TEAM
#define QMV_TEAM 32                 // work-items per team (power of two)
#endif
#ifndef QMV_SPC
#define QMV_SPC 4                   // slices per work-item and chunk (power of two)
#endif
#if (QMV_TEAM & (QMV_TEAM - 1)) != 0 || (QMV_SPC & (QMV_SPC - 1)) != 0
#error "QMV_TEAM and QMV_SPC must be powers of two"
#endif
#define QMV_TM (QMM_WGS < QMV_TEAM ? QMM_WGS : QMV_TEAM)     // team size
#define QMV_TEAMS (QMM_WGS / QMV_TM)                        // teams per group
#define QMV_RPT ((GEMV_ROWS + QMV_TEAMS - 1) / QMV_TEAMS)   // rows per team
#define QMV_CH (QMV_TM * QMV_SPC < 16 ? 16 : QMV_TM * QMV_SPC)   // slices per chunk
#define QMV_X4 (QMV_CH * 4)                                 // float4 per x half (16-value slices)
#define QMV_XR ((QMV_X4 + QMM_WGS - 1) / QMM_WGS)           // x float4 per work-item

void
qgemv_team (const int type, const __global uchar *W, const __global float *x,
            __global float *y, int rows, int cols, __local float *red,
            __local float4 *xs)
{
    const int lid = get_local_id (0);
    const int team = lid / QMV_TM, lane = lid % QMV_TM;
    const int sv = type == GGML_TYPE_Q6_K || type == GGML_TYPE_Q4_K ? 16 : 8;
    const int slices = cols / sv;
    const int nx4 = QMV_CH * sv / 4;            // float4 of x per chunk
    const int cols4 = cols / 4;
    const int chunks = (slices + QMV_CH - 1) / QMV_CH;
    const int g0 = get_group_id (0) * GEMV_ROWS;     // the group's first row
    const int t0 = team * QMV_RPT;                   // the team's first, in the group
    const size_t rb = qmm_row_bytes (type, cols);
    const __global float4 *x4 = (const __global float4 *) x;
    const __global uchar *row [QMV_RPT];
    float acc [QMV_RPT];
    //  Rows past the group's or the matrix's end repeat the last row.
    for (int r = 0; r < QMV_RPT; r++) {
        row [r] = W + (size_t) min (g0 + min (t0 + r, GEMV_ROWS - 1), rows - 1) * rb;
        acc [r] = 0.0f;
    }
    float4 xr [QMV_XR];
    for (int i = 0; i < QMV_XR; i++) {
        const int j = lid + i * QMM_WGS;
        if (j < nx4 && j < cols4)
            xs [j] = x4 [j];
    }
    for (int c = 0; c < chunks; c++) {
        barrier (CLK_LOCAL_MEM_FENCE);
        //  x float4 index i of this chunk is at xs[i - off].
        const int off = c * nx4 - (c & 1) * QMV_X4;
        const int next = (c + 1) * nx4;
        for (int i = 0; i < QMV_XR; i++) {
            const int j = lid + i * QMM_WGS;
            if (j < nx4 && next + j < cols4)
                xr [i] = x4 [next + j];
        }
        for (int i = 0; i < QMV_CH / QMV_TM; i++) {
            const int s = c * QMV_CH + lane + i * QMV_TM;
            if (s < slices) {
                int xi [4];
                float4 xv [4];
                const int n = qmv_xidx (type, s, xi);
                for (int k = 0; k < n; k++)
                    xv [k] = xs [xi [k] - off];
                for (int r = 0; r < QMV_RPT; r++)
                    acc [r] += qmv_slice (type, row [r], s, xv);
            }
        }
        __local float4 *other = xs + ((c + 1) & 1) * QMV_X4;
        for (int i = 0; i < QMV_XR; i++) {
            const int j = lid + i * QMM_WGS;
            if (j < nx4 && next + j < cols4)
                other [j] = xr [i];
        }
    }
    //  Per team: red[(t0 + r) * QMV_TM + lane], summed over the lanes.
    for (int r = 0; r < QMV_RPT; r++)
        red [(t0 + r) * QMV_TM + lane] = acc [r];
    barrier (CLK_LOCAL_MEM_FENCE);
    for (int h = QMV_TM / 2; h > 0; h >>= 1) {
        if (lane < h)
            for (int r = 0; r < QMV_RPT; r++)
                red [(t0 + r) * QMV_TM + lane] += red [(t0 + r) * QMV_TM + lane + h];
        barrier (CLK_LOCAL_MEM_FENCE);
    }
    //  A group may have fewer work-items than rows.
    for (int r = lid; r < GEMV_ROWS; r += QMM_WGS)
        if (g0 + r < rows)
            y [g0 + r] = red [r * QMV_TM];
}

#define QMV_LOCALS                                                            \
    __local float red [QMV_RPT * QMM_WGS];                                    \
    __local float4 xs [2 * QMV_X4];
#define QMV_BODY(type) qgemv_team (type, W, x, y, rows, cols, red, xs)
#else
#define QMV_LOCALS __local float red [GEMV_ROWS * QMM_WGS];
#define QMV_BODY(type) qgemv_body (type, W, x, y, rows, cols, red)
#endif

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
    QMV_LOCALS                                                                \
    QMV_BODY (type);                                                          \
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

//  --------------------------------------------------------------------------
//  GEMV on int8 x: qi8_quant, then qgemv_i8_<type> for q4_0, q4_1, q8_0,
//  q4_K, q6_K
//
//  The method of llama.cpp's GPU backends, for GPUs on which decoding
//  weights to floats costs more time than reading them (docs/kernels.md,
//  "GEMV speed"). x is rounded to int8 once per product, in blocks of 32
//  (qi8_quant: dx = amax / 127, qx = rint (x / dx), as ggml's SIMD Q8_0
//  quantizers round), and each weight block then adds an exact integer
//  sum, scaled once:
//      Q4_0   d dx (sum q qx - 8 sum qx)
//      Q4_1   d dx sum q qx + m dx sum qx
//      Q8_0   d dx sum q qx
//      Q4_K   dx (d sc sum q qx - dmin m sum qx), per 32-value sub-block
//      Q6_K   d dx (sc0 sum (q - 32) qx + sc1 sum (q - 32) qx), per two
//             16-value sub-blocks
//  So y is W times the rounded x, with float rounding only in the scaling
//  and in the sums over blocks (error bound in docs/kernels.md). It differs
//  from qgemv_<type>'s y by x's rounding, |x - dx qx| <= dx / 2 per value.
//
//  A sum of four byte products is one instruction where the device has
//  one: with QI8_DP4A defined, PTX's dp4a through inline asm (NVIDIA's
//  OpenCL compiler accepts it; wrk_kernels defines QI8_DP4A only after
//  qi8_selftest has given the right sums on the device). Otherwise a
//  mad24 chain, portable OpenCL 1.2 (each product fits 24 bits, sums are
//  exact in 32).
//
//  Work: GEMV_I8_ROWS rows per group of QMM_WGS work-items (GEMV_I8_KROWS
//  for q4_K and q6_K; their own rows parameters: on the H200 the best
//  differs from qgemv's and between block shapes); work-item i
//  takes blocks i, i + QMM_WGS, ... of the group's rows, reading each
//  block as the aligned 32-bit words that cover it (qi8_block), and x's
//  two words, scale and sum once for all GEMV_I8_ROWS rows. Q4_0 rows of
//  an even number of blocks, at least 2 QMM_WGS, go by pairs of blocks
//  instead (qi8_pair): a pair is word-aligned, so no shift depends on the
//  block's parity. On the H200 (bench/gemv_probe, bench_gemv) whole
//  blocks in words beat 16-bit loads, runs of 4 blocks read as 8-byte
//  words, and slices of 16 values; pairs beat single blocks for Q4_0
//  (0.80 of the copy rate against 0.74 at 128 x 4) but not for Q8_0 (0.82
//  against 0.92 at 128 x 2) nor Q4_1 (0.70-0.79 against 0.78-0.81), so
//  those take single blocks (docs/kernels.md). The K-quants take one
//  32-value unit per step, or, with GEMV_I8_KU 2 or 4 and rows of at
//  least GEMV_I8_KU x QMM_WGS units, spans of units that share their
//  quant bytes (qi8_span_k).
//
//  Constraints: cols a multiple of 32 (256 for q4_K, q6_K); a little-
//  endian device; xq, xd, xs 16-byte aligned (a buffer's start is).
//  NDRange: qi8_quant global >= cols / 4 rounded up to 64, local 64;
//  qgemv_i8 global (ceil(rows / R) * QMM_WGS), local QMM_WGS, R being
//  GEMV_I8_KROWS for q4_K and q6_K, GEMV_I8_ROWS for the others.

#ifdef QI8_DP4A
int
qi8_dot_u (uint w, uint x, int c)       // c + sum of unsigned w bytes x signed x bytes
{
    int r;
    asm ("dp4a.u32.s32 %0, %1, %2, %3;" : "=r" (r) : "r" (w), "r" (x), "r" (c));
    return r;
}
int
qi8_dot_s (uint w, uint x, int c)       // c + sum of signed w bytes x signed x bytes
{
    int r;
    asm ("dp4a.s32.s32 %0, %1, %2, %3;" : "=r" (r) : "r" (w), "r" (x), "r" (c));
    return r;
}
#else
int
qi8_dot_u (uint w, uint x, int c)
{
    return mad24 ((int) (w >> 24), (int) (char) (x >> 24),
           mad24 ((int) ((w >> 16) & 0xFFu), (int) (char) ((x >> 16) & 0xFFu),
           mad24 ((int) ((w >> 8) & 0xFFu), (int) (char) ((x >> 8) & 0xFFu),
           mad24 ((int) (w & 0xFFu), (int) (char) (x & 0xFFu), c))));
}
int
qi8_dot_s (uint w, uint x, int c)
{
    return mad24 ((int) (char) (w >> 24), (int) (char) (x >> 24),
           mad24 ((int) (char) ((w >> 16) & 0xFFu), (int) (char) ((x >> 16) & 0xFFu),
           mad24 ((int) (char) ((w >> 8) & 0xFFu), (int) (char) ((x >> 8) & 0xFFu),
           mad24 ((int) (char) (w & 0xFFu), (int) (char) (x & 0xFFu), c))));
}
#endif

//  Both dot products on fixed words covering every byte value's sign and
//  size, for wrk_kernels' check of the QI8_DP4A build.
__kernel void
qi8_selftest (__global int *out)
{
    const uint a = 0x80FF7F01u, b = 0xFE7F8002u, c = 0x0F0E0D0Cu;
    out [0] = qi8_dot_u (a, b, -7);
    out [1] = qi8_dot_s (a, b, 11);
    out [2] = qi8_dot_u (c, a, 0);
    out [3] = qi8_dot_s (b, b, -1);
}

//  Eight work-items per block of 32, four values each (one float4 load,
//  one char4 store), in groups of 64 (8 blocks): the block's amax and sum
//  go through local memory. fmax is exact and the sum is of integers, so
//  the result does not depend on the order; the 8-10 us of one work-item
//  per block (32 dependent loads and stores each) was mostly latency.
__kernel __attribute__ ((reqd_work_group_size (64, 1, 1))) void
qi8_quant (const __global float *x, __global char *xq, __global float *xd,
           __global int *xs, int nb)
{
    __local float part [64];
    __local int psum [64];
    const int gid = get_global_id (0), lid = get_local_id (0), first = lid & ~7;
    const bool live = gid / 8 < nb;
    const float4 v = live ? vload4 (gid, x) : (float4) (0.0f);
    const float4 a = fabs (v);
    part [lid] = fmax (fmax (a.x, a.y), fmax (a.z, a.w));
    barrier (CLK_LOCAL_MEM_FENCE);
    float amax = part [first];
    for (int k = 1; k < 8; k++)
        amax = fmax (amax, part [first + k]);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const int4 q = convert_int4 (rint (v * id));
    psum [lid] = q.x + q.y + q.z + q.w;
    if (live)
        vstore4 (convert_char4 (q), gid, xq);
    barrier (CLK_LOCAL_MEM_FENCE);
    if (live && lid == first) {
        int sum = 0;
        for (int k = 0; k < 8; k++)
            sum += psum [first + k];
        xd [gid / 8] = d;
        xs [gid / 8] = sum;
    }
}

float
qi8_f16 (uint bits)
{
    const ushort h = (ushort) bits;
    return vload_half (0, (const half *) &h);
}

int
qi8_bytes (const int type)
{
    return type == GGML_TYPE_Q4_0 ? sizeof (block_q4_0)
         : type == GGML_TYPE_Q4_1 ? sizeof (block_q4_1) : sizeof (block_q8_0);
}

//  ACC plus one block's product with x: scale D, minimum M (Q4_1), quant
//  words Q (4; Q8_0 8), x's words X0 (values 0-15) and X1 (16-31), x's
//  scale DX and sum SX.
float
qi8_sum (const int type, float d, float m, const uint *q, uint4 x0, uint4 x1, float dx, int sx,
         float acc)
{
    const uint xw [8] = { x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w };
    int t = 0;
    if (type == GGML_TYPE_Q8_0) {
        for (int k = 0; k < 8; k++)
            t = qi8_dot_s (q [k], xw [k], t);
        return fma (d * dx, (float) t, acc);
    }
    //  Byte j of the quants: value j in the low nibble, j + 16 in the high.
    for (int k = 0; k < 4; k++) {
        t = qi8_dot_u (q [k] & 0x0F0F0F0Fu, xw [k], t);
        t = qi8_dot_u ((q [k] >> 4) & 0x0F0F0F0Fu, xw [4 + k], t);
    }
    if (type == GGML_TYPE_Q4_0)
        return fma (d * dx, (float) (t - 8 * sx), acc);
    return fma (d * dx, (float) t, fma (m * dx, (float) sx, acc));
}

//  ACC plus block G of W, read as the aligned words that cover it, 5
//  (Q4_0, Q4_1) or 9 (Q8_0): Q4_1's 20-byte blocks are word-aligned, Q4_0's
//  18 and Q8_0's 34 bytes are when G is even and 2 bytes past a word when G
//  is odd, so each quant word is a funnel shift of two loaded words by 16
//  or 32 bits. For an aligned Q4_0 or Q8_0 block the last word reaches 2
//  bytes past it: at the end of the matrix (G + 1 == NBLK) those 2 bytes
//  are not read.
float
qi8_block (const int type, const __global uchar *W, size_t g, size_t nblk, uint4 x0, uint4 x1,
           float dx, int sx, float acc)
{
    const int nw = type == GGML_TYPE_Q8_0 ? 9 : 5;
    const size_t at = g * qi8_bytes (type);
    const __global uint *p = (const __global uint *) (W + (at & ~(size_t) 3));
    const uint odd = (uint) (at >> 1) & 1u;
    uint w [9], q [8];
    for (int i = 0; i < nw - 1; i++)
        w [i] = p [i];
    const bool tail = type != GGML_TYPE_Q4_1 && !odd && g + 1 == nblk;
    w [nw - 1] = tail ? ((const __global ushort *) p) [2 * nw - 2] : p [nw - 1];
    const uint sh = 16u + 16u * odd;
    for (int k = 0; k < nw - 1; k++)
        q [k] = type == GGML_TYPE_Q4_1 ? w [k + 1]
                                       : (uint) ((((ulong) w [k + 1] << 32) | w [k]) >> sh);
    return qi8_sum (type, qi8_f16 (w [0] >> (16u * odd)), qi8_f16 (w [0] >> 16), q, x0, x1,
                    dx, sx, acc);
}

//  ACC plus blocks 2P and 2P + 1 of Q4_0 or Q8_0 weights W (a row of an
//  even number of blocks, so the pair is word-aligned; only Q4_0 uses it,
//  see "Work" above): 9 or 17 words, the
//  first block's fields 2 bytes off a word (a funnel shift by 16), the
//  second's quants on word boundaries. X holds x's four words of the pair.
float
qi8_pair (const int type, const __global uchar *W, size_t p2, const uint4 *x, float2 dx,
          int2 sx, float acc)
{
    const int bw = type == GGML_TYPE_Q8_0 ? 8 : 4;          // quant words per block
    const __global uint *p = (const __global uint *) (W + p2 * 2 * qi8_bytes (type));
    uint w [17], q [8];
    for (int i = 0; i < 2 * bw + 1; i++)
        w [i] = p [i];
    for (int k = 0; k < bw; k++)
        q [k] = (w [k] >> 16) | (w [k + 1] << 16);
    acc = qi8_sum (type, qi8_f16 (w [0]), 0.0f, q, x [0], x [1], dx.x, sx.x, acc);
    for (int k = 0; k < bw; k++)
        q [k] = w [bw + 1 + k];
    return qi8_sum (type, qi8_f16 (w [bw] >> 16), 0.0f, q, x [2], x [3], dx.y, sx.y, acc);
}

//  ACC plus unit S (0..7, 32 values) of K-quant super-block G of W, with
//  x's words X0, X1, scale DX and sum SX. The units are qmm_unit_q4_K's and
//  qmm_unit_q6_K's.
//  Q4_K (144-byte super-blocks, so 16-byte aligned): the unit's 32 quant
//  bytes are two uint4 at qs + 32 (S / 2), nibble S % 2; with 6-bit scale
//  sc and min m, it adds dx (d sc sum q qx - dmin m sx).
//  Q6_K (210 bytes: 2 bytes off a word in every other super-block): the
//  ql and qh slices are 9 aligned words each, funnel-shifted by 0 or 16
//  bits (the ninth word stays inside the super-block, whose scales and d
//  follow). q - 32 is formed in every byte at once ((q | 0x80) - 0x20, then
//  ^ 0x80: a signed byte) and the unit's two 16-value halves, with their
//  own int8 scales, give sc0 sum0 + sc1 sum1, an exact integer (below
//  2 x 128 x 16 x 32 x 127 < 2^24), scaled by d dx.
float
qi8_unit_k (const int type, const __global uchar *W, size_t g, int s, uint4 x0, uint4 x1,
            float dx, int sx, float acc)
{
    const uint xw [8] = { x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w };
    int t = 0;
    if (type == GGML_TYPE_Q4_K) {
        const __global block_q4_K *b = (const __global block_q4_K *) W + g;
        const __global uint4 *qp = (const __global uint4 *) (b->qs + 32 * (s >> 1));
        const uint4 qa = qp [0], qb = qp [1];
        const uint q [8] = { qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w };
        const uint sh = 4u * (uint) (s & 1);
        for (int k = 0; k < 8; k++)
            t = qi8_dot_u ((q [k] >> sh) & 0x0F0F0F0Fu, xw [k], t);
        const uint scale = CMN_Q4K_SCALE (s, b->scales), min = CMN_Q4K_MIN (s, b->scales);
        const float d = qmm_half (&b->d), dmin = qmm_half (&b->dmin);
        return fma (dx, fma (d * (float) scale, (float) t, -(dmin * (float) min) * (float) sx),
                    acc);
    }
    const size_t at = g * sizeof (block_q6_K);
    const __global block_q6_K *b = (const __global block_q6_K *) (W + at);
    const __global uint *base = (const __global uint *) (W + (at & ~(size_t) 3));
    const uint sh = 16u * ((uint) (at >> 1) & 1u);
    const int h = s >> 2, k4 = s & 3;
    const __global uint *pl = base + (64 * h + 32 * (k4 & 1)) / 4;
    const __global uint *ph = base + (QK_K / 2 + 32 * h) / 4;     // qh follows ql
    uint wl [9], wh [9];
    for (int i = 0; i < 9; i++) {
        wl [i] = pl [i];
        wh [i] = ph [i];
    }
    const uint lsh = 4u * (uint) (k4 >> 1), hsh = 2u * (uint) k4;
    int half_sum [2] = { 0, 0 };
    for (int k = 0; k < 8; k++) {
        const uint l = (uint) ((((ulong) wl [k + 1] << 32) | wl [k]) >> sh);
        const uint hb = (uint) ((((ulong) wh [k + 1] << 32) | wh [k]) >> sh);
        const uint q = ((l >> lsh) & 0x0F0F0F0Fu) | (((hb >> hsh) & 0x03030303u) << 4);
        const uint q32 = ((q | 0x80808080u) - 0x20202020u) ^ 0x80808080u;
        half_sum [k >> 2] = qi8_dot_s (q32, xw [k], half_sum [k >> 2]);
    }
    const __global char *sc = b->scales + 8 * h + 2 * k4;
    const int isum = (int) sc [0] * half_sum [0] + (int) sc [1] * half_sum [1];
    return fma (qmm_half (&b->d) * dx, (float) isum, acc);
}

#if GEMV_I8_KU > 1
//  Spans of GEMV_I8_KU (2 or 4) K-quant units that share their quant
//  bytes, one per work-item, so each byte is loaded once instead of once
//  per unit (docs/kernels.md, "GEMV on int8 x"). A super-block has
//  8 / GEMV_I8_KU spans; span C reads its quants as 32-byte chunks,
//  chunk J (0 .. GEMV_I8_KU / 2 - 1) being chunk K = GEMV_I8_KU C / 2 + J
//  (0..3) of the super-block, and takes both nibbles of each byte:
//    Q4_K  qs bytes 32 K ..: units 2 K (low nibbles) and 2 K + 1 (high),
//          so a span is units GEMV_I8_KU C .. + GEMV_I8_KU - 1;
//    Q6_K  ql bytes 32 K ..: in half H = K / 2, units K % 2 (low nibbles)
//          and K % 2 + 2 (high), whose two high bits are bit pairs of qh
//          bytes 32 H .. (loaded once: a span lies in one half).
//  Unit I of the span (I = 2 J + nibble) is super-block unit
//  qi8_span_unit (type, C, I); x's words, scales and sums come in that
//  order.
int
qi8_span_unit (const int type, int c, int i)
{
    const int k = GEMV_I8_KU * c / 2 + i / 2;
    return type == GGML_TYPE_Q4_K ? 2 * k + (i & 1) : 4 * (k >> 1) + (k & 1) + 2 * (i & 1);
}

//  ACC plus span C of super-block G of W: XW holds x's 8 words per unit,
//  DX and SX its scales and sums, in span order. The sums per unit are
//  qi8_unit_k's.
float
qi8_span_k (const int type, const __global uchar *W, size_t g, int c, const uint *xw,
            const float *dx, const int *sx, float acc)
{
    if (type == GGML_TYPE_Q4_K) {
        //  The 16-byte head (d, dmin, scales) as one vector, so the
        //  scales are picked by shifts (CMN_Q4K_SCALE_W), not byte loads.
        const __global block_q4_K *b = (const __global block_q4_K *) W + g;
        const uint4 hd = *(const __global uint4 *) b;
        const __global uint4 *qp = (const __global uint4 *) (b->qs + 16 * GEMV_I8_KU * c);
        const float d = qi8_f16 (hd.x), dmin = qi8_f16 (hd.x >> 16);
        for (int j = 0; j < GEMV_I8_KU / 2; j++) {
            const uint4 qa = qp [2 * j], qb = qp [2 * j + 1];
            const uint q [8] = { qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w };
            int t [2] = { 0, 0 };
            for (int k = 0; k < 8; k++) {
                t [0] = qi8_dot_u (q [k] & 0x0F0F0F0Fu, xw [16 * j + k], t [0]);
                t [1] = qi8_dot_u ((q [k] >> 4) & 0x0F0F0F0Fu, xw [16 * j + 8 + k], t [1]);
            }
            for (int n = 0; n < 2; n++) {
                const int i = 2 * j + n, s = GEMV_I8_KU * c + i;
                const float dsc = d * (float) CMN_Q4K_SCALE_W ((uint) s, hd.y, hd.w);
                const float dm = dmin * (float) CMN_Q4K_MIN_W ((uint) s, hd.z, hd.w);
                acc = fma (dx [i], fma (dsc, (float) t [n], -dm * (float) sx [i]), acc);
            }
        }
        return acc;
    }
    const size_t at = g * sizeof (block_q6_K);
    const __global block_q6_K *b = (const __global block_q6_K *) (W + at);
    const __global uint *base = (const __global uint *) (W + (at & ~(size_t) 3));
    const uint sh = 16u * ((uint) (at >> 1) & 1u);
    const int k0 = GEMV_I8_KU * c / 2, h = k0 >> 1;
    const __global uint *ph = base + (QK_K / 2 + 32 * h) / 4;     // qh follows ql
    uint hb [8];
    for (int k = 0; k < 8; k++)
        hb [k] = (uint) ((((ulong) ph [k + 1] << 32) | ph [k]) >> sh);
    const float d = qmm_half (&b->d);
    for (int j = 0; j < GEMV_I8_KU / 2; j++) {
        const __global uint *pl = base + 8 * (k0 + j);
        int half_sum [2][2] = { { 0, 0 }, { 0, 0 } };
        const uint kl = (uint) ((k0 + j) & 1);                    // unit in the half, low nibble
        for (int k = 0; k < 8; k++) {
            const uint l = (uint) ((((ulong) pl [k + 1] << 32) | pl [k]) >> sh);
            for (int n = 0; n < 2; n++) {
                const uint q = ((l >> (4u * n)) & 0x0F0F0F0Fu)
                             | (((hb [k] >> (2u * (kl + 2u * n))) & 0x03030303u) << 4);
                const uint q32 = ((q | 0x80808080u) - 0x20202020u) ^ 0x80808080u;
                half_sum [n][k >> 2] = qi8_dot_s (q32, xw [16 * j + 8 * n + k],
                                                  half_sum [n][k >> 2]);
            }
        }
        for (int n = 0; n < 2; n++) {
            const __global char *sc = b->scales + 8 * h + 2 * (kl + 2 * n);
            const int isum = (int) sc [0] * half_sum [n][0] + (int) sc [1] * half_sum [n][1];
            acc = fma (d * dx [2 * j + n], (float) isum, acc);
        }
    }
    return acc;
}
#endif

//  Rows per group of TYPE's kernel: GEMV_I8_KROWS for the K-quants (their
//  best differs: on the H200 4 against 3, docs/kernels.md), GEMV_I8_ROWS
//  for the others; a constant once TYPE is.
#define QI8_ROWS(type) ((type) == GGML_TYPE_Q4_K || (type) == GGML_TYPE_Q6_K \
                        ? GEMV_I8_KROWS : GEMV_I8_ROWS)
#define QI8_MAX_ROWS (GEMV_I8_KROWS > GEMV_I8_ROWS ? GEMV_I8_KROWS : GEMV_I8_ROWS)

void
qgemv_i8_body (const int type, const __global uchar *W, const __global uint4 *xq,
               const __global float *xd, const __global int *xs, __global float *y,
               int rows, int cols, __local float *red)
{
    const int lid = get_local_id (0);
    const int nrows = QI8_ROWS (type);
    const int r0 = get_group_id (0) * nrows;
    const int nb = cols / 32;
    const size_t nblk = (size_t) rows * nb;
    size_t row [QI8_MAX_ROWS];
    float acc [QI8_MAX_ROWS];
    for (int r = 0; r < nrows; r++) {
        row [r] = (size_t) min (r0 + r, rows - 1) * nb;
        acc [r] = 0.0f;
    }
    if (type == GGML_TYPE_Q4_0 && nb % 2 == 0 && nb >= 2 * QMM_WGS) {
        //  Pairs of blocks, when every work-item gets one.
        for (int p = lid; p < nb / 2; p += QMM_WGS) {
            const uint4 x [4] = { xq [4 * p], xq [4 * p + 1], xq [4 * p + 2], xq [4 * p + 3] };
            const float2 dx = vload2 (p, xd);
            const int2 sx = vload2 (p, xs);
            for (int r = 0; r < nrows; r++)
                acc [r] = qi8_pair (type, W, row [r] / 2 + p, x, dx, sx, acc [r]);
        }
    }
#if GEMV_I8_KU > 1
    else
    if ((type == GGML_TYPE_Q4_K || type == GGML_TYPE_Q6_K) && nb >= GEMV_I8_KU * QMM_WGS) {
        //  Spans of units sharing quant bytes, when every work-item gets one.
        for (int p = lid; p < nb / GEMV_I8_KU; p += QMM_WGS) {
            const int g = p / (8 / GEMV_I8_KU), c = p % (8 / GEMV_I8_KU);
            uint xw [8 * GEMV_I8_KU];
            float dx [GEMV_I8_KU];
            int sx [GEMV_I8_KU];
            for (int i = 0; i < GEMV_I8_KU; i++) {
                const int blk = 8 * g + qi8_span_unit (type, c, i);
                const uint4 a = xq [2 * blk], e = xq [2 * blk + 1];
                xw [8 * i] = a.x; xw [8 * i + 1] = a.y; xw [8 * i + 2] = a.z;
                xw [8 * i + 3] = a.w; xw [8 * i + 4] = e.x; xw [8 * i + 5] = e.y;
                xw [8 * i + 6] = e.z; xw [8 * i + 7] = e.w;
                dx [i] = xd [blk];
                sx [i] = xs [blk];
            }
            for (int r = 0; r < nrows; r++)
                acc [r] = qi8_span_k (type, W, (row [r] >> 3) + g, c, xw, dx, sx, acc [r]);
        }
    }
#endif
    else
        for (int b = lid; b < nb; b += QMM_WGS) {
            const uint4 x0 = xq [2 * b], x1 = xq [2 * b + 1];
            const float dx = xd [b];
            const int sx = xs [b];
            for (int r = 0; r < nrows; r++)
                acc [r] = type == GGML_TYPE_Q4_K || type == GGML_TYPE_Q6_K
                        ? qi8_unit_k (type, W, (row [r] + b) >> 3, b & 7, x0, x1, dx, sx, acc [r])
                        : qi8_block (type, W, row [r] + b, nblk, x0, x1, dx, sx, acc [r]);
        }
    for (int r = 0; r < nrows; r++)
        red [r * QMM_WGS + lid] = acc [r];
    qmm_reduce (red, nrows);
    for (int r = lid; r < nrows; r += QMM_WGS)
        if (r0 + r < rows)
            y [r0 + r] = red [r * QMM_WGS];
}

#define QI8_KERNEL(name, type)                                                \
__kernel __attribute__ ((reqd_work_group_size (QMM_WGS, 1, 1))) void          \
qgemv_i8_##name (const __global uchar *W, const __global uint4 *xq,            \
                 const __global float *xd, const __global int *xs,             \
                 __global float *y, int rows, int cols)                        \
{                                                                             \
    __local float red [QI8_ROWS (type) * QMM_WGS];                            \
    qgemv_i8_body (type, W, xq, xd, xs, y, rows, cols, red);                  \
}

QI8_KERNEL (q4_0, GGML_TYPE_Q4_0)
QI8_KERNEL (q4_1, GGML_TYPE_Q4_1)
QI8_KERNEL (q8_0, GGML_TYPE_Q8_0)
QI8_KERNEL (q4_K, GGML_TYPE_Q4_K)
QI8_KERNEL (q6_K, GGML_TYPE_Q6_K)
