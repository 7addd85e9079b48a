/*  cmn_gguf: GGUF v3 reader. See cmn_gguf.h and docs/formats.md.
 *
 *  Parsing is one forward pass over the buffer with a cursor that refuses
 *  to read past the end. Before allocating for a declared count, the count
 *  is multiplied by the smallest size one entry can take in the file and
 *  compared with the bytes that remain, so allocations never exceed a
 *  small multiple of the file size, whatever the file declares.
 */
#include "cmn_gguf.h"
#include "cmn_quant.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const cmn_gguf_limits_t cmn_gguf_limits_default = {
    .max_tensors = 65536,
    .max_kv = 65536,
    .max_str = 16u << 20,
    .max_array = 16u << 20,
    .max_depth = 4,
};

typedef struct {
    char *key;                  // NUL-terminated copy
    cmn_gguf_value_t value;     // strings and scalar arrays point into the buffer
} s_kv_t;

struct _cmn_gguf_t {
    const uint8_t *buf;         // the file
    size_t len;                 // bytes in buf
    void *map;                  // mmap'd region when opened from a file, else NULL
    size_t map_len;             // bytes mapped
    uint32_t version;           // always 3
    size_t alignment;           // data section alignment, bytes
    size_t data_offset;         // start of the data section in buf
    s_kv_t *kvs;                // metadata in file order
    size_t n_kv;                // entries of kvs
    cmn_gguf_tensor_t *tensors; // tensor infos in file order
    size_t n_tensors;           // entries of tensors
    size_t *by_name;            // tensor indices sorted by name
    bool private_file;          // rxq.private is true
};

//  Smallest encoding of one entry in the file, for count checks.
#define S_MIN_STRING   8        // uint64 length, no bytes
#define S_MIN_KV       (8 + 4 + 1)  // empty key, type, 1-byte value
#define S_MIN_TENSOR   (8 + 4 + 4 + 8) // empty name, n_dims 0, type, offset
#define S_MIN_ARRAY    (4 + 8)  // element type, count

size_t
cmn_gguf_type_size (int type)
{
    switch (type) {
        case CMN_GGUF_UINT8: case CMN_GGUF_INT8: case CMN_GGUF_BOOL: return 1;
        case CMN_GGUF_UINT16: case CMN_GGUF_INT16: return 2;
        case CMN_GGUF_UINT32: case CMN_GGUF_INT32: case CMN_GGUF_FLOAT32: return 4;
        case CMN_GGUF_UINT64: case CMN_GGUF_INT64: case CMN_GGUF_FLOAT64: return 8;
        default: return 0;
    }
}

const char *
cmn_gguf_type_name (int type)
{
    static const char *names [] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
        "bool", "string", "array", "uint64", "int64", "float64"
    };
    if (type < 0 || type > CMN_GGUF_FLOAT64)
        return "unknown";
    return names [type];
}

//  --------------------------------------------------------------------------
//  Cursor

typedef struct {
    const uint8_t *buf;         // whole file
    size_t len;                 // bytes in buf
    size_t pos;                 // next byte to read
    const cmn_gguf_limits_t *limits;
    cmn_err_t *err;
    char what [160];            // field being read, for messages
} s_cursor_t;

static size_t
s_left (const s_cursor_t *c)
{
    return c->len - c->pos;
}

static int
s_read (s_cursor_t *c, void *out, size_t n, const char *field)
{
    if (s_left (c) < n)
        return cmn_err_set (c->err, RXQ_E_FORMAT_TRUNC,
                            "%s: truncated reading %s at offset %zu (%zu bytes needed, %zu left)",
                            c->what, field, c->pos, n, s_left (c));
    memcpy (out, c->buf + c->pos, n);
    c->pos += n;
    return 0;
}

static int
s_read_u32 (s_cursor_t *c, uint32_t *out, const char *field)
{
    return s_read (c, out, 4, field);
}

static int
s_read_u64 (s_cursor_t *c, uint64_t *out, const char *field)
{
    return s_read (c, out, 8, field);
}

