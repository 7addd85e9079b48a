/*  cmn_llama_model: see cmn_llama_model.h. */
#include "cmn_llama_model.h"
#include "cmn_quant.h"
#include "cmn_quant_blocks.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Sizes a model may declare: far above any Llama released, low enough
//  that products of them never overflow an int64 or the kernels' int.
#define LLAMA_MAX_LAYERS  1024
#define LLAMA_MAX_EMBD    65536
#define LLAMA_MAX_FF      262144
#define LLAMA_MAX_HEADS   1024
#define LLAMA_MAX_VOCAB   1048576
#define LLAMA_MAX_CTX     (1 << 24)

struct _cmn_llama_model_t {
    cmn_gguf_t *owned;                  // the mapped file when opened by path
    const cmn_gguf_t *gguf;             // the file described
    cmn_llama_hparams_t hp;             // hyper-parameters
    cmn_llama_layer_t *layers;          // [hp.n_layer]
    const cmn_gguf_tensor_t *tok_embd;  // token_embd.weight
    const cmn_gguf_tensor_t *output_norm;   // output_norm.weight
    const cmn_gguf_tensor_t *output;    // output.weight or tok_embd
    uint64_t weight_bytes;              // bytes of every tensor used
};

//  Reads a required (REQUIRED) or optional unsigned KEY into *OUT within
//  [LO, HI]; an absent optional key leaves *OUT unchanged.
static int
s_get_int (const cmn_gguf_t *g, const char *key, bool required, int lo, int hi,
           int *out, cmn_err_t *err)
{
    uint64_t v = 0;
    int rc = cmn_gguf_get_uint (g, key, &v, err);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        if (required)
            return cmn_err_set (err, RXQ_E_FORMAT, "model metadata lacks '%s'", key);
        return 0;
    }
    if (v < (uint64_t) lo || v > (uint64_t) hi)
        return cmn_err_set (err, RXQ_E_FORMAT, "model metadata '%s' = %llu is outside %d..%d",
                            key, (unsigned long long) v, lo, hi);
    *out = (int) v;
    return 0;
}

static bool
s_weight_type_ok (int type)
{
    switch (type) {
        case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16:
        case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0:
        case GGML_TYPE_Q5_1: case GGML_TYPE_Q8_0: case GGML_TYPE_Q2_K:
        case GGML_TYPE_Q3_K: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K:
        case GGML_TYPE_Q6_K:
            return cmn_quant_supported (type);
        default:
            return false;
    }
}

//  Finds tensor NAME and checks it is NE0 x NE1 (NE1 = 0: one dimension)
//  of an accepted type (NORM: a float type).
static const cmn_gguf_tensor_t *
s_tensor (cmn_llama_model_t *self, const char *name, int64_t ne0, int64_t ne1,
          bool norm, bool optional, cmn_err_t *err)
{
    const cmn_gguf_tensor_t *t = cmn_gguf_find_tensor (self->gguf, name);
    if (!t) {
        if (!optional)
            cmn_err_set (err, RXQ_E_FORMAT, "model lacks tensor '%s'", name);
        return NULL;
    }
    const int64_t want1 = ne1 ? ne1 : 1;
    if (t->ne [0] != ne0 || t->ne [1] != want1 || t->ne [2] != 1 || t->ne [3] != 1) {
        cmn_err_set (err, RXQ_E_FORMAT_SHAPE,
                     "tensor '%s' is [%lld, %lld, %lld, %lld], the hyper-parameters "
                     "say [%lld, %lld]", name, (long long) t->ne [0], (long long) t->ne [1],
                     (long long) t->ne [2], (long long) t->ne [3], (long long) ne0,
                     (long long) want1);
        return NULL;
    }
    const bool float_type = t->type == GGML_TYPE_F32 || t->type == GGML_TYPE_F16
                         || t->type == GGML_TYPE_BF16;
    if (norm ? !float_type : !s_weight_type_ok (t->type)) {
        cmn_err_set (err, RXQ_E_UNSUPPORTED, "tensor '%s' has type %s, which the llama "
                     "loader does not support%s", name, cmn_quant_type_name (t->type),
                     norm ? " for norms (F32, F16 or BF16)" : "");
        return NULL;
    }
    if (!norm && ne0 % (int64_t) cmn_quant_block_values (t->type) != 0) {
        cmn_err_set (err, RXQ_E_FORMAT_SHAPE, "tensor '%s': rows of %lld values do not "
                     "fill %s blocks", name, (long long) ne0, cmn_quant_type_name (t->type));
        return NULL;
    }
    self->weight_bytes += t->size;
    return t;
}

