/*  cmn_gguf_writer: GGUF v3 writer. See cmn_gguf_writer.h.
 *
 *  Output goes through a small buffered sink over a file descriptor or a
 *  FILE*, so that tensor data can be produced chunk by chunk.
 */
#include "cmn_gguf_writer.h"
#include "cmn_quant.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_CHUNK (1u << 20)      // bytes asked of a data callback at a time

typedef struct {
    char *key;                  // owned
    cmn_gguf_value_t value;     // owned deep copy
} s_kv_t;

typedef struct {
    char *name;                 // owned
    int type;                   // GGML or rxq type
    int n_dims;                 // 1..4
    int64_t ne [CMN_GGUF_MAX_DIMS]; // elements per dimension; unused = 1
    uint64_t size;              // bytes of data
    uint64_t offset;            // from the data section start
    const void *data;           // borrowed, or NULL when fn is set
    cmn_gguf_data_fn *fn;       // data callback
    void *arg;                  // its argument
} s_tensor_t;

struct _cmn_gguf_writer_t {
    s_kv_t *kvs;                // metadata in insertion order
    size_t n_kv, kv_cap;        // used and allocated entries
    s_tensor_t *tensors;        // tensors in insertion order
    size_t n_tensors, t_cap;    // used and allocated entries
    uint32_t alignment;         // data alignment, bytes
    uint64_t data_size;         // bytes of the data section so far
};

cmn_gguf_writer_t *
cmn_gguf_writer_new (void)
{
    cmn_gguf_writer_t *self = calloc (1, sizeof *self);
    if (self)
        self->alignment = CMN_GGUF_DEFAULT_ALIGNMENT;
    return self;
}

static void
s_value_free (cmn_gguf_value_t *v)
{
    if (v->type == CMN_GGUF_STRING)
        free ((char *) v->v.str.ptr);
    else
    if (v->type == CMN_GGUF_ARRAY) {
        free ((void *) v->v.arr.raw);
        cmn_gguf_value_t *items = (cmn_gguf_value_t *) v->v.arr.items;
        if (items)
            for (size_t i = 0; i < v->v.arr.n; i++)
                s_value_free (&items [i]);
        free (items);
    }
    v->type = CMN_GGUF_UINT8;
}

void
cmn_gguf_writer_destroy (cmn_gguf_writer_t **self_p)
{
    assert (self_p);
    cmn_gguf_writer_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n_kv; i++) {
        free (self->kvs [i].key);
        s_value_free (&self->kvs [i].value);
    }
    free (self->kvs);
    for (size_t i = 0; i < self->n_tensors; i++)
        free (self->tensors [i].name);
    free (self->tensors);
    free (self);
    *self_p = NULL;
}

//  Deep-copies SRC into DST (which then owns everything it points to).
static int
s_value_copy (cmn_gguf_value_t *dst, const cmn_gguf_value_t *src, int depth, cmn_err_t *err)
{
    if (depth > 64)
        return cmn_err_set (err, RXQ_E_INVAL, "metadata value nested too deeply");
    *dst = *src;
    if (src->type == CMN_GGUF_STRING) {
        char *s = malloc (src->v.str.len + 1);
        if (!s)
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        if (src->v.str.len)
            memcpy (s, src->v.str.ptr, src->v.str.len);
        s [src->v.str.len] = 0;
        dst->v.str.ptr = s;
        return 0;
    }
    if (src->type != CMN_GGUF_ARRAY) {
        if (cmn_gguf_type_size (src->type) == 0)
            return cmn_err_set (err, RXQ_E_INVAL, "unknown metadata type %d", (int) src->type);
        return 0;
    }
    dst->v.arr.raw = NULL;
    dst->v.arr.items = NULL;
    size_t n = src->v.arr.n;
    cmn_gguf_type_t elem = src->v.arr.elem;
    if (elem == CMN_GGUF_STRING || elem == CMN_GGUF_ARRAY) {
        if (n == 0)
            return 0;
        assert (src->v.arr.items);
        cmn_gguf_value_t *items = calloc (n, sizeof *items);
        if (!items) {
            dst->type = CMN_GGUF_UINT8;
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        }
        dst->v.arr.items = items;
        for (size_t i = 0; i < n; i++) {
            if (src->v.arr.items [i].type != elem) {
                dst->v.arr.n = i;
                s_value_free (dst);
                return cmn_err_set (err, RXQ_E_INVAL, "array element %zu is a %s, not %s", i,
                                    cmn_gguf_type_name (src->v.arr.items [i].type),
                                    cmn_gguf_type_name (elem));
            }
            if (s_value_copy (&items [i], &src->v.arr.items [i], depth + 1, err)) {
                dst->v.arr.n = i;
                s_value_free (dst);
                return -1;
            }
        }
        return 0;
    }
    size_t size = cmn_gguf_type_size (elem);
    if (size == 0) {
        dst->type = CMN_GGUF_UINT8;
        return cmn_err_set (err, RXQ_E_INVAL, "unknown array element type %d", (int) elem);
    }
    if (n > SIZE_MAX / size) {
        dst->type = CMN_GGUF_UINT8;
        return cmn_err_set (err, RXQ_E_INVAL, "array too large");
    }
    if (n == 0)
        return 0;
    assert (src->v.arr.raw);
    void *raw = malloc (n * size);
    if (!raw) {
        dst->type = CMN_GGUF_UINT8;
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    }
    memcpy (raw, src->v.arr.raw, n * size);
    dst->v.arr.raw = raw;
    return 0;
}

