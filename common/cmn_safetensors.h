/*  cmn_safetensors: reader for Hugging Face safetensors files.
 *
 *  A file is an 8-byte little-endian header length N, N bytes of JSON (an
 *  object mapping tensor names to {"dtype", "shape", "data_offsets"} plus
 *  an optional "__metadata__" map of strings), then the data section.
 *  The header is parsed by a small strict JSON parser of our own (no
 *  duplicate keys, no unknown fields, no trailing garbage except the
 *  spaces writers pad with, nesting limited). The reader takes a buffer
 *  and limits; tensor data is not copied. docs/formats.md lists the rules.
 */
#ifndef CMN_SAFETENSORS_H
#define CMN_SAFETENSORS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_error.h"

#define CMN_SAFETENSORS_MAX_DIMS 8

typedef struct {
    size_t max_header;      // bytes of the JSON header
    size_t max_tensors;     // tensor entries
    size_t max_metadata;    // __metadata__ entries
    int max_depth;          // JSON nesting of objects and arrays
    bool allow_unsupported; // list tensors of dtypes other than F32/F16/BF16
                            // (type -1) instead of failing with RXQ_E_UNSUPPORTED
} cmn_safetensors_limits_t;

//  100 MB header (the reference implementation's limit), 65536 tensors,
//  65536 metadata entries, depth 4, unsupported dtypes refused.
extern const cmn_safetensors_limits_t cmn_safetensors_limits_default;

typedef struct {
    const char *name;           // NUL-terminated, unique
    const char *dtype;          // dtype as written ("F16")
    int type;                   // GGML_TYPE_F32, _F16 or _BF16; -1 for other dtypes
    int n_dims;                 // 0 .. CMN_SAFETENSORS_MAX_DIMS
    uint64_t shape [CMN_SAFETENSORS_MAX_DIMS]; // elements per dimension, outermost first
    uint64_t begin;             // data_offsets[0]: bytes from the data section start
    uint64_t end;               // data_offsets[1]: one past the last byte
    size_t size;                // end - begin, bytes
    const void *data;           // into the buffer (not aligned in general)
} cmn_safetensors_tensor_t;

typedef struct _cmn_safetensors_t cmn_safetensors_t;

//  Parses BUF (LEN bytes, borrowed: it must outlive the object) within
//  LIMITS (NULL for the defaults). Returns NULL with ERR set:
//  RXQ_E_FORMAT_TRUNC (header length past the end), RXQ_E_FORMAT_SYNTAX
//  (bad JSON, with the byte offset), RXQ_E_FORMAT (schema: missing or
//  unknown field), RXQ_E_FORMAT_DUP, RXQ_E_FORMAT_TYPE (unknown dtype),
//  RXQ_E_UNSUPPORTED (known dtype rxq does not read, naming the tensor),
//  RXQ_E_FORMAT_BOUNDS (data_offsets), RXQ_E_FORMAT_SHAPE (size does not
//  match the shape), RXQ_E_LIMIT, RXQ_E_NOMEM.
cmn_safetensors_t *cmn_safetensors_new_from_buffer (const void *buf, size_t len,
                                                    const cmn_safetensors_limits_t *limits,
                                                    cmn_err_t *err);

//  Maps PATH read-only and parses it; the object owns the mapping.
//  RXQ_E_IO when the file cannot be opened or mapped.
cmn_safetensors_t *cmn_safetensors_open_file (const char *path,
                                              const cmn_safetensors_limits_t *limits,
                                              cmn_err_t *err);

//  Frees the object; nulls *SELF_P; idempotent.
void cmn_safetensors_destroy (cmn_safetensors_t **self_p);

//  Tensors in header order, and by name (NULL when absent).
size_t cmn_safetensors_tensor_count (const cmn_safetensors_t *self);
const cmn_safetensors_tensor_t *cmn_safetensors_tensor (const cmn_safetensors_t *self, size_t i);
const cmn_safetensors_tensor_t *cmn_safetensors_find_tensor (const cmn_safetensors_t *self,
                                                             const char *name);

//  __metadata__ entries in header order (NUL-terminated strings), and the
//  value of KEY (NULL when absent).
size_t cmn_safetensors_metadata_count (const cmn_safetensors_t *self);
const char *cmn_safetensors_metadata_key (const cmn_safetensors_t *self, size_t i);
const char *cmn_safetensors_metadata_value (const cmn_safetensors_t *self, size_t i);
const char *cmn_safetensors_find_metadata (const cmn_safetensors_t *self, const char *key);

#endif
