/*  brk_blobs: the broker's content-addressed blob store (proto section 9,
 *  docs/store.md).
 *
 *  Blobs live on disk under the broker's data directory:
 *      DIR/blobs/<first two hex digits>/<64 hex digits>   complete blobs
 *      DIR/blobs/tmp/<hash>.<n>.part                       uploads in progress
 *  A file appears under its name only by rename (2) after its bytes were
 *  hashed and the hash matched the name, so anything found under a blob
 *  name is complete; a crash leaves only .part files, which are removed at
 *  start. The disk is the authority on what exists; Redis gets metadata
 *  only (size, created, refs), appended to the broker's pipeline.
 *
 *  Transfers are chunked and credit-limited (the zguide's file-transfer
 *  pattern): an uploader announces the blob with BLOB_PUT, is granted
 *  CREDIT chunks of at most CHUNK bytes in flight, and gets one credit back
 *  with each BLOB_DATA reply; a downloader keeps at most its own credit of
 *  BLOB_GET requests outstanding, each for one chunk. No request costs the
 *  broker more memory than one chunk, whatever the blob's size.
 */
#ifndef BRK_BLOBS_H
#define BRK_BLOBS_H
#include <czmq.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "brk_store.h"
#include "cmn_blob.h"
#include "cmn_error.h"

typedef struct _brk_blobs_t brk_blobs_t;

//  Chunk size and credit the broker grants an uploader.
#define BRK_BLOBS_CHUNK_DEFAULT   (1u << 20)
#define BRK_BLOBS_CREDIT_DEFAULT  8
//  An upload that has sent nothing for this long is dropped, its .part
//  file removed.
#define BRK_BLOBS_IDLE_MS_DEFAULT 60000
//  Uploads in progress at once; more are refused with RXQ_E_UNAVAILABLE.
#define BRK_BLOBS_UPLOADS_MAX     64

//  Opens (creating as needed) the store under DIR and removes leftover
//  .part files. STORE (may be NULL: no metadata is written) and PREFIX
//  ("rxq:<cluster>:") are borrowed and must outlive the object. Returns
//  NULL with ERR set (RXQ_E_IO naming the directory) when DIR cannot be
//  created or written.
brk_blobs_t *brk_blobs_new (const char *dir, brk_store_t *store, const char *prefix,
                            cmn_err_t *err);

//  Drops uploads in progress (removing their .part files) and frees the
//  object. Idempotent; nulls *self_p.
void brk_blobs_destroy (brk_blobs_t **self_p);

//  Handles one client request COMMAND (RXQ_CMD_BLOB_PUT, _DATA or _GET)
//  from IDENTITY with decoded BODY; DATA is the frame after the body
//  (NULL when there is none). Sends the reply (FINAL or ERROR, header
//  RXQC01) on ROUTER at once. Never asserts on the peer's input.
void brk_blobs_request (brk_blobs_t *self, zsock_t *router, zframe_t *identity, int command,
                        const msgpack_object *body, zframe_t *data);

//  Drops uploads idle for longer than the idle limit. Call once per
//  heartbeat.
void brk_blobs_tick (brk_blobs_t *self);

//  True when blob HASH (64 hex digits) is stored; its size in SIZE (may be
//  NULL).
bool brk_blobs_has (brk_blobs_t *self, const char *hash, uint64_t *size);

//  Records in Redis that one more job names blob HASH (its refs field).
//  Appended to the pipeline; no I/O happens here.
void brk_blobs_ref (brk_blobs_t *self, const char *hash);

//  Sets the idle limit for uploads, in ms (tests use short ones).
void brk_blobs_set_idle_ms (brk_blobs_t *self, int64_t idle_ms);

//  Number of uploads in progress.
size_t brk_blobs_uploads (brk_blobs_t *self);

#endif