//  Reads a GGUF string (uint64 length + bytes) without copying.
static int
s_read_str (s_cursor_t *c, const char **ptr, size_t *len, const char *field)
{
    uint64_t n = 0;
    if (s_read_u64 (c, &n, field))
        return -1;
    if (n > s_left (c))
        return cmn_err_set (c->err, RXQ_E_FORMAT_TRUNC,
                            "%s: %s length %llu at offset %zu runs past the end of the file"
                            " (%zu bytes left)", c->what, field, (unsigned long long) n,
                            c->pos - 8, s_left (c));
    if (n > c->limits->max_str)
        return cmn_err_set (c->err, RXQ_E_LIMIT, "%s: %s length %llu exceeds the limit of %zu",
                            c->what, field, (unsigned long long) n, c->limits->max_str);
    *ptr = (const char *) c->buf + c->pos;
    *len = (size_t) n;
    c->pos += (size_t) n;
    return 0;
}

//  Copies a name (key or tensor name) into a NUL-terminated string; names
//  with a NUL byte inside are refused, as C lookups could not find them.
static char *
s_copy_name (s_cursor_t *c, const char *ptr, size_t len, const char *field)
{
    if (memchr (ptr, 0, len)) {
        cmn_err_set (c->err, RXQ_E_FORMAT, "%s: %s contains a NUL byte", c->what, field);
        return NULL;
    }
    char *s = malloc (len + 1);
    if (!s) {
        cmn_err_set (c->err, RXQ_E_NOMEM, "%s: out of memory", c->what);
        return NULL;
    }
    memcpy (s, ptr, len);
    s [len] = 0;
    return s;
}

//  Prints LEN bytes of a name into OUT for messages, truncating long ones
//  and replacing unprintable bytes.
static void
s_print_name (char *out, size_t out_size, const char *ptr, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < out_size; i++)
        out [n++] = (ptr [i] >= 0x20 && ptr [i] < 0x7f) ? ptr [i] : '?';
    if (len > 0 && n + 4 >= out_size && n >= 3)
        memcpy (out + n - 3, "...", 3);
    out [n] = 0;
}

//  --------------------------------------------------------------------------
//  Values

static void
s_value_free (cmn_gguf_value_t *v)
{
    if (v->type != CMN_GGUF_ARRAY || !v->v.arr.items)
        return;
    cmn_gguf_value_t *items = (cmn_gguf_value_t *) v->v.arr.items;
    for (size_t i = 0; i < v->v.arr.n; i++)
        s_value_free (&items [i]);
    free (items);
    v->v.arr.items = NULL;
}

//  Decodes a scalar of TYPE from P (little-endian, maybe unaligned).
static void
s_scalar_from (cmn_gguf_type_t type, const uint8_t *p, cmn_gguf_value_t *out)
{
    out->type = type;
    switch (type) {
        case CMN_GGUF_UINT8:  out->v.u = p [0]; break;
        case CMN_GGUF_INT8:   out->v.i = (int8_t) p [0]; break;
        case CMN_GGUF_BOOL:   out->v.b = p [0] != 0; break;
        case CMN_GGUF_UINT16: { uint16_t x; memcpy (&x, p, 2); out->v.u = x; break; }
        case CMN_GGUF_INT16:  { int16_t x; memcpy (&x, p, 2); out->v.i = x; break; }
        case CMN_GGUF_UINT32: { uint32_t x; memcpy (&x, p, 4); out->v.u = x; break; }
        case CMN_GGUF_INT32:  { int32_t x; memcpy (&x, p, 4); out->v.i = x; break; }
        case CMN_GGUF_FLOAT32:{ float x; memcpy (&x, p, 4); out->v.f = x; break; }
        case CMN_GGUF_UINT64: { uint64_t x; memcpy (&x, p, 8); out->v.u = x; break; }
        case CMN_GGUF_INT64:  { int64_t x; memcpy (&x, p, 8); out->v.i = x; break; }
        case CMN_GGUF_FLOAT64:{ double x; memcpy (&x, p, 8); out->v.f = x; break; }
        default: assert (false);
    }
}

static int s_read_value (s_cursor_t *c, uint32_t type, int depth, cmn_gguf_value_t *out);

