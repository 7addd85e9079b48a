/*  cmn_onnx: ONNX protobuf reader and writer. See cmn_onnx.h.
 *
 *  Decoding is a cursor over the buffer (s_rd_t): every varint is at most
 *  10 bytes, every length is checked against the bytes remaining before it
 *  is used, and every allocation is sized from a count already checked
 *  against the buffer and the limits. Unknown fields are copied, tag and
 *  all, into the message's `extra` bytes.
 */
#include "cmn_onnx.h"
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const cmn_onnx_limits_t cmn_onnx_limits_default = {
    .max_size = (size_t) 2 << 30,
    .max_count = (size_t) 1 << 24,
    .max_depth = 16,
    .max_external = (size_t) 16 << 30,
};

//  ---------------------------------------------------------------------
//  Wire reader

typedef struct {
    const uint8_t *p;               // next byte
    const uint8_t *end;             // one past the last byte of this message
    const cmn_onnx_limits_t *lim;   // limits
    const char *dir;                // external data directory or NULL
    size_t external;                // external bytes read so far
    int depth;                      // graph nesting
    cmn_err_t *err;                 // where errors go
} s_rd_t;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static int
s_varint (s_rd_t *r, uint64_t *v, const char *what)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return cmn_err_set (r->err, RXQ_E_FORMAT_TRUNC, "%s: varint runs past the end", what);
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return cmn_err_set (r->err, RXQ_E_FORMAT, "%s: varint longer than 64 bits", what);
        x |= (uint64_t) (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return cmn_err_set (r->err, RXQ_E_FORMAT, "%s: varint longer than 10 bytes", what);
}

//  Reads a length-delimited field's length and checks it against the
//  bytes remaining; *P gets its start.
static int
s_len (s_rd_t *r, const uint8_t **p, size_t *n, const char *what)
{
    uint64_t len;
    if (s_varint (r, &len, what))
        return -1;
    if (len > (uint64_t) (r->end - r->p))
        return cmn_err_set (r->err, RXQ_E_FORMAT_TRUNC, "%s: length %llu past the %zu bytes remaining",
                            what, (unsigned long long) len, (size_t) (r->end - r->p));
    *p = r->p;
    *n = (size_t) len;
    r->p += len;
    return 0;
}

static int
s_skip (s_rd_t *r, int wt, const char *what)
{
    uint64_t v;
    const uint8_t *p;
    size_t n;
    switch (wt) {
        case WT_VARINT: return s_varint (r, &v, what);
        case WT_LEN: return s_len (r, &p, &n, what);
        case WT_I64:
        case WT_I32: {
            size_t sz = wt == WT_I64 ? 8 : 4;
            if ((size_t) (r->end - r->p) < sz)
                return cmn_err_set (r->err, RXQ_E_FORMAT_TRUNC, "%s: fixed field past the end", what);
            r->p += sz;
            return 0;
        }
        default:
            return cmn_err_set (r->err, RXQ_E_FORMAT, "%s: unsupported wire type %d", what, wt);
    }
}

static int
s_append (cmn_onnx_bytes_t *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t *q = realloc (b->ptr, b->len + n);
    if (!q)
        return -1;
    memcpy (q + b->len, p, n);
    b->ptr = q;
    b->len += n;
    return 0;
}

//  Skips the field whose tag started at START and keeps its bytes.
static int
s_unknown (s_rd_t *r, const uint8_t *start, int wt, cmn_onnx_bytes_t *extra, const char *msg)
{
    if (s_skip (r, wt, msg))
        return -1;
    if (s_append (extra, start, (size_t) (r->p - start)))
        return cmn_err_set (r->err, RXQ_E_NOMEM, "%s: out of memory", msg);
    return 0;
}

static int
s_expect (s_rd_t *r, int wt, int want, const char *what)
{
    if (wt != want)
        return cmn_err_set (r->err, RXQ_E_FORMAT, "%s: wire type %d, expected %d", what, wt, want);
    return 0;
}

static int
s_string (s_rd_t *r, int wt, char **out, const char *what)
{
    const uint8_t *p;
    size_t n;
    if (s_expect (r, wt, WT_LEN, what) || s_len (r, &p, &n, what))
        return -1;
    if (memchr (p, 0, n))
        return cmn_err_set (r->err, RXQ_E_FORMAT, "%s: string contains a NUL byte", what);
    char *s = malloc (n + 1);
    if (!s)
        return cmn_err_set (r->err, RXQ_E_NOMEM, "%s: out of memory", what);
    memcpy (s, p, n);
    s [n] = 0;
    free (*out);
    *out = s;
    return 0;
}

static int
s_bytes (s_rd_t *r, int wt, cmn_onnx_bytes_t *out, const char *what)
{
    const uint8_t *p;
    size_t n;
    if (s_expect (r, wt, WT_LEN, what) || s_len (r, &p, &n, what))
        return -1;
    uint8_t *q = malloc (n ? n : 1);
    if (!q)
        return cmn_err_set (r->err, RXQ_E_NOMEM, "%s: out of memory", what);
    memcpy (q, p, n);
    free (out->ptr);
    out->ptr = q;
    out->len = n;
    return 0;
}

static int
s_int (s_rd_t *r, int wt, int64_t *v, const char *what)
{
    uint64_t u;
    if (s_expect (r, wt, WT_VARINT, what) || s_varint (r, &u, what))
        return -1;
    *v = (int64_t) u;
    return 0;
}

//  Grows *ARR (of element size SZ) to hold *N + ADD entries.
static int
s_grow (s_rd_t *r, void **arr, size_t *n, size_t add, size_t sz, const char *what)
{
    if (add > r->lim->max_count || *n > r->lim->max_count - add)
        return cmn_err_set (r->err, RXQ_E_LIMIT, "%s: more than %zu entries", what, r->lim->max_count);
    size_t want = *n + add;
    if (want > SIZE_MAX / sz)
        return cmn_err_set (r->err, RXQ_E_LIMIT, "%s: too many entries", what);
    void *q = realloc (*arr, want ? want * sz : 1);
    if (!q)
        return cmn_err_set (r->err, RXQ_E_NOMEM, "%s: out of memory", what);
    *arr = q;
    return 0;
}

//  A repeated int64 field, packed or not.
static int
s_rep_int64 (s_rd_t *r, int wt, int64_t **arr, size_t *n, const char *what)
{
    if (wt == WT_VARINT) {
        int64_t v;
        if (s_int (r, wt, &v, what) || s_grow (r, (void **) arr, n, 1, sizeof (int64_t), what))
            return -1;
        (*arr) [(*n)++] = v;
        return 0;
    }
    const uint8_t *p;
    size_t len;
    if (s_expect (r, wt, WT_LEN, what) || s_len (r, &p, &len, what))
        return -1;
    //  Each varint takes at least one byte: LEN bounds the count.
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += !(p [i] & 0x80);
    if (s_grow (r, (void **) arr, n, count, sizeof (int64_t), what))
        return -1;
    s_rd_t sub = *r;
    sub.p = p;
    sub.end = p + len;
    while (sub.p < sub.end) {
        uint64_t u;
        if (s_varint (&sub, &u, what))
            return -1;
        (*arr) [(*n)++] = (int64_t) u;
    }
    return 0;
}

//  A repeated fixed-size field (float: 4, double/uint64 fixed: 8), packed
//  or not; appended as raw little-endian bytes to OUT.
static int
s_rep_fixed (s_rd_t *r, int wt, size_t sz, cmn_onnx_bytes_t *out, const char *what)
{
    int single = sz == 4 ? WT_I32 : WT_I64;
    if (wt == single) {
        if ((size_t) (r->end - r->p) < sz)
            return cmn_err_set (r->err, RXQ_E_FORMAT_TRUNC, "%s: fixed field past the end", what);
        if (s_append (out, r->p, sz))
            return cmn_err_set (r->err, RXQ_E_NOMEM, "%s: out of memory", what);
        r->p += sz;
        return 0;
    }
    const uint8_t *p;
    size_t len;
    if (s_expect (r, wt, WT_LEN, what) || s_len (r, &p, &len, what))
        return -1;
    if (len % sz)
        return cmn_err_set (r->err, RXQ_E_FORMAT, "%s: packed length %zu not a multiple of %zu", what, len, sz);
    if (s_append (out, p, len))
        return cmn_err_set (r->err, RXQ_E_NOMEM, "%s: out of memory", what);
    return 0;
}

//  ---------------------------------------------------------------------
//  Data types

