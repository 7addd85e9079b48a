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