static int
s_read_array (s_cursor_t *c, int depth, cmn_gguf_value_t *out)
{
    if (depth > c->limits->max_depth)
        return cmn_err_set (c->err, RXQ_E_LIMIT, "%s: arrays nested deeper than %d",
                            c->what, c->limits->max_depth);
    uint32_t elem = 0;
    uint64_t n = 0;
    if (s_read_u32 (c, &elem, "array element type") || s_read_u64 (c, &n, "array length"))
        return -1;
    if (elem > CMN_GGUF_FLOAT64)
        return cmn_err_set (c->err, RXQ_E_FORMAT_TYPE, "%s: unknown array element type %u",
                            c->what, elem);
    size_t min_size = cmn_gguf_type_size ((int) elem);
    if (elem == CMN_GGUF_STRING)
        min_size = S_MIN_STRING;
    else
    if (elem == CMN_GGUF_ARRAY)
        min_size = S_MIN_ARRAY;
    if (n > s_left (c) / min_size)
        return cmn_err_set (c->err, RXQ_E_FORMAT_TRUNC,
                            "%s: array of %llu %s elements does not fit in the %zu bytes left",
                            c->what, (unsigned long long) n, cmn_gguf_type_name ((int) elem),
                            s_left (c));
    if (n > c->limits->max_array)
        return cmn_err_set (c->err, RXQ_E_LIMIT, "%s: array of %llu elements exceeds the limit of %zu",
                            c->what, (unsigned long long) n, c->limits->max_array);
    out->type = CMN_GGUF_ARRAY;
    out->v.arr.elem = (cmn_gguf_type_t) elem;
    out->v.arr.n = (size_t) n;
    out->v.arr.raw = NULL;
    out->v.arr.items = NULL;
    if (elem != CMN_GGUF_STRING && elem != CMN_GGUF_ARRAY) {
        //  Scalars stay in the buffer; only bools are checked one by one.
        out->v.arr.raw = c->buf + c->pos;
        if (elem == CMN_GGUF_BOOL)
            for (size_t i = 0; i < n; i++)
                if (c->buf [c->pos + i] > 1)
                    return cmn_err_set (c->err, RXQ_E_FORMAT,
                                        "%s: bool array element %zu is %u, not 0 or 1",
                                        c->what, i, c->buf [c->pos + i]);
        c->pos += (size_t) n * min_size;
        return 0;
    }
    if (n == 0)
        return 0;
    cmn_gguf_value_t *items = calloc ((size_t) n, sizeof *items);
    if (!items)
        return cmn_err_set (c->err, RXQ_E_NOMEM, "%s: out of memory for %llu array elements",
                            c->what, (unsigned long long) n);
    out->v.arr.items = items;
    for (size_t i = 0; i < n; i++) {
        //  Mark as scalars so a partial array frees cleanly.
        items [i].type = CMN_GGUF_UINT8;
        if (s_read_value (c, elem, depth, &items [i])) {
            s_value_free (out);
            return -1;
        }
    }
    return 0;
}

//  Reads one value of TYPE. DEPTH is the nesting of arrays around it.
static int
s_read_value (s_cursor_t *c, uint32_t type, int depth, cmn_gguf_value_t *out)
{
    if (type == CMN_GGUF_STRING) {
        out->type = CMN_GGUF_STRING;
        return s_read_str (c, &out->v.str.ptr, &out->v.str.len, "string value");
    }
    if (type == CMN_GGUF_ARRAY)
        return s_read_array (c, depth + 1, out);
    size_t size = cmn_gguf_type_size ((int) type);
    if (size == 0)
        return cmn_err_set (c->err, RXQ_E_FORMAT_TYPE, "%s: unknown value type %u", c->what, type);
    if (s_left (c) < size)
        return cmn_err_set (c->err, RXQ_E_FORMAT_TRUNC,
                            "%s: truncated reading a %s value at offset %zu",
                            c->what, cmn_gguf_type_name ((int) type), c->pos);
    if (type == CMN_GGUF_BOOL && c->buf [c->pos] > 1)
        return cmn_err_set (c->err, RXQ_E_FORMAT, "%s: bool value is %u, not 0 or 1",
                            c->what, c->buf [c->pos]);
    s_scalar_from ((cmn_gguf_type_t) type, c->buf + c->pos, out);
    c->pos += size;
    return 0;
}

void
cmn_gguf_array_get (const cmn_gguf_value_t *arr, size_t i, cmn_gguf_value_t *out)
{
    assert (arr && arr->type == CMN_GGUF_ARRAY && arr->v.arr.raw);
    assert (i < arr->v.arr.n);
    size_t size = cmn_gguf_type_size (arr->v.arr.elem);
    s_scalar_from (arr->v.arr.elem, (const uint8_t *) arr->v.arr.raw + i * size, out);
}

//  --------------------------------------------------------------------------
//  Parsing

static int
s_cmp_name (const void *a, const void *b, void *arg)
{
    const cmn_gguf_tensor_t *t = arg;
    return strcmp (t [*(const size_t *) a].name, t [*(const size_t *) b].name);
}

