/*  wrk_bench_llm: the `bench.llm` job: Llama forward-pass speed
 *  (wrk_llm) in llama-bench's convention, stored as a farm record
 *  (wrk_farm.h) so it lands in the bench stream and `rxq bench report`.
 *
 *  On the job's device, with the GGUF at `model` (a path on the worker):
 *    pp: one prompt of `pp` tokens (default 512) from an empty cache,
 *        tokens per second = pp / wall time of that eval (llama-bench's
 *        ppN);
 *    tg: `tg` tokens (default 128) fed one at a time from an empty cache,
 *        tokens per second = tg / their wall time (llama-bench's tgN);
 *  the tokens are random ids (splitmix64 from `seed`); after a warm-up
 *  (which builds the kernels) each is run `reps` times (default 2) and the
 *  best kept. One more profiled pp + tg run gives each kernel class's
 *  device time (matmul, norm, rope, attention, elementwise, copy).
 *
 *  Record (wrk_farm.h): params {model, pp, tg, reps, seed}; figures:
 *    gflops         2 x matrix weights x pp / pp time (the projections'
 *                   arithmetic only)
 *    gbps           bytes a generated token reads (every weight, plus the
 *                   KV rows at the average position tg / 2) x tg tokens/s
 *    peak_fraction  gbps / the measured copy bandwidth: how close
 *                   generation is to the memory-bandwidth floor
 *    pp_tps, tg_tps, pp_ms, tg_ms, bytes_per_token, and share_CLASS
 *    for each kernel class (fraction of the profiled run's device time);
 *  kernels: one entry per class (its device ns in the profiled run, runs
 *  1), plus copy_f4 and sgemm_peak of the measured peak.
 *
 *  Errors: RXQ_E_PARAM (bad parameter, pp or tg beyond the model's
 *  context), the model's errors (RXQ_E_IO, RXQ_E_FORMAT, RXQ_E_UNSUPPORTED,
 *  RXQ_E_LIMIT), RXQ_E_OPENCL*, or the stop reason.
 */
#ifndef WRK_BENCH_LLM_H
#define WRK_BENCH_LLM_H
#include "wrk_job.h"

//  The `bench.llm` job runner (wrk_job_fn).
int wrk_bench_llm_job (wrk_job_t *job);

#endif
