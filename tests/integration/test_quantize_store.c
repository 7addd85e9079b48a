/*  test_quantize_store: `rxq quantize MODEL --type T -o OUT` end to end
 *  through a real cluster (redis-server, rxq-broker --data-dir, one
 *  rxq-worker on PoCL): the model goes into the blob store, the worker
 *  fetches it into its blob cache, quantizes it on the device and uploads
 *  the output, and the CLI downloads it. A second run on the same model
 *  sends no bytes and finds the model in the worker's cache; the output is
 *  the same blob. A corrupt model fails the job with a clear error and no
 *  output file.
 */
#include "itest.h"
#include "cmn_blob.h"
#include "cmn_gguf.h"
#include "support/tst_model.h"

static itest_run_t s_run;

static void
s_fini (void)
{
    itest_cleanup ();
}

TestSuite (quantize_store, .fini = s_fini, .timeout = 240);

static void
s_cluster (char *endpoint, size_t size)
{
    int redis_port = itest_free_port ();
    int port = itest_free_port ();
    while (port == redis_port)
        port = itest_free_port ();
    snprintf (endpoint, size, "tcp://127.0.0.1:%d", port);
    char data_dir [512];
    snprintf (data_dir, sizeof data_dir, "%s/data", itest_tmpdir ());
    itest_start_redis (redis_port);
    char program [512], redis [64];
    itest_program ("rxq-broker", program, sizeof program);
    snprintf (redis, sizeof redis, "redis://127.0.0.1:%d", redis_port);
    char *argv [] = { program, "--bind", endpoint, "--redis", redis, "--data-dir", data_dir,
                      NULL };
    itest_proc_t *broker = itest_spawn ("broker", argv, NULL);
    itest_start_worker ("w1", port, NULL, NULL);
    int listed = itest_wait_workers (port, 1, 45000);
    cr_assert_eq (listed, 1, "no worker; broker log:\n%s", itest_log (broker));
}

Test (quantize_store, put_run_get_then_warm_second_run)
{
    char endpoint [64];
    s_cluster (endpoint, sizeof endpoint);
    char model [512], out1 [512], out2 [512];
    snprintf (model, sizeof model, "%s/model.f16.gguf", itest_tmpdir ());
    snprintf (out1, sizeof out1, "%s/out1.gguf", itest_tmpdir ());
    snprintf (out2, sizeof out2, "%s/out2.gguf", itest_tmpdir ());
    cr_assert_eq (tst_model_write_gguf (model, GGML_TYPE_F16, 7), 0);

    itest_rxq (&s_run, 180000, "--broker", endpoint, "quantize", model, "--type", "q8_0",
               "-o", out1);
    cr_assert_eq (s_run.code, 0, "rxq quantize: %s\n%s", s_run.err, s_run.out);
    cr_assert (strstr (s_run.err, "uploaded"), "%s", s_run.err);
    //  Progress is rate-limited (500 ms), so only the first line is sure.
    cr_assert (strstr (s_run.err, "fetching model"), "the worker fetched the model: %s",
               s_run.err);
    cr_assert (strstr (s_run.out, "q8_0"), "the report is printed: %s", s_run.out);
    cmn_err_t err = { 0 };
    cmn_gguf_t *g = cmn_gguf_open_file (out1, NULL, &err);
    cr_assert_not_null (g, "output is not a GGUF: %s", err.msg);
    cr_assert_eq (cmn_gguf_tensor_count (g), TST_MODEL_N);
    const cmn_gguf_tensor_t *t = cmn_gguf_find_tensor (g, "blk.0.ffn_up.weight");
    cr_assert_not_null (t);
    cr_assert_eq (t->type, GGML_TYPE_Q8_0);
    cmn_gguf_destroy (&g);

    //  Second run: no upload, a cache hit on the worker, the same output.
    itest_rxq (&s_run, 180000, "--broker", endpoint, "--json", "quantize", model, "--type",
               "q8_0", "-o", out2);
    cr_assert_eq (s_run.code, 0, "second rxq quantize: %s", s_run.err);
    cr_assert (strstr (s_run.err, "already in the store"), "%s", s_run.err);
    //  The same model and type again: answered from the weight cache.
    cr_assert (strstr (s_run.out, "\"weights_cached\":true"), "%s", s_run.out);
    char h1 [65], h2 [65];
    cr_assert_eq (cmn_blob_hash_file (out1, h1, NULL, NULL), 0);
    cr_assert_eq (cmn_blob_hash_file (out2, h2, NULL, NULL), 0);
    cr_assert_str_eq (h1, h2, "the same model and type give the same bytes");
    cr_assert (strstr (s_run.out, h1), "the result names the output blob: %s", s_run.out);

    //  Another type: the model is found in the worker's blob cache.
    char out4 [512];
    snprintf (out4, sizeof out4, "%s/out4.gguf", itest_tmpdir ());
    itest_rxq (&s_run, 180000, "--broker", endpoint, "--json", "quantize", model, "--type",
               "q4_0", "-o", out4);
    cr_assert_eq (s_run.code, 0, "third rxq quantize: %s", s_run.err);
    cr_assert (strstr (s_run.out, "\"model_cached\":true"), "%s", s_run.out);
    cr_assert (strstr (s_run.out, "\"weights_cached\":false"), "%s", s_run.out);

    //  rxq get JOB: the job's output blob.
    char id [80] = "";
    const char *p = strstr (s_run.out, "\"id\"");
    cr_assert_not_null (p);
    sscanf (p, "\"id\": \"%79[^\"]\"", id);
    if (!id [0])
        sscanf (p, "\"id\":\"%79[^\"]\"", id);
    cr_assert (id [0], "no job id in %s", s_run.out);
    char out3 [512];
    snprintf (out3, sizeof out3, "%s/out3.gguf", itest_tmpdir ());
    itest_rxq (&s_run, 30000, "--broker", endpoint, "get", id, "-o", out3);
    cr_assert_eq (s_run.code, 0, "rxq get %s: %s", id, s_run.err);
    char h3 [65], h4 [65];
    cr_assert_eq (cmn_blob_hash_file (out3, h3, NULL, NULL), 0);
    cr_assert_eq (cmn_blob_hash_file (out4, h4, NULL, NULL), 0);
    cr_assert_str_eq (h3, h4, "rxq get JOB gives the q4_0 job's output");
    cr_assert_str_neq (h4, h1);
}

