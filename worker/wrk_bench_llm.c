/*  wrk_bench_llm: see wrk_bench_llm.h. */
#include "wrk_bench_llm.h"
#include "wrk_device.h"
#include "wrk_farm.h"
#include "wrk_llm.h"
#include "wrk_tune.h"
#include "cmn_codec.h"
#include "cmn_llama_model.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BLLM_PP_DEFAULT 512
#define BLLM_TG_DEFAULT 128
#define BLLM_REPS_DEFAULT 2

static int
s_stop (void *arg)
{
    return wrk_job_should_stop ((wrk_job_t *) arg);
}

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

//  One pp run (PP tokens from an empty cache) and one tg run (TG tokens
//  one at a time from an empty cache); their wall seconds in *PP_S, *TG_S.
static int
s_run (wrk_job_t *job, wrk_llm_t *llm, const int32_t *ids, int pp, int tg, float *logits,
       double *pp_s, double *tg_s)
{
    wrk_llm_reset (llm);
    double t = s_now ();
    if (wrk_llm_eval (llm, ids, pp, logits, s_stop, job, &job->err) < 0)
        return -1;
    *pp_s = s_now () - t;
    wrk_llm_reset (llm);
    t = s_now ();
    for (int i = 0; i < tg; i++)
        if (wrk_llm_eval (llm, &ids [i], 1, logits, s_stop, job, &job->err) < 0)
            return -1;
    *tg_s = s_now () - t;
    return 0;
}

