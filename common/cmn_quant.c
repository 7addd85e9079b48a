/*  cmn_quant: CPU reference quantizers, bit-exact with llama.cpp's
 *  reference (non-SIMD) code, and rxq's INT4.
 *
 *  Every float expression keeps ggml's order of operations, because single
 *  precision rounding makes a*b*c differ from a*(b*c): do not "simplify"
 *  them. Quantized values are rounded with the same 1.5*2^23 trick as ggml's
 *  nearest_int (round half to even), never with lrintf, so the result does
 *  not depend on the current rounding mode.
 */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
#include "cmn_quant.h"
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

//  ggml treats groups with |max| below this as all zero (GROUP_MAX_EPS).
#define S_GROUP_MAX_EPS 1e-15f

typedef struct {
    int type;               // GGML or rxq type number
    const char *name;       // llama.cpp's name
    uint32_t values;        // values per block
    uint32_t bytes;         // bytes per block
    bool convert;           // quantize/dequantize implemented here
} s_type_t;

//  Block sizes are those of ggml's type traits (ggml.c) and gguf-py's
//  GGML_QUANT_SIZES.
static const s_type_t s_types [] = {
    { GGML_TYPE_F32,     "f32",     1,   4,   true  },
    { GGML_TYPE_F16,     "f16",     1,   2,   true  },
    { GGML_TYPE_Q4_0,    "q4_0",    32,  18,  true  },
    { GGML_TYPE_Q4_1,    "q4_1",    32,  20,  true  },
    { GGML_TYPE_Q5_0,    "q5_0",    32,  22,  true  },
    { GGML_TYPE_Q5_1,    "q5_1",    32,  24,  true  },
    { GGML_TYPE_Q8_0,    "q8_0",    32,  34,  true  },
    { GGML_TYPE_Q8_1,    "q8_1",    32,  36,  false },
    { GGML_TYPE_Q2_K,    "q2_K",    256, 84,  false },
    { GGML_TYPE_Q3_K,    "q3_K",    256, 110, false },
    { GGML_TYPE_Q4_K,    "q4_K",    256, 144, true  },
    { GGML_TYPE_Q5_K,    "q5_K",    256, 176, true  },
    { GGML_TYPE_Q6_K,    "q6_K",    256, 210, true  },
    { GGML_TYPE_Q8_K,    "q8_K",    256, 292, false },
    { GGML_TYPE_IQ2_XXS, "iq2_xxs", 256, 66,  false },
    { GGML_TYPE_IQ2_XS,  "iq2_xs",  256, 74,  false },
    { GGML_TYPE_IQ3_XXS, "iq3_xxs", 256, 98,  false },
    { GGML_TYPE_IQ1_S,   "iq1_s",   256, 50,  false },
    { GGML_TYPE_IQ4_NL,  "iq4_nl",  32,  18,  false },
    { GGML_TYPE_IQ3_S,   "iq3_s",   256, 110, false },
    { GGML_TYPE_IQ2_S,   "iq2_s",   256, 82,  false },
    { GGML_TYPE_IQ4_XS,  "iq4_xs",  256, 136, false },
    { GGML_TYPE_I8,      "i8",      1,   1,   false },
    { GGML_TYPE_I16,     "i16",     1,   2,   false },
    { GGML_TYPE_I32,     "i32",     1,   4,   false },
    { GGML_TYPE_I64,     "i64",     1,   8,   false },
    { GGML_TYPE_F64,     "f64",     1,   8,   false },
    { GGML_TYPE_IQ1_M,   "iq1_m",   256, 56,  false },
    { GGML_TYPE_BF16,    "bf16",    1,   2,   true  },
    { GGML_TYPE_TQ1_0,   "tq1_0",   256, 54,  false },
    { GGML_TYPE_TQ2_0,   "tq2_0",   256, 66,  false },
    { GGML_TYPE_MXFP4,   "mxfp4",   32,  17,  false },
    { RXQ_TYPE_INT4_G32,  "rxq_int4_g32",  32,  sizeof (block_rxq_int4_g32),  true },
    { RXQ_TYPE_INT4_G64,  "rxq_int4_g64",  64,  sizeof (block_rxq_int4_g64),  true },
    { RXQ_TYPE_INT4_G128, "rxq_int4_g128", 128, sizeof (block_rxq_int4_g128), true },
};

