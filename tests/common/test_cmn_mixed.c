/*  test_cmn_mixed: the sensitivity measure and the budget solver.
 *
 *  The solver is checked on instances whose optimum is known: by
 *  construction (identical tensors with convex error curves, where the
 *  greedy Lagrangian order is optimal), and by brute force over every
 *  assignment of small random instances, where it must be feasible and
 *  within the Lagrangian gap of the optimum: the greedy hull order solves
 *  the LP relaxation except for one fractional step, so its error exceeds
 *  the optimum by at most the largest error one tensor can save. Most
 *  instances must come out exactly optimal.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cmn_mixed.h"
#include "cmn_quant.h"

static uint64_t
s_next (uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double
s_unit (uint64_t *s)
{
    return (double) (s_next (s) >> 11) / 9007199254740992.0;
}

Test (mixed, importance_by_role)
{
    cr_assert_eq (cmn_mixed_importance ("output.weight"), 4.0);
    cr_assert_eq (cmn_mixed_importance ("lm_head.weight"), 4.0);
    cr_assert_eq (cmn_mixed_importance ("blk.3.attn_v.weight"), 2.0);
    cr_assert_eq (cmn_mixed_importance ("model.layers.0.mlp.down_proj.weight"), 2.0);
    cr_assert_eq (cmn_mixed_importance ("blk.0.attn_output.weight"), 1.5);
    cr_assert_eq (cmn_mixed_importance ("blk.0.attn_q.weight"), 1.0);
    cr_assert_eq (cmn_mixed_importance ("blk.0.output_norm.weight"), 1.0);
}

Test (mixed, candidates_follow_row_length)
{
    int types [CMN_MIXED_MAX_CHOICES];
    cr_assert_eq (cmn_mixed_candidates (4096, types), 9);
    cr_assert_eq (cmn_mixed_candidates (96, types), 6);     // no K-quants
    for (int i = 0; i < 6; i++)
        cr_assert_eq (cmn_quant_block_values (types [i]) == 256, false);
    cr_assert_eq (cmn_mixed_candidates (33, types), 1);     // f16 only
    cr_assert_eq (types [0], GGML_TYPE_F16);
}

Test (mixed, rel_error_orders_types)
{
    const size_t rows = 8, cols = 512;
    float *x = malloc (rows * cols * sizeof *x);
    uint64_t s = 1;
    for (size_t i = 0; i < rows * cols; i++)
        x [i] = (float) (s_unit (&s) * 2 - 1);
    double e4, e5, e8, e6k, ef;
    cr_assert_eq (cmn_mixed_rel_error (GGML_TYPE_Q4_0, x, rows, cols, &e4, NULL), 0);
    cr_assert_eq (cmn_mixed_rel_error (GGML_TYPE_Q5_0, x, rows, cols, &e5, NULL), 0);
    cr_assert_eq (cmn_mixed_rel_error (GGML_TYPE_Q8_0, x, rows, cols, &e8, NULL), 0);
    cr_assert_eq (cmn_mixed_rel_error (GGML_TYPE_Q6_K, x, rows, cols, &e6k, NULL), 0);
    cr_assert_eq (cmn_mixed_rel_error (GGML_TYPE_F16, x, rows, cols, &ef, NULL), 0);
    cr_assert (e4 > e5 && e5 > e6k && e6k > e8 && e8 > ef && ef > 0,
               "%g %g %g %g %g", e4, e5, e6k, e8, ef);
    //  Uniform data: a 4-bit step of 2/15 of the block range gives about
    //  step^2/12 / (1/3) ~ 0.0044 relative (Q4_0 loses one level: ~0.006).
    cr_assert (e4 > 0.002 && e4 < 0.02, "q4_0 relative error %g", e4);
    double z;
    memset (x, 0, rows * cols * sizeof *x);
    cr_assert_eq (cmn_mixed_rel_error (GGML_TYPE_Q4_0, x, rows, cols, &z, NULL), 0);
    cr_assert_eq (z, 0.0);
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_mixed_rel_error (GGML_TYPE_Q4_K, x, 1, 96, &z, &err), -1);
    cr_assert_eq (err.code, RXQ_E_INVAL);
    x [3] = NAN;
    cr_assert_eq (cmn_mixed_rel_error (GGML_TYPE_Q8_0, x, 1, 96, &z, &err), -1);
    free (x);
}

//  Identical tensors with convex curves: bytes 10, 20, 30, errors 8, 4, 2.
//  With budget for K upgrades of 10 bytes, the optimum takes every first
//  step (saving 4 each) before any second step (saving 2 each).
Test (mixed, convex_identical_tensors_optimal)
{
    enum { N = 10 };
    cmn_mixed_tensor_t t [N];
    for (int i = 0; i < N; i++) {
        t [i] = (cmn_mixed_tensor_t) { "t", 3, { 2, 6, 8 }, { 10, 20, 30 }, { 8, 4, 2 } };
    }
    for (int k = 0; k <= 2 * N; k++) {
        int choice [N];
        uint64_t bytes;
        double error;
        cr_assert_eq (cmn_mixed_solve (t, N, 100 + 10 * (uint64_t) k + 5, 0, choice, &bytes,
                                       &error, NULL), 0);
        const int first = k < N ? k : N, second = k > N ? k - N : 0;
        cr_assert_eq (error, 8.0 * N - 4.0 * first - 2.0 * second, "k %d: error %g", k, error);
        cr_assert_leq (bytes, 100 + 10 * (uint64_t) k + 5);
    }
}

//  Brute force: every assignment of N tensors with C choices.
static double
s_brute (const cmn_mixed_tensor_t *t, int n, uint64_t budget)
{
    int idx [8] = { 0 };
    double best = INFINITY;
    for (;;) {
        uint64_t b = 0;
        double e = 0;
        for (int i = 0; i < n; i++) {
            b += t [i].bytes [idx [i]];
            e += t [i].error [idx [i]];
        }
        if (b <= budget && e < best)
            best = e;
        int i = 0;
        while (i < n && ++idx [i] == t [i].n_choices)
            idx [i++] = 0;
        if (i == n)
            return best;
    }
}

Test (mixed, random_instances_near_brute_force)
{
    uint64_t s = 42;
    int exact = 0, total = 0;
    for (int inst = 0; inst < 300; inst++) {
        enum { N = 6 };
        cmn_mixed_tensor_t t [N];
        uint64_t min = 0, max = 0;
        double gap = 0;
        for (int i = 0; i < N; i++) {
            //  Realistic shape: more bytes, less error, not always convex;
            //  one fixed (kept) tensor.
            t [i].name = "t";
            t [i].n_choices = i == 0 ? 1 : 4;
            uint64_t b = 100 + s_next (&s) % 1000;
            double e = 1 + 10 * s_unit (&s);
            for (int c = 0; c < t [i].n_choices; c++) {
                t [i].type [c] = c;
                t [i].bytes [c] = b;
                t [i].error [c] = e;
                b += 50 + s_next (&s) % 400;
                e *= 0.2 + 0.6 * s_unit (&s);
            }
            min += t [i].bytes [0];
            max += t [i].bytes [t [i].n_choices - 1];
            gap = fmax (gap, t [i].error [0] - t [i].error [t [i].n_choices - 1]);
        }
        const uint64_t budget = min + s_next (&s) % (max - min + 1);
        int choice [N];
        uint64_t bytes;
        double error;
        cr_assert_eq (cmn_mixed_solve (t, N, budget, 0, choice, &bytes, &error, NULL), 0);
        const double opt = s_brute (t, N, budget);
        cr_assert_leq (bytes, budget);
        cr_assert (error >= opt - 1e-12, "better than the optimum?");
        cr_assert (error <= opt + gap + 1e-12, "instance %d: error %g, optimum %g, gap %g",
                   inst, error, opt, gap);
        exact += error <= opt + 1e-12;
        total++;
    }
    cr_log_info ("%d of %d instances optimal", exact, total);
    cr_assert_geq (exact, total / 2, "only %d of %d instances optimal", exact, total);
}

Test (mixed, budget_below_minimum_refused)
{
    cmn_mixed_tensor_t t [2] = {
        { "a", 2, { GGML_TYPE_Q4_0, GGML_TYPE_Q8_0 }, { 1800000000, 3400000000 }, { 1, 0.1 } },
        { "b", 1, { GGML_TYPE_Q8_0 }, { 2100000000 }, { 0 } },
    };
    int choice [2];
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_mixed_solve (t, 2, 3500000000ull, 0, choice, NULL, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
    cr_assert (strstr (err.msg, "budget 3.50 GB is below the smallest possible size 3.90 GB"),
               "%s", err.msg);
    //  Overhead counts too.
    cr_assert_eq (cmn_mixed_solve (t, 2, 3900000000ull, 1, choice, NULL, NULL, &err), -1);
    cr_assert_eq (cmn_mixed_solve (t, 2, 3900000000ull, 0, choice, NULL, NULL, &err), 0);
    cr_assert_eq (choice [0], 0);
}

Test (mixed, thousands_of_tensors_fast)
{
    enum { N = 5000 };
    cmn_mixed_tensor_t *t = calloc (N, sizeof *t);
    int *choice = calloc (N, sizeof *choice);
    uint64_t s = 7, min = 0;
    for (int i = 0; i < N; i++) {
        t [i].name = "t";
        t [i].n_choices = 9;
        uint64_t b = 1000 + s_next (&s) % 100000;
        double e = s_unit (&s);
        for (int c = 0; c < 9; c++) {
            t [i].bytes [c] = b * (4 + (uint64_t) c) / 4;
            t [i].error [c] = e / (1 << c);
        }
        min += t [i].bytes [0];
    }
    uint64_t bytes;
    double error;
    cr_assert_eq (cmn_mixed_solve (t, N, min * 3 / 2, 0, choice, &bytes, &error, NULL), 0);
    cr_assert_leq (bytes, min * 3 / 2);
    cr_assert_gt (bytes, min * 3 / 2 - 120000, "budget left unused: %llu of %llu",
                  (unsigned long long) bytes, (unsigned long long) (min * 3 / 2));
    free (t);
    free (choice);
}
