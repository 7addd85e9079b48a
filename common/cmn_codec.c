/*  cmn_codec: see cmn_codec.h. */
#include "cmn_codec.h"
#include "cmn_proto.h"
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const cmn_codec_limits_t cmn_codec_limits_default = {
    RXQ_MAX_BODY_BYTES, RXQ_MAX_DEPTH, RXQ_MAX_STR_BYTES, RXQ_MAX_ITEMS
};

//  Depth of the explicit stack used by the checker; limits above this are
//  refused as programming errors.
#define CHECK_STACK 64

static uint64_t
s_be (const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p [i];
    return v;
}

int
cmn_codec_check (const void *buf, size_t len, const cmn_codec_limits_t *lim,
                 cmn_err_t *err)
{
    assert (lim && lim->max_depth < CHECK_STACK);
    const uint8_t *p = buf;
    if (len == 0)
        return cmn_err_set (err, RXQ_E_PROTO, "empty msgpack body");
    if (len > lim->max_bytes)
        return cmn_err_set (err, RXQ_E_LIMIT, "msgpack body of %zu bytes exceeds the limit of %zu",
                            len, lim->max_bytes);
    //  remaining [d] counts objects still to read in the container at depth d.
    uint64_t remaining [CHECK_STACK];
    int depth = 0;
    remaining [0] = 1;
    size_t pos = 0;
    while (depth >= 0) {
        if (remaining [depth] == 0) {
            depth--;
            continue;
        }
        remaining [depth]--;
        if (pos >= len)
            return cmn_err_set (err, RXQ_E_PROTO, "msgpack body truncated at byte %zu", pos);
        uint8_t b = p [pos++];
        size_t avail = len - pos;
        uint64_t payload = 0;   // bytes of scalar payload that follow
        uint64_t items = 0;     // objects a container holds
        int is_container = 0;
        int lenbytes = 0;       // size of a length prefix to read
        int kind = 0;           // 1 str/bin, 2 ext (type byte after length)
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            payload = 0;
        else
        if (b >= 0x80 && b <= 0x8f) { items = 2u * (b & 0x0f); is_container = 1; }
        else
        if (b >= 0x90 && b <= 0x9f) { items = b & 0x0f; is_container = 1; }
        else
        if (b >= 0xa0 && b <= 0xbf) { payload = b & 0x1f; kind = 1; }
        else
        switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; kind = 1; break;
            case 0xc5: case 0xda: lenbytes = 2; kind = 1; break;
            case 0xc6: case 0xdb: lenbytes = 4; kind = 1; break;
            case 0xc7: lenbytes = 1; kind = 2; break;
            case 0xc8: lenbytes = 2; kind = 2; break;
            case 0xc9: lenbytes = 4; kind = 2; break;
            case 0xca: payload = 4; break;
            case 0xcb: payload = 8; break;
            case 0xcc: case 0xd0: payload = 1; break;
            case 0xcd: case 0xd1: payload = 2; break;
            case 0xce: case 0xd2: payload = 4; break;
            case 0xcf: case 0xd3: payload = 8; break;
            case 0xd4: payload = 2; break;
            case 0xd5: payload = 3; break;
            case 0xd6: payload = 5; break;
            case 0xd7: payload = 9; break;
            case 0xd8: payload = 17; break;
            case 0xdc: lenbytes = 2; is_container = 1; break;
            case 0xdd: lenbytes = 4; is_container = 1; break;
            case 0xde: lenbytes = 2; is_container = 2; break;
            case 0xdf: lenbytes = 4; is_container = 2; break;
            default:
                return cmn_err_set (err, RXQ_E_PROTO,
                                    "invalid msgpack type byte 0x%02x at byte %zu", b, pos - 1);
        }
        if (lenbytes) {
            if (avail < (size_t) lenbytes)
                return cmn_err_set (err, RXQ_E_PROTO, "msgpack body truncated at byte %zu", pos);
            uint64_t n = s_be (p + pos, lenbytes);
            pos += (size_t) lenbytes;
            avail -= (size_t) lenbytes;
            if (is_container)
                items = is_container == 2 ? 2 * n : n;
            else {
                payload = n + (kind == 2 ? 1 : 0);
                if (n > lim->max_str)
                    return cmn_err_set (err, RXQ_E_LIMIT,
                                        "msgpack string of %" PRIu64 " bytes exceeds the limit of %zu",
                                        n, lim->max_str);
            }
        }
        if (is_container) {
            uint64_t entries = (b >= 0x80 && b <= 0x8f) || is_container == 2 ? items / 2 : items;
            if (entries > lim->max_items)
                return cmn_err_set (err, RXQ_E_LIMIT,
                                    "msgpack container of %" PRIu64 " entries exceeds the limit of %zu",
                                    entries, lim->max_items);
            //  Every object takes at least one byte: a count larger than
            //  the bytes left is a lie, refused before anything allocates.
            if (items > avail)
                return cmn_err_set (err, RXQ_E_PROTO,
                                    "msgpack container at byte %zu declares %" PRIu64
                                    " objects but only %zu bytes remain", pos, items, avail);
            if (depth + 1 > lim->max_depth)
                return cmn_err_set (err, RXQ_E_LIMIT,
                                    "msgpack nesting exceeds the depth limit of %d", lim->max_depth);
            remaining [++depth] = items;
            continue;
        }
        if (kind == 1 && payload > lim->max_str)
            return cmn_err_set (err, RXQ_E_LIMIT,
                                "msgpack string of %" PRIu64 " bytes exceeds the limit of %zu",
                                payload, lim->max_str);
        if (payload > avail)
            return cmn_err_set (err, RXQ_E_PROTO, "msgpack body truncated at byte %zu", pos);
        pos += (size_t) payload;
    }
    if (pos != len)
        return cmn_err_set (err, RXQ_E_PROTO, "%zu trailing bytes after the msgpack body",
                            len - pos);
    return 0;
}

