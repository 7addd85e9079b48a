/*  cmn_mixed: sensitivity and the budget solver; see cmn_mixed.h. */
#include "cmn_mixed.h"
#include "cmn_quant.h"
#include <assert.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double
cmn_mixed_importance (const char *name)
{
    assert (name);
    //  Substrings of llama.cpp GGUF names ("blk.3.attn_v.weight") and of
    //  Hugging Face names ("model.layers.3.self_attn.v_proj.weight").
    static const struct {
        const char *glob;
        double weight;
    } roles [] = {
        { "output.weight", 4.0 }, { "*lm_head*", 4.0 },
        { "*attn_v.*", 2.0 }, { "*v_proj*", 2.0 },
        { "*ffn_down*", 2.0 }, { "*down_proj*", 2.0 },
        { "*attn_output*", 1.5 }, { "*o_proj*", 1.5 },
    };
    for (size_t i = 0; i < sizeof roles / sizeof roles [0]; i++)
        if (fnmatch (roles [i].glob, name, 0) == 0)
            return roles [i].weight;
    return 1.0;
}

int
cmn_mixed_candidates (uint64_t ne0, int *types)
{
    static const int all [] = {
        GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0,
        GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_F16,
    };
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all [0]; i++)
        if (ne0 > 0 && ne0 % cmn_quant_block_values (all [i]) == 0)
            types [n++] = all [i];
    assert (n <= CMN_MIXED_MAX_CHOICES);
    return n;
}

int
cmn_mixed_rel_error (int type, const float *x, size_t rows, size_t cols, double *rel,
                     cmn_err_t *err)
{
    assert (x || rows == 0);
    const size_t rb = cmn_quant_row_bytes (type, cols);
    if (!rb || !cmn_quant_supported (type))
        return cmn_err_set (err, RXQ_E_INVAL, "type %s cannot hold rows of %zu values",
                            cmn_quant_type_name (type) ? cmn_quant_type_name (type) : "?", cols);
    void *q = malloc (rb);
    float *y = malloc (cols * sizeof *y);
    if (!q || !y) {
        free (q);
        free (y);
        return cmn_err_set (err, RXQ_E_NOMEM, "cmn_mixed_rel_error: out of memory");
    }
    double sse = 0, ssq = 0;
    int rc = 0;
    for (size_t r = 0; r < rows && rc == 0; r++) {
        const float *row = x + r * cols;
        if (cmn_quant_quantize_row (type, row, q, cols)
        ||  cmn_quant_dequantize_row (type, q, y, cols)) {
            rc = cmn_err_set (err, RXQ_E_INVAL, "row %zu holds a NaN or infinity", r);
            break;
        }
        for (size_t j = 0; j < cols; j++) {
            const double d = (double) row [j] - y [j];
            sse += d * d;
            ssq += (double) row [j] * row [j];
        }
    }
    free (q);
    free (y);
    if (rc == 0)
        *rel = ssq > 0 ? sse / ssq : 0.0;
    return rc;
}

const char *
cmn_mixed_fmt_bytes (uint64_t bytes, char *buf, size_t size)
{
    if (bytes >= 1000000000ull)
        snprintf (buf, size, "%.2f GB", bytes / 1e9);
    else
    if (bytes >= 1000000ull)
        snprintf (buf, size, "%.1f MB", bytes / 1e6);
    else
    if (bytes >= 1000ull)
        snprintf (buf, size, "%.1f kB", bytes / 1e3);
    else
        snprintf (buf, size, "%llu B", (unsigned long long) bytes);
    return buf;
}

//  One step along a tensor's lower convex hull: from choice FROM to TO.
typedef struct {
    size_t tensor;              // index into the tensors
    int from, to;               // choice indices
    uint64_t dbytes;            // bytes added, > 0
    double eff;                 // error saved per byte added, > 0
    size_t order;               // position along the tensor's hull
} s_step_t;

