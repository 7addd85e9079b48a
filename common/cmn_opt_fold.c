/*  cmn_opt_fold: constant folding and algebraic simplification.
 *  See cmn_opt_fold.h.
 *
 *  The evaluator works on s_arr_t: floating types as double, integer and
 *  bool types as int64, with dims. Every op checks its inputs' types and
 *  shapes and declines (returns 1: "not folded") rather than guessing;
 *  only allocation failure is an error.
 */
#include "cmn_opt_fold.h"
#include "cmn_opt_clean.h"
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t dtype;              // CMN_ONNX_* of the values
    int rank;                   // number of dimensions
    int64_t dims [CMN_ONNX_MAX_DIMS]; // elements per dimension
    int64_t n;                  // elements
    double *f;                  // FLOAT/DOUBLE values, or NULL
    int64_t *i;                 // integer/bool values, or NULL
} s_arr_t;

static bool
s_is_float (int32_t t)
{
    return t == CMN_ONNX_FLOAT || t == CMN_ONNX_DOUBLE;
}

static bool
s_is_int (int32_t t)
{
    return t == CMN_ONNX_INT64 || t == CMN_ONNX_INT32 || t == CMN_ONNX_BOOL || t == CMN_ONNX_INT8
        || t == CMN_ONNX_UINT8 || t == CMN_ONNX_INT16 || t == CMN_ONNX_UINT16 || t == CMN_ONNX_UINT32;
}

static void
s_arr_free (s_arr_t *a)
{
    free (a->f);
    free (a->i);
    a->f = NULL;
    a->i = NULL;
}

//  The evaluator's largest array, in elements: shapes come from the file
//  (value_info) and are not to be trusted with an allocation.
#define S_MAX_ELEMS ((int64_t) 1 << 24)

//  Returns from the calling function with CALL's status when it is not 0.
#define S_TRY(call) do { int rc_ = (call); if (rc_) return rc_; } while (0)

//  Allocates A for DTYPE and DIMS. Returns 0, 1 when the shape is invalid
//  or over S_MAX_ELEMS (not folded), -1 when out of memory.
static int
s_arr_alloc (s_arr_t *a, int32_t dtype, int rank, const int64_t *dims)
{
    memset (a, 0, sizeof *a);
    a->dtype = dtype;
    a->rank = rank;
    a->n = 1;
    for (int k = 0; k < rank; k++) {
        a->dims [k] = dims [k];
        if (dims [k] < 0 || (dims [k] && a->n > S_MAX_ELEMS / dims [k]))
            return 1;
        a->n *= dims [k];
    }
    size_t cnt = (size_t) (a->n ? a->n : 1);
    if (s_is_float (dtype))
        a->f = calloc (cnt, sizeof *a->f);
    else
        a->i = calloc (cnt, sizeof *a->i);
    return a->f || a->i ? 0 : -1;
}

//  Loads tensor T. Returns 0, 1 when its type is not handled, -1 on OOM.
static int
s_load (const cmn_onnx_tensor_t *t, s_arr_t *a)
{
    if (!s_is_float (t->data_type) && !s_is_int (t->data_type))
        return 1;
    S_TRY (s_arr_alloc (a, t->data_type, (int) t->ndims, t->dims));
    for (int64_t k = 0; k < a->n; k++) {
        const uint8_t *p = t->raw + k * (int64_t) cmn_onnx_dtype_size (t->data_type);
        switch (t->data_type) {
            case CMN_ONNX_FLOAT: { float v; memcpy (&v, p, 4); a->f [k] = v; break; }
            case CMN_ONNX_DOUBLE: memcpy (&a->f [k], p, 8); break;
            case CMN_ONNX_INT64: memcpy (&a->i [k], p, 8); break;
            case CMN_ONNX_INT32: { int32_t v; memcpy (&v, p, 4); a->i [k] = v; break; }
            case CMN_ONNX_UINT32: { uint32_t v; memcpy (&v, p, 4); a->i [k] = v; break; }
            case CMN_ONNX_INT16: { int16_t v; memcpy (&v, p, 2); a->i [k] = v; break; }
            case CMN_ONNX_UINT16: { uint16_t v; memcpy (&v, p, 2); a->i [k] = v; break; }
            case CMN_ONNX_INT8: a->i [k] = (int8_t) *p; break;
            case CMN_ONNX_UINT8: case CMN_ONNX_BOOL: a->i [k] = *p; break;
            default: break;
        }
    }
    return 0;
}

