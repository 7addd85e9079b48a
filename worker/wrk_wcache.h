/*  wrk_wcache: the worker's weight cache in device memory (docs/store.md,
 *  "Weight cache and affinity").
 *
 *  An entry is the quantized tensors of one model at one type, keyed by
 *  (model blob name, type name): one read-only cl_mem buffer per tensor,
 *  filled from a GGUF file (the output of a quantize job). Entries are
 *  evicted least recently used first, by bytes, so the total stays under a
 *  budget of device memory; an entry larger than the whole budget is not
 *  kept. Each entry also keeps a small msgpack map the filler chose (the
 *  quantize job keeps its options, report and output blob there, so a
 *  repeat of the same job is answered from the cache).
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
