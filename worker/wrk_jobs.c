/*  wrk_jobs: the table of job runners this worker can run, and the runners
 *  too small to deserve a file of their own (noop).
 *
 *  A kind listed in common/cmn_kind.c must have a runner here before a
 *  worker advertises it; the worker advertises exactly this table. */
#include "wrk_job.h"
#include "wrk_bench.h"
#include "wrk_bench_llm.h"
#include "wrk_farm.h"
#include "wrk_generate.h"
#include "wrk_optimize.h"
#include "wrk_quantize.h"
#include "cmn_codec.h"
#include <string.h>
#include <time.h>

//  noop: sleeps `sleep_ms` in slices of at most 10 ms, checking for a stop
//  between slices, then echoes `payload` or fails on request.
static int
s_noop (wrk_job_t *job)
{
    uint64_t sleep_ms = 0;
    bool fail = false;
    const char *payload = NULL;
    size_t payload_len = 0;
    if (cmn_codec_get_uint (job->params, "sleep_ms", &sleep_ms, &job->err) < 0
    ||  cmn_codec_get_bool (job->params, "fail", &fail, &job->err) < 0
    ||  cmn_codec_get_str (job->params, "payload", &payload, &payload_len, &job->err) < 0)
        return -1;
    int64_t end = wrk_job_now_ms () + (int64_t) sleep_ms;
    while (wrk_job_now_ms () < end) {
        if (wrk_job_should_stop (job))
            return -1;
        int64_t left = end - wrk_job_now_ms ();
        struct timespec ts = { 0, (left > 10 ? 10 : left) * 1000000L };
        nanosleep (&ts, NULL);
        if (sleep_ms >= 100)
            wrk_job_progress (job, 1.0 - (double) (end - wrk_job_now_ms ()) / (double) sleep_ms,
                              "sleeping");
    }
    if (fail)
        return cmn_err_set (&job->err, RXQ_E_CHECK, "noop asked to fail (fail=true)");
    msgpack_pack_map (job->result, payload ? 2 : 1);
    cmn_pack_kv_bool (job->result, "ok", true);
    if (payload)
        cmn_pack_kv_strn (job->result, "payload", payload, payload_len);
    return 0;
}

static const struct {
    const char *kind;
    wrk_job_fn *fn;
} s_runners [] = {
    { "noop", s_noop },
    { "bench.device", wrk_bench_device },
    { "bench.gemm", wrk_farm_bench_gemm },
    { "bench.gemv", wrk_farm_bench_gemv },
    { "bench.kernels", wrk_farm_bench_kernels },
    { "bench.llm", wrk_bench_llm_job },
    { "tune", wrk_farm_tune },
    { "quantize", wrk_quantize_job },
    { "optimize", wrk_optimize_job },
    { "generate", wrk_generate_job },
    { NULL, NULL }
};

wrk_job_fn *
wrk_jobs_find (const char *kind)
{
    for (int i = 0; s_runners [i].kind; i++)
        if (strcmp (s_runners [i].kind, kind) == 0)
            return s_runners [i].fn;
    return NULL;
}