static int
s_describe (cmn_llama_model_t *self, cmn_err_t *err)
{
    const cmn_gguf_t *g = self->gguf;
    const char *arch = NULL;
    size_t arch_len = 0;
    int rc = cmn_gguf_get_str (g, "general.architecture", &arch, &arch_len, err);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return cmn_err_set (err, RXQ_E_FORMAT, "model metadata lacks 'general.architecture'");
    if (arch_len != 5 || memcmp (arch, "llama", 5) != 0)
        return cmn_err_set (err, RXQ_E_UNSUPPORTED, "model architecture is '%.*s'; only "
                            "'llama' is supported", (int) (arch_len > 64 ? 64 : arch_len), arch);

    //  A model without a vocabulary cannot be prompted: say so here rather
    //  than in the tokenizer, so the loader alone rejects such files.
    const cmn_gguf_value_t *tokens = NULL;
    if (cmn_gguf_get_array (g, "tokenizer.ggml.tokens", &tokens, err) < 0)
        return -1;
    if (!tokens)
        return cmn_err_set (err, RXQ_E_FORMAT, "model has no tokenizer: metadata "
                            "'tokenizer.ggml.tokens' is missing");

    cmn_llama_hparams_t *hp = &self->hp;
    memset (hp, 0, sizeof *hp);
    if (s_get_int (g, "llama.block_count", true, 1, LLAMA_MAX_LAYERS, &hp->n_layer, err)
    ||  s_get_int (g, "llama.embedding_length", true, 1, LLAMA_MAX_EMBD, &hp->n_embd, err)
    ||  s_get_int (g, "llama.feed_forward_length", true, 1, LLAMA_MAX_FF, &hp->n_ff, err)
    ||  s_get_int (g, "llama.attention.head_count", true, 1, LLAMA_MAX_HEADS, &hp->n_head, err))
        return -1;
    hp->n_head_kv = hp->n_head;
    hp->n_ctx_train = 2048;
    if (s_get_int (g, "llama.attention.head_count_kv", false, 1, LLAMA_MAX_HEADS,
                   &hp->n_head_kv, err)
    ||  s_get_int (g, "llama.context_length", false, 1, LLAMA_MAX_CTX, &hp->n_ctx_train, err))
        return -1;
    if (hp->n_embd % hp->n_head != 0)
        return cmn_err_set (err, RXQ_E_FORMAT, "embedding length %d is not a multiple of "
                            "the head count %d", hp->n_embd, hp->n_head);
    if (hp->n_head % hp->n_head_kv != 0)
        return cmn_err_set (err, RXQ_E_FORMAT, "head count %d is not a multiple of the "
                            "KV head count %d", hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    hp->n_rot = hp->head_dim;
    if (s_get_int (g, "llama.rope.dimension_count", false, 2, hp->head_dim, &hp->n_rot, err))
        return -1;
    if (hp->n_rot % 2 != 0)
        return cmn_err_set (err, RXQ_E_FORMAT, "rope dimension count %d is odd", hp->n_rot);

    double v = 10000.0;
    if (cmn_gguf_get_float (g, "llama.rope.freq_base", &v, err) < 0)
        return -1;
    if (!(v > 1.0 && v < 1e12))
        return cmn_err_set (err, RXQ_E_FORMAT, "llama.rope.freq_base = %g is not usable", v);
    hp->rope_freq_base = (float) v;
    rc = cmn_gguf_get_float (g, "llama.attention.layer_norm_rms_epsilon", &v, err);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return cmn_err_set (err, RXQ_E_FORMAT,
                            "model metadata lacks 'llama.attention.layer_norm_rms_epsilon'");
    if (!(v > 0 && v < 1))
        return cmn_err_set (err, RXQ_E_FORMAT, "RMSNorm epsilon %g is not in (0, 1)", v);
    hp->norm_eps = (float) v;

    //  The vocabulary size is the embedding's row count; llama.vocab_size,
    //  when present, must agree with it and with the token list.
    const cmn_gguf_tensor_t *embd = cmn_gguf_find_tensor (g, "token_embd.weight");
    if (!embd)
        return cmn_err_set (err, RXQ_E_FORMAT, "model lacks tensor 'token_embd.weight'");
    if (embd->ne [1] < 1 || embd->ne [1] > LLAMA_MAX_VOCAB)
        return cmn_err_set (err, RXQ_E_FORMAT_SHAPE, "token_embd.weight has %lld rows",
                            (long long) embd->ne [1]);
    hp->n_vocab = (int) embd->ne [1];
    int vocab_key = hp->n_vocab;
    if (s_get_int (g, "llama.vocab_size", false, 1, LLAMA_MAX_VOCAB, &vocab_key, err))
        return -1;
    if (vocab_key != hp->n_vocab || tokens->v.arr.n != (size_t) hp->n_vocab)
        return cmn_err_set (err, RXQ_E_FORMAT, "vocabulary sizes disagree: token_embd.weight "
                            "has %d rows, llama.vocab_size is %d, the tokenizer lists %zu tokens",
                            hp->n_vocab, vocab_key, tokens->v.arr.n);

    const int64_t E = hp->n_embd, KV = (int64_t) hp->n_head_kv * hp->head_dim;
    if (!(self->tok_embd = s_tensor (self, "token_embd.weight", E, hp->n_vocab, false, false, err))
    ||  !(self->output_norm = s_tensor (self, "output_norm.weight", E, 0, true, false, err)))
        return -1;
    self->output = s_tensor (self, "output.weight", E, hp->n_vocab, false, true, err);
    if (!self->output) {
        if (cmn_gguf_find_tensor (g, "output.weight"))
            return -1;      // present but wrong: err is set
        self->output = self->tok_embd;
    }
    self->layers = calloc ((size_t) hp->n_layer, sizeof *self->layers);
    if (!self->layers)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory for %d layers", hp->n_layer);
    for (int i = 0; i < hp->n_layer; i++) {
        cmn_llama_layer_t *l = &self->layers [i];
        char name [96];
#define LAYER_T(field, suffix, ne0, ne1, norm) \
        snprintf (name, sizeof name, "blk.%d." suffix ".weight", i); \
        if (!(l->field = s_tensor (self, name, ne0, ne1, norm, false, err))) \
            return -1;
        LAYER_T (attn_norm, "attn_norm", E, 0, true)
        LAYER_T (wq, "attn_q", E, E, false)
        LAYER_T (wk, "attn_k", E, KV, false)
        LAYER_T (wv, "attn_v", E, KV, false)
        LAYER_T (wo, "attn_output", E, E, false)
        LAYER_T (ffn_norm, "ffn_norm", E, 0, true)
        LAYER_T (ffn_gate, "ffn_gate", E, hp->n_ff, false)
        LAYER_T (ffn_up, "ffn_up", E, hp->n_ff, false)
        LAYER_T (ffn_down, "ffn_down", hp->n_ff, E, false)
#undef LAYER_T
    }
    return 0;
}

cmn_llama_model_t *
cmn_llama_model_new (const cmn_gguf_t *gguf, cmn_err_t *err)
{
    assert (gguf);
    cmn_llama_model_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    self->gguf = gguf;
    if (s_describe (self, err) < 0)
        cmn_llama_model_destroy (&self);
    return self;
}

cmn_llama_model_t *
cmn_llama_model_open (const char *path, cmn_err_t *err)
{
    assert (path);
    cmn_gguf_t *g = cmn_gguf_open_file (path, NULL, err);
    if (!g)
        return NULL;
    cmn_llama_model_t *self = cmn_llama_model_new (g, err);
    if (!self) {
        cmn_gguf_destroy (&g);
        return NULL;
    }
    self->owned = g;
    return self;
}

void
cmn_llama_model_destroy (cmn_llama_model_t **self_p)
{
    assert (self_p);
    cmn_llama_model_t *self = *self_p;
    if (!self)
        return;
    free (self->layers);
    cmn_gguf_destroy (&self->owned);
    free (self);
    *self_p = NULL;
}

const cmn_llama_hparams_t *
cmn_llama_model_hparams (const cmn_llama_model_t *self)
{
    assert (self);
    return &self->hp;
}

const cmn_llama_layer_t *
cmn_llama_model_layer (const cmn_llama_model_t *self, int i)
{
    assert (self && i >= 0 && i < self->hp.n_layer);
    return &self->layers [i];
}

const cmn_gguf_tensor_t *
cmn_llama_model_tok_embd (const cmn_llama_model_t *self) { assert (self); return self->tok_embd; }

const cmn_gguf_tensor_t *
cmn_llama_model_output_norm (const cmn_llama_model_t *self) { assert (self); return self->output_norm; }

const cmn_gguf_tensor_t *
cmn_llama_model_output (const cmn_llama_model_t *self) { assert (self); return self->output; }

const cmn_gguf_t *
cmn_llama_model_gguf (const cmn_llama_model_t *self) { assert (self); return self->gguf; }

uint64_t
cmn_llama_model_weight_bytes (const cmn_llama_model_t *self) { assert (self); return self->weight_bytes; }

void
cmn_llama_model_read_f32 (const cmn_gguf_tensor_t *t, float *out, size_t n)
{
    assert (t && out && cmn_gguf_tensor_nelements (t) == n);
    if (t->type == GGML_TYPE_F32)
        memcpy (out, t->data, n * sizeof *out);
    else {
        const int rc = cmn_quant_dequantize_row (t->type, t->data, out, n);
        assert (rc == 0);
        (void) rc;
    }
}