int
cmn_gguf_writer_set (cmn_gguf_writer_t *self, const char *key, const cmn_gguf_value_t *value,
                     cmn_err_t *err)
{
    assert (self && key && value);
    if (!*key)
        return cmn_err_set (err, RXQ_E_INVAL, "metadata key is empty");
    //  llama.cpp refuses nested arrays (gguf.cpp: "invalid GGUF type"), so a
    //  file holding one is rxq-private like a file with rxq's own types.
    if (value->type == CMN_GGUF_ARRAY && value->v.arr.elem == CMN_GGUF_ARRAY
    &&  strcmp (key, "rxq.private") != 0
    &&  cmn_gguf_writer_set_bool (self, "rxq.private", true, err))
        return -1;
    cmn_gguf_value_t copy;
    if (s_value_copy (&copy, value, 0, err))
        return -1;
    for (size_t i = 0; i < self->n_kv; i++)
        if (strcmp (self->kvs [i].key, key) == 0) {
            s_value_free (&self->kvs [i].value);
            self->kvs [i].value = copy;
            return 0;
        }
    if (self->n_kv == self->kv_cap) {
        size_t cap = self->kv_cap ? self->kv_cap * 2 : 16;
        s_kv_t *kvs = realloc (self->kvs, cap * sizeof *kvs);
        if (!kvs) {
            s_value_free (&copy);
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        }
        self->kvs = kvs;
        self->kv_cap = cap;
    }
    char *k = strdup (key);
    if (!k) {
        s_value_free (&copy);
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    }
    self->kvs [self->n_kv].key = k;
    self->kvs [self->n_kv].value = copy;
    self->n_kv++;
    return 0;
}

int
cmn_gguf_writer_set_u32 (cmn_gguf_writer_t *self, const char *key, uint32_t value, cmn_err_t *err)
{
    cmn_gguf_value_t v = { .type = CMN_GGUF_UINT32, .v.u = value };
    return cmn_gguf_writer_set (self, key, &v, err);
}

int
cmn_gguf_writer_set_u64 (cmn_gguf_writer_t *self, const char *key, uint64_t value, cmn_err_t *err)
{
    cmn_gguf_value_t v = { .type = CMN_GGUF_UINT64, .v.u = value };
    return cmn_gguf_writer_set (self, key, &v, err);
}

int
cmn_gguf_writer_set_i32 (cmn_gguf_writer_t *self, const char *key, int32_t value, cmn_err_t *err)
{
    cmn_gguf_value_t v = { .type = CMN_GGUF_INT32, .v.i = value };
    return cmn_gguf_writer_set (self, key, &v, err);
}

int
cmn_gguf_writer_set_f32 (cmn_gguf_writer_t *self, const char *key, float value, cmn_err_t *err)
{
    cmn_gguf_value_t v = { .type = CMN_GGUF_FLOAT32, .v.f = value };
    return cmn_gguf_writer_set (self, key, &v, err);
}

int
cmn_gguf_writer_set_bool (cmn_gguf_writer_t *self, const char *key, bool value, cmn_err_t *err)
{
    cmn_gguf_value_t v = { .type = CMN_GGUF_BOOL, .v.b = value };
    return cmn_gguf_writer_set (self, key, &v, err);
}

int
cmn_gguf_writer_set_str (cmn_gguf_writer_t *self, const char *key, const char *value,
                         cmn_err_t *err)
{
    assert (value);
    cmn_gguf_value_t v = { .type = CMN_GGUF_STRING };
    v.v.str.ptr = value;
    v.v.str.len = strlen (value);
    return cmn_gguf_writer_set (self, key, &v, err);
}

