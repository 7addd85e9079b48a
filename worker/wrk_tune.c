/*  wrk_tune: the per-device tuning table, overrides, clamping and the
 *  parameter searches. The rows and their reasoning are in
 *  docs/tuning.md; keep the two in step.
 */
#include "wrk_tune.h"
#include "wrk_bench.h"
#include "wrk_kernels.h"
#include "wrk_ref.h"
#include "cmn_codec.h"
#include "cmn_quant.h"
#include "cmn_quant_blocks.h"
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  --------------------------------------------------------------------------
//  Families and their parameters

//  One tuning parameter: its -D name and the values it may take.
typedef struct {
    const char *name;           // -D macro name
    int min, max;               // inclusive range
    bool pow2;                  // must be a power of two
} s_param_t;

typedef struct {
    const char *name;           // family name in override maps
    int count;                  // parameters
    s_param_t params [WRK_TUNE_MAX_PARAMS];
} s_family_t;

//  Indexes below follow these lists; the kernel files give the meanings.
static const s_family_t s_families [WRK_TUNE_FAMILIES] = {
    [WRK_TUNE_SGEMM] = { "sgemm", 8, {
        { "DIRECT", 0, 1, false }, { "TSM", 1, 256, false }, { "TSN", 1, 256, false },
        { "TSK", 1, 64, true }, { "WPTM", 1, 16, false }, { "WPTN", 1, 64, false },
        { "VW", 1, 16, true }, { "APAD", 0, 4, false } } },
    [WRK_TUNE_QMATMUL] = { "qmatmul", 8, {
        { "QMM_WGS", 1, 1024, true }, { "GEMV_ROWS", 1, 64, false },
        { "GEMM_ROWS", 1, 16, false }, { "GEMM_BT", 1, 16, false },
        { "GEMV_UNIT", 0, 2, false }, { "GEMV_I8_ROWS", 1, 64, false },
        { "GEMV_I8_KU", 1, 4, true }, { "GEMV_I8_KROWS", 1, 64, false } } },
    [WRK_TUNE_NORM] = { "norm", 1, { { "NORM_WGS", 1, 4096, true } } },
    //  The error bounds of softmax and attention (docs/kernels.md) assume
    //  at least 16 work-items.
    [WRK_TUNE_SOFTMAX] = { "softmax", 1, { { "SOFTMAX_WGS", 16, 4096, true } } },
    [WRK_TUNE_ATTENTION] = { "attention", 1, { { "ATT_WGS", 16, 1024, true } } },
    [WRK_TUNE_ELEMENTWISE] = { "elementwise", 1, { { "EW_WGS", 1, 4096, true } } },
    [WRK_TUNE_TRANSPOSE] = { "transpose", 2, {
        { "TR_TILE", 1, 64, true }, { "TR_ROWS", 1, 64, true } } },
    [WRK_TUNE_CONV] = { "conv", 2, {
        { "CONV_WGS", 1, 1024, true }, { "CONV_OCT", 1, 16, false } } },
};

enum { S_DIRECT, S_TSM, S_TSN, S_TSK, S_WPTM, S_WPTN, S_VW, S_APAD };
enum { S_QMM_WGS, S_GEMV_ROWS, S_GEMM_ROWS, S_GEMM_BT, S_GEMV_UNIT, S_GEMV_I8_ROWS,
       S_GEMV_I8_KU, S_GEMV_I8_KROWS };
enum { S_TR_TILE, S_TR_ROWS };
enum { S_CONV_WGS, S_CONV_OCT };

//  Head sizes attention.cl is built for by wrk_kernels (ATT_MAX_HD); it
//  sizes the kernel's local query copy.
#define S_ATT_MAX_HD 256

const char *
wrk_tune_family_name (wrk_tune_family_t family)
{
    assert (family < WRK_TUNE_FAMILIES);
    return s_families [family].name;
}

int
wrk_tune_family_find (const char *name, size_t len)
{
    for (int f = 0; f < WRK_TUNE_FAMILIES; f++)
        if (strlen (s_families [f].name) == len && memcmp (s_families [f].name, name, len) == 0)
            return f;
    return -1;
}

int
wrk_tune_param_count (wrk_tune_family_t family)
{
    assert (family < WRK_TUNE_FAMILIES);
    return s_families [family].count;
}

const char *
wrk_tune_param_name (wrk_tune_family_t family, int i)
{
    assert (family < WRK_TUNE_FAMILIES);
    return i >= 0 && i < s_families [family].count ? s_families [family].params [i].name : NULL;
}

static int
s_param_find (wrk_tune_family_t family, const char *name, size_t len)
{
    const s_family_t *f = &s_families [family];
    for (int i = 0; i < f->count; i++)
        if (strlen (f->params [i].name) == len && memcmp (f->params [i].name, name, len) == 0)
            return i;
    return -1;
}

int
wrk_tune_get (const wrk_tune_t *t, wrk_tune_family_t family, const char *name)
{
    assert (t && family < WRK_TUNE_FAMILIES);
    int i = s_param_find (family, name, strlen (name));
    assert (i >= 0);
    return t->v [family][i];
}

void
wrk_tune_put (wrk_tune_t *t, wrk_tune_family_t family, const char *name, int value)
{
    assert (t && family < WRK_TUNE_FAMILIES);
    int i = s_param_find (family, name, strlen (name));
    assert (i >= 0);
    t->v [family][i] = value;
}

//  --------------------------------------------------------------------------
//  The table

//  A shipped row. Each match field is a '|'-separated list of
//  case-insensitive substrings, any of which matches; NULL matches
//  anything. TYPE is wrk_device_info_t's type ("gpu", "cpu").
typedef struct {
    const char *name;           // row name, reported with the set
    const char *vendor;         // CL_DEVICE_VENDOR substrings
    const char *device;         // CL_DEVICE_NAME substrings
    const char *type;           // device type, exact; NULL any
    int v [WRK_TUNE_FAMILIES][WRK_TUNE_MAX_PARAMS];
} s_row_t;

