/*  wrk_wcache: the worker's weight cache in device memory (docs/store.md,
 *  "Weight cache and affinity").
 *
 *  An entry is keyed by (model blob name, type name) and holds one of:
 *    - tensors: one read-only cl_mem buffer per tensor of a GGUF file (the
 *      output of a quantize job; wrk_wcache_load_gguf), with a small
 *      msgpack map the filler chose (the quantize job keeps its options,
 *      report and output blob there, so a repeat of the same job is
 *      answered from the cache);
 *    - an object: anything that owns device memory, given with its size
 *      in bytes and the function that destroys it (wrk_wcache_put; the
 *      generate job keeps a loaded model, type "llm", this way).
 *  Entries of both kinds are evicted together, least recently used first,
 *  by bytes, so the total stays under a budget of device memory; an entry
 *  larger than the whole budget is not kept.
 *
 *  The worker advertises what it holds (wrk_wcache_pack_held: READY,
 *  HEARTBEAT and DONE carry `weights`), and the broker leases the next job
 *  on a model to a worker that holds it (proto 6.10).
 *
 *  Threads: the device thread loads, looks up and uses entries; the main
 *  thread only packs the list of what is held. That list is guarded by a
 *  mutex; everything else is the device thread's alone.
 */
#ifndef WRK_WCACHE_H
#define WRK_WCACHE_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_blob.h"
#include "cmn_error.h"
#include "wrk_device.h"

typedef struct _wrk_wcache_t wrk_wcache_t;

//  Default budget: a quarter of the device's global memory.
#define WRK_WCACHE_BUDGET_DIVISOR 4

//  Creates an empty cache for DEV (borrowed; it must outlive the cache)
//  holding at most BUDGET_BYTES (> 0) of tensors. NULL when out of memory.
wrk_wcache_t *wrk_wcache_new (wrk_device_t *dev, uint64_t budget_bytes);

//  Releases every buffer and frees the cache. Idempotent; nulls *self_p.
void wrk_wcache_destroy (wrk_wcache_t **self_p);

//  Loads every tensor of the GGUF file at PATH into device buffers as the
//  entry (MODEL, TYPE), replacing an entry with that key, and keeps a copy
//  of EXTRA (EXTRA_LEN bytes of msgpack, may be NULL). Evicts least
//  recently used entries to make room. Returns 0, or -1 with ERR set:
//  RXQ_E_LIMIT when the tensors alone exceed the budget (nothing is
//  evicted then); RXQ_E_FORMAT* / RXQ_E_IO for an unreadable file;
//  RXQ_E_OPENCL when the device refuses a buffer (what was loaded is
//  released).
int wrk_wcache_load_gguf (wrk_wcache_t *self, const char *model, const char *type,
                          const char *path, const void *extra, size_t extra_len,
                          cmn_err_t *err);

//  Destroys an object kept by wrk_wcache_put: called once, on the device
//  thread, when its entry is evicted, replaced or dropped, or the cache is
//  destroyed.
typedef void (wrk_wcache_free_fn) (void *obj);

//  Evicts least recently used entries until BYTES more fit the budget, so
//  that an object about to be allocated on the device finds the room its
//  entry will take (then wrk_wcache_put it). Returns 0, or -1 with ERR set
//  to RXQ_E_LIMIT when BYTES alone exceed the budget (nothing is evicted).
int wrk_wcache_reserve (wrk_wcache_t *self, uint64_t bytes, cmn_err_t *err);

//  Keeps the object *OBJ_P, which holds BYTES of device memory, as the
//  entry (MODEL, TYPE), replacing an entry with that key and evicting
//  least recently used ones to make room. On success the cache owns the
//  object (FREE_FN destroys it) and *OBJ_P is nulled; on failure the
//  caller keeps it. Returns 0, or -1 with ERR set: RXQ_E_LIMIT when BYTES
//  exceed the budget (nothing is evicted then); RXQ_E_INVAL for a key too
//  long; RXQ_E_NOMEM.
int wrk_wcache_put (wrk_wcache_t *self, const char *model, const char *type, void **obj_p,
                    uint64_t bytes, wrk_wcache_free_fn *free_fn, cmn_err_t *err);

//  The object of entry (MODEL, TYPE), marked most recently used; NULL when
//  that entry is not held or holds tensors. Valid until the next call that
//  may evict (wrk_wcache_reserve, _put, _load_gguf, _drop, _destroy).
void *wrk_wcache_object (wrk_wcache_t *self, const char *model, const char *type);

//  Finds the entry (MODEL, TYPE) and marks it most recently used. Returns
//  true with its EXTRA map (valid until the entry is evicted or replaced;
//  may be NULL) and its size in bytes, false when it is not held.
bool wrk_wcache_lookup (wrk_wcache_t *self, const char *model, const char *type,
                        const void **extra, size_t *extra_len, uint64_t *bytes);

//  The buffer of tensor NAME of entry (MODEL, TYPE), or NULL. Does not
//  change the LRU order (call wrk_wcache_lookup for that).
cl_mem wrk_wcache_tensor (wrk_wcache_t *self, const char *model, const char *type,
                          const char *name);

//  Drops the entry (MODEL, TYPE) if held.
void wrk_wcache_drop (wrk_wcache_t *self, const char *model, const char *type);

//  Packs what is held, most recently used first, as an array of maps
//  {model: str, type: str, bytes: uint}. Safe from any thread.
void wrk_wcache_pack_held (wrk_wcache_t *self, msgpack_packer *pk);

//  Entries held and their bytes of device memory; the budget.
size_t wrk_wcache_count (wrk_wcache_t *self);
uint64_t wrk_wcache_bytes (wrk_wcache_t *self);
uint64_t wrk_wcache_budget (wrk_wcache_t *self);

#endif