static int
s_cmp_kv (const void *a, const void *b)
{
    return strcmp ((*(const s_kv_t *const *) a)->key, (*(const s_kv_t *const *) b)->key);
}

static int
s_parse_header (cmn_gguf_t *self, s_cursor_t *c, uint64_t *n_tensors, uint64_t *n_kv)
{
    snprintf (c->what, sizeof c->what, "header");
    uint32_t magic = 0;
    if (s_read_u32 (c, &magic, "magic"))
        return -1;
    if (magic != CMN_GGUF_MAGIC)
        return cmn_err_set (c->err, RXQ_E_FORMAT_MAGIC,
                            "invalid magic 0x%08x: not a GGUF file (expected \"GGUF\")", magic);
    if (s_read_u32 (c, &self->version, "version"))
        return -1;
    if (self->version != CMN_GGUF_VERSION)
        return cmn_err_set (c->err, RXQ_E_FORMAT_VERSION,
                            "unsupported GGUF version %u (rxq reads version 3; convert "
                            "older files with llama.cpp's tools)", self->version);
    if (s_read_u64 (c, n_tensors, "tensor count") || s_read_u64 (c, n_kv, "metadata count"))
        return -1;
    if (*n_kv > s_left (c) / S_MIN_KV)
        return cmn_err_set (c->err, RXQ_E_FORMAT_TRUNC,
                            "header: %llu metadata pairs cannot fit in the %zu bytes left",
                            (unsigned long long) *n_kv, s_left (c));
    if (*n_kv > c->limits->max_kv)
        return cmn_err_set (c->err, RXQ_E_LIMIT, "header: %llu metadata pairs exceed the limit of %zu",
                            (unsigned long long) *n_kv, c->limits->max_kv);
    //  Tensor infos follow the metadata: the byte check here is loose (the
    //  metadata takes room too) and is repeated before they are allocated.
    if (*n_tensors > s_left (c) / S_MIN_TENSOR)
        return cmn_err_set (c->err, RXQ_E_FORMAT_TRUNC,
                            "header: %llu tensors cannot fit in the %zu bytes left",
                            (unsigned long long) *n_tensors, s_left (c));
    if (*n_tensors > c->limits->max_tensors)
        return cmn_err_set (c->err, RXQ_E_LIMIT, "header: %llu tensors exceed the limit of %zu",
                            (unsigned long long) *n_tensors, c->limits->max_tensors);
    return 0;
}

static int
s_parse_kvs (cmn_gguf_t *self, s_cursor_t *c, size_t n_kv)
{
    self->kvs = calloc (n_kv ? n_kv : 1, sizeof *self->kvs);
    if (!self->kvs)
        return cmn_err_set (c->err, RXQ_E_NOMEM, "out of memory for %zu metadata pairs", n_kv);
    for (size_t i = 0; i < n_kv; i++) {
        snprintf (c->what, sizeof c->what, "metadata pair %zu", i);
        const char *kp;
        size_t klen;
        if (s_read_str (c, &kp, &klen, "key"))
            return -1;
        char shown [96];
        s_print_name (shown, sizeof shown, kp, klen);
        snprintf (c->what, sizeof c->what, "key '%s'", shown);
        s_kv_t *kv = &self->kvs [i];
        kv->key = s_copy_name (c, kp, klen, "key");
        if (!kv->key)
            return -1;
        self->n_kv = i + 1;         // from here on, destroy frees this entry
        kv->value.type = CMN_GGUF_UINT8;
        uint32_t type = 0;
        if (s_read_u32 (c, &type, "value type"))
            return -1;
        if (type > CMN_GGUF_FLOAT64)
            return cmn_err_set (c->err, RXQ_E_FORMAT_TYPE, "%s: unknown value type %u",
                                c->what, type);
        if (s_read_value (c, type, 0, &kv->value))
            return -1;
    }
    //  Duplicate keys would make lookups ambiguous.
    if (n_kv > 1) {
        s_kv_t **sorted = malloc (n_kv * sizeof *sorted);
        if (!sorted)
            return cmn_err_set (c->err, RXQ_E_NOMEM, "out of memory");
        for (size_t i = 0; i < n_kv; i++)
            sorted [i] = &self->kvs [i];
        qsort (sorted, n_kv, sizeof *sorted, s_cmp_kv);
        for (size_t i = 1; i < n_kv; i++)
            if (strcmp (sorted [i - 1]->key, sorted [i]->key) == 0) {
                char shown [96];
                s_print_name (shown, sizeof shown, sorted [i]->key, strlen (sorted [i]->key));
                free (sorted);
                return cmn_err_set (c->err, RXQ_E_FORMAT_DUP, "duplicate key '%s'", shown);
            }
        free (sorted);
    }
    return 0;
}