//  Values in the order of s_families. First match wins; the default row
//  matches everything and must stay last. docs/tuning.md explains each.
static const s_row_t s_rows [] = {
    //  PoCL's pthread device and other CPU runtimes: measured on PoCL 3.1
    //  (2 cores, AVX-512). SGEMM uses the direct kernel: 6 x 32 block per
    //  work-item in float16 registers.
    { "cpu", NULL, NULL, "cpu", {
        [WRK_TUNE_SGEMM]       = { 1, 96, 32, 8, 6, 32, 16, 0 },
        [WRK_TUNE_QMATMUL]     = { 8, 4, 4, 4, 1, 4, 1, 4 },
        [WRK_TUNE_NORM]        = { 64 },
        [WRK_TUNE_SOFTMAX]     = { 64 },
        [WRK_TUNE_ATTENTION]   = { 16 },
        [WRK_TUNE_ELEMENTWISE] = { 1024 },
        [WRK_TUNE_TRANSPOSE]   = { 32, 8 },
        [WRK_TUNE_CONV]        = { 64, 8 } } },
    //  NVIDIA, reasoned for the H100 (warp 32, 228 KiB shared memory per
    //  SM, 64 K registers per SM).
    { "nvidia", "NVIDIA", NULL, "gpu", {
        [WRK_TUNE_SGEMM]       = { 0, 128, 128, 16, 8, 8, 4, 1 },
        [WRK_TUNE_QMATMUL]     = { 128, 2, 2, 8, 0, 3, 2, 4 },
        [WRK_TUNE_NORM]        = { 256 },
        [WRK_TUNE_SOFTMAX]     = { 256 },
        [WRK_TUNE_ATTENTION]   = { 32 },
        [WRK_TUNE_ELEMENTWISE] = { 256 },
        [WRK_TUNE_TRANSPOSE]   = { 32, 8 },
        [WRK_TUNE_CONV]        = { 128, 4 } } },
    //  AMD Polaris (RX 470/480/570/580/590: "Ellesmere", gfx803), reasoned
    //  from the architecture: wave64, 64 KiB LDS, 256 GB/s, 6.2 TFLOPS.
    { "amd-polaris", "AMD|Advanced Micro Devices",
      "Ellesmere|Baffin|Lexa|Polaris|gfx803|RX 470|RX 480|RX 570|RX 580|RX 590", "gpu", {
        [WRK_TUNE_SGEMM]       = { 0, 64, 64, 8, 8, 8, 4, 1 },
        [WRK_TUNE_QMATMUL]     = { 64, 2, 2, 4, 0, 2, 2, 2 },
        [WRK_TUNE_NORM]        = { 256 },
        [WRK_TUNE_SOFTMAX]     = { 256 },
        [WRK_TUNE_ATTENTION]   = { 64 },
        [WRK_TUNE_ELEMENTWISE] = { 256 },
        [WRK_TUNE_TRANSPOSE]   = { 32, 8 },
        [WRK_TUNE_CONV]        = { 64, 4 } } },
    //  Default: what every kernel file's #ifndef defaults are (the RX 580
    //  reasoning of docs/kernels.md), safe on any GPU once clamped.
    { "default", NULL, NULL, NULL, {
        [WRK_TUNE_SGEMM]       = { 0, 64, 64, 16, 4, 4, 4, 1 },
        [WRK_TUNE_QMATMUL]     = { 64, 2, 2, 4, 0, 2, 1, 2 },
        [WRK_TUNE_NORM]        = { 256 },
        [WRK_TUNE_SOFTMAX]     = { 256 },
        [WRK_TUNE_ATTENTION]   = { 64 },
        [WRK_TUNE_ELEMENTWISE] = { 256 },
        [WRK_TUNE_TRANSPOSE]   = { 32, 8 },
        [WRK_TUNE_CONV]        = { 64, 4 } } },
};

#define S_ROWS (sizeof s_rows / sizeof s_rows [0])

//  True when TEXT contains one of the '|'-separated PATTERNS, ignoring case.
static bool
s_match (const char *patterns, const char *text)
{
    if (!patterns)
        return true;
    const char *p = patterns;
    while (*p) {
        const char *end = strchr (p, '|');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        for (const char *t = text; len && strlen (t) >= len; t++)
            if (strncasecmp (t, p, len) == 0)
                return true;
        p += len + (end ? 1 : 0);
    }
    return false;
}

static const s_row_t *
s_row_for (const wrk_device_info_t *info)
{
    for (size_t i = 0; i < S_ROWS; i++) {
        const s_row_t *r = &s_rows [i];
        if (s_match (r->vendor, info->vendor) && s_match (r->device, info->name)
        &&  (!r->type || strcmp (r->type, info->type) == 0))
            return r;
    }
    assert (false);             // the default row matches everything
    return &s_rows [S_ROWS - 1];
}

static void
s_from_row (const s_row_t *row, wrk_tune_t *t)
{
    memset (t, 0, sizeof *t);
    memcpy (t->v, row->v, sizeof t->v);
    t->row = row->name;
}

void
wrk_tune_default (wrk_tune_t *t)
{
    assert (t);
    s_from_row (&s_rows [S_ROWS - 1], t);
}

void
wrk_tune_lookup (const wrk_device_info_t *info, wrk_tune_t *t)
{
    assert (info && t);
    s_from_row (s_row_for (info), t);
    wrk_tune_clamp (t, info);
}

//  --------------------------------------------------------------------------
//  Validation and clamping

size_t
wrk_tune_wg_size (const wrk_tune_t *t, wrk_tune_family_t family)
{
    const int *v = t->v [family];
    switch (family) {
        case WRK_TUNE_SGEMM:
            return v [S_WPTM] > 0 && v [S_WPTN] > 0
                 ? (size_t) (v [S_TSM] / v [S_WPTM]) * (size_t) (v [S_TSN] / v [S_WPTN]) : 0;
        case WRK_TUNE_TRANSPOSE:
            return (size_t) v [S_TR_TILE] * (size_t) v [S_TR_ROWS];
        default:
            return (size_t) v [0];
    }
}