int
cmn_body_decode (cmn_body_t *body, const void *buf, size_t len,
                 const cmn_codec_limits_t *limits, cmn_err_t *err)
{
    assert (body);
    //  A failed decode leaves BODY empty, so cmn_body_free is always safe.
    memset (body, 0, sizeof *body);
    if (cmn_codec_check (buf, len, limits, err))
        return -1;
    if (!msgpack_zone_init (&body->zone, 2048))
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory decoding a message");
    //  msgpack_unpack points str and bin objects into the buffer it is
    //  given. The body gets its own copy of the bytes, in its zone, so it
    //  stays valid after the caller frees the message it came from (a test
    //  helper read freed frames this way).
    char *copy = len ? msgpack_zone_malloc (&body->zone, len) : NULL;
    if (len && !copy) {
        msgpack_zone_destroy (&body->zone);
        memset (body, 0, sizeof *body);
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory decoding a message");
    }
    if (len)
        memcpy (copy, buf, len);
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack (copy, len, &off, &body->zone, &body->root);
    if (rc != MSGPACK_UNPACK_SUCCESS) {
        msgpack_zone_destroy (&body->zone);
        memset (body, 0, sizeof *body);
        return cmn_err_set (err, rc == MSGPACK_UNPACK_NOMEM_ERROR ? RXQ_E_NOMEM : RXQ_E_PROTO,
                            "msgpack body could not be decoded (%d)", (int) rc);
    }
    if (body->root.type != MSGPACK_OBJECT_MAP) {
        msgpack_zone_destroy (&body->zone);
        memset (body, 0, sizeof *body);
        return cmn_err_set (err, RXQ_E_PROTO, "message body must be a msgpack map");
    }
    return 0;
}

void
cmn_body_free (cmn_body_t *body)
{
    if (body && body->zone.chunk_list.head) {
        msgpack_zone_destroy (&body->zone);
        memset (body, 0, sizeof *body);
    }
}

bool
cmn_codec_str_eq (const msgpack_object *o, const char *text)
{
    size_t n = strlen (text);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n
        && memcmp (o->via.str.ptr, text, n) == 0;
}

const msgpack_object *
cmn_codec_find (const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (cmn_codec_str_eq (&map->via.map.ptr [i].key, key))
            return &map->via.map.ptr [i].val;
    return NULL;
}

//  Common prologue of the getters: 1 when absent, -1 when MAP is no map.
static int
s_lookup (const msgpack_object *map, const char *key, const msgpack_object **val,
          cmn_err_t *err)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return cmn_err_set (err, RXQ_E_PROTO, "expected a map holding field '%s'", key);
    *val = cmn_codec_find (map, key);
    return *val ? 0 : 1;
}

int
cmn_codec_get_str (const msgpack_object *map, const char *key, const char **str,
                   size_t *len, cmn_err_t *err)
{
    const msgpack_object *v = NULL;
    int rc = s_lookup (map, key, &v, err);
    if (rc)
        return rc;
    if (v->type != MSGPACK_OBJECT_STR)
        return cmn_err_set (err, RXQ_E_PROTO, "field '%s' must be a string", key);
    *str = v->via.str.ptr;
    *len = v->via.str.size;
    return 0;
}