size_t
cmn_onnx_dtype_size (int32_t t)
{
    switch (t) {
        case CMN_ONNX_FLOAT: case CMN_ONNX_INT32: case CMN_ONNX_UINT32: return 4;
        case CMN_ONNX_UINT8: case CMN_ONNX_INT8: case CMN_ONNX_BOOL: return 1;
        case CMN_ONNX_FLOAT8E4M3FN: case CMN_ONNX_FLOAT8E4M3FNUZ:
        case CMN_ONNX_FLOAT8E5M2: case CMN_ONNX_FLOAT8E5M2FNUZ: return 1;
        case CMN_ONNX_UINT4: case CMN_ONNX_INT4: case CMN_ONNX_FLOAT4E2M1: return 1;
        case CMN_ONNX_UINT16: case CMN_ONNX_INT16: case CMN_ONNX_FLOAT16:
        case CMN_ONNX_BFLOAT16: return 2;
        case CMN_ONNX_INT64: case CMN_ONNX_DOUBLE: case CMN_ONNX_UINT64:
        case CMN_ONNX_COMPLEX64: return 8;
        case CMN_ONNX_COMPLEX128: return 16;
        default: return 0;
    }
}

const char *
cmn_onnx_dtype_name (int32_t t)
{
    static const char *names [] = {
        "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32",
        "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64",
        "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
        "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4",
        "FLOAT4E2M1"
    };
    return t >= 0 && t <= CMN_ONNX_DTYPE_MAX ? names [t] : "?";
}

static bool
s_is_4bit (int32_t t)
{
    return t == CMN_ONNX_UINT4 || t == CMN_ONNX_INT4 || t == CMN_ONNX_FLOAT4E2M1;
}

int64_t
cmn_onnx_tensor_numel (const cmn_onnx_tensor_t *t)
{
    int64_t n = 1;
    for (size_t i = 0; i < t->ndims; i++)
        n *= t->dims [i];
    return n;
}

//  Bytes the raw data of a tensor of type T with N elements takes, or -1.
static int64_t
s_raw_bytes (int32_t t, int64_t n)
{
    size_t sz = cmn_onnx_dtype_size (t);
    if (!sz || n < 0)
        return -1;
    if (s_is_4bit (t))
        return (n + 1) / 2;
    if (n > INT64_MAX / (int64_t) sz)
        return -1;
    return n * (int64_t) sz;
}

//  ---------------------------------------------------------------------
//  Decoders

static int s_graph (s_rd_t *r, const uint8_t *p, size_t n, cmn_onnx_graph_t *g);

typedef struct {
    cmn_onnx_bytes_t f32;    // float_data (4 bytes each)
    cmn_onnx_bytes_t f64;    // double_data (8 bytes each)
    int64_t *i32; size_t n32; // int32_data
    int64_t *i64; size_t n64; // int64_data
    int64_t *u64; size_t nu64; // uint64_data
    cmn_onnx_bytes_t raw;    // raw_data
    bool has_raw;            // raw_data present
    int64_t location;        // data_location
    char *ext_location;      // external_data "location"
    int64_t ext_offset;      // external_data "offset"
    int64_t ext_length;      // external_data "length", -1 when absent
    bool has_ext;            // any external_data entry
} s_tdata_t;

static int
s_ext_entry (s_rd_t *r, const uint8_t *p, size_t n, s_tdata_t *d, const char *tname)
{
    s_rd_t sub = *r;
    sub.p = p;
    sub.end = p + n;
    char *key = NULL, *val = NULL;
    int rc = 0;
    while (sub.p < sub.end && rc == 0) {
        uint64_t tag;
        if ((rc = s_varint (&sub, &tag, "StringStringEntryProto")))
            break;
        int wt = (int) (tag & 7);
        if (tag >> 3 == 1)
            rc = s_string (&sub, wt, &key, "TensorProto.external_data.key");
        else
        if (tag >> 3 == 2)
            rc = s_string (&sub, wt, &val, "TensorProto.external_data.value");
        else
            rc = s_skip (&sub, wt, "StringStringEntryProto");
    }
    if (rc == 0 && key && val) {
        d->has_ext = true;
        if (strcmp (key, "location") == 0) {
            free (d->ext_location);
            d->ext_location = val;
            val = NULL;
        }
        else
        if (strcmp (key, "offset") == 0 || strcmp (key, "length") == 0) {
            char *e;
            errno = 0;
            long long v = strtoll (val, &e, 10);
            if (errno || *e || e == val || v < 0)
                rc = cmn_err_set (r->err, RXQ_E_FORMAT, "tensor '%s': external_data %s '%s' is not a number",
                                  tname, key, val);
            else
            if (key [0] == 'o')
                d->ext_offset = v;
            else
                d->ext_length = v;
        }
    }
    free (key);
    free (val);
    return rc;
}

//  Reads external data into T->raw.
static int
s_external (s_rd_t *r, cmn_onnx_tensor_t *t, s_tdata_t *d, int64_t want)
{
    if (!d->ext_location)
        return cmn_err_set (r->err, RXQ_E_FORMAT, "tensor '%s': external data without a location", t->name);
    if (!r->dir)
        return cmn_err_set (r->err, RXQ_E_UNSUPPORTED, "tensor '%s': external data '%s' but the model was not read from a file",
                            t->name, d->ext_location);
    //  The location must stay inside the model's directory.
    if (d->ext_location [0] == '/' || strstr (d->ext_location, ".."))
        return cmn_err_set (r->err, RXQ_E_FORMAT_BOUNDS, "tensor '%s': external data location '%s' leaves the model's directory",
                            t->name, d->ext_location);
    int64_t len = d->ext_length >= 0 ? d->ext_length : want;
    if (len != want)
        return cmn_err_set (r->err, RXQ_E_FORMAT_SHAPE, "tensor '%s': external data length %lld, dims need %lld bytes",
                            t->name, (long long) len, (long long) want);
    if ((uint64_t) len > r->lim->max_external - r->external)
        return cmn_err_set (r->err, RXQ_E_LIMIT, "tensor '%s': external data over the %zu-byte limit",
                            t->name, r->lim->max_external);
    char path [4096];
    if (snprintf (path, sizeof path, "%s/%s", r->dir, d->ext_location) >= (int) sizeof path)
        return cmn_err_set (r->err, RXQ_E_LIMIT, "tensor '%s': external data path too long", t->name);
    FILE *f = fopen (path, "rb");
    if (!f)
        return cmn_err_set (r->err, RXQ_E_IO, "tensor '%s': cannot open external data '%s': %s",
                            t->name, path, strerror (errno));
    struct stat st;
    if (fstat (fileno (f), &st) || d->ext_offset > st.st_size || len > st.st_size - d->ext_offset) {
        fclose (f);
        return cmn_err_set (r->err, RXQ_E_FORMAT_BOUNDS, "tensor '%s': external data [%lld, +%lld) past the end of '%s'",
                            t->name, (long long) d->ext_offset, (long long) len, path);
    }
    t->raw = malloc (len ? (size_t) len : 1);
    if (!t->raw) {
        fclose (f);
        return cmn_err_set (r->err, RXQ_E_NOMEM, "tensor '%s': out of memory", t->name);
    }
    if (fseeko (f, d->ext_offset, SEEK_SET) || fread (t->raw, 1, (size_t) len, f) != (size_t) len) {
        fclose (f);
        return cmn_err_set (r->err, RXQ_E_IO, "tensor '%s': cannot read external data '%s'", t->name, path);
    }
    fclose (f);
    t->raw_size = (size_t) len;
    r->external += (size_t) len;
    return 0;
}