size_t
wrk_tune_local_bytes (const wrk_tune_t *t, wrk_tune_family_t family)
{
    const int *v = t->v [family];
    const size_t f = sizeof (float);
    switch (family) {
        case WRK_TUNE_SGEMM:
            //  sgemm.cl pads by APAD float4 when WPTM and WPTN are
            //  multiples of 4 (its float4 local reads), else by APAD floats.
            return v [S_DIRECT] ? 0
                 : f * (size_t) v [S_TSK]
                   * (size_t) (v [S_TSM] + v [S_TSN]
                               + v [S_APAD] * (v [S_WPTM] % 4 == 0 && v [S_WPTN] % 4 == 0
                                               ? 4 : 1));
        case WRK_TUNE_QMATMUL: {
            const size_t wgs = (size_t) v [S_QMM_WGS];
            const size_t gemm = f * (size_t) (v [S_GEMM_ROWS] * v [S_GEMM_BT]) * wgs;
            size_t gemv = f * (size_t) v [S_GEMV_ROWS] * wgs;
            if (v [S_GEMV_UNIT] == 2) {
                //  qmatmul.cl's team scheme with its QMV_TEAM 32, QMV_SPC 4:
                //  QMV_RPT * QMM_WGS floats, and two x halves of QMV_CH
                //  16-value slices.
                const size_t tm = wgs < 32 ? wgs : 32, teams = wgs / tm;
                const size_t rpt = ((size_t) v [S_GEMV_ROWS] + teams - 1) / teams;
                const size_t ch = tm * 4 < 16 ? 16 : tm * 4;
                gemv = f * rpt * wgs + 2 * ch * 16 * f;
            }
            const int i8_rows = v [S_GEMV_I8_ROWS] > v [S_GEMV_I8_KROWS] ? v [S_GEMV_I8_ROWS]
                                                                          : v [S_GEMV_I8_KROWS];
            const size_t gemv_i8 = f * (size_t) i8_rows * wgs;
            gemv = gemv > gemv_i8 ? gemv : gemv_i8;
            return gemv > gemm ? gemv : gemm;
        }
        case WRK_TUNE_NORM:
            return f * (size_t) v [0];
        case WRK_TUNE_SOFTMAX:
            return 2 * f * (size_t) v [0];
        case WRK_TUNE_ATTENTION:
            return f * (S_ATT_MAX_HD + 2 * (size_t) v [0]);
        case WRK_TUNE_TRANSPOSE:
            return f * (size_t) v [S_TR_TILE] * (size_t) (v [S_TR_TILE] + 1);
        default:
            return 0;
    }
}

static int
s_validate_family (const wrk_tune_t *t, int fam, cmn_err_t *err)
{
    const s_family_t *f = &s_families [fam];
    const int *v = t->v [fam];
    for (int i = 0; i < f->count; i++) {
        const s_param_t *p = &f->params [i];
        if (v [i] < p->min || v [i] > p->max || (p->pow2 && (v [i] & (v [i] - 1))))
            return cmn_err_set (err, RXQ_E_PARAM, "tuning %s.%s is %d, must be %s in "
                                "[%d, %d]", f->name, p->name, v [i],
                                p->pow2 ? "a power of two" : "an integer", p->min, p->max);
    }
    const char *why = NULL;
    if (fam == WRK_TUNE_SGEMM) {
        if (v [S_TSM] % v [S_WPTM] || v [S_TSN] % v [S_WPTN])
            why = "TSM and TSN must be multiples of WPTM and WPTN";
        else
        if (v [S_TSN] % v [S_VW])
            why = "TSN must be a multiple of VW";
        else
        if (!v [S_DIRECT] && v [S_TSK] % v [S_VW])
            why = "TSK must be a multiple of VW when DIRECT is 0";
        else
        if (v [S_DIRECT] && v [S_WPTN] % v [S_VW])
            why = "WPTN must be a multiple of VW when DIRECT is 1";
        else
        if (v [S_WPTM] * v [S_WPTN] > 256)
            why = "WPTM * WPTN must be at most 256 (registers)";
    }
    else
    if (fam == WRK_TUNE_TRANSPOSE && v [S_TR_TILE] % v [S_TR_ROWS])
        why = "TR_ROWS must divide TR_TILE";
    if (why)
        return cmn_err_set (err, RXQ_E_PARAM, "tuning %s: %s", f->name, why);
    return 0;
}

int
wrk_tune_validate (const wrk_tune_t *t, cmn_err_t *err)
{
    assert (t);
    for (int f = 0; f < WRK_TUNE_FAMILIES; f++)
        if (s_validate_family (t, f, err))
            return -1;
    return 0;
}

static bool
s_fits (const wrk_tune_t *t, int fam, const wrk_device_info_t *info)
{
    return wrk_tune_wg_size (t, fam) <= info->max_wg
        && wrk_tune_local_bytes (t, fam) <= info->local_mem;
}

//  One step down for the SGEMM tile: halve the larger tile side that still
//  holds more than one block, else the K step. Returns false when nothing
//  can shrink.
static bool
s_shrink_sgemm (int *v)
{
    bool m_can = v [S_TSM] > v [S_WPTM] && (v [S_TSM] / 2) % v [S_WPTM] == 0;
    bool n_can = v [S_TSN] > v [S_WPTN] && (v [S_TSN] / 2) % v [S_WPTN] == 0
              && (v [S_TSN] / 2) % v [S_VW] == 0;
    if (m_can && (v [S_TSM] >= v [S_TSN] || !n_can))
        v [S_TSM] /= 2;
    else
    if (n_can)
        v [S_TSN] /= 2;
    else
    if (!v [S_DIRECT] && v [S_TSK] > v [S_VW])
        v [S_TSK] /= 2;
    else
        return false;
    return true;
}

