/*  wrk_llm_weights: a Llama model's weights in device memory.
 *
 *  Uploads every matrix once, in a type the quantized GEMV/GEMM kernels
 *  take: Q4_0, Q4_1, Q8_0, Q4_K and Q6_K go up as they are in the file;
 *  any other type (F32, F16, BF16, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K) is
 *  dequantized on the host and requantized to Q8_0 row by row on the way
 *  (logged once per type: results then differ from llama.cpp's by Q8_0's
 *  rounding). Norm vectors go up as float32. The token embeddings are read
 *  on the host (a forward pass dequantizes only the rows it needs) and go
 *  up only when they double as the output projection.
 *
 *  Kept apart from wrk_llm so the upload can live in the worker's weight
 *  cache (keyed by blob hash) across jobs: the generate job keeps them
 *  there and runs wrk_llm_new_on them, without touching the forward pass.
 *
 *  Before allocating anything the total is checked against the device's
 *  global memory and each buffer against its largest allocation: a model
 *  that does not fit fails with RXQ_E_LIMIT and a message giving both
 *  sizes, never with a driver error half way.
 */
#ifndef WRK_LLM_WEIGHTS_H
#define WRK_LLM_WEIGHTS_H
#include <CL/cl.h>
#include <stdint.h>
#include "cmn_error.h"
#include "cmn_llama_model.h"
#include "wrk_device.h"

//  One matrix on the device.
typedef struct {
    cl_mem mem;                 // GGUF block layout, rows back to back
    int type;                   // GGML type of mem (may differ from the file's)
    int rows, cols;             // output rows, input columns (values)
} wrk_llm_matrix_t;

//  One block's weights on the device.
typedef struct {
    cl_mem attn_norm, ffn_norm;             // float32 [n_embd]
    wrk_llm_matrix_t wq, wk, wv, wo;        // attention projections
    wrk_llm_matrix_t gate, up, down;        // FFN
} wrk_llm_layer_t;

typedef struct _wrk_llm_weights_t wrk_llm_weights_t;

//  Uploads MODEL's weights to DEV, leaving EXTRA_BYTES of the device's
//  memory for the caller (KV cache, activations) in the fit check. MODEL
//  and DEV are borrowed and must outlive the object. Returns NULL with ERR
//  set: RXQ_E_LIMIT when the model does not fit (the message says how much
//  it needs and what the device has), RXQ_E_OPENCL, RXQ_E_NOMEM.
wrk_llm_weights_t *wrk_llm_weights_new (wrk_device_t *dev, const cmn_llama_model_t *model,
                                        uint64_t extra_bytes, cmn_err_t *err);

//  Releases the buffers; nulls *SELF_P; idempotent.
void wrk_llm_weights_destroy (wrk_llm_weights_t **self_p);

//  Block I's weights; the final norm (float32 [n_embd]); the output
//  projection [n_vocab x n_embd].
const wrk_llm_layer_t *wrk_llm_weights_layer (const wrk_llm_weights_t *self, int i);
cl_mem wrk_llm_weights_output_norm (const wrk_llm_weights_t *self);
const wrk_llm_matrix_t *wrk_llm_weights_output (const wrk_llm_weights_t *self);

//  Bytes of device memory the weights occupy.
uint64_t wrk_llm_weights_bytes (const wrk_llm_weights_t *self);

//  Bytes wrk_llm_weights_new would allocate for MODEL.
uint64_t wrk_llm_weights_need (const cmn_llama_model_t *model);

#endif
