/*  fuzz_llama: libFuzzer target for what reads a model's metadata after the
 *  GGUF reader: cmn_llama_model (hyper-parameters, tensor shapes) and
 *  cmn_tokenizer (vocabulary, merges, scores, token types, chat template).
 *  Every input must load or fail with an error; a tokenizer that loads
 *  must encode a fixed text (specials on and off) and decode every id it
 *  returns without reading out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cmn_gguf.h"
#include "cmn_llama_model.h"
#include "cmn_tokenizer.h"

static volatile uint8_t s_sink;

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    cmn_err_t err;
    cmn_gguf_limits_t limits = cmn_gguf_limits_default;
    limits.max_array = 1u << 16;
    cmn_gguf_t *g = cmn_gguf_new_from_buffer (data, size, &limits, &err);
    if (!g)
        return 0;
    cmn_llama_model_t *m = cmn_llama_model_new (g, &err);
    cmn_llama_model_destroy (&m);
    cmn_tokenizer_t *tok = cmn_tokenizer_new (g, &err);
    if (tok) {
        static const char text [] = "Hello, world! 123 caf\xc3\xa9 \xff\xfe <|im_start|>x<s>  \n";
        for (int special = 0; special < 2; special++) {
            int32_t *ids = NULL;
            size_t n = 0;
            if (cmn_tokenizer_encode (tok, text, sizeof text - 1, special, true, &ids, &n,
                                      &err) == 0) {
                char buf [64];
                for (size_t i = 0; i < n; i++) {
                    if (ids [i] < 0 || ids [i] >= cmn_tokenizer_n_vocab (tok))
                        __builtin_trap ();
                    size_t l = cmn_tokenizer_piece (tok, ids [i], true, buf, sizeof buf);
                    if (l)
                        s_sink ^= (uint8_t) buf [(l < sizeof buf ? l : sizeof buf) - 1];
                }
                free (ids);
            }
        }
        char *chat = NULL;
        if (cmn_tokenizer_chat (tok, "hi", 2, &chat, &err) == 0)
            free (chat);
        cmn_tokenizer_destroy (&tok);
    }
    cmn_gguf_destroy (&g);
    return 0;
}