void
wrk_tune_clamp (wrk_tune_t *t, const wrk_device_info_t *info)
{
    assert (t && info);
    for (int fam = 0; fam < WRK_TUNE_FAMILIES; fam++) {
        int *v = t->v [fam];
        while (!s_fits (t, fam, info)) {
            bool shrunk = true;
            switch (fam) {
                case WRK_TUNE_SGEMM:
                    shrunk = s_shrink_sgemm (v);
                    break;
                case WRK_TUNE_QMATMUL:
                    //  Fewer rows per group before fewer work-items: rows
                    //  cost local memory, work-items cost both.
                    if (wrk_tune_wg_size (t, fam) <= info->max_wg && v [S_GEMM_BT] > 1)
                        v [S_GEMM_BT] /= 2;
                    else
                    if (wrk_tune_wg_size (t, fam) <= info->max_wg && v [S_GEMV_ROWS] > 1)
                        v [S_GEMV_ROWS] /= 2;
                    else
                    if (wrk_tune_wg_size (t, fam) <= info->max_wg && v [S_GEMV_I8_ROWS] > 1)
                        v [S_GEMV_I8_ROWS] /= 2;
                    else
                    if (wrk_tune_wg_size (t, fam) <= info->max_wg && v [S_GEMV_I8_KROWS] > 1)
                        v [S_GEMV_I8_KROWS] /= 2;
                    else
                    if (v [S_QMM_WGS] > 1)
                        v [S_QMM_WGS] /= 2;
                    else
                        shrunk = false;
                    break;
                case WRK_TUNE_TRANSPOSE:
                    if (v [S_TR_ROWS] > 1 && v [S_TR_TILE] * v [S_TR_ROWS] > (int) info->max_wg
                    &&  v [S_TR_ROWS] * 4 > v [S_TR_TILE])
                        v [S_TR_ROWS] /= 2;
                    else
                    if (v [S_TR_TILE] > v [S_TR_ROWS])
                        v [S_TR_TILE] /= 2;
                    else
                    if (v [S_TR_ROWS] > 1)
                        v [S_TR_ROWS] /= 2;
                    else
                        shrunk = false;
                    break;
                default:
                    if (v [0] > 1)
                        v [0] /= 2;
                    else
                        shrunk = false;
                    break;
            }
            if (!shrunk)
                break;
            t->clamped = true;
        }
    }
}

//  --------------------------------------------------------------------------
//  Overrides