static double
s_get (const s_arr_t *a, int64_t k)
{
    return a->f ? a->f [k] : (double) a->i [k];
}

//  Makes a tensor NAME from A (converting to A->dtype).
static cmn_onnx_tensor_t *
s_store (const s_arr_t *a, const char *name)
{
    cmn_onnx_tensor_t *t = cmn_onnx_tensor_new (name, a->dtype, a->dims, (size_t) a->rank);
    if (!t)
        return NULL;
    size_t sz = cmn_onnx_dtype_size (a->dtype);
    for (int64_t k = 0; k < a->n; k++) {
        uint8_t *p = t->raw + k * (int64_t) sz;
        switch (a->dtype) {
            case CMN_ONNX_FLOAT: { float v = (float) a->f [k]; memcpy (p, &v, 4); break; }
            case CMN_ONNX_DOUBLE: memcpy (p, &a->f [k], 8); break;
            case CMN_ONNX_INT64: memcpy (p, &a->i [k], 8); break;
            case CMN_ONNX_INT32: case CMN_ONNX_UINT32: { uint32_t v = (uint32_t) a->i [k]; memcpy (p, &v, 4); break; }
            case CMN_ONNX_INT16: case CMN_ONNX_UINT16: { uint16_t v = (uint16_t) a->i [k]; memcpy (p, &v, 2); break; }
            case CMN_ONNX_BOOL: *p = a->i [k] != 0; break;
            default: *p = (uint8_t) a->i [k]; break;
        }
    }
    return t;
}

//  Offset into A of the output index IDX (of an output of rank R) under
//  numpy broadcasting.
static int64_t
s_bcast_offset (const s_arr_t *a, const int64_t *idx, int r)
{
    int64_t off = 0, stride = 1;
    for (int k = a->rank - 1; k >= 0; k--) {
        int o = k + (r - a->rank);
        int64_t i = a->dims [k] == 1 ? 0 : idx [o];
        off += i * stride;
        stride *= a->dims [k];
    }
    return off;
}

static void
s_next_index (int64_t *idx, const int64_t *dims, int r)
{
    for (int k = r - 1; k >= 0; k--) {
        if (++idx [k] < dims [k])
            return;
        idx [k] = 0;
    }
}

//  ---------------------------------------------------------------------
//  Op evaluation. Each returns 0 with *OUT set, 1 when it does not fold
//  this case, -1 on allocation failure.

static int
s_eval_binary (const char *op, const s_arr_t *a, const s_arr_t *b, s_arr_t *out)
{
    if (a->dtype != b->dtype)
        return 1;
    int r = a->rank > b->rank ? a->rank : b->rank;
    int64_t dims [CMN_ONNX_MAX_DIMS];
    for (int k = 0; k < r; k++) {
        int ia = k - (r - a->rank), ib = k - (r - b->rank);
        int64_t da = ia >= 0 ? a->dims [ia] : 1, db = ib >= 0 ? b->dims [ib] : 1;
        if (da != db && da != 1 && db != 1)
            return 1;
        dims [k] = da == 1 ? db : da;
    }
    bool fl = s_is_float (a->dtype);
    if (!fl && strcmp (op, "Pow") == 0)
        return 1;
    S_TRY (s_arr_alloc (out, a->dtype, r, dims));
    int64_t idx [CMN_ONNX_MAX_DIMS] = { 0 };
    for (int64_t k = 0; k < out->n; k++, s_next_index (idx, dims, r)) {
        int64_t oa = s_bcast_offset (a, idx, r), ob = s_bcast_offset (b, idx, r);
        if (fl) {
            double x = a->f [oa], y = b->f [ob], z;
            if (a->dtype == CMN_ONNX_FLOAT) {
                //  Compute in the type's own precision, as the runtime does.
                float xf = (float) x, yf = (float) y;
                z = op [0] == 'A' ? (double) (xf + yf) : op [0] == 'S' ? (double) (xf - yf)
                  : op [0] == 'M' ? (double) (xf * yf) : op [0] == 'D' ? (double) (xf / yf)
                  : (double) powf (xf, yf);
            }
            else
                z = op [0] == 'A' ? x + y : op [0] == 'S' ? x - y : op [0] == 'M' ? x * y
                  : op [0] == 'D' ? x / y : pow (x, y);
            out->f [k] = z;
        }
        else {
            int64_t x = a->i [oa], y = b->i [ob], z;
            if (op [0] == 'D' && y == 0) {
                s_arr_free (out);
                return 1;
            }
            z = op [0] == 'A' ? (int64_t) ((uint64_t) x + (uint64_t) y)
              : op [0] == 'S' ? (int64_t) ((uint64_t) x - (uint64_t) y)
              : op [0] == 'M' ? (int64_t) ((uint64_t) x * (uint64_t) y)
              : (x == INT64_MIN && y == -1) ? x : x / y;
            out->i [k] = z;
        }
    }
    //  Narrow integer types wrap as the runtime's would.
    if (!fl && a->dtype == CMN_ONNX_INT32)
        for (int64_t k = 0; k < out->n; k++)
            out->i [k] = (int32_t) (uint32_t) out->i [k];
    return 0;
}