static int
s_parse_alignment (cmn_gguf_t *self, cmn_err_t *err)
{
    self->alignment = CMN_GGUF_DEFAULT_ALIGNMENT;
    const cmn_gguf_value_t *v = cmn_gguf_find (self, "general.alignment");
    if (v) {
        if (v->type != CMN_GGUF_UINT32)
            return cmn_err_set (err, RXQ_E_FORMAT_ALIGN,
                                "key 'general.alignment' must be a uint32, not %s",
                                cmn_gguf_type_name (v->type));
        if (v->v.u == 0 || (v->v.u & (v->v.u - 1)))
            return cmn_err_set (err, RXQ_E_FORMAT_ALIGN,
                                "key 'general.alignment' is %llu, not a power of two",
                                (unsigned long long) v->v.u);
        self->alignment = (size_t) v->v.u;
    }
    const cmn_gguf_value_t *p = cmn_gguf_find (self, "rxq.private");
    self->private_file = p && p->type == CMN_GGUF_BOOL && p->v.b;
    return 0;
}

static int
s_parse_tensor_info (cmn_gguf_t *self, s_cursor_t *c, size_t i)
{
    cmn_gguf_tensor_t *t = &self->tensors [i];
    snprintf (c->what, sizeof c->what, "tensor %zu", i);
    const char *np;
    size_t nlen;
    if (s_read_str (c, &np, &nlen, "name"))
        return -1;
    char shown [96];
    s_print_name (shown, sizeof shown, np, nlen);
    snprintf (c->what, sizeof c->what, "tensor '%s'", shown);
    t->name = s_copy_name (c, np, nlen, "name");
    if (!t->name)
        return -1;
    self->n_tensors = i + 1;
    uint32_t n_dims = 0;
    if (s_read_u32 (c, &n_dims, "n_dims"))
        return -1;
    if (n_dims > CMN_GGUF_MAX_DIMS)
        return cmn_err_set (c->err, RXQ_E_FORMAT_SHAPE, "%s: %u dimensions, at most %d allowed",
                            c->what, n_dims, CMN_GGUF_MAX_DIMS);
    t->n_dims = (int) n_dims;
    uint64_t nelem = 1;
    bool overflow = false;
    for (int d = 0; d < CMN_GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < (int) n_dims && s_read_u64 (c, &ne, "ne"))
            return -1;
        if (ne > INT64_MAX)
            return cmn_err_set (c->err, RXQ_E_FORMAT_SHAPE, "%s: ne[%d] = %llu is negative",
                                c->what, d, (unsigned long long) ne);
        t->ne [d] = (int64_t) ne;
        if (ne && nelem > INT64_MAX / ne)
            overflow = true;
        nelem *= ne;
    }
    if (overflow)
        return cmn_err_set (c->err, RXQ_E_FORMAT_SHAPE, "%s: element count overflows int64",
                            c->what);
    uint32_t type = 0;
    if (s_read_u32 (c, &type, "type") || s_read_u64 (c, &t->offset, "offset"))
        return -1;
    t->type = (int) type;
    size_t bv = type <= INT32_MAX ? cmn_quant_block_values ((int) type) : 0;
    if (bv == 0)
        return cmn_err_set (c->err, RXQ_E_FORMAT_TYPE, "%s: unknown tensor type %u",
                            c->what, type);
    if (cmn_quant_is_private ((int) type) && !self->private_file)
        return cmn_err_set (c->err, RXQ_E_FORMAT_TYPE,
                            "%s: type %s is rxq-private but the file lacks rxq.private = true",
                            c->what, cmn_quant_type_name ((int) type));
    if (t->ne [0] % (int64_t) bv)
        return cmn_err_set (c->err, RXQ_E_FORMAT_SHAPE,
                            "%s: ne[0] = %lld is not a multiple of the %s block size %zu",
                            c->what, (long long) t->ne [0], cmn_quant_type_name ((int) type), bv);
    //  Bytes = blocks per row * block bytes * rows, each step checked.
    uint64_t rows = t->ne [0] ? nelem / (uint64_t) t->ne [0] : 0;
    uint64_t blocks = (uint64_t) t->ne [0] / bv;
    size_t block_bytes = cmn_quant_block_bytes ((int) type);
    if (blocks > UINT64_MAX / block_bytes)
        return cmn_err_set (c->err, RXQ_E_FORMAT_BOUNDS, "%s: data size overflows", c->what);
    uint64_t row_bytes = blocks * block_bytes;
    if (rows && row_bytes > SIZE_MAX / rows)
        return cmn_err_set (c->err, RXQ_E_FORMAT_BOUNDS, "%s: data size overflows", c->what);
    t->size = (size_t) (row_bytes * rows);
    if (t->offset % self->alignment)
        return cmn_err_set (c->err, RXQ_E_FORMAT_ALIGN,
                            "%s: data offset %llu is not a multiple of the alignment %zu",
                            c->what, (unsigned long long) t->offset, self->alignment);
    return 0;
}