static const s_type_t *
s_type (int type)
{
    for (size_t i = 0; i < sizeof s_types / sizeof s_types [0]; i++)
        if (s_types [i].type == type)
            return &s_types [i];
    return NULL;
}

size_t
cmn_quant_block_values (int ggml_type)
{
    const s_type_t *t = s_type (ggml_type);
    return t ? t->values : 0;
}

size_t
cmn_quant_block_bytes (int ggml_type)
{
    const s_type_t *t = s_type (ggml_type);
    return t ? t->bytes : 0;
}

bool
cmn_quant_supported (int ggml_type)
{
    const s_type_t *t = s_type (ggml_type);
    return t && t->convert;
}

bool
cmn_quant_is_private (int ggml_type)
{
    return ggml_type == RXQ_TYPE_INT4_G32 || ggml_type == RXQ_TYPE_INT4_G64
        || ggml_type == RXQ_TYPE_INT4_G128;
}

size_t
cmn_quant_row_bytes (int ggml_type, size_t n)
{
    const s_type_t *t = s_type (ggml_type);
    if (!t || n % t->values)
        return 0;
    size_t blocks = n / t->values;
    if (blocks > SIZE_MAX / t->bytes)
        return 0;
    return blocks * t->bytes;
}

const char *
cmn_quant_type_name (int ggml_type)
{
    const s_type_t *t = s_type (ggml_type);
    return t ? t->name : NULL;
}

//  --------------------------------------------------------------------------
//  Half and bfloat16

//  Both are cmn_quant_blocks.h's, which the kernels share.
uint16_t
cmn_fp32_to_fp16 (float f)
{
    return cmn_f32_to_f16_bits (f);
}

float
cmn_fp16_to_fp32 (uint16_t h)
{
    return cmn_f16_bits_to_f32 (h);
}

