/*  cmn_quant_blocks: quantization block layouts, shared by host C code and
 *  OpenCL C kernels. This is the one place they are defined.
 *
 *  The llama.cpp types are bit-exact with ggml's layouts (ggml-common.h), so
 *  GGUF files written by rxq load in llama.cpp and the `gguf` Python package:
 *  each block covers QK values of one row; fp16 fields are stored as their
 *  IEEE binary16 bits (uint16), because OpenCL 1.2 has no `half` arithmetic
 *  without cl_khr_fp16: kernels read them with vload_half.
 *
 *  Every struct has a size assertion that works in both C11 and OpenCL C
 *  (which has no _Static_assert): a negative array size fails to compile.
 *
 *  The GGML type numbers are the values stored in GGUF tensor infos
 *  (ggml.h `enum ggml_type`; gaps are types llama.cpp has removed).
 *
 *  rxq's own INT4 types (block_rxq_int4_g*) use type numbers 1032, 1064 and
 *  1128, far outside GGML's range (< 64): GGUF files that hold them are
 *  rxq-private (key `rxq.private` = true) and never claimed to load in
 *  llama.cpp. docs/quantization.md describes the format.
 */
#ifndef CMN_QUANT_BLOCKS_H
#define CMN_QUANT_BLOCKS_H

#ifdef __OPENCL_VERSION__
typedef uchar  cmn_u8;
typedef char   cmn_i8;
typedef ushort cmn_f16;      // binary16 bits; read with vload_half
#else
#include <stdint.h>
typedef uint8_t  cmn_u8;
typedef int8_t   cmn_i8;
typedef uint16_t cmn_f16;    // binary16 bits
#endif

//  binary16 bits from a float, rounded to nearest even, and back, by
//  integer code: one implementation for the host (cmn_fp32_to_fp16 /
//  cmn_fp16_to_fp32 call these) and for the kernels that must match it or
//  ggml bit for bit (quant.cl, ggml.cl), so that no driver's vstore_half
//  rounding mode or denormal handling matters. Kernels that only read
//  scales use vload_half.
#ifdef __OPENCL_VERSION__
#define CMN_QB_FN
#define CMN_QB_U32 uint
#define CMN_QB_U16 ushort
#define CMN_QB_BITS(f) as_uint (f)
#define CMN_QB_FLOAT(u) as_float (u)
#else
#include <string.h>
#define CMN_QB_FN static inline
#define CMN_QB_U32 uint32_t
#define CMN_QB_U16 uint16_t
static inline uint32_t
cmn_qb_bits (float f)
{
    uint32_t u;
    memcpy (&u, &f, sizeof u);
    return u;
}
static inline float
cmn_qb_float (uint32_t u)
{
    float f;
    memcpy (&f, &u, sizeof f);
    return f;
}
#define CMN_QB_BITS(f) cmn_qb_bits (f)
#define CMN_QB_FLOAT(u) cmn_qb_float (u)
#endif

CMN_QB_FN CMN_QB_U16
cmn_f32_to_f16_bits (float f)
{
    CMN_QB_U32 x = CMN_QB_BITS (f);
    CMN_QB_U16 sign = (CMN_QB_U16) ((x >> 16) & 0x8000);
    CMN_QB_U32 ax = x & 0x7fffffff;
    if (ax > 0x7f800000)
        return sign | 0x7e00;
    //  65520 is halfway between 65504 (the largest half) and 65536; the tie
    //  goes to the even neighbour, which is infinity.
    if (ax >= 0x477ff000)
        return sign | 0x7c00;
    if (ax < 0x38800000) {
        //  Below 2^-14 the result is subnormal: round |f| * 2^24 to an
        //  integer. 2^-25 and below round to zero (2^-25 is a tie to 0).
        if (ax <= 0x33000000)
            return sign;
        CMN_QB_U32 m = (ax & 0x7fffff) | 0x800000;
        int shift = 126 - (int) (ax >> 23);
        CMN_QB_U32 q = m >> shift;
        CMN_QB_U32 rem = m & ((1u << shift) - 1);
        CMN_QB_U32 half_ = 1u << (shift - 1);
        if (rem > half_ || (rem == half_ && (q & 1)))
            q++;
        return sign | (CMN_QB_U16) q;     // q == 0x400 is the smallest normal
    }
    //  Round the 13 dropped mantissa bits to nearest even; a carry moves
    //  into the exponent, which is what rounding up to the next binade means.
    CMN_QB_U32 r = ax + 0xfff + ((ax >> 13) & 1);
    r -= (CMN_QB_U32) (127 - 15) << 23;
    return sign | (CMN_QB_U16) (r >> 13);
}