static int
s_parse (cmn_gguf_t *self, const cmn_gguf_limits_t *limits, cmn_err_t *err)
{
    s_cursor_t c = { .buf = self->buf, .len = self->len, .limits = limits, .err = err };
    uint64_t n_tensors = 0, n_kv = 0;
    if (s_parse_header (self, &c, &n_tensors, &n_kv)
    ||  s_parse_kvs (self, &c, (size_t) n_kv)
    ||  s_parse_alignment (self, err))
        return -1;

    if (n_tensors > s_left (&c) / S_MIN_TENSOR)
        return cmn_err_set (err, RXQ_E_FORMAT_TRUNC,
                            "header: %llu tensors cannot fit in the %zu bytes left after the metadata",
                            (unsigned long long) n_tensors, s_left (&c));
    self->tensors = calloc (n_tensors ? (size_t) n_tensors : 1, sizeof *self->tensors);
    self->by_name = calloc (n_tensors ? (size_t) n_tensors : 1, sizeof *self->by_name);
    if (!self->tensors || !self->by_name)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory for %llu tensors",
                            (unsigned long long) n_tensors);
    for (size_t i = 0; i < n_tensors; i++)
        if (s_parse_tensor_info (self, &c, i))
            return -1;

    //  Names must be unique; sorting also gives lookups by bisection.
    for (size_t i = 0; i < self->n_tensors; i++)
        self->by_name [i] = i;
    qsort_r (self->by_name, self->n_tensors, sizeof (size_t), s_cmp_name, self->tensors);
    for (size_t i = 1; i < self->n_tensors; i++) {
        const char *a = self->tensors [self->by_name [i - 1]].name;
        if (strcmp (a, self->tensors [self->by_name [i]].name) == 0) {
            char shown [96];
            s_print_name (shown, sizeof shown, a, strlen (a));
            return cmn_err_set (err, RXQ_E_FORMAT_DUP, "duplicate tensor name '%s'", shown);
        }
    }

    //  The data section starts at the next multiple of the alignment. A
    //  file without tensors may end before it.
    size_t pad = (self->alignment - c.pos % self->alignment) % self->alignment;
    self->data_offset = pad <= s_left (&c) ? c.pos + pad : c.len;
    if (self->n_tensors && pad > s_left (&c))
        return cmn_err_set (err, RXQ_E_FORMAT_TRUNC,
                            "file ends at %zu, before the data section at %zu",
                            c.len, c.pos + pad);
    size_t data_len = self->len - self->data_offset;
    for (size_t i = 0; i < self->n_tensors; i++) {
        cmn_gguf_tensor_t *t = &self->tensors [i];
        if (t->offset > data_len || t->size > data_len - t->offset)
            return cmn_err_set (err, RXQ_E_FORMAT_BOUNDS,
                                "tensor '%s': data out of bounds (offset %llu + %zu bytes,"
                                " data section is %zu bytes)", t->name,
                                (unsigned long long) t->offset, t->size, data_len);
        t->data = self->buf + self->data_offset + t->offset;
    }
    return 0;
}

