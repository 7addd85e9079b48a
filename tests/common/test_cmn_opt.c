/*  test_cmn_opt: each optimizer pass alone on a model made for it
 *  (tests/fixtures/onnx/pass_*.onnx), the levels, the switches, and the
 *  report's FLOPs and memory figures worked out by hand. Numerical
 *  equivalence of every rewrite in onnxruntime is checked by
 *  tests/python/check_onnx.sh over the same models.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmn_onnx.h"
#include "cmn_graph.h"
#include "cmn_opt.h"

static cmn_onnx_model_t *
s_load (const char *name)
{
    const char *dir = getenv ("RXQ_FIXTURES");
    char path [1024];
    snprintf (path, sizeof path, "%s/onnx/%s", dir ? dir : RXQ_SOURCE_DIR "/tests/fixtures", name);
    cmn_err_t err;
    cmn_onnx_model_t *m = cmn_onnx_load (path, NULL, &err);
    cr_assert_not_null (m, "%s: %s", path, err.msg);
    return m;
}

static size_t
s_after (const cmn_opt_report_t *r, const char *op)
{
    for (size_t i = 0; i < r->nops; i++)
        if (!strcmp (r->ops [i].op, op))
            return r->ops [i].after;
    return 0;
}

//  Runs only PASS (level 0 plus the one switch) on FILE; checks the
//  rewrites and "Op=count" pairs in AFTER (space-separated).
static void
s_pass_alone (const char *file, const char *pass, size_t rewrites, const char *after)
{
    cmn_onnx_model_t *m = s_load (file);
    cmn_opt_opts_t o = cmn_opt_opts_default;
    o.level = 0;
    cmn_opt_pass_t p;
    cr_assert_eq (cmn_opt_pass_parse (pass, &p), 0, "%s", pass);
    o.force [p] = 1;
    cmn_opt_report_t r;
    cmn_err_t err;
    cr_assert_eq (cmn_opt_run (m, &o, &r, &err), 0, "%s: %s", file, err.msg);
    cr_assert_eq (r.applied [p], rewrites, "%s %s: %zu rewrites, expected %zu", file, pass,
                  r.applied [p], rewrites);
    for (int q = 0; q < CMN_OPT_NPASSES; q++)
        if (q != (int) p)
            cr_assert_eq (r.applied [q], 0);
    char buf [256];
    snprintf (buf, sizeof buf, "%s", after);
    for (char *tok = strtok (buf, " "); tok; tok = strtok (NULL, " ")) {
        char *eq = strchr (tok, '=');
        *eq = 0;
        size_t want = (size_t) atoi (eq + 1);
        cr_assert_eq (s_after (&r, tok), want, "%s %s: %zu %s nodes, expected %zu", file, pass,
                      s_after (&r, tok), tok, want);
    }
    //  What is left must still be a valid graph that writes and re-reads.
    uint8_t *buf2;
    size_t len;
    cr_assert_eq (cmn_onnx_write (m, &buf2, &len, &err), 0);
    cmn_onnx_model_t *m2 = cmn_onnx_read (buf2, len, NULL, NULL, &err);
    cr_assert_not_null (m2, "%s", err.msg);
    o = cmn_opt_opts_default;
    o.level = 0;
    cr_assert_eq (cmn_opt_run (m2, &o, NULL, &err), 0, "%s after %s: %s", file, pass, err.msg);
    free (buf2);
    cmn_onnx_destroy (&m2);
    cmn_onnx_destroy (&m);
}

Test (opt, dce)
{
    //  Three dead nodes and the initializer nothing reads; "w" is read
    //  only by a dead node, so it goes too.
    s_pass_alone ("pass_dce.onnx", "dce", 5, "Relu=1 Exp=0 Neg=0 Add=0");
}

Test (opt, noop)
{
    //  Identity, Dropout, Cast to FLOAT of a FLOAT, Transpose [0, 1], and
    //  the Identity that produces the graph output (Relu is renamed).
    s_pass_alone ("pass_noop.onnx", "noop", 5, "Relu=1 Identity=0 Dropout=0 Cast=0 Transpose=0");
}

Test (opt, cse)
{
    s_pass_alone ("pass_cse.onnx", "cse", 2, "Exp=1 Add=1 Mul=1");
}

Test (opt, fold)
{
    //  Constant -> initializer; Shape of a static input; Add and Sub of
    //  constants; Reshape of a constant: only the final Add is left.
    s_pass_alone ("pass_fold.onnx", "fold", 5, "Constant=0 Shape=0 Sub=0 Reshape=0 Add=1");
}

Test (opt, algebra)
{
    //  x+0, 1*x, x-0, x/1; the outer of two Transposes reads x with the
    //  composed permutation (the identity here; the inner one is left dead
    //  for DCE, the outer for noop); the Reshape chain reads x directly;
    //  Mul by zeros becomes a zero initializer.
    s_pass_alone ("pass_algebra_mix.onnx", "algebra", 8, "Sub=0 Div=0 Transpose=2");
    //  With the other passes both Transposes go.
    cmn_onnx_model_t *m = s_load ("pass_algebra_mix.onnx");
    cmn_opt_report_t r;
    cmn_err_t err;
    cr_assert_eq (cmn_opt_run (m, NULL, &r, &err), 0, "%s", err.msg);
    cr_assert_eq (s_after (&r, "Transpose"), 0);
    cr_assert_eq (s_after (&r, "Reshape"), 1);
    cr_assert_eq (r.nodes_after, 4, "Reshape, Exp, Add (2x) are left: %zu", r.nodes_after);
    cmn_onnx_destroy (&m);
}

Test (opt, fuse_conv_bn)
{
    s_pass_alone ("pass_conv_bn_relu.onnx", "fuse-conv-bn", 2, "Conv=2 BatchNormalization=0 Relu=1");
}

Test (opt, fuse_gemm)
{
    s_pass_alone ("pass_matmul_add.onnx", "fuse-gemm", 2, "Gemm=2 MatMul=0 Add=0 Relu=1");
}

Test (opt, fuse_layernorm)
{
    s_pass_alone ("pass_layernorm_relu.onnx", "fuse-layernorm", 1, "LayerNormalization=1 Relu=1");
}

Test (opt, fuse_gelu)
{
    //  Both groupings of x * 0.5 * (1 + erf(x / sqrt 2)), opset 20.
    s_pass_alone ("pass_ffn_gelu.onnx", "fuse-gelu", 2, "Gelu=2 Erf=2");
    //  At -O2 the whole block is LayerNormalization, Gelu, Gemm, Gelu.
    cmn_onnx_model_t *m = s_load ("pass_ffn_gelu.onnx");
    cmn_opt_opts_t o = cmn_opt_opts_default;
    o.level = 2;
    cmn_opt_report_t r;
    cmn_err_t err;
    cr_assert_eq (cmn_opt_run (m, &o, &r, &err), 0, "%s", err.msg);
    cr_assert_eq (r.nodes_after, 4);
    cr_assert_eq (s_after (&r, "LayerNormalization"), 1);
    cr_assert_eq (s_after (&r, "Gemm"), 1);
    cr_assert_eq (s_after (&r, "Gelu"), 2);
    cmn_onnx_destroy (&m);
}

Test (opt, conv_bn_weights)
{
    //  The folded weights are W * gamma / sqrt(var + eps), per channel.
    cmn_onnx_model_t *m = s_load ("pass_conv_bn_relu.onnx");
    cmn_onnx_graph_t *g = m->graph;
    ssize_t iw = cmn_onnx_graph_find_init (g, "w1"), is = cmn_onnx_graph_find_init (g, "s1"),
            iv = cmn_onnx_graph_find_init (g, "v1");
    cr_assert (iw >= 0 && is >= 0 && iv >= 0);
    float w0, s0, v0;
    memcpy (&w0, g->inits [iw]->raw, 4);
    memcpy (&s0, g->inits [is]->raw, 4);
    memcpy (&v0, g->inits [iv]->raw, 4);
    cmn_opt_opts_t o = cmn_opt_opts_default;
    o.level = 2;
    cmn_err_t err;
    cr_assert_eq (cmn_opt_run (m, &o, NULL, &err), 0, "%s", err.msg);
    cmn_onnx_node_t *conv = NULL;
    for (size_t i = 0; i < g->nnodes; i++)
        if (!strcmp (g->nodes [i]->op_type, "Conv") && !strcmp (g->nodes [i]->inputs [0], "x"))
            conv = g->nodes [i];
    cr_assert_not_null (conv);
    ssize_t nw = cmn_onnx_graph_find_init (g, conv->inputs [1]);
    cr_assert_geq (nw, 0);
    float w0b;
    memcpy (&w0b, g->inits [nw]->raw, 4);
    double want = (double) w0 * s0 / sqrt ((double) v0 + 1e-3);
    cr_assert_float_eq (w0b, want, 1e-5 * fabs (want) + 1e-7, "%g vs %g", w0b, want);
    cr_assert_eq (cmn_onnx_graph_find_init (g, "w1"), -1, "the original weights are dead");
    cmn_onnx_destroy (&m);
}

Test (opt, levels_and_switches)
{
    cmn_err_t err;
    cmn_opt_report_t r;
    cmn_opt_opts_t o = cmn_opt_opts_default;
    //  -O0 changes nothing.
    cmn_onnx_model_t *m = s_load ("pass_algebra_mix.onnx");
    o.level = 0;
    cr_assert_eq (cmn_opt_run (m, &o, &r, &err), 0);
    cr_assert_eq (r.nodes_before, r.nodes_after);
    for (int p = 0; p < CMN_OPT_NPASSES; p++)
        cr_assert_not (r.enabled [p]);
    cmn_onnx_destroy (&m);
    //  -O1 does not fuse; -O2 does.
    m = s_load ("pass_matmul_add.onnx");
    o.level = 1;
    cr_assert_eq (cmn_opt_run (m, &o, &r, &err), 0);
    cr_assert_eq (s_after (&r, "MatMul"), 2);
    cr_assert_not (r.enabled [CMN_OPT_FUSE_GEMM]);
    o.level = 2;
    cr_assert_eq (cmn_opt_run (m, &o, &r, &err), 0);
    cr_assert_eq (s_after (&r, "Gemm"), 2);
    cmn_onnx_destroy (&m);
    //  --disable fold at -O2 keeps the Constant.
    m = s_load ("pass_fold.onnx");
    o.force [CMN_OPT_FOLD] = -1;
    cr_assert_eq (cmn_opt_run (m, &o, &r, &err), 0);
    cr_assert_eq (s_after (&r, "Constant"), 1);
    cr_assert_eq (r.applied [CMN_OPT_FOLD], 0);
    cmn_onnx_destroy (&m);
    cmn_opt_pass_t p;
    cr_assert_eq (cmn_opt_pass_parse ("no-such-pass", &p), -1);
}

Test (opt, report_figures)
{
    //  MatMul [4,16]x[16,32]: 4096; Add, Relu: 128 each; MatMul
    //  [4,32]x[32,8]: 2048; Add: 32. The Gemms count the same.
    cmn_onnx_model_t *m = s_load ("pass_matmul_add.onnx");
    cmn_opt_opts_t o = cmn_opt_opts_default;
    o.level = 2;
    cmn_opt_report_t r;
    cmn_err_t err;
    cr_assert_eq (cmn_opt_run (m, &o, &r, &err), 0);
    cr_assert_float_eq (r.flops_before, 6432, 0);
    cr_assert_float_eq (r.flops_after, 6432, 0);
    cr_assert_not (r.flops_partial);
    //  Intermediates before: mm, h, r, mm2 (4x32, 4x32, 4x32, 4x8 floats).
    cr_assert_eq (r.mem_naive_before, 512 + 512 + 512 + 128);
    //  After: h, r (the Gemm outputs replace mm, mm2 goes with its Add).
    cr_assert_eq (r.mem_naive_after, 512 + 512);
    char *js = cmn_opt_report_json (&r);
    cr_assert_not_null (js);
    cr_assert (strstr (js, "\"Gemm\":[0,2]"), "%s", js);
    cr_assert (strstr (js, "\"fuse-gemm\":2"), "%s", js);
    free (js);
    cmn_onnx_destroy (&m);
}

Test (opt, memory_plan)
{
    //  pass_cse at -O0: e1, e2, a1, a2 are [2,3] floats (24 bytes). e1 and
    //  e2 take two buffers, a1 a third (e1 is freed after a1 reads it),
    //  a2 reuses e1's: 3 buffers, 72 bytes, against 96 without reuse.
    cmn_onnx_model_t *m = s_load ("pass_cse.onnx");
    cmn_opt_opts_t o = cmn_opt_opts_default;
    o.level = 0;
    cmn_opt_report_t r;
    cmn_err_t err;
    cr_assert_eq (cmn_opt_run (m, &o, &r, &err), 0);
    cr_assert_eq (r.mem_naive_before, 96);
    cr_assert_eq (r.mem_peak_before, 72);
    cr_assert_eq (r.mem_peak_after, 72);
    cr_assert_eq (r.buffers_after, 3);
    cr_assert_eq (r.tensors_after, 4);
    cr_assert_not (r.mem_partial);
    //  After CSE only e1 and a1 are left: 2 buffers of 24 bytes.
    o.level = 1;
    cr_assert_eq (cmn_opt_run (m, &o, &r, &err), 0);
    cr_assert_eq (r.mem_naive_after, 48);
    cr_assert_eq (r.mem_peak_after, 48);
    cmn_onnx_destroy (&m);
}

//  ---------------------------------------------------------------------
//  layout: graphs built here, NCHW input x [1, 3, 8, 8] at opset 17.

static cmn_onnx_model_t *
s_lmodel (void)
{
    cmn_onnx_model_t *m = calloc (1, sizeof *m);
    cr_assert_not_null (m);
    m->ir_version = 8;
    m->graph = calloc (1, sizeof *m->graph);
    m->opsets = calloc (1, sizeof *m->opsets);
    m->opsets [0].domain = strdup ("");
    m->opsets [0].version = 17;
    m->nopsets = 1;
    cmn_onnx_graph_t *g = m->graph;
    g->name = strdup ("layout");
    g->inputs = calloc (1, sizeof *g->inputs);
    g->inputs [0].name = strdup ("x");
    g->inputs [0].has_type = g->inputs [0].is_tensor = g->inputs [0].has_shape = true;
    g->inputs [0].elem_type = CMN_ONNX_FLOAT;
    g->inputs [0].ndims = 4;
    int64_t d [4] = { 1, 3, 8, 8 };
    memcpy (g->inputs [0].dims, d, sizeof d);
    g->ninputs = 1;
    g->outputs = calloc (1, sizeof *g->outputs);
    g->outputs [0].name = strdup ("y");
    g->outputs [0].has_type = g->outputs [0].is_tensor = true;
    g->outputs [0].elem_type = CMN_ONNX_FLOAT;
    g->noutputs = 1;
    return m;
}

//  Adds node OP reading the comma-separated INS, writing OUT.
static cmn_onnx_node_t *
s_lnode (cmn_onnx_model_t *m, const char *op, const char *ins, const char *out)
{
    char buf [256];
    snprintf (buf, sizeof buf, "%s", ins);
    const char *v [8];
    size_t n = 0;
    for (char *t = strtok (buf, ","); t && n < 8; t = strtok (NULL, ","))
        v [n++] = t;
    const char *o [1] = { out };
    cmn_onnx_node_t *node = cmn_onnx_node_new (op, out, v, n, o, 1);
    cr_assert_not_null (node);
    cr_assert_eq (cmn_onnx_graph_add_node (m->graph, node), 0);
    return node;
}

//  Adds a FLOAT initializer NAME of DIMS; element k is k + BASE.
static void
s_linit (cmn_onnx_model_t *m, const char *name, const int64_t *dims, size_t ndims, float base)
{
    cmn_onnx_tensor_t *t = cmn_onnx_tensor_new (name, CMN_ONNX_FLOAT, dims, ndims);
    cr_assert_not_null (t);
    for (int64_t k = 0; k < cmn_onnx_tensor_numel (t); k++) {
        float v = (float) k + base;
        memcpy (t->raw + 4 * k, &v, 4);
    }
    cr_assert_eq (cmn_onnx_graph_add_init (m->graph, t), 0);
}

//  A Conv of COUT 3x3 filters over CIN channels, padding 1 (size kept).
static void
s_lconv (cmn_onnx_model_t *m, const char *in, const char *w, int64_t cout, int64_t cin,
         const char *out)
{
    int64_t wd [4] = { cout, cin, 3, 3 };
    s_linit (m, w, wd, 4, 0.5f);
    char ins [128];
    snprintf (ins, sizeof ins, "%s,%s", in, w);
    cmn_onnx_node_t *n = s_lnode (m, "Conv", ins, out);
    int64_t pads [4] = { 1, 1, 1, 1 };
    cr_assert_eq (cmn_onnx_node_set_ints (n, "pads", pads, 4), 0);
}

//  Runs -O1 with --layout nhwc; checks the model re-reads and re-validates.
static void
s_lrun (cmn_onnx_model_t *m, cmn_opt_report_t *r)
{
    cmn_opt_opts_t o = cmn_opt_opts_default;
    o.force [CMN_OPT_LAYOUT] = 1;
    cmn_err_t err;
    cr_assert_eq (cmn_opt_run (m, &o, r, &err), 0, "%s", err.msg);
    uint8_t *buf;
    size_t len;
    cr_assert_eq (cmn_onnx_write (m, &buf, &len, &err), 0);
    cmn_onnx_model_t *m2 = cmn_onnx_read (buf, len, NULL, NULL, &err);
    free (buf);
    cr_assert_not_null (m2, "%s", err.msg);
    cr_assert_eq (cmn_onnx_opset (m2, "com.rxq"), 1);
    o = cmn_opt_opts_default;
    o.level = 0;
    cr_assert_eq (cmn_opt_run (m2, &o, NULL, &err), 0, "%s", err.msg);
    cmn_onnx_destroy (&m2);
}

static cmn_onnx_node_t *
s_lfind (cmn_onnx_model_t *m, const char *op)
{
    for (size_t i = 0; i < m->graph->nnodes; i++)
        if (!strcmp (m->graph->nodes [i]->op_type, op))
            return m->graph->nodes [i];
    cr_assert_fail ("no %s node", op);
    return NULL;
}

static cmn_onnx_node_t *
s_lproducer (cmn_onnx_model_t *m, const char *value)
{
    for (size_t i = 0; i < m->graph->nnodes; i++)
        if (!strcmp (m->graph->nodes [i]->outputs [0], value))
            return m->graph->nodes [i];
    return NULL;
}

static cmn_onnx_tensor_t *
s_linit_of (cmn_onnx_model_t *m, const char *name)
{
    ssize_t k = cmn_onnx_graph_find_init (m->graph, name);
    cr_assert_geq (k, 0, "no initializer %s", name);
    return m->graph->inits [k];
}

Test (opt, layout_conv_chain_keeps_two_transposes)
{
    //  x -> Conv(4) -> Relu -> Conv(2) -> Relu -> y: one Transpose in,
    //  one out; the Relus run on NHWC values.
    cmn_onnx_model_t *m = s_lmodel ();
    s_lconv (m, "x", "w1", 4, 3, "c1");
    s_lnode (m, "Relu", "c1", "r1");
    s_lconv (m, "r1", "w2", 2, 4, "c2");
    s_lnode (m, "Relu", "c2", "y");
    cmn_opt_report_t r;
    s_lrun (m, &r);
    cr_assert_eq (s_after (&r, "Transpose"), 2);
    cr_assert_eq (s_after (&r, "com.rxq:NhwcConv"), 2);
    cr_assert_eq (s_after (&r, "Conv"), 0);
    cr_assert_eq (r.layout_converted, 2);
    cr_assert_eq (r.layout_inserted - r.layout_removed, 2);
    cr_assert_eq (r.transposes_after, 2);
    char *js = cmn_opt_report_json (&r);
    cr_assert (js && strstr (js, "\"layout\":{\"converted\":2,"), "%s", js);
    cr_assert (strstr (js, "\"transposes_left\":2}"), "%s", js);
    free (js);
    //  The input Transpose is NCHW -> NHWC, the output one back.
    cmn_onnx_node_t *t_out = s_lproducer (m, "y");
    cr_assert_str_eq (t_out->op_type, "Transpose");
    cmn_onnx_attr_t *p = cmn_onnx_node_attr (t_out, "perm");
    cr_assert (p && p->nints == 4 && p->ints [1] == 3 && p->ints [2] == 1 && p->ints [3] == 2);
    cmn_onnx_node_t *relu = s_lproducer (m, t_out->inputs [0]);
    cr_assert_str_eq (relu->op_type, "Relu");
    //  NhwcConv's weight is OHWI: w'[o][h][w][i] = w[o][i][h][w].
    cmn_onnx_node_t *conv = s_lfind (m, "NhwcConv");
    cr_assert_str_eq (conv->domain, "com.rxq");
    cmn_onnx_tensor_t *w = s_linit_of (m, conv->inputs [1]);
    cr_assert_eq (w->ndims, 4);
    cr_assert (w->dims [0] == 4 && w->dims [1] == 3 && w->dims [2] == 3 && w->dims [3] == 3,
               "OHWI dims");
    float v;
    //  o=1, h=2, w=0, i=2: OHWI index ((1*3+2)*3+0)*3+2 = 47; OIHW
    //  index ((1*3+2)*3+2)*3+0 = 51, value 51.5.
    memcpy (&v, w->raw + 4 * 47, 4);
    cr_assert_float_eq (v, 51.5f, 0);
    //  Shape inference knows the NHWC ops: [1, 8, 8, 4] after the first.
    cmn_err_t err;
    cmn_graph_t *g = cmn_graph_new (m, &err);
    cr_assert_not_null (g, "%s", err.msg);
    const cmn_graph_shape_t *sh = cmn_graph_shape (g, conv->outputs [0]);
    cr_assert_eq (sh->rank, 4);
    cr_assert (sh->dims [0] == 1 && sh->dims [1] == 8 && sh->dims [2] == 8
               && (sh->dims [3] == 4 || sh->dims [3] == 2), "NHWC output shape");
    cmn_graph_destroy (&g);
    cr_assert_not (r.flops_partial);
    cr_assert_float_eq (r.flops_before, r.flops_after, 0);
    cmn_onnx_destroy (&m);
}

Test (opt, layout_add_constant_permuted)
{
    //  x -> Conv(4) -> Add k[4,1,1] -> Conv(2) -> y: the per-channel
    //  constant becomes [1,1,1,4] with the same values per channel.
    cmn_onnx_model_t *m = s_lmodel ();
    s_lconv (m, "x", "w1", 4, 3, "c1");
    int64_t kd [3] = { 4, 1, 1 };
    s_linit (m, "k", kd, 3, 10.0f);
    s_lnode (m, "Add", "c1,k", "a1");
    s_lconv (m, "a1", "w2", 2, 4, "y");
    cmn_opt_report_t r;
    s_lrun (m, &r);
    cr_assert_eq (s_after (&r, "Transpose"), 2);
    cmn_onnx_node_t *add = s_lfind (m, "Add");
    cr_assert_str_eq (s_lproducer (m, add->inputs [0])->op_type, "NhwcConv");
    cmn_onnx_tensor_t *k = s_linit_of (m, add->inputs [1]);
    cr_assert_eq (k->ndims, 4);
    cr_assert (k->dims [0] == 1 && k->dims [1] == 1 && k->dims [2] == 1 && k->dims [3] == 4);
    for (int c = 0; c < 4; c++) {
        float v;
        memcpy (&v, k->raw + 4 * c, 4);
        cr_assert_float_eq (v, 10.0f + (float) c, 0);
    }
    cmn_onnx_destroy (&m);
}

Test (opt, layout_concat_axis_remapped)
{
    //  Two convs of x concatenated on channels (axis 1), then a conv:
    //  the Concat runs on NHWC along axis 3.
    cmn_onnx_model_t *m = s_lmodel ();
    s_lconv (m, "x", "wa", 4, 3, "ca");
    s_lconv (m, "x", "wb", 2, 3, "cb");
    cmn_onnx_node_t *cat = s_lnode (m, "Concat", "ca,cb", "cat");
    cr_assert_eq (cmn_onnx_node_set_int (cat, "axis", 1), 0);
    s_lconv (m, "cat", "wc", 2, 6, "y");
    cmn_opt_report_t r;
    s_lrun (m, &r);
    cat = s_lfind (m, "Concat");
    cr_assert_eq (cmn_onnx_node_attr_int (cat, "axis", -1), 3);
    cr_assert_str_eq (s_lproducer (m, cat->inputs [0])->op_type, "NhwcConv");
    cr_assert_str_eq (s_lproducer (m, cat->inputs [1])->op_type, "NhwcConv");
    //  One Transpose of x (CSE not run: -O1 runs it, so one), one out.
    cr_assert_eq (s_after (&r, "Transpose"), 2);
    cmn_onnx_destroy (&m);
}

//  Adds a second graph input NAME of x's type and shape.
static void
s_linput (cmn_onnx_model_t *m, const char *name)
{
    cmn_onnx_graph_t *g = m->graph;
    cmn_onnx_value_info_t *q = realloc (g->inputs, (g->ninputs + 1) * sizeof *q);
    cr_assert_not_null (q);
    g->inputs = q;
    q [g->ninputs] = q [0];
    q [g->ninputs].name = strdup (name);
    g->ninputs++;
}

Test (opt, layout_blocked_keeps_correct_transposes)
{
    //  x -> Conv(3) -> Relu -> Add(., z) -> Conv(2) -> y, z a second NCHW
    //  input nothing transposes: the Transpose back to NCHW must stay
    //  before the Add, and one to NHWC after it.
    cmn_onnx_model_t *m = s_lmodel ();
    s_linput (m, "z");
    s_lconv (m, "x", "w1", 3, 3, "c1");
    s_lnode (m, "Relu", "c1", "r1");
    s_lnode (m, "Add", "r1,z", "a1");
    s_lconv (m, "a1", "w2", 2, 3, "y");
    cmn_opt_report_t r;
    s_lrun (m, &r);
    cmn_onnx_node_t *add = s_lfind (m, "Add");
    //  One operand is the NCHW z, the other a Transpose to NCHW of the Relu.
    int zs = !strcmp (add->inputs [0], "z") ? 0 : 1;
    cr_assert_str_eq (add->inputs [zs], "z");
    cmn_onnx_node_t *t = s_lproducer (m, add->inputs [1 - zs]);
    cr_assert_str_eq (t->op_type, "Transpose");
    cmn_onnx_attr_t *p = cmn_onnx_node_attr (t, "perm");
    cr_assert (p && p->nints == 4 && p->ints [0] == 0 && p->ints [1] == 3 && p->ints [2] == 1
               && p->ints [3] == 2);
    cr_assert_str_eq (s_lproducer (m, t->inputs [0])->op_type, "Relu");
    //  The Add's result goes to NHWC before the second conv.
    cmn_onnx_node_t *conv2 = NULL;
    for (size_t i = 0; i < m->graph->nnodes; i++)
        if (!strcmp (m->graph->nodes [i]->op_type, "NhwcConv")
            && strcmp (s_lproducer (m, m->graph->nodes [i]->inputs [0])->inputs [0], "x"))
            conv2 = m->graph->nodes [i];
    cr_assert_not_null (conv2);
    cmn_onnx_node_t *t2 = s_lproducer (m, conv2->inputs [0]);
    cr_assert_str_eq (t2->op_type, "Transpose");
    cr_assert_str_eq (t2->inputs [0], "a1");
    //  In, before the Add, after the Add, out.
    cr_assert_eq (s_after (&r, "Transpose"), 4);
    cmn_onnx_destroy (&m);
}

Test (opt, layout_reuses_an_existing_nhwc_copy)
{
    //  The same with x instead of z: x already goes to NHWC for the first
    //  conv, so the Add reads that copy and the chain keeps 2 Transposes.
    cmn_onnx_model_t *m = s_lmodel ();
    s_lconv (m, "x", "w1", 3, 3, "c1");
    s_lnode (m, "Relu", "c1", "r1");
    s_lnode (m, "Add", "r1,x", "a1");
    s_lconv (m, "a1", "w2", 2, 3, "y");
    cmn_opt_report_t r;
    s_lrun (m, &r);
    cr_assert_eq (s_after (&r, "Transpose"), 2);
    cmn_onnx_node_t *add = s_lfind (m, "Add");
    int ts = !strcmp (s_lproducer (m, add->inputs [0])->op_type, "Transpose") ? 0 : 1;
    cmn_onnx_node_t *t = s_lproducer (m, add->inputs [ts]);
    cr_assert_str_eq (t->op_type, "Transpose");
    cr_assert_str_eq (t->inputs [0], "x");
    cr_assert_str_eq (s_lproducer (m, add->inputs [1 - ts])->op_type, "Relu");
    cmn_onnx_destroy (&m);
}

Test (opt, layout_off_by_default)
{
    //  -O2 without the switch leaves Conv alone: layout is level 3.
    cmn_onnx_model_t *m = s_lmodel ();
    s_lconv (m, "x", "w1", 4, 3, "y");
    cmn_opt_opts_t o = cmn_opt_opts_default;
    o.level = 2;
    cmn_opt_report_t r;
    cmn_err_t err;
    cr_assert_eq (cmn_opt_run (m, &o, &r, &err), 0, "%s", err.msg);
    cr_assert_not (r.enabled [CMN_OPT_LAYOUT]);
    cr_assert_eq (s_after (&r, "Conv"), 1);
    cr_assert_eq (s_after (&r, "Transpose"), 0);
    char *js = cmn_opt_report_json (&r);
    cr_assert (js && !strstr (js, "\"layout\""), "%s", js);
    free (js);
    cmn_onnx_destroy (&m);
}

//  Regression: --layout nhwc at -O0 (no dead-code pass) left the Conv's
//  OIHW weights and the Add's unpermuted constant in the file next to
//  their new copies. The layout pass now drops the initializers it leaves
//  unused; one that was unused before stays (that is -O1's DCE's job).
Test (opt, layout_at_O0_drops_the_initializers_it_replaced)
{
    cmn_onnx_model_t *m = s_lmodel ();
    s_lconv (m, "x", "w1", 4, 3, "c1");
    int64_t kd [3] = { 4, 1, 1 };
    s_linit (m, "k", kd, 3, 10.0f);
    s_linit (m, "spare", kd, 3, 1.0f);
    s_lnode (m, "Add", "c1,k", "y");
    cmn_opt_opts_t o = cmn_opt_opts_default;
    o.level = 0;
    o.force [CMN_OPT_LAYOUT] = 1;
    cmn_opt_report_t r;
    cmn_err_t err;
    cr_assert_eq (cmn_opt_run (m, &o, &r, &err), 0, "%s", err.msg);
    cr_assert_eq (r.layout_converted, 1);
    cr_assert_lt (cmn_onnx_graph_find_init (m->graph, "w1"), 0, "OIHW w1 is still there");
    cr_assert_lt (cmn_onnx_graph_find_init (m->graph, "k"), 0, "the old k is still there");
    cr_assert_geq (cmn_onnx_graph_find_init (m->graph, "spare"), 0);
    cr_assert_eq (m->graph->ninits, 3, "new w1 and k, and spare");
    cmn_onnx_tensor_t *w = s_linit_of (m, s_lfind (m, "NhwcConv")->inputs [1]);
    cr_assert_eq (w->ndims, 4);
    cmn_onnx_destroy (&m);
}
