/*  wrk_generate: the `generate` job: text generation with a Llama GGUF
 *  model (docs/llm.md).
 *
 *  Loads the model named by `model`: a blob of the broker's store (64 hex
 *  digits; docs/store.md), or a file path on the worker. A blob model is
 *  fetched into the worker's blob cache, and the loaded model (the mapped
 *  GGUF, its tokenizer and its weights on the device) is kept in the
 *  worker's weight cache as the entry (blob, WRK_GENERATE_WCACHE_TYPE),
 *  so the next job on it starts at once, with no fetch or upload; the
 *  worker advertises it in `weights`, and the broker sends the model's
 *  next job here (proto 6.10). A path model is loaded for the job alone.
 *  Then it applies the chat template unless `raw`, tokenizes, runs the
 *  prompt through wrk_llm in batches, then samples one token at a time (cmn_sampler) until an
 *  end-of-generation token, `max_tokens`, the `stop` string or the end of
 *  the context. Text streams to the client as PROGRESS events carrying
 *  `text` (what was generated since the previous event; whole UTF-8
 *  characters only, and never a part that might start the stop string),
 *  at most one every WRK_GENERATE_STREAM_MS (or the worker's progress
 *  interval, which the agent enforces by dropping events). Cancel and deadlines are
 *  checked between blocks of the forward pass and between tokens.
 *
 *  Result: {text, tokens: [ids], n_prompt, n_gen, stop_reason ("eos",
 *  "max_tokens", "stop", "context"), seed, prompt_ms, gen_ms, pp_tps,
 *  tg_tps, kernels: {class: share of device time}, kernel_ms,
 *  model_cached (the worker had the model blob already), weights_cached
 *  (its weights were on the device already: no upload), model: {name,
 *  n_layer, n_embd, n_vocab, weight_bytes}}.
 *
 *  `prompts` (1..64 strings) instead of `prompt` runs them as one batch
 *  (wrk_llm_eval_batch): the prompts together, then one step per token
 *  for every prompt still generating; each stops on its own. Events
 *  carry `parts` [{index, text}] instead of `text`; the result carries
 *  `results` [{text, tokens, n_prompt, n_gen, stop_reason}] instead of
 *  the first five fields, and n_prompt, n_gen summed.
 */
#ifndef WRK_GENERATE_H
#define WRK_GENERATE_H
#include "wrk_job.h"

//  Least milliseconds between streamed text events: the job lowers the
//  worker's progress interval (job->progress_ms, 500 by default) to this,
//  so text arrives a few tokens at a time.
#define WRK_GENERATE_STREAM_MS 100

//  The weight cache's type name of a loaded model (wrk_wcache.h).
#define WRK_GENERATE_WCACHE_TYPE "llm"

//  The `generate` job runner (wrk_job_fn).
int wrk_generate_job (wrk_job_t *job);

#endif
