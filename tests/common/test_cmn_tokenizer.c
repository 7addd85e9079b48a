/*  cmn_tokenizer against the real SmolLM2 vocabulary (byte-level BPE) and
 *  reference ids, and a small SentencePiece vocabulary checked by hand.
 *
 *  tests/fixtures/llm/tokens_hf.txt comes from Hugging Face `tokenizers`
 *  (tests/python/gen_llm_tokens.py); tokens_llama_cpp.txt, when present,
 *  from llama.cpp (tests/python/gen_llm_reference.py). Each line: hex of
 *  the text, a tab, the ids.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmn_gguf.h"
#include "cmn_gguf_writer.h"
#include "cmn_llama_model.h"
#include "cmn_tokenizer.h"
#include "support/tst_llm.h"

static cmn_gguf_t *s_gguf;
static cmn_tokenizer_t *s_tok;

static void
s_open_smollm2 (void)
{
    TST_LLM_REQUIRE (path);
    cmn_err_t err = { 0 };
    s_gguf = cmn_gguf_open_file (path, NULL, &err);
    cr_assert (s_gguf, "%s", err.msg);
    s_tok = cmn_tokenizer_new (s_gguf, &err);
    cr_assert (s_tok, "%s", err.msg);
}

static void
s_close (void)
{
    cmn_tokenizer_destroy (&s_tok);
    cmn_tokenizer_destroy (&s_tok);
    cmn_gguf_destroy (&s_gguf);
}

static size_t
s_unhex (const char *hex, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        sscanf (hex + i, "%2x", &v);
        out [k++] = (char) v;
    }
    return k;
}

//  Checks every line of fixture NAME; returns the number of cases, or -1
//  when the fixture is absent.
static int
s_check_fixture (const char *name)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/llm/%s", getenv ("RXQ_FIXTURES"), name);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    static char line [1 << 16];
    int cases = 0;
    while (fgets (line, sizeof line, f)) {
        char *tab = strchr (line, '\t');
        cr_assert (tab, "%s: malformed line", name);
        char text [8192];
        const size_t tl = s_unhex (line, (size_t) (tab - line), text);
        int32_t want [4096];
        size_t nw = 0;
        for (char *p = tab + 1, *e; ; p = e) {
            long v = strtol (p, &e, 10);
            if (e == p)
                break;
            want [nw++] = (int32_t) v;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        cmn_err_t err = { 0 };
        cr_assert_eq (cmn_tokenizer_encode (s_tok, text, tl, true, false, &ids, &n, &err), 0,
                      "%s", err.msg);
        cr_expect_eq (n, nw, "%s: '%.*s': %zu ids, reference has %zu", name, (int) tl, text,
                      n, nw);
        for (size_t i = 0; i < n && i < nw; i++)
            cr_expect_eq (ids [i], want [i], "%s: '%.*s': id %zu is %d, reference %d", name,
                          (int) tl, text, i, ids [i], want [i]);
        //  Decoding gives the text back, byte for byte.
        char back [8192];
        size_t bl = 0;
        for (size_t i = 0; i < n; i++)
            bl += cmn_tokenizer_piece (s_tok, ids [i], true, back + bl, sizeof back - bl);
        cr_expect (bl == tl && memcmp (back, text, tl) == 0, "%s: '%.*s' decodes to '%.*s'",
                   name, (int) tl, text, (int) bl, back);
        free (ids);
        cases++;
    }
    fclose (f);
    return cases;
}

TestSuite (tokenizer_smollm2, .init = s_open_smollm2, .fini = s_close);

Test (tokenizer_smollm2, metadata) {
    cr_expect_eq (cmn_tokenizer_n_vocab (s_tok), 49152);
    cr_expect_eq (cmn_tokenizer_bos (s_tok), 1);
    cr_expect_eq (cmn_tokenizer_eos (s_tok), 2);
    cr_expect_not (cmn_tokenizer_add_bos (s_tok));
    cr_expect (cmn_tokenizer_is_eog (s_tok, 2));        // <|im_end|>
    cr_expect (cmn_tokenizer_is_eog (s_tok, 0));        // <|endoftext|>
    cr_expect_not (cmn_tokenizer_is_eog (s_tok, 1));    // <|im_start|>
    cr_expect_not (cmn_tokenizer_is_eog (s_tok, 504));
}

Test (tokenizer_smollm2, matches_hf_tokenizers) {
    int n = s_check_fixture ("tokens_hf.txt");
    cr_assert_gt (n, 10, "fixture tokens_hf.txt missing or short");
}

Test (tokenizer_smollm2, matches_llama_cpp) {
    int n = s_check_fixture ("tokens_llama_cpp.txt");
    if (n < 0)
        cr_skip_test ("tests/fixtures/llm/tokens_llama_cpp.txt not generated yet");
    cr_assert_gt (n, 10);
}

Test (tokenizer_smollm2, special_tokens_only_when_asked) {
    const char *t = "<|im_start|>";
    int32_t *ids = NULL;
    size_t n = 0;
    cr_assert_eq (cmn_tokenizer_encode (s_tok, t, strlen (t), true, false, &ids, &n, NULL), 0);
    cr_expect (n == 1 && ids [0] == 1);
    free (ids);
    cr_assert_eq (cmn_tokenizer_encode (s_tok, t, strlen (t), false,
                                        cmn_tokenizer_add_bos (s_tok), &ids, &n, NULL), 0);
    cr_expect_gt (n, 3, "as text it is several tokens");
    cr_expect_neq (ids [0], 1, "no BOS: the model does not ask for one");
    free (ids);
    char buf [32];
    cr_expect_eq (cmn_tokenizer_piece (s_tok, 1, false, buf, sizeof buf), 0);
    cr_expect_eq (cmn_tokenizer_piece (s_tok, 1, true, buf, sizeof buf), 12);
    cr_expect_eq (cmn_tokenizer_piece (s_tok, -1, true, buf, sizeof buf), 0);
    cr_expect_eq (cmn_tokenizer_piece (s_tok, 49152, true, buf, sizeof buf), 0);
}

//  Stray and truncated UTF-8 sequences are encoded byte by byte and come
//  back unchanged; bytes the vocabulary lacks (SmolLM2 has no token for
//  0xff, which never occurs in UTF-8) become the unknown token.
Test (tokenizer_smollm2, invalid_utf8_round_trips) {
    const char t [] = "a\xe2\x82 b\xc3 \x80\x80z\xf0\x9f";
    int32_t *ids = NULL;
    size_t n = 0;
    cr_assert_eq (cmn_tokenizer_encode (s_tok, t, sizeof t - 1, true, false, &ids, &n, NULL), 0);
    char back [64];
    size_t bl = 0;
    for (size_t i = 0; i < n; i++)
        bl += cmn_tokenizer_piece (s_tok, ids [i], true, back + bl, sizeof back - bl);
    cr_expect (bl == sizeof t - 1 && memcmp (back, t, bl) == 0, "%zu ids decode to %zu bytes", n, bl);
    free (ids);
    cr_assert_eq (cmn_tokenizer_encode (s_tok, "\xff", 1, true, false, &ids, &n, NULL), 0);
    cr_expect (n == 1 && ids [0] == 0);
    free (ids);
}

Test (tokenizer_smollm2, chatml_template) {
    cr_assert (cmn_tokenizer_has_chat (s_tok));
    char *p = NULL;
    cr_assert_eq (cmn_tokenizer_chat (s_tok, "Hi", 2, &p, NULL), 0);
    cr_expect_str_eq (p, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, "
                      "trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                      "<|im_start|>assistant\n");
    free (p);
}

//  A SentencePiece vocabulary small enough to merge by hand.
static const char *s_spm_tokens [] = {
    "<unk>", "<s>", "</s>", "<0x21>", "\xe2\x96\x81", "h", "e", "l", "o",
    "\xe2\x96\x81h", "ll", "llo", "\xe2\x96\x81he", "\xe2\x96\x81hello"
};
static const float s_spm_scores [] = { 0, 0, 0, 0, -10, -10, -10, -10, -10, -5, -1, -2, -3, -4 };
static const int32_t s_spm_types [] = { 2, 3, 3, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };

static cmn_gguf_t *
s_write_spm (const char *path, bool with_scores)
{
    cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
    cr_assert (w);
    cr_assert_eq (cmn_gguf_writer_set_str (w, "tokenizer.ggml.model", "llama", NULL), 0);
    cr_assert_eq (cmn_gguf_writer_set_str_array (w, "tokenizer.ggml.tokens", s_spm_tokens,
                                                 14, NULL), 0);
    if (with_scores)
        cr_assert_eq (cmn_gguf_writer_set_array (w, "tokenizer.ggml.scores", CMN_GGUF_FLOAT32,
                                                 s_spm_scores, 14, NULL), 0);
    cr_assert_eq (cmn_gguf_writer_set_array (w, "tokenizer.ggml.token_type", CMN_GGUF_INT32,
                                             s_spm_types, 14, NULL), 0);
    cr_assert_eq (cmn_gguf_writer_set_u32 (w, "tokenizer.ggml.bos_token_id", 1, NULL), 0);
    cr_assert_eq (cmn_gguf_writer_set_u32 (w, "tokenizer.ggml.eos_token_id", 2, NULL), 0);
    cr_assert_eq (cmn_gguf_writer_write_file (w, path, NULL), 0);
    cmn_gguf_writer_destroy (&w);
    cmn_err_t err = { 0 };
    cmn_gguf_t *g = cmn_gguf_open_file (path, NULL, &err);
    cr_assert (g, "%s", err.msg);
    return g;
}

Test (tokenizer_spm, merges_by_score_with_byte_fallback) {
    char path [] = "/tmp/rxq_spm_XXXXXX";
    close (mkstemp (path));
    cmn_gguf_t *g = s_write_spm (path, true);
    cmn_err_t err = { 0 };
    cmn_tokenizer_t *tok = cmn_tokenizer_new (g, &err);
    cr_assert (tok, "%s", err.msg);
    cr_expect (cmn_tokenizer_add_bos (tok));
    int32_t *ids = NULL;
    size_t n = 0;
    cr_assert_eq (cmn_tokenizer_encode (tok, "hello!", 6, true, true, &ids, &n, &err), 0);
    cr_assert_eq (n, 3);
    cr_expect (ids [0] == 1 && ids [1] == 13 && ids [2] == 3,
               "got %d %d %d, want 1 13 3", ids [0], ids [1], ids [2]);
    char buf [32];
    size_t bl = 0;
    for (size_t i = 0; i < n; i++)
        bl += cmn_tokenizer_piece (tok, ids [i], false, buf + bl, sizeof buf - bl);
    cr_expect (bl == 7 && memcmp (buf, " hello!", 7) == 0, "'%.*s'", (int) bl, buf);
    free (ids);
    cr_expect_not (cmn_tokenizer_has_chat (tok));
    char *p = NULL;
    cr_expect_eq (cmn_tokenizer_chat (tok, "x", 1, &p, &err), -1);
    cr_expect_eq (err.code, RXQ_E_UNSUPPORTED);
    cmn_tokenizer_destroy (&tok);
    cmn_gguf_destroy (&g);
    unlink (path);
}

Test (tokenizer_spm, missing_scores_is_named) {
    char path [] = "/tmp/rxq_spm_XXXXXX";
    close (mkstemp (path));
    cmn_gguf_t *g = s_write_spm (path, false);
    cmn_err_t err = { 0 };
    cr_expect_null (cmn_tokenizer_new (g, &err));
    cr_expect_eq (err.code, RXQ_E_FORMAT);
    cr_expect (strstr (err.msg, "tokenizer.ggml.scores"), "%s", err.msg);
    cmn_gguf_destroy (&g);
    unlink (path);
}

Test (tokenizer_bad, missing_tokenizer_is_named) {
    char path [] = "/tmp/rxq_tok_XXXXXX";
    close (mkstemp (path));
    cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
    cr_assert_eq (cmn_gguf_writer_set_str (w, "general.architecture", "llama", NULL), 0);
    cr_assert_eq (cmn_gguf_writer_write_file (w, path, NULL), 0);
    cmn_gguf_writer_destroy (&w);
    cmn_gguf_t *g = cmn_gguf_open_file (path, NULL, NULL);
    cr_assert (g);
    cmn_err_t err = { 0 };
    cr_expect_null (cmn_tokenizer_new (g, &err));
    cr_expect_eq (err.code, RXQ_E_FORMAT);
    cr_expect (strstr (err.msg, "no tokenizer") && strstr (err.msg, "tokenizer.ggml.model"),
               "%s", err.msg);
    cmn_gguf_destroy (&g);
    unlink (path);
}

Test (tokenizer_bad, unknown_model_and_pre_are_named) {
    char path [] = "/tmp/rxq_tok_XXXXXX";
    close (mkstemp (path));
    const char *toks [] = { "a", "b" };
    const char *merges [] = { "a b" };
    for (int round = 0; round < 2; round++) {
        cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
        cr_assert_eq (cmn_gguf_writer_set_str (w, "tokenizer.ggml.model", round ? "gpt2" : "bert",
                                               NULL), 0);
        cr_assert_eq (cmn_gguf_writer_set_str (w, "tokenizer.ggml.pre", "qwen9", NULL), 0);
        cr_assert_eq (cmn_gguf_writer_set_str_array (w, "tokenizer.ggml.tokens", toks, 2, NULL), 0);
        cr_assert_eq (cmn_gguf_writer_set_str_array (w, "tokenizer.ggml.merges", merges, 1, NULL), 0);
        cr_assert_eq (cmn_gguf_writer_write_file (w, path, NULL), 0);
        cmn_gguf_writer_destroy (&w);
        cmn_gguf_t *g = cmn_gguf_open_file (path, NULL, NULL);
        cr_assert (g);
        cmn_err_t err = { 0 };
        cr_expect_null (cmn_tokenizer_new (g, &err));
        cr_expect_eq (err.code, RXQ_E_UNSUPPORTED);
        cr_expect (strstr (err.msg, round ? "'qwen9'" : "'bert'"), "%s", err.msg);
        cmn_gguf_destroy (&g);
    }
    unlink (path);
}

//  The fuzz seeds of tests/fixtures/llm_fuzz load or fail as their README
//  says.
static cmn_tokenizer_t *
s_seed (const char *name, cmn_gguf_t **g, cmn_err_t *err)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/llm_fuzz/%s", getenv ("RXQ_FIXTURES"), name);
    *g = cmn_gguf_open_file (path, NULL, err);
    cr_assert (*g, "%s: %s", name, err->msg);
    return cmn_tokenizer_new (*g, err);
}

Test (tokenizer_seeds, load_or_fail_as_documented) {
    cmn_gguf_t *g = NULL;
    cmn_err_t err = { 0 };
    cmn_tokenizer_t *tok = s_seed ("gpt2_smollm.gguf", &g, &err);
    cr_assert (tok, "%s", err.msg);
    int32_t *ids = NULL;
    size_t n = 0;
    cr_assert_eq (cmn_tokenizer_encode (tok, "Hello", 5, false, false, &ids, &n, NULL), 0);
    cr_expect (n == 1 && ids [0] == 3 + 256 + 3, "merged to 'Hello'");
    free (ids);
    char *chat = NULL;
    cr_assert_eq (cmn_tokenizer_chat (tok, "q", 1, &chat, NULL), 0);
    cr_expect_str_eq (chat, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nq"
                      "<|im_end|>\n<|im_start|>assistant\n");
    free (chat);
    cmn_tokenizer_destroy (&tok);
    cmn_gguf_destroy (&g);

    tok = s_seed ("gpt2_bad_pre.gguf", &g, &err);
    cr_expect_null (tok);
    cr_expect_eq (err.code, RXQ_E_UNSUPPORTED);
    cmn_gguf_destroy (&g);

    tok = s_seed ("gpt2_no_merges.gguf", &g, &err);
    cr_expect_null (tok);
    cr_expect (err.code == RXQ_E_FORMAT && strstr (err.msg, "tokenizer.ggml.merges"), "%s", err.msg);
    cmn_gguf_destroy (&g);

    tok = s_seed ("spm_llama_header.gguf", &g, &err);
    cr_assert (tok, "%s", err.msg);
    cr_assert_eq (cmn_tokenizer_encode (tok, "He", 2, false, true, &ids, &n, NULL), 0);
    cr_expect (n == 2 && ids [0] == 1 && ids [1] == 263, "<s> \xe2\x96\x81He");
    free (ids);
    cmn_tokenizer_destroy (&tok);
    cr_expect_null (cmn_llama_model_new (g, &err));
    cr_expect (err.code == RXQ_E_FORMAT && strstr (err.msg, "blk.0.attn_norm.weight"), "%s", err.msg);
    cmn_gguf_destroy (&g);
}
