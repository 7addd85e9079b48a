/*  wrk_job: progress reporting, stop checks and blob transfers for job
 *  runners. */
#include "wrk_job.h"
#include "wrk_blobs.h"
#include "cmn_codec.h"
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int64_t
wrk_job_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
wrk_job_progress (wrk_job_t *job, double fraction, const char *fmt, ...)
{
    char message [256];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (message, sizeof message, fmt, ap);
    va_end (ap);
    if (fraction < 0)
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    job->last_progress_ms = wrk_job_now_ms ();
    if (!job->sink)
        return;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    cmn_pack_kv_double (&pk, "fraction", fraction);
    cmn_pack_kv_str (&pk, "message", message);
    job->sink (job->sink_arg, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
}

int
wrk_job_should_stop (wrk_job_t *job)
{
    int why = job->stop ? atomic_load (job->stop) : 0;
    if (!why && job->deadline_ms && wrk_job_now_ms () >= job->deadline_ms)
        why = RXQ_E_TIMEOUT;
    if (why == RXQ_E_CANCELLED)
        cmn_err_set (&job->err, RXQ_E_CANCELLED, "job cancelled");
    else
    if (why)
        cmn_err_set (&job->err, RXQ_E_TIMEOUT, "job ran past its deadline");
    return why;
}

//  Progress of a blob fetch: fraction 0 (the job's own work has not
//  started), the bytes so far in the message, at most every 5% of the blob.
typedef struct {
    wrk_job_t *job;
    const char *what;           // "model", ...
    uint64_t last;              // bytes at the last report
} s_fetch_t;

static int
s_fetch_progress (void *arg, uint64_t done, uint64_t total)
{
    s_fetch_t *f = arg;
    //  A cancel or the deadline stops the fetch between chunks.
    int stop = wrk_job_should_stop (f->job);
    if (stop)
        return stop;
    if (done != total && done - f->last < total / 20)
        return 0;
    f->last = done;
    wrk_job_progress (f->job, 0.0, "fetching %s: %.1f of %.1f MB", f->what, (double) done / 1e6,
                      (double) total / 1e6);
    return 0;
}

int
wrk_job_fetch_blob (wrk_job_t *job, const char *what, const char *hash, char *path,
                    size_t path_size, bool *hit)
{
    if (!job->blobs)
        return cmn_err_set (&job->err, RXQ_E_UNSUPPORTED, "%s %.16s... is a blob, but this "
                            "worker has no blob cache (see rxq-worker --blob-dir)", what, hash);
    bool cached = false;
    s_fetch_t fetch = { job, what, 0 };
    if (wrk_blobs_fetch (job->blobs, hash, path, path_size, &cached, s_fetch_progress, &fetch,
                         &job->err))
        return -1;
    wrk_job_progress (job, 0.0, "%s %.16s... %s", what, hash,
                      cached ? "found in the blob cache" : "fetched");
    if (hit)
        *hit = cached;
    return 0;
}

int
wrk_job_put_blob (wrk_job_t *job, const char *path, char hash [CMN_BLOB_HEX_LEN + 1])
{
    wrk_job_progress (job, 1.0, "uploading the output to the broker's store");
    if (!job->blobs || wrk_blobs_put (job->blobs, path, hash, NULL, &job->err)) {
        if (!job->blobs)
            cmn_err_set (&job->err, RXQ_E_UNSUPPORTED, "this worker has no blob cache (see "
                         "rxq-worker --blob-dir)");
        unlink (path);
        return -1;
    }
    return 0;
}