static int
s_eval_unary (const char *op, const s_arr_t *a, s_arr_t *out)
{
    if (!s_is_float (a->dtype)) {
        if (strcmp (op, "Neg") && strcmp (op, "Abs") && strcmp (op, "Relu"))
            return 1;
        S_TRY (s_arr_alloc (out, a->dtype, a->rank, a->dims));
        for (int64_t k = 0; k < a->n; k++) {
            int64_t x = a->i [k];
            out->i [k] = op [0] == 'N' ? -x : op [0] == 'A' ? (x < 0 ? -x : x) : (x < 0 ? 0 : x);
        }
        return 0;
    }
    S_TRY (s_arr_alloc (out, a->dtype, a->rank, a->dims));
    bool f32 = a->dtype == CMN_ONNX_FLOAT;
    for (int64_t k = 0; k < a->n; k++) {
        double x = a->f [k], z;
        float xf = (float) x;
        if (!strcmp (op, "Neg")) z = -x;
        else if (!strcmp (op, "Sqrt")) z = f32 ? sqrtf (xf) : sqrt (x);
        else if (!strcmp (op, "Reciprocal")) z = f32 ? 1.0f / xf : 1.0 / x;
        else if (!strcmp (op, "Relu")) z = x < 0 ? 0 : x;
        else if (!strcmp (op, "Exp")) z = f32 ? expf (xf) : exp (x);
        else if (!strcmp (op, "Log")) z = f32 ? logf (xf) : log (x);
        else if (!strcmp (op, "Abs")) z = fabs (x);
        else if (!strcmp (op, "Sigmoid")) z = 1.0 / (1.0 + exp (-x));
        else if (!strcmp (op, "Tanh")) z = f32 ? tanhf (xf) : tanh (x);
        else if (!strcmp (op, "Erf")) z = f32 ? erff (xf) : erf (x);
        else if (!strcmp (op, "Floor")) z = floor (x);
        else if (!strcmp (op, "Ceil")) z = ceil (x);
        else {
            s_arr_free (out);
            return 1;
        }
        out->f [k] = z;
    }
    return 0;
}

static int
s_eval_cast (const s_arr_t *a, int32_t to, s_arr_t *out)
{
    if (!s_is_float (to) && to != CMN_ONNX_INT64 && to != CMN_ONNX_INT32 && to != CMN_ONNX_BOOL)
        return 1;
    S_TRY (s_arr_alloc (out, to, a->rank, a->dims));
    for (int64_t k = 0; k < a->n; k++) {
        if (s_is_float (to))
            out->f [k] = to == CMN_ONNX_FLOAT ? (double) (float) s_get (a, k) : s_get (a, k);
        else
        if (to == CMN_ONNX_BOOL)
            out->i [k] = s_get (a, k) != 0;
        else {
            double v = s_get (a, k);
            if (a->f && (v != v || v >= 9.2e18 || v <= -9.2e18)) {
                s_arr_free (out);
                return 1;       // out of range: implementation-defined, don't fold
            }
            out->i [k] = a->f ? (int64_t) v : a->i [k];
            if (to == CMN_ONNX_INT32)
                out->i [k] = (int32_t) (uint32_t) out->i [k];
        }
    }
    return 0;
}

static int
s_copy_reshaped (const s_arr_t *a, const cmn_graph_shape_t *sh, s_arr_t *out)
{
    if (!cmn_graph_shape_static (sh))
        return 1;
    S_TRY (s_arr_alloc (out, a->dtype, sh->rank, sh->dims));
    if (out->n != a->n) {
        s_arr_free (out);
        return 1;
    }
    if (a->f)
        memcpy (out->f, a->f, (size_t) a->n * sizeof *a->f);
    else
        memcpy (out->i, a->i, (size_t) a->n * sizeof *a->i);
    return 0;
}