uint16_t
cmn_fp32_to_bf16 (float f)
{
    uint32_t u = cmn_qb_bits (f);
    if ((u & 0x7fffffff) > 0x7f800000)
        return (uint16_t) ((u >> 16) | 64);     // keep the NaN quiet
    return (uint16_t) ((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

float
cmn_bf16_to_fp32 (uint16_t h)
{
    return cmn_qb_float ((uint32_t) h << 16);
}

#define S_F16(x) cmn_fp32_to_fp16 (x)
#define S_F32(h) cmn_fp16_to_fp32 (h)
#define S_MIN(a, b) ((a) < (b) ? (a) : (b))
#define S_MAX(a, b) ((a) > (b) ? (a) : (b))

//  ggml's nearest_int: adding 1.5 * 2^23 leaves round-half-even(f) in the
//  low mantissa bits. Exact for |f| <= 2^22 - 1, which every caller
//  guarantees for finite input (scaled values stay within a few times nmax).
//  A NaN (from infinity times zero, when subnormal input makes a scale
//  overflow) gives 0: that is what the bits of x86's and ARM's default NaN
//  give in ggml's code, and saying so makes the result independent of the
//  NaN's payload, which differs between processors (NVIDIA's GPUs produce
//  0x7fffffff, which would give 0x3fffff). quant.cl does the same.
static inline int
s_nearest_int (float fval)
{
    if (fval != fval)
        return 0;
    float val = fval + 12582912.f;
    int32_t i;
    memcpy (&i, &val, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

//  (int) F clamped to [0, HI]. ggml converts with a plain cast, which is
//  the same for the values finite input produces; inputs near FLT_MAX can
//  make (x - min) overflow to infinity and then NaN, where a cast would be
//  undefined behaviour.
static inline int
s_trunc (float f, int hi)
{
    if (!(f >= 0.0f))
        return 0;
    if (f >= (float) hi)
        return hi;
    return (int) f;
}

//  --------------------------------------------------------------------------
//  32-value block types

static void
s_quantize_q4_0 (const float *x, block_q4_0 *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += QK4_0) {
        //  The value of largest magnitude, with its sign, maps to -8.
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++)
            if (amax < fabsf (x [j])) {
                amax = fabsf (x [j]);
                max = x [j];
            }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y [i].d = S_F16 (d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const float x0 = x [j] * id;
            const float x1 = x [QK4_0 / 2 + j] * id;
            //  Truncation of x + 8.5 (always >= 0) rounds half up.
            const int q0 = s_trunc (x0 + 8.5f, 15);
            const int q1 = s_trunc (x1 + 8.5f, 15);
            y [i].qs [j] = (uint8_t) (q0 | (q1 << 4));
        }
    }
}

static void
s_dequantize_q4_0 (const block_q4_0 *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, y += QK4_0) {
        const float d = S_F32 (x [i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y [j] = ((x [i].qs [j] & 0x0f) - 8) * d;
            y [j + QK4_0 / 2] = ((x [i].qs [j] >> 4) - 8) * d;
        }
    }
}

static void
s_minmax (const float *x, int n, float *min_p, float *max_p)
{
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x [j] < min) min = x [j];
        if (x [j] > max) max = x [j];
    }
    *min_p = min;
    *max_p = max;
}

static void
s_quantize_q4_1 (const float *x, block_q4_1 *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += QK4_1) {
        float min, max;
        s_minmax (x, QK4_1, &min, &max);
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y [i].d = S_F16 (d);
        y [i].m = S_F16 (min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const float x0 = (x [j] - min) * id;
            const float x1 = (x [QK4_1 / 2 + j] - min) * id;
            const int q0 = s_trunc (x0 + 0.5f, 15);
            const int q1 = s_trunc (x1 + 0.5f, 15);
            y [i].qs [j] = (uint8_t) (q0 | (q1 << 4));
        }
    }
}

static void
s_dequantize_q4_1 (const block_q4_1 *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, y += QK4_1) {
        const float d = S_F32 (x [i].d);
        const float m = S_F32 (x [i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y [j] = (x [i].qs [j] & 0x0f) * d + m;
            y [j + QK4_1 / 2] = (x [i].qs [j] >> 4) * d + m;
        }
    }
}

//  Packs 32 five-bit values as Q5_0/Q5_1 store them.
static void
s_pack_q5 (const int q [32], uint8_t qs [16], uint8_t qh_bytes [4])
{
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs [j] = (uint8_t) ((q [j] & 0x0f) | ((q [j + 16] & 0x0f) << 4));
        qh |= ((uint32_t) (q [j] & 0x10) >> 4) << j;
        qh |= ((uint32_t) (q [j + 16] & 0x10) >> 4) << (j + 16);
    }
    for (int b = 0; b < 4; b++)
        qh_bytes [b] = (uint8_t) (qh >> (8 * b));   // little-endian on any host
}

static uint32_t
s_load_qh (const uint8_t qh [4])
{
    return (uint32_t) qh [0] | (uint32_t) qh [1] << 8 | (uint32_t) qh [2] << 16
         | (uint32_t) qh [3] << 24;
}

static void
s_quantize_q5_0 (const float *x, block_q5_0 *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += QK5_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK5_0; j++)
            if (amax < fabsf (x [j])) {
                amax = fabsf (x [j]);
                max = x [j];
            }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y [i].d = S_F16 (d);
        int q [QK5_0];
        for (int j = 0; j < QK5_0; j++)
            q [j] = s_trunc (x [j] * id + 16.5f, 31);
        s_pack_q5 (q, y [i].qs, y [i].qh);
    }
}

