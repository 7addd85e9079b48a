/*  cmn_kind: parameter validation and CLI argument parsing. */
#include <criterion/criterion.h>
#include <string.h>
#include "cmn_codec.h"
#include "cmn_kind.h"

static const cmn_kind_t *
s_kind (const char *name)
{
    const cmn_kind_t *k = cmn_kind_find (name, strlen (name));
    cr_assert_not_null (k, "kind %s", name);
    return k;
}

//  Packs ARGS (key=value strings) with the CLI parser and validates them.
static int
s_args (const char *kind, const char **args, int n, cmn_err_t *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, (size_t) n);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = cmn_kind_pack_arg (s_kind (kind), args [i], &pk, err);
    if (rc == 0) {
        cmn_body_t body;
        cr_assert_eq (cmn_body_decode (&body, sb.data, sb.size, &cmn_codec_limits_default, err), 0);
        rc = cmn_kind_validate (s_kind (kind), &body.root, err);
        cmn_body_free (&body);
    }
    msgpack_sbuffer_destroy (&sb);
    return rc;
}

Test (cmn_kind, unknown_kind)
{
    cr_assert_null (cmn_kind_find ("frob", 4));
    cr_assert_null (cmn_kind_find ("noo", 3));
}

Test (cmn_kind, good_arguments)
{
    cmn_err_t err = { 0 };
    const char *a [] = { "copy_mb=8", "gemm_n=100", "reps=2" };
    cr_assert_eq (s_args ("bench.device", a, 3, &err), 0, "%s", err.msg);
    const char *b [] = { "sleep_ms=10", "fail=yes", "payload=hi there" };
    cr_assert_eq (s_args ("noop", b, 3, &err), 0, "%s", err.msg);
}

Test (cmn_kind, bad_arguments_name_the_parameter)
{
    struct { const char *kind, *arg, *needle; } cases [] = {
        { "bench.device", "gemm_n=abc", "gemm_n" },
        { "bench.device", "gemm_n=-5", "gemm_n" },
        { "bench.device", "gemm_n=8", "between" },
        { "bench.device", "gemm_n=99999999999999999999999", "gemm_n" },
        { "bench.device", "frob=1", "unknown parameter 'frob'" },
        { "bench.device", "=1", "key=value" },
        { "bench.device", "gemm_n", "key=value" },
        { "noop", "fail=maybe", "true or false" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        cmn_err_t err = { 0 };
        cr_assert_eq (s_args (cases [i].kind, &cases [i].arg, 1, &err), -1, "%s accepted",
                      cases [i].arg);
        cr_assert_eq (err.code, RXQ_E_PARAM);
        cr_assert (strstr (err.msg, cases [i].needle), "'%s': %s", cases [i].arg, err.msg);
    }
}

Test (cmn_kind, validate_refuses_wrong_types_and_duplicates)
{
    cmn_err_t err = { 0 };
    //  {"reps": "5"} : a string where an integer belongs.
    cmn_body_t body;
    cr_assert_eq (cmn_body_decode (&body, "\x81\xa4reps\xa1\x35", 8, &cmn_codec_limits_default, &err), 0);
    cr_assert_eq (cmn_kind_validate (s_kind ("bench.device"), &body.root, &err), -1);
    cr_assert (strstr (err.msg, "reps"), "%s", err.msg);
    cmn_body_free (&body);
    //  {"reps": 1, "reps": 2}
    cr_assert_eq (cmn_body_decode (&body, "\x82\xa4reps\x01\xa4reps\x02", 13, &cmn_codec_limits_default, &err), 0);
    cr_assert_eq (cmn_kind_validate (s_kind ("bench.device"), &body.root, &err), -1);
    cr_assert (strstr (err.msg, "twice"), "%s", err.msg);
    cmn_body_free (&body);
}

//  Validates the generate params {"model": "m", "prompts": X}, X packed
//  by FILL; returns the rc and leaves the message in ERR.
static int
s_prompts (void (*fill) (msgpack_packer *pk), cmn_err_t *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    cmn_pack_kv_str (&pk, "model", "m");
    cmn_pack_key (&pk, "prompts");
    fill (&pk);
    cmn_body_t body;
    cr_assert_eq (cmn_body_decode (&body, sb.data, sb.size, &cmn_codec_limits_default, err), 0);
    const int rc = cmn_kind_validate (s_kind ("generate"), &body.root, err);
    cmn_body_free (&body);
    msgpack_sbuffer_destroy (&sb);
    return rc;
}

static void s_two (msgpack_packer *pk) { msgpack_pack_array (pk, 2); cmn_pack_cstr (pk, "a"); cmn_pack_cstr (pk, "b"); }
static void s_none (msgpack_packer *pk) { msgpack_pack_array (pk, 0); }
static void s_num (msgpack_packer *pk) { msgpack_pack_array (pk, 2); cmn_pack_cstr (pk, "a"); msgpack_pack_int (pk, 3); }
static void s_str (msgpack_packer *pk) { cmn_pack_cstr (pk, "a"); }
static void
s_65 (msgpack_packer *pk)
{
    msgpack_pack_array (pk, 65);
    for (int i = 0; i < 65; i++)
        cmn_pack_cstr (pk, "p");
}

Test (cmn_kind, string_arrays_are_checked)
{
    cmn_err_t err = { 0 };
    cr_expect_eq (s_prompts (s_two, &err), 0, "%s", err.msg);
    struct { void (*fill) (msgpack_packer *); const char *needle; } bad [] = {
        { s_none, "1 to 64 strings, not 0" }, { s_65, "not 65" },
        { s_num, "entry 1 must be a string" }, { s_str, "must be an array of strings" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        cr_expect_eq (s_prompts (bad [i].fill, &err), -1, "case %zu accepted", i);
        cr_expect_eq (err.code, RXQ_E_PARAM);
        cr_expect (strstr (err.msg, bad [i].needle), "case %zu: %s", i, err.msg);
    }
    //  From the command line, prompts=TEXT is an array of one.
    const char *a [] = { "model=m", "prompts=hello" };
    cr_expect_eq (s_args ("generate", a, 2, &err), 0, "%s", err.msg);
}

//  Regression: a generate job with neither prompt nor prompts used to be
//  accepted by the broker and then refused by the worker.
Test (cmn_kind, generate_needs_exactly_one_of_prompt_and_prompts)
{
    cmn_err_t err = { 0 };
    const char *one [] = { "model=m", "prompt=hi" };
    cr_expect_eq (s_args ("generate", one, 2, &err), 0, "%s", err.msg);
    const char *none [] = { "model=m", "max_tokens=4" };
    cr_expect_eq (s_args ("generate", none, 2, &err), -1);
    cr_expect_eq (err.code, RXQ_E_PARAM);
    cr_expect (strstr (err.msg, "give exactly one of 'prompt', 'prompts' (none given)"), "%s",
               err.msg);
    const char *both [] = { "model=m", "prompt=hi", "prompts=ho" };
    cr_expect_eq (s_args ("generate", both, 3, &err), -1);
    cr_expect (strstr (err.msg, "(several given)"), "%s", err.msg);
    //  Kinds without such a group are unaffected.
    cr_expect_eq (s_args ("noop", NULL, 0, &err), 0, "%s", err.msg);
}
