/*  cmn_safetensors: safetensors reader with a strict JSON header parser.
 *
 *  The parser is directed by the schema: it knows at each point which
 *  JSON value it expects (the top object, a tensor entry, a shape array,
 *  the metadata map) and refuses anything else, so nothing is kept but
 *  the decoded strings and the tensor entries. Every entry needs several
 *  bytes of header, so memory stays a small multiple of the header size.
 */
#include "cmn_safetensors.h"
#include "cmn_quant_blocks.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const cmn_safetensors_limits_t cmn_safetensors_limits_default = {
    .max_header = 100000000,
    .max_tensors = 65536,
    .max_metadata = 65536,
    .max_depth = 4,
    .allow_unsupported = false,
};

typedef struct {
    char *key;                  // owned
    char *value;                // owned
} s_meta_t;

struct _cmn_safetensors_t {
    const uint8_t *buf;         // the file
    size_t len;                 // bytes in buf
    void *map;                  // mapping when opened from a file
    size_t map_len;             // bytes mapped
    cmn_safetensors_tensor_t *tensors;  // in header order; names/dtypes owned
    size_t n_tensors, t_cap;    // used and allocated entries
    s_meta_t *meta;             // __metadata__ in header order
    size_t n_meta, m_cap;       // used and allocated entries
};

//  dtypes of the safetensors specification, with element sizes in bits.
static const struct {
    const char *name;
    int type;                   // GGML type rxq reads, or -1
    unsigned bits;              // bits per element
} s_dtypes [] = {
    { "F32", GGML_TYPE_F32, 32 }, { "F16", GGML_TYPE_F16, 16 }, { "BF16", GGML_TYPE_BF16, 16 },
    { "F64", -1, 64 }, { "I64", -1, 64 }, { "U64", -1, 64 }, { "I32", -1, 32 },
    { "U32", -1, 32 }, { "I16", -1, 16 }, { "U16", -1, 16 }, { "I8", -1, 8 },
    { "U8", -1, 8 }, { "BOOL", -1, 8 }, { "F8_E4M3", -1, 8 }, { "F8_E5M2", -1, 8 },
    { "F8_E8M0", -1, 8 },
};

//  --------------------------------------------------------------------------
//  JSON cursor

typedef struct {
    const uint8_t *p;           // header bytes
    size_t len;                 // header length
    size_t pos;                 // next byte
    int depth;                  // open objects and arrays
    const cmn_safetensors_limits_t *limits;
    cmn_err_t *err;
} s_json_t;

static int
s_syntax (s_json_t *j, const char *what)
{
    return cmn_err_set (j->err, RXQ_E_FORMAT_SYNTAX, "header JSON: %s at byte %zu", what,
                        j->pos);
}

static void
s_ws (s_json_t *j)
{
    while (j->pos < j->len && (j->p [j->pos] == ' ' || j->p [j->pos] == '\t'
                               || j->p [j->pos] == '\n' || j->p [j->pos] == '\r'))
        j->pos++;
}

//  Skips whitespace and consumes C if it is next.
static bool
s_accept (s_json_t *j, char c)
{
    s_ws (j);
    if (j->pos < j->len && j->p [j->pos] == (uint8_t) c) {
        j->pos++;
        return true;
    }
    return false;
}

static int
s_expect (s_json_t *j, char c)
{
    if (s_accept (j, c))
        return 0;
    char what [40];
    if (j->pos >= j->len)
        snprintf (what, sizeof what, "expected '%c', got end of header", c);
    else
        snprintf (what, sizeof what, "expected '%c'", c);
    return s_syntax (j, what);
}

static int
s_enter (s_json_t *j)
{
    if (++j->depth > j->limits->max_depth)
        return cmn_err_set (j->err, RXQ_E_LIMIT, "header JSON nested deeper than %d at byte %zu",
                            j->limits->max_depth, j->pos);
    return 0;
}