//  Applies ENTRY to T and validates the result; T may be left half
//  changed on failure.
static int
s_apply (wrk_tune_t *t, const msgpack_object *entry, cmn_err_t *err)
{
    if (!entry || entry->type != MSGPACK_OBJECT_MAP)
        return cmn_err_set (err, RXQ_E_PARAM, "tuning entry must be a map {family: "
                            "{PARAM: int}}");
    for (uint32_t i = 0; i < entry->via.map.size; i++) {
        const msgpack_object_kv *kv = &entry->via.map.ptr [i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return cmn_err_set (err, RXQ_E_PARAM, "tuning entry: family names must be "
                                "strings");
        int fam = wrk_tune_family_find (kv->key.via.str.ptr, kv->key.via.str.size);
        int klen = (int) (kv->key.via.str.size > 64 ? 64 : kv->key.via.str.size);
        if (fam < 0)
            return cmn_err_set (err, RXQ_E_PARAM, "tuning entry: unknown kernel family "
                                "'%.*s'", klen, kv->key.via.str.ptr);
        if (kv->val.type != MSGPACK_OBJECT_MAP)
            return cmn_err_set (err, RXQ_E_PARAM, "tuning entry: '%s' must map parameter "
                                "names to integers", s_families [fam].name);
        for (uint32_t j = 0; j < kv->val.via.map.size; j++) {
            const msgpack_object_kv *p = &kv->val.via.map.ptr [j];
            int idx = p->key.type == MSGPACK_OBJECT_STR
                    ? s_param_find (fam, p->key.via.str.ptr, p->key.via.str.size) : -1;
            if (idx < 0)
                return cmn_err_set (err, RXQ_E_PARAM, "tuning entry: '%s' has no parameter "
                                    "'%.*s'", s_families [fam].name,
                                    p->key.type == MSGPACK_OBJECT_STR
                                    ? (int) (p->key.via.str.size > 64 ? 64 : p->key.via.str.size)
                                    : 1, p->key.type == MSGPACK_OBJECT_STR
                                    ? p->key.via.str.ptr : "?");
            const s_param_t *spec = &s_families [fam].params [idx];
            int64_t value;
            if (p->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER && p->val.via.u64 <= INT_MAX)
                value = (int64_t) p->val.via.u64;
            else
            if (p->val.type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                value = p->val.via.i64;
            else
                return cmn_err_set (err, RXQ_E_PARAM, "tuning entry: %s.%s must be an "
                                    "integer", s_families [fam].name, spec->name);
            if (value < spec->min || value > spec->max)
                return cmn_err_set (err, RXQ_E_PARAM, "tuning entry: %s.%s is %lld, must "
                                    "be in [%d, %d]", s_families [fam].name, spec->name,
                                    (long long) value, spec->min, spec->max);
            t->v [fam][idx] = (int) value;
        }
    }
    return wrk_tune_validate (t, err);
}

int
wrk_tune_apply (wrk_tune_t *t, const msgpack_object *entry, cmn_err_t *err)
{
    assert (t);
    wrk_tune_t copy = *t;
    if (s_apply (&copy, entry, err))
        return -1;
    copy.overridden = true;
    *t = copy;
    return 0;
}

//  Installed overrides: per OpenCL device id, the entry's values as a
//  sparse set (SET marks the parameters it names).
#define S_MAX_OVERRIDES 16
typedef struct {
    cl_device_id id;            // the device, NULL for a free slot
    int v [WRK_TUNE_FAMILIES][WRK_TUNE_MAX_PARAMS];  // values
    bool set [WRK_TUNE_FAMILIES][WRK_TUNE_MAX_PARAMS];  // named by the entry
} s_override_t;

static s_override_t s_overrides [S_MAX_OVERRIDES];
static pthread_mutex_t s_overrides_lock = PTHREAD_MUTEX_INITIALIZER;

int
wrk_tune_override_family (wrk_device_t *dev, const wrk_tune_t *t, wrk_tune_family_t family,
                          cmn_err_t *err)
{
    assert (dev && t && family >= 0 && family < WRK_TUNE_FAMILIES);
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 1);
    cmn_pack_cstr (&b.pk, s_families [family].name);
    wrk_tune_pack_family (t, family, &b.pk);
    cmn_body_t entry;
    int rc = cmn_body_decode (&entry, b.sb.data, b.sb.size, &cmn_codec_limits_default, err);
    if (rc == 0) {
        rc = wrk_tune_set_override (dev, &entry.root, err);
        cmn_body_free (&entry);
    }
    msgpack_sbuffer_destroy (&b.sb);
    return rc;
}

int
wrk_tune_set_override (wrk_device_t *dev, const msgpack_object *entry, cmn_err_t *err)
{
    assert (dev);
    s_override_t ov = { .id = wrk_device_id (dev) };
    if (entry) {
        //  Check the entry against the shipped row, so that a combination
        //  only valid together with other values is caught now.
        wrk_tune_t t;
        s_from_row (s_row_for (wrk_device_info (dev)), &t);
        if (s_apply (&t, entry, err))
            return -1;
        //  Record which parameters the entry names (s_apply checked them).
        for (uint32_t i = 0; i < entry->via.map.size; i++) {
            const msgpack_object_kv *kv = &entry->via.map.ptr [i];
            int f = wrk_tune_family_find (kv->key.via.str.ptr, kv->key.via.str.size);
            for (uint32_t j = 0; j < kv->val.via.map.size; j++) {
                const msgpack_object_kv *p = &kv->val.via.map.ptr [j];
                int idx = s_param_find (f, p->key.via.str.ptr, p->key.via.str.size);
                ov.set [f][idx] = true;
            }
        }
        memcpy (ov.v, t.v, sizeof ov.v);
    }
    pthread_mutex_lock (&s_overrides_lock);
    int slot = -1;
    for (int i = 0; i < S_MAX_OVERRIDES; i++) {
        if (s_overrides [i].id == ov.id) {
            slot = i;
            break;
        }
        if (slot < 0 && !s_overrides [i].id)
            slot = i;
    }
    int rc = 0;
    if (slot < 0 && entry)
        rc = cmn_err_set (err, RXQ_E_LIMIT, "tuning overrides are installed for %d devices "
                          "already", S_MAX_OVERRIDES);
    else
    if (slot >= 0) {
        if (entry)
            s_overrides [slot] = ov;
        else
        if (s_overrides [slot].id == ov.id)
            memset (&s_overrides [slot], 0, sizeof s_overrides [slot]);
    }
    pthread_mutex_unlock (&s_overrides_lock);
    return rc;
}

void
wrk_tune_for_device (wrk_device_t *dev, wrk_tune_t *t)
{
    assert (dev && t);
    const wrk_device_info_t *info = wrk_device_info (dev);
    s_from_row (s_row_for (info), t);
    cl_device_id id = wrk_device_id (dev);
    pthread_mutex_lock (&s_overrides_lock);
    for (int i = 0; i < S_MAX_OVERRIDES; i++)
        if (s_overrides [i].id == id) {
            for (int f = 0; f < WRK_TUNE_FAMILIES; f++)
                for (int p = 0; p < WRK_TUNE_MAX_PARAMS; p++)
                    if (s_overrides [i].set [f][p]) {
                        t->v [f][p] = s_overrides [i].v [f][p];
                        t->overridden = true;
                    }
            break;
        }
    pthread_mutex_unlock (&s_overrides_lock);
    wrk_tune_clamp (t, info);
}

//  --------------------------------------------------------------------------
//  Options, packing, keys

void
wrk_tune_options (const wrk_tune_t *t, wrk_tune_family_t family, char *buf, size_t size)
{
    assert (t && family < WRK_TUNE_FAMILIES && buf && size);
    const s_family_t *f = &s_families [family];
    size_t used = 0;
    buf [0] = 0;
    for (int i = 0; i < f->count && used < size; i++) {
        int n = snprintf (buf + used, size - used, "%s-D%s=%d", i ? " " : "",
                          f->params [i].name, t->v [family][i]);
        if (n < 0)
            break;
        used += (size_t) n;
    }
}

int
wrk_tune_parse_options (wrk_tune_t *t, wrk_tune_family_t family, const char *options,
                        cmn_err_t *err)
{
    assert (t && family < WRK_TUNE_FAMILIES && options);
    const char *p = options;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        if (end - p > 2 && p [0] == '-' && p [1] == 'D') {
            const char *eq = memchr (p, '=', (size_t) (end - p));
            int idx = eq ? s_param_find (family, p + 2, (size_t) (eq - p - 2)) : -1;
            if (idx < 0)
                return cmn_err_set (err, RXQ_E_PARAM, "option '%.*s' is not a %s parameter",
                                    (int) (end - p), p, s_families [family].name);
            char *stop;
            long value = strtol (eq + 1, &stop, 10);
            if (stop != end || eq + 1 == end || value < INT_MIN || value > INT_MAX)
                return cmn_err_set (err, RXQ_E_PARAM, "option '%.*s' has no integer value",
                                    (int) (end - p), p);
            t->v [family][idx] = (int) value;
        }
        p = end;
    }
    return 0;
}