static int
s_step_cmp (const void *a, const void *b)
{
    const s_step_t *x = a, *y = b;
    if (x->eff != y->eff)
        return x->eff > y->eff ? -1 : 1;
    if (x->tensor != y->tensor)
        return x->tensor < y->tensor ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

//  The smallest choice of T (fewest bytes, then least error).
static int
s_smallest (const cmn_mixed_tensor_t *t)
{
    int m = 0;
    for (int c = 1; c < t->n_choices; c++)
        if (t->bytes [c] < t->bytes [m]
        || (t->bytes [c] == t->bytes [m] && t->error [c] < t->error [m]))
            m = c;
    return m;
}

int
cmn_mixed_solve (const cmn_mixed_tensor_t *t, size_t n, uint64_t budget, uint64_t overhead,
                 int *choice, uint64_t *bytes_p, double *error_p, cmn_err_t *err)
{
    assert (t || n == 0);
    assert (choice || n == 0);
    uint64_t total = overhead;
    for (size_t i = 0; i < n; i++) {
        assert (t [i].n_choices >= 1 && t [i].n_choices <= CMN_MIXED_MAX_CHOICES);
        choice [i] = s_smallest (&t [i]);
        total += t [i].bytes [choice [i]];
    }
    if (total > budget) {
        char b1 [32], b2 [32];
        return cmn_err_set (err, RXQ_E_PARAM, "budget %s is below the smallest possible "
                            "size %s (every tensor at its smallest candidate type, kept "
                            "ones as kept)", cmn_mixed_fmt_bytes (budget, b1, sizeof b1),
                            cmn_mixed_fmt_bytes (total, b2, sizeof b2));
    }
    //  Hull steps of every tensor.
    s_step_t *steps = malloc ((n * CMN_MIXED_MAX_CHOICES + 1) * sizeof *steps);
    bool *blocked = calloc (n + 1, sizeof *blocked);
    if (!steps || !blocked) {
        free (steps);
        free (blocked);
        return cmn_err_set (err, RXQ_E_NOMEM, "cmn_mixed_solve: out of memory");
    }
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        int cur = choice [i];
        for (size_t order = 0;; order++) {
            int best = -1;
            double best_eff = 0;
            for (int c = 0; c < t [i].n_choices; c++) {
                if (t [i].bytes [c] <= t [i].bytes [cur] || !(t [i].error [c] < t [i].error [cur]))
                    continue;
                const double eff = (t [i].error [cur] - t [i].error [c])
                                 / (double) (t [i].bytes [c] - t [i].bytes [cur]);
                if (best < 0 || eff > best_eff
                || (eff == best_eff && t [i].bytes [c] < t [i].bytes [best])) {
                    best = c;
                    best_eff = eff;
                }
            }
            if (best < 0)
                break;
            steps [ns++] = (s_step_t) { i, cur, best, t [i].bytes [best] - t [i].bytes [cur],
                                        best_eff, order };
            cur = best;
        }
    }
    qsort (steps, ns, sizeof *steps, s_step_cmp);
    //  Lagrangian order: the steps of every tensor come in its hull order
    //  (efficiencies along a lower hull decrease). A step that does not fit
    //  blocks the rest of its tensor's hull.
    uint64_t left = budget - total;
    for (size_t s = 0; s < ns; s++) {
        const s_step_t *st = &steps [s];
        if (blocked [st->tensor] || choice [st->tensor] != st->from)
            continue;
        if (st->dbytes <= left) {
            choice [st->tensor] = st->to;
            left -= st->dbytes;
        }
        else
            blocked [st->tensor] = true;
    }
    free (steps);
    free (blocked);
    //  Repair: spend what is left on the single change that saves the most
    //  error, again and again. Each change saves error and adds bytes, so
    //  this ends; the cap bounds the work on adversarial inputs.
    for (size_t round = 0; round < n * CMN_MIXED_MAX_CHOICES; round++) {
        size_t bi = 0;
        int bc = -1;
        double gain = 0;
        for (size_t i = 0; i < n; i++) {
            const int cur = choice [i];
            for (int c = 0; c < t [i].n_choices; c++) {
                if (!(t [i].error [c] < t [i].error [cur]))
                    continue;
                if (t [i].bytes [c] > t [i].bytes [cur]
                &&  t [i].bytes [c] - t [i].bytes [cur] > left)
                    continue;
                const double g = t [i].error [cur] - t [i].error [c];
                if (g > gain) {
                    gain = g;
                    bi = i;
                    bc = c;
                }
            }
        }
        if (bc < 0)
            break;
        left += t [bi].bytes [choice [bi]];
        left -= t [bi].bytes [bc];
        choice [bi] = bc;
    }
    uint64_t bytes = overhead;
    double error = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += t [i].bytes [choice [i]];
        error += t [i].error [choice [i]];
    }
    assert (bytes <= budget);
    if (bytes_p)
        *bytes_p = bytes;
    if (error_p)
        *error_p = error;
    return 0;
}