int
cmn_gguf_writer_set_array (cmn_gguf_writer_t *self, const char *key, cmn_gguf_type_t elem,
                           const void *raw, size_t n, cmn_err_t *err)
{
    cmn_gguf_value_t v = { .type = CMN_GGUF_ARRAY };
    v.v.arr.elem = elem;
    v.v.arr.n = n;
    v.v.arr.raw = raw;
    if (cmn_gguf_type_size (elem) == 0)
        return cmn_err_set (err, RXQ_E_INVAL, "key '%s': array elements must be scalars", key);
    return cmn_gguf_writer_set (self, key, &v, err);
}

int
cmn_gguf_writer_set_str_array (cmn_gguf_writer_t *self, const char *key,
                               const char *const *strs, size_t n, cmn_err_t *err)
{
    cmn_gguf_value_t *items = calloc (n ? n : 1, sizeof *items);
    if (!items)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        items [i].type = CMN_GGUF_STRING;
        items [i].v.str.ptr = strs [i];
        items [i].v.str.len = strlen (strs [i]);
    }
    cmn_gguf_value_t v = { .type = CMN_GGUF_ARRAY };
    v.v.arr.elem = CMN_GGUF_STRING;
    v.v.arr.n = n;
    v.v.arr.items = items;
    int rc = cmn_gguf_writer_set (self, key, &v, err);
    free (items);
    return rc;
}

int
cmn_gguf_writer_set_alignment (cmn_gguf_writer_t *self, uint32_t alignment, cmn_err_t *err)
{
    assert (self);
    if (alignment == 0 || (alignment & (alignment - 1)))
        return cmn_err_set (err, RXQ_E_INVAL, "alignment %u is not a power of two", alignment);
    if (self->n_tensors)
        return cmn_err_set (err, RXQ_E_INVAL, "set the alignment before adding tensors");
    if (cmn_gguf_writer_set_u32 (self, "general.alignment", alignment, err))
        return -1;
    self->alignment = alignment;
    return 0;
}

static uint64_t
s_pad (uint64_t n, uint64_t alignment)
{
    return (alignment - n % alignment) % alignment;
}

int
cmn_gguf_writer_add_tensor (cmn_gguf_writer_t *self, const char *name, int type, int n_dims,
                            const int64_t *ne, const void *data, cmn_gguf_data_fn *fn,
                            void *arg, cmn_err_t *err)
{
    assert (self && name && ne);
    if (!*name)
        return cmn_err_set (err, RXQ_E_INVAL, "tensor name is empty");
    if (!data && !fn)
        return cmn_err_set (err, RXQ_E_INVAL, "tensor '%s': no data and no callback", name);
    if (n_dims < 1 || n_dims > CMN_GGUF_MAX_DIMS)
        return cmn_err_set (err, RXQ_E_INVAL, "tensor '%s': %d dimensions, 1..%d allowed",
                            name, n_dims, CMN_GGUF_MAX_DIMS);
    size_t bv = cmn_quant_block_values (type);
    if (bv == 0)
        return cmn_err_set (err, RXQ_E_INVAL, "tensor '%s': unknown type %d", name, type);
    s_tensor_t t = { .type = type, .n_dims = n_dims, .data = data, .fn = fn, .arg = arg };
    uint64_t rows = 1;
    for (int d = 0; d < CMN_GGUF_MAX_DIMS; d++) {
        t.ne [d] = d < n_dims ? ne [d] : 1;
        if (t.ne [d] < 0)
            return cmn_err_set (err, RXQ_E_INVAL, "tensor '%s': ne[%d] is negative", name, d);
        if (d > 0) {
            if (t.ne [d] && rows > UINT64_MAX / (uint64_t) t.ne [d])
                return cmn_err_set (err, RXQ_E_INVAL, "tensor '%s': too large", name);
            rows *= (uint64_t) t.ne [d];
        }
    }
    if (t.ne [0] % (int64_t) bv)
        return cmn_err_set (err, RXQ_E_INVAL,
                            "tensor '%s': ne[0] = %lld is not a multiple of the %s block size %zu",
                            name, (long long) t.ne [0], cmn_quant_type_name (type), bv);
    uint64_t blocks = (uint64_t) t.ne [0] / bv;
    if (blocks > (UINT64_MAX / 2) / cmn_quant_block_bytes (type))
        return cmn_err_set (err, RXQ_E_INVAL, "tensor '%s': too large", name);
    uint64_t row_bytes = blocks * cmn_quant_block_bytes (type);
    if (rows && row_bytes > (UINT64_MAX / 2) / rows)
        return cmn_err_set (err, RXQ_E_INVAL, "tensor '%s': too large", name);
    t.size = row_bytes * rows;
    for (size_t i = 0; i < self->n_tensors; i++)
        if (strcmp (self->tensors [i].name, name) == 0)
            return cmn_err_set (err, RXQ_E_FORMAT_DUP, "duplicate tensor name '%s'", name);
    if (cmn_quant_is_private (type)
    &&  cmn_gguf_writer_set_bool (self, "rxq.private", true, err))
        return -1;
    if (self->n_tensors == self->t_cap) {
        size_t cap = self->t_cap ? self->t_cap * 2 : 16;
        s_tensor_t *ts = realloc (self->tensors, cap * sizeof *ts);
        if (!ts)
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        self->tensors = ts;
        self->t_cap = cap;
    }
    t.name = strdup (name);
    if (!t.name)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    t.offset = self->data_size;
    self->data_size += t.size + s_pad (t.size, self->alignment);
    self->tensors [self->n_tensors++] = t;
    return 0;
}

