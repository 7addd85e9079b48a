/*  cmn_opt: pass manager and report. See cmn_opt.h.
 *
 *  A sweep runs every enabled pass once, in table order; sweeps repeat
 *  until one changes nothing or max_sweeps is reached (a fold can expose a
 *  no-op, a no-op removal a CSE, and so on). Every pass leaves the view
 *  refreshed, so the next one sees a consistent graph.
 */
#include "cmn_opt.h"
#include "cmn_graph.h"
#include "cmn_opt_clean.h"
#include "cmn_opt_fold.h"
#include "cmn_opt_fuse.h"
#include "cmn_opt_layout.h"
#include "cmn_opt_mem.h"
#include <czmq.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const cmn_opt_opts_t cmn_opt_opts_default = {
    .level = 1,
    .force = { 0 },
    .max_sweeps = 8,
    .fold_max_bytes = (size_t) 64 << 20,
};

static const struct {
    const char *name;
    int level;
    const char *help;
} s_passes [] = {
#define CMN_OPT_ROW(id, name, level, help) { name, level, help },
    CMN_OPT_PASSES (CMN_OPT_ROW)
#undef CMN_OPT_ROW
};

int
cmn_opt_pass_parse (const char *name, cmn_opt_pass_t *pass)
{
    for (int i = 0; i < CMN_OPT_NPASSES; i++)
        if (!strcmp (name, s_passes [i].name)) {
            *pass = (cmn_opt_pass_t) i;
            return 0;
        }
    return -1;
}

const char *
cmn_opt_pass_name (cmn_opt_pass_t p)
{
    assert (p < CMN_OPT_NPASSES);
    return s_passes [p].name;
}

const char *
cmn_opt_pass_help (cmn_opt_pass_t p)
{
    assert (p < CMN_OPT_NPASSES);
    return s_passes [p].help;
}

//  Adds the op counts of the graph to the report's BEFORE or AFTER column.
static void
s_count_ops (const cmn_onnx_graph_t *g, cmn_opt_report_t *r, bool after)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        const cmn_onnx_node_t *n = g->nodes [i];
        char op [64];
        if (n->domain [0] && strcmp (n->domain, "ai.onnx"))
            snprintf (op, sizeof op, "%.30s:%.30s", n->domain, n->op_type);
        else
            snprintf (op, sizeof op, "%.62s", n->op_type);
        size_t k = 0;
        while (k < r->nops && strcmp (r->ops [k].op, op))
            k++;
        if (k == r->nops) {
            if (r->nops == CMN_OPT_MAX_OPS)
                continue;       // more types than the report holds: not listed
            memset (&r->ops [k], 0, sizeof r->ops [k]);
            strcpy (r->ops [k].op, op);
            r->nops++;
        }
        if (after)
            r->ops [k].after++;
        else
            r->ops [k].before++;
    }
    if (after)
        r->nodes_after = g->nnodes;
    else
        r->nodes_before = g->nnodes;
}

static int
s_run_pass (cmn_graph_t *g, cmn_opt_pass_t p, const cmn_opt_opts_t *o, cmn_opt_layout_stats_t *ls,
            cmn_err_t *err)
{
    switch (p) {
        case CMN_OPT_NOOP: return cmn_opt_clean_noop (g, err);
        case CMN_OPT_FOLD: return cmn_opt_fold_constants (g, o->fold_max_bytes, err);
        case CMN_OPT_ALGEBRA: return cmn_opt_fold_algebra (g, o->fold_max_bytes, err);
        case CMN_OPT_CSE: return cmn_opt_clean_cse (g, err);
        case CMN_OPT_FUSE_CONV_BN: return cmn_opt_fuse_conv_bn (g, err);
        case CMN_OPT_FUSE_GEMM: return cmn_opt_fuse_gemm (g, err);
        case CMN_OPT_FUSE_LAYERNORM: return cmn_opt_fuse_layernorm (g, err);
        case CMN_OPT_FUSE_GELU: return cmn_opt_fuse_gelu (g, err);
        case CMN_OPT_LAYOUT: return cmn_opt_layout_nhwc (g, ls, err);
        case CMN_OPT_DCE: return cmn_opt_clean_dce (g, err);
        default: assert (false); return -1;
    }
}

