/*  cmn_llama_model: hyper-parameters and tensors of the real SmolLM2 file,
 *  and the errors for files that are not usable Llama models. */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>
#include "cmn_gguf_writer.h"
#include "cmn_llama_model.h"
#include "cmn_quant_blocks.h"
#include "support/tst_llm.h"

Test (llama_model, smollm2_hparams) {
    TST_LLM_REQUIRE (path);
    cmn_err_t err = { 0 };
    cmn_llama_model_t *m = cmn_llama_model_open (path, &err);
    cr_assert (m, "%s", err.msg);
    const cmn_llama_hparams_t *hp = cmn_llama_model_hparams (m);
    cr_expect_eq (hp->n_layer, 30);
    cr_expect_eq (hp->n_embd, 576);
    cr_expect_eq (hp->n_ff, 1536);
    cr_expect_eq (hp->n_head, 9);
    cr_expect_eq (hp->n_head_kv, 3);
    cr_expect_eq (hp->head_dim, 64);
    cr_expect_eq (hp->n_rot, 64);
    cr_expect_eq (hp->n_ctx_train, 8192);
    cr_expect_eq (hp->n_vocab, 49152);
    cr_expect_float_eq (hp->rope_freq_base, 100000.0f, 1e-3);
    cr_expect_float_eq (hp->norm_eps, 1e-5f, 1e-9);
    //  Tied embeddings: the output projection is token_embd (Q8_0).
    cr_expect_eq (cmn_llama_model_output (m), cmn_llama_model_tok_embd (m));
    cr_expect_eq (cmn_llama_model_tok_embd (m)->type, GGML_TYPE_Q8_0);
    cr_expect_eq (cmn_llama_model_layer (m, 29)->wq->type, GGML_TYPE_Q4_1);
    cr_expect_str_eq (cmn_llama_model_layer (m, 7)->ffn_down->name, "blk.7.ffn_down.weight");
    const uint64_t wb = cmn_llama_model_weight_bytes (m);
    cr_expect (wb > 90000000 && wb < 98362432, "%llu", (unsigned long long) wb);
    float norm [576];
    cmn_llama_model_read_f32 (cmn_llama_model_output_norm (m), norm, 576);
    cr_expect (norm [0] != 0);
    cmn_llama_model_destroy (&m);
    cmn_llama_model_destroy (&m);
}

//  Writes a GGUF with ARCH (NULL: none) and, when TOKENS, a vocabulary of
//  32 tokens, and returns the error cmn_llama_model_open gives.
static cmn_err_t
s_open_written (const char *arch, bool tokens, bool block_count)
{
    char path [] = "/tmp/rxq_llama_XXXXXX";
    close (mkstemp (path));
    cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
    if (arch)
        cr_assert_eq (cmn_gguf_writer_set_str (w, "general.architecture", arch, NULL), 0);
    if (tokens) {
        const char *t [32];
        for (int i = 0; i < 32; i++)
            t [i] = "x";
        cr_assert_eq (cmn_gguf_writer_set_str_array (w, "tokenizer.ggml.tokens", t, 32, NULL), 0);
    }
    if (block_count)
        cr_assert_eq (cmn_gguf_writer_set_u32 (w, "llama.block_count", 1, NULL), 0);
    cr_assert_eq (cmn_gguf_writer_write_file (w, path, NULL), 0);
    cmn_gguf_writer_destroy (&w);
    cmn_err_t err = { 0 };
    cmn_llama_model_t *m = cmn_llama_model_open (path, &err);
    cr_expect_null (m);
    cmn_llama_model_destroy (&m);
    unlink (path);
    return err;
}

Test (llama_model, not_llama_is_named) {
    cmn_err_t err = s_open_written ("bert", true, true);
    cr_expect_eq (err.code, RXQ_E_UNSUPPORTED);
    cr_expect (strstr (err.msg, "'bert'") && strstr (err.msg, "'llama'"), "%s", err.msg);
    err = s_open_written (NULL, true, true);
    cr_expect_eq (err.code, RXQ_E_FORMAT);
    cr_expect (strstr (err.msg, "general.architecture"), "%s", err.msg);
}