//  Turns the typed repeated fields into little-endian raw bytes.
static int
s_tensor_normalise (s_rd_t *r, cmn_onnx_tensor_t *t, s_tdata_t *d)
{
    if (t->data_type < 1 || t->data_type > CMN_ONNX_DTYPE_MAX)
        return cmn_err_set (r->err, RXQ_E_FORMAT_TYPE, "tensor '%s': unknown data_type %d", t->name, t->data_type);
    for (size_t i = 0; i < t->ndims; i++)
        if (t->dims [i] < 0)
            return cmn_err_set (r->err, RXQ_E_FORMAT_SHAPE, "tensor '%s': negative dimension %lld",
                                t->name, (long long) t->dims [i]);
    //  Overflow-checked element count.
    int64_t n = 1;
    for (size_t i = 0; i < t->ndims; i++) {
        if (t->dims [i] && n > INT64_MAX / t->dims [i])
            return cmn_err_set (r->err, RXQ_E_FORMAT_SHAPE, "tensor '%s': element count overflows", t->name);
        n *= t->dims [i];
    }
    if (t->data_type == CMN_ONNX_STRING) {
        if ((int64_t) t->nstrings != n)
            return cmn_err_set (r->err, RXQ_E_FORMAT_SHAPE, "tensor '%s': %zu strings, dims need %lld",
                                t->name, t->nstrings, (long long) n);
        return 0;
    }
    int64_t want = s_raw_bytes (t->data_type, n);
    if (want < 0)
        return cmn_err_set (r->err, RXQ_E_FORMAT_SHAPE, "tensor '%s': size overflows", t->name);
    if (d->location == 1 || d->has_ext) {
        if (d->location != 1)
            return cmn_err_set (r->err, RXQ_E_FORMAT, "tensor '%s': external_data without data_location EXTERNAL", t->name);
        return s_external (r, t, d, want);
    }
    size_t sz = cmn_onnx_dtype_size (t->data_type);
    uint8_t *raw = NULL;
    size_t got = 0;
    if (d->has_raw) {
        raw = d->raw.ptr;
        got = d->raw.len;
        d->raw.ptr = NULL;
    }
    else
    if (t->data_type == CMN_ONNX_FLOAT || t->data_type == CMN_ONNX_COMPLEX64) {
        raw = d->f32.ptr;
        got = d->f32.len;
        d->f32.ptr = NULL;
    }
    else
    if (t->data_type == CMN_ONNX_DOUBLE || t->data_type == CMN_ONNX_COMPLEX128) {
        raw = d->f64.ptr;
        got = d->f64.len;
        d->f64.ptr = NULL;
    }
    else {
        const int64_t *src = t->data_type == CMN_ONNX_INT64 ? d->i64
                           : t->data_type == CMN_ONNX_UINT32 || t->data_type == CMN_ONNX_UINT64 ? d->u64 : d->i32;
        size_t cnt = t->data_type == CMN_ONNX_INT64 ? d->n64
                   : t->data_type == CMN_ONNX_UINT32 || t->data_type == CMN_ONNX_UINT64 ? d->nu64 : d->n32;
        //  4-bit types: one int32 entry holds one byte (two elements).
        size_t esz = s_is_4bit (t->data_type) ? 1 : sz;
        if (cnt > SIZE_MAX / esz)
            return cmn_err_set (r->err, RXQ_E_LIMIT, "tensor '%s': too much data", t->name);
        raw = malloc (cnt ? cnt * esz : 1);
        if (!raw)
            return cmn_err_set (r->err, RXQ_E_NOMEM, "tensor '%s': out of memory", t->name);
        for (size_t i = 0; i < cnt; i++) {
            uint64_t v = (uint64_t) src [i];
            for (size_t b = 0; b < esz; b++)
                raw [i * esz + b] = (uint8_t) (v >> (8 * b));
        }
        got = cnt * esz;
    }
    if ((int64_t) got != want) {
        free (raw);
        return cmn_err_set (r->err, RXQ_E_FORMAT_SHAPE, "tensor '%s': %zu bytes of %s data, dims need %lld",
                            t->name, got, cmn_onnx_dtype_name (t->data_type), (long long) want);
    }
    t->raw = raw ? raw : malloc (1);
    if (!t->raw)
        return cmn_err_set (r->err, RXQ_E_NOMEM, "tensor '%s': out of memory", t->name);
    t->raw_size = got;
    return 0;
}

static int
s_tensor (s_rd_t *r, const uint8_t *p, size_t n, cmn_onnx_tensor_t *t)
{
    s_rd_t sub = *r;
    sub.p = p;
    sub.end = p + n;
    s_tdata_t d;
    memset (&d, 0, sizeof d);
    d.ext_length = -1;
    int64_t *dims = NULL;
    size_t ndims = 0;
    int rc = 0;
    while (sub.p < sub.end && rc == 0) {
        const uint8_t *start = sub.p;
        uint64_t tag;
        if ((rc = s_varint (&sub, &tag, "TensorProto")))
            break;
        int wt = (int) (tag & 7);
        int64_t v;
        switch (tag >> 3) {
            case 1: rc = s_rep_int64 (&sub, wt, &dims, &ndims, "TensorProto.dims"); break;
            case 2: rc = s_int (&sub, wt, &v, "TensorProto.data_type"); t->data_type = (int32_t) v; break;
            case 4: rc = s_rep_fixed (&sub, wt, 4, &d.f32, "TensorProto.float_data"); break;
            case 5: rc = s_rep_int64 (&sub, wt, &d.i32, &d.n32, "TensorProto.int32_data"); break;
            case 6:
                if (!(rc = s_grow (&sub, (void **) &t->strings, &t->nstrings, 1, sizeof (cmn_onnx_bytes_t),
                                   "TensorProto.string_data"))) {
                    memset (&t->strings [t->nstrings], 0, sizeof (cmn_onnx_bytes_t));
                    rc = s_bytes (&sub, wt, &t->strings [t->nstrings], "TensorProto.string_data");
                    t->nstrings++;
                }
                break;
            case 7: rc = s_rep_int64 (&sub, wt, &d.i64, &d.n64, "TensorProto.int64_data"); break;
            case 8: rc = s_string (&sub, wt, &t->name, "TensorProto.name"); break;
            case 9: rc = s_bytes (&sub, wt, &d.raw, "TensorProto.raw_data"); d.has_raw = true; break;
            case 10: rc = s_rep_fixed (&sub, wt, 8, &d.f64, "TensorProto.double_data"); break;
            case 11: rc = s_rep_int64 (&sub, wt, &d.u64, &d.nu64, "TensorProto.uint64_data"); break;
            case 13: {
                const uint8_t *q;
                size_t qn;
                if (!(rc = s_expect (&sub, wt, WT_LEN, "TensorProto.external_data")))
                    if (!(rc = s_len (&sub, &q, &qn, "TensorProto.external_data")))
                        rc = s_ext_entry (&sub, q, qn, &d, t->name ? t->name : "");
                break;
            }
            case 14: rc = s_int (&sub, wt, &d.location, "TensorProto.data_location"); break;
            default: rc = s_unknown (&sub, start, wt, &t->extra, "TensorProto"); break;
        }
    }
    if (!t->name && !(t->name = strdup ("")))
        rc = cmn_err_set (r->err, RXQ_E_NOMEM, "TensorProto: out of memory");
    if (rc == 0 && ndims > CMN_ONNX_MAX_DIMS)
        rc = cmn_err_set (r->err, RXQ_E_FORMAT_SHAPE, "tensor '%s': %zu dimensions, at most %d supported",
                          t->name, ndims, CMN_ONNX_MAX_DIMS);
    if (rc == 0) {
        t->ndims = ndims;
        for (size_t i = 0; i < ndims; i++)
            t->dims [i] = dims [i];
        rc = s_tensor_normalise (r, t, &d);
    }
    if (rc == 0)
        r->external = sub.external;
    free (dims);
    free (d.f32.ptr);
    free (d.f64.ptr);
    free (d.i32);
    free (d.i64);
    free (d.u64);
    free (d.raw.ptr);
    free (d.ext_location);
    return rc;
}

static int
s_sub_tensor (s_rd_t *r, int wt, cmn_onnx_tensor_t **out, const char *what)
{
    const uint8_t *p;
    size_t n;
    if (s_expect (r, wt, WT_LEN, what) || s_len (r, &p, &n, what))
        return -1;
    cmn_onnx_tensor_t *t = calloc (1, sizeof *t);
    if (!t)
        return cmn_err_set (r->err, RXQ_E_NOMEM, "%s: out of memory", what);
    if (s_tensor (r, p, n, t)) {
        cmn_onnx_tensor_free (t);
        return -1;
    }
    *out = t;
    return 0;
}

static int
s_sub_graph (s_rd_t *r, int wt, cmn_onnx_graph_t **out, const char *what)
{
    const uint8_t *p;
    size_t n;
    if (s_expect (r, wt, WT_LEN, what) || s_len (r, &p, &n, what))
        return -1;
    if (r->depth >= r->lim->max_depth)
        return cmn_err_set (r->err, RXQ_E_LIMIT, "%s: graphs nested deeper than %d", what, r->lim->max_depth);
    cmn_onnx_graph_t *g = calloc (1, sizeof *g);
    if (!g)
        return cmn_err_set (r->err, RXQ_E_NOMEM, "%s: out of memory", what);
    r->depth++;
    int rc = s_graph (r, p, n, g);
    r->depth--;
    if (rc) {
        cmn_onnx_graph_free (g);
        return -1;
    }
    *out = g;
    return 0;
}