static void
s_dequantize_q5_0 (const block_q5_0 *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, y += QK5_0) {
        const float d = S_F32 (x [i].d);
        const uint32_t qh = s_load_qh (x [i].qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int h0 = ((qh >> j) << 4) & 0x10;
            const int h1 = (qh >> (j + 12)) & 0x10;
            y [j] = (((x [i].qs [j] & 0x0f) | h0) - 16) * d;
            y [j + QK5_0 / 2] = (((x [i].qs [j] >> 4) | h1) - 16) * d;
        }
    }
}

static void
s_quantize_q5_1 (const float *x, block_q5_1 *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += QK5_1) {
        float min, max;
        s_minmax (x, QK5_1, &min, &max);
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y [i].d = S_F16 (d);
        y [i].m = S_F16 (min);
        int q [QK5_1];
        //  ggml does not clamp here: (x - min) * id + 0.5 stays below 32.
        for (int j = 0; j < QK5_1; j++)
            q [j] = s_trunc ((x [j] - min) * id + 0.5f, 31);
        s_pack_q5 (q, y [i].qs, y [i].qh);
    }
}

static void
s_dequantize_q5_1 (const block_q5_1 *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, y += QK5_1) {
        const float d = S_F32 (x [i].d);
        const float m = S_F32 (x [i].m);
        const uint32_t qh = s_load_qh (x [i].qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int h0 = ((qh >> j) << 4) & 0x10;
            const int h1 = (qh >> (j + 12)) & 0x10;
            y [j] = ((x [i].qs [j] & 0x0f) | h0) * d + m;
            y [j + QK5_1 / 2] = ((x [i].qs [j] >> 4) | h1) * d + m;
        }
    }
}

static void
s_quantize_q8_0 (const float *x, block_q8_0 *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++)
            amax = S_MAX (amax, fabsf (x [j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y [i].d = S_F16 (d);
        for (int j = 0; j < QK8_0; j++)
            y [i].qs [j] = (int8_t) S_MAX (-127.f, S_MIN (127.f, roundf (x [j] * id)));
    }
}

static void
s_dequantize_q8_0 (const block_q8_0 *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, y += QK8_0) {
        const float d = S_F32 (x [i].d);
        for (int j = 0; j < QK8_0; j++)
            y [j] = x [i].qs [j] * d;
    }
}

//  --------------------------------------------------------------------------
//  K-quants: super-blocks of 256 values

