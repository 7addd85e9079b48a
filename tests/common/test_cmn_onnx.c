/*  test_cmn_onnx: the ONNX protobuf reader and writer (cmn_onnx) and the
 *  graph validation of cmn_graph: the fixtures in tests/fixtures/onnx/
 *  with the error each must produce (expected.txt, made by
 *  tests/python/gen_onnx_fixtures.py), write/read round trips, external
 *  data, unknown operators passing through, every prefix and single-byte
 *  corruption of a valid file, and the limits.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmn_graph.h"
#include "cmn_onnx.h"
#include "cmn_opt.h"

static const char *
s_fixtures (void)
{
    const char *dir = getenv ("RXQ_FIXTURES");
    return dir ? dir : RXQ_SOURCE_DIR "/tests/fixtures";
}

static uint8_t *
s_read (const char *name, size_t *len)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/onnx/%s", s_fixtures (), name);
    FILE *f = fopen (path, "rb");
    cr_assert_not_null (f, "cannot open %s", path);
    fseek (f, 0, SEEK_END);
    long n = ftell (f);
    fseek (f, 0, SEEK_SET);
    uint8_t *b = malloc ((size_t) n + 1);
    cr_assert_eq (fread (b, 1, (size_t) n, f), (size_t) n);
    fclose (f);
    *len = (size_t) n;
    return b;
}

static cmn_onnx_model_t *
s_load (const char *name, cmn_err_t *err)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/onnx/%s", s_fixtures (), name);
    return cmn_onnx_load (path, NULL, err);
}

Test (onnx, fixtures_replay)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/onnx/expected.txt", s_fixtures ());
    FILE *f = fopen (path, "r");
    cr_assert_not_null (f);
    char line [512];
    int checked = 0;
    while (fgets (line, sizeof line, f)) {
        if (line [0] == '#' || line [0] == '\n')
            continue;
        char file [128], code [64];
        int off = 0;
        cr_assert_eq (sscanf (line, "%127s %63s %n", file, code, &off), 2, "bad line: %s", line);
        char *sub = line + off;
        sub [strcspn (sub, "\n")] = 0;
        cmn_err_t err = { 0 };
        cmn_onnx_model_t *m = s_load (file, &err);
        if (m) {
            //  Graph validation is the second stage (what -O0 runs).
            cmn_opt_opts_t o = cmn_opt_opts_default;
            o.level = 0;
            if (cmn_opt_run (m, &o, NULL, &err) == 0)
                err.code = 0;
            cmn_onnx_destroy (&m);
        }
        cr_assert_str_eq (cmn_error_name (err.code), code, "%s: got %s (%s)", file,
                          cmn_error_name (err.code), err.msg);
        if (strcmp (code, "RXQ_E_OK"))
            cr_assert (strstr (err.msg, sub), "%s: message '%s' lacks '%s'", file, err.msg, sub);
        checked++;
    }
    fclose (f);
    cr_assert_geq (checked, 20);
}

//  read -> write -> read -> write gives the same bytes the second time.
static void
s_round_trip (const char *name)
{
    cmn_err_t err;
    cmn_onnx_model_t *m = s_load (name, &err);
    cr_assert_not_null (m, "%s: %s", name, err.msg);
    uint8_t *a, *b;
    size_t na, nb;
    cr_assert_eq (cmn_onnx_write (m, &a, &na, &err), 0);
    cmn_onnx_model_t *m2 = cmn_onnx_read (a, na, NULL, NULL, &err);
    cr_assert_not_null (m2, "%s: re-read: %s", name, err.msg);
    cr_assert_eq (cmn_onnx_write (m2, &b, &nb, &err), 0);
    cr_assert_eq (na, nb, "%s: %zu vs %zu bytes", name, na, nb);
    cr_assert_eq (memcmp (a, b, na), 0, "%s: bytes differ", name);
    cr_assert_eq (m2->graph->nnodes, m->graph->nnodes);
    cr_assert_eq (m2->graph->ninits, m->graph->ninits);
    for (size_t i = 0; i < m->graph->ninits; i++) {
        cr_assert_str_eq (m->graph->inits [i]->name, m2->graph->inits [i]->name);
        cr_assert_eq (m->graph->inits [i]->raw_size, m2->graph->inits [i]->raw_size);
        cr_assert_eq (memcmp (m->graph->inits [i]->raw, m2->graph->inits [i]->raw,
                              m->graph->inits [i]->raw_size), 0);
    }
    free (a);
    free (b);
    cmn_onnx_destroy (&m);
    cmn_onnx_destroy (&m2);
    cmn_onnx_destroy (&m2);     // idempotent
}

Test (onnx, round_trip)
{
    s_round_trip ("valid_add_relu.onnx");
    s_round_trip ("valid_external.onnx");
    s_round_trip ("valid_unknown_op.onnx");
    s_round_trip ("pass_conv_bn_relu.onnx");
    s_round_trip ("pass_algebra_mix.onnx");
    s_round_trip ("pass_fold.onnx");
}

Test (onnx, model_fields)
{
    cmn_err_t err;
    cmn_onnx_model_t *m = s_load ("valid_add_relu.onnx", &err);
    cr_assert_not_null (m, "%s", err.msg);
    cr_assert_eq (m->ir_version, 8);
    cr_assert_eq (cmn_onnx_opset (m, ""), 17);
    cr_assert_eq (cmn_onnx_opset (m, "ai.onnx"), 17);
    cmn_onnx_graph_t *g = m->graph;
    cr_assert_eq (g->nnodes, 2);
    cr_assert_str_eq (g->nodes [0]->op_type, "Add");
    cr_assert_str_eq (g->nodes [0]->name, "add");
    cr_assert_eq (g->nodes [0]->ninputs, 2);
    cr_assert_str_eq (g->nodes [0]->inputs [1], "w");
    cr_assert_eq (g->ninputs, 1);
    cr_assert (g->inputs [0].is_tensor);
    cr_assert_eq (g->inputs [0].elem_type, CMN_ONNX_FLOAT);
    cr_assert_eq (g->inputs [0].ndims, 2);
    cr_assert_eq (g->inputs [0].dims [1], 3);
    cr_assert_eq (g->ninits, 1);
    cmn_onnx_tensor_t *w = g->inits [0];
    cr_assert_eq (w->data_type, CMN_ONNX_FLOAT);
    cr_assert_eq (cmn_onnx_tensor_numel (w), 6);
    float v [6];
    memcpy (v, w->raw, sizeof v);
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq (v [i], (float) i, 0);
    cmn_onnx_destroy (&m);
}

Test (onnx, external_data)
{
    cmn_err_t err;
    cmn_onnx_model_t *m = s_load ("valid_external.onnx", &err);
    cr_assert_not_null (m, "%s", err.msg);
    cmn_onnx_tensor_t *w = m->graph->inits [0];
    cr_assert_eq (w->raw_size, 24);
    float v [6];
    memcpy (v, w->raw, sizeof v);
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq (v [i], (float) i, 0, "element %d is %g", i, v [i]);
    //  From a buffer there is no directory: external data is refused.
    size_t len;
    uint8_t *b = s_read ("valid_external.onnx", &len);
    cr_assert_null (cmn_onnx_read (b, len, NULL, NULL, &err));
    cr_assert_eq (err.code, RXQ_E_UNSUPPORTED);
    cr_assert (strstr (err.msg, "tensor 'w'"), "%s", err.msg);
    free (b);
    cmn_onnx_destroy (&m);
}

Test (onnx, unknown_op_passes_through)
{
    cmn_err_t err;
    cmn_onnx_model_t *m = s_load ("valid_unknown_op.onnx", &err);
    cr_assert_not_null (m, "%s", err.msg);
    cmn_opt_opts_t o = cmn_opt_opts_default;
    o.level = 2;
    cr_assert_eq (cmn_opt_run (m, &o, NULL, &err), 0, "%s", err.msg);
    cmn_onnx_node_t *n = m->graph->nodes [0];
    cr_assert_str_eq (n->op_type, "Frob");
    cr_assert_str_eq (n->domain, "com.example");
    cmn_onnx_attr_t *a = cmn_onnx_node_attr (n, "color");
    cr_assert_not_null (a);
    cr_assert_eq (a->type, CMN_ONNX_ATTR_STRING);
    cr_assert_eq (a->s.len, 4);
    cr_assert_eq (memcmp (a->s.ptr, "blue", 4), 0);
    cmn_onnx_destroy (&m);
}

//  Every prefix and every single-byte change of a valid model either
//  loads or fails with an error that has a message: never a crash.
Test (onnx, prefixes_and_corruptions)
{
    size_t len;
    uint8_t *b = s_read ("pass_fold.onnx", &len);
    for (size_t n = 0; n < len; n++) {
        cmn_err_t err = { 0 };
        cmn_onnx_model_t *m = cmn_onnx_read (b, n, NULL, NULL, &err);
        if (!m)
            cr_assert (err.code && err.msg [0], "prefix %zu: no error", n);
        else {
            cmn_opt_opts_t o = cmn_opt_opts_default;
            o.level = 2;
            (void) cmn_opt_run (m, &o, NULL, &err);
            cmn_onnx_destroy (&m);
        }
    }
    static const uint8_t flips [] = { 0x00, 0xff, 0x80, 0x01, 0x7f };
    for (size_t i = 0; i < len; i++)
        for (size_t k = 0; k < sizeof flips; k++) {
            uint8_t save = b [i];
            b [i] = flips [k];
            cmn_err_t err = { 0 };
            cmn_onnx_model_t *m = cmn_onnx_read (b, len, NULL, NULL, &err);
            if (!m)
                cr_assert (err.code && err.msg [0], "byte %zu = %02x: no error", i, flips [k]);
            else {
                cmn_opt_opts_t o = cmn_opt_opts_default;
                o.level = 2;
                if (cmn_opt_run (m, &o, NULL, &err))
                    cr_assert (err.code && err.msg [0]);
                cmn_onnx_destroy (&m);
            }
            b [i] = save;
        }
    free (b);
}

Test (onnx, limits)
{
    size_t len;
    uint8_t *b = s_read ("pass_algebra_mix.onnx", &len);
    cmn_onnx_limits_t lim = cmn_onnx_limits_default;
    lim.max_count = 4;
    cmn_err_t err;
    cr_assert_null (cmn_onnx_read (b, len, NULL, &lim, &err));
    cr_assert_eq (err.code, RXQ_E_LIMIT, "%s", err.msg);
    cr_assert (strstr (err.msg, "more than 4 entries"), "%s", err.msg);
    lim = cmn_onnx_limits_default;
    lim.max_size = len - 1;
    cr_assert_null (cmn_onnx_read (b, len, NULL, &lim, &err));
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    free (b);
}

Test (onnx, graph_view)
{
    cmn_err_t err;
    cmn_onnx_model_t *m = s_load ("pass_cse.onnx", &err);
    cr_assert_not_null (m);
    cmn_graph_t *g = cmn_graph_new (m, &err);
    cr_assert_not_null (g, "%s", err.msg);
    cr_assert_eq (cmn_graph_uses (g, "x"), 2);
    cr_assert_eq (cmn_graph_uses (g, "w"), 2);
    cr_assert_eq (cmn_graph_uses (g, "y"), 1);
    cr_assert (cmn_graph_is_output (g, "y"));
    cr_assert (cmn_graph_is_input (g, "x"));
    cr_assert_not_null (cmn_graph_const (g, "w"));
    cr_assert_null (cmn_graph_const (g, "x"));
    cr_assert_eq (cmn_graph_producer (g, "x"), -1);
    const cmn_graph_shape_t *s = cmn_graph_shape (g, "a2");
    cr_assert_eq (s->elem_type, CMN_ONNX_FLOAT);
    cr_assert_eq (s->rank, 2);
    cr_assert_eq (s->dims [0], 2);
    cr_assert_eq (s->dims [1], 3);
    cr_assert_eq (cmn_graph_shape_bytes (s), 24);
    //  The producer of "m"'s inputs come before it in the order.
    ssize_t pm = cmn_graph_producer (g, "y");
    cr_assert_gt (pm, cmn_graph_producer (g, "a1"));
    cr_assert_gt (pm, cmn_graph_producer (g, "a2"));
    cmn_graph_destroy (&g);
    cmn_graph_destroy (&g);
    cmn_onnx_destroy (&m);
}
