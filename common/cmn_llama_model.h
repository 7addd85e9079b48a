/*  cmn_llama_model: a Llama-architecture model described by a GGUF file.
 *
 *  Reads the `llama.*` hyper-parameters (layers, heads, KV heads for
 *  grouped-query attention, RoPE base and dimensions, RMSNorm epsilon,
 *  context length, vocabulary size), finds every tensor a forward pass
 *  needs and checks its shape and type, so the device code can trust what
 *  it is given. Nothing is copied: tensors point into the GGUF buffer.
 *
 *  Errors name what is wrong or missing:
 *    RXQ_E_UNSUPPORTED  general.architecture is not "llama" (the message
 *                       names the architecture found), or a tensor type no
 *                       loader path handles;
 *    RXQ_E_FORMAT       a missing `llama.*` key or tensor, a tokenizer that
 *                       is missing (no tokenizer.ggml.tokens), inconsistent
 *                       hyper-parameters;
 *    RXQ_E_FORMAT_SHAPE a tensor whose shape disagrees with the
 *                       hyper-parameters (both shapes in the message).
 *  Weight types accepted: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and
 *  the K-quants (Q2_K .. Q6_K); norms must be F32, F16 or BF16.
 */
#ifndef CMN_LLAMA_MODEL_H
#define CMN_LLAMA_MODEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_error.h"
#include "cmn_gguf.h"

//  Hyper-parameters of a Llama model.
typedef struct {
    int n_layer;                // transformer blocks (llama.block_count)
    int n_embd;                 // hidden size, floats (llama.embedding_length)
    int n_ff;                   // FFN inner size, floats (llama.feed_forward_length)
    int n_head;                 // query heads (llama.attention.head_count)
    int n_head_kv;              // key/value heads (head_count_kv, default n_head)
    int head_dim;               // floats per head, n_embd / n_head
    int n_rot;                  // rotated floats per head (rope.dimension_count,
                                // default head_dim)
    int n_ctx_train;            // context length trained for, tokens
    int n_vocab;                // vocabulary size, tokens
    float rope_freq_base;       // RoPE theta base (default 10000)
    float norm_eps;             // RMSNorm epsilon
} cmn_llama_hparams_t;

//  The tensors of one transformer block (all [out, in] in GGUF's ne order:
//  ne[0] = in, ne[1] = out).
typedef struct {
    const cmn_gguf_tensor_t *attn_norm;     // [n_embd]
    const cmn_gguf_tensor_t *wq;            // [n_embd -> n_head * head_dim]
    const cmn_gguf_tensor_t *wk;            // [n_embd -> n_head_kv * head_dim]
    const cmn_gguf_tensor_t *wv;            // [n_embd -> n_head_kv * head_dim]
    const cmn_gguf_tensor_t *wo;            // [n_head * head_dim -> n_embd]
    const cmn_gguf_tensor_t *ffn_norm;      // [n_embd]
    const cmn_gguf_tensor_t *ffn_gate;      // [n_embd -> n_ff]
    const cmn_gguf_tensor_t *ffn_up;        // [n_embd -> n_ff]
    const cmn_gguf_tensor_t *ffn_down;      // [n_ff -> n_embd]
} cmn_llama_layer_t;

typedef struct _cmn_llama_model_t cmn_llama_model_t;

//  Describes the model in GGUF, which is borrowed and must outlive the
//  object. Returns NULL with ERR set (see above).
cmn_llama_model_t *cmn_llama_model_new (const cmn_gguf_t *gguf, cmn_err_t *err);

//  Maps PATH and describes it; the object owns the mapping. RXQ_E_IO when
//  the file cannot be read, else as cmn_llama_model_new and cmn_gguf.
cmn_llama_model_t *cmn_llama_model_open (const char *path, cmn_err_t *err);

//  Frees the object (and a mapping it owns); nulls *SELF_P; idempotent.
void cmn_llama_model_destroy (cmn_llama_model_t **self_p);

//  The hyper-parameters; the object keeps ownership.
const cmn_llama_hparams_t *cmn_llama_model_hparams (const cmn_llama_model_t *self);

//  Block I (0 <= I < n_layer, asserted).
const cmn_llama_layer_t *cmn_llama_model_layer (const cmn_llama_model_t *self, int i);

//  Token embeddings [n_embd x n_vocab], the final norm [n_embd], and the
//  output projection (output.weight, or the embeddings when the model
//  ties them).
const cmn_gguf_tensor_t *cmn_llama_model_tok_embd (const cmn_llama_model_t *self);
const cmn_gguf_tensor_t *cmn_llama_model_output_norm (const cmn_llama_model_t *self);
const cmn_gguf_tensor_t *cmn_llama_model_output (const cmn_llama_model_t *self);

//  The GGUF file the model was read from.
const cmn_gguf_t *cmn_llama_model_gguf (const cmn_llama_model_t *self);

//  Bytes of all weight tensors as stored in the file.
uint64_t cmn_llama_model_weight_bytes (const cmn_llama_model_t *self);

//  Reads a norm-like tensor (F32, F16 or BF16, N values) into OUT.
void cmn_llama_model_read_f32 (const cmn_gguf_tensor_t *t, float *out, size_t n);

#endif
