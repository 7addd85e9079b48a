/*  cmn_blob: naming of content-addressed blobs (docs/store.md).
 *
 *  A blob is a file named by the SHA-256 of its bytes, written as 64
 *  lowercase hex digits. SHA-256 comes from libsodium (crypto_hash_sha256),
 *  which libzmq already links for CurveZMQ; this class only wraps it with
 *  the streaming shape every receiver needs (hash the chunks as they
 *  arrive, compare at the end) and a file hasher that reads through a
 *  fixed buffer, so a file of any size costs CMN_BLOB_IO_BYTES of memory.
 */
#ifndef CMN_BLOB_H
#define CMN_BLOB_H
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_error.h"

#define CMN_BLOB_HEX_LEN  64            // hex digits of a blob name
#define CMN_BLOB_IO_BYTES (1u << 20)    // read buffer of cmn_blob_hash_file

//  Streaming SHA-256 state; lives on the caller's stack or in its struct.
typedef struct {
    crypto_hash_sha256_state st;        // libsodium's state
    uint64_t bytes;                     // bytes hashed so far
} cmn_blob_hash_t;

//  Starts a hash.
void cmn_blob_hash_init (cmn_blob_hash_t *h);

//  Adds LEN bytes of DATA.
void cmn_blob_hash_update (cmn_blob_hash_t *h, const void *data, size_t len);

//  Finishes the hash into HEX (65 bytes: 64 digits and a NUL). H must be
//  initialised again before reuse.
void cmn_blob_hash_final (cmn_blob_hash_t *h, char hex [CMN_BLOB_HEX_LEN + 1]);

//  Hashes the file at PATH into HEX and stores its size in SIZE (may be
//  NULL). Reads through a CMN_BLOB_IO_BYTES buffer. Returns 0, or -1 with
//  ERR set (RXQ_E_IO naming the path and the system error; RXQ_E_NOMEM).
int cmn_blob_hash_file (const char *path, char hex [CMN_BLOB_HEX_LEN + 1], uint64_t *size,
                        cmn_err_t *err);

//  True when TEXT (LEN bytes, not necessarily NUL-terminated) is a blob
//  name: exactly 64 lowercase hex digits.
bool cmn_blob_name_valid (const char *text, size_t len);

#endif
