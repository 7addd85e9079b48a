/*  cmn_codec: msgpack bodies with limits, on top of msgpack-c.
 *
 *  Parsing is separate from I/O: bytes in, objects out. Before msgpack-c
 *  sees a body, cmn_codec_check walks it without allocating and refuses
 *  anything over the limits: nesting deeper than max_depth, a string or
 *  binary longer than max_str, an array or map declaring more entries than
 *  max_items or than the bytes that remain could hold (msgpack-c would
 *  otherwise allocate for the declared count first), trailing bytes, and
 *  truncation. Only then is the body unpacked into a zone.
 *
 *  Accessors read typed fields of a map by key and say exactly which field
 *  is missing or of the wrong type.
 */
#ifndef CMN_CODEC_H
#define CMN_CODEC_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "cmn_error.h"

typedef struct {
    size_t max_bytes;   // whole body, bytes
    int max_depth;      // nesting of arrays and maps; a scalar body is depth 0
    size_t max_str;     // one str/bin/ext payload, bytes
    size_t max_items;   // entries of one array or map (pairs for a map)
} cmn_codec_limits_t;

//  The protocol's limits (cmn_proto.h).
extern const cmn_codec_limits_t cmn_codec_limits_default;

//  Validates that BUF holds exactly one msgpack object within LIMITS.
//  Returns 0, or -1 with ERR set (RXQ_E_PROTO or RXQ_E_LIMIT) naming what is
//  wrong and at which byte offset. Allocates nothing.
int cmn_codec_check (const void *buf, size_t len, const cmn_codec_limits_t *limits,
                     cmn_err_t *err);

//  A decoded body: the root object and the zone that owns it.
typedef struct {
    msgpack_zone zone;
    msgpack_object root;
} cmn_body_t;

//  Checks and unpacks BUF into BODY, whose root must be a map. On success
//  the caller must call cmn_body_free (BODY). On failure returns -1 with ERR
//  set and BODY needs no freeing. BODY holds its own copy of BUF: BUF may
//  be freed as soon as this returns.
int cmn_body_decode (cmn_body_t *body, const void *buf, size_t len,
                     const cmn_codec_limits_t *limits, cmn_err_t *err);

//  Frees what cmn_body_decode allocated. Idempotent.
void cmn_body_free (cmn_body_t *body);

//  Field accessors on a map. Each returns 0 when KEY is present with the
//  right type and stores it; 1 when KEY is absent (nothing stored); -1 when
//  present with another type, or when MAP is not a map, with ERR naming the
//  field ("field 'priority' must be an unsigned integer").
//  Strings are not NUL-terminated: use the length, or cmn_codec_get_cstr.
const msgpack_object *cmn_codec_find (const msgpack_object *map, const char *key);
int cmn_codec_get_str  (const msgpack_object *map, const char *key,
                        const char **str, size_t *len, cmn_err_t *err);
int cmn_codec_get_cstr (const msgpack_object *map, const char *key,
                        char *out, size_t out_size, cmn_err_t *err);
int cmn_codec_get_uint (const msgpack_object *map, const char *key, uint64_t *out,
                        cmn_err_t *err);
int cmn_codec_get_int  (const msgpack_object *map, const char *key, int64_t *out,
                        cmn_err_t *err);
int cmn_codec_get_double (const msgpack_object *map, const char *key, double *out,
                          cmn_err_t *err);
int cmn_codec_get_bool (const msgpack_object *map, const char *key, bool *out,
                        cmn_err_t *err);
int cmn_codec_get_map  (const msgpack_object *map, const char *key,
                        const msgpack_object **out, cmn_err_t *err);
int cmn_codec_get_array (const msgpack_object *map, const char *key,
                         const msgpack_object **out, cmn_err_t *err);

//  True when OBJ is a str equal to TEXT.
bool cmn_codec_str_eq (const msgpack_object *obj, const char *text);

//  A growing buffer with its packer, for building one message body:
//  cmn_packbuf_init, pack into .pk, send .sb.data/.sb.size, then
//  msgpack_sbuffer_destroy (&.sb).
typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} cmn_packbuf_t;

void cmn_packbuf_init (cmn_packbuf_t *self);

//  Initialises B with the body {KEY: [ITEMS]}: ITEMS are LEN bytes holding
//  N packed objects (the batched commands JOBS and DONES, proto 6.3.1 and
//  6.6.2). The caller sends B and frees it as any packbuf.
void cmn_pack_batch (cmn_packbuf_t *b, const char *key, uint32_t n, const void *items,
                     size_t len);

//  Packing shorthands for map entries with string keys.
void cmn_pack_cstr (msgpack_packer *pk, const char *text);
void cmn_pack_key (msgpack_packer *pk, const char *key);
void cmn_pack_kv_str (msgpack_packer *pk, const char *key, const char *value);
void cmn_pack_kv_strn (msgpack_packer *pk, const char *key, const char *value, size_t len);
void cmn_pack_kv_uint (msgpack_packer *pk, const char *key, uint64_t value);
void cmn_pack_kv_int (msgpack_packer *pk, const char *key, int64_t value);
void cmn_pack_kv_double (msgpack_packer *pk, const char *key, double value);
void cmn_pack_kv_bool (msgpack_packer *pk, const char *key, bool value);

//  Writes OBJ as JSON to OUT. Binary fields become {"bin": "<hex>"}; maps
//  with non-string keys print their keys as JSON strings. Used by --json.
void cmn_codec_print_json (FILE *out, const msgpack_object *obj);

//  Like print_json, into a malloc'd NUL-terminated string (caller frees),
//  or NULL when out of memory.
char *cmn_codec_to_json (const msgpack_object *obj);

#endif