int
cmn_codec_get_cstr (const msgpack_object *map, const char *key, char *out,
                    size_t out_size, cmn_err_t *err)
{
    const char *s = NULL;
    size_t n = 0;
    int rc = cmn_codec_get_str (map, key, &s, &n, err);
    if (rc)
        return rc;
    if (n >= out_size)
        return cmn_err_set (err, RXQ_E_LIMIT, "field '%s' is longer than %zu bytes",
                            key, out_size - 1);
    if (memchr (s, 0, n))
        return cmn_err_set (err, RXQ_E_PROTO, "field '%s' contains a NUL byte", key);
    memcpy (out, s, n);
    out [n] = 0;
    return 0;
}

int
cmn_codec_get_uint (const msgpack_object *map, const char *key, uint64_t *out,
                    cmn_err_t *err)
{
    const msgpack_object *v = NULL;
    int rc = s_lookup (map, key, &v, err);
    if (rc)
        return rc;
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return cmn_err_set (err, RXQ_E_PROTO, "field '%s' must be an unsigned integer", key);
    *out = v->via.u64;
    return 0;
}

int
cmn_codec_get_int (const msgpack_object *map, const char *key, int64_t *out,
                   cmn_err_t *err)
{
    const msgpack_object *v = NULL;
    int rc = s_lookup (map, key, &v, err);
    if (rc)
        return rc;
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = v->via.i64;
    else
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
        *out = (int64_t) v->via.u64;
    else
        return cmn_err_set (err, RXQ_E_PROTO, "field '%s' must be an integer", key);
    return 0;
}

int
cmn_codec_get_double (const msgpack_object *map, const char *key, double *out,
                      cmn_err_t *err)
{
    const msgpack_object *v = NULL;
    int rc = s_lookup (map, key, &v, err);
    if (rc)
        return rc;
    if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64)
        *out = v->via.f64;
    else
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *out = (double) v->via.u64;
    else
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = (double) v->via.i64;
    else
        return cmn_err_set (err, RXQ_E_PROTO, "field '%s' must be a number", key);
    return 0;
}

int
cmn_codec_get_bool (const msgpack_object *map, const char *key, bool *out,
                    cmn_err_t *err)
{
    const msgpack_object *v = NULL;
    int rc = s_lookup (map, key, &v, err);
    if (rc)
        return rc;
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return cmn_err_set (err, RXQ_E_PROTO, "field '%s' must be a boolean", key);
    *out = v->via.boolean;
    return 0;
}

int
cmn_codec_get_map (const msgpack_object *map, const char *key,
                   const msgpack_object **out, cmn_err_t *err)
{
    const msgpack_object *v = NULL;
    int rc = s_lookup (map, key, &v, err);
    if (rc)
        return rc;
    if (v->type != MSGPACK_OBJECT_MAP)
        return cmn_err_set (err, RXQ_E_PROTO, "field '%s' must be a map", key);
    *out = v;
    return 0;
}

int
cmn_codec_get_array (const msgpack_object *map, const char *key,
                     const msgpack_object **out, cmn_err_t *err)
{
    const msgpack_object *v = NULL;
    int rc = s_lookup (map, key, &v, err);
    if (rc)
        return rc;
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return cmn_err_set (err, RXQ_E_PROTO, "field '%s' must be an array", key);
    *out = v;
    return 0;
}

void
cmn_pack_cstr (msgpack_packer *pk, const char *text)
{
    size_t n = strlen (text);
    msgpack_pack_str (pk, n);
    msgpack_pack_str_body (pk, text, n);
}

void
cmn_pack_key (msgpack_packer *pk, const char *key)
{
    cmn_pack_cstr (pk, key);
}

void
cmn_pack_kv_str (msgpack_packer *pk, const char *key, const char *value)
{
    cmn_pack_cstr (pk, key);
    cmn_pack_cstr (pk, value ? value : "");
}

void
cmn_pack_kv_strn (msgpack_packer *pk, const char *key, const char *value, size_t len)
{
    cmn_pack_cstr (pk, key);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, value, len);
}

void
cmn_pack_kv_uint (msgpack_packer *pk, const char *key, uint64_t value)
{
    cmn_pack_cstr (pk, key);
    msgpack_pack_uint64 (pk, value);
}

void
cmn_pack_kv_int (msgpack_packer *pk, const char *key, int64_t value)
{
    cmn_pack_cstr (pk, key);
    msgpack_pack_int64 (pk, value);
}

void
cmn_pack_kv_double (msgpack_packer *pk, const char *key, double value)
{
    cmn_pack_cstr (pk, key);
    msgpack_pack_double (pk, value);
}

void
cmn_pack_kv_bool (msgpack_packer *pk, const char *key, bool value)
{
    cmn_pack_cstr (pk, key);
    if (value)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
}