static int
s_eval_transpose (const cmn_onnx_node_t *n, const s_arr_t *a, s_arr_t *out)
{
    int64_t perm [CMN_ONNX_MAX_DIMS], dims [CMN_ONNX_MAX_DIMS];
    cmn_onnx_attr_t *p = cmn_onnx_node_attr (n, "perm");
    for (int k = 0; k < a->rank; k++) {
        perm [k] = p && p->nints == (size_t) a->rank ? p->ints [k] : a->rank - 1 - k;
        if (perm [k] < 0 || perm [k] >= a->rank)
            return 1;
        dims [k] = a->dims [perm [k]];
    }
    S_TRY (s_arr_alloc (out, a->dtype, a->rank, dims));
    int64_t stride [CMN_ONNX_MAX_DIMS], s = 1;
    for (int k = a->rank - 1; k >= 0; k--) {
        stride [k] = s;
        s *= a->dims [k];
    }
    int64_t idx [CMN_ONNX_MAX_DIMS] = { 0 };
    for (int64_t k = 0; k < out->n; k++, s_next_index (idx, dims, a->rank)) {
        int64_t off = 0;
        for (int d = 0; d < a->rank; d++)
            off += idx [d] * stride [perm [d]];
        if (a->f)
            out->f [k] = a->f [off];
        else
            out->i [k] = a->i [off];
    }
    return 0;
}

static int
s_eval_concat (const cmn_onnx_node_t *n, s_arr_t *in, size_t nin, s_arr_t *out)
{
    int r = in [0].rank;
    int64_t ax = cmn_onnx_node_attr_int (n, "axis", 0);
    if (ax < 0)
        ax += r;
    if (ax < 0 || ax >= r)
        return 1;
    int64_t dims [CMN_ONNX_MAX_DIMS];
    memcpy (dims, in [0].dims, sizeof dims);
    dims [ax] = 0;
    for (size_t i = 0; i < nin; i++) {
        if (in [i].rank != r || in [i].dtype != in [0].dtype)
            return 1;
        for (int k = 0; k < r; k++)
            if (k != ax && in [i].dims [k] != in [0].dims [k])
                return 1;
        dims [ax] += in [i].dims [ax];
    }
    S_TRY (s_arr_alloc (out, in [0].dtype, r, dims));
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < ax; k++)
        outer *= dims [k];
    for (int k = (int) ax + 1; k < r; k++)
        inner *= dims [k];
    int64_t w = 0;
    for (int64_t o = 0; o < outer; o++)
        for (size_t i = 0; i < nin; i++) {
            int64_t len = in [i].dims [ax] * inner;
            for (int64_t e = 0; e < len; e++, w++) {
                if (out->f)
                    out->f [w] = in [i].f [o * len + e];
                else
                    out->i [w] = in [i].i [o * len + e];
            }
        }
    return 0;
}

static int
s_eval_gather (const cmn_onnx_node_t *n, const s_arr_t *a, const s_arr_t *ix, s_arr_t *out)
{
    if (!ix->i || a->rank < 1)
        return 1;
    int64_t ax = cmn_onnx_node_attr_int (n, "axis", 0);
    if (ax < 0)
        ax += a->rank;
    if (ax < 0 || ax >= a->rank || a->rank - 1 + ix->rank > CMN_ONNX_MAX_DIMS)
        return 1;
    int64_t dims [CMN_ONNX_MAX_DIMS];
    int r = 0;
    for (int k = 0; k < ax; k++)
        dims [r++] = a->dims [k];
    for (int k = 0; k < ix->rank; k++)
        dims [r++] = ix->dims [k];
    for (int k = (int) ax + 1; k < a->rank; k++)
        dims [r++] = a->dims [k];
    S_TRY (s_arr_alloc (out, a->dtype, r, dims));
    int64_t outer = 1, inner = 1, len = a->dims [ax];
    for (int k = 0; k < ax; k++)
        outer *= a->dims [k];
    for (int k = (int) ax + 1; k < a->rank; k++)
        inner *= a->dims [k];
    int64_t w = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ix->n; j++) {
            int64_t t = ix->i [j] < 0 ? ix->i [j] + len : ix->i [j];
            if (t < 0 || t >= len) {
                s_arr_free (out);
                return 1;
            }
            for (int64_t e = 0; e < inner; e++, w++) {
                int64_t src = (o * len + t) * inner + e;
                if (out->f)
                    out->f [w] = a->f [src];
                else
                    out->i [w] = a->i [src];
            }
        }
    return 0;
}