//  --------------------------------------------------------------------------
//  Output

typedef struct {
    int fd;                     // output when stream is NULL
    FILE *stream;               // output, or NULL
    uint8_t *buf;               // S_CHUNK bytes of buffered output
    size_t used;                // bytes in buf
    uint64_t written;           // bytes passed to the sink so far
    cmn_err_t *err;
} s_sink_t;

static int
s_flush (s_sink_t *s)
{
    size_t off = 0;
    while (off < s->used) {
        if (s->stream) {
            size_t n = fwrite (s->buf + off, 1, s->used - off, s->stream);
            if (n == 0)
                return cmn_err_set (s->err, RXQ_E_IO, "write failed: %s", strerror (errno));
            off += n;
        }
        else {
            ssize_t n = write (s->fd, s->buf + off, s->used - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return cmn_err_set (s->err, RXQ_E_IO, "write failed: %s",
                                    n < 0 ? strerror (errno) : "no progress");
            off += (size_t) n;
        }
    }
    s->used = 0;
    return 0;
}

static int
s_put (s_sink_t *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        size_t n = S_CHUNK - s->used < len ? S_CHUNK - s->used : len;
        memcpy (s->buf + s->used, p, n);
        s->used += n;
        s->written += n;
        p += n;
        len -= n;
        if (s->used == S_CHUNK && s_flush (s))
            return -1;
    }
    return 0;
}

static int
s_put_u32 (s_sink_t *s, uint32_t v)
{
    return s_put (s, &v, 4);
}

static int
s_put_u64 (s_sink_t *s, uint64_t v)
{
    return s_put (s, &v, 8);
}

static int
s_put_str (s_sink_t *s, const char *p, size_t len)
{
    return s_put_u64 (s, len) || s_put (s, p, len);
}

static int
s_put_zeros (s_sink_t *s, uint64_t n)
{
    static const uint8_t zeros [64];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t) n : sizeof zeros;
        if (s_put (s, zeros, k))
            return -1;
        n -= k;
    }
    return 0;
}

//  Writes the body of a value (no type tag).
static int
s_put_value (s_sink_t *s, const cmn_gguf_value_t *v)
{
    switch (v->type) {
        case CMN_GGUF_UINT8: case CMN_GGUF_INT8: {
            uint8_t x = (uint8_t) v->v.u;
            return s_put (s, &x, 1);
        }
        case CMN_GGUF_BOOL: {
            uint8_t x = v->v.b ? 1 : 0;
            return s_put (s, &x, 1);
        }
        case CMN_GGUF_UINT16: case CMN_GGUF_INT16: {
            uint16_t x = (uint16_t) v->v.u;
            return s_put (s, &x, 2);
        }
        case CMN_GGUF_UINT32: case CMN_GGUF_INT32:
            return s_put_u32 (s, (uint32_t) v->v.u);
        case CMN_GGUF_UINT64: case CMN_GGUF_INT64:
            return s_put_u64 (s, v->v.u);
        case CMN_GGUF_FLOAT32: {
            float x = (float) v->v.f;
            return s_put (s, &x, 4);
        }
        case CMN_GGUF_FLOAT64:
            return s_put (s, &v->v.f, 8);
        case CMN_GGUF_STRING:
            return s_put_str (s, v->v.str.ptr, v->v.str.len);
        case CMN_GGUF_ARRAY: {
            if (s_put_u32 (s, v->v.arr.elem) || s_put_u64 (s, v->v.arr.n))
                return -1;
            if (v->v.arr.elem != CMN_GGUF_STRING && v->v.arr.elem != CMN_GGUF_ARRAY)
                return v->v.arr.n ? s_put (s, v->v.arr.raw,
                                           v->v.arr.n * cmn_gguf_type_size (v->v.arr.elem)) : 0;
            for (size_t i = 0; i < v->v.arr.n; i++)
                if (s_put_value (s, &v->v.arr.items [i]))
                    return -1;
            return 0;
        }
    }
    return cmn_err_set (s->err, RXQ_E_INTERNAL, "unknown value type");
}