//  ggml's make_qkx2_quants: fits x ~ scale * L + min (min <= 0) over N
//  values with weights, trying NSTEP+1 candidate scales around nmax/(max -
//  min) and keeping the one with the smallest weighted error. Returns the
//  scale; *THE_MIN receives -min.
static float
s_make_qkx2_quants (int n, int nmax, const float *x, const float *weights,
                    uint8_t *L, float *the_min, uint8_t *Laux,
                    float rmin, float rdelta, int nstep, bool use_mad)
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
        memset (L, 0, (size_t) n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = s_nearest_int (iscale * (x [i] - min));
        L [i] = (uint8_t) S_MAX (0, S_MIN (nmax, l));
        float diff = scale * L [i] + min - x [i];
        diff = use_mad ? fabsf (diff) : diff * diff;
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
            int l = s_nearest_int (iscale * (x [i] - min));
            l = S_MAX (0, S_MIN (nmax, l));
            Laux [i] = (uint8_t) l;
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
                diff = use_mad ? fabsf (diff) : diff * diff;
                cur_error += weights [i] * diff;
            }
            if (cur_error < best_error) {
                memcpy (L, Laux, (size_t) n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

//  ggml's make_qx_quants with rmse_type 1 and no importance weights (the
//  only use in the reference quantizers): symmetric fit x ~ scale * (L -
//  nmax), weights x^2, trying 18 scales around nmax/max.
static float
s_make_qx_quants (int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf (x [i]);
        if (ax > amax) {
            amax = ax;
            max = x [i];
        }
    }
    if (amax < S_GROUP_MAX_EPS) {
        memset (L, 0, (size_t) n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = s_nearest_int (iscale * x [i]);
        l = S_MAX (-nmax, S_MIN (nmax - 1, l));
        L [i] = (int8_t) (l + nmax);
        float w = x [i] * x [i];
        sumlx += w * x [i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = s_nearest_int (iscale * x [i]);
            l = S_MAX (-nmax, S_MIN (nmax - 1, l));
            float w = x [i] * x [i];
            sumlx += w * x [i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = s_nearest_int (iscale * x [i]);
                L [i] = (int8_t) (nmax + S_MAX (-nmax, S_MIN (nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

//  The 6-bit scale and min of sub-block J from Q4_K/Q5_K `scales`
//  (CMN_Q4K_SCALE, CMN_Q4K_MIN).
static inline void
s_get_scale_min_k4 (int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    *d = (uint8_t) CMN_Q4K_SCALE (j, q);
    *m = (uint8_t) CMN_Q4K_MIN (j, q);
}

//  The common part of Q4_K and Q5_K: fits the eight sub-blocks, packs
//  their scales and mins into Y_SCALES / *D / *DMIN and leaves the final
//  quants in L.
static void
s_quantize_k_scales (const float *x, int nmax, float rmin, float rdelta, int nstep,
                     uint8_t L [QK_K], uint8_t y_scales [K_SCALE_SIZE],
                     cmn_f16 *y_d, cmn_f16 *y_dmin)
{
    uint8_t Laux [32];
    float weights [32];
    float mins [QK_K / 32];
    float scales [QK_K / 32];
    float max_scale = 0;        // scales are positive once the min is removed
    float max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += x [32 * j + l] * x [32 * j + l];
        float av_x = sqrtf (sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            weights [l] = av_x + fabsf (x [32 * j + l]);
        scales [j] = s_make_qkx2_quants (32, nmax, x + 32 * j, weights, L + 32 * j,
                                         &mins [j], Laux, rmin, rdelta, nstep, false);
        if (scales [j] > max_scale)
            max_scale = scales [j];
        if (mins [j] > max_min)
            max_min = mins [j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; j++) {
        //  ggml stores nearest_int's result in a uint8_t before clamping:
        //  keep the same wrap-around for (theoretical) negative scales.
        uint8_t ls = (uint8_t) s_nearest_int (inv_scale * scales [j]);
        uint8_t lm = (uint8_t) s_nearest_int (inv_min * mins [j]);
        ls = S_MIN (63, ls);
        lm = S_MIN (63, lm);
        if (j < 4) {
            y_scales [j] = ls;
            y_scales [j + 4] = lm;
        }
        else {
            y_scales [j + 4] = (uint8_t) ((ls & 0xf) | ((lm & 0xf) << 4));
            y_scales [j - 4] |= (uint8_t) ((ls >> 4) << 6);
            y_scales [j] |= (uint8_t) ((lm >> 4) << 6);
        }
    }
    *y_d = S_F16 (max_scale / 63.f);
    *y_dmin = S_F16 (max_min / 63.f);

    //  Requantize against the scales as stored; a sub-block whose scale
    //  rounded to zero keeps the quants of its fit, as in ggml.
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        s_get_scale_min_k4 (j, y_scales, &sc, &m);
        const float d = S_F32 (*y_d) * sc;
        if (!d)
            continue;
        const float dm = S_F32 (*y_dmin) * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = s_nearest_int ((x [32 * j + ii] + dm) / d);
            L [32 * j + ii] = (uint8_t) S_MAX (0, S_MIN (nmax, l));
        }
    }
}

static void
s_quantize_q4_K (const float *x, block_q4_K *y, size_t nb)
{
    uint8_t L [QK_K];
    for (size_t i = 0; i < nb; i++, x += QK_K) {
        memset (y [i].scales, 0, sizeof y [i].scales);
        s_quantize_k_scales (x, 15, -1.f, 0.1f, 20, L, y [i].scales, &y [i].d, &y [i].dmin);
        //  Each 32 bytes of qs hold 64 values: the first 32 in the low
        //  nibbles, the next 32 in the high nibbles.
        uint8_t *q = y [i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q [l] = (uint8_t) (L [j + l] | (L [j + l + 32] << 4));
    }
}

static void
s_dequantize_q4_K (const block_q4_K *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++) {
        const uint8_t *q = x [i].qs;
        const float d = S_F32 (x [i].d);
        const float min = S_F32 (x [i].dmin);
        int is = 0;
        for (int j = 0; j < QK_K; j += 64, q += 32, is += 2) {
            uint8_t sc, m;
            s_get_scale_min_k4 (is, x [i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            s_get_scale_min_k4 (is + 1, x [i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (q [l] & 0xf) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (q [l] >> 4) - m2;
        }
    }
}

static void
s_quantize_q5_K (const float *x, block_q5_K *y, size_t nb)
{
    uint8_t L [QK_K];
    for (size_t i = 0; i < nb; i++, x += QK_K) {
        memset (y [i].scales, 0, sizeof y [i].scales);
        s_quantize_k_scales (x, 31, -0.5f, 0.1f, 15, L, y [i].scales, &y [i].d, &y [i].dmin);
        //  Low nibbles as Q4_K; the fifth bit of value n + j (n a multiple
        //  of 64, j < 32) is bit n/32 of qh[j], of value n + j + 32 the next.
        uint8_t *qh = y [i].qh;
        uint8_t *ql = y [i].qs;
        memset (qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
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
                ql [j] = (uint8_t) (l1 | (l2 << 4));
            }
            m1 = (uint8_t) (m1 << 2);
            m2 = (uint8_t) (m2 << 2);
        }
    }
}

static void
s_dequantize_q5_K (const block_q5_K *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++) {
        const uint8_t *ql = x [i].qs;
        const uint8_t *qh = x [i].qh;
        const float d = S_F32 (x [i].d);
        const float min = S_F32 (x [i].dmin);
        int is = 0;
        unsigned u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K; j += 64, ql += 32, is += 2, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            s_get_scale_min_k4 (is, x [i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            s_get_scale_min_k4 (is + 1, x [i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * ((ql [l] & 0xf) + (qh [l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * ((ql [l] >> 4) + (qh [l] & u2 ? 16 : 0)) - m2;
        }
    }
}

static void
s_quantize_q6_K (const float *x, block_q6_K *y, size_t nb)
{
    int8_t L [QK_K];
    float scales [QK_K / 16];
    for (size_t i = 0; i < nb; i++, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            const float scale = s_make_qx_quants (16, 32, x + 16 * ib, L + 16 * ib);
            scales [ib] = scale;
            if (fabsf (scale) > max_abs_scale) {
                max_abs_scale = fabsf (scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < S_GROUP_MAX_EPS) {
            memset (&y [i], 0, sizeof y [i]);
            continue;
        }
        float iscale = -128.f / max_scale;
        y [i].d = S_F16 (1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++)
            y [i].scales [ib] = (int8_t) S_MIN (127, s_nearest_int (iscale * scales [ib]));
        for (int j = 0; j < QK_K / 16; j++) {
            float d = S_F32 (y [i].d) * y [i].scales [j];
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = s_nearest_int (x [16 * j + ii] / d);
                l = S_MAX (-32, S_MIN (31, l));
                L [16 * j + ii] = (int8_t) (l + 32);
            }
        }
        //  Per 128 values: ql[0..63] hold values 0-31 and 64-95 (low,
        //  high nibble) and 32-63 and 96-127; qh[l] holds the top 2 bits
        //  of values l, l+32, l+64, l+96.
        uint8_t *ql = y [i].ql;
        uint8_t *qh = y [i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L [j + l] & 0xf;
                const uint8_t q2 = L [j + l + 32] & 0xf;
                const uint8_t q3 = L [j + l + 64] & 0xf;
                const uint8_t q4 = L [j + l + 96] & 0xf;
                ql [l] = (uint8_t) (q1 | (q3 << 4));
                ql [l + 32] = (uint8_t) (q2 | (q4 << 4));
                qh [l] = (uint8_t) ((L [j + l] >> 4) | ((L [j + l + 32] >> 4) << 2)
                                    | ((L [j + l + 64] >> 4) << 4) | ((L [j + l + 96] >> 4) << 6));
            }
        }
    }
}

static void
s_dequantize_q6_K (const block_q6_K *x, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++) {
        const float d = S_F32 (x [i].d);
        const uint8_t *ql = x [i].ql;
        const uint8_t *qh = x [i].qh;
        const int8_t *sc = x [i].scales;
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
}

//  --------------------------------------------------------------------------
//  rxq INT4: per-group asymmetric with a zero point (docs/quantization.md).
//  The range is widened to include 0, so zero (padding, pruned weights) is
//  exact; q is computed against the scale as stored in binary16.

static void
s_quantize_int4 (const float *x, uint8_t *dst, size_t nb, int g)
{
    const size_t bytes = 4 + (size_t) g / 2;
    for (size_t i = 0; i < nb; i++, x += g, dst += bytes) {
        float min = 0.0f, max = 0.0f;
        for (int j = 0; j < g; j++) {
            if (x [j] < min) min = x [j];
            if (x [j] > max) max = x [j];
        }
        const cmn_f16 dh = S_F16 ((max - min) / 15.0f);
        const float d = S_F32 (dh);
        //  A scale that overflowed binary16 cannot represent the group:
        //  store it (the dequantized values are then inf or NaN, visibly
        //  wrong) rather than pretend.
        const float id = (d != 0.0f && isfinite (d)) ? 1.0f / d : 0.0f;
        int zp = s_nearest_int (-min * id);
        zp = S_MAX (0, S_MIN (15, zp));
        memcpy (dst, &dh, sizeof dh);
        dst [2] = (uint8_t) zp;
        dst [3] = 0;
        uint8_t *qs = dst + 4;
        for (int j = 0; j < g; j += 2) {
            int q0 = s_nearest_int (x [j] * id) + zp;
            int q1 = s_nearest_int (x [j + 1] * id) + zp;
            q0 = S_MAX (0, S_MIN (15, q0));
            q1 = S_MAX (0, S_MIN (15, q1));
            qs [j / 2] = (uint8_t) (q0 | (q1 << 4));
        }
    }
}

static void
s_dequantize_int4 (const uint8_t *src, float *y, size_t nb, int g)
{
    const size_t bytes = 4 + (size_t) g / 2;
    for (size_t i = 0; i < nb; i++, y += g, src += bytes) {
        cmn_f16 dh;
        memcpy (&dh, src, sizeof dh);
        const float d = S_F32 (dh);
        const int zp = src [2] & 0x0f;  // a stray high nibble is ignored
        const uint8_t *qs = src + 4;
        for (int j = 0; j < g; j += 2) {
            y [j] = ((qs [j / 2] & 0x0f) - zp) * d;
            y [j + 1] = ((qs [j / 2] >> 4) - zp) * d;
        }
    }
}

//  --------------------------------------------------------------------------

int
cmn_quant_quantize_row (int ggml_type, const float *src, void *dst, size_t n)
{
    assert (src || n == 0);
    assert (dst || n == 0);
    const s_type_t *t = s_type (ggml_type);
    if (!t || !t->convert || n % t->values)
        return -1;
    const size_t nb = n / t->values;
    if (t->values > 1)
        for (size_t i = 0; i < n; i++)
            if (!isfinite (src [i]))
                return -1;
    switch (ggml_type) {
        case GGML_TYPE_F32:
            memcpy (dst, src, n * sizeof (float));
            break;
        case GGML_TYPE_F16:
        case GGML_TYPE_BF16: {
            uint8_t *out = dst;
            for (size_t i = 0; i < n; i++) {
                uint16_t h = ggml_type == GGML_TYPE_F16 ? cmn_fp32_to_fp16 (src [i])
                                                        : cmn_fp32_to_bf16 (src [i]);
                memcpy (out + 2 * i, &h, 2);    // DST need not be aligned
            }
            break;
        }
        case GGML_TYPE_Q4_0: s_quantize_q4_0 (src, dst, nb); break;
        case GGML_TYPE_Q4_1: s_quantize_q4_1 (src, dst, nb); break;
        case GGML_TYPE_Q5_0: s_quantize_q5_0 (src, dst, nb); break;
        case GGML_TYPE_Q5_1: s_quantize_q5_1 (src, dst, nb); break;
        case GGML_TYPE_Q8_0: s_quantize_q8_0 (src, dst, nb); break;
        case GGML_TYPE_Q4_K: s_quantize_q4_K (src, dst, nb); break;
        case GGML_TYPE_Q5_K: s_quantize_q5_K (src, dst, nb); break;
        case GGML_TYPE_Q6_K: s_quantize_q6_K (src, dst, nb); break;
        case RXQ_TYPE_INT4_G32:  s_quantize_int4 (src, dst, nb, 32); break;
        case RXQ_TYPE_INT4_G64:  s_quantize_int4 (src, dst, nb, 64); break;
        case RXQ_TYPE_INT4_G128: s_quantize_int4 (src, dst, nb, 128); break;
        default:
            return -1;
    }
    return 0;
}

int
cmn_quant_dequantize_row (int ggml_type, const void *src, float *dst, size_t n)
{
    assert (src || n == 0);
    assert (dst || n == 0);
    const s_type_t *t = s_type (ggml_type);
    if (!t || !t->convert || n % t->values)
        return -1;
    const size_t nb = n / t->values;
    switch (ggml_type) {
        case GGML_TYPE_F32:
            memcpy (dst, src, n * sizeof (float));
            break;
        case GGML_TYPE_F16:
        case GGML_TYPE_BF16: {
            const uint8_t *in = src;
            for (size_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy (&h, in + 2 * i, 2);
                dst [i] = ggml_type == GGML_TYPE_F16 ? cmn_fp16_to_fp32 (h)
                                                     : cmn_bf16_to_fp32 (h);
            }
            break;
        }
        case GGML_TYPE_Q4_0: s_dequantize_q4_0 (src, dst, nb); break;
        case GGML_TYPE_Q4_1: s_dequantize_q4_1 (src, dst, nb); break;
        case GGML_TYPE_Q5_0: s_dequantize_q5_0 (src, dst, nb); break;
        case GGML_TYPE_Q5_1: s_dequantize_q5_1 (src, dst, nb); break;
        case GGML_TYPE_Q8_0: s_dequantize_q8_0 (src, dst, nb); break;
        case GGML_TYPE_Q4_K: s_dequantize_q4_K (src, dst, nb); break;
        case GGML_TYPE_Q5_K: s_dequantize_q5_K (src, dst, nb); break;
        case GGML_TYPE_Q6_K: s_dequantize_q6_K (src, dst, nb); break;
        case RXQ_TYPE_INT4_G32:  s_dequantize_int4 (src, dst, nb, 32); break;
        case RXQ_TYPE_INT4_G64:  s_dequantize_int4 (src, dst, nb, 64); break;
        case RXQ_TYPE_INT4_G128: s_dequantize_int4 (src, dst, nb, 128); break;
        default:
            return -1;
    }
    return 0;
}