int
wrk_bench_llm_job (wrk_job_t *job)
{
    const char *model_s = NULL;
    size_t model_len = 0;
    uint64_t pp, tg, reps, seed;
    if (cmn_codec_get_str (job->params, "model", &model_s, &model_len, &job->err) < 0) {
        job->err.code = RXQ_E_PARAM;
        return -1;
    }
    if (!model_s || !model_len)
        return cmn_err_set (&job->err, RXQ_E_PARAM, "bench.llm: parameter 'model' is required");
    if (wrk_farm_get_uint (job, "pp", 1, 8192, BLLM_PP_DEFAULT, &pp)
    ||  wrk_farm_get_uint (job, "tg", 1, 8192, BLLM_TG_DEFAULT, &tg)
    ||  wrk_farm_get_uint (job, "reps", 1, 100, BLLM_REPS_DEFAULT, &reps)
    ||  wrk_farm_get_uint (job, "seed", 0, UINT64_MAX, 1, &seed))
        return -1;
    if (!job->device)
        return cmn_err_set (&job->err, RXQ_E_NODEVICE, "bench.llm needs an OpenCL device and "
                            "this worker has none");
    char path [4096];
    if (model_len >= sizeof path)
        return cmn_err_set (&job->err, RXQ_E_PARAM, "bench.llm: model path too long");
    memcpy (path, model_s, model_len);
    path [model_len] = 0;

    int rc = -1;
    cmn_llama_model_t *model = NULL;
    wrk_llm_t *llm = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    wrk_farm_record_t *r = calloc (1, sizeof *r);
    if (!r) {
        cmn_err_set (&job->err, RXQ_E_NOMEM, "bench.llm: out of memory");
        goto done;
    }
    wrk_job_progress (job, 0, "bench.llm: loading %s", path);
    if (!(model = cmn_llama_model_open (path, &job->err)))
        goto done;
    const cmn_llama_hparams_t *hp = cmn_llama_model_hparams (model);
    const int n_ctx = (int) (pp > tg ? pp : tg);
    if (n_ctx > hp->n_ctx_train) {
        cmn_err_set (&job->err, RXQ_E_PARAM, "bench.llm: pp %llu / tg %llu exceed the model's "
                     "context of %d tokens", (unsigned long long) pp, (unsigned long long) tg,
                     hp->n_ctx_train);
        goto done;
    }
    ids = malloc ((size_t) n_ctx * sizeof *ids);
    logits = malloc ((size_t) hp->n_vocab * sizeof *logits);
    if (!ids || !logits) {
        cmn_err_set (&job->err, RXQ_E_NOMEM, "bench.llm: out of memory");
        goto done;
    }
    uint64_t x = seed;
    for (int i = 0; i < n_ctx; i++) {
        //  splitmix64
        uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        ids [i] = (int32_t) ((z ^ (z >> 31)) % (uint64_t) hp->n_vocab);
    }
    if (!(llm = wrk_llm_new (job->device, model, n_ctx, (int) pp, &job->err)))
        goto done;

    wrk_farm_record_start (r, job->device, "bench.llm", seed, WRK_TUNE_QMATMUL);
    wrk_farm_record_param (r, "model", 0, path);
    wrk_farm_record_param (r, "pp", pp, NULL);
    wrk_farm_record_param (r, "tg", tg, NULL);
    wrk_farm_record_param (r, "reps", reps, NULL);
    wrk_farm_record_param (r, "seed", seed, NULL);
    wrk_job_progress (job, 0.02, "bench.llm: measuring the device's peaks");
    if (wrk_farm_measure_peak (job, r))
        goto done;

    //  Warm-up: builds every kernel the two paths use.
    wrk_job_progress (job, 0.05, "bench.llm: warm-up");
    double pp_s, tg_s, best_pp = 0, best_tg = 0;
    if (s_run (job, llm, ids, pp < 8 ? (int) pp : 8, 2, logits, &pp_s, &tg_s) < 0)
        goto done;
    for (uint64_t k = 0; k < reps; k++) {
        if (s_run (job, llm, ids, (int) pp, (int) tg, logits, &pp_s, &tg_s) < 0)
            goto done;
        if (!k || pp_s < best_pp)
            best_pp = pp_s;
        if (!k || tg_s < best_tg)
            best_tg = tg_s;
        wrk_job_progress (job, 0.1 + 0.7 * (double) (k + 1) / (double) (reps + 1),
                          "bench.llm: pp%llu %.1f tok/s, tg%llu %.1f tok/s",
                          (unsigned long long) pp, (double) pp / pp_s,
                          (unsigned long long) tg, (double) tg / tg_s);
    }
    //  The profiled run, for each class's share of device time.
    wrk_llm_set_profile (llm, true);
    wrk_llm_clear_times (llm);
    if (s_run (job, llm, ids, (int) pp, (int) tg, logits, &pp_s, &tg_s) < 0)
        goto done;
    const uint64_t *ns = wrk_llm_kernel_ns (llm);
    uint64_t total = 0;
    for (int k = 0; k < WRK_LLM_K_COUNT; k++)
        total += ns [k];

    //  Matrix weights per token (the projections and the output matrix)
    //  and the bytes a generated token reads.
    const double E = hp->n_embd, KV = (double) hp->n_head_kv * hp->head_dim;
    const double F = hp->n_ff, L = hp->n_layer, V = hp->n_vocab;
    const double weights = L * (2 * E * E + 2 * E * KV + 3 * E * F) + V * E;
    const double bytes_tok = (double) cmn_llama_model_weight_bytes (model)
                           + 2.0 * L * KV * 4.0 * ((double) tg / 2.0);
    const double pp_tps = (double) pp / best_pp, tg_tps = (double) tg / best_tg;
    r->gflops = 2.0 * weights * pp_tps / 1e9;
    r->gbps = bytes_tok * tg_tps / 1e9;
    r->peak_fraction = r->copy_gbps > 0 ? r->gbps / r->copy_gbps : 0;
    wrk_farm_record_extra (r, "pp_tps", pp_tps);
    wrk_farm_record_extra (r, "tg_tps", tg_tps);
    wrk_farm_record_extra (r, "pp_ms", best_pp * 1e3);
    wrk_farm_record_extra (r, "tg_ms", best_tg * 1e3);
    wrk_farm_record_extra (r, "bytes_per_token", bytes_tok);
    static const char *const share [WRK_LLM_K_COUNT] = {
        "share_matmul", "share_norm", "share_rope", "share_attention", "share_elementwise",
        "share_copy"
    };
    for (int k = 0; k < WRK_LLM_K_COUNT; k++) {
        wrk_farm_record_extra (r, share [k], total ? (double) ns [k] / (double) total : 0);
        uint64_t t = ns [k] ? ns [k] : 1;
        wrk_farm_record_kernel (r, wrk_llm_kclass_names [k], &t, 1);
    }
    wrk_farm_pack_record (job, r);
    wrk_job_progress (job, 1.0, "bench.llm: pp%llu %.1f tok/s, tg%llu %.1f tok/s",
                      (unsigned long long) pp, pp_tps, (unsigned long long) tg, tg_tps);
    rc = 0;
done:
    wrk_llm_destroy (&llm);
    cmn_llama_model_destroy (&model);
    free (ids);
    free (logits);
    free (r);
    return rc;
}
