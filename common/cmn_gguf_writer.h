/*  cmn_gguf_writer: builds and writes GGUF version 3 files.
 *
 *  Collect metadata and a list of tensors, then write: header, metadata
 *  (in the order set), tensor infos, padding to the alignment, and each
 *  tensor's data padded to the alignment. Tensor data is streamed: it comes
 *  from a caller's pointer or from a callback asked for one chunk at a
 *  time, so the whole file never needs to be in memory.
 *
 *  cmn_gguf_writer_write_file writes PATH.tmp, syncs it and renames it to
 *  PATH only on success (the temporary file is removed on failure), so a
 *  half-written file never looks complete.
 *
 *  Tensors of rxq's own types (RXQ_TYPE_INT4_*) and nested arrays (which
 *  llama.cpp's reader refuses) make the file rxq-private: the writer then
 *  sets rxq.private = true, and llama.cpp is not expected to load the
 *  file. Other files are plain llama.cpp-compatible GGUF: tensor data is
 *  contiguous, in the order added, each tensor padded to the alignment,
 *  as llama.cpp requires.
 */
#ifndef CMN_GGUF_WRITER_H
#define CMN_GGUF_WRITER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "cmn_error.h"
#include "cmn_gguf.h"

typedef struct _cmn_gguf_writer_t cmn_gguf_writer_t;

//  Produces bytes [OFFSET, OFFSET + LEN) of one tensor's data into BUF.
//  Returns 0, or -1 with ERR set to abort the write.
typedef int (cmn_gguf_data_fn) (void *arg, void *buf, uint64_t offset, size_t len,
                                cmn_err_t *err);

//  Creates an empty writer (alignment 32). Returns NULL when out of memory.
cmn_gguf_writer_t *cmn_gguf_writer_new (void);

//  Frees the writer and its copies; nulls *SELF_P; idempotent.
void cmn_gguf_writer_destroy (cmn_gguf_writer_t **self_p);

//  Sets the data alignment (a power of two) and the general.alignment key.
//  Returns 0, or -1 with ERR (RXQ_E_INVAL) for a bad value or when tensors
//  were already added.
int cmn_gguf_writer_set_alignment (cmn_gguf_writer_t *self, uint32_t alignment, cmn_err_t *err);

//  Sets KEY to a deep copy of VALUE, replacing an earlier value of KEY in
//  place. Scalar arrays are copied from v.arr.raw (n packed values), string
//  and nested arrays from v.arr.items. Returns 0, or -1 with ERR
//  (RXQ_E_INVAL for an empty key or unknown type, RXQ_E_NOMEM).
int cmn_gguf_writer_set (cmn_gguf_writer_t *self, const char *key,
                         const cmn_gguf_value_t *value, cmn_err_t *err);

//  Shorthands for cmn_gguf_writer_set.
int cmn_gguf_writer_set_u32 (cmn_gguf_writer_t *self, const char *key, uint32_t value, cmn_err_t *err);
int cmn_gguf_writer_set_u64 (cmn_gguf_writer_t *self, const char *key, uint64_t value, cmn_err_t *err);
int cmn_gguf_writer_set_i32 (cmn_gguf_writer_t *self, const char *key, int32_t value, cmn_err_t *err);
int cmn_gguf_writer_set_f32 (cmn_gguf_writer_t *self, const char *key, float value, cmn_err_t *err);
int cmn_gguf_writer_set_bool (cmn_gguf_writer_t *self, const char *key, bool value, cmn_err_t *err);
int cmn_gguf_writer_set_str (cmn_gguf_writer_t *self, const char *key, const char *value, cmn_err_t *err);
int cmn_gguf_writer_set_array (cmn_gguf_writer_t *self, const char *key, cmn_gguf_type_t elem,
                               const void *raw, size_t n, cmn_err_t *err);
int cmn_gguf_writer_set_str_array (cmn_gguf_writer_t *self, const char *key,
                                   const char *const *strs, size_t n, cmn_err_t *err);

//  Adds a tensor of TYPE with N_DIMS (1..4) dimensions NE (ne[0] a multiple
//  of the type's block size). Its data comes from DATA (borrowed until the
//  write finishes; cmn_quant_row_bytes (TYPE, ne[0]) * rows bytes) or, when
//  DATA is NULL, from FN (ARG). Returns 0, or -1 with ERR: RXQ_E_INVAL for
//  a bad shape, unknown type, empty name or missing data source;
//  RXQ_E_FORMAT_DUP for a name already added.
int cmn_gguf_writer_add_tensor (cmn_gguf_writer_t *self, const char *name, int type,
                                int n_dims, const int64_t *ne, const void *data,
                                cmn_gguf_data_fn *fn, void *arg, cmn_err_t *err);

//  Writes the file to FD (from its current position) or to STREAM. Returns
//  0, or -1 with ERR (RXQ_E_IO, or what a data callback set).
int cmn_gguf_writer_write_fd (cmn_gguf_writer_t *self, int fd, cmn_err_t *err);
int cmn_gguf_writer_write_stream (cmn_gguf_writer_t *self, FILE *stream, cmn_err_t *err);

//  Writes PATH.tmp, fsyncs and renames it to PATH. On failure removes
//  PATH.tmp, leaves PATH as it was, and returns -1 with ERR.
int cmn_gguf_writer_write_file (cmn_gguf_writer_t *self, const char *path, cmn_err_t *err);

#endif
