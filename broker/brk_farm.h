/*  brk_farm: the broker's side of the benchmark farm (issue 6).
 *
 *  Three things, all Redis-facing, kept out of brk_broker so they can be
 *  tested against a real Redis without a broker loop:
 *
 *  - Records. When a bench.* job succeeds, its result (the worker's
 *    immutable benchmark record, worker/wrk_farm.h) is appended to the
 *    stream <prefix>bench, in the same pipelined batch that writes the
 *    job's end state. Entry fields: job, kind, worker, device (the
 *    device's name, for people reading the stream with redis-cli), ms (the
 *    job's finish time) and record (the result, msgpack, byte for byte as
 *    the worker sent it). docs/redis.md and docs/farm.md describe them.
 *  - Tuning entries. When a `tune` job succeeds, its entry is stored in
 *    the hash <prefix>tune under the device key "vendor|name|driver" (the
 *    same text as wrk_tune_device_key), replacing any earlier one: a tune
 *    job's result is already the best configuration its search found, and
 *    a new search is a deliberate re-measurement. The stored value is the
 *    body of the TUNING message (proto 6.9) that delivers it to workers.
 *  - Queries. RECORDS (proto 5.10) pages through the stream, filtered by
 *    kind and start time.
 *
 *  Writes are appended to the store's pipeline (no I/O); reads are
 *  synchronous and need an empty pipeline, as brk_store requires.
 */
#ifndef BRK_FARM_H
#define BRK_FARM_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "brk_job.h"
#include "brk_store.h"
#include "cmn_error.h"

//  Records a RECORDS reply holds at most, and by default.
#define BRK_FARM_LIMIT_MAX     1000
#define BRK_FARM_LIMIT_DEFAULT 200
//  Bytes of records a RECORDS reply holds before it stops early (the rest
//  follow on the next page): well under RXQ_MAX_BODY_BYTES.
#define BRK_FARM_REPLY_BYTES   (512u << 10)

//  A RECORDS query (proto 5.10).
typedef struct {
    char kind [64];             // only records of this kind; "" all
    uint64_t from_ms;           // only records finished at or after this
                                // Unix time in ms; 0 from the start
    char after [48];            // stream id: only entries after it (paging);
                                // "" none. Wins over from_ms.
    uint64_t limit;             // stream entries scanned, 1..BRK_FARM_LIMIT_MAX
} brk_farm_query_t;

//  True when a succeeded job of KIND writes farm data: bench.* kinds and
//  `tune`.
bool brk_farm_writes (const char *kind);

//  Appends to STORE's pipeline what succeeded JOB implies: its record
//  (XADD <prefix>bench) for a bench.* kind, its tuning entry (HSET
//  <prefix>tune) for `tune`. Asserts JOB succeeded with such a kind.
//  Returns 0, or -1 with ERR (RXQ_E_PARAM) and nothing appended when the
//  result lacks what is needed (a tune result without device_key or entry,
//  a record that is not a map). When KEY is not NULL, a tune's device key
//  is copied into it (SIZE bytes) so the caller can push the entry to live
//  workers with brk_farm_tuning_body.
int brk_farm_persist (brk_store_t *store, const char *prefix, const brk_job_t *job,
                      char *key, size_t size, cmn_err_t *err);

//  Writes the device key "vendor|name|driver" of a READY's DEVICE map into
//  BUF. Returns 0, or -1 (BUF "") when DEVICE is NULL or lacks the name.
int brk_farm_device_key (const msgpack_object *device, char *buf, size_t size);

//  Reads the stored tuning entry for device KEY: the TUNING body, as
//  stored. Returns 0 with *BODY (malloc'd; the caller frees) and *LEN; 1
//  when none is stored; -1 with ERR when Redis failed (RXQ_E_UNAVAILABLE)
//  or the stored value is not a valid map (RXQ_E_REDIS_REPLY).
int brk_farm_tune_get (brk_store_t *store, const char *prefix, const char *key,
                       char **body, size_t *len, cmn_err_t *err);

//  The TUNING body for succeeded tune JOB (as brk_farm_persist stores it)
//  into SB (initialised by the caller). Returns 0, or -1 with ERR as
//  brk_farm_persist.
int brk_farm_tuning_body (const brk_job_t *job, msgpack_sbuffer *sb, cmn_err_t *err);

//  Parses a RECORDS body into Q (defaults first). Returns 0, or -1 with
//  ERR: RXQ_E_PROTO for a field of the wrong type, RXQ_E_PARAM for a value
//  out of range or an `after` that is not a stream id.
int brk_farm_query_parse (brk_farm_query_t *q, const msgpack_object *body, cmn_err_t *err);

//  Runs query Q and packs the whole FINAL body {req, records, last, more}
//  into SB (initialised by the caller). Stream entries that are malformed
//  (missing fields, an invalid record) are skipped and counted in
//  `skipped`. Returns 0, or -1 with ERR (RXQ_E_UNAVAILABLE) when Redis
//  failed; SB then holds nothing useful.
int brk_farm_read (brk_store_t *store, const char *prefix, const brk_farm_query_t *q,
                   uint64_t req, msgpack_sbuffer *sb, cmn_err_t *err);

#endif
