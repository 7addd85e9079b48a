/*  test_cmn_safetensors: the safetensors reader on a valid file, on
 *  malformed headers (JSON syntax, schema, limits), bad data_offsets,
 *  unsupported dtypes, every prefix of a valid file, and the fuzzer finds
 *  listed in tests/fixtures/safetensors/expected.txt.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmn_quant_blocks.h"
#include "cmn_safetensors.h"

static const char *
s_fixtures (void)
{
    const char *dir = getenv ("RXQ_FIXTURES");
    return dir ? dir : RXQ_SOURCE_DIR "/tests/fixtures";
}

//  Builds a file: 8-byte length, HEADER padded with spaces to 8, DATA_LEN
//  bytes of data (byte i = i). Caller frees.
static uint8_t *
s_file (const char *header, size_t data_len, size_t *len)
{
    size_t h = strlen (header);
    size_t padded = (h + 7) / 8 * 8;
    *len = 8 + padded + data_len;
    uint8_t *b = malloc (*len ? *len : 1);
    uint64_t n = padded;
    memcpy (b, &n, 8);
    memcpy (b + 8, header, h);
    memset (b + 8 + h, ' ', padded - h);
    for (size_t i = 0; i < data_len; i++)
        b [8 + padded + i] = (uint8_t) i;
    return b;
}

static void
s_expect (const char *header, size_t data_len, int code, const char *substring)
{
    size_t len;
    uint8_t *b = s_file (header, data_len, &len);
    cmn_err_t err = { 0 };
    cmn_safetensors_t *st = cmn_safetensors_new_from_buffer (b, len, NULL, &err);
    cr_assert_null (st, "accepted: %s", header);
    cr_assert_str_eq (cmn_error_name (err.code), cmn_error_name (code), "%s -> %s", header, err.msg);
    cr_assert (strstr (err.msg, substring), "%s: message '%s' lacks '%s'", header, err.msg,
               substring);
    free (b);
}

static const char *s_valid =
    "{\"__metadata__\": {\"format\": \"pt\", \"esc\\\"aped\": \"\\u00e9\\n\\ud83d\\ude00\"},"
    " \"model.embed\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]},"
    " \"norm\": {\"shape\": [4], \"data_offsets\": [24, 32], \"dtype\": \"BF16\"},"
    " \"scalar\": {\"dtype\": \"F16\", \"shape\": [], \"data_offsets\": [32, 34]},"
    " \"empty\": {\"dtype\": \"F16\", \"shape\": [0, 5], \"data_offsets\": [34, 34]}}";

Test (safetensors, valid_file)
{
    size_t len;
    uint8_t *b = s_file (s_valid, 34, &len);
    cmn_err_t err = { 0 };
    cmn_safetensors_t *st = cmn_safetensors_new_from_buffer (b, len, NULL, &err);
    cr_assert (st, "%s", err.msg);
    cr_assert_eq (cmn_safetensors_tensor_count (st), 4);
    const cmn_safetensors_tensor_t *t = cmn_safetensors_find_tensor (st, "model.embed");
    cr_assert (t);
    cr_assert_eq (t->type, GGML_TYPE_F32);
    cr_assert_eq (t->n_dims, 2);
    cr_assert_eq (t->shape [0], 2);
    cr_assert_eq (t->shape [1], 3);
    cr_assert_eq (t->size, 24);
    cr_assert_eq (((const uint8_t *) t->data) [5], 5);
    t = cmn_safetensors_find_tensor (st, "norm");
    cr_assert_eq (t->type, GGML_TYPE_BF16);
    cr_assert_str_eq (t->dtype, "BF16");
    cr_assert_eq (((const uint8_t *) t->data) [0], 24);
    t = cmn_safetensors_find_tensor (st, "scalar");
    cr_assert_eq (t->n_dims, 0);
    cr_assert_eq (t->size, 2);
    cr_assert_eq (cmn_safetensors_find_tensor (st, "empty")->size, 0);
    cr_assert_str_eq (cmn_safetensors_tensor (st, 0)->name, "model.embed");
    cr_assert_eq (cmn_safetensors_metadata_count (st), 2);
    cr_assert_str_eq (cmn_safetensors_find_metadata (st, "format"), "pt");
    cr_assert_str_eq (cmn_safetensors_find_metadata (st, "esc\"aped"), "\xc3\xa9\n\xf0\x9f\x98\x80");
    cr_assert_null (cmn_safetensors_find_metadata (st, "nope"));
    cmn_safetensors_destroy (&st);
    cmn_safetensors_destroy (&st);
    cr_assert_null (st);
    free (b);
}

Test (safetensors, every_prefix_is_refused)
{
    size_t len;
    uint8_t *b = s_file (s_valid, 34, &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc (n ? n : 1);
        memcpy (copy, b, n);
        cmn_err_t err = { 0 };
        cmn_safetensors_t *st = cmn_safetensors_new_from_buffer (copy, n, NULL, &err);
        cr_assert_null (st, "prefix of %zu bytes accepted", n);
        cr_assert_eq (cmn_error_primary (err.code), RXQ_E_FORMAT, "prefix %zu: %s", n, err.msg);
        free (copy);
    }
    free (b);
}

Test (safetensors, header_length)
{
    uint8_t b [16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    cmn_err_t err;
    cr_assert_null (cmn_safetensors_new_from_buffer (b, sizeof b, NULL, &err));
    cr_assert_eq (err.code, RXQ_E_FORMAT_TRUNC);
    cr_assert (strstr (err.msg, "runs past the end"), "%s", err.msg);
    cr_assert_null (cmn_safetensors_new_from_buffer (b, 5, NULL, &err));
    cr_assert_eq (err.code, RXQ_E_FORMAT_TRUNC);
    size_t len;
    uint8_t *f = s_file ("{}", 0, &len);
    cmn_safetensors_limits_t limits = cmn_safetensors_limits_default;
    limits.max_header = 4;
    cr_assert_null (cmn_safetensors_new_from_buffer (f, len, &limits, &err));
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    cmn_safetensors_t *st = cmn_safetensors_new_from_buffer (f, len, NULL, &err);
    cr_assert (st, "an empty object is a valid, empty file: %s", err.msg);
    cmn_safetensors_destroy (&st);
    free (f);
}

Test (safetensors, json_syntax)
{
    s_expect ("[]", 0, RXQ_E_FORMAT_SYNTAX, "expected '{'");
    s_expect ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},}", 4,
              RXQ_E_FORMAT_SYNTAX, "expected '\"'");
    s_expect ("{\"a\" {}}", 0, RXQ_E_FORMAT_SYNTAX, "expected ':'");
    s_expect ("{\"a\": {\"dtype\": \"F32\", \"shape\": [01], \"data_offsets\": [0, 4]}}", 4,
              RXQ_E_FORMAT_SYNTAX, "leading zero");
    s_expect ("{\"a\\q\": {}}", 0, RXQ_E_FORMAT_SYNTAX, "invalid escape");
    s_expect ("{\"a\\u12G4\": {}}", 0, RXQ_E_FORMAT_SYNTAX, "bad hex digit");
    s_expect ("{\"a\\ud800\": {}}", 0, RXQ_E_FORMAT_SYNTAX, "unpaired high surrogate");
    s_expect ("{\"a\\udc00\": {}}", 0, RXQ_E_FORMAT_SYNTAX, "unpaired low surrogate");
    s_expect ("{\"a\xff\": {}}", 0, RXQ_E_FORMAT_SYNTAX, "invalid UTF-8");
    s_expect ("{\"a\xc0\xaf\": {}}", 0, RXQ_E_FORMAT_SYNTAX, "invalid UTF-8");
    s_expect ("{\"a\tb\": {}}", 0, RXQ_E_FORMAT_SYNTAX, "control character");
    s_expect ("{\"abc", 0, RXQ_E_FORMAT_SYNTAX, "unterminated string");
    s_expect ("{} x", 0, RXQ_E_FORMAT_SYNTAX, "trailing bytes");
    s_expect ("{\"a\\u0000\": {}}", 0, RXQ_E_FORMAT, "NUL character");
}

Test (safetensors, schema)
{
    s_expect ("{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, RXQ_E_FORMAT,
              "tensor 'a': missing field 'dtype'");
    s_expect ("{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, RXQ_E_FORMAT,
              "missing field 'shape'");
    s_expect ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, RXQ_E_FORMAT,
              "missing field 'data_offsets'");
    s_expect ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"x\": 1}}",
              4, RXQ_E_FORMAT, "unknown field 'x'");
    s_expect ("{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
              4, RXQ_E_FORMAT_DUP, "duplicate field 'dtype'");
    s_expect ("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4,
              RXQ_E_FORMAT, "shape is negative");
    s_expect ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4,
              RXQ_E_FORMAT, "must be an integer");
    s_expect ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 99999999999999999999]}}",
              4, RXQ_E_FORMAT, "overflows uint64");
    s_expect ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 4,
              RXQ_E_FORMAT, "exactly 2 entries");
    s_expect ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}",
              4, RXQ_E_FORMAT_SHAPE, "more than 8 dimensions");
    s_expect ("{\"__metadata__\": {\"k\": 1}}", 0, RXQ_E_FORMAT, "value must be a string");
    s_expect ("{\"__metadata__\": {\"k\": \"a\", \"k\": \"b\"}}", 0, RXQ_E_FORMAT_DUP,
              "duplicate key 'k'");
    s_expect ("{\"__metadata__\": {}, \"__metadata__\": {}}", 0, RXQ_E_FORMAT_DUP,
              "duplicate __metadata__");
    s_expect ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
              " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
              RXQ_E_FORMAT_DUP, "duplicate tensor name 'a'");
}

Test (safetensors, data_offsets)
{
    s_expect ("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8,
              RXQ_E_FORMAT_BOUNDS, "tensor 'w': data_offsets [8, 0] begin after end");
    s_expect ("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 8,
              RXQ_E_FORMAT_BOUNDS, "tensor 'w': data out of bounds");
    s_expect ("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8,
              RXQ_E_FORMAT_SHAPE, "tensor 'w': data_offsets span 8 bytes, shape and dtype need 12");
    s_expect ("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 8]}}",
              8, RXQ_E_FORMAT_SHAPE, "shape too large");
    s_expect ("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [18446744073709551615, 8]}}",
              8, RXQ_E_FORMAT_BOUNDS, "begin after end");
}

Test (safetensors, dtypes)
{
    s_expect ("{\"pos_ids\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 8,
              RXQ_E_UNSUPPORTED, "tensor 'pos_ids': dtype I64 is not supported");
    s_expect ("{\"w\": {\"dtype\": \"Q4\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 8,
              RXQ_E_FORMAT_TYPE, "tensor 'w': unknown dtype 'Q4'");
    size_t len;
    uint8_t *b = s_file ("{\"pos_ids\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}}",
                         8, &len);
    cmn_safetensors_limits_t limits = cmn_safetensors_limits_default;
    limits.allow_unsupported = true;
    cmn_err_t err;
    cmn_safetensors_t *st = cmn_safetensors_new_from_buffer (b, len, &limits, &err);
    cr_assert (st, "%s", err.msg);
    cr_assert_eq (cmn_safetensors_tensor (st, 0)->type, -1);
    cr_assert_str_eq (cmn_safetensors_tensor (st, 0)->dtype, "I64");
    cmn_safetensors_destroy (&st);
    free (b);
}

Test (safetensors, limits)
{
    //  Depth: tensor entries sit at depth 2, shapes at 3.
    size_t len;
    uint8_t *b = s_file ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                         &len);
    cmn_safetensors_limits_t limits = cmn_safetensors_limits_default;
    limits.max_depth = 2;
    cmn_err_t err;
    cr_assert_null (cmn_safetensors_new_from_buffer (b, len, &limits, &err));
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    cr_assert (strstr (err.msg, "nested deeper than 2"), "%s", err.msg);
    limits = cmn_safetensors_limits_default;
    limits.max_tensors = 0;
    cr_assert_null (cmn_safetensors_new_from_buffer (b, len, &limits, &err));
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    free (b);
}

Test (safetensors, open_file_errors)
{
    cmn_err_t err;
    cr_assert_null (cmn_safetensors_open_file ("/nonexistent/model.safetensors", NULL, &err));
    cr_assert_eq (err.code, RXQ_E_IO);
}

//  Fuzzer finds and seeds: expected.txt lists "file CODE message-substring".
Test (safetensors, fixtures_replay)
{
    char path [512];
    snprintf (path, sizeof path, "%s/safetensors/expected.txt", s_fixtures ());
    FILE *m = fopen (path, "r");
    cr_assert (m, "cannot open %s", path);
    char line [512];
    int count = 0;
    while (fgets (line, sizeof line, m)) {
        if (line [0] == '#' || line [0] == '\n')
            continue;
        char file [128], code [64];
        int used = 0;
        cr_assert_eq (sscanf (line, "%127s %63s %n", file, code, &used), 2, "bad line: %s", line);
        char *text = line + used;
        text [strcspn (text, "\n")] = 0;
        snprintf (path, sizeof path, "%s/safetensors/%s", s_fixtures (), file);
        cmn_err_t err = { 0 };
        cmn_safetensors_t *st = cmn_safetensors_open_file (path, NULL, &err);
        if (strcmp (code, "RXQ_E_OK") == 0) {
            cr_assert (st, "%s: %s", file, err.msg);
            cmn_safetensors_destroy (&st);
        }
        else {
            cr_assert_null (st, "%s was accepted", file);
            cr_assert_str_eq (cmn_error_name (err.code), code, "%s: %s", file, err.msg);
            cr_assert (strstr (err.msg, text), "%s: '%s' lacks '%s'", file, err.msg, text);
        }
        count++;
    }
    fclose (m);
    cr_assert_gt (count, 0);
}
