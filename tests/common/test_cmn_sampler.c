/*  cmn_sampler: greedy, top-k, top-p, temperature, repetition penalty and
 *  seeds, on small hand-made logits whose answers are known. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>
#include "cmn_sampler.h"

static cmn_sampler_t *
s_new (float temp, int top_k, float top_p, float penalty, uint64_t seed)
{
    cmn_sampler_params_t p = cmn_sampler_params_default;
    p.temp = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.repeat_penalty = penalty;
    p.seed = seed;
    cmn_err_t err = { 0 };
    cmn_sampler_t *s = cmn_sampler_new (&p, 5, &err);
    cr_assert (s, "%s", err.msg);
    return s;
}

Test (sampler, greedy_is_argmax_lowest_id_on_ties) {
    cmn_sampler_t *s = s_new (0, 0, 1, 1, 1);
    float l [5] = { 1, 3, 2, 3, -1 };
    cr_expect_eq (cmn_sampler_sample (s, l), 1);
    cmn_sampler_destroy (&s);
    cmn_sampler_destroy (&s);
}

Test (sampler, top_k_1_is_greedy_at_any_temperature) {
    cmn_sampler_t *s = s_new (5.0f, 1, 1, 1, 7);
    for (int i = 0; i < 50; i++) {
        float l [5] = { 0.1f, 0.2f, 0.3f, 0.25f, 0 };
        cr_expect_eq (cmn_sampler_sample (s, l), 2);
    }
    cmn_sampler_destroy (&s);
}

Test (sampler, top_p_keeps_the_nucleus) {
    //  Probabilities about 0.64, 0.24, 0.09, 0.03, 0.00: top_p 0.8 keeps
    //  the first two only.
    cmn_sampler_t *s = s_new (1.0f, 0, 0.8f, 1, 3);
    int seen [5] = { 0 };
    for (int i = 0; i < 2000; i++) {
        float l [5] = { 4, 3, 2, 1, -10 };
        seen [cmn_sampler_sample (s, l)]++;
    }
    cr_expect (seen [0] > 0 && seen [1] > 0 && seen [2] == 0 && seen [3] == 0 && seen [4] == 0,
               "%d %d %d %d %d", seen [0], seen [1], seen [2], seen [3], seen [4]);
    //  The ratio follows exp (4 - 3) = 2.72 within sampling noise.
    const double ratio = (double) seen [0] / seen [1];
    cr_expect (ratio > 2.2 && ratio < 3.3, "ratio %g", ratio);
    cmn_sampler_destroy (&s);
}

Test (sampler, same_seed_same_tokens_other_seed_differs) {
    int32_t a [64], b [64], c [64];
    cmn_sampler_t *sa = s_new (1.0f, 0, 1, 1, 42), *sb = s_new (1.0f, 0, 1, 1, 42);
    cmn_sampler_t *sc = s_new (1.0f, 0, 1, 1, 43);
    int differ = 0;
    for (int i = 0; i < 64; i++) {
        float la [5] = { 1, 1, 1, 1, 1 }, lb [5] = { 1, 1, 1, 1, 1 }, lc [5] = { 1, 1, 1, 1, 1 };
        a [i] = cmn_sampler_sample (sa, la);
        b [i] = cmn_sampler_sample (sb, lb);
        c [i] = cmn_sampler_sample (sc, lc);
        cr_expect_eq (a [i], b [i]);
        differ += a [i] != c [i];
    }
    cr_expect_gt (differ, 10);
    cmn_sampler_destroy (&sa);
    cmn_sampler_destroy (&sb);
    cmn_sampler_destroy (&sc);
}

Test (sampler, repetition_penalty) {
    cmn_sampler_t *s = s_new (0, 0, 1, 2.0f, 1);
    cmn_sampler_accept (s, 0);
    cmn_sampler_accept (s, 0);
    cmn_sampler_accept (s, 4);
    float l [5] = { 3, 2, 1, 0, -1 };
    cr_expect_eq (cmn_sampler_sample (s, l), 1, "3 / 2 = 1.5 < 2");
    cr_expect_float_eq (l [0], 1.5f, 1e-6, "penalised once, not per occurrence");
    cr_expect_float_eq (l [4], -2.0f, 1e-6, "negative logits are multiplied");
    cmn_sampler_destroy (&s);
}

Test (sampler, bad_parameters_are_named) {
    cmn_sampler_params_t p = cmn_sampler_params_default;
    p.top_p = 0;
    cmn_err_t err = { 0 };
    cr_expect_null (cmn_sampler_new (&p, 5, &err));
    cr_expect_eq (err.code, RXQ_E_INVAL);
    cr_expect (strstr (err.msg, "top_p"), "%s", err.msg);
    p = cmn_sampler_params_default;
    p.repeat_penalty = 0.5f;
    cr_expect_null (cmn_sampler_new (&p, 5, &err));
}