void
wrk_tune_pack_family (const wrk_tune_t *t, wrk_tune_family_t family, msgpack_packer *pk)
{
    assert (t && family < WRK_TUNE_FAMILIES && pk);
    const s_family_t *f = &s_families [family];
    msgpack_pack_map (pk, (size_t) f->count);
    for (int i = 0; i < f->count; i++) {
        msgpack_pack_str (pk, strlen (f->params [i].name));
        msgpack_pack_str_body (pk, f->params [i].name, strlen (f->params [i].name));
        msgpack_pack_int (pk, t->v [family][i]);
    }
}

void
wrk_tune_device_key (const wrk_device_info_t *info, char *buf, size_t size)
{
    assert (info && buf && size);
    snprintf (buf, size, "%s|%s|%s", info->vendor, info->name, info->driver);
}

void
wrk_tune_device_options (wrk_device_t *dev, wrk_tune_family_t family, char *buf, size_t size)
{
    wrk_tune_t t;
    wrk_tune_for_device (dev, &t);
    wrk_tune_options (&t, family, buf, size);
}

//  --------------------------------------------------------------------------
//  Searches

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static uint64_t
s_median (uint64_t *ns, size_t count)
{
    qsort (ns, count, sizeof *ns, s_cmp_u64);
    return count % 2 ? ns [count / 2] : (ns [count / 2 - 1] + ns [count / 2]) / 2;
}

//  SGEMM candidates tried after the device's own set. Direct ones come
//  first on CPUs, tiled ones first on GPUs; each list is best-guess first,
//  so a short budget still sees the likely winners.
static const int s_sgemm_direct [][8] = {
    { 1, 96, 32, 8, 6, 32, 16, 0 }, { 1, 96, 32, 4, 6, 32, 16, 0 },
    { 1, 128, 32, 4, 8, 32, 16, 0 }, { 1, 96, 32, 1, 6, 32, 16, 0 },
    { 1, 48, 32, 4, 6, 32, 8, 0 }, { 1, 64, 16, 4, 8, 16, 16, 0 },
    { 1, 256, 32, 4, 8, 32, 16, 0 }, { 1, 32, 64, 4, 4, 64, 16, 0 },
    { 1, 16, 32, 4, 8, 16, 8, 0 }, { 1, 64, 32, 8, 4, 32, 8, 0 },
};
static const int s_sgemm_tiled [][8] = {
    { 0, 128, 128, 16, 8, 8, 4, 1 }, { 0, 64, 64, 16, 4, 4, 4, 1 },
    { 0, 64, 64, 8, 8, 8, 4, 1 }, { 0, 128, 64, 16, 8, 4, 4, 1 },
    { 0, 64, 128, 16, 4, 8, 4, 1 }, { 0, 128, 128, 8, 8, 8, 4, 1 },
    { 0, 64, 64, 32, 4, 4, 4, 1 }, { 0, 32, 32, 16, 4, 4, 4, 1 },
    { 0, 16, 16, 8, 4, 4, 4, 1 }, { 0, 64, 128, 16, 8, 8, 4, 1 },
    { 0, 128, 64, 16, 8, 8, 4, 1 }, { 0, 64, 64, 16, 8, 8, 4, 1 },
};

