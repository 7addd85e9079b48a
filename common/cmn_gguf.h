/*  cmn_gguf: GGUF version 3 reader (llama.cpp's model file format).
 *
 *  The reader takes a buffer and limits, never a file descriptor: bytes in,
 *  an index of metadata and tensors out. It trusts nothing in the file:
 *  every count, length and offset is checked against the bytes that remain
 *  and against SIZE_MAX before anything is allocated, and errors name the
 *  field at fault ("tensor 'blk.0.attn_q.weight': data out of bounds").
 *  The rules it enforces are listed in docs/formats.md.
 *
 *  Strings and tensor data are not copied: values point into the buffer,
 *  which must outlive the object (cmn_gguf_open_file maps the file and
 *  keeps the mapping for the object's lifetime). Keys and tensor names are
 *  copied and NUL-terminated.
 *
 *  rxq assumes a little-endian host, as GGUF data is little-endian.
 *  Writing GGUF files is cmn_gguf_writer's job.
 */
#ifndef CMN_GGUF_H
#define CMN_GGUF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_error.h"

#if defined (__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cmn_gguf assumes a little-endian host"
#endif

#define CMN_GGUF_MAGIC      0x46554747u     // "GGUF" read as a little-endian uint32
#define CMN_GGUF_VERSION    3
#define CMN_GGUF_DEFAULT_ALIGNMENT 32
#define CMN_GGUF_MAX_DIMS   4

//  Metadata value types, as numbered in the file.
typedef enum {
    CMN_GGUF_UINT8   = 0,
    CMN_GGUF_INT8    = 1,
    CMN_GGUF_UINT16  = 2,
    CMN_GGUF_INT16   = 3,
    CMN_GGUF_UINT32  = 4,
    CMN_GGUF_INT32   = 5,
    CMN_GGUF_FLOAT32 = 6,
    CMN_GGUF_BOOL    = 7,
    CMN_GGUF_STRING  = 8,
    CMN_GGUF_ARRAY   = 9,
    CMN_GGUF_UINT64  = 10,
    CMN_GGUF_INT64   = 11,
    CMN_GGUF_FLOAT64 = 12,
} cmn_gguf_type_t;

//  One metadata value. The reader fills these in; cmn_gguf_writer takes
//  them (and copies what they point to), so callers build nested arrays by
//  hand or copy values from a file they read.
typedef struct cmn_gguf_value cmn_gguf_value_t;
struct cmn_gguf_value {
    cmn_gguf_type_t type;
    union {
        uint64_t u;                 // UINT8 .. UINT64, zero-extended
        int64_t i;                  // INT8 .. INT64, sign-extended
        double f;                   // FLOAT32 (exactly widened) and FLOAT64
        bool b;                     // BOOL
        struct {
            const char *ptr;        // bytes, not NUL-terminated
            size_t len;             // length in bytes
        } str;                      // STRING
        struct {
            cmn_gguf_type_t elem;   // element type
            size_t n;               // number of elements
            const void *raw;        // scalar elements: n packed little-endian
                                    // values of the element's size, maybe unaligned
            const cmn_gguf_value_t *items;  // STRING and ARRAY elements: n values
        } arr;                      // ARRAY
    } v;
};

//  Bytes of one scalar element of TYPE in the file, 0 for STRING/ARRAY and
//  unknown types.
size_t cmn_gguf_type_size (int type);

//  Name of a value type ("uint32", "array"), or "unknown".
const char *cmn_gguf_type_name (int type);

//  Limits on what a file may declare; exceeding one is RXQ_E_LIMIT.
typedef struct {
    size_t max_tensors;     // tensor infos
    size_t max_kv;          // metadata key/value pairs
    size_t max_str;         // bytes of one string (keys, names, values)
    size_t max_array;       // elements of one array
    int max_depth;          // nesting of arrays: 1 allows arrays of scalars;
                            // at most 64 (asserted: it bounds recursion)
} cmn_gguf_limits_t;

//  Generous enough for any llama.cpp model (vocabularies of 256k tokens,
//  merges lists, chat templates): 65536 tensors, 65536 pairs, 16 MiB
//  strings, 16M-element arrays, depth 4.
extern const cmn_gguf_limits_t cmn_gguf_limits_default;

