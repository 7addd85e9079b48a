/*  wrk_job: what a job runner sees while it runs on the device thread.
 *
 *  The worker's main thread receives a JOB from the broker and hands it to
 *  the device thread, which looks the kind up in the runner table
 *  (wrk_jobs.c) and calls the runner with a wrk_job_t. The runner:
 *    - reads its parameters from job->params (validated by the broker
 *      against cmn_kinds, but a runner re-checks what it relies on);
 *    - calls wrk_job_progress () as it goes; progress is streamed to the
 *      client as PARTIAL messages;
 *    - calls wrk_job_should_stop () between kernel enqueues and returns
 *      RXQ_E_CANCELLED or RXQ_E_TIMEOUT when it says so, having released
 *      everything it allocated;
 *    - packs its result, one msgpack map, into job->result and returns 0,
 *      or returns -1 with job->err set (the code from cmn_error.h; OpenCL
 *      failures as RXQ_E_OPENCL with the cl_int named in the message).
 */
#ifndef WRK_JOB_H
#define WRK_JOB_H
#include <msgpack.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "cmn_blob.h"
#include "cmn_error.h"
#include "cmn_proto.h"

typedef struct _wrk_device_t wrk_device_t;
typedef struct _wrk_blobs_t wrk_blobs_t;
typedef struct _wrk_wcache_t wrk_wcache_t;
typedef struct _wrk_job_t wrk_job_t;

//  Called by wrk_job_progress with a packed msgpack map (the progress event
//  body: fraction, message, and any extra fields); ARG is the sink's state.
typedef void (wrk_job_sink_fn) (void *arg, const char *data, size_t size);

struct _wrk_job_t {
    char id [RXQ_MAX_ID_LEN + 1];    // job id
    uint64_t attempt;               // lease attempt (fencing token)
    const msgpack_object *params;   // parameter map, never NULL
    wrk_device_t *device;           // the worker's device; NULL for kinds
                                    // that need none
    const char *device_name;        // the worker's device name for any kind
                                    // (read-only; the optimize job's target
                                    // layout), NULL when it has no device
    wrk_blobs_t *blobs;             // the worker's blob cache (wrk_blobs.h):
                                    // fetch inputs, upload outputs; NULL
                                    // when the worker has none
    wrk_wcache_t *wcache;           // the worker's weight cache in device
                                    // memory (wrk_wcache.h), or NULL
    atomic_int *stop;               // set to RXQ_E_CANCELLED or RXQ_E_TIMEOUT
                                    // by the main thread
    int64_t deadline_ms;            // monotonic ms when the attempt must
                                    // end, 0 for none
    msgpack_packer *result;         // where the runner packs its result map
    cmn_err_t err;                  // set by a runner that fails
    wrk_job_sink_fn *sink;          // progress sink
    void *sink_arg;                 // its state
    int64_t last_progress_ms;       // monotonic ms of the last progress sent
    uint32_t progress_ms;           // least ms between two progress events the
                                    // sink forwards (it drops the others); 0 none;
                                    // a runner may lower it for its job
};

//  Sends a progress event: FRACTION in [0, 1] of the work done and a short
//  MESSAGE. Also serves as the device thread's liveness beat.
void wrk_job_progress (wrk_job_t *job, double fraction, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Returns 0 while the job may continue, or RXQ_E_CANCELLED / RXQ_E_TIMEOUT
//  (also setting job->err) when it must stop. Cheap: call it between
//  kernel enqueues.
int wrk_job_should_stop (wrk_job_t *job);

//  Fetches blob HASH, the job's WHAT (a word such as "model"), into the
//  worker's blob cache (a hit costs nothing) and writes its path into PATH
//  (PATH_SIZE bytes); HIT (may be NULL) says whether it was cached. Sends
//  progress "fetching WHAT: X of Y MB" at fraction 0, at most every 5% of
//  the blob, then "WHAT HASH... found in the blob cache" or "fetched"; a
//  cancel or the deadline stops the fetch between chunks, leaving nothing.
//  Returns 0, or -1 with job->err set: RXQ_E_UNSUPPORTED when the worker
//  has no blob cache; what wrk_blobs_fetch reports (RXQ_E_NOTFOUND,
//  RXQ_E_IO_HASH, RXQ_E_UNREACHABLE, RXQ_E_CANCELLED, ...).
int wrk_job_fetch_blob (wrk_job_t *job, const char *what, const char *hash, char *path,
                        size_t path_size, bool *hit);

//  Uploads the job's output file at PATH (in the blob cache's tmp
//  directory: wrk_blobs_tmp_path) to the broker's store and moves it into
//  the blob cache (wrk_blobs_put), with a progress event at fraction 1.
//  Stores its name in HASH. Returns 0, or -1 with job->err set (what
//  wrk_blobs_put reports); PATH is removed on failure.
int wrk_job_put_blob (wrk_job_t *job, const char *path, char hash [CMN_BLOB_HEX_LEN + 1]);

//  A job runner. Returns 0 with a result packed, or -1 with job->err set.
typedef int (wrk_job_fn) (wrk_job_t *job);

//  Looks the runner for KIND up; NULL when this worker does not run it.
wrk_job_fn *wrk_jobs_find (const char *kind);

//  Monotonic milliseconds.
int64_t wrk_job_now_ms (void);

#endif
