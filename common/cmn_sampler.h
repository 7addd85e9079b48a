/*  cmn_sampler: picks the next token from a model's logits.
 *
 *  The chain, in llama.cpp's order: repetition penalty over the last
 *  repeat_last_n tokens accepted (a positive logit is divided by the
 *  penalty, a negative one multiplied), then greedy (temp <= 0: the
 *  arg-max, lowest id on ties), or top-k, top-p (the smallest set of most
 *  likely tokens whose probabilities reach top_p), temperature, softmax and
 *  a draw from a splitmix64 generator seeded with `seed`: the same seed,
 *  logits and history give the same token on every machine.
 */
#ifndef CMN_SAMPLER_H
#define CMN_SAMPLER_H
#include <stdint.h>
#include "cmn_error.h"

typedef struct {
    float temp;                 // temperature; <= 0 is greedy
    int top_k;                  // keep the K most likely; 0 keeps all
    float top_p;                // nucleus mass in (0, 1]; 1 keeps all
    float repeat_penalty;       // >= 1 (1: none)
    int repeat_last_n;          // tokens of history penalised (0: none)
    uint64_t seed;              // random seed
} cmn_sampler_params_t;

//  temp 0.8, top_k 40, top_p 0.95, repeat_penalty 1.0, repeat_last_n 64,
//  seed 0 (llama.cpp's defaults, without its time-based seed).
extern const cmn_sampler_params_t cmn_sampler_params_default;

typedef struct _cmn_sampler_t cmn_sampler_t;

//  A sampler over N_VOCAB logits. NULL with ERR set: RXQ_E_INVAL for a
//  parameter out of range (named), RXQ_E_NOMEM.
cmn_sampler_t *cmn_sampler_new (const cmn_sampler_params_t *params, int n_vocab,
                                cmn_err_t *err);

//  Frees the sampler; nulls *SELF_P; idempotent.
void cmn_sampler_destroy (cmn_sampler_t **self_p);

//  Picks a token from LOGITS (n_vocab values; the penalty is applied in
//  place). Does not add it to the history: call accept.
int32_t cmn_sampler_sample (cmn_sampler_t *self, float *logits);

//  Adds TOKEN to the history the repetition penalty looks at (prompt
//  tokens too).
void cmn_sampler_accept (cmn_sampler_t *self, int32_t token);

#endif