static int
s_attr (s_rd_t *r, const uint8_t *p, size_t n, cmn_onnx_attr_t *a, const char *node)
{
    s_rd_t sub = *r;
    sub.p = p;
    sub.end = p + n;
    int rc = 0;
    bool has_type = false;
    cmn_onnx_bytes_t fl = { NULL, 0 };
    while (sub.p < sub.end && rc == 0) {
        const uint8_t *start = sub.p;
        uint64_t tag;
        if ((rc = s_varint (&sub, &tag, "AttributeProto")))
            break;
        int wt = (int) (tag & 7);
        int64_t v;
        switch (tag >> 3) {
            case 1: rc = s_string (&sub, wt, &a->name, "AttributeProto.name"); break;
            case 2:
                if (!(rc = s_expect (&sub, wt, WT_I32, "AttributeProto.f"))) {
                    if (sub.end - sub.p < 4)
                        rc = cmn_err_set (r->err, RXQ_E_FORMAT_TRUNC, "AttributeProto.f past the end");
                    else {
                        memcpy (&a->f, sub.p, 4);
                        sub.p += 4;
                    }
                }
                break;
            case 3: rc = s_int (&sub, wt, &a->i, "AttributeProto.i"); break;
            case 4: rc = s_bytes (&sub, wt, &a->s, "AttributeProto.s"); break;
            case 5:
                cmn_onnx_tensor_free (a->t);
                a->t = NULL;
                rc = s_sub_tensor (&sub, wt, &a->t, "AttributeProto.t");
                break;
            case 6:
                cmn_onnx_graph_free (a->g);
                a->g = NULL;
                rc = s_sub_graph (&sub, wt, &a->g, "AttributeProto.g");
                break;
            case 7: rc = s_rep_fixed (&sub, wt, 4, &fl, "AttributeProto.floats"); break;
            case 8: rc = s_rep_int64 (&sub, wt, &a->ints, &a->nints, "AttributeProto.ints"); break;
            case 9:
                if (!(rc = s_grow (&sub, (void **) &a->strings, &a->nstrings, 1, sizeof (cmn_onnx_bytes_t),
                                   "AttributeProto.strings"))) {
                    memset (&a->strings [a->nstrings], 0, sizeof (cmn_onnx_bytes_t));
                    rc = s_bytes (&sub, wt, &a->strings [a->nstrings], "AttributeProto.strings");
                    a->nstrings++;
                }
                break;
            case 10:
                if (!(rc = s_grow (&sub, (void **) &a->tensors, &a->ntensors, 1, sizeof (void *),
                                   "AttributeProto.tensors"))) {
                    a->tensors [a->ntensors] = NULL;
                    if (!(rc = s_sub_tensor (&sub, wt, &a->tensors [a->ntensors], "AttributeProto.tensors")))
                        a->ntensors++;
                }
                break;
            case 11:
                if (!(rc = s_grow (&sub, (void **) &a->graphs, &a->ngraphs, 1, sizeof (void *),
                                   "AttributeProto.graphs"))) {
                    a->graphs [a->ngraphs] = NULL;
                    if (!(rc = s_sub_graph (&sub, wt, &a->graphs [a->ngraphs], "AttributeProto.graphs")))
                        a->ngraphs++;
                }
                break;
            case 20:
                rc = s_int (&sub, wt, &v, "AttributeProto.type");
                a->type = (int32_t) v;
                has_type = true;
                break;
            case 21: rc = s_string (&sub, wt, &a->ref_attr_name, "AttributeProto.ref_attr_name"); break;
            default: rc = s_unknown (&sub, start, wt, &a->extra, "AttributeProto"); break;
        }
    }
    a->floats = (float *) fl.ptr;
    a->nfloats = fl.len / 4;
    if (rc)
        return -1;
    r->external = sub.external;
    if (!a->name)
        return cmn_err_set (r->err, RXQ_E_FORMAT, "node '%s': AttributeProto without a name", node);
    if (!has_type) {
        //  IR version 1 models may omit the type: infer it from the field set.
        a->type = a->g ? CMN_ONNX_ATTR_GRAPH : a->t ? CMN_ONNX_ATTR_TENSOR
                : a->nfloats ? CMN_ONNX_ATTR_FLOATS : a->nints ? CMN_ONNX_ATTR_INTS
                : a->nstrings ? CMN_ONNX_ATTR_STRINGS : a->ntensors ? CMN_ONNX_ATTR_TENSORS
                : a->ngraphs ? CMN_ONNX_ATTR_GRAPHS : a->s.ptr ? CMN_ONNX_ATTR_STRING
                : a->f != 0 ? CMN_ONNX_ATTR_FLOAT : CMN_ONNX_ATTR_INT;
    }
    if (a->type < 0 || a->type > CMN_ONNX_ATTR_TYPE_PROTOS)
        return cmn_err_set (r->err, RXQ_E_FORMAT, "node '%s': attribute '%s' has unknown type %d",
                            node, a->name, a->type);
    return 0;
}

static int
s_node (s_rd_t *r, const uint8_t *p, size_t n, cmn_onnx_node_t *nd)
{
    s_rd_t sub = *r;
    sub.p = p;
    sub.end = p + n;
    int rc = 0;
    //  Attributes may come before the name: decode them after.
    const uint8_t **ap = NULL;
    size_t *an = NULL, nattr = 0;
    while (sub.p < sub.end && rc == 0) {
        const uint8_t *start = sub.p;
        uint64_t tag;
        if ((rc = s_varint (&sub, &tag, "NodeProto")))
            break;
        int wt = (int) (tag & 7);
        switch (tag >> 3) {
            case 1:
            case 2: {
                char ***arr = tag >> 3 == 1 ? &nd->inputs : &nd->outputs;
                size_t *cnt = tag >> 3 == 1 ? &nd->ninputs : &nd->noutputs;
                const char *what = tag >> 3 == 1 ? "NodeProto.input" : "NodeProto.output";
                if (!(rc = s_grow (&sub, (void **) arr, cnt, 1, sizeof (char *), what))) {
                    (*arr) [*cnt] = NULL;
                    if (!(rc = s_string (&sub, wt, &(*arr) [*cnt], what)))
                        (*cnt)++;
                }
                break;
            }
            case 3: rc = s_string (&sub, wt, &nd->name, "NodeProto.name"); break;
            case 4: rc = s_string (&sub, wt, &nd->op_type, "NodeProto.op_type"); break;
            case 7: rc = s_string (&sub, wt, &nd->domain, "NodeProto.domain"); break;
            case 5: {
                const uint8_t *q;
                size_t qn;
                size_t tmp = nattr;
                if (!(rc = s_expect (&sub, wt, WT_LEN, "NodeProto.attribute"))
                &&  !(rc = s_len (&sub, &q, &qn, "NodeProto.attribute"))
                &&  !(rc = s_grow (&sub, (void **) &ap, &tmp, 1, sizeof *ap, "NodeProto.attribute"))
                &&  !(rc = s_grow (&sub, (void **) &an, &nattr, 1, sizeof *an, "NodeProto.attribute"))) {
                    ap [nattr] = q;
                    an [nattr++] = qn;
                }
                break;
            }
            default: rc = s_unknown (&sub, start, wt, &nd->extra, "NodeProto"); break;
        }
    }
    if (rc == 0 && !nd->op_type)
        rc = cmn_err_set (r->err, RXQ_E_FORMAT, "node '%s': NodeProto without an op_type", nd->name ? nd->name : "");
    if (rc == 0 && ((!nd->name && !(nd->name = strdup ("")))
                ||  (!nd->domain && !(nd->domain = strdup ("")))))
        rc = cmn_err_set (r->err, RXQ_E_NOMEM, "NodeProto: out of memory");
    if (rc == 0 && nattr) {
        nd->attrs = calloc (nattr, sizeof *nd->attrs);
        if (!nd->attrs)
            rc = cmn_err_set (r->err, RXQ_E_NOMEM, "NodeProto: out of memory");
        for (size_t i = 0; i < nattr && rc == 0; i++) {
            nd->nattrs++;
            rc = s_attr (&sub, ap [i], an [i], &nd->attrs [i], nd->name [0] ? nd->name : nd->op_type);
        }
        r->external = sub.external;
    }
    free (ap);
    free (an);
    return rc;
}

