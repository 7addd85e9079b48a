/*  test_wrk_quantize: the model quantization pipeline and the `quantize`
 *  job runner, on small generated models (tests/support/tst_model.h) and
 *  the test device (RXQ_TEST_DEVICE, default PoCL).
 *
 *  The main check is bit-identity: every tensor of the output equals the
 *  CPU reference applied to the input (cmn_quant_dequantize_row of the
 *  input row, then cmn_quant_quantize_row to the chosen type), byte for
 *  byte. Chunks are made small so that tensors span several of them.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cmn_codec.h"
#include "cmn_gguf.h"
#include "cmn_kind.h"
#include "cmn_quant.h"
#include "cmn_safetensors.h"
#include "support/tst_model.h"
#include "wrk_device.h"
#include "wrk_quantize.h"

static wrk_device_t *s_dev;
static char s_dir [64];
static char s_in [128], s_out [128], s_tmp [160];

static void
s_setup (void)
{
    cmn_err_t err = { 0 };
    const char *sel = getenv ("RXQ_TEST_DEVICE");
    s_dev = wrk_device_new (sel && *sel ? sel : "Portable", NULL, &err);
    cr_assert_not_null (s_dev, "no device: %s", err.msg);
    snprintf (s_dir, sizeof s_dir, "/tmp/rxq-quantize-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
    snprintf (s_in, sizeof s_in, "%s/in.model", s_dir);
    snprintf (s_out, sizeof s_out, "%s/out.gguf", s_dir);
    snprintf (s_tmp, sizeof s_tmp, "%s.tmp", s_out);
}

static void
s_teardown (void)
{
    unlink (s_in);
    unlink (s_out);
    unlink (s_tmp);
    rmdir (s_dir);
    wrk_device_destroy (&s_dev);
}

TestSuite (quantize, .init = s_setup, .fini = s_teardown, .timeout = 120);

static bool
s_exists (const char *path)
{
    struct stat sb;
    return stat (path, &sb) == 0;
}

//  Runs the pipeline; returns its rc; the report lands in *SB (caller
//  destroys) when SB is not NULL.
static int
s_run (const wrk_quantize_opts_t *opts, msgpack_sbuffer *sb, cmn_err_t *err)
{
    msgpack_packer pk;
    if (sb) {
        msgpack_sbuffer_init (sb);
        msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    }
    return wrk_quantize_file (s_dev, s_in, s_out, opts, NULL, NULL, sb ? &pk : NULL, err);
}

//  Checks every tensor of s_out against the CPU reference on s_in (GGUF
//  or safetensors); returns how many tensors had each type in COUNTS.
static void
s_check_identical (bool safetensors)
{
    cmn_err_t err = { 0 };
    cmn_gguf_t *out = cmn_gguf_open_file (s_out, NULL, &err);
    cr_assert_not_null (out, "output does not load: %s", err.msg);
    cmn_gguf_t *gin = safetensors ? NULL : cmn_gguf_open_file (s_in, NULL, &err);
    cmn_safetensors_t *sin = safetensors ? cmn_safetensors_open_file (s_in, NULL, &err) : NULL;
    cr_assert (gin || sin, "%s", err.msg);
    cr_assert_eq (cmn_gguf_tensor_count (out), TST_MODEL_N);
    for (size_t i = 0; i < TST_MODEL_N; i++) {
        const cmn_gguf_tensor_t *o = cmn_gguf_tensor (out, i);
        cr_assert_str_eq (o->name, tst_model_tensors [i].name);
        const uint8_t *idata;
        int itype;
        if (gin) {
            const cmn_gguf_tensor_t *t = cmn_gguf_find_tensor (gin, o->name);
            idata = t->data;
            itype = t->type;
        }
        else {
            const cmn_safetensors_tensor_t *t = cmn_safetensors_find_tensor (sin, o->name);
            idata = t->data;
            itype = t->type;
        }
        const size_t cols = (size_t) o->ne [0], rows = (size_t) (cmn_gguf_tensor_nelements (o) / cols);
        const size_t rin = cmn_quant_row_bytes (itype, cols), rout = cmn_quant_row_bytes (o->type, cols);
        cr_assert_eq (o->size, rout * rows);
        float *x = malloc (cols * sizeof *x);
        uint8_t *q = malloc (rout);
        for (size_t r = 0; r < rows; r++) {
            cr_assert_eq (cmn_quant_dequantize_row (itype, idata + r * rin, x, cols), 0);
            cr_assert_eq (cmn_quant_quantize_row (o->type, x, q, cols), 0);
            cr_assert (memcmp (q, (const uint8_t *) o->data + r * rout, rout) == 0,
                       "tensor %s (%s from %s) row %zu differs from the CPU reference",
                       o->name, cmn_quant_type_name (o->type), cmn_quant_type_name (itype), r);
        }
        free (x);
        free (q);
    }
    cmn_gguf_destroy (&out);
    cmn_gguf_destroy (&gin);
    cmn_safetensors_destroy (&sin);
}

static int
s_out_type (const char *name)
{
    cmn_gguf_t *out = cmn_gguf_open_file (s_out, NULL, NULL);
    cr_assert_not_null (out);
    int type = cmn_gguf_find_tensor (out, name)->type;
    cmn_gguf_destroy (&out);
    return type;
}

Test (quantize, f32_gguf_to_q4_0_identical_and_metadata_kept)
{
    cr_assert_eq (tst_model_write_gguf (s_in, GGML_TYPE_F32, 1), 0);
    wrk_quantize_opts_t opts = { .type = GGML_TYPE_Q4_0, .chunk_bytes = 64 << 10 };
    cmn_err_t err = { 0 };
    msgpack_sbuffer sb;
    cr_assert_eq (s_run (&opts, &sb, &err), 0, "%s", err.msg);
    cr_assert_not (s_exists (s_tmp));
    s_check_identical (false);
    cmn_gguf_t *out = cmn_gguf_open_file (s_out, NULL, &err);
    const char *s;
    size_t len;
    cr_assert_eq (cmn_gguf_get_str (out, "general.name", &s, &len, &err), 0);
    cr_assert_eq (len, 9);
    uint64_t ft = 0, qv = 0;
    cr_assert_eq (cmn_gguf_get_uint (out, "general.file_type", &ft, &err), 0);
    cr_assert_eq (ft, 2);   // LLAMA_FTYPE_MOSTLY_Q4_0
    cr_assert_eq (cmn_gguf_get_uint (out, "general.quantization_version", &qv, &err), 0);
    cr_assert_eq (qv, 2);
    const cmn_gguf_value_t *toks;
    cr_assert_eq (cmn_gguf_get_array (out, "tokenizer.ggml.tokens", &toks, &err), 0);
    cr_assert_eq (toks->v.arr.n, 3);
    cr_assert_eq (cmn_gguf_find_tensor (out, "blk.0.attn_norm.weight")->type, GGML_TYPE_F32);
    cmn_gguf_destroy (&out);

    //  The report.
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    cr_assert_eq (msgpack_unpack_next (&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *r = &u.data;
    const msgpack_object *tensors, *totals, *warnings;
    cr_assert_eq (cmn_codec_get_array (r, "tensors", &tensors, &err), 0);
    cr_assert_eq (cmn_codec_get_map (r, "totals", &totals, &err), 0);
    cr_assert_eq (cmn_codec_get_array (r, "warnings", &warnings, &err), 0);
    cr_assert_eq (tensors->via.array.size, TST_MODEL_N);
    cr_assert_eq (warnings->via.array.size, 0);
    double gbps = 0, bpw = 0, sqnr = 0, rmse = 0;
    uint64_t in_bytes = 0, out_bytes = 0;
    cr_assert_eq (cmn_codec_get_double (r, "gbps", &gbps, &err), 0);
    cr_assert_eq (cmn_codec_get_uint (r, "input_bytes", &in_bytes, &err), 0);
    cr_assert_eq (cmn_codec_get_uint (r, "output_bytes", &out_bytes, &err), 0);
    cr_assert_gt (gbps, 0);
    //  The kernels' device time is part of the job's wall time.
    double seconds = 0, kernel_s = 0;
    cr_assert_eq (cmn_codec_get_double (r, "seconds", &seconds, &err), 0);
    cr_assert_eq (cmn_codec_get_double (r, "kernel_seconds", &kernel_s, &err), 0);
    cr_assert (kernel_s > 0 && kernel_s <= seconds, "kernels %g s of %g s", kernel_s, seconds);
    cr_assert_lt (out_bytes, in_bytes / 5);
    cr_assert_eq (cmn_codec_get_double (totals, "bpw", &bpw, &err), 0);
    cr_assert (bpw > 4.5 && bpw < 5.0, "total bpw %g", bpw);     // q4_0 plus an f32 norm
    cr_assert_eq (cmn_codec_get_double (totals, "sqnr_db", &sqnr, &err), 0);
    cr_assert (sqnr > 15 && sqnr < 30, "q4_0 SQNR %g dB", sqnr);
    //  Per tensor: q4_0's RMSE against a CPU computation.
    const msgpack_object *q = &tensors->via.array.ptr [2];
    char name [64], type [16];
    cr_assert_eq (cmn_codec_get_cstr (q, "name", name, sizeof name, &err), 0);
    cr_assert_str_eq (name, "blk.0.attn_q.weight");
    cr_assert_eq (cmn_codec_get_cstr (q, "type", type, sizeof type, &err), 0);
    cr_assert_str_eq (type, "q4_0");
    cr_assert_eq (cmn_codec_get_double (q, "rmse", &rmse, &err), 0);
    float *x = tst_model_values (2, 1);
    const size_t n = 256 * 256;
    uint8_t *qq = malloc (cmn_quant_row_bytes (GGML_TYPE_Q4_0, n));
    float *y = malloc (n * sizeof *y);
    cmn_quant_quantize_row (GGML_TYPE_Q4_0, x, qq, n);
    cmn_quant_dequantize_row (GGML_TYPE_Q4_0, qq, y, n);
    double sse = 0;
    for (size_t i = 0; i < n; i++)
        sse += ((double) x [i] - y [i]) * ((double) x [i] - y [i]);
    cr_assert (fabs (rmse - sqrt (sse / n)) <= 1e-6 * rmse, "rmse %g vs %g", rmse, sqrt (sse / n));
    free (x); free (qq); free (y);
    msgpack_unpacked_destroy (&u);
    msgpack_sbuffer_destroy (&sb);
}

Test (quantize, every_type_from_f16_and_bf16_identical)
{
    static const int types [] = { GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
                                  GGML_TYPE_Q8_0, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K,
                                  GGML_TYPE_Q6_K, RXQ_TYPE_INT4_G32, RXQ_TYPE_INT4_G128 };
    for (size_t k = 0; k < sizeof types / sizeof types [0]; k++) {
        const bool st = k % 2;      // alternate GGUF F16 and safetensors BF16
        cr_assert_eq (st ? tst_model_write_safetensors (s_in, GGML_TYPE_BF16, k)
                         : tst_model_write_gguf (s_in, GGML_TYPE_F16, k), 0);
        wrk_quantize_opts_t opts = { .type = types [k], .chunk_bytes = 100000 };
        cmn_err_t err = { 0 };
        cr_assert_eq (s_run (&opts, NULL, &err), 0, "%s: %s", cmn_quant_type_name (types [k]),
                      err.msg);
        s_check_identical (st);
        cr_assert_eq (s_out_type ("blk.0.attn_q.weight"), types [k]);
        //  96-value rows fall back: q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0, g128 -> g32.
        const int odd = s_out_type ("blk.0.odd.weight");
        const int want = types [k] == GGML_TYPE_Q4_K ? GGML_TYPE_Q5_0
                       : types [k] == GGML_TYPE_Q5_K ? GGML_TYPE_Q5_1
                       : types [k] == GGML_TYPE_Q6_K ? GGML_TYPE_Q8_0
                       : types [k] == RXQ_TYPE_INT4_G128 ? RXQ_TYPE_INT4_G32 : types [k];
        cr_assert_eq (odd, want, "%s: odd tensor is %s", cmn_quant_type_name (types [k]),
                      cmn_quant_type_name (odd));
    }
}

Test (quantize, f32_round_trip_identical)
{
    cr_assert_eq (tst_model_write_gguf (s_in, GGML_TYPE_F32, 3), 0);
    wrk_quantize_opts_t opts = { .type = GGML_TYPE_F32 };
    cmn_err_t err = { 0 };
    cr_assert_eq (s_run (&opts, NULL, &err), 0, "%s", err.msg);
    cmn_gguf_t *a = cmn_gguf_open_file (s_in, NULL, NULL), *b = cmn_gguf_open_file (s_out, NULL, NULL);
    for (size_t i = 0; i < TST_MODEL_N; i++) {
        const cmn_gguf_tensor_t *x = cmn_gguf_tensor (a, i), *y = cmn_gguf_tensor (b, i);
        cr_assert_eq (y->type, GGML_TYPE_F32);
        cr_assert_eq (x->size, y->size);
        cr_assert_eq (memcmp (x->data, y->data, x->size), 0, "%s changed", x->name);
    }
    cmn_gguf_destroy (&a);
    cmn_gguf_destroy (&b);
}

Test (quantize, quantized_input_dequantized_with_warning)
{
    cr_assert_eq (tst_model_write_gguf (s_in, GGML_TYPE_Q8_0, 4), 0);
    wrk_quantize_opts_t opts = { .type = GGML_TYPE_Q4_0, .keep = "output.weight:f16" };
    cmn_err_t err = { 0 };
    msgpack_sbuffer sb;
    cr_assert_eq (s_run (&opts, &sb, &err), 0, "%s", err.msg);
    s_check_identical (false);
    cr_assert_eq (s_out_type ("output.weight"), GGML_TYPE_F16);
    cr_assert (memmem (sb.data, sb.size, "already q8_0", 12), "no warning in the report");
    msgpack_sbuffer_destroy (&sb);
}

Test (quantize, mixed_fits_budget)
{
    cr_assert_eq (tst_model_write_gguf (s_in, GGML_TYPE_F32, 5), 0);
    //  Between all-4-bit (~0.2 MB) and all-8-bit (~0.4 MB).
    const uint64_t budgets [] = { 230000, 300000, 380000 };
    int distinct_prev = 0;
    for (int b = 0; b < 3; b++) {
        wrk_quantize_opts_t opts = { .type = WRK_QUANTIZE_MIXED, .budget_bytes = budgets [b],
                                     .keep = "token_embd.weight" };
        cmn_err_t err = { 0 };
        msgpack_sbuffer sb;
        cr_assert_eq (s_run (&opts, &sb, &err), 0, "budget %llu: %s",
                      (unsigned long long) budgets [b], err.msg);
        struct stat st;
        cr_assert_eq (stat (s_out, &st), 0);
        cr_assert_leq ((uint64_t) st.st_size, budgets [b], "file of %lld bytes over budget %llu",
                       (long long) st.st_size, (unsigned long long) budgets [b]);
        cr_assert_gt ((uint64_t) st.st_size, budgets [b] * 8 / 10, "budget left unused");
        s_check_identical (false);
        cr_assert_eq (s_out_type ("token_embd.weight"), GGML_TYPE_Q8_0);
        //  More budget, more bits for the most important tensor.
        const int out_type = s_out_type ("output.weight");
        cr_assert_geq (cmn_quant_block_bytes (out_type) * 256 / cmn_quant_block_values (out_type),
                       distinct_prev);
        distinct_prev = (int) (cmn_quant_block_bytes (out_type) * 256 / cmn_quant_block_values (out_type));
        msgpack_sbuffer_destroy (&sb);
    }
    //  bpw form.
    wrk_quantize_opts_t opts = { .type = WRK_QUANTIZE_MIXED, .bpw = 5.0 };
    cmn_err_t err = { 0 };
    cr_assert_eq (s_run (&opts, NULL, &err), 0, "%s", err.msg);
    cmn_gguf_t *out = cmn_gguf_open_file (s_out, NULL, NULL);
    uint64_t bytes = 0, nel = 0;
    for (size_t i = 0; i < cmn_gguf_tensor_count (out); i++) {
        bytes += cmn_gguf_tensor (out, i)->size;
        nel += cmn_gguf_tensor_nelements (cmn_gguf_tensor (out, i));
    }
    cr_assert_leq (8.0 * bytes / nel, 5.0);
    cmn_gguf_destroy (&out);
}

Test (quantize, budget_impossible_refused)
{
    cr_assert_eq (tst_model_write_gguf (s_in, GGML_TYPE_F32, 6), 0);
    wrk_quantize_opts_t opts = { .type = WRK_QUANTIZE_MIXED, .budget_bytes = 100000 };
    cmn_err_t err = { 0 };
    cr_assert_eq (s_run (&opts, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
    cr_assert (strstr (err.msg, "budget 100.0 kB is below the smallest possible size"), "%s", err.msg);
    cr_assert_not (s_exists (s_out));
    opts.budget_bytes = 0;
    cr_assert_eq (s_run (&opts, NULL, &err), -1);
    cr_assert (strstr (err.msg, "exactly one of budget_bytes and bpw"), "%s", err.msg);
    opts = (wrk_quantize_opts_t) { .type = GGML_TYPE_Q4_0, .keep = "output*:q3_k" };
    cr_assert_eq (s_run (&opts, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
}

Test (quantize, truncated_or_corrupt_input_leaves_no_output)
{
    cr_assert_eq (tst_model_write_gguf (s_in, GGML_TYPE_F32, 7), 0);
    struct stat st;
    cr_assert_eq (stat (s_in, &st), 0);
    cr_assert_eq (truncate (s_in, st.st_size - 1000), 0);
    wrk_quantize_opts_t opts = { .type = GGML_TYPE_Q8_0 };
    cmn_err_t err = { 0 };
    cr_assert_eq (s_run (&opts, NULL, &err), -1);
    cr_assert_eq (cmn_error_primary (err.code), RXQ_E_FORMAT, "%d %s", err.code, err.msg);
    cr_assert (strstr (err.msg, "in.model"), "message names the file: %s", err.msg);
    cr_assert_not (s_exists (s_out));
    cr_assert_not (s_exists (s_tmp));
    //  Not a model at all.
    FILE *f = fopen (s_in, "wb");
    fputs ("hello, world", f);
    fclose (f);
    cr_assert_eq (s_run (&opts, NULL, &err), -1);
    cr_assert_eq (cmn_error_primary (err.code), RXQ_E_FORMAT, "%d %s", err.code, err.msg);
    unlink (s_in);
    cr_assert_eq (s_run (&opts, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_IO);
    cr_assert_not (s_exists (s_out));
}

Test (quantize, nan_in_weights_refused)
{
    //  A NaN in a matrix: F32 model with one poisoned value.
    cr_assert_eq (tst_model_write_gguf (s_in, GGML_TYPE_F32, 8), 0);
    cmn_gguf_t *g = cmn_gguf_open_file (s_in, NULL, NULL);
    const cmn_gguf_tensor_t *t = cmn_gguf_find_tensor (g, "blk.0.ffn_up.weight");
    const long at = (long) (cmn_gguf_data_offset (g) + t->offset + 4 * (256 * 100 + 7));
    cmn_gguf_destroy (&g);
    FILE *f = fopen (s_in, "r+b");
    fseek (f, at, SEEK_SET);
    const float nan = NAN;
    fwrite (&nan, 4, 1, f);
    fclose (f);
    wrk_quantize_opts_t opts = { .type = GGML_TYPE_Q4_K, .chunk_bytes = 32768 };
    cmn_err_t err = { 0 };
    cr_assert_eq (s_run (&opts, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_INVAL);
    cr_assert (strstr (err.msg, "'blk.0.ffn_up.weight': row 100"), "%s", err.msg);
    cr_assert_not (s_exists (s_out));
    cr_assert_not (s_exists (s_tmp));
}

Test (quantize, unknown_type_refused)
{
    int type;
    cmn_err_t err = { 0 };
    cr_assert_eq (wrk_quantize_parse_type ("q3_k", &type, &err), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
    cr_assert (strstr (err.msg, "unknown quantization type 'q3_k'"), "%s", err.msg);
    cr_assert_eq (wrk_quantize_parse_type ("Q4_K", &type, &err), 0);
    cr_assert_eq (type, GGML_TYPE_Q4_K);
    cr_assert_eq (wrk_quantize_parse_type ("int4", &type, &err), 0);
    cr_assert_eq (type, RXQ_TYPE_INT4_G32);
}

static int s_calls;

static int
s_cancel_after_3 (void *arg, double fraction, const char *message, cmn_err_t *err)
{
    (void) arg; (void) fraction; (void) message;
    if (++s_calls > 3)
        return cmn_err_set (err, RXQ_E_CANCELLED, "job cancelled");
    return 0;
}

Test (quantize, cancel_midway_leaves_no_output)
{
    cr_assert_eq (tst_model_write_gguf (s_in, GGML_TYPE_F32, 9), 0);
    wrk_quantize_opts_t opts = { .type = GGML_TYPE_Q6_K, .chunk_bytes = 65536 };
    cmn_err_t err = { 0 };
    s_calls = 0;
    cr_assert_eq (wrk_quantize_file (s_dev, s_in, s_out, &opts, s_cancel_after_3, NULL, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_CANCELLED, "%s", err.msg);
    cr_assert_eq (s_calls, 4);
    cr_assert_not (s_exists (s_out));
    cr_assert_not (s_exists (s_tmp));
}

//  The job runner, with parameters as the broker validated them.
static size_t s_progress;

static void
s_sink (void *arg, const char *data, size_t size)
{
    (void) arg; (void) data; (void) size;
    s_progress++;
}

Test (quantize, job_runner_result)
{
    cr_assert_eq (tst_model_write_safetensors (s_in, GGML_TYPE_F16, 10), 0);
    msgpack_sbuffer pb;
    msgpack_sbuffer_init (&pb);
    msgpack_packer pp;
    msgpack_packer_init (&pp, &pb, msgpack_sbuffer_write);
    msgpack_pack_map (&pp, 4);
    cmn_pack_kv_str (&pp, "model", s_in);
    cmn_pack_kv_str (&pp, "type", "q5_k");
    cmn_pack_kv_str (&pp, "output", s_out);
    cmn_pack_kv_str (&pp, "keep", "output.weight,token_embd*:f16");
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    cr_assert_eq (msgpack_unpack_next (&up, pb.data, pb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    cmn_err_t err = { 0 };
    const cmn_kind_t *kind = cmn_kind_find ("quantize", 8);
    cr_assert_not_null (kind);
    cr_assert_eq (cmn_kind_validate (kind, &up.data, &err), 0, "%s", err.msg);
    cr_assert_not_null (wrk_jobs_find ("quantize"));

    msgpack_sbuffer rb;
    msgpack_sbuffer_init (&rb);
    msgpack_packer rp;
    msgpack_packer_init (&rp, &rb, msgpack_sbuffer_write);
    atomic_int stop = 0;
    wrk_job_t job = { .params = &up.data, .device = s_dev, .stop = &stop, .result = &rp,
                      .sink = s_sink };
    s_progress = 0;
    cr_assert_eq (wrk_jobs_find ("quantize") (&job), 0, "%s", job.err.msg);
    cr_assert_geq (s_progress, TST_MODEL_N);
    s_check_identical (true);
    cr_assert_eq (s_out_type ("output.weight"), GGML_TYPE_Q8_0);
    cr_assert_eq (s_out_type ("token_embd.weight"), GGML_TYPE_F16);
    cr_assert_eq (s_out_type ("blk.0.attn_q.weight"), GGML_TYPE_Q5_K);
    msgpack_unpacked ur;
    msgpack_unpacked_init (&ur);
    cr_assert_eq (msgpack_unpack_next (&ur, rb.data, rb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    char out [160], type [16];
    cr_assert_eq (cmn_codec_get_cstr (&ur.data, "output", out, sizeof out, &err), 0);
    cr_assert_str_eq (out, s_out);
    cr_assert_eq (cmn_codec_get_cstr (&ur.data, "type", type, sizeof type, &err), 0);
    cr_assert_str_eq (type, "q5_K");
    cr_assert_eq (ur.data.via.map.size, 11);

    //  A cancelled job: no file.
    unlink (s_out);
    msgpack_sbuffer_clear (&rb);
    stop = RXQ_E_CANCELLED;
    cr_assert_eq (wrk_jobs_find ("quantize") (&job), -1);
    cr_assert_eq (job.err.code, RXQ_E_CANCELLED);
    cr_assert_eq (rb.size, 0, "nothing packed on failure");
    cr_assert_not (s_exists (s_out));
    cr_assert_not (s_exists (s_tmp));

    msgpack_unpacked_destroy (&ur);
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&pb);
    msgpack_sbuffer_destroy (&rb);
}

//  Writes an F32 model and its quantization to every llama.cpp type into
//  RXQ_QUANTIZE_EXPORT (a directory; default the test's own) as in.gguf
//  and out-TYPE.gguf, for tests/python/check_quantize.py.
Test (quantize, export_for_python)
{
    const char *dir = getenv ("RXQ_QUANTIZE_EXPORT");
    if (!dir || !*dir)
        dir = s_dir;
    char in [512], out [512];
    snprintf (in, sizeof in, "%s/in.gguf", dir);
    cr_assert_eq (tst_model_write_gguf (in, GGML_TYPE_F32, 11), 0);
    static const char *types [] = { "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0",
                                    "q4_k", "q5_k", "q6_k" };
    for (size_t k = 0; k < sizeof types / sizeof types [0]; k++) {
        wrk_quantize_opts_t opts = { .chunk_bytes = 200000 };
        cmn_err_t err = { 0 };
        cr_assert_eq (wrk_quantize_parse_type (types [k], &opts.type, &err), 0);
        snprintf (out, sizeof out, "%s/out-%s.gguf", dir, types [k]);
        cr_assert_eq (wrk_quantize_file (s_dev, in, out, &opts, NULL, NULL, NULL, &err), 0,
                      "%s: %s", types [k], err.msg);
        cmn_gguf_t *g = cmn_gguf_open_file (out, NULL, &err);
        cr_assert_not_null (g, "%s", err.msg);
        cmn_gguf_destroy (&g);
        if (dir == s_dir)
            unlink (out);
    }
    if (dir == s_dir)
        unlink (in);
}