static int
s_write (cmn_gguf_writer_t *self, s_sink_t *s)
{
    if (s_put_u32 (s, CMN_GGUF_MAGIC) || s_put_u32 (s, CMN_GGUF_VERSION)
    ||  s_put_u64 (s, self->n_tensors) || s_put_u64 (s, self->n_kv))
        return -1;
    for (size_t i = 0; i < self->n_kv; i++) {
        const s_kv_t *kv = &self->kvs [i];
        if (s_put_str (s, kv->key, strlen (kv->key)) || s_put_u32 (s, kv->value.type)
        ||  s_put_value (s, &kv->value))
            return -1;
    }
    for (size_t i = 0; i < self->n_tensors; i++) {
        const s_tensor_t *t = &self->tensors [i];
        if (s_put_str (s, t->name, strlen (t->name)) || s_put_u32 (s, (uint32_t) t->n_dims))
            return -1;
        for (int d = 0; d < t->n_dims; d++)
            if (s_put_u64 (s, (uint64_t) t->ne [d]))
                return -1;
        if (s_put_u32 (s, (uint32_t) t->type) || s_put_u64 (s, t->offset))
            return -1;
    }
    if (s_put_zeros (s, s_pad (s->written, self->alignment)))
        return -1;
    //  Tensor data: straight from the caller's memory, or produced a chunk
    //  at a time straight into the sink's buffer.
    for (size_t i = 0; i < self->n_tensors; i++) {
        const s_tensor_t *t = &self->tensors [i];
        if (t->data) {
            if (t->size && s_put (s, t->data, (size_t) t->size))
                return -1;
        }
        else
            for (uint64_t off = 0; off < t->size; ) {
                if (s->used == S_CHUNK && s_flush (s))
                    return -1;
                size_t room = S_CHUNK - s->used;
                size_t n = t->size - off < room ? (size_t) (t->size - off) : room;
                if (t->fn (t->arg, s->buf + s->used, off, n, s->err))
                    return -1;
                s->used += n;
                s->written += n;
                off += n;
            }
        if (s_put_zeros (s, s_pad (t->size, self->alignment)))
            return -1;
    }
    return s_flush (s);
}

static int
s_write_sink (cmn_gguf_writer_t *self, int fd, FILE *stream, cmn_err_t *err)
{
    s_sink_t s = { .fd = fd, .stream = stream, .err = err };
    s.buf = malloc (S_CHUNK);
    if (!s.buf)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    int rc = s_write (self, &s);
    free (s.buf);
    return rc;
}

int
cmn_gguf_writer_write_fd (cmn_gguf_writer_t *self, int fd, cmn_err_t *err)
{
    assert (self && fd >= 0);
    return s_write_sink (self, fd, NULL, err);
}

int
cmn_gguf_writer_write_stream (cmn_gguf_writer_t *self, FILE *stream, cmn_err_t *err)
{
    assert (self && stream);
    if (s_write_sink (self, -1, stream, err))
        return -1;
    if (fflush (stream))
        return cmn_err_set (err, RXQ_E_IO, "write failed: %s", strerror (errno));
    return 0;
}

int
cmn_gguf_writer_write_file (cmn_gguf_writer_t *self, const char *path, cmn_err_t *err)
{
    assert (self && path);
    size_t len = strlen (path);
    char *tmp = malloc (len + 5);
    if (!tmp)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    memcpy (tmp, path, len);
    memcpy (tmp + len, ".tmp", 5);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        cmn_err_set (err, RXQ_E_IO, "cannot create '%s': %s", tmp, strerror (errno));
        free (tmp);
        return -1;
    }
    int rc = s_write_sink (self, fd, NULL, err);
    if (rc == 0 && fsync (fd) < 0)
        rc = cmn_err_set (err, RXQ_E_IO, "cannot sync '%s': %s", tmp, strerror (errno));
    if (close (fd) < 0 && rc == 0)
        rc = cmn_err_set (err, RXQ_E_IO, "cannot close '%s': %s", tmp, strerror (errno));
    if (rc == 0 && rename (tmp, path) < 0)
        rc = cmn_err_set (err, RXQ_E_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                          strerror (errno));
    if (rc)
        unlink (tmp);
    free (tmp);
    return rc;
}