CMN_QB_FN float
cmn_f16_bits_to_f32 (CMN_QB_U16 h)
{
    CMN_QB_U32 sign = (CMN_QB_U32) (h & 0x8000) << 16;
    CMN_QB_U32 e = (h >> 10) & 0x1f;
    CMN_QB_U32 m = h & 0x3ff;
    if (e == 0x1f)
        return CMN_QB_FLOAT (sign | 0x7f800000 | (m << 13));
    if (e == 0) {
        float v = (float) m * 0x1p-24f;      // exact: m has 10 bits
        return sign ? -v : v;
    }
    return CMN_QB_FLOAT (sign | ((e + 127 - 15) << 23) | (m << 13));
}

#define CMN_QUANT_ASSERT_SIZE(type, bytes) \
    typedef char cmn_size_check_##type [(sizeof (type) == (bytes)) ? 1 : -1]

//  GGML tensor types (GGUF tensor info `type` field).
#define GGML_TYPE_F32    0
#define GGML_TYPE_F16    1
#define GGML_TYPE_Q4_0   2
#define GGML_TYPE_Q4_1   3
#define GGML_TYPE_Q5_0   6
#define GGML_TYPE_Q5_1   7
#define GGML_TYPE_Q8_0   8
#define GGML_TYPE_Q8_1   9
#define GGML_TYPE_Q2_K   10
#define GGML_TYPE_Q3_K   11
#define GGML_TYPE_Q4_K   12
#define GGML_TYPE_Q5_K   13
#define GGML_TYPE_Q6_K   14
#define GGML_TYPE_Q8_K   15
#define GGML_TYPE_IQ2_XXS 16
#define GGML_TYPE_IQ2_XS 17
#define GGML_TYPE_IQ3_XXS 18
#define GGML_TYPE_IQ1_S  19
#define GGML_TYPE_IQ4_NL 20
#define GGML_TYPE_IQ3_S  21
#define GGML_TYPE_IQ2_S  22
#define GGML_TYPE_IQ4_XS 23
#define GGML_TYPE_I8     24
#define GGML_TYPE_I16    25
#define GGML_TYPE_I32    26
#define GGML_TYPE_I64    27
#define GGML_TYPE_F64    28
#define GGML_TYPE_IQ1_M  29
#define GGML_TYPE_BF16   30
#define GGML_TYPE_TQ1_0  34
#define GGML_TYPE_TQ2_0  35
#define GGML_TYPE_MXFP4  39

//  rxq-private types (see above): 1000 + group size in values.
#define RXQ_TYPE_INT4_G32   1032
#define RXQ_TYPE_INT4_G64   1064
#define RXQ_TYPE_INT4_G128  1128

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK_K  256
#define K_SCALE_SIZE 12

//  Q4_0: x = d * (q - 8), q in [0, 15]. qs[j] holds value j in its low
//  nibble and value j + 16 in its high nibble.
typedef struct {
    cmn_f16 d;                  // scale
    cmn_u8 qs [QK4_0 / 2];      // 4-bit quants, two per byte
} block_q4_0;
CMN_QUANT_ASSERT_SIZE (block_q4_0, 2 + QK4_0 / 2);

//  Q4_1: x = d * q + m, q in [0, 15]; nibble order as Q4_0.
typedef struct {
    cmn_f16 d;                  // scale
    cmn_f16 m;                  // minimum
    cmn_u8 qs [QK4_1 / 2];      // 4-bit quants
} block_q4_1;
CMN_QUANT_ASSERT_SIZE (block_q4_1, 4 + QK4_1 / 2);

//  Q5_0: x = d * (q - 16), q in [0, 31]; the fifth bit of value j is bit j
//  of the little-endian 32-bit qh.
typedef struct {
    cmn_f16 d;                  // scale
    cmn_u8 qh [4];              // fifth bits
    cmn_u8 qs [QK5_0 / 2];      // low 4 bits, nibble order as Q4_0
} block_q5_0;
CMN_QUANT_ASSERT_SIZE (block_q5_0, 2 + 4 + QK5_0 / 2);

//  Q5_1: x = d * q + m, q in [0, 31].
typedef struct {
    cmn_f16 d;                  // scale
    cmn_f16 m;                  // minimum
    cmn_u8 qh [4];              // fifth bits
    cmn_u8 qs [QK5_1 / 2];      // low 4 bits
} block_q5_1;
CMN_QUANT_ASSERT_SIZE (block_q5_1, 4 + 4 + QK5_1 / 2);

//  Q8_0: x = d * q, q in [-127, 127].
typedef struct {
    cmn_f16 d;                  // scale
    cmn_i8 qs [QK8_0];          // quants
} block_q8_0;
CMN_QUANT_ASSERT_SIZE (block_q8_0, 2 + QK8_0);

