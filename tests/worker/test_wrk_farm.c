/*  test_wrk_farm: the bench.gemm, bench.gemv, bench.kernels, bench.llm
 *  and tune runners on the test device (PoCL in CI) at small sizes: each returns a
 *  record with every field of wrk_farm.h, and a set stop flag ends each
 *  with RXQ_E_CANCELLED.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include "wrk_device.h"
#include "wrk_farm.h"
#include "wrk_bench_llm.h"
#include "wrk_job.h"
#include "wrk_tune.h"
#include "cmn_codec.h"
#include "support/tst_llm.h"

typedef struct {
    msgpack_sbuffer params_buf; // packed parameters
    cmn_body_t params;          // decoded parameters
    msgpack_sbuffer result_buf; // what the runner packs
    msgpack_packer result;      // packer onto result_buf
    atomic_int stop;            // the stop flag
    int events;                 // progress events
    wrk_job_t job;              // the job handed to the runner
} s_job_t;

static void
s_sink (void *arg, const char *data, size_t size)
{
    (void) data;
    (void) size;
    ((s_job_t *) arg)->events++;
}

//  Parameters as (key, "s:text" or "u:number") pairs ending with NULL.
static void
s_job_init (s_job_t *j, wrk_device_t *dev, ...)
{
    memset (j, 0, sizeof *j);
    msgpack_sbuffer_init (&j->params_buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &j->params_buf, msgpack_sbuffer_write);
    va_list ap;
    int count = 0;
    va_start (ap, dev);
    while (va_arg (ap, const char *)) {
        (void) va_arg (ap, const char *);
        count++;
    }
    va_end (ap);
    msgpack_pack_map (&pk, (size_t) count);
    va_start (ap, dev);
    const char *key;
    while ((key = va_arg (ap, const char *)) != NULL) {
        const char *val = va_arg (ap, const char *);
        if (val [0] == 's')
            cmn_pack_kv_str (&pk, key, val + 2);
        else
            cmn_pack_kv_uint (&pk, key, strtoull (val + 2, NULL, 10));
    }
    va_end (ap);
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&j->params, j->params_buf.data, j->params_buf.size,
                                   &cmn_codec_limits_default, &err), 0, "%s", err.msg);
    msgpack_sbuffer_init (&j->result_buf);
    msgpack_packer_init (&j->result, &j->result_buf, msgpack_sbuffer_write);
    atomic_init (&j->stop, 0);
    snprintf (j->job.id, sizeof j->job.id, "test-job");
    j->job.attempt = 1;
    j->job.params = &j->params.root;
    j->job.device = dev;
    j->job.stop = &j->stop;
    j->job.result = &j->result;
    j->job.sink = s_sink;
    j->job.sink_arg = j;
}

static void
s_job_free (s_job_t *j)
{
    cmn_body_free (&j->params);
    msgpack_sbuffer_destroy (&j->params_buf);
    msgpack_sbuffer_destroy (&j->result_buf);
}

static wrk_device_t *
s_open (void)
{
    cmn_err_t err = { 0 };
    wrk_device_t *dev = wrk_device_new (getenv ("RXQ_TEST_DEVICE"), NULL, &err);
    cr_assert_not_null (dev, "%s", err.msg);
    return dev;
}

static double
s_number (const msgpack_object *map, const char *key)
{
    const msgpack_object *v = cmn_codec_find (map, key);
    cr_assert_not_null (v, "record lacks '%s'", key);
    if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
        return v->via.f64;
    cr_assert_eq (v->type, MSGPACK_OBJECT_POSITIVE_INTEGER, "'%s' is not a number", key);
    return (double) v->via.u64;
}

static const msgpack_object *
s_map (const msgpack_object *map, const char *key)
{
    const msgpack_object *v = NULL;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_codec_get_map (map, key, &v, &err), 0, "'%s': %s", key, err.msg);
    return v;
}

//  Checks every field of a bench record of KIND; returns the figures map.
static void
s_check_record (s_job_t *j, const char *kind, const char *kernel, const char *param)
{
    cmn_body_t body;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&body, j->result_buf.data, j->result_buf.size,
                                   &cmn_codec_limits_default, &err), 0, "%s", err.msg);
    const msgpack_object *r = &body.root;
    cr_assert_eq (r->via.map.size, 11);
    cr_assert_eq (s_number (r, "record_version"), 1);
    char text [256];
    cr_assert_eq (cmn_codec_get_cstr (r, "kind", text, sizeof text, &err), 0);
    cr_assert_str_eq (text, kind);
    cr_assert_eq (cmn_codec_get_cstr (r, "rxq_version", text, sizeof text, &err), 0);
    cr_assert_str_eq (text, RXQ_VERSION);
    cr_assert_eq (cmn_codec_get_cstr (r, "kernel_hash", text, sizeof text, &err), 0);
    cr_assert_str_eq (text, wrk_farm_kernel_hash ());
    cr_assert_eq (strlen (text), 16);
    const msgpack_object *dev = s_map (r, "device");
    cr_assert_eq (dev->via.map.size, 15);
    cr_assert_eq (cmn_codec_get_cstr (dev, "driver", text, sizeof text, &err), 0);
    cr_assert_eq (cmn_codec_get_cstr (dev, "version", text, sizeof text, &err), 0);
    cr_assert (strstr (text, "OpenCL"));
    const msgpack_object *params = s_map (r, "params");
    cr_assert_not_null (cmn_codec_find (params, param), "params lacks '%s'", param);
    cr_assert_not_null (cmn_codec_find (params, "seed"));
    s_number (r, "seed");
    const msgpack_object *tuning = s_map (r, "tuning");
    cr_assert_eq (cmn_codec_get_cstr (tuning, "options", text, sizeof text, &err), 0);
    cr_assert (strstr (text, "-D"), "options '%s'", text);
    const msgpack_object *fig = s_map (r, "figures");
    double gflops = s_number (fig, "gflops"), gbps = s_number (fig, "gbps");
    double frac = s_number (fig, "peak_fraction");
    cr_assert (gflops > 0 && isfinite (gflops));
    cr_assert (gbps > 0 && isfinite (gbps));
    cr_assert (frac > 0 && isfinite (frac));
    const msgpack_object *peak = s_map (r, "measured_peak");
    cr_assert_gt (s_number (peak, "copy_gbps"), 0);
    cr_assert_gt (s_number (peak, "fma_gflops"), 0);
    const msgpack_object *ks;
    cr_assert_eq (cmn_codec_get_array (r, "kernels", &ks, &err), 0);
    bool found = false;
    for (uint32_t i = 0; i < ks->via.array.size; i++) {
        const msgpack_object *k = &ks->via.array.ptr [i];
        cr_assert_eq (cmn_codec_get_cstr (k, "name", text, sizeof text, &err), 0);
        cr_assert_gt (s_number (k, "ns"), 0);
        cr_assert_geq (s_number (k, "runs"), 1);
        found |= strcmp (text, kernel) == 0;
    }
    cr_assert (found, "no kernel '%s' in the record", kernel);
    cmn_body_free (&body);
    cr_assert_gt (j->events, 0);
}

Test (wrk_farm, bench_gemm_record)
{
    wrk_device_t *dev = s_open ();
    s_job_t j;
    s_job_init (&j, dev, "n", "u:70", "reps", "u:2", "seed", "u:9", NULL);
    cr_assert_eq (wrk_farm_bench_gemm (&j.job), 0, "%s", j.job.err.msg);
    s_check_record (&j, "bench.gemm", "sgemm", "n");
    s_job_free (&j);
    wrk_device_destroy (&dev);
}

Test (wrk_farm, bench_gemv_record)
{
    wrk_device_t *dev = s_open ();
    const char *types [] = { "s:q4_0", "s:q4_1", "s:q8_0", "s:q4_k", "s:q6_k" };
    for (int i = 0; i < 5; i++) {
        s_job_t j;
        s_job_init (&j, dev, "type", types [i], "rows", "u:33", "cols", "u:512", "reps", "u:2",
                    NULL);
        cr_assert_eq (wrk_farm_bench_gemv (&j.job), 0, "%s: %s", types [i], j.job.err.msg);
        s_check_record (&j, "bench.gemv", "qgemv", "type");
        s_job_free (&j);
    }
    //  x=i8: the GEMV on int8 x, recorded with the quantization kernel.
    for (int i = 0; i < 5; i++) {
        s_job_t j;
        s_job_init (&j, dev, "type", types [i], "rows", "u:33", "cols", "u:512", "reps", "u:2",
                    "x", "s:i8", NULL);
        cr_assert_eq (wrk_farm_bench_gemv (&j.job), 0, "%s x=i8: %s", types [i],
                      j.job.err.msg);
        s_check_record (&j, "bench.gemv", "qgemv_i8", "x");
        s_check_record (&j, "bench.gemv", "qi8_quant", "type");
        s_job_free (&j);
    }
    s_job_t j;
    s_job_init (&j, dev, "type", "s:q4_0", "x", "s:f16", NULL);
    cr_assert_eq (wrk_farm_bench_gemv (&j.job), -1);
    cr_assert_eq (j.job.err.code, RXQ_E_PARAM);
    s_job_free (&j);
    s_job_init (&j, dev, "type", "s:q5_0", NULL);
    cr_assert_eq (wrk_farm_bench_gemv (&j.job), -1);
    cr_assert_eq (j.job.err.code, RXQ_E_PARAM);
    s_job_free (&j);
    s_job_init (&j, dev, "type", "s:q4_k", "cols", "u:100", NULL);
    cr_assert_eq (wrk_farm_bench_gemv (&j.job), -1);
    cr_assert_eq (j.job.err.code, RXQ_E_PARAM);
    s_job_free (&j);
    wrk_device_destroy (&dev);
}

Test (wrk_farm, bench_kernels_record)
{
    wrk_device_t *dev = s_open ();
    s_job_t j;
    s_job_init (&j, dev, "scale", "u:1", "reps", "u:1", NULL);
    cr_assert_eq (wrk_farm_bench_kernels (&j.job), 0, "%s", j.job.err.msg);
    s_check_record (&j, "bench.kernels", "attention_f32", "scale");
    s_job_free (&j);
    wrk_device_destroy (&dev);
}

//  bench.llm with the real SmolLM2 at a small pp/tg: the complete record,
//  llama-bench's figures, and kernel-class shares that add up to 1.
Test (wrk_farm, bench_llm_record, .timeout = 600)
{
    TST_LLM_REQUIRE (model);
    wrk_device_t *dev = s_open ();
    char mv [4200];
    snprintf (mv, sizeof mv, "s:%s", model);
    s_job_t j;
    s_job_init (&j, dev, "model", mv, "pp", "u:32", "tg", "u:8", "reps", "u:1", NULL);
    cr_assert_eq (wrk_bench_llm_job (&j.job), 0, "%s", j.job.err.msg);
    s_check_record (&j, "bench.llm", "matmul", "pp");
    cmn_body_t body;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&body, j.result_buf.data, j.result_buf.size,
                                   &cmn_codec_limits_default, &err), 0, "%s", err.msg);
    const msgpack_object *fig = s_map (&body.root, "figures");
    const double pp_tps = s_number (fig, "pp_tps"), tg_tps = s_number (fig, "tg_tps");
    cr_log_info ("bench.llm pp32 %.1f tok/s, tg8 %.1f tok/s", pp_tps, tg_tps);
    cr_expect (pp_tps > 0 && tg_tps > 0);
    cr_expect_float_eq (s_number (fig, "pp_ms"), 32 * 1e3 / pp_tps, 1e-6);
    cr_expect_float_eq (s_number (fig, "tg_ms"), 8 * 1e3 / tg_tps, 1e-6);
    const char *classes [] = { "share_matmul", "share_norm", "share_rope", "share_attention",
                               "share_elementwise", "share_copy" };
    double sum = 0;
    for (int i = 0; i < 6; i++)
        sum += s_number (fig, classes [i]);
    cr_expect_float_eq (sum, 1.0, 1e-9);
    cr_expect_gt (s_number (fig, "share_matmul"), 0.3, "matmul dominates");
    cr_expect_gt (s_number (fig, "bytes_per_token"), 7e7, "SmolLM2 Q4_1 reads > 70 MB a token");
    char text [4200];
    cr_assert_eq (cmn_codec_get_cstr (s_map (&body.root, "params"), "model", text, sizeof text,
                                      &err), 0);
    cr_expect_str_eq (text, model);
    cmn_body_free (&body);
    s_job_free (&j);

    //  pp beyond the model's 8192-token context; a file that is not there.
    s_job_init (&j, dev, "model", mv, "pp", "u:8193", NULL);
    cr_expect_eq (wrk_bench_llm_job (&j.job), -1);
    cr_expect_eq (j.job.err.code, RXQ_E_PARAM, "%s", j.job.err.msg);
    cr_expect_eq (j.result_buf.size, 0);
    s_job_free (&j);
    s_job_init (&j, dev, "model", "s:/nonexistent/m.gguf", NULL);
    cr_expect_eq (wrk_bench_llm_job (&j.job), -1);
    cr_expect_eq (j.job.err.code, RXQ_E_IO, "%s", j.job.err.msg);
    s_job_free (&j);
    //  A stop ends it with nothing packed.
    s_job_init (&j, dev, "model", mv, "pp", "u:32", "tg", "u:8", NULL);
    atomic_store (&j.stop, RXQ_E_CANCELLED);
    cr_expect_eq (wrk_bench_llm_job (&j.job), -1);
    cr_expect_eq (j.job.err.code, RXQ_E_CANCELLED, "%s", j.job.err.msg);
    cr_expect_eq (j.result_buf.size, 0);
    s_job_free (&j);
    wrk_device_destroy (&dev);
}

Test (wrk_farm, tune_entry_applies)
{
    wrk_device_t *dev = s_open ();
    s_job_t j;
    s_job_init (&j, dev, "n", "u:64", "rows", "u:32", "cols", "u:256", "budget_ms", "u:600",
                NULL);
    cr_assert_eq (wrk_farm_tune (&j.job), 0, "%s", j.job.err.msg);
    cmn_body_t body;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&body, j.result_buf.data, j.result_buf.size,
                                   &cmn_codec_limits_default, &err), 0, "%s", err.msg);
    char text [512];
    cr_assert_eq (cmn_codec_get_cstr (&body.root, "device_key", text, sizeof text, &err), 0);
    cr_assert (strstr (text, wrk_device_info (dev)->name));
    cr_assert_gt (s_number (&body.root, "gflops"), 0);
    cr_assert_gt (s_number (&body.root, "gbps"), 0);
    const msgpack_object *entry = s_map (&body.root, "entry");
    s_map (entry, "sgemm");
    s_map (entry, "qmatmul");
    //  The entry is what an override takes.
    cr_assert_eq (wrk_tune_set_override (dev, entry, &err), 0, "%s", err.msg);
    cr_assert_eq (wrk_tune_set_override (dev, NULL, &err), 0);
    cmn_body_free (&body);
    s_job_free (&j);
    wrk_device_destroy (&dev);
}

Test (wrk_farm, stop_cancels_every_runner)
{
    wrk_device_t *dev = s_open ();
    wrk_job_fn *fns [] = { wrk_farm_bench_gemm, wrk_farm_bench_gemv, wrk_farm_bench_kernels,
                           wrk_farm_tune };
    for (int i = 0; i < 4; i++) {
        s_job_t j;
        s_job_init (&j, dev, NULL);
        atomic_store (&j.stop, RXQ_E_CANCELLED);
        cr_assert_eq (fns [i] (&j.job), -1, "runner %d", i);
        cr_assert_eq (j.job.err.code, RXQ_E_CANCELLED, "runner %d: %s", i, j.job.err.msg);
        cr_assert_eq (j.result_buf.size, 0, "runner %d packed a partial result", i);
        s_job_free (&j);
    }
    wrk_device_destroy (&dev);
}

Test (wrk_farm, kernel_hash_is_stable)
{
    const char *h = wrk_farm_kernel_hash ();
    cr_assert_eq (strlen (h), 16);
    cr_assert_eq (h, wrk_farm_kernel_hash ());
    cr_assert_neq (strcmp (h, "0000000000000000"), 0);
}