int
wrk_tune_search_sgemm (wrk_device_t *dev, int n, int budget_ms, char *options,
                       size_t size, double *gflops, cmn_err_t *err)
{
    assert (dev && options && size && gflops);
    if (n < 16 || n > 8192)
        return cmn_err_set (err, RXQ_E_INVAL, "sgemm search: n %d must be in [16, 8192]", n);
    const wrk_device_info_t *info = wrk_device_info (dev);
    const size_t nn = (size_t) n * (size_t) n, bytes = nn * sizeof (float);
    const int64_t end = wrk_job_now_ms () + (budget_ms > 0 ? budget_ms : 0);
    int rc = -1;
    float *A = malloc (bytes), *B = malloc (bytes), *C = malloc (bytes);
    cl_mem a = NULL, b = NULL, c = NULL;
    if (!A || !B || !C) {
        cmn_err_set (err, RXQ_E_NOMEM, "sgemm search: cannot allocate 3 x %zu bytes", bytes);
        goto done;
    }
    wrk_ref_fill (A, nn, 0x7e57a, -1.0f, 1.0f);
    wrk_ref_fill (B, nn, 0x7e57b, -1.0f, 1.0f);
    cl_int cl;
    cl_context ctx = wrk_device_context (dev);
    if (!(a = clCreateBuffer (ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, A, &cl))
    ||  !(b = clCreateBuffer (ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, B, &cl))
    ||  !(c = clCreateBuffer (ctx, CL_MEM_READ_WRITE, bytes, NULL, &cl))) {
        wrk_device_cl_error (err, "clCreateBuffer", cl);
        goto done;
    }
    wrk_tune_t base;
    wrk_tune_for_device (dev, &base);
    const bool cpu = strcmp (info->type, "cpu") == 0;
    const size_t nd = sizeof s_sgemm_direct / sizeof s_sgemm_direct [0];
    const size_t nt = sizeof s_sgemm_tiled / sizeof s_sgemm_tiled [0];
    const double flop = 2.0 * (double) n * (double) n * (double) n;
    const size_t step = n <= 256 ? 1 : (size_t) n / 16;
    //  The device's set, then the candidates in the order for its type.
    const int *order [1 + sizeof s_sgemm_direct / sizeof s_sgemm_direct [0]
                        + sizeof s_sgemm_tiled / sizeof s_sgemm_tiled [0]];
    size_t count = 0;
    order [count++] = base.v [WRK_TUNE_SGEMM];
    for (int pass = 0; pass < 2; pass++) {
        bool direct = (pass == 0) == cpu;
        for (size_t j = 0; j < (direct ? nd : nt); j++)
            order [count++] = direct ? s_sgemm_direct [j] : s_sgemm_tiled [j];
    }
    char base_opts [WRK_TUNE_OPTIONS_MAX];
    wrk_tune_options (&base, WRK_TUNE_SGEMM, base_opts, sizeof base_opts);
    double best = 0;
    char tried_last [WRK_TUNE_OPTIONS_MAX] = "";
    cmn_err_t last = { 0 };
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && wrk_job_now_ms () >= end)
            break;
        wrk_tune_t cand = base;
        memcpy (cand.v [WRK_TUNE_SGEMM], order [i], 8 * sizeof (int));
        if (s_validate_family (&cand, WRK_TUNE_SGEMM, NULL)
        ||  !s_fits (&cand, WRK_TUNE_SGEMM, info))
            continue;
        char opts [WRK_TUNE_OPTIONS_MAX];
        wrk_tune_options (&cand, WRK_TUNE_SGEMM, opts, sizeof opts);
        if (i > 0 && strcmp (opts, base_opts) == 0)
            continue;
        //  Warm-up (also the build), then three timed runs.
        uint64_t ns [3];
        bool ok = true;
        for (int r = 0; r < 4 && ok; r++) {
            cl_event ev = NULL;
            cmn_err_t e = { 0 };
            if (wrk_bench_sgemm_enqueue (dev, opts, (size_t) n, (size_t) n, (size_t) n, 1.0f,
                                         a, b, 0.0f, c, &ev, &e)
            ||  clWaitForEvents (1, &ev) != CL_SUCCESS) {
                ok = false;
                if (e.code)
                    last = e;
            }
            else
            if (r > 0) {
                uint64_t t = wrk_device_event_ns (ev);
                ns [r - 1] = t ? t : 1;
            }
            if (ev)
                clReleaseEvent (ev);
        }
        snprintf (tried_last, sizeof tried_last, "%s", opts);
        if (!ok)
            continue;
        cl = clEnqueueReadBuffer (wrk_device_queue (dev), c, CL_TRUE, 0, bytes, C, 0, NULL,
                                  NULL);
        if (cl != CL_SUCCESS) {
            wrk_device_cl_error (err, "clEnqueueReadBuffer", cl);
            goto done;
        }
        double max_err;
        if (wrk_bench_sgemm_max_error ((size_t) n, (size_t) n, (size_t) n, A, B, C, step,
                                       &max_err)) {
            cmn_err_set (err, RXQ_E_NOMEM, "sgemm search: out of memory for the reference");
            goto done;
        }
        if (!(max_err <= WRK_BENCH_SGEMM_TOL)) {
            cmn_err_set (&last, RXQ_E_CHECK, "sgemm %s: error %.3g over the bound", opts,
                         max_err);
            continue;
        }
        double g = flop / (double) s_median (ns, 3);
        if (g > best) {
            best = g;
            snprintf (options, size, "%s", opts);
        }
    }
    if (best <= 0) {
        if (last.code)
            *err = last;
        else
            cmn_err_set (err, RXQ_E_CHECK, "sgemm search: no candidate ran correctly "
                         "(last tried: %s)", tried_last);
        goto done;
    }
    *gflops = best;
    rc = 0;
done:
    if (c)
        clReleaseMemObject (c);
    if (b)
        clReleaseMemObject (b);
    if (a)
        clReleaseMemObject (a);
    free (A);
    free (B);
    free (C);
    return rc;
}

//  Reads the override entry currently installed for DEV into SAVED (as a
//  set with flags), to restore it after a search.
static bool
s_override_get (wrk_device_t *dev, s_override_t *saved)
{
    bool found = false;
    cl_device_id id = wrk_device_id (dev);
    pthread_mutex_lock (&s_overrides_lock);
    for (int i = 0; i < S_MAX_OVERRIDES; i++)
        if (s_overrides [i].id == id) {
            *saved = s_overrides [i];
            found = true;
        }
    pthread_mutex_unlock (&s_overrides_lock);
    return found;
}

static void
s_override_put (wrk_device_t *dev, const s_override_t *saved, bool present)
{
    cl_device_id id = wrk_device_id (dev);
    pthread_mutex_lock (&s_overrides_lock);
    int slot = -1;
    for (int i = 0; i < S_MAX_OVERRIDES; i++) {
        if (s_overrides [i].id == id) {
            slot = i;
            break;
        }
        if (slot < 0 && !s_overrides [i].id)
            slot = i;
    }
    if (slot >= 0) {
        if (present)
            s_overrides [slot] = *saved;
        else
        if (s_overrides [slot].id == id)
            memset (&s_overrides [slot], 0, sizeof s_overrides [slot]);
    }
    pthread_mutex_unlock (&s_overrides_lock);
}

//  Candidate (QMM_WGS, GEMV_ROWS, GEMV_UNIT) sets, tried after the
//  device's own: the slice scheme's best on the H200 and the Polaris
//  guess first, then the unit scheme's (CPUs), then the rest.
static const int s_qmm_cands [][3] = {
    { 128, 2, 0 }, { 64, 2, 0 }, { 256, 4, 0 }, { 8, 4, 1 }, { 16, 4, 1 }, { 64, 1, 0 },
    { 128, 1, 0 }, { 32, 2, 0 }, { 128, 4, 0 }, { 256, 2, 0 }, { 8, 8, 1 }, { 4, 8, 1 },
    { 64, 2, 1 }, { 32, 4, 1 }, { 16, 8, 1 }, { 64, 4, 0 },
};

