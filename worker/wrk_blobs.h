/*  wrk_blobs: the worker's blob cache on local disk (docs/store.md).
 *
 *  Blobs the worker fetched from the broker's store (models) or produced
 *  (outputs it uploaded) are kept as DIR/<64 hex digits>, least recently
 *  used first out once their total passes a size cap. A file appears under
 *  its name only by rename after its SHA-256 was checked (cmn_xfer), so a
 *  name in the cache is always a complete blob; DIR/tmp holds work in
 *  progress; what a process that is gone left there is removed at start
 *  (workers on one machine may share the directory). Last use is the
 *  file's mtime, so the order survives a restart.
 *
 *  Transfers go through a cmn_xfer, a DEALER socket of its own: call every
 *  method from one thread at a time (the worker's device thread).
 *
 *  Eviction unlinks files; a job that has a blob open or mapped keeps
 *  reading it (POSIX), so evicting a blob in use is safe, only its disk
 *  space comes back later. The blob just fetched or added is never the
 *  one evicted: a single blob larger than the cap stays until the next one
 *  arrives.
 */
#ifndef WRK_BLOBS_H
#define WRK_BLOBS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_blob.h"
#include "cmn_error.h"
#include "cmn_xfer.h"

typedef struct _wrk_blobs_t wrk_blobs_t;

//  Default size cap: 10 GiB.
#define WRK_BLOBS_CAP_DEFAULT (10ull << 30)

//  Opens the cache in DIR (created if needed), indexes the blobs already
//  there and evicts down to CAP_BYTES (> 0). ENDPOINT is the broker to
//  fetch from and upload to. Returns NULL with ERR set: RXQ_E_IO naming
//  the directory when it cannot be created or written; RXQ_E_INVAL for a
//  bad endpoint.
wrk_blobs_t *wrk_blobs_new (const char *dir, uint64_t cap_bytes, const char *endpoint,
                            cmn_err_t *err);

//  Frees the cache object (the files stay). Idempotent; nulls *self_p.
void wrk_blobs_destroy (wrk_blobs_t **self_p);

//  Finds blob HASH in the cache, or fetches it from the broker, and writes
//  its path into PATH (PATH_SIZE bytes). HIT (may be NULL) says whether it
//  was already there. PROGRESS (may be NULL) is called during a fetch.
//  Marks the blob most recently used. Returns 0, or -1 with ERR set:
//  RXQ_E_PARAM for a malformed HASH; what cmn_xfer_get reports
//  (RXQ_E_NOTFOUND, RXQ_E_IO_HASH, RXQ_E_UNREACHABLE, ...).
int wrk_blobs_fetch (wrk_blobs_t *self, const char *hash, char *path, size_t path_size,
                     bool *hit, cmn_xfer_progress_fn *progress, void *arg, cmn_err_t *err);

//  Uploads the file at PATH to the broker's store (cmn_xfer_put: nothing
//  is sent when the broker has it), then moves it into the cache under its
//  name, so a later job on it starts warm. PATH must be on the cache's
//  file system (wrk_blobs_tmp_path gives such a path). Stores the name in
//  HASH and the size in SIZE (may be NULL). Returns 0, or -1 with ERR set
//  (what cmn_xfer_put reports; RXQ_E_IO when the move fails). On failure
//  PATH is left where it was.
int wrk_blobs_put (wrk_blobs_t *self, const char *path, char hash [CMN_BLOB_HEX_LEN + 1],
                   uint64_t *size, cmn_err_t *err);

//  Makes sure the broker's store has blob HASH, which this cache holds:
//  announces it (cmn_xfer_put re-hashes the file, and sends it only when
//  the broker lacks it). Returns 0, or -1 with ERR set: RXQ_E_NOTFOUND
//  when the cache does not hold it (or its file no longer hashes to its
//  name, which then drops it); what cmn_xfer_put reports.
int wrk_blobs_push (wrk_blobs_t *self, const char *hash, cmn_err_t *err);

//  Writes into PATH (PATH_SIZE bytes) a fresh path in the cache's tmp
//  directory ending in SUFFIX, for a file the caller will pass to
//  wrk_blobs_put (or remove). Returns 0, or -1 when it does not fit.
int wrk_blobs_tmp_path (wrk_blobs_t *self, const char *suffix, char *path, size_t path_size);

//  True when blob HASH is in the cache (does not change its place in LRU
//  order).
bool wrk_blobs_has (wrk_blobs_t *self, const char *hash);

//  Bytes and number of blobs in the cache.
uint64_t wrk_blobs_bytes (wrk_blobs_t *self);
size_t wrk_blobs_count (wrk_blobs_t *self);

//  The size cap in bytes.
uint64_t wrk_blobs_cap (wrk_blobs_t *self);

#endif