static int
s_type (s_rd_t *r, const uint8_t *p, size_t n, cmn_onnx_value_info_t *vi)
{
    //  TypeProto: 1 tensor_type { 1 elem_type, 2 shape { 1 dim { 1 dim_value,
    //  2 dim_param, 3 denotation } } }. Anything else (or a denotation) is
    //  kept raw, so that the writer reproduces it exactly.
    vi->has_type = true;
    s_rd_t sub = *r;
    sub.p = p;
    sub.end = p + n;
    bool simple = true;
    const uint8_t *tt = NULL;
    size_t ttn = 0;
    while (sub.p < sub.end) {
        uint64_t tag;
        if (s_varint (&sub, &tag, "TypeProto"))
            return -1;
        int wt = (int) (tag & 7);
        if (tag >> 3 == 1 && wt == WT_LEN && !tt) {
            if (s_len (&sub, &tt, &ttn, "TypeProto.tensor_type"))
                return -1;
        }
        else {
            simple = false;
            if (s_skip (&sub, wt, "TypeProto"))
                return -1;
        }
    }
    if (simple && tt) {
        s_rd_t t = *r;
        t.p = tt;
        t.end = tt + ttn;
        while (simple && t.p < t.end) {
            uint64_t tag;
            if (s_varint (&t, &tag, "TypeProto.Tensor"))
                return -1;
            int wt = (int) (tag & 7);
            int64_t v;
            if (tag >> 3 == 1 && wt == WT_VARINT) {
                if (s_int (&t, wt, &v, "TypeProto.Tensor.elem_type"))
                    return -1;
                vi->elem_type = (int32_t) v;
            }
            else
            if (tag >> 3 == 2 && wt == WT_LEN && !vi->has_shape) {
                const uint8_t *sp;
                size_t sn;
                if (s_len (&t, &sp, &sn, "TypeProto.Tensor.shape"))
                    return -1;
                vi->has_shape = true;
                s_rd_t s = *r;
                s.p = sp;
                s.end = sp + sn;
                while (simple && s.p < s.end) {
                    if (s_varint (&s, &tag, "TensorShapeProto"))
                        return -1;
                    wt = (int) (tag & 7);
                    if (tag >> 3 != 1 || wt != WT_LEN || vi->ndims >= CMN_ONNX_MAX_DIMS) {
                        simple = false;
                        break;
                    }
                    const uint8_t *dp;
                    size_t dn;
                    if (s_len (&s, &dp, &dn, "TensorShapeProto.dim"))
                        return -1;
                    size_t k = vi->ndims++;
                    vi->dims [k] = -1;
                    s_rd_t d = *r;
                    d.p = dp;
                    d.end = dp + dn;
                    while (simple && d.p < d.end) {
                        if (s_varint (&d, &tag, "TensorShapeProto.Dimension"))
                            return -1;
                        wt = (int) (tag & 7);
                        if (tag >> 3 == 1 && wt == WT_VARINT) {
                            if (s_int (&d, wt, &v, "TensorShapeProto.Dimension.dim_value"))
                                return -1;
                            vi->dims [k] = v;
                        }
                        else
                        if (tag >> 3 == 2 && wt == WT_LEN) {
                            if (s_string (&d, wt, &vi->dim_params [k], "TensorShapeProto.Dimension.dim_param"))
                                return -1;
                        }
                        else
                            simple = false;
                    }
                }
            }
            else
                simple = false;
        }
    }
    if (!simple || !tt) {
        //  Keep it all raw; forget the partial decode.
        for (size_t k = 0; k < CMN_ONNX_MAX_DIMS; k++) {
            free (vi->dim_params [k]);
            vi->dim_params [k] = NULL;
        }
        vi->is_tensor = false;
        vi->has_shape = false;
        vi->ndims = 0;
        free (vi->type_raw.ptr);
        vi->type_raw.ptr = NULL;
        vi->type_raw.len = 0;
        if (s_append (&vi->type_raw, p, n))
            return cmn_err_set (r->err, RXQ_E_NOMEM, "TypeProto: out of memory");
        //  Still note the element type of a plain tensor for inference.
        return 0;
    }
    vi->is_tensor = true;
    return 0;
}

static int
s_value_info (s_rd_t *r, const uint8_t *p, size_t n, cmn_onnx_value_info_t *vi)
{
    s_rd_t sub = *r;
    sub.p = p;
    sub.end = p + n;
    int rc = 0;
    while (sub.p < sub.end && rc == 0) {
        const uint8_t *start = sub.p;
        uint64_t tag;
        if ((rc = s_varint (&sub, &tag, "ValueInfoProto")))
            break;
        int wt = (int) (tag & 7);
        if (tag >> 3 == 1)
            rc = s_string (&sub, wt, &vi->name, "ValueInfoProto.name");
        else
        if (tag >> 3 == 2 && !vi->has_type) {
            const uint8_t *q;
            size_t qn;
            if (!(rc = s_expect (&sub, wt, WT_LEN, "ValueInfoProto.type"))
            &&  !(rc = s_len (&sub, &q, &qn, "ValueInfoProto.type")))
                rc = s_type (&sub, q, qn, vi);
        }
        else
            rc = s_unknown (&sub, start, wt, &vi->extra, "ValueInfoProto");
    }
    if (rc == 0 && !vi->name && !(vi->name = strdup ("")))
        rc = cmn_err_set (r->err, RXQ_E_NOMEM, "ValueInfoProto: out of memory");
    return rc;
}

static int
s_rep_value_info (s_rd_t *r, int wt, cmn_onnx_value_info_t **arr, size_t *n, const char *what)
{
    const uint8_t *q;
    size_t qn;
    if (s_expect (r, wt, WT_LEN, what) || s_len (r, &q, &qn, what)
    ||  s_grow (r, (void **) arr, n, 1, sizeof **arr, what))
        return -1;
    cmn_onnx_value_info_t *vi = &(*arr) [*n];
    memset (vi, 0, sizeof *vi);
    (*n)++;
    return s_value_info (r, q, qn, vi);
}

static int
s_graph (s_rd_t *r, const uint8_t *p, size_t n, cmn_onnx_graph_t *g)
{
    s_rd_t sub = *r;
    sub.p = p;
    sub.end = p + n;
    int rc = 0;
    while (sub.p < sub.end && rc == 0) {
        const uint8_t *start = sub.p;
        uint64_t tag;
        if ((rc = s_varint (&sub, &tag, "GraphProto")))
            break;
        int wt = (int) (tag & 7);
        const uint8_t *q;
        size_t qn;
        switch (tag >> 3) {
            case 1:
                if (!(rc = s_expect (&sub, wt, WT_LEN, "GraphProto.node"))
                &&  !(rc = s_len (&sub, &q, &qn, "GraphProto.node"))) {
                    cmn_onnx_node_t *nd = g->nnodes >= r->lim->max_count ? NULL : calloc (1, sizeof *nd);
                    if (g->nnodes >= r->lim->max_count)
                        rc = cmn_err_set (r->err, RXQ_E_LIMIT, "GraphProto.node: more than %zu entries",
                                          r->lim->max_count);
                    else
                    if (!nd)
                        rc = cmn_err_set (r->err, RXQ_E_NOMEM, "GraphProto.node: out of memory");
                    else
                    if ((rc = s_node (&sub, q, qn, nd)) || (rc = cmn_onnx_graph_add_node (g, nd))) {
                        if (rc && r->err && r->err->code == 0)
                            cmn_err_set (r->err, RXQ_E_NOMEM, "GraphProto.node: out of memory");
                        cmn_onnx_node_free (nd);
                    }
                }
                break;
            case 2: rc = s_string (&sub, wt, &g->name, "GraphProto.name"); break;
            case 5: {
                cmn_onnx_tensor_t *t = NULL;
                if (g->ninits >= r->lim->max_count)
                    rc = cmn_err_set (r->err, RXQ_E_LIMIT, "GraphProto.initializer: more than %zu entries",
                                      r->lim->max_count);
                else
                if (!(rc = s_sub_tensor (&sub, wt, &t, "GraphProto.initializer"))
                &&  (rc = cmn_onnx_graph_add_init (g, t))) {
                    cmn_onnx_tensor_free (t);
                    rc = cmn_err_set (r->err, RXQ_E_NOMEM, "GraphProto.initializer: out of memory");
                }
                break;
            }
            case 11: rc = s_rep_value_info (&sub, wt, &g->inputs, &g->ninputs, "GraphProto.input"); break;
            case 12: rc = s_rep_value_info (&sub, wt, &g->outputs, &g->noutputs, "GraphProto.output"); break;
            case 13: rc = s_rep_value_info (&sub, wt, &g->vinfo, &g->nvinfo, "GraphProto.value_info"); break;
            default: rc = s_unknown (&sub, start, wt, &g->extra, "GraphProto"); break;
        }
    }
    if (rc == 0 && !g->name && !(g->name = strdup ("")))
        rc = cmn_err_set (r->err, RXQ_E_NOMEM, "GraphProto: out of memory");
    r->external = sub.external;
    return rc;
}

static int
s_model (s_rd_t *r, cmn_onnx_model_t *m)
{
    int rc = 0;
    bool has_graph = false;
    while (r->p < r->end && rc == 0) {
        const uint8_t *start = r->p;
        uint64_t tag;
        if ((rc = s_varint (r, &tag, "ModelProto")))
            break;
        int wt = (int) (tag & 7);
        switch (tag >> 3) {
            case 1: rc = s_int (r, wt, &m->ir_version, "ModelProto.ir_version"); break;
            case 2: rc = s_string (r, wt, &m->producer_name, "ModelProto.producer_name"); break;
            case 3: rc = s_string (r, wt, &m->producer_version, "ModelProto.producer_version"); break;
            case 4: rc = s_string (r, wt, &m->domain, "ModelProto.domain"); break;
            case 5:
                rc = s_int (r, wt, &m->model_version, "ModelProto.model_version");
                m->has_model_version = true;
                break;
            case 7:
                if (has_graph)
                    rc = cmn_err_set (r->err, RXQ_E_FORMAT, "ModelProto.graph: given twice");
                else
                    rc = s_sub_graph (r, wt, &m->graph, "ModelProto.graph");
                has_graph = true;
                break;
            case 8: {
                const uint8_t *q;
                size_t qn;
                if ((rc = s_expect (r, wt, WT_LEN, "ModelProto.opset_import"))
                ||  (rc = s_len (r, &q, &qn, "ModelProto.opset_import"))
                ||  (rc = s_grow (r, (void **) &m->opsets, &m->nopsets, 1, sizeof *m->opsets,
                                  "ModelProto.opset_import")))
                    break;
                cmn_onnx_opset_t *o = &m->opsets [m->nopsets++];
                o->domain = NULL;
                o->version = 0;
                s_rd_t sub = *r;
                sub.p = q;
                sub.end = q + qn;
                while (sub.p < sub.end && rc == 0) {
                    uint64_t t2;
                    if ((rc = s_varint (&sub, &t2, "OperatorSetIdProto")))
                        break;
                    int w2 = (int) (t2 & 7);
                    if (t2 >> 3 == 1)
                        rc = s_string (&sub, w2, &o->domain, "OperatorSetIdProto.domain");
                    else
                    if (t2 >> 3 == 2)
                        rc = s_int (&sub, w2, &o->version, "OperatorSetIdProto.version");
                    else
                        rc = s_skip (&sub, w2, "OperatorSetIdProto");
                }
                if (rc == 0 && !o->domain && !(o->domain = strdup ("")))
                    rc = cmn_err_set (r->err, RXQ_E_NOMEM, "ModelProto.opset_import: out of memory");
                break;
            }
            default: rc = s_unknown (r, start, wt, &m->extra, "ModelProto"); break;
        }
    }
    if (rc == 0 && !has_graph)
        rc = cmn_err_set (r->err, RXQ_E_FORMAT, "ModelProto: no graph");
    return rc;
}