static int
s_eval_slice1d (const s_arr_t *a, s_arr_t *in, size_t nin, s_arr_t *out)
{
    //  Slice-10+: data, starts, ends, [axes], [steps], on 1-D data only.
    if (a->rank != 1 || nin < 3)
        return 1;
    for (size_t i = 1; i < nin; i++)
        if (in [i].dtype && (!in [i].i || in [i].n != 1))
            return 1;
    if (nin > 3 && in [3].dtype && in [3].i [0] != 0 && in [3].i [0] != -1)
        return 1;
    int64_t len = a->dims [0];
    int64_t step = nin > 4 && in [4].dtype ? in [4].i [0] : 1;
    if (step == 0)
        return 1;
    int64_t st = in [1].i [0], en = in [2].i [0];
    if (st < 0)
        st += len;
    if (en < 0)
        en += len;
    if (step > 0) {
        st = st < 0 ? 0 : st > len ? len : st;
        en = en < 0 ? 0 : en > len ? len : en;
    }
    else {
        st = st < 0 ? -1 : st > len - 1 ? len - 1 : st;
        en = en < -1 ? -1 : en > len - 1 ? len - 1 : en;
    }
    int64_t cnt = 0;
    for (int64_t k = st; step > 0 ? k < en : k > en; k += step)
        cnt++;
    S_TRY (s_arr_alloc (out, a->dtype, 1, &cnt));
    int64_t w = 0;
    for (int64_t k = st; step > 0 ? k < en : k > en; k += step, w++) {
        if (out->f)
            out->f [w] = a->f [k];
        else
            out->i [w] = a->i [k];
    }
    return 0;
}

static int
s_eval_const_of_shape (const cmn_onnx_node_t *n, const s_arr_t *a, s_arr_t *out)
{
    if (!a->i || a->rank != 1 || a->n > CMN_ONNX_MAX_DIMS)
        return 1;
    cmn_onnx_attr_t *v = cmn_onnx_node_attr (n, "value");
    s_arr_t val;
    memset (&val, 0, sizeof val);
    if (v && v->t) {
        int rc = s_load (v->t, &val);
        if (rc)
            return rc;
        if (val.n != 1) {
            s_arr_free (&val);
            return 1;
        }
    }
    int32_t dt = v && v->t ? val.dtype : CMN_ONNX_FLOAT;
    int rc = s_arr_alloc (out, dt, (int) a->n, a->i);
    if (rc) {
        s_arr_free (&val);
        return rc;
    }
    for (int64_t k = 0; k < out->n; k++) {
        if (out->f)
            out->f [k] = v && v->t ? val.f [0] : 0;
        else
            out->i [k] = val.i [0];
    }
    s_arr_free (&val);
    return 0;
}

static int
s_eval_range (const s_arr_t *in, s_arr_t *out)
{
    for (int i = 0; i < 3; i++)
        if (in [i].n != 1 || in [i].dtype != in [0].dtype)
            return 1;
    double st = s_get (&in [0], 0), lim = s_get (&in [1], 0), d = s_get (&in [2], 0);
    if (d == 0)
        return 1;
    double c = ceil ((lim - st) / d);
    int64_t cnt = c > 0 ? (int64_t) c : 0;
    if (cnt > (1 << 24))
        return 1;
    S_TRY (s_arr_alloc (out, in [0].dtype, 1, &cnt));
    for (int64_t k = 0; k < cnt; k++) {
        if (out->f)
            out->f [k] = st + (double) k * d;
        else
            out->i [k] = in [0].i [0] + k * in [2].i [0];
    }
    return 0;
}

//  Shape and Size fold from static shapes, whatever the input's values.
static int
s_eval_shape (cmn_graph_t *g, const cmn_onnx_node_t *n, s_arr_t *out)
{
    const cmn_graph_shape_t *sh = cmn_graph_shape (g, n->inputs [0]);
    if (!cmn_graph_shape_static (sh))
        return 1;
    if (strcmp (n->op_type, "Size") == 0) {
        S_TRY (s_arr_alloc (out, CMN_ONNX_INT64, 0, NULL));
        int64_t c = 1;
        for (int k = 0; k < sh->rank; k++)
            if (__builtin_mul_overflow (c, sh->dims [k], &c)) {
                s_arr_free (out);
                return 1;
            }
        out->i [0] = c;
        return 0;
    }
    int64_t st = cmn_onnx_node_attr_int (n, "start", 0), en = cmn_onnx_node_attr_int (n, "end", sh->rank);
    if (st < 0)
        st += sh->rank;
    if (en < 0)
        en += sh->rank;
    st = st < 0 ? 0 : st > sh->rank ? sh->rank : st;
    en = en < 0 ? 0 : en > sh->rank ? sh->rank : en;
    int64_t cnt = en > st ? en - st : 0;
    S_TRY (s_arr_alloc (out, CMN_ONNX_INT64, 1, &cnt));
    for (int64_t k = 0; k < cnt; k++)
        out->i [k] = sh->dims [st + k];
    return 0;
}

