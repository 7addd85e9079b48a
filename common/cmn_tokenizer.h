/*  cmn_tokenizer: text to token ids and back, from a GGUF file's
 *  tokenizer.ggml.* metadata, the way llama.cpp does it.
 *
 *  Two models:
 *    "gpt2"   byte-level BPE (SmolLM2, Llama 3, GPT-2): the text is split by
 *             the pre-tokenizer's regular expressions (tokenizer.ggml.pre
 *             picks them; PCRE2 with Unicode properties runs them), each
 *             piece's bytes are mapped to GPT-2's printable code points, and
 *             adjacent symbols are merged by the rank of tokenizer.ggml.merges;
 *    "llama"  SentencePiece-style (Llama 2): spaces become U+2581, a space
 *             is prefixed (tokenizer.ggml.add_space_prefix, default true),
 *             adjacent symbols are merged by the highest tokenizer.ggml.scores
 *             whose concatenation is a token, and what is left unknown falls
 *             back to <0xXX> byte tokens.
 *  Special tokens (types control, user-defined, unknown) are recognised in
 *  the text when asked to (parse_special), longest first; otherwise they
 *  are ordinary text.
 *
 *  Chat: when tokenizer.chat_template is a ChatML template (it contains
 *  "<|im_start|>"), cmn_tokenizer_chat wraps one user message in it,
 *  including a default system message that the template carries as a
 *  literal '<|im_start|>system ...<|im_end|>' (SmolLM2's does); other
 *  templates are reported as RXQ_E_UNSUPPORTED so callers fall back to raw.
 *
 *  Errors: RXQ_E_FORMAT for a missing or malformed tokenizer (naming the
 *  key), RXQ_E_UNSUPPORTED for an unknown tokenizer model or
 *  pre-tokenizer, RXQ_E_NOMEM.
 */
#ifndef CMN_TOKENIZER_H
#define CMN_TOKENIZER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_error.h"
#include "cmn_gguf.h"

typedef struct _cmn_tokenizer_t cmn_tokenizer_t;

//  Reads the tokenizer of GGUF, which is borrowed and must outlive the
//  object (token texts point into it). NULL with ERR set on failure.
cmn_tokenizer_t *cmn_tokenizer_new (const cmn_gguf_t *gguf, cmn_err_t *err);

//  Frees the object; nulls *SELF_P; idempotent.
void cmn_tokenizer_destroy (cmn_tokenizer_t **self_p);

//  Vocabulary size; BOS and EOS ids (-1 when the file names none); whether
//  a BOS is added at the start of a prompt (tokenizer.ggml.add_bos_token,
//  default true for "llama", false for "gpt2").
int cmn_tokenizer_n_vocab (const cmn_tokenizer_t *self);
int32_t cmn_tokenizer_bos (const cmn_tokenizer_t *self);
int32_t cmn_tokenizer_eos (const cmn_tokenizer_t *self);
bool cmn_tokenizer_add_bos (const cmn_tokenizer_t *self);

//  True when ID ends generation: the EOS token, or a control token named
//  <|im_end|>, <|endoftext|>, <|eot_id|>, <|end|> or <end_of_turn>.
bool cmn_tokenizer_is_eog (const cmn_tokenizer_t *self, int32_t id);

//  Tokenizes LEN bytes of TEXT (any bytes; invalid UTF-8 is encoded byte
//  by byte), with special tokens recognised when PARSE_SPECIAL, and a BOS
//  first when ADD_BOS. *IDS receives a malloc'ed array the caller frees,
//  *N its length. Returns 0, or -1 with ERR set (RXQ_E_NOMEM; RXQ_E_LIMIT
//  for text over 64 MiB).
int cmn_tokenizer_encode (cmn_tokenizer_t *self, const char *text, size_t len,
                          bool parse_special, bool add_bos, int32_t **ids, size_t *n,
                          cmn_err_t *err);

//  The bytes token ID stands for, written to BUF (at most CAP bytes, not
//  NUL-terminated); returns the full length (may exceed CAP: then BUF
//  holds a prefix). Control tokens give "" unless SPECIAL. IDs outside the
//  vocabulary give "". A token may end inside a UTF-8 character: callers
//  that stream text hold back incomplete characters.
size_t cmn_tokenizer_piece (const cmn_tokenizer_t *self, int32_t id, bool special,
                            char *buf, size_t cap);

//  True when the model carries a chat template this class can apply.
bool cmn_tokenizer_has_chat (const cmn_tokenizer_t *self);

//  Builds the prompt for one user message USER (LEN bytes) with the chat
//  template, ready for encode with parse_special; *OUT receives a malloc'ed
//  NUL-terminated string. Returns 0, or -1 with ERR set (RXQ_E_UNSUPPORTED
//  when there is no usable template; RXQ_E_NOMEM).
int cmn_tokenizer_chat (const cmn_tokenizer_t *self, const char *user, size_t len,
                        char **out, cmn_err_t *err);

#endif