Test (llama_model, missing_tokenizer_is_named) {
    cmn_err_t err = s_open_written ("llama", false, true);
    cr_expect_eq (err.code, RXQ_E_FORMAT);
    cr_expect (strstr (err.msg, "no tokenizer") && strstr (err.msg, "tokenizer.ggml.tokens"),
               "%s", err.msg);
}

Test (llama_model, missing_key_is_named) {
    cmn_err_t err = s_open_written ("llama", true, false);
    cr_expect_eq (err.code, RXQ_E_FORMAT);
    cr_expect (strstr (err.msg, "llama.block_count"), "%s", err.msg);
    err = s_open_written ("llama", true, true);
    cr_expect (strstr (err.msg, "llama.embedding_length"), "%s", err.msg);
}

Test (llama_model, wrong_shape_is_named) {
    //  A one-layer model whose attn_k has the wrong width.
    char path [] = "/tmp/rxq_llama_XXXXXX";
    close (mkstemp (path));
    cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
    const char *t [32];
    for (int i = 0; i < 32; i++)
        t [i] = "x";
    cr_assert_eq (cmn_gguf_writer_set_str (w, "general.architecture", "llama", NULL), 0);
    cr_assert_eq (cmn_gguf_writer_set_str_array (w, "tokenizer.ggml.tokens", t, 32, NULL), 0);
    cr_assert_eq (cmn_gguf_writer_set_u32 (w, "llama.block_count", 1, NULL), 0);
    cr_assert_eq (cmn_gguf_writer_set_u32 (w, "llama.embedding_length", 64, NULL), 0);
    cr_assert_eq (cmn_gguf_writer_set_u32 (w, "llama.feed_forward_length", 128, NULL), 0);
    cr_assert_eq (cmn_gguf_writer_set_u32 (w, "llama.attention.head_count", 4, NULL), 0);
    cr_assert_eq (cmn_gguf_writer_set_u32 (w, "llama.attention.head_count_kv", 2, NULL), 0);
    cr_assert_eq (cmn_gguf_writer_set_f32 (w, "llama.attention.layer_norm_rms_epsilon", 1e-5f,
                                           NULL), 0);
    static float zeros [128 * 64];
    const struct { const char *n; int64_t ne0, ne1; } ts [] = {
        { "token_embd.weight", 64, 32 }, { "output_norm.weight", 64, 1 },
        { "blk.0.attn_norm.weight", 64, 1 }, { "blk.0.attn_q.weight", 64, 64 },
        { "blk.0.attn_k.weight", 64, 64 },     // should be 64 x 32 (2 KV heads of 16)
    };
    for (size_t i = 0; i < sizeof ts / sizeof ts [0]; i++) {
        const int64_t ne [2] = { ts [i].ne0, ts [i].ne1 };
        cr_assert_eq (cmn_gguf_writer_add_tensor (w, ts [i].n, GGML_TYPE_F32, ts [i].ne1 > 1 ? 2 : 1,
                                                  ne, zeros, NULL, NULL, NULL), 0);
    }
    cr_assert_eq (cmn_gguf_writer_write_file (w, path, NULL), 0);
    cmn_gguf_writer_destroy (&w);
    cmn_err_t err = { 0 };
    cr_expect_null (cmn_llama_model_open (path, &err));
    cr_expect_eq (err.code, RXQ_E_FORMAT_SHAPE);
    cr_expect (strstr (err.msg, "blk.0.attn_k.weight") && strstr (err.msg, "[64, 32]"), "%s", err.msg);
    unlink (path);
}

Test (llama_model, missing_file_is_io) {
    cmn_err_t err = { 0 };
    cr_expect_null (cmn_llama_model_open ("/nonexistent/model.gguf", &err));
    cr_expect_eq (cmn_error_primary (err.code), RXQ_E_IO);
}