//  The 6-bit scale and min of sub-block J (0..7) of a Q4_K/Q5_K block's 12
//  `scales` bytes Q (ggml's get_scale_min_k4): bytes 0-3 hold scales 0-3
//  (low 6 bits), bytes 4-7 mins 0-3; bytes 8-11 the low 4 bits of
//  scales/mins 4-7, whose top 2 bits sit in the top bits of bytes 0-7.
//  Macros, so that Q may point into any OpenCL address space.
#define CMN_Q4K_SCALE(j, q) ((j) < 4 ? (q) [j] & 63 \
                                     : ((q) [(j) + 4] & 0xF) | (((q) [(j) - 4] >> 6) << 4))
#define CMN_Q4K_MIN(j, q)   ((j) < 4 ? (q) [(j) + 4] & 63 \
                                     : ((q) [(j) + 4] >> 4) | (((q) [j] >> 6) << 4))
//  The same from the scales read as three little-endian 32-bit words, W0
//  (bytes 0-3), W1 (4-7) and W2 (8-11): for kernels that load a block's
//  16-byte head (d, dmin, scales) as one vector and then index bytes by
//  shifts, not by loads. Byte j & 3 of each word is the one used.
#define CMN_Q4K_SCALE_W(j, w0, w2) \
    ((j) < 4 ? ((w0) >> (8 * ((j) & 3))) & 63 \
             : (((w2) >> (8 * ((j) & 3))) & 0xF) | ((((w0) >> (8 * ((j) & 3))) >> 2) & 0x30))
#define CMN_Q4K_MIN_W(j, w1, w2) \
    ((j) < 4 ? ((w1) >> (8 * ((j) & 3))) & 63 \
             : ((((w2) >> (8 * ((j) & 3))) >> 4) & 0xF) | ((((w1) >> (8 * ((j) & 3))) >> 2) & 0x30))

//  Q4_K: super-block of 8 sub-blocks of 32 values; x = d*sc*q - dmin*m,
//  with 6-bit sc and m per sub-block packed into `scales`.
typedef struct {
    cmn_f16 d;                  // super-block scale for the sub-block scales
    cmn_f16 dmin;               // super-block scale for the sub-block mins
    cmn_u8 scales [K_SCALE_SIZE]; // 6-bit scales and mins, packed
    cmn_u8 qs [QK_K / 2];       // 4-bit quants
} block_q4_K;
CMN_QUANT_ASSERT_SIZE (block_q4_K, 2 * 2 + K_SCALE_SIZE + QK_K / 2);

//  Q5_K: as Q4_K with a fifth bit per value in qh.
typedef struct {
    cmn_f16 d;                  // super-block scale for the sub-block scales
    cmn_f16 dmin;               // super-block scale for the sub-block mins
    cmn_u8 scales [K_SCALE_SIZE]; // 6-bit scales and mins, packed
    cmn_u8 qh [QK_K / 8];       // fifth bits
    cmn_u8 qs [QK_K / 2];       // low 4 bits
} block_q5_K;
CMN_QUANT_ASSERT_SIZE (block_q5_K, 2 * 2 + K_SCALE_SIZE + QK_K / 8 + QK_K / 2);

//  Q6_K: 16 sub-blocks of 16 values; x = d * scales[i] * (q - 32).
typedef struct {
    cmn_u8 ql [QK_K / 2];       // low 4 bits of the quants
    cmn_u8 qh [QK_K / 4];       // high 2 bits of the quants
    cmn_i8 scales [QK_K / 16];  // 8-bit sub-block scales
    cmn_f16 d;                  // super-block scale
} block_q6_K;
CMN_QUANT_ASSERT_SIZE (block_q6_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2);

//  rxq INT4, per-group asymmetric: x = d * (q - zp), q and zp in [0, 15].
//  Value j of the group is in qs[j / 2]: the low nibble for even j, the
//  high nibble for odd j. `pad` is written as 0 and keeps d 2-byte aligned
//  in arrays of blocks. One struct per group size (32, 64, 128 values).
typedef struct {
    cmn_f16 d;                  // scale
    cmn_u8 zp;                  // zero point, 0..15
    cmn_u8 pad;                 // always 0
    cmn_u8 qs [32 / 2];         // 4-bit quants, two per byte
} block_rxq_int4_g32;
CMN_QUANT_ASSERT_SIZE (block_rxq_int4_g32, 4 + 32 / 2);

typedef struct {
    cmn_f16 d;                  // scale
    cmn_u8 zp;                  // zero point, 0..15
    cmn_u8 pad;                 // always 0
    cmn_u8 qs [64 / 2];         // 4-bit quants, two per byte
} block_rxq_int4_g64;
CMN_QUANT_ASSERT_SIZE (block_rxq_int4_g64, 4 + 64 / 2);

typedef struct {
    cmn_f16 d;                  // scale
    cmn_u8 zp;                  // zero point, 0..15
    cmn_u8 pad;                 // always 0
    cmn_u8 qs [128 / 2];        // 4-bit quants, two per byte
} block_rxq_int4_g128;
CMN_QUANT_ASSERT_SIZE (block_rxq_int4_g128, 4 + 128 / 2);

#endif