cmn_onnx_model_t *
cmn_onnx_read (const void *buf, size_t len, const char *dir,
               const cmn_onnx_limits_t *limits, cmn_err_t *err)
{
    cmn_err_clear (err);
    if (!limits)
        limits = &cmn_onnx_limits_default;
    if (!buf && len)
        return cmn_err_set (err, RXQ_E_INVAL, "no buffer"), NULL;
    if (len > limits->max_size) {
        cmn_err_set (err, RXQ_E_LIMIT, "model of %zu bytes over the %zu-byte limit", len, limits->max_size);
        return NULL;
    }
    cmn_onnx_model_t *m = calloc (1, sizeof *m);
    if (!m) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    s_rd_t r = { buf, (const uint8_t *) buf + len, limits, dir, 0, 0, err };
    if (s_model (&r, m)) {
        if (err && err->code == 0)
            cmn_err_set (err, RXQ_E_FORMAT, "malformed model");
        cmn_onnx_destroy (&m);
        return NULL;
    }
    return m;
}

cmn_onnx_model_t *
cmn_onnx_load (const char *path, const cmn_onnx_limits_t *limits, cmn_err_t *err)
{
    if (!limits)
        limits = &cmn_onnx_limits_default;
    FILE *f = fopen (path, "rb");
    if (!f) {
        cmn_err_set (err, RXQ_E_IO, "cannot open '%s': %s", path, strerror (errno));
        return NULL;
    }
    struct stat st;
    if (fstat (fileno (f), &st) || !S_ISREG (st.st_mode)) {
        fclose (f);
        cmn_err_set (err, RXQ_E_IO, "'%s' is not a regular file", path);
        return NULL;
    }
    if ((uint64_t) st.st_size > limits->max_size) {
        fclose (f);
        cmn_err_set (err, RXQ_E_LIMIT, "'%s': %lld bytes over the %zu-byte limit", path,
                     (long long) st.st_size, limits->max_size);
        return NULL;
    }
    size_t len = (size_t) st.st_size;
    uint8_t *buf = malloc (len ? len : 1);
    if (!buf) {
        fclose (f);
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory reading '%s'", path);
        return NULL;
    }
    if (fread (buf, 1, len, f) != len) {
        free (buf);
        fclose (f);
        cmn_err_set (err, RXQ_E_IO, "cannot read '%s'", path);
        return NULL;
    }
    fclose (f);
    char dir [4096];
    snprintf (dir, sizeof dir, "%s", path);
    char *slash = strrchr (dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy (dir, ".");
    cmn_onnx_model_t *m = cmn_onnx_read (buf, len, dir, limits, err);
    free (buf);
    return m;
}

//  ---------------------------------------------------------------------
//  Writer

typedef struct {
    uint8_t *p;     // bytes
    size_t len;     // bytes used
    size_t cap;     // bytes allocated
    bool oom;       // an allocation failed: the buffer is incomplete
} s_wr_t;

static void
s_put (s_wr_t *w, const void *p, size_t n)
{
    if (w->oom || n == 0)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *q = realloc (w->p, cap);
        if (!q) {
            w->oom = true;
            return;
        }
        w->p = q;
        w->cap = cap;
    }
    memcpy (w->p + w->len, p, n);
    w->len += n;
}

static void
s_put_varint (s_wr_t *w, uint64_t v)
{
    uint8_t b [10];
    size_t n = 0;
    do {
        b [n] = (uint8_t) (v & 0x7f);
        v >>= 7;
        if (v)
            b [n] |= 0x80;
        n++;
    } while (v);
    s_put (w, b, n);
}

static void
s_put_tag (s_wr_t *w, int field, int wt)
{
    s_put_varint (w, ((uint64_t) field << 3) | (uint64_t) wt);
}

static void
s_put_int (s_wr_t *w, int field, int64_t v)
{
    s_put_tag (w, field, WT_VARINT);
    s_put_varint (w, (uint64_t) v);
}

static void
s_put_bytes (s_wr_t *w, int field, const void *p, size_t n)
{
    s_put_tag (w, field, WT_LEN);
    s_put_varint (w, n);
    s_put (w, p, n);
}

static void
s_put_str (s_wr_t *w, int field, const char *s)
{
    s_put_bytes (w, field, s, strlen (s));
}

//  Appends SUB as a length-delimited field and frees it.
static void
s_put_sub (s_wr_t *w, int field, s_wr_t *sub)
{
    if (sub->oom)
        w->oom = true;
    s_put_bytes (w, field, sub->p, sub->len);
    free (sub->p);
    memset (sub, 0, sizeof *sub);
}

static void s_w_graph (s_wr_t *w, const cmn_onnx_graph_t *g);

static void
s_w_tensor (s_wr_t *w, const cmn_onnx_tensor_t *t)
{
    if (t->ndims) {
        s_wr_t d = { 0 };
        for (size_t i = 0; i < t->ndims; i++)
            s_put_varint (&d, (uint64_t) t->dims [i]);
        s_put_sub (w, 1, &d);
    }
    s_put_int (w, 2, t->data_type);
    for (size_t i = 0; i < t->nstrings; i++)
        s_put_bytes (w, 6, t->strings [i].ptr, t->strings [i].len);
    if (t->name [0])
        s_put_str (w, 8, t->name);
    if (t->data_type != CMN_ONNX_STRING)
        s_put_bytes (w, 9, t->raw, t->raw_size);
    s_put (w, t->extra.ptr, t->extra.len);
}

static void
s_w_attr (s_wr_t *w, const cmn_onnx_attr_t *a)
{
    s_wr_t sub = { 0 };
    s_put_str (w, 1, a->name);
    switch (a->type) {
        case CMN_ONNX_ATTR_FLOAT: s_put_tag (w, 2, WT_I32); s_put (w, &a->f, 4); break;
        case CMN_ONNX_ATTR_INT: s_put_int (w, 3, a->i); break;
        case CMN_ONNX_ATTR_STRING: s_put_bytes (w, 4, a->s.ptr, a->s.len); break;
        default: break;
    }
    if (a->t) {
        s_w_tensor (&sub, a->t);
        s_put_sub (w, 5, &sub);
    }
    if (a->g) {
        s_w_graph (&sub, a->g);
        s_put_sub (w, 6, &sub);
    }
    if (a->nfloats)
        s_put_bytes (w, 7, a->floats, a->nfloats * 4);
    if (a->nints) {
        for (size_t i = 0; i < a->nints; i++)
            s_put_varint (&sub, (uint64_t) a->ints [i]);
        s_put_sub (w, 8, &sub);
    }
    for (size_t i = 0; i < a->nstrings; i++)
        s_put_bytes (w, 9, a->strings [i].ptr, a->strings [i].len);
    for (size_t i = 0; i < a->ntensors; i++) {
        s_w_tensor (&sub, a->tensors [i]);
        s_put_sub (w, 10, &sub);
    }
    for (size_t i = 0; i < a->ngraphs; i++) {
        s_w_graph (&sub, a->graphs [i]);
        s_put_sub (w, 11, &sub);
    }
    if (a->ref_attr_name)
        s_put_str (w, 21, a->ref_attr_name);
    s_put_int (w, 20, a->type);
    s_put (w, a->extra.ptr, a->extra.len);
}