//  One tensor as the file describes it.
typedef struct {
    const char *name;           // NUL-terminated, unique in the file
    int n_dims;                 // 1 .. CMN_GGUF_MAX_DIMS (0 for a scalar)
    int64_t ne [CMN_GGUF_MAX_DIMS]; // elements per dimension, ne[0] innermost; unused = 1
    int type;                   // GGML type number (cmn_quant_blocks.h)
    uint64_t offset;            // bytes from the start of the data section
    size_t size;                // bytes of data
    const void *data;           // into the buffer; aligned as the file is
} cmn_gguf_tensor_t;

typedef struct _cmn_gguf_t cmn_gguf_t;

//  Parses the GGUF file in BUF (LEN bytes) within LIMITS (NULL for
//  cmn_gguf_limits_default). BUF is borrowed and must outlive the object.
//  Returns NULL with ERR set on malformed input (RXQ_E_FORMAT_*, with a
//  message naming the field), on a limit (RXQ_E_LIMIT), or on allocation
//  failure (RXQ_E_NOMEM).
cmn_gguf_t *cmn_gguf_new_from_buffer (const void *buf, size_t len,
                                      const cmn_gguf_limits_t *limits, cmn_err_t *err);

//  Maps PATH read-only and parses it as cmn_gguf_new_from_buffer does; the
//  object owns the mapping. RXQ_E_IO when the file cannot be opened or
//  mapped.
cmn_gguf_t *cmn_gguf_open_file (const char *path, const cmn_gguf_limits_t *limits,
                                cmn_err_t *err);

//  Frees the object (and its mapping); nulls *SELF_P; idempotent.
void cmn_gguf_destroy (cmn_gguf_t **self_p);

//  File facts: version (3), alignment of the data section (general.alignment
//  or 32), byte offset of the data section in the buffer.
uint32_t cmn_gguf_version (const cmn_gguf_t *self);
size_t cmn_gguf_alignment (const cmn_gguf_t *self);
size_t cmn_gguf_data_offset (const cmn_gguf_t *self);

//  True when the file is rxq-private (key rxq.private is true): it may hold
//  rxq's own types and llama.cpp is not expected to load it.
bool cmn_gguf_is_private (const cmn_gguf_t *self);

//  Metadata in file order: key I (NUL-terminated) and its value.
size_t cmn_gguf_kv_count (const cmn_gguf_t *self);
const char *cmn_gguf_kv_key (const cmn_gguf_t *self, size_t i);
const cmn_gguf_value_t *cmn_gguf_kv_value (const cmn_gguf_t *self, size_t i);

//  The value of KEY, or NULL when absent.
const cmn_gguf_value_t *cmn_gguf_find (const cmn_gguf_t *self, const char *key);

//  Typed getters. Each returns 0 and stores the value when KEY is present
//  with a fitting type; 1 when KEY is absent (nothing stored); -1 with ERR
//  set (RXQ_E_PARAM, naming the key and both types) otherwise.
//  get_uint accepts any integer type holding a value >= 0; get_int any
//  integer type whose value fits int64; get_float FLOAT32/FLOAT64 and
//  integers; get_str returns the bytes and length (not NUL-terminated);
//  get_array the array value.
int cmn_gguf_get_uint (const cmn_gguf_t *self, const char *key, uint64_t *out, cmn_err_t *err);
int cmn_gguf_get_int (const cmn_gguf_t *self, const char *key, int64_t *out, cmn_err_t *err);
int cmn_gguf_get_float (const cmn_gguf_t *self, const char *key, double *out, cmn_err_t *err);
int cmn_gguf_get_bool (const cmn_gguf_t *self, const char *key, bool *out, cmn_err_t *err);
int cmn_gguf_get_str (const cmn_gguf_t *self, const char *key, const char **ptr, size_t *len,
                      cmn_err_t *err);
int cmn_gguf_get_array (const cmn_gguf_t *self, const char *key, const cmn_gguf_value_t **out,
                        cmn_err_t *err);

//  Reads element I of a scalar array (ARR->v.arr.raw) into OUT as a value
//  of the element type; asserts that I is in range and the array holds
//  scalars.
void cmn_gguf_array_get (const cmn_gguf_value_t *arr, size_t i, cmn_gguf_value_t *out);

//  Tensors in file order, and by name (NULL when absent).
size_t cmn_gguf_tensor_count (const cmn_gguf_t *self);
const cmn_gguf_tensor_t *cmn_gguf_tensor (const cmn_gguf_t *self, size_t i);
const cmn_gguf_tensor_t *cmn_gguf_find_tensor (const cmn_gguf_t *self, const char *name);

//  Number of elements of TENSOR (the product of ne[]).
uint64_t cmn_gguf_tensor_nelements (const cmn_gguf_tensor_t *tensor);

#endif