Test (quantize_store, corrupt_model_fails_with_a_clear_error)
{
    char endpoint [64];
    s_cluster (endpoint, sizeof endpoint);
    char model [512], out [512];
    snprintf (model, sizeof model, "%s/broken.gguf", itest_tmpdir ());
    snprintf (out, sizeof out, "%s/never.gguf", itest_tmpdir ());
    FILE *f = fopen (model, "wb");
    fputs ("GGUF\x03\0\0\0 but then nothing sensible follows", f);
    fclose (f);
    itest_rxq (&s_run, 120000, "--broker", endpoint, "quantize", model, "--type", "q4_0",
               "-o", out);
    cr_assert_eq (s_run.code, 1, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "failed"), "%s", s_run.err);
    cr_assert_neq (access (out, F_OK), 0, "no output for a failed job");
    //  Usage errors are caught before anything is sent.
    itest_rxq (&s_run, 10000, "--broker", endpoint, "quantize", model, "-o", out);
    cr_assert_eq (s_run.code, 64, "%s", s_run.err);
    itest_rxq (&s_run, 10000, "--broker", endpoint, "quantize", model, "--type", "q4_0");
    cr_assert_eq (s_run.code, 64, "%s", s_run.err);
    itest_rxq (&s_run, 10000, "--broker", endpoint, "quantize", model, "--type", "mixed",
               "--budget", "lots", "-o", out);
    cr_assert_eq (s_run.code, 64, "%s", s_run.err);
    itest_rxq (&s_run, 10000, "--broker", endpoint, "quantize", "/nonexistent.gguf", "--type",
               "q4_0", "-o", out);
    cr_assert_eq (s_run.code, 5, "%s", s_run.err);
}

