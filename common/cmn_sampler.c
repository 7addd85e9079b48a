/*  cmn_sampler: see cmn_sampler.h. */
#include "cmn_sampler.h"
#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const cmn_sampler_params_t cmn_sampler_params_default = {
    .temp = 0.8f, .top_k = 40, .top_p = 0.95f, .repeat_penalty = 1.0f,
    .repeat_last_n = 64, .seed = 0
};

typedef struct {
    int32_t id;
    float logit;
} s_cand_t;

struct _cmn_sampler_t {
    cmn_sampler_params_t p;     // parameters
    int n_vocab;                // logits per call
    s_cand_t *cand;             // [n_vocab] scratch
    int32_t *hist;              // ring of the last repeat_last_n tokens
    int n_hist;                 // entries filled
    int hist_at;                // next slot
    uint64_t rng;               // splitmix64 state
};

cmn_sampler_t *
cmn_sampler_new (const cmn_sampler_params_t *p, int n_vocab, cmn_err_t *err)
{
    assert (p && n_vocab > 0);
    if (!(p->top_k >= 0) || !(p->top_p > 0 && p->top_p <= 1)
    ||  !(p->repeat_penalty >= 1 && p->repeat_penalty <= 100) || p->repeat_last_n < 0
    ||  p->repeat_last_n > 1 << 20 || !(p->temp <= 100) || isnan (p->temp)) {
        cmn_err_set (err, RXQ_E_INVAL, "sampler: need temp <= 100, top_k >= 0, 0 < top_p <= 1, "
                     "1 <= repeat_penalty <= 100, 0 <= repeat_last_n (got temp %g top_k %d "
                     "top_p %g repeat_penalty %g repeat_last_n %d)", (double) p->temp, p->top_k,
                     (double) p->top_p, (double) p->repeat_penalty, p->repeat_last_n);
        return NULL;
    }
    cmn_sampler_t *self = calloc (1, sizeof *self);
    if (self) {
        self->cand = malloc ((size_t) n_vocab * sizeof *self->cand);
        self->hist = malloc ((size_t) (p->repeat_last_n ? p->repeat_last_n : 1) * sizeof (int32_t));
    }
    if (!self || !self->cand || !self->hist) {
        if (self) {
            free (self->cand);
            free (self->hist);
            free (self);
        }
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    self->p = *p;
    self->n_vocab = n_vocab;
    self->rng = p->seed;
    return self;
}

void
cmn_sampler_destroy (cmn_sampler_t **self_p)
{
    assert (self_p);
    cmn_sampler_t *self = *self_p;
    if (!self)
        return;
    free (self->cand);
    free (self->hist);
    free (self);
    *self_p = NULL;
}

void
cmn_sampler_accept (cmn_sampler_t *self, int32_t token)
{
    assert (self);
    if (self->p.repeat_last_n == 0)
        return;
    self->hist [self->hist_at] = token;
    self->hist_at = (self->hist_at + 1) % self->p.repeat_last_n;
    if (self->n_hist < self->p.repeat_last_n)
        self->n_hist++;
}

static double
s_uniform (cmn_sampler_t *self)
{
    uint64_t z = (self->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double) (z >> 11) / 9007199254740992.0;       // [0, 1)
}

static int
s_desc (const void *a, const void *b)
{
    const s_cand_t *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int32_t
cmn_sampler_sample (cmn_sampler_t *self, float *logits)
{
    assert (self && logits);
    if (self->p.repeat_penalty != 1.0f) {
        //  Each distinct token once, however often it occurs.
        for (int i = 0; i < self->n_hist; i++) {
            const int32_t t = self->hist [i];
            bool seen = false;
            for (int j = 0; j < i && !seen; j++)
                seen = self->hist [j] == t;
            if (seen || t < 0 || t >= self->n_vocab)
                continue;
            logits [t] = logits [t] > 0 ? logits [t] / self->p.repeat_penalty
                                        : logits [t] * self->p.repeat_penalty;
        }
    }
    if (self->p.temp <= 0) {
        int32_t best = 0;
        for (int32_t i = 1; i < self->n_vocab; i++)
            if (logits [i] > logits [best])
                best = i;
        return best;
    }
    int n = self->n_vocab;
    for (int i = 0; i < n; i++)
        self->cand [i] = (s_cand_t) { i, logits [i] };
    qsort (self->cand, (size_t) n, sizeof *self->cand, s_desc);
    if (self->p.top_k > 0 && self->p.top_k < n)
        n = self->p.top_k;
    //  Probabilities at temperature 1 decide top-p, as in llama.cpp's chain
    //  (top-p before temperature).
    const float m = self->cand [0].logit;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp ((double) (self->cand [i].logit - m));
    if (self->p.top_p < 1.0f) {
        double acc = 0;
        for (int i = 0; i < n; i++) {
            acc += exp ((double) (self->cand [i].logit - m)) / sum;
            if (acc >= self->p.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    double total = 0;
    for (int i = 0; i < n; i++)
        total += exp ((double) (self->cand [i].logit - m) / self->p.temp);
    const double r = s_uniform (self) * total;
    double acc = 0;
    for (int i = 0; i < n; i++) {
        acc += exp ((double) (self->cand [i].logit - m) / self->p.temp);
        if (r < acc)
            return self->cand [i].id;
    }
    return self->cand [n - 1].id;
}
