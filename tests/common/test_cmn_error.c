/*  cmn_error: the table's names, messages and docs stay in step. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmn_error.h"

Test (cmn_error, every_code_has_a_name_message_and_docs_row)
{
    char path [512];
    snprintf (path, sizeof path, "%s/docs/errors.md", getenv ("RXQ_SOURCE_DIR"));
    FILE *f = fopen (path, "r");
    cr_assert_not_null (f, "cannot open %s", path);
    static char docs [65536];
    size_t n = fread (docs, 1, sizeof docs - 1, f);
    docs [n] = 0;
    fclose (f);
#define CHECK_ROW(name, value, msg) \
    cr_assert_str_eq (cmn_error_name (value), "RXQ_E_" #name); \
    cr_assert_str_eq (cmn_error_message (value), msg); \
    cr_assert (cmn_error_known (value)); \
    cr_assert (strstr (docs, "`RXQ_E_" #name "`"), "docs/errors.md lacks RXQ_E_" #name);
    CMN_ERROR_TABLE (CHECK_ROW)
#undef CHECK_ROW
}

Test (cmn_error, unknown_codes_and_extended_codes)
{
    cr_assert_str_eq (cmn_error_name (99999), "RXQ_E_UNKNOWN");
    cr_assert_not (cmn_error_known (-3));
    cr_assert_eq (cmn_error_primary (RXQ_E_FORMAT_TRUNC), RXQ_E_FORMAT);
    cr_assert_eq (cmn_error_primary (RXQ_E_REDIS_CONNECT), RXQ_E_REDIS);
    cr_assert_str_eq (cmn_cl_strerror (-5), "CL_OUT_OF_RESOURCES");
    cr_assert_str_eq (cmn_cl_strerror (-12345), "CL_UNKNOWN_ERROR");
}

Test (cmn_error, err_set_formats_and_returns_minus_one)
{
    cmn_err_t err;
    cr_assert_eq (cmn_err_set (&err, RXQ_E_PARAM, "parameter '%s' bad", "n"), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
    cr_assert_str_eq (err.msg, "parameter 'n' bad");
    cr_assert_eq (cmn_err_set (NULL, RXQ_E_PARAM, "ignored"), -1);
    cmn_err_clear (&err);
    cr_assert_eq (err.code, 0);
}