#define S_MAX_IN 64

//  Evaluates node N. Returns 0 with OUT, 1 when not folded, -1 on OOM.
static int
s_eval (cmn_graph_t *g, const cmn_onnx_node_t *n, s_arr_t *out)
{
    const char *op = n->op_type;
    if (n->domain [0] || n->noutputs != 1 || !n->outputs [0][0] || n->ninputs > S_MAX_IN)
        return 1;
    if ((!strcmp (op, "Shape") || !strcmp (op, "Size")) && n->ninputs == 1)
        return s_eval_shape (g, n, out);
    s_arr_t in [S_MAX_IN];
    memset (in, 0, sizeof in);
    size_t nin = n->ninputs;
    if (nin == 0)
        return 1;
    int rc = 0;
    for (size_t i = 0; i < nin && rc == 0; i++) {
        if (!n->inputs [i][0])
            continue;           // omitted optional input: dtype 0
        cmn_onnx_tensor_t *t = cmn_graph_const (g, n->inputs [i]);
        rc = t ? s_load (t, &in [i]) : 1;
    }
    if (rc == 0 && !n->inputs [0][0])
        rc = 1;
    if (rc == 0) {
        const cmn_graph_shape_t *osh = cmn_graph_shape (g, n->outputs [0]);
        if (!strcmp (op, "Add") || !strcmp (op, "Sub") || !strcmp (op, "Mul") || !strcmp (op, "Div")
            || !strcmp (op, "Pow"))
            rc = nin == 2 ? s_eval_binary (op, &in [0], &in [1], out) : 1;
        else
        if (!strcmp (op, "Cast"))
            rc = s_eval_cast (&in [0], (int32_t) cmn_onnx_node_attr_int (n, "to", 0), out);
        else
        if (!strcmp (op, "Reshape") || !strcmp (op, "Unsqueeze") || !strcmp (op, "Squeeze")
            || !strcmp (op, "Flatten") || !strcmp (op, "Identity"))
            rc = s_copy_reshaped (&in [0], osh, out);
        else
        if (!strcmp (op, "Transpose"))
            rc = s_eval_transpose (n, &in [0], out);
        else
        if (!strcmp (op, "Concat"))
            rc = s_eval_concat (n, in, nin, out);
        else
        if (!strcmp (op, "Gather"))
            rc = nin == 2 ? s_eval_gather (n, &in [0], &in [1], out) : 1;
        else
        if (!strcmp (op, "Slice") && cmn_graph_opset (g) >= 10)
            rc = s_eval_slice1d (&in [0], in, nin, out);
        else
        if (!strcmp (op, "ConstantOfShape"))
            rc = s_eval_const_of_shape (n, &in [0], out);
        else
        if (!strcmp (op, "Range"))
            rc = nin == 3 ? s_eval_range (in, out) : 1;
        else
        if (nin == 1 && !cmn_onnx_node_attr (n, "alpha"))
            rc = s_eval_unary (op, &in [0], out);
        else
            rc = 1;
        //  The result must agree with what inference said, when it said.
        if (rc == 0 && osh->rank >= 0 && (osh->rank != out->rank
            || (osh->elem_type && osh->elem_type != out->dtype))) {
            s_arr_free (out);
            rc = 1;
        }
    }
    for (size_t i = 0; i < nin; i++)
        s_arr_free (&in [i]);
    return rc;
}

//  Replaces node index I by initializer T named as its output.
static int
s_replace_by_init (cmn_graph_t *g, size_t i, cmn_onnx_tensor_t *t)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    if (cmn_onnx_graph_add_init (og, t)) {
        cmn_onnx_tensor_free (t);
        return -1;
    }
    cmn_onnx_node_free (og->nodes [i]);
    og->nodes [i] = NULL;
    return 0;
}