int
wrk_tune_search_qmatmul (wrk_device_t *dev, int type, int rows, int cols, int budget_ms,
                         char *options, size_t size, double *gbps, cmn_err_t *err)
{
    assert (dev && options && size && gbps);
    const size_t rb = cmn_quant_row_bytes (type, (size_t) (cols > 0 ? cols : 0));
    if (rows < 1 || cols < 1 || rows > (1 << 20) || cols > (1 << 20) || rb == 0
    ||  (type != GGML_TYPE_Q4_0 && type != GGML_TYPE_Q4_1 && type != GGML_TYPE_Q8_0
         && type != GGML_TYPE_Q4_K && type != GGML_TYPE_Q6_K))
        return cmn_err_set (err, RXQ_E_INVAL, "qmatmul search: type %d, %d x %d is not a "
                            "supported GEMV shape", type, rows, cols);
    const wrk_device_info_t *info = wrk_device_info (dev);
    const int64_t end = wrk_job_now_ms () + (budget_ms > 0 ? budget_ms : 0);
    const size_t w_bytes = (size_t) rows * rb;
    int rc = -1;
    s_override_t saved;
    bool had = s_override_get (dev, &saved);
    float *wf = malloc ((size_t) cols * sizeof *wf);
    uint8_t *wq = malloc (w_bytes);
    float *x = malloc ((size_t) cols * sizeof *x);
    float *y = malloc ((size_t) rows * sizeof *y);
    float *ref = malloc ((size_t) rows * sizeof *ref);
    double *absdot = malloc ((size_t) rows * sizeof *absdot);
    cl_mem dw = NULL, dx = NULL, dy = NULL;
    if (!wf || !wq || !x || !y || !ref || !absdot) {
        cmn_err_set (err, RXQ_E_NOMEM, "qmatmul search: out of memory");
        goto done;
    }
    for (int r = 0; r < rows; r++) {
        wrk_ref_fill (wf, (size_t) cols, 0x9a0 + (uint64_t) r, -1.0f, 1.0f);
        cmn_quant_quantize_row (type, wf, wq + (size_t) r * rb, (size_t) cols);
    }
    wrk_ref_fill (x, (size_t) cols, 0x9a1, -1.0f, 1.0f);
    if (wrk_ref_gemm_q (type, wq, x, ref, rows, cols, 1, absdot)) {
        cmn_err_set (err, RXQ_E_NOMEM, "qmatmul search: reference failed");
        goto done;
    }
    cl_int cl;
    cl_context ctx = wrk_device_context (dev);
    if (!(dw = clCreateBuffer (ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, w_bytes, wq, &cl))
    ||  !(dx = clCreateBuffer (ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                               (size_t) cols * sizeof (float), x, &cl))
    ||  !(dy = clCreateBuffer (ctx, CL_MEM_READ_WRITE, (size_t) rows * sizeof (float), NULL,
                               &cl))) {
        wrk_device_cl_error (err, "clCreateBuffer", cl);
        goto done;
    }
    wrk_tune_t base;
    wrk_tune_for_device (dev, &base);
    const double moved = (double) w_bytes + (double) cols * 4 + (double) rows * 4;
    const double gamma = (cols + 1) * 0x1p-24 / (1 - cols * 0x1p-24);
    const size_t ncand = sizeof s_qmm_cands / sizeof s_qmm_cands [0];
    double best = 0;
    cmn_err_t last = { 0 };
    for (size_t i = 0; i <= ncand; i++) {
        if (i > 0 && wrk_job_now_ms () >= end)
            break;
        wrk_tune_t cand = base;
        if (i > 0) {
            cand.v [WRK_TUNE_QMATMUL][S_QMM_WGS] = s_qmm_cands [i - 1][0];
            cand.v [WRK_TUNE_QMATMUL][S_GEMV_ROWS] = s_qmm_cands [i - 1][1];
            cand.v [WRK_TUNE_QMATMUL][S_GEMV_UNIT] = s_qmm_cands [i - 1][2];
            if (!s_fits (&cand, WRK_TUNE_QMATMUL, info)
            ||  memcmp (cand.v [WRK_TUNE_QMATMUL], base.v [WRK_TUNE_QMATMUL],
                        sizeof base.v [0]) == 0)
                continue;
        }
        //  Install the candidate as the device's override: the launcher
        //  takes its options from there.
        int set_rc = wrk_tune_override_family (dev, &cand, WRK_TUNE_QMATMUL, &last);
        if (set_rc)
            continue;
        uint64_t ns [3];
        bool ok = true;
        for (int r = 0; r < 4 && ok; r++) {
            cl_event ev = NULL;
            cmn_err_t e = { 0 };
            if (wrk_kernels_gemv_q (dev, type, dw, dx, dy, rows, cols, &ev, &e)
            ||  clWaitForEvents (1, &ev) != CL_SUCCESS) {
                ok = false;
                if (e.code)
                    last = e;
            }
            else
            if (r > 0) {
                uint64_t t = wrk_device_event_ns (ev);
                ns [r - 1] = t ? t : 1;
            }
            if (ev)
                clReleaseEvent (ev);
        }
        if (!ok)
            continue;
        cl = clEnqueueReadBuffer (wrk_device_queue (dev), dy, CL_TRUE, 0,
                                  (size_t) rows * sizeof (float), y, 0, NULL, NULL);
        if (cl != CL_SUCCESS) {
            wrk_device_cl_error (err, "clEnqueueReadBuffer", cl);
            goto done;
        }
        bool correct = true;
        for (int r = 0; r < rows && correct; r++)
            correct = fabs ((double) y [r] - (double) ref [r]) <= gamma * absdot [r];
        if (!correct) {
            cmn_err_set (&last, RXQ_E_CHECK, "qmatmul search: a candidate gave a wrong result");
            continue;
        }
        double g = moved / (double) s_median (ns, 3);
        if (g > best) {
            best = g;
            wrk_tune_options (&cand, WRK_TUNE_QMATMUL, options, size);
        }
    }
    if (best <= 0) {
        if (last.code)
            *err = last;
        else
            cmn_err_set (err, RXQ_E_CHECK, "qmatmul search: no candidate ran correctly");
        goto done;
    }
    *gbps = best;
    rc = 0;
done:
    s_override_put (dev, &saved, had);
    if (dy)
        clReleaseMemObject (dy);
    if (dx)
        clReleaseMemObject (dx);
    if (dw)
        clReleaseMemObject (dw);
    free (wf);
    free (wq);
    free (x);
    free (y);
    free (ref);
    free (absdot);
    return rc;
}