static void
s_json_string (FILE *out, const char *s, size_t n)
{
    fputc ('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s [i];
        if (c == '"' || c == '\\')
            fprintf (out, "\\%c", c);
        else
        if (c == '\n')
            fputs ("\\n", out);
        else
        if (c == '\t')
            fputs ("\\t", out);
        else
        if (c == '\r')
            fputs ("\\r", out);
        else
        if (c < 0x20 || c == 0x7f)
            fprintf (out, "\\u%04x", c);
        else
            fputc (c, out);
    }
    fputc ('"', out);
}

void
cmn_codec_print_json (FILE *out, const msgpack_object *o)
{
    switch (o->type) {
        case MSGPACK_OBJECT_NIL:
            fputs ("null", out);
            break;
        case MSGPACK_OBJECT_BOOLEAN:
            fputs (o->via.boolean ? "true" : "false", out);
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            fprintf (out, "%" PRIu64, o->via.u64);
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            fprintf (out, "%" PRId64, o->via.i64);
            break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            if (isfinite (o->via.f64))
                fprintf (out, "%.17g", o->via.f64);
            else
                fputs ("null", out);
            break;
        case MSGPACK_OBJECT_STR:
            s_json_string (out, o->via.str.ptr, o->via.str.size);
            break;
        case MSGPACK_OBJECT_BIN:
        case MSGPACK_OBJECT_EXT: {
            const char *ptr = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.ptr : o->via.ext.ptr;
            uint32_t n = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.size : o->via.ext.size;
            fputs ("{\"bin\":\"", out);
            for (uint32_t i = 0; i < n; i++)
                fprintf (out, "%02x", (unsigned char) ptr [i]);
            fputs ("\"}", out);
            break;
        }
        case MSGPACK_OBJECT_ARRAY:
            fputc ('[', out);
            for (uint32_t i = 0; i < o->via.array.size; i++) {
                if (i)
                    fputc (',', out);
                cmn_codec_print_json (out, &o->via.array.ptr [i]);
            }
            fputc (']', out);
            break;
        case MSGPACK_OBJECT_MAP:
            fputc ('{', out);
            for (uint32_t i = 0; i < o->via.map.size; i++) {
                const msgpack_object_kv *kv = &o->via.map.ptr [i];
                if (i)
                    fputc (',', out);
                if (kv->key.type == MSGPACK_OBJECT_STR)
                    s_json_string (out, kv->key.via.str.ptr, kv->key.via.str.size);
                else {
                    char *k = cmn_codec_to_json (&kv->key);
                    s_json_string (out, k ? k : "", k ? strlen (k) : 0);
                    free (k);
                }
                fputc (':', out);
                cmn_codec_print_json (out, &kv->val);
            }
            fputc ('}', out);
            break;
        default:
            fputs ("null", out);
    }
}

char *
cmn_codec_to_json (const msgpack_object *obj)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    if (!f)
        return NULL;
    cmn_codec_print_json (f, obj);
    if (fclose (f) != 0) {
        free (text);
        return NULL;
    }
    return text;
}

//  First allocation of a packbuf, bytes. msgpack_sbuffer_write starts at
//  8 KiB, above what malloc keeps in its per-thread caches, so every small
//  message body cost a trip through malloc's bins (and the coalescing of
//  freed chunks): malloc was a fifth of the broker's time at 15,000
//  jobs/s, most of it for these buffers. Bodies are mostly far smaller;
//  larger ones double from here.
#define S_PACKBUF_FIRST 256

//  msgpack write callback for a packbuf: as msgpack_sbuffer_write, with a
//  small first allocation.
static int
s_packbuf_write (void *data, const char *buf, size_t len)
{
    msgpack_sbuffer *sb = data;
    if (sb->alloc - sb->size < len) {
        size_t need = sb->size + len;
        if (need < sb->size)
            return -1;
        size_t alloc = sb->alloc ? sb->alloc : S_PACKBUF_FIRST;
        while (alloc < need) {
            if (alloc > SIZE_MAX / 2)
                return -1;
            alloc *= 2;
        }
        char *grown = realloc (sb->data, alloc);
        if (!grown)
            return -1;
        sb->data = grown;
        sb->alloc = alloc;
    }
    memcpy (sb->data + sb->size, buf, len);
    sb->size += len;
    return 0;
}

void
cmn_packbuf_init (cmn_packbuf_t *self)
{
    assert (self);
    msgpack_sbuffer_init (&self->sb);
    msgpack_packer_init (&self->pk, &self->sb, s_packbuf_write);
}

void
cmn_pack_batch (cmn_packbuf_t *b, const char *key, uint32_t n, const void *items, size_t len)
{
    assert (b && key && (items || !len));
    cmn_packbuf_init (b);
    msgpack_pack_map (&b->pk, 1);
    cmn_pack_key (&b->pk, key);
    msgpack_pack_array (&b->pk, n);
    if (len)
        msgpack_sbuffer_write (&b->sb, items, len);
}
