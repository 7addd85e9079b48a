/*  wrk_llm: a Llama model ready to run on the worker's device, with its
 *  KV cache: the forward pass on the kernel library.
 *
 *  wrk_llm_eval feeds tokens at the next positions and returns the logits
 *  of the last one. A batch of more than one token (a prompt) runs the
 *  matrix-matrix kernels (qgemm) in chunks of n_batch tokens; one token
 *  (generation) runs the matrix-vector kernels (qgemv). Per block:
 *      h  = rms_norm (x) * attn_norm
 *      q, k, v = h Wq^T, h Wk^T, h Wv^T;   q, k rotated (RoPE, llama mode)
 *      k, v appended to the cache at rows n_past ..
 *      x += attention (q, cache) Wo^T      (causal, grouped-query)
 *      h  = rms_norm (x) * ffn_norm
 *      x += (silu (h Wgate^T) * h Wup^T) Wdown^T
 *  then logits = (rms_norm (x_last) * output_norm) Wout^T. The token
 *  embeddings are dequantized on the host, row by row, for the tokens fed.
 *
 *  Everything is enqueued on the device's in-order queue; eval waits for
 *  the logits. Between blocks it calls the caller's stop check, so a
 *  cancel takes effect within one block's kernels.
 *
 *  Sequences: one object can hold several independent sequences (up to
 *  WRK_LLM_MAX_SEQ), each with its own KV cache of n_ctx positions.
 *  wrk_llm_eval_batch runs tokens of several sequences as one batch: the
 *  projections and the FFN see all their rows in one matrix-matrix
 *  product; RoPE uses each row's own position; K and V go to each
 *  sequence's cache and attention runs per sequence (one launch each,
 *  reading its rows of the batch). So several prompts are processed
 *  together, and generation advances every sequence one token per step.
 *
 *  Telemetry: with profiling on, each kernel's device time is added to
 *  its class (matmul, norm, rope, attention, elementwise, copy).
 */
#ifndef WRK_LLM_H
#define WRK_LLM_H
#include <stdbool.h>
#include <stdint.h>
#include "cmn_error.h"
#include "cmn_llama_model.h"
#include "wrk_device.h"
#include "wrk_llm_weights.h"

//  Kernel classes of the telemetry.
typedef enum {
    WRK_LLM_K_MATMUL, WRK_LLM_K_NORM, WRK_LLM_K_ROPE, WRK_LLM_K_ATTENTION,
    WRK_LLM_K_ELEMENTWISE, WRK_LLM_K_COPY, WRK_LLM_K_COUNT
} wrk_llm_kclass_t;

//  Names of the classes ("matmul", ...), indexed by wrk_llm_kclass_t.
extern const char *const wrk_llm_kclass_names [WRK_LLM_K_COUNT];

//  Stop check: returns 0 to go on, or an error code (RXQ_E_CANCELLED,
//  RXQ_E_TIMEOUT) to stop.
typedef int (wrk_llm_stop_fn) (void *arg);

typedef struct _wrk_llm_t wrk_llm_t;

//  Most sequences one object holds.
#define WRK_LLM_MAX_SEQ 64

//  Tokens for one sequence in a batched eval.
typedef struct {
    int seq;                    // sequence, 0 .. n_seq - 1
    const int32_t *tokens;      // appended at its next positions (borrowed)
    int n;                      // how many, >= 1
} wrk_llm_batch_t;

//  Uploads MODEL (borrowed; must outlive the object) to DEV with a KV
//  cache of N_CTX positions (1 .. the model's context length) and prompt
//  chunks of N_BATCH tokens (>= 1). Returns NULL with ERR set: RXQ_E_LIMIT
//  when N_CTX exceeds the model's context or the model and cache do not
//  fit the device's memory (sizes in the message), RXQ_E_OPENCL,
//  RXQ_E_NOMEM.
wrk_llm_t *wrk_llm_new (wrk_device_t *dev, const cmn_llama_model_t *model, int n_ctx,
                        int n_batch, cmn_err_t *err);

//  As wrk_llm_new, with N_SEQ (1 .. WRK_LLM_MAX_SEQ) sequences of N_CTX
//  positions each; N_BATCH counts rows of all sequences together. The
//  memory check counts every sequence's cache.
wrk_llm_t *wrk_llm_new_seqs (wrk_device_t *dev, const cmn_llama_model_t *model, int n_ctx,
                             int n_batch, int n_seq, cmn_err_t *err);

//  As wrk_llm_new_seqs, on WEIGHTS already on the device (MODEL's, made by
//  wrk_llm_weights_new; borrowed: they must outlive the object, which
//  never writes them), so a model kept in the worker's weight cache runs
//  without a new upload. NULL WEIGHTS: the object uploads its own. The
//  memory check counts the weights' bytes with the cache's.
wrk_llm_t *wrk_llm_new_on (wrk_device_t *dev, const cmn_llama_model_t *model,
                           wrk_llm_weights_t *weights, int n_ctx, int n_batch, int n_seq,
                           cmn_err_t *err);

