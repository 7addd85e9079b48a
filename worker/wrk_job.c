/*  wrk_job: progress reporting and stop checks for job runners. */
#include "wrk_job.h"
#include "cmn_codec.h"
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

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