static int
s_hex4 (s_json_t *j, unsigned *out)
{
    if (j->len - j->pos < 4)
        return s_syntax (j, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = j->p [j->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned) (c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned) (c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned) (c - 'A' + 10);
        else return s_syntax (j, "bad hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

static size_t
s_utf8_put (char *out, unsigned cp)
{
    if (cp < 0x80) { out [0] = (char) cp; return 1; }
    if (cp < 0x800) {
        out [0] = (char) (0xc0 | (cp >> 6));
        out [1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out [0] = (char) (0xe0 | (cp >> 12));
        out [1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out [2] = (char) (0x80 | (cp & 0x3f));
        return 3;
    }
    out [0] = (char) (0xf0 | (cp >> 18));
    out [1] = (char) (0x80 | ((cp >> 12) & 0x3f));
    out [2] = (char) (0x80 | ((cp >> 6) & 0x3f));
    out [3] = (char) (0x80 | (cp & 0x3f));
    return 4;
}

//  Length of the valid UTF-8 sequence at P (at most LEFT bytes), or 0.
static size_t
s_utf8_len (const uint8_t *p, size_t left)
{
    uint8_t c = p [0];
    size_t n;
    unsigned cp;
    if (c < 0x80) return 1;
    else if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; }
    else return 0;
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p [i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p [i] & 0x3f);
    }
    //  Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)
    ||  (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

//  Parses a JSON string into a malloc'd NUL-terminated copy. Strings that
//  decode to a NUL byte are refused: names and metadata are C strings.
static int
s_string (s_json_t *j, char **out)
{
    if (s_expect (j, '"'))
        return -1;
    //  The decoded string is never longer than its encoding.
    size_t start = j->pos;
    size_t end = start;
    while (end < j->len && j->p [end] != '"')
        end += (j->p [end] == '\\' && end + 1 < j->len) ? 2 : 1;
    if (end >= j->len)
        return s_syntax (j, "unterminated string");
    char *s = malloc (end - start + 1);
    if (!s)
        return cmn_err_set (j->err, RXQ_E_NOMEM, "out of memory");
    size_t n = 0;
    while (j->p [j->pos] != '"') {
        uint8_t c = j->p [j->pos];
        if (c < 0x20) {
            free (s);
            return s_syntax (j, "control character in string");
        }
        if (c != '\\') {
            size_t k = s_utf8_len (j->p + j->pos, j->len - j->pos);
            if (k == 0) {
                free (s);
                return s_syntax (j, "invalid UTF-8 in string");
            }
            memcpy (s + n, j->p + j->pos, k);
            n += k;
            j->pos += k;
            continue;
        }
        j->pos++;
        c = j->p [j->pos++];
        switch (c) {
            case '"': s [n++] = '"'; break;
            case '\\': s [n++] = '\\'; break;
            case '/': s [n++] = '/'; break;
            case 'b': s [n++] = '\b'; break;
            case 'f': s [n++] = '\f'; break;
            case 'n': s [n++] = '\n'; break;
            case 'r': s [n++] = '\r'; break;
            case 't': s [n++] = '\t'; break;
            case 'u': {
                unsigned cp;
                if (s_hex4 (j, &cp)) { free (s); return -1; }
                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    free (s);
                    return s_syntax (j, "unpaired low surrogate in \\u escape");
                }
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned lo;
                    if (j->len - j->pos < 2 || j->p [j->pos] != '\\' || j->p [j->pos + 1] != 'u') {
                        free (s);
                        return s_syntax (j, "unpaired high surrogate in \\u escape");
                    }
                    j->pos += 2;
                    if (s_hex4 (j, &lo)) { free (s); return -1; }
                    if (lo < 0xdc00 || lo > 0xdfff) {
                        free (s);
                        return s_syntax (j, "bad low surrogate in \\u escape");
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                if (cp == 0) {
                    free (s);
                    return cmn_err_set (j->err, RXQ_E_FORMAT,
                                        "header JSON: string with a NUL character at byte %zu",
                                        j->pos);
                }
                //  \uXXXX takes 6 bytes and decodes to at most 3 (4 for a
                //  12-byte surrogate pair), so S cannot overflow.
                n += s_utf8_put (s + n, cp);
                break;
            }
            default:
                free (s);
                j->pos--;
                return s_syntax (j, "invalid escape in string");
        }
    }
    j->pos++;                   // closing quote
    s [n] = 0;
    *out = s;
    return 0;
}

//  Parses a non-negative JSON integer (no fraction, no exponent) that
//  fits uint64. FIELD names it in messages.
static int
s_uint (s_json_t *j, uint64_t *out, const char *field)
{
    s_ws (j);
    size_t start = j->pos;
    if (j->pos < j->len && j->p [j->pos] == '-')
        return cmn_err_set (j->err, RXQ_E_FORMAT, "header JSON: %s is negative at byte %zu",
                            field, start);
    if (j->pos >= j->len || j->p [j->pos] < '0' || j->p [j->pos] > '9')
        return cmn_err_set (j->err, RXQ_E_FORMAT, "header JSON: %s must be an integer at byte %zu",
                            field, start);
    if (j->p [j->pos] == '0' && j->pos + 1 < j->len && j->p [j->pos + 1] >= '0'
    &&  j->p [j->pos + 1] <= '9')
        return s_syntax (j, "number with a leading zero");
    uint64_t v = 0;
    while (j->pos < j->len && j->p [j->pos] >= '0' && j->p [j->pos] <= '9') {
        unsigned d = (unsigned) (j->p [j->pos] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return cmn_err_set (j->err, RXQ_E_FORMAT, "header JSON: %s overflows uint64 at byte %zu",
                                field, start);
        v = v * 10 + d;
        j->pos++;
    }
    if (j->pos < j->len && (j->p [j->pos] == '.' || j->p [j->pos] == 'e' || j->p [j->pos] == 'E'))
        return cmn_err_set (j->err, RXQ_E_FORMAT, "header JSON: %s must be an integer at byte %zu",
                            field, start);
    *out = v;
    return 0;
}

//  --------------------------------------------------------------------------
//  Schema

static void
s_tensor_free (cmn_safetensors_tensor_t *t)
{
    free ((char *) t->name);
    free ((char *) t->dtype);
}

//  "shape": [n, ...]
static int
s_shape (s_json_t *j, cmn_safetensors_tensor_t *t)
{
    if (s_expect (j, '[') || s_enter (j))
        return -1;
    t->n_dims = 0;
    if (!s_accept (j, ']')) {
        do {
            if (t->n_dims == CMN_SAFETENSORS_MAX_DIMS)
                return cmn_err_set (j->err, RXQ_E_FORMAT_SHAPE,
                                    "tensor '%s': more than %d dimensions", t->name,
                                    CMN_SAFETENSORS_MAX_DIMS);
            if (s_uint (j, &t->shape [t->n_dims], "shape"))
                return -1;
            t->n_dims++;
        } while (s_accept (j, ','));
        if (s_expect (j, ']'))
            return -1;
    }
    j->depth--;
    return 0;
}

//  "data_offsets": [begin, end]
static int
s_offsets (s_json_t *j, cmn_safetensors_tensor_t *t)
{
    if (s_expect (j, '[') || s_enter (j)
    ||  s_uint (j, &t->begin, "data_offsets") || s_expect (j, ',')
    ||  s_uint (j, &t->end, "data_offsets"))
        return -1;
    if (!s_accept (j, ']'))
        return cmn_err_set (j->err, RXQ_E_FORMAT,
                            "tensor '%s': data_offsets must have exactly 2 entries", t->name);
    j->depth--;
    return 0;
}

//  {"dtype": ..., "shape": [...], "data_offsets": [b, e]} in any order.
static int
s_tensor_entry (s_json_t *j, cmn_safetensors_tensor_t *t)
{
    if (s_expect (j, '{') || s_enter (j))
        return -1;
    bool have_shape = false, have_offsets = false;
    if (!s_accept (j, '}')) {
        do {
            char *field;
            if (s_string (j, &field))
                return -1;
            if (s_expect (j, ':')) {
                free (field);
                return -1;
            }
            int rc;
            bool dup = false;
            if (strcmp (field, "dtype") == 0) {
                dup = t->dtype != NULL;
                rc = dup ? 0 : s_string (j, (char **) &t->dtype);
            }
            else
            if (strcmp (field, "shape") == 0) {
                dup = have_shape;
                have_shape = true;
                rc = dup ? 0 : s_shape (j, t);
            }
            else
            if (strcmp (field, "data_offsets") == 0) {
                dup = have_offsets;
                have_offsets = true;
                rc = dup ? 0 : s_offsets (j, t);
            }
            else {
                cmn_err_set (j->err, RXQ_E_FORMAT, "tensor '%s': unknown field '%.64s'",
                             t->name, field);
                free (field);
                return -1;
            }
            if (dup)
                rc = cmn_err_set (j->err, RXQ_E_FORMAT_DUP, "tensor '%s': duplicate field '%s'",
                                  t->name, field);
            free (field);
            if (rc)
                return -1;
        } while (s_accept (j, ','));
        if (s_expect (j, '}'))
            return -1;
    }
    j->depth--;
    const char *missing = !t->dtype ? "dtype" : !have_shape ? "shape"
                        : !have_offsets ? "data_offsets" : NULL;
    if (missing)
        return cmn_err_set (j->err, RXQ_E_FORMAT, "tensor '%s': missing field '%s'", t->name,
                            missing);
    return 0;
}

//  "__metadata__": {"key": "value", ...}
static int
s_metadata (cmn_safetensors_t *self, s_json_t *j)
{
    if (s_expect (j, '{') || s_enter (j))
        return -1;
    if (!s_accept (j, '}')) {
        do {
            if (self->n_meta == j->limits->max_metadata)
                return cmn_err_set (j->err, RXQ_E_LIMIT, "more than %zu metadata entries",
                                    j->limits->max_metadata);
            if (self->n_meta == self->m_cap) {
                size_t cap = self->m_cap ? self->m_cap * 2 : 8;
                s_meta_t *m = realloc (self->meta, cap * sizeof *m);
                if (!m)
                    return cmn_err_set (j->err, RXQ_E_NOMEM, "out of memory");
                self->meta = m;
                self->m_cap = cap;
            }
            s_meta_t *m = &self->meta [self->n_meta];
            m->value = NULL;
            if (s_string (j, &m->key))
                return -1;
            self->n_meta++;
            if (s_expect (j, ':'))
                return -1;
            s_ws (j);
            if (j->pos < j->len && j->p [j->pos] != '"')
                return cmn_err_set (j->err, RXQ_E_FORMAT,
                                    "__metadata__ '%.64s': value must be a string", m->key);
            if (s_string (j, &m->value))
                return -1;
            for (size_t i = 0; i + 1 < self->n_meta; i++)
                if (strcmp (self->meta [i].key, m->key) == 0)
                    return cmn_err_set (j->err, RXQ_E_FORMAT_DUP,
                                        "__metadata__: duplicate key '%.64s'", m->key);
        } while (s_accept (j, ','));
        if (s_expect (j, '}'))
            return -1;
    }
    j->depth--;
    return 0;
}

static int
s_cmp_names (const void *a, const void *b)
{
    return strcmp ((*(const cmn_safetensors_tensor_t *const *) a)->name,
                   (*(const cmn_safetensors_tensor_t *const *) b)->name);
}

//  Checks dtype, size and bounds of each tensor and sets its data pointer.
static int
s_validate (cmn_safetensors_t *self, const cmn_safetensors_limits_t *limits,
            size_t data_start, cmn_err_t *err)
{
    size_t data_len = self->len - data_start;
    for (size_t i = 0; i < self->n_tensors; i++) {
        cmn_safetensors_tensor_t *t = &self->tensors [i];
        size_t d;
        for (d = 0; d < sizeof s_dtypes / sizeof s_dtypes [0]; d++)
            if (strcmp (s_dtypes [d].name, t->dtype) == 0)
                break;
        if (d == sizeof s_dtypes / sizeof s_dtypes [0])
            return cmn_err_set (err, RXQ_E_FORMAT_TYPE, "tensor '%s': unknown dtype '%.32s'",
                                t->name, t->dtype);
        t->type = s_dtypes [d].type;
        if (t->type < 0 && !limits->allow_unsupported)
            return cmn_err_set (err, RXQ_E_UNSUPPORTED,
                                "tensor '%s': dtype %s is not supported (rxq reads F32, F16, BF16)",
                                t->name, t->dtype);
        //  Expected bytes = product (shape) * bits / 8, overflow-checked.
        uint64_t n = 1;
        bool overflow = false;
        for (int k = 0; k < t->n_dims; k++) {
            if (t->shape [k] && n > UINT64_MAX / t->shape [k])
                overflow = true;
            n *= t->shape [k];
        }
        if (overflow || n > UINT64_MAX / s_dtypes [d].bits)
            return cmn_err_set (err, RXQ_E_FORMAT_SHAPE, "tensor '%s': shape too large", t->name);
        uint64_t bytes = n * s_dtypes [d].bits / 8;
        if (t->begin > t->end)
            return cmn_err_set (err, RXQ_E_FORMAT_BOUNDS,
                                "tensor '%s': data_offsets [%llu, %llu] begin after end", t->name,
                                (unsigned long long) t->begin, (unsigned long long) t->end);
        if (t->end > data_len)
            return cmn_err_set (err, RXQ_E_FORMAT_BOUNDS,
                                "tensor '%s': data out of bounds (data_offsets end %llu, data"
                                " section is %zu bytes)", t->name, (unsigned long long) t->end,
                                data_len);
        if (t->end - t->begin != bytes)
            return cmn_err_set (err, RXQ_E_FORMAT_SHAPE,
                                "tensor '%s': data_offsets span %llu bytes, shape and dtype"
                                " need %llu", t->name,
                                (unsigned long long) (t->end - t->begin),
                                (unsigned long long) bytes);
        t->size = (size_t) (t->end - t->begin);
        t->data = self->buf + data_start + t->begin;
    }
    if (self->n_tensors > 1) {
        const cmn_safetensors_tensor_t **sorted = malloc (self->n_tensors * sizeof *sorted);
        if (!sorted)
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        for (size_t i = 0; i < self->n_tensors; i++)
            sorted [i] = &self->tensors [i];
        qsort (sorted, self->n_tensors, sizeof *sorted, s_cmp_names);
        for (size_t i = 1; i < self->n_tensors; i++)
            if (strcmp (sorted [i - 1]->name, sorted [i]->name) == 0) {
                cmn_err_set (err, RXQ_E_FORMAT_DUP, "duplicate tensor name '%s'", sorted [i]->name);
                free (sorted);
                return -1;
            }
        free (sorted);
    }
    return 0;
}

static int
s_parse (cmn_safetensors_t *self, const cmn_safetensors_limits_t *limits, cmn_err_t *err)
{
    uint64_t n = 0;
    if (self->len < 8)
        return cmn_err_set (err, RXQ_E_FORMAT_TRUNC,
                            "file of %zu bytes is too short for the 8-byte header length",
                            self->len);
    memcpy (&n, self->buf, 8);
    if (n > self->len - 8)
        return cmn_err_set (err, RXQ_E_FORMAT_TRUNC,
                            "header length %llu runs past the end of the file (%zu bytes)",
                            (unsigned long long) n, self->len);
    if (n > limits->max_header)
        return cmn_err_set (err, RXQ_E_LIMIT, "header length %llu exceeds the limit of %zu",
                            (unsigned long long) n, limits->max_header);
    s_json_t j = { .p = self->buf + 8, .len = (size_t) n, .limits = limits, .err = err };
    if (s_expect (&j, '{') || s_enter (&j))
        return -1;
    bool have_meta = false;
    if (!s_accept (&j, '}')) {
        do {
            char *key;
            if (s_string (&j, &key))
                return -1;
            if (s_expect (&j, ':')) {
                free (key);
                return -1;
            }
            if (strcmp (key, "__metadata__") == 0) {
                free (key);
                if (have_meta)
                    return cmn_err_set (err, RXQ_E_FORMAT_DUP, "duplicate __metadata__");
                have_meta = true;
                if (s_metadata (self, &j))
                    return -1;
                continue;
            }
            if (self->n_tensors == limits->max_tensors) {
                free (key);
                return cmn_err_set (err, RXQ_E_LIMIT, "more than %zu tensors", limits->max_tensors);
            }
            if (self->n_tensors == self->t_cap) {
                size_t cap = self->t_cap ? self->t_cap * 2 : 16;
                cmn_safetensors_tensor_t *ts = realloc (self->tensors, cap * sizeof *ts);
                if (!ts) {
                    free (key);
                    return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
                }
                self->tensors = ts;
                self->t_cap = cap;
            }
            cmn_safetensors_tensor_t *t = &self->tensors [self->n_tensors++];
            memset (t, 0, sizeof *t);
            t->name = key;
            if (s_tensor_entry (&j, t))
                return -1;
        } while (s_accept (&j, ','));
        if (s_expect (&j, '}'))
            return -1;
    }
    //  Writers pad the header with spaces to align the data section.
    s_ws (&j);
    if (j.pos != j.len)
        return s_syntax (&j, "trailing bytes after the header object");
    return s_validate (self, limits, 8 + (size_t) n, err);
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

cmn_safetensors_t *
cmn_safetensors_new_from_buffer (const void *buf, size_t len,
                                 const cmn_safetensors_limits_t *limits, cmn_err_t *err)
{
    assert (buf || len == 0);
    cmn_safetensors_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    self->buf = buf ? buf : (const uint8_t *) "";
    self->len = len;
    if (s_parse (self, limits ? limits : &cmn_safetensors_limits_default, err)) {
        cmn_safetensors_destroy (&self);
        s_clean_message (err);
        return NULL;
    }
    return self;
}

cmn_safetensors_t *
cmn_safetensors_open_file (const char *path, const cmn_safetensors_limits_t *limits,
                           cmn_err_t *err)
{
    assert (path);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cmn_err_set (err, RXQ_E_IO, "cannot open '%s': %s", path, strerror (errno));
        return NULL;
    }
    struct stat st;
    if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || (uint64_t) st.st_size > SIZE_MAX) {
        cmn_err_set (err, RXQ_E_IO, "'%s' is not a regular file that can be mapped", path);
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
    close (fd);
    cmn_safetensors_t *self = cmn_safetensors_new_from_buffer (map, size, limits, err);
    if (!self) {
        if (map)
            munmap (map, size);
        return NULL;
    }
    self->map = map;
    self->map_len = size;
    return self;
}

void
cmn_safetensors_destroy (cmn_safetensors_t **self_p)
{
    assert (self_p);
    cmn_safetensors_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n_tensors; i++)
        s_tensor_free (&self->tensors [i]);
    free (self->tensors);
    for (size_t i = 0; i < self->n_meta; i++) {
        free (self->meta [i].key);
        free (self->meta [i].value);
    }
    free (self->meta);
    if (self->map)
        munmap (self->map, self->map_len);
    free (self);
    *self_p = NULL;
}

size_t
cmn_safetensors_tensor_count (const cmn_safetensors_t *self)
{
    assert (self);
    return self->n_tensors;
}

const cmn_safetensors_tensor_t *
cmn_safetensors_tensor (const cmn_safetensors_t *self, size_t i)
{
    assert (self && i < self->n_tensors);
    return &self->tensors [i];
}

const cmn_safetensors_tensor_t *
cmn_safetensors_find_tensor (const cmn_safetensors_t *self, const char *name)
{
    assert (self && name);
    for (size_t i = 0; i < self->n_tensors; i++)
        if (strcmp (self->tensors [i].name, name) == 0)
            return &self->tensors [i];
    return NULL;
}

size_t
cmn_safetensors_metadata_count (const cmn_safetensors_t *self)
{
    assert (self);
    return self->n_meta;
}

const char *
cmn_safetensors_metadata_key (const cmn_safetensors_t *self, size_t i)
{
    assert (self && i < self->n_meta);
    return self->meta [i].key;
}

const char *
cmn_safetensors_metadata_value (const cmn_safetensors_t *self, size_t i)
{
    assert (self && i < self->n_meta);
    return self->meta [i].value;
}

const char *
cmn_safetensors_find_metadata (const cmn_safetensors_t *self, const char *key)
{
    assert (self && key);
    for (size_t i = 0; i < self->n_meta; i++)
        if (strcmp (self->meta [i].key, key) == 0)
            return self->meta [i].value;
    return NULL;
}