static void
s_w_node (s_wr_t *w, const cmn_onnx_node_t *n)
{
    for (size_t i = 0; i < n->ninputs; i++)
        s_put_str (w, 1, n->inputs [i]);
    for (size_t i = 0; i < n->noutputs; i++)
        s_put_str (w, 2, n->outputs [i]);
    if (n->name [0])
        s_put_str (w, 3, n->name);
    s_put_str (w, 4, n->op_type);
    for (size_t i = 0; i < n->nattrs; i++) {
        s_wr_t sub = { 0 };
        s_w_attr (&sub, &n->attrs [i]);
        s_put_sub (w, 5, &sub);
    }
    if (n->domain [0])
        s_put_str (w, 7, n->domain);
    s_put (w, n->extra.ptr, n->extra.len);
}

static void
s_w_value_info (s_wr_t *w, const cmn_onnx_value_info_t *vi)
{
    s_put_str (w, 1, vi->name);
    if (vi->has_type) {
        if (vi->is_tensor) {
            s_wr_t tt = { 0 }, type = { 0 };
            if (vi->elem_type)
                s_put_int (&tt, 1, vi->elem_type);
            if (vi->has_shape) {
                s_wr_t shape = { 0 };
                for (size_t i = 0; i < vi->ndims; i++) {
                    s_wr_t dim = { 0 };
                    if (vi->dim_params [i])
                        s_put_str (&dim, 2, vi->dim_params [i]);
                    else
                    if (vi->dims [i] >= 0)
                        s_put_int (&dim, 1, vi->dims [i]);
                    s_put_sub (&shape, 1, &dim);
                }
                s_put_sub (&tt, 2, &shape);
            }
            s_put_sub (&type, 1, &tt);
            s_put_sub (w, 2, &type);
        }
        else
            s_put_bytes (w, 2, vi->type_raw.ptr, vi->type_raw.len);
    }
    s_put (w, vi->extra.ptr, vi->extra.len);
}

static void
s_w_graph (s_wr_t *w, const cmn_onnx_graph_t *g)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        s_wr_t sub = { 0 };
        s_w_node (&sub, g->nodes [i]);
        s_put_sub (w, 1, &sub);
    }
    s_put_str (w, 2, g->name);
    for (size_t i = 0; i < g->ninits; i++) {
        s_wr_t sub = { 0 };
        s_w_tensor (&sub, g->inits [i]);
        s_put_sub (w, 5, &sub);
    }
    for (int f = 11; f <= 13; f++) {
        const cmn_onnx_value_info_t *arr = f == 11 ? g->inputs : f == 12 ? g->outputs : g->vinfo;
        size_t n = f == 11 ? g->ninputs : f == 12 ? g->noutputs : g->nvinfo;
        for (size_t i = 0; i < n; i++) {
            s_wr_t sub = { 0 };
            s_w_value_info (&sub, &arr [i]);
            s_put_sub (w, f, &sub);
        }
    }
    s_put (w, g->extra.ptr, g->extra.len);
}

int
cmn_onnx_write (const cmn_onnx_model_t *m, uint8_t **out, size_t *out_len, cmn_err_t *err)
{
    assert (m && m->graph && out && out_len);
    s_wr_t w = { 0 };
    s_put_int (&w, 1, m->ir_version);
    if (m->producer_name)
        s_put_str (&w, 2, m->producer_name);
    if (m->producer_version)
        s_put_str (&w, 3, m->producer_version);
    if (m->domain)
        s_put_str (&w, 4, m->domain);
    if (m->has_model_version)
        s_put_int (&w, 5, m->model_version);
    s_wr_t sub = { 0 };
    s_w_graph (&sub, m->graph);
    s_put_sub (&w, 7, &sub);
    for (size_t i = 0; i < m->nopsets; i++) {
        s_put_str (&sub, 1, m->opsets [i].domain);
        s_put_int (&sub, 2, m->opsets [i].version);
        s_put_sub (&w, 8, &sub);
    }
    s_put (&w, m->extra.ptr, m->extra.len);
    if (w.oom) {
        free (w.p);
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory writing the model");
    }
    if (w.len > ((size_t) 2 << 30)) {
        free (w.p);
        return cmn_err_set (err, RXQ_E_LIMIT, "model of %zu bytes over protobuf's 2 GiB limit", w.len);
    }
    *out = w.p ? w.p : malloc (1);
    *out_len = w.len;
    return *out ? 0 : cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
}

int
cmn_onnx_save (const cmn_onnx_model_t *m, const char *path, cmn_err_t *err)
{
    uint8_t *buf;
    size_t len;
    if (cmn_onnx_write (m, &buf, &len, err))
        return -1;
    FILE *f = fopen (path, "wb");
    if (!f) {
        free (buf);
        return cmn_err_set (err, RXQ_E_IO, "cannot create '%s': %s", path, strerror (errno));
    }
    size_t wr = fwrite (buf, 1, len, f);
    free (buf);
    if (fclose (f) || wr != len)
        return cmn_err_set (err, RXQ_E_IO, "cannot write '%s'", path);
    return 0;
}

//  ---------------------------------------------------------------------
//  Freeing

void
cmn_onnx_tensor_free (cmn_onnx_tensor_t *t)
{
    if (!t)
        return;
    free (t->name);
    free (t->raw);
    for (size_t i = 0; i < t->nstrings; i++)
        free (t->strings [i].ptr);
    free (t->strings);
    free (t->extra.ptr);
    free (t);
}

static void
s_attr_clear (cmn_onnx_attr_t *a)
{
    free (a->name);
    free (a->s.ptr);
    cmn_onnx_tensor_free (a->t);
    cmn_onnx_graph_free (a->g);
    free (a->floats);
    free (a->ints);
    for (size_t i = 0; i < a->nstrings; i++)
        free (a->strings [i].ptr);
    free (a->strings);
    for (size_t i = 0; i < a->ntensors; i++)
        cmn_onnx_tensor_free (a->tensors [i]);
    free (a->tensors);
    for (size_t i = 0; i < a->ngraphs; i++)
        cmn_onnx_graph_free (a->graphs [i]);
    free (a->graphs);
    free (a->ref_attr_name);
    free (a->extra.ptr);
}

void
cmn_onnx_node_free (cmn_onnx_node_t *n)
{
    if (!n)
        return;
    free (n->name);
    free (n->op_type);
    free (n->domain);
    for (size_t i = 0; i < n->ninputs; i++)
        free (n->inputs [i]);
    free (n->inputs);
    for (size_t i = 0; i < n->noutputs; i++)
        free (n->outputs [i]);
    free (n->outputs);
    for (size_t i = 0; i < n->nattrs; i++)
        s_attr_clear (&n->attrs [i]);
    free (n->attrs);
    free (n->extra.ptr);
    free (n);
}

void
cmn_onnx_value_info_clear (cmn_onnx_value_info_t *vi)
{
    free (vi->name);
    for (size_t k = 0; k < CMN_ONNX_MAX_DIMS; k++)
        free (vi->dim_params [k]);
    free (vi->type_raw.ptr);
    free (vi->extra.ptr);
    memset (vi, 0, sizeof *vi);
}

void
cmn_onnx_graph_free (cmn_onnx_graph_t *g)
{
    if (!g)
        return;
    free (g->name);
    for (size_t i = 0; i < g->nnodes; i++)
        cmn_onnx_node_free (g->nodes [i]);
    free (g->nodes);
    for (size_t i = 0; i < g->ninits; i++)
        cmn_onnx_tensor_free (g->inits [i]);
    free (g->inits);
    for (size_t i = 0; i < g->ninputs; i++)
        cmn_onnx_value_info_clear (&g->inputs [i]);
    free (g->inputs);
    for (size_t i = 0; i < g->noutputs; i++)
        cmn_onnx_value_info_clear (&g->outputs [i]);
    free (g->outputs);
    for (size_t i = 0; i < g->nvinfo; i++)
        cmn_onnx_value_info_clear (&g->vinfo [i]);
    free (g->vinfo);
    free (g->extra.ptr);
    free (g);
}