//  A Constant node's value as a tensor named NAME, or NULL (not handled).
static cmn_onnx_tensor_t *
s_constant_value (const cmn_onnx_node_t *n, const char *name, bool *oom)
{
    if (n->nattrs != 1)
        return NULL;
    const cmn_onnx_attr_t *a = &n->attrs [0];
    cmn_onnx_tensor_t *t = NULL;
    if (!strcmp (a->name, "value") && a->t && a->t->data_type != CMN_ONNX_STRING) {
        t = cmn_onnx_tensor_dup (a->t);
        if (t) {
            char *s = strdup (name);
            if (!s) {
                cmn_onnx_tensor_free (t);
                t = NULL;
            }
            else {
                free (t->name);
                t->name = s;
            }
        }
    }
    else
    if (!strcmp (a->name, "value_float") || !strcmp (a->name, "value_int")) {
        bool f = a->name [6] == 'f';
        t = cmn_onnx_tensor_new (name, f ? CMN_ONNX_FLOAT : CMN_ONNX_INT64, NULL, 0);
        if (t) {
            if (f)
                memcpy (t->raw, &a->f, 4);
            else
                memcpy (t->raw, &a->i, 8);
        }
    }
    else
    if (!strcmp (a->name, "value_floats") || !strcmp (a->name, "value_ints")) {
        bool f = a->name [6] == 'f';
        int64_t cnt = (int64_t) (f ? a->nfloats : a->nints);
        t = cmn_onnx_tensor_new (name, f ? CMN_ONNX_FLOAT : CMN_ONNX_INT64, &cnt, 1);
        if (t && t->raw_size)
            memcpy (t->raw, f ? (void *) a->floats : (void *) a->ints, t->raw_size);
    }
    else
        return NULL;
    if (!t)
        *oom = true;
    return t;
}

int
cmn_opt_fold_constants (cmn_graph_t *g, size_t max_bytes, cmn_err_t *err)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    int count = 0;
    //  Topological order: a folded result is constant for later nodes as
    //  soon as the view is refreshed, so refresh after each fold batch.
    bool again = true;
    while (again) {
        again = false;
        for (size_t i = 0; i < og->nnodes; i++) {
            cmn_onnx_node_t *n = og->nodes [i];
            if (!n || n->domain [0] || n->noutputs != 1 || !n->outputs [0][0]
                || cmn_graph_is_output (g, n->outputs [0]))
                continue;
            cmn_onnx_tensor_t *t = NULL;
            if (!strcmp (n->op_type, "Constant")) {
                bool oom = false;
                t = s_constant_value (n, n->outputs [0], &oom);
                if (oom)
                    return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
            }
            else {
                if (cmn_graph_opset (g) < CMN_GRAPH_OPSET_MIN)
                    continue;
                s_arr_t out;
                int rc = s_eval (g, n, &out);
                if (rc < 0)
                    return cmn_err_set (err, RXQ_E_NOMEM, "out of memory folding node '%s'", n->name);
                if (rc > 0)
                    continue;
                size_t bytes = (size_t) out.n * cmn_onnx_dtype_size (out.dtype);
                if (bytes <= max_bytes) {
                    t = s_store (&out, n->outputs [0]);
                    if (!t) {
                        s_arr_free (&out);
                        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
                    }
                }
                s_arr_free (&out);
            }
            if (!t)
                continue;
            if (s_replace_by_init (g, i, t))
                return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
            count++;
            again = true;
        }
        if (again && cmn_graph_refresh (g, err))
            return -1;
    }
    return count;
}

//  ---------------------------------------------------------------------
//  Algebraic simplification

//  True when constant NAME has every element equal to V.
static bool
s_const_all (cmn_graph_t *g, const char *name, double v)
{
    cmn_onnx_tensor_t *t = cmn_graph_const (g, name);
    s_arr_t a;
    if (!t || s_load (t, &a))
        return false;
    bool all = a.n > 0;
    for (int64_t k = 0; k < a.n && all; k++)
        all = s_get (&a, k) == v;
    s_arr_free (&a);
    return all;
}

static bool
s_same_static (const cmn_graph_shape_t *a, const cmn_graph_shape_t *b)
{
    return cmn_graph_shape_static (a) && cmn_graph_shape_static (b) && a->rank == b->rank
        && a->elem_type && a->elem_type == b->elem_type
        && memcmp (a->dims, b->dims, (size_t) a->rank * sizeof (int64_t)) == 0;
}