//  Names from the file can hold any byte: keep control characters out of
//  messages that end up in logs and terminals.
static void
s_clean_message (cmn_err_t *err)
{
    if (!err)
        return;
    for (char *c = err->msg; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            *c = '?';
}

cmn_gguf_t *
cmn_gguf_new_from_buffer (const void *buf, size_t len, const cmn_gguf_limits_t *limits,
                          cmn_err_t *err)
{
    assert (buf || len == 0);
    //  Arrays are parsed recursively: the depth limit bounds the stack.
    assert (!limits || (limits->max_depth >= 0 && limits->max_depth <= 64));
    cmn_gguf_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    self->buf = buf ? buf : (const uint8_t *) "";
    self->len = len;
    if (s_parse (self, limits ? limits : &cmn_gguf_limits_default, err)) {
        cmn_gguf_destroy (&self);
        s_clean_message (err);
        return NULL;
    }
    return self;
}

cmn_gguf_t *
cmn_gguf_open_file (const char *path, const cmn_gguf_limits_t *limits, cmn_err_t *err)
{
    assert (path);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cmn_err_set (err, RXQ_E_IO, "cannot open '%s': %s", path, strerror (errno));
        return NULL;
    }
    struct stat st;
    if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode)) {
        cmn_err_set (err, RXQ_E_IO, "'%s' is not a regular file", path);
        close (fd);
        return NULL;
    }
    if ((uint64_t) st.st_size > SIZE_MAX) {
        cmn_err_set (err, RXQ_E_IO, "'%s' is too large to map", path);
        close (fd);
        return NULL;
    }
    size_t size = (size_t) st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap (NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            cmn_err_set (err, RXQ_E_IO, "cannot map '%s': %s", path, strerror (errno));
            close (fd);
            return NULL;
        }
    }
    close (fd);                 // the mapping stays valid
    cmn_gguf_t *self = cmn_gguf_new_from_buffer (map, size, limits, err);
    if (!self) {
        if (map)
            munmap (map, size);
        //  Say which file was bad: prefix the path to the parser's message.
        if (err) {
            char msg [sizeof err->msg];
            int n = snprintf (msg, sizeof msg, "%.120s: ", path);
            if (n > 0 && (size_t) n < sizeof msg) {
                size_t room = sizeof msg - (size_t) n;
                memcpy (msg + n, err->msg, strnlen (err->msg, room - 1));
                msg [(size_t) n + strnlen (err->msg, room - 1)] = 0;
                memcpy (err->msg, msg, sizeof msg);
            }
        }
        return NULL;
    }
    self->map = map;
    self->map_len = size;
    return self;
}

void
cmn_gguf_destroy (cmn_gguf_t **self_p)
{
    assert (self_p);
    cmn_gguf_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n_kv; i++) {
        free (self->kvs [i].key);
        s_value_free (&self->kvs [i].value);
    }
    free (self->kvs);
    for (size_t i = 0; i < self->n_tensors; i++)
        free ((char *) self->tensors [i].name);
    free (self->tensors);
    free (self->by_name);
    if (self->map)
        munmap (self->map, self->map_len);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Accessors

uint32_t cmn_gguf_version (const cmn_gguf_t *self) { assert (self); return self->version; }
size_t cmn_gguf_alignment (const cmn_gguf_t *self) { assert (self); return self->alignment; }
size_t cmn_gguf_data_offset (const cmn_gguf_t *self) { assert (self); return self->data_offset; }
bool cmn_gguf_is_private (const cmn_gguf_t *self) { assert (self); return self->private_file; }
size_t cmn_gguf_kv_count (const cmn_gguf_t *self) { assert (self); return self->n_kv; }
size_t cmn_gguf_tensor_count (const cmn_gguf_t *self) { assert (self); return self->n_tensors; }

const char *
cmn_gguf_kv_key (const cmn_gguf_t *self, size_t i)
{
    assert (self && i < self->n_kv);
    return self->kvs [i].key;
}

const cmn_gguf_value_t *
cmn_gguf_kv_value (const cmn_gguf_t *self, size_t i)
{
    assert (self && i < self->n_kv);
    return &self->kvs [i].value;
}

const cmn_gguf_value_t *
cmn_gguf_find (const cmn_gguf_t *self, const char *key)
{
    assert (self && key);
    for (size_t i = 0; i < self->n_kv; i++)
        if (strcmp (self->kvs [i].key, key) == 0)
            return &self->kvs [i].value;
    return NULL;
}

static bool
s_is_int (cmn_gguf_type_t t)
{
    return t == CMN_GGUF_UINT8 || t == CMN_GGUF_INT8 || t == CMN_GGUF_UINT16
        || t == CMN_GGUF_INT16 || t == CMN_GGUF_UINT32 || t == CMN_GGUF_INT32
        || t == CMN_GGUF_UINT64 || t == CMN_GGUF_INT64;
}