void
cmn_onnx_destroy (cmn_onnx_model_t **self_p)
{
    assert (self_p);
    cmn_onnx_model_t *m = *self_p;
    if (!m)
        return;
    free (m->producer_name);
    free (m->producer_version);
    free (m->domain);
    cmn_onnx_graph_free (m->graph);
    for (size_t i = 0; i < m->nopsets; i++)
        free (m->opsets [i].domain);
    free (m->opsets);
    free (m->extra.ptr);
    free (m);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  Accessors and builders

int64_t
cmn_onnx_opset (const cmn_onnx_model_t *m, const char *domain)
{
    bool dflt = !domain [0] || strcmp (domain, "ai.onnx") == 0;
    for (size_t i = 0; i < m->nopsets; i++) {
        const char *d = m->opsets [i].domain;
        bool odflt = !d [0] || strcmp (d, "ai.onnx") == 0;
        if ((dflt && odflt) || (!dflt && strcmp (d, domain) == 0))
            return m->opsets [i].version;
    }
    return 0;
}

cmn_onnx_attr_t *
cmn_onnx_node_attr (const cmn_onnx_node_t *n, const char *name)
{
    for (size_t i = 0; i < n->nattrs; i++)
        if (strcmp (n->attrs [i].name, name) == 0)
            return &n->attrs [i];
    return NULL;
}

int64_t
cmn_onnx_node_attr_int (const cmn_onnx_node_t *n, const char *name, int64_t def)
{
    cmn_onnx_attr_t *a = cmn_onnx_node_attr (n, name);
    return a && a->type == CMN_ONNX_ATTR_INT ? a->i : def;
}

float
cmn_onnx_node_attr_float (const cmn_onnx_node_t *n, const char *name, float def)
{
    cmn_onnx_attr_t *a = cmn_onnx_node_attr (n, name);
    return a && a->type == CMN_ONNX_ATTR_FLOAT ? a->f : def;
}

static char **
s_strv (const char *const *v, size_t n)
{
    char **out = calloc (n ? n : 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(out [i] = strdup (v [i]))) {
            while (i--)
                free (out [i]);
            free (out);
            return NULL;
        }
    return out;
}

cmn_onnx_node_t *
cmn_onnx_node_new (const char *op_type, const char *name,
                   const char *const *inputs, size_t ninputs,
                   const char *const *outputs, size_t noutputs)
{
    cmn_onnx_node_t *n = calloc (1, sizeof *n);
    if (!n)
        return NULL;
    n->op_type = strdup (op_type);
    n->name = strdup (name ? name : "");
    n->domain = strdup ("");
    n->inputs = s_strv (inputs, ninputs);
    n->outputs = s_strv (outputs, noutputs);
    if (n->inputs)
        n->ninputs = ninputs;
    if (n->outputs)
        n->noutputs = noutputs;
    if (!n->op_type || !n->name || !n->domain || !n->inputs || !n->outputs) {
        cmn_onnx_node_free (n);
        return NULL;
    }
    return n;
}

cmn_onnx_tensor_t *
cmn_onnx_tensor_dup (const cmn_onnx_tensor_t *t)
{
    cmn_onnx_tensor_t *c = calloc (1, sizeof *c);
    if (!c)
        return NULL;
    *c = *t;
    c->name = strdup (t->name);
    c->raw = NULL;
    c->strings = NULL;
    c->nstrings = 0;
    c->extra.ptr = NULL;
    c->extra.len = 0;
    bool ok = c->name != NULL;
    if (ok && t->raw) {
        c->raw = malloc (t->raw_size ? t->raw_size : 1);
        ok = c->raw != NULL;
        if (ok)
            memcpy (c->raw, t->raw, t->raw_size);
    }
    if (ok && t->nstrings) {
        c->strings = calloc (t->nstrings, sizeof *c->strings);
        ok = c->strings != NULL;
        for (size_t i = 0; ok && i < t->nstrings; i++) {
            c->nstrings++;
            ok = s_append (&c->strings [i], t->strings [i].ptr, t->strings [i].len) == 0;
        }
    }
    if (ok)
        ok = s_append (&c->extra, t->extra.ptr, t->extra.len) == 0;
    if (!ok) {
        cmn_onnx_tensor_free (c);
        return NULL;
    }
    return c;
}

cmn_onnx_tensor_t *
cmn_onnx_tensor_new (const char *name, int32_t data_type, const int64_t *dims, size_t ndims)
{
    assert (ndims <= CMN_ONNX_MAX_DIMS);
    assert (data_type != CMN_ONNX_STRING && cmn_onnx_dtype_size (data_type));
    cmn_onnx_tensor_t *t = calloc (1, sizeof *t);
    if (!t)
        return NULL;
    t->name = strdup (name);
    t->data_type = data_type;
    t->ndims = ndims;
    for (size_t i = 0; i < ndims; i++)
        t->dims [i] = dims [i];
    int64_t bytes = s_raw_bytes (data_type, cmn_onnx_tensor_numel (t));
    t->raw_size = bytes > 0 ? (size_t) bytes : 0;
    t->raw = bytes >= 0 ? calloc (1, t->raw_size ? t->raw_size : 1) : NULL;
    if (!t->name || !t->raw) {
        cmn_onnx_tensor_free (t);
        return NULL;
    }
    return t;
}

static int
s_attr_copy (cmn_onnx_attr_t *d, const cmn_onnx_attr_t *a)
{
    //  Only the scalar and list kinds the optimizer creates are copied
    //  deeply here; tensors and graphs are copied by their own dup.
    memset (d, 0, sizeof *d);
    d->type = a->type;
    d->f = a->f;
    d->i = a->i;
    d->name = strdup (a->name);
    if (!d->name)
        return -1;
    if (a->s.len && s_append (&d->s, a->s.ptr, a->s.len))
        return -1;
    if (a->nints) {
        d->ints = malloc (a->nints * sizeof *d->ints);
        if (!d->ints)
            return -1;
        memcpy (d->ints, a->ints, a->nints * sizeof *d->ints);
        d->nints = a->nints;
    }
    if (a->nfloats) {
        d->floats = malloc (a->nfloats * sizeof *d->floats);
        if (!d->floats)
            return -1;
        memcpy (d->floats, a->floats, a->nfloats * sizeof *d->floats);
        d->nfloats = a->nfloats;
    }
    if (a->t && !(d->t = cmn_onnx_tensor_dup (a->t)))
        return -1;
    assert (!a->g && !a->ngraphs && !a->ntensors && !a->nstrings);
    return 0;
}

int
cmn_onnx_node_add_attr (cmn_onnx_node_t *n, const cmn_onnx_attr_t *a)
{
    cmn_onnx_attr_t *q = realloc (n->attrs, (n->nattrs + 1) * sizeof *q);
    if (!q)
        return -1;
    n->attrs = q;
    if (s_attr_copy (&q [n->nattrs], a)) {
        s_attr_clear (&q [n->nattrs]);
        return -1;
    }
    n->nattrs++;
    return 0;
}

int
cmn_onnx_node_set_int (cmn_onnx_node_t *n, const char *name, int64_t v)
{
    cmn_onnx_attr_t a = { .name = (char *) name, .type = CMN_ONNX_ATTR_INT, .i = v };
    return cmn_onnx_node_add_attr (n, &a);
}

int
cmn_onnx_node_set_float (cmn_onnx_node_t *n, const char *name, float v)
{
    cmn_onnx_attr_t a = { .name = (char *) name, .type = CMN_ONNX_ATTR_FLOAT, .f = v };
    return cmn_onnx_node_add_attr (n, &a);
}

int
cmn_onnx_node_set_ints (cmn_onnx_node_t *n, const char *name, const int64_t *v, size_t cnt)
{
    cmn_onnx_attr_t a = { .name = (char *) name, .type = CMN_ONNX_ATTR_INTS,
                          .ints = (int64_t *) v, .nints = cnt };
    return cmn_onnx_node_add_attr (n, &a);
}

int
cmn_onnx_node_set_input (cmn_onnx_node_t *n, size_t i, const char *name)
{
    assert (i < n->ninputs);
    char *s = strdup (name);
    if (!s)
        return -1;
    free (n->inputs [i]);
    n->inputs [i] = s;
    return 0;
}

int
cmn_onnx_node_add_input (cmn_onnx_node_t *n, const char *name)
{
    char **q = realloc (n->inputs, (n->ninputs + 1) * sizeof *q);
    if (!q)
        return -1;
    n->inputs = q;
    if (!(q [n->ninputs] = strdup (name)))
        return -1;
    n->ninputs++;
    return 0;
}

//  Appends ITEM to the array ARR of COUNT entries and capacity CAP,
//  doubling it (from 16) when full. Evaluates to 0, or -1 out of memory.
#define S_APPEND(arr, count, cap, item) \
    ((count) == (cap) && s_double ((void *) &(arr), &(cap), sizeof *(arr)) \
     ? -1 : ((arr) [(count)++] = (item), 0))

//  Doubles the capacity of the array at *ARR_P (elements of SIZE bytes).
static int
s_double (void *arr_p, size_t *cap, size_t size)
{
    size_t want = *cap ? *cap * 2 : 16;
    void *old;
    memcpy (&old, arr_p, sizeof old);
    void *q = realloc (old, want * size);
    if (!q)
        return -1;
    memcpy (arr_p, &q, sizeof q);
    *cap = want;
    return 0;
}

int
cmn_onnx_graph_add_node (cmn_onnx_graph_t *g, cmn_onnx_node_t *n)
{
    return S_APPEND (g->nodes, g->nnodes, g->cap_nodes, n);
}

int
cmn_onnx_graph_add_init (cmn_onnx_graph_t *g, cmn_onnx_tensor_t *t)
{
    return S_APPEND (g->inits, g->ninits, g->cap_inits, t);
}

ssize_t
cmn_onnx_graph_find_init (const cmn_onnx_graph_t *g, const char *name)
{
    for (size_t i = 0; i < g->ninits; i++)
        if (strcmp (g->inits [i]->name, name) == 0)
            return (ssize_t) i;
    return -1;
}