//  proto 6.10 on real workers: a job pinned (by tag) to w2 leaves the
//  model's quantized tensors in w2's weight cache; the next job on that
//  model, not pinned, goes to w2. The same with a second model on w1, so
//  that a broker without affinity (always the same first choice) fails
//  one of the two. A repeat of the same job is answered from the cache.
Test (quantize_store, next_job_on_a_model_goes_to_the_worker_holding_it)
{
    int redis_port = itest_free_port ();
    int port = itest_free_port ();
    while (port == redis_port)
        port = itest_free_port ();
    char endpoint [64], data_dir [512], program [512], redis [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    snprintf (data_dir, sizeof data_dir, "%s/data", itest_tmpdir ());
    itest_start_redis (redis_port);
    itest_program ("rxq-broker", program, sizeof program);
    snprintf (redis, sizeof redis, "redis://127.0.0.1:%d", redis_port);
    char *argv [] = { program, "--bind", endpoint, "--redis", redis, "--data-dir", data_dir,
                      NULL };
    itest_proc_t *broker = itest_spawn ("broker", argv, NULL);
    char *t1 [] = { "--tag", "t1", NULL }, *t2 [] = { "--tag", "t2", NULL };
    itest_start_worker ("w1", port, t1, NULL);
    itest_start_worker ("w2", port, t2, NULL);
    cr_assert_eq (itest_wait_workers (port, 2, 45000), 2, "%s", itest_log (broker));

    char m1 [512], m2 [512], h1 [80], h2 [80];
    snprintf (m1, sizeof m1, "%s/m1.gguf", itest_tmpdir ());
    snprintf (m2, sizeof m2, "%s/m2.gguf", itest_tmpdir ());
    cr_assert_eq (tst_model_write_gguf (m1, GGML_TYPE_F32, 11), 0);
    cr_assert_eq (tst_model_write_gguf (m2, GGML_TYPE_F32, 12), 0);
    itest_rxq (&s_run, 30000, "--broker", endpoint, "put", m1);
    cr_assert_eq (s_run.code, 0, "%s", s_run.err);
    snprintf (h1, sizeof h1, "%.64s", s_run.out);
    itest_rxq (&s_run, 30000, "--broker", endpoint, "put", m2);
    cr_assert_eq (s_run.code, 0, "%s", s_run.err);
    snprintf (h2, sizeof h2, "%.64s", s_run.out);
    char p1 [100], p2 [100];
    snprintf (p1, sizeof p1, "model=%s", h1);
    snprintf (p2, sizeof p2, "model=%s", h2);

    //  Model one pinned to w2, then free to go anywhere: w2.
    itest_rxq (&s_run, 120000, "--broker", endpoint, "--json", "submit", "quantize", p1,
               "type=q8_0", "--require", "tag=t2", "--wait");
    cr_assert_eq (s_run.code, 0, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "leased by w2"), "%s", s_run.err);
    itest_rxq (&s_run, 120000, "--broker", endpoint, "--json", "submit", "quantize", p1,
               "type=q4_0", "--wait");
    cr_assert_eq (s_run.code, 0, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "leased by w2"), "second job on model one not on w2 (which "
               "holds it): %s", s_run.err);

    //  Model two pinned to w1, then free: w1.
    itest_rxq (&s_run, 120000, "--broker", endpoint, "--json", "submit", "quantize", p2,
               "type=q8_0", "--require", "tag=t1", "--wait");
    cr_assert_eq (s_run.code, 0, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "leased by w1"), "%s", s_run.err);
    itest_rxq (&s_run, 120000, "--broker", endpoint, "--json", "submit", "quantize", p2,
               "type=q4_0", "--wait");
    cr_assert_eq (s_run.code, 0, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "leased by w1"), "second job on model two not on w1 (which "
               "holds it): %s", s_run.err);
    cr_assert (strstr (s_run.out, "\"weights_cached\":false"), "%s", s_run.out);

    //  The very same job again: answered from w1's weight cache.
    itest_rxq (&s_run, 120000, "--broker", endpoint, "--json", "submit", "quantize", p2,
               "type=q4_0", "--wait");
    cr_assert_eq (s_run.code, 0, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "leased by w1"), "%s", s_run.err);
    cr_assert (strstr (s_run.out, "\"weights_cached\":true"), "%s", s_run.out);

    //  rxq workers --json lists what each holds.
    itest_rxq (&s_run, 10000, "--broker", endpoint, "--json", "workers");
    cr_assert_eq (s_run.code, 0, "%s", s_run.err);
    cr_assert (strstr (s_run.out, h1) && strstr (s_run.out, h2), "%s", s_run.out);
}