static bool
s_is_unsigned (cmn_gguf_type_t t)
{
    return t == CMN_GGUF_UINT8 || t == CMN_GGUF_UINT16 || t == CMN_GGUF_UINT32
        || t == CMN_GGUF_UINT64;
}

static int
s_wrong_type (const char *key, const cmn_gguf_value_t *v, const char *wanted, cmn_err_t *err)
{
    return cmn_err_set (err, RXQ_E_PARAM, "key '%s' is a %s, not %s", key,
                        cmn_gguf_type_name (v->type), wanted);
}

int
cmn_gguf_get_uint (const cmn_gguf_t *self, const char *key, uint64_t *out, cmn_err_t *err)
{
    const cmn_gguf_value_t *v = cmn_gguf_find (self, key);
    if (!v)
        return 1;
    if (s_is_unsigned (v->type))
        *out = v->v.u;
    else
    if (s_is_int (v->type) && v->v.i >= 0)
        *out = (uint64_t) v->v.i;
    else
        return s_wrong_type (key, v, "a non-negative integer", err);
    return 0;
}

int
cmn_gguf_get_int (const cmn_gguf_t *self, const char *key, int64_t *out, cmn_err_t *err)
{
    const cmn_gguf_value_t *v = cmn_gguf_find (self, key);
    if (!v)
        return 1;
    if (s_is_unsigned (v->type) && v->v.u <= INT64_MAX)
        *out = (int64_t) v->v.u;
    else
    if (s_is_int (v->type) && !s_is_unsigned (v->type))
        *out = v->v.i;
    else
        return s_wrong_type (key, v, "an integer within int64", err);
    return 0;
}

int
cmn_gguf_get_float (const cmn_gguf_t *self, const char *key, double *out, cmn_err_t *err)
{
    const cmn_gguf_value_t *v = cmn_gguf_find (self, key);
    if (!v)
        return 1;
    if (v->type == CMN_GGUF_FLOAT32 || v->type == CMN_GGUF_FLOAT64)
        *out = v->v.f;
    else
    if (s_is_unsigned (v->type))
        *out = (double) v->v.u;
    else
    if (s_is_int (v->type))
        *out = (double) v->v.i;
    else
        return s_wrong_type (key, v, "a number", err);
    return 0;
}

int
cmn_gguf_get_bool (const cmn_gguf_t *self, const char *key, bool *out, cmn_err_t *err)
{
    const cmn_gguf_value_t *v = cmn_gguf_find (self, key);
    if (!v)
        return 1;
    if (v->type != CMN_GGUF_BOOL)
        return s_wrong_type (key, v, "a bool", err);
    *out = v->v.b;
    return 0;
}

int
cmn_gguf_get_str (const cmn_gguf_t *self, const char *key, const char **ptr, size_t *len,
                  cmn_err_t *err)
{
    const cmn_gguf_value_t *v = cmn_gguf_find (self, key);
    if (!v)
        return 1;
    if (v->type != CMN_GGUF_STRING)
        return s_wrong_type (key, v, "a string", err);
    *ptr = v->v.str.ptr;
    *len = v->v.str.len;
    return 0;
}

int
cmn_gguf_get_array (const cmn_gguf_t *self, const char *key, const cmn_gguf_value_t **out,
                    cmn_err_t *err)
{
    const cmn_gguf_value_t *v = cmn_gguf_find (self, key);
    if (!v)
        return 1;
    if (v->type != CMN_GGUF_ARRAY)
        return s_wrong_type (key, v, "an array", err);
    *out = v;
    return 0;
}

const cmn_gguf_tensor_t *
cmn_gguf_tensor (const cmn_gguf_t *self, size_t i)
{
    assert (self && i < self->n_tensors);
    return &self->tensors [i];
}

const cmn_gguf_tensor_t *
cmn_gguf_find_tensor (const cmn_gguf_t *self, const char *name)
{
    assert (self && name);
    size_t lo = 0, hi = self->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const cmn_gguf_tensor_t *t = &self->tensors [self->by_name [mid]];
        int c = strcmp (name, t->name);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

uint64_t
cmn_gguf_tensor_nelements (const cmn_gguf_tensor_t *tensor)
{
    assert (tensor);
    uint64_t n = 1;
    for (int d = 0; d < CMN_GGUF_MAX_DIMS; d++)
        n *= (uint64_t) tensor->ne [d];
    return n;
}