//  Numerics of the forward pass.
//    WRK_LLM_NUMERICS_F32 (default): float32 throughout; agrees with a
//        float64 evaluation of the same dequantized weights to about 1e-5.
//    WRK_LLM_NUMERICS_GGML: computes as llama.cpp's CPU backend (ggml-cpu,
//        x86) does, bit for bit for Q4_1 models (kernels/ggml.cl): Q8_1
//        activations and ggml's dot-product order, its RMSNorm, SwiGLU and
//        RoPE, an F16 KV cache and its non-flash attention with F16 query
//        and probabilities. Greedy decoding then gives llama.cpp's tokens
//        (docs/llm.md "Correctness"). Other weight types get ggml's
//        activation rounding (Q8_0, Q8_K) with this library's products.
//        The attention order assumes llama.cpp ran the same chunks (a
//        prompt in one batch, then one token at a time).
//    WRK_LLM_NUMERICS_Q8: as F32, except that a product of one token with
//        a Q4_0, Q4_1, Q8_0, Q4_K or Q6_K matrix (decoding) rounds the activations to
//        int8 blocks of 32 and sums integer products (wrk_kernels_gemv_q_i8:
//        llama.cpp's GPU method, PTX dp4a on NVIDIA). Faster on GPUs,
//        slower on CPUs; the activations' rounding moves logits about as
//        much as llama.cpp's own (docs/llm.md).
typedef enum {
    WRK_LLM_NUMERICS_F32 = 0,
    WRK_LLM_NUMERICS_GGML = 1,
    WRK_LLM_NUMERICS_Q8 = 2
} wrk_llm_numerics_t;

//  The numerics named NAME ("f32", "ggml", "q8"), or -1.
int wrk_llm_numerics_from_name (const char *name);

//  Sets the numerics (wrk_llm_numerics_t) of the tokens evaluated from now
//  on; set it before the first eval (or after a reset), since tokens
//  already in the cache keep the numerics they were run with. GGML and
//  Q8 allocate their scratch buffers the first time (GGML's largest: n_head x
//  n_batch x n_ctx floats of attention scores), checked first as wrk_llm_new*
//  checks the model: with the weights and state against the device's
//  memory, the scores against its largest buffer. Returns 0, or -1 with
//  ERR set (RXQ_E_LIMIT when the scratch does not fit, the numerics
//  unchanged; RXQ_E_OPENCL, RXQ_E_NOMEM when those buffers cannot be had).
int wrk_llm_set_numerics (wrk_llm_t *self, int numerics, cmn_err_t *err);

//  The numerics in use.
int wrk_llm_numerics (const wrk_llm_t *self);

//  Releases everything but borrowed weights; nulls *SELF_P; idempotent.
void wrk_llm_destroy (wrk_llm_t **self_p);

//  Positions held in sequence 0's cache, and the capacity of each.
int wrk_llm_n_past (const wrk_llm_t *self);
int wrk_llm_n_ctx (const wrk_llm_t *self);

//  Sequences, and positions held in sequence SEQ's cache.
int wrk_llm_n_seq (const wrk_llm_t *self);
int wrk_llm_seq_past (const wrk_llm_t *self, int seq);

//  Forgets every cache: the next eval starts at position 0.
void wrk_llm_reset (wrk_llm_t *self);

//  Turns per-kernel profiling on or off (off by default).
void wrk_llm_set_profile (wrk_llm_t *self, bool on);

//  Device nanoseconds per kernel class since the last reset of the
//  counters (wrk_llm_clear_times), with profiling on.
const uint64_t *wrk_llm_kernel_ns (const wrk_llm_t *self);
void wrk_llm_clear_times (wrk_llm_t *self);

//  Runs the N (>= 1) TOKENS of sequence 0 at positions n_past .. n_past
//  + N - 1 and,
//  when LOGITS is not NULL, stores the last token's n_vocab logits there.
//  STOP (may be NULL) is called with ARG between blocks. Returns 0, or -1
//  with ERR set: RXQ_E_LIMIT when the tokens do not fit the cache,
//  RXQ_E_INVAL for a token id outside the vocabulary, the stop check's
//  code (the cache then holds an unknown part of the tokens: reset it),
//  RXQ_E_OPENCL.
int wrk_llm_eval (wrk_llm_t *self, const int32_t *tokens, int n, float *logits,
                  wrk_llm_stop_fn *stop, void *arg, cmn_err_t *err);

//  Runs N (1 .. n_seq) entries of BATCH together, each sequence at most
//  once, in chunks of n_batch rows; when LOGITS is not NULL, row i
//  (n_vocab floats) gets the logits of entry i's last token. Errors as
//  wrk_llm_eval; nothing runs when an entry does not fit or holds a bad
//  token id; after a stop or device error the caches hold an unknown part
//  of the tokens (reset).
int wrk_llm_eval_batch (wrk_llm_t *self, const wrk_llm_batch_t *batch, int n, float *logits,
                        wrk_llm_stop_fn *stop, void *arg, cmn_err_t *err);

#endif