//  Estimates the original graph G's costs. Shapes that only constant
//  folding reveals (a Reshape to a computed shape) would leave "before"
//  counting fewer nodes than "after": so a copy of the model is folded
//  and its shapes imported into G first. The copy is discarded; when it
//  cannot be made (allocation), G's own shapes are used.
static int
s_estimate_before (cmn_onnx_model_t *model, cmn_graph_t *g, cmn_opt_mem_t *mem, cmn_err_t *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    cmn_err_t e2;
    cmn_onnx_model_t *copy = NULL;
    if (cmn_onnx_write (model, &buf, &len, &e2) == 0) {
        copy = cmn_onnx_read (buf, len, NULL, NULL, &e2);
        free (buf);
    }
    cmn_graph_t *cg = copy ? cmn_graph_new (copy, &e2) : NULL;
    if (cg && cmn_opt_fold_constants (cg, cmn_opt_opts_default.fold_max_bytes, &e2) >= 0)
        cmn_graph_import_shapes (g, cg);
    cmn_graph_destroy (&cg);
    cmn_onnx_destroy (&copy);
    int rc = cmn_opt_mem_estimate (g, mem, err);
    //  Back to the graph's own view for the passes.
    if (rc == 0)
        rc = cmn_graph_refresh (g, err);
    return rc;
}

//  IR versions before 4 require every initializer to be a graph input too:
//  list the initializers the passes created.
static int
s_inits_as_inputs (cmn_onnx_model_t *model, cmn_err_t *err)
{
    cmn_onnx_graph_t *g = model->graph;
    if (model->ir_version >= 4)
        return 0;
    for (size_t i = 0; i < g->ninits; i++) {
        const cmn_onnx_tensor_t *t = g->inits [i];
        bool listed = false;
        for (size_t k = 0; k < g->ninputs && !listed; k++)
            listed = !strcmp (g->inputs [k].name, t->name);
        if (listed)
            continue;
        cmn_onnx_value_info_t *q = realloc (g->inputs, (g->ninputs + 1) * sizeof *q);
        if (!q)
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        g->inputs = q;
        cmn_onnx_value_info_t *vi = &q [g->ninputs];
        memset (vi, 0, sizeof *vi);
        vi->name = strdup (t->name);
        if (!vi->name)
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        g->ninputs++;
        vi->has_type = vi->is_tensor = vi->has_shape = true;
        vi->elem_type = t->data_type;
        vi->ndims = t->ndims;
        memcpy (vi->dims, t->dims, t->ndims * sizeof *t->dims);
    }
    return 0;
}

int
cmn_opt_run (cmn_onnx_model_t *model, const cmn_opt_opts_t *opts,
             cmn_opt_report_t *report, cmn_err_t *err)
{
    assert (model);
    cmn_err_clear (err);
    if (!opts)
        opts = &cmn_opt_opts_default;
    cmn_opt_report_t local;
    cmn_opt_report_t *r = report ? report : &local;
    memset (r, 0, sizeof *r);
    int64_t t0 = zclock_usecs ();

    cmn_graph_t *g = cmn_graph_new (model, err);
    if (!g)
        return -1;
    s_count_ops (model->graph, r, false);
    cmn_opt_mem_t mem;
    if (s_estimate_before (model, g, &mem, err)) {
        cmn_graph_destroy (&g);
        return -1;
    }
    r->flops_before = mem.flops;
    r->flops_partial = mem.flops_partial;
    r->mem_naive_before = mem.naive_bytes;
    r->mem_peak_before = mem.planned_bytes;
    r->weights_before = mem.weight_bytes;
    r->mem_partial = mem.mem_partial;

    for (int p = 0; p < CMN_OPT_NPASSES; p++)
        r->enabled [p] = opts->force [p] > 0 || (opts->force [p] == 0 && s_passes [p].level <= opts->level
                                                  && opts->level > 0);
    int rc = 0;
    cmn_opt_layout_stats_t ls = { 0 };
    for (int sweep = 0; sweep < opts->max_sweeps && rc == 0; sweep++) {
        int changed = 0;
        for (int p = 0; p < CMN_OPT_NPASSES && rc == 0; p++) {
            if (!r->enabled [p])
                continue;
            int n = s_run_pass (g, (cmn_opt_pass_t) p, opts, &ls, err);
            if (n < 0)
                rc = -1;
            else {
                r->applied [p] += (size_t) n;
                changed += n;
            }
        }
        r->sweeps = sweep + 1;
        if (changed == 0)
            break;
    }
    if (rc == 0)
        rc = cmn_opt_mem_estimate (g, &mem, err);
    if (rc == 0)
        rc = s_inits_as_inputs (model, err);
    if (rc == 0) {
        r->flops_after = mem.flops;
        r->flops_partial |= mem.flops_partial;
        r->mem_naive_after = mem.naive_bytes;
        r->mem_peak_after = mem.planned_bytes;
        r->weights_after = mem.weight_bytes;
        r->buffers_after = mem.buffers;
        r->tensors_after = mem.tensors;
        r->mem_partial |= mem.mem_partial;
        s_count_ops (model->graph, r, true);
        r->layout_converted = ls.converted;
        r->layout_inserted = ls.inserted;
        r->layout_removed = ls.removed;
        for (size_t i = 0; i < r->nops; i++)
            if (!strcmp (r->ops [i].op, "Transpose"))
                r->transposes_after = r->ops [i].after;
    }
    cmn_graph_destroy (&g);
    r->seconds = (double) (zclock_usecs () - t0) / 1e6;
    return rc;
}