//  One rewrite of node I, if any applies: 1 done, 0 none, -1 OOM.
static int
s_algebra_node (cmn_graph_t *g, size_t i, size_t max_bytes)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    cmn_onnx_node_t *n = og->nodes [i];
    const char *op = n->op_type;
    if (n->domain [0] || n->noutputs != 1 || !n->outputs [0][0])
        return 0;
    const cmn_graph_shape_t *osh = cmn_graph_shape (g, n->outputs [0]);
    if (n->ninputs == 2 && n->inputs [0][0] && n->inputs [1][0]) {
        const char *x = n->inputs [0], *c = n->inputs [1];
        bool add = !strcmp (op, "Add"), sub = !strcmp (op, "Sub"), mul = !strcmp (op, "Mul"),
             dv = !strcmp (op, "Div");
        for (int side = 0; side < 2 && (add || mul); side++) {
            //  Commutative: try the constant on either side.
            const char *xx = side ? c : x, *cc = side ? x : c;
            double id = add ? 0 : 1;
            if (s_const_all (g, cc, id) && s_same_static (cmn_graph_shape (g, xx), osh))
                return cmn_opt_clean_bypass (g, i, xx, n->outputs [0]);
        }
        if ((sub && s_const_all (g, c, 0)) || (dv && s_const_all (g, c, 1)))
            if (s_same_static (cmn_graph_shape (g, x), osh))
                return cmn_opt_clean_bypass (g, i, x, n->outputs [0]);
        if (mul && !cmn_graph_is_output (g, n->outputs [0])
            && (s_const_all (g, x, 0) || s_const_all (g, c, 0))) {
            int64_t bytes = cmn_graph_shape_bytes (osh);
            if (bytes >= 0 && (size_t) bytes <= max_bytes
                && (s_is_float (osh->elem_type) || s_is_int (osh->elem_type))) {
                cmn_onnx_tensor_t *t = cmn_onnx_tensor_new (n->outputs [0], osh->elem_type, osh->dims,
                                                            (size_t) osh->rank);
                if (!t)
                    return -1;
                return s_replace_by_init (g, i, t) ? -1 : 1;
            }
        }
    }
    if (!strcmp (op, "Transpose") && n->ninputs == 1) {
        ssize_t p = cmn_graph_producer (g, n->inputs [0]);
        cmn_onnx_node_t *in = p >= 0 ? og->nodes [p] : NULL;
        if (in && !in->domain [0] && !strcmp (in->op_type, "Transpose") && in->ninputs == 1) {
            cmn_onnx_attr_t *p1 = cmn_onnx_node_attr (in, "perm"), *p2 = cmn_onnx_node_attr (n, "perm");
            if (p1 && p2 && p1->nints == p2->nints && p1->nints <= CMN_ONNX_MAX_DIMS) {
                //  out[i] = mid[p2[i]] = x[p1[p2[i]]]
                int64_t q [CMN_ONNX_MAX_DIMS];
                for (size_t k = 0; k < p2->nints; k++) {
                    if (p2->ints [k] < 0 || (size_t) p2->ints [k] >= p1->nints)
                        return 0;
                    q [k] = p1->ints [p2->ints [k]];
                }
                if (cmn_onnx_node_set_input (n, 0, in->inputs [0]))
                    return -1;
                if (p2->nints)
                    memcpy (p2->ints, q, p2->nints * sizeof *q);
                return 1;
            }
        }
    }
    if (!strcmp (op, "Reshape") && n->ninputs == 2 && !cmn_onnx_node_attr_int (n, "allowzero", 0)) {
        ssize_t p = cmn_graph_producer (g, n->inputs [0]);
        cmn_onnx_node_t *in = p >= 0 ? og->nodes [p] : NULL;
        cmn_onnx_tensor_t *shape = cmn_graph_const (g, n->inputs [1]);
        if (in && !in->domain [0] && !strcmp (in->op_type, "Reshape") && in->ninputs >= 1 && shape
            && shape->data_type == CMN_ONNX_INT64) {
            for (int64_t k = 0; k < cmn_onnx_tensor_numel (shape); k++) {
                int64_t v;
                memcpy (&v, shape->raw + 8 * k, 8);
                if (v == 0)
                    return 0;   // 0 copies a dimension of the inner result
            }
            return cmn_onnx_node_set_input (n, 0, in->inputs [0]) ? -1 : 1;
        }
    }
    return 0;
}

//  cmn_graph_step_fn for cmn_opt_fold_algebra: ARG is the size_t max_bytes.
static int
s_algebra_step (cmn_graph_t *g, size_t i, void *arg)
{
    return s_algebra_node (g, i, *(const size_t *) arg);
}

int
cmn_opt_fold_algebra (cmn_graph_t *g, size_t max_bytes, cmn_err_t *err)
{
    if (cmn_graph_opset (g) < CMN_GRAPH_OPSET_MIN)
        return 0;
    return cmn_graph_rewrite (g, s_algebra_step, &max_bytes, 0, err);
}
