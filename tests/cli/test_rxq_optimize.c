/*  rxq_optimize: the options of `rxq optimize` that choose the layout and
 *  the target (--layout, --target), their validation, and the job
 *  parameters they become. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rxq_optimize.h"
#include "cmn_codec.h"
#include "cmn_kind.h"

//  Parses `rxq optimize FIXTURE ARGS... -o /tmp/rxq_test_opt.onnx`; ARGS
//  is NULL-terminated. Returns what rxq_optimize_parse returns.
static int
s_parse (rxq_optimize_args_t *a, const char *const *args)
{
    const char *dir = getenv ("RXQ_FIXTURES");
    static char model [1024];
    snprintf (model, sizeof model, "%s/onnx/pass_conv_bn_relu.onnx",
              dir ? dir : RXQ_SOURCE_DIR "/tests/fixtures");
    char *argv [16] = { "optimize", model };
    int argc = 2;
    for (; *args && argc < 13; args++)
        argv [argc++] = (char *) *args;
    argv [argc++] = "-o";
    argv [argc++] = "/tmp/rxq_test_opt.onnx";
    argv [argc] = NULL;
    return rxq_optimize_parse (false, argc, argv, a);
}

Test (rxq_optimize, layout_values)
{
    rxq_optimize_args_t a;
    cr_assert_eq (s_parse (&a, (const char *[]) { "--layout", "nhwc", NULL }), -1);
    cr_assert_str_eq (a.layout, "nhwc");
    cr_assert_eq (s_parse (&a, (const char *[]) { "--layout", "nchw", "--local", NULL }), -1);
    cr_assert_str_eq (a.layout, "nchw");
    cr_assert_eq (s_parse (&a, (const char *[]) { NULL }), -1);
    cr_assert_str_eq (a.layout, "");
    //  Anything else is a usage error (64), in any case.
    cr_assert_eq (s_parse (&a, (const char *[]) { "--layout", "NHWC", NULL }), 64);
    cr_assert_eq (s_parse (&a, (const char *[]) { "--layout", "nchwc", NULL }), 64);
    cr_assert_eq (s_parse (&a, (const char *[]) { "--layout", "", NULL }), 64);
}

Test (rxq_optimize, target_needs_a_worker)
{
    rxq_optimize_args_t a;
    cr_assert_eq (s_parse (&a, (const char *[]) { "--target", "h200", NULL }), -1);
    cr_assert_str_eq (a.target, "h200");
    cr_assert_eq (s_parse (&a, (const char *[]) { "--target", "h200", "--local", NULL }), 64);
    cr_assert_eq (s_parse (&a, (const char *[]) { "--target", "", NULL }), 64);
    char long_name [200];
    memset (long_name, 'x', sizeof long_name - 1);
    long_name [sizeof long_name - 1] = 0;
    cr_assert_eq (s_parse (&a, (const char *[]) { "--target", long_name, NULL }), 64);
}

Test (rxq_optimize, layout_and_target_become_valid_job_params)
{
    rxq_optimize_args_t a;
    cr_assert_eq (s_parse (&a, (const char *[]) { "--layout", "nhwc", "--target", "gpu-box-1",
                                                  "-O2", NULL }), -1);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    rxq_optimize_pack_params (&a, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                              &pk);
    cmn_body_t body;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&body, sb.data, sb.size, &cmn_codec_limits_default, &err), 0);
    cr_assert_eq (cmn_kind_validate (cmn_kind_find ("optimize", 8), &body.root, &err), 0, "%s",
                  err.msg);
    char v [128];
    cr_assert_eq (cmn_codec_get_cstr (&body.root, "layout", v, sizeof v, &err), 0);
    cr_assert_str_eq (v, "nhwc");
    cr_assert_eq (cmn_codec_get_cstr (&body.root, "target", v, sizeof v, &err), 0);
    cr_assert_str_eq (v, "gpu-box-1");
    cmn_body_free (&body);
    msgpack_sbuffer_destroy (&sb);
}