void
cmn_opt_report_print (const cmn_opt_report_t *r, FILE *out)
{
    fprintf (out, "nodes: %zu -> %zu\n", r->nodes_before, r->nodes_after);
    fprintf (out, "%-32s %8s %8s\n", "op", "before", "after");
    for (size_t i = 0; i < r->nops; i++)
        fprintf (out, "%-32s %8zu %8zu\n", r->ops [i].op, r->ops [i].before, r->ops [i].after);
    fprintf (out, "passes (rewrites):");
    for (int p = 0; p < CMN_OPT_NPASSES; p++)
        if (r->enabled [p])
            fprintf (out, " %s=%zu", s_passes [p].name, r->applied [p]);
    fprintf (out, "%s\n", r->sweeps ? "" : " none (level 0)");
    if (r->enabled [CMN_OPT_LAYOUT])
        fprintf (out, "layout NHWC: %zu nodes converted, %zu transposes inserted, %zu cancelled, "
                 "%zu Transpose nodes left\n", r->layout_converted, r->layout_inserted,
                 r->layout_removed, r->transposes_after);
    fprintf (out, "FLOPs: %.4g -> %.4g%s\n", r->flops_before, r->flops_after,
             r->flops_partial ? " (some nodes of unknown shape not counted)" : "");
    fprintf (out, "activation memory, no reuse: %.4g MB -> %.4g MB\n",
             (double) r->mem_naive_before / 1e6, (double) r->mem_naive_after / 1e6);
    fprintf (out, "activation memory, planned with reuse: %.4g MB -> %.4g MB (%zu tensors in %zu buffers)%s\n",
             (double) r->mem_peak_before / 1e6, (double) r->mem_peak_after / 1e6, r->tensors_after,
             r->buffers_after, r->mem_partial ? " (tensors of unknown size not counted)" : "");
    fprintf (out, "weights: %.4g MB -> %.4g MB\n", (double) r->weights_before / 1e6,
             (double) r->weights_after / 1e6);
    fprintf (out, "time: %.3f s, %d sweep(s)\n", r->seconds, r->sweeps);
}

char *
cmn_opt_report_json (const cmn_opt_report_t *r)
{
    //  Built with czmq's string helpers; sizes are bounded by the table.
    char *ops = strdup ("");
    for (size_t i = 0; ops && i < r->nops; i++) {
        char *next = zsys_sprintf ("%s%s\"%s\":[%zu,%zu]", ops, i ? "," : "", r->ops [i].op,
                                   r->ops [i].before, r->ops [i].after);
        free (ops);
        ops = next;
    }
    char *passes = strdup ("");
    for (int p = 0; passes && p < CMN_OPT_NPASSES; p++) {
        if (!r->enabled [p])
            continue;
        char *next = zsys_sprintf ("%s%s\"%s\":%zu", passes, passes [0] ? "," : "", s_passes [p].name,
                                   r->applied [p]);
        free (passes);
        passes = next;
    }
    char *layout = NULL;
    if (r->enabled [CMN_OPT_LAYOUT])
        layout = zsys_sprintf (",\"layout\":{\"converted\":%zu,\"transposes_inserted\":%zu,"
                               "\"transposes_cancelled\":%zu,\"transposes_left\":%zu}",
                               r->layout_converted, r->layout_inserted, r->layout_removed,
                               r->transposes_after);
    else
        layout = strdup ("");
    char *json = NULL;
    if (ops && passes && layout)
        json = zsys_sprintf ("{\"nodes\":[%zu,%zu],\"ops\":{%s},\"passes\":{%s},"
                             "\"flops\":[%.6g,%.6g],\"flops_partial\":%s,"
                             "\"memory_bytes\":{\"naive_before\":%lld,\"naive_after\":%lld,"
                             "\"planned_before\":%lld,\"planned_after\":%lld,\"buffers_after\":%zu,\"tensors_after\":%zu,"
                             "\"partial\":%s},\"weights_bytes\":[%lld,%lld]%s,"
                             "\"sweeps\":%d,\"seconds\":%.6f}",
                             r->nodes_before, r->nodes_after, ops, passes, r->flops_before, r->flops_after,
                             r->flops_partial ? "true" : "false", (long long) r->mem_naive_before,
                             (long long) r->mem_naive_after, (long long) r->mem_peak_before,
                             (long long) r->mem_peak_after,
                             r->buffers_after, r->tensors_after, r->mem_partial ? "true" : "false",
                             (long long) r->weights_before, (long long) r->weights_after, layout,
                             r->sweeps, r->seconds);
    free (layout);
    free (ops);
    free (passes);
    return json;
}
