/*  test_optimize: `rxq optimize MODEL -o OUT` end to end through a real
 *  cluster (redis-server, rxq-broker with a blob store, one rxq-worker
 *  without a device): the model goes to the store, the `optimize` job
 *  fetches it into the worker's blob cache, optimizes it, uploads the
 *  output to the store and returns the report, and the CLI downloads the
 *  output; a second run sends nothing and finds the model cached; a blob
 *  name from `rxq put` works as the model; a model with a cycle fails the
 *  job with an error naming the node and writes nothing; `--local` gives
 *  the same model.
 *
 *  Suite optimize_target: `rxq optimize --target` and `--layout` with two
 *  workers without a device, "wa" and "wb": the job runs on the worker its
 *  target names, every time; without --layout a worker with no device
 *  keeps NCHW; --layout nhwc converts the convolutions on the worker; a
 *  target no worker matches leaves the job queued until its queue timeout
 *  fails it; a bad layout fails in the CLI and on the worker.
 */
#include "itest.h"
#include "cmn_blob.h"
#include "cmn_onnx.h"
#include <unistd.h>

static itest_run_t s_run;

static void
s_fini (void)
{
    itest_cleanup ();
}

TestSuite (optimize, .fini = s_fini, .timeout = 180);

static void
s_fixture (const char *name, char *path, size_t size)
{
    const char *dir = getenv ("RXQ_FIXTURES");
    snprintf (path, size, "%s/onnx/%s", dir ? dir : RXQ_SOURCE_DIR "/tests/fixtures", name);
}

static size_t
s_read (const char *path, char *buf, size_t size)
{
    FILE *f = fopen (path, "rb");
    cr_assert_not_null (f, "%s", path);
    size_t n = fread (buf, 1, size, f);
    fclose (f);
    return n;
}

static size_t
s_count (const char *path, const char *op)
{
    cmn_err_t err;
    cmn_onnx_model_t *m = cmn_onnx_load (path, NULL, &err);
    cr_assert_not_null (m, "%s: %s", path, err.msg);
    size_t n = 0;
    for (size_t i = 0; i < m->graph->nnodes; i++)
        n += !strcmp (m->graph->nodes [i]->op_type, op);
    cmn_onnx_destroy (&m);
    return n;
}

//  Starts Redis, a broker with a blob store and one worker without a
//  device per name in NAMES (NULL-terminated); the broker's endpoint into
//  ENDPOINT (64 bytes).
static void
s_cluster (const char **names, char *endpoint)
{
    int redis_port = itest_free_port ();
    int port = itest_free_port ();
    while (port == redis_port)
        port = itest_free_port ();
    snprintf (endpoint, 64, "tcp://127.0.0.1:%d", port);
    itest_start_redis (redis_port);
    itest_proc_t *broker = itest_start_broker_store (port, redis_port);
    char *extra [] = { "--no-device", NULL };
    int n = 0;
    for (; names [n]; n++)
        itest_start_worker (names [n], port, extra, NULL);
    cr_assert_eq (itest_wait_workers (port, n, 45000), n, "workers missing; broker log:\n%s",
                  itest_log (broker));
}

Test (optimize, job_on_worker_and_local)
{
    char endpoint [64];
    s_cluster ((const char *[]) { "w1", NULL }, endpoint);

    char model [512], out [512], local [512];
    s_fixture ("pass_conv_bn_relu.onnx", model, sizeof model);
    snprintf (out, sizeof out, "%s/out.onnx", itest_tmpdir ());
    snprintf (local, sizeof local, "%s/local.onnx", itest_tmpdir ());
    itest_rxq (&s_run, 60000, "--broker", endpoint, "--json", "optimize", model, "-O2", "-o", out);
    cr_assert_eq (s_run.code, 0, "rxq optimize: %s\n%s", s_run.err, s_run.out);
    cr_assert (strstr (s_run.out, "\"fuse-conv-bn\":2"), "%s", s_run.out);
    cr_assert (strstr (s_run.out, "\"state\":\"succeeded\""), "%s", s_run.out);
    cr_assert (strstr (s_run.err, "uploaded"), "the model went to the store: %s", s_run.err);
    cr_assert (strstr (s_run.out, "\"model_cached\":false"), "%s", s_run.out);
    cr_assert_eq (s_count (out, "BatchNormalization"), 0);
    cr_assert_eq (s_count (out, "Conv"), 2);
    //  The output came through the store: the result names its blob.
    char out_hash [65], model_hash [65], blob [65];
    cr_assert_eq (cmn_blob_hash_file (out, out_hash, NULL, NULL), 0);
    cr_assert_eq (cmn_blob_hash_file (model, model_hash, NULL, NULL), 0);
    cr_assert (itest_json_string (s_run.out, "output_blob", blob, sizeof blob), "%s", s_run.out);
    cr_assert_str_eq (blob, out_hash);
    cr_assert (itest_json_string (s_run.out, "model_blob", blob, sizeof blob), "%s", s_run.out);
    cr_assert_str_eq (blob, model_hash);

    //  Again, by the model's blob name: nothing is sent, the worker has
    //  the model in its blob cache, the output is the same blob.
    char again [512];
    snprintf (again, sizeof again, "%s/again.onnx", itest_tmpdir ());
    itest_rxq (&s_run, 60000, "--broker", endpoint, "--json", "optimize", model_hash, "-O2",
               "-o", again);
    cr_assert_eq (s_run.code, 0, "rxq optimize HASH: %s\n%s", s_run.err, s_run.out);
    cr_assert_null (strstr (s_run.err, "uploaded"), "%s", s_run.err);
    cr_assert (strstr (s_run.out, "\"model_cached\":true"), "%s", s_run.out);
    cr_assert_eq (cmn_blob_hash_file (again, blob, NULL, NULL), 0);
    cr_assert_str_eq (blob, out_hash);
    //  And by the job: rxq get JOB gives its output.
    char id [80] = "", got [512];
    cr_assert (itest_json_string (s_run.out, "id", id, sizeof id), "%s", s_run.out);
    snprintf (got, sizeof got, "%s/got.onnx", itest_tmpdir ());
    itest_rxq (&s_run, 30000, "--broker", endpoint, "get", id, "-o", got);
    cr_assert_eq (s_run.code, 0, "rxq get %s: %s", id, s_run.err);
    cr_assert_eq (cmn_blob_hash_file (got, blob, NULL, NULL), 0);
    cr_assert_str_eq (blob, out_hash);

    //  The same optimizer in the CLI's process writes the same bytes.
    itest_rxq (&s_run, 60000, "optimize", model, "--local", "-O2", "-o", local);
    cr_assert_eq (s_run.code, 0, "%s", s_run.err);
    char a [8192], b [8192];
    size_t na = s_read (out, a, sizeof a), nb = s_read (local, b, sizeof b);
    cr_assert_gt (na, 0);
    cr_assert_eq (na, nb);
    cr_assert_eq (memcmp (a, b, na), 0);

    //  A cycle: the job fails naming the node; no output.
    char cyc [512], cyc_out [512];
    s_fixture ("cycle.onnx", cyc, sizeof cyc);
    snprintf (cyc_out, sizeof cyc_out, "%s/cycle.out.onnx", itest_tmpdir ());
    itest_rxq (&s_run, 60000, "--broker", endpoint, "optimize", cyc, "-o", cyc_out);
    cr_assert_eq (s_run.code, 1, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "node 'n_a' (Add) is on a cycle"), "%s", s_run.err);
    cr_assert_eq (access (cyc_out, F_OK), -1);

    //  A blob the store does not have: the broker refuses the job.
    itest_rxq (&s_run, 10000, "--broker", endpoint, "optimize",
               "00000000000000000000000000000000000000000000000000000000000000aa", "-o", out);
    cr_assert_eq (s_run.code, 2, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "not in the broker's store"), "%s", s_run.err);

    //  Usage errors do not reach the broker.
    itest_rxq (&s_run, 10000, "optimize", model, "-o", out, "--enable", "no-such-pass");
    cr_assert_eq (s_run.code, 64);
    itest_rxq (&s_run, 10000, "optimize", model, "-O3", "-o", out);
    cr_assert_eq (s_run.code, 64);
}

TestSuite (optimize_target, .fini = s_fini, .timeout = 180);

Test (optimize_target, routed_to_the_named_worker_with_its_layout)
{
    char endpoint [64];
    s_cluster ((const char *[]) { "wa", "wb", NULL }, endpoint);

    const char *dir = getenv ("RXQ_FIXTURES");
    char model [512], out [512], worker [64];
    snprintf (model, sizeof model, "%s/onnx/pass_conv_bn_relu.onnx",
              dir ? dir : RXQ_SOURCE_DIR "/tests/fixtures");
    snprintf (out, sizeof out, "%s/out.onnx", itest_tmpdir ());
    //  Each run goes to the worker named: three times each, so that a
    //  broker that ignored the target would be caught (1 in 64 to pass).
    const char *names [] = { "wb", "wa" };
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < 3; k++) {
            itest_rxq (&s_run, 60000, "--broker", endpoint, "--json", "optimize", model, "-O2",
                       "--target", names [w], "-o", out);
            cr_assert_eq (s_run.code, 0, "rxq optimize --target %s: %s\n%s", names [w], s_run.err,
                          s_run.out);
            cr_assert (itest_json_string (s_run.out, "worker", worker, sizeof worker), "%s",
                       s_run.out);
            cr_assert_str_eq (worker, names [w]);
            //  No device on the worker: no preference, NCHW.
            cr_assert (strstr (s_run.out, "\"layout\":\"nchw\""), "%s", s_run.out);
            cr_assert_eq (s_count (out, "Conv"), 2);
        }
    //  --layout nhwc wins: the worker converts the convolutions.
    itest_rxq (&s_run, 60000, "--broker", endpoint, "--json", "optimize", model, "-O2",
               "--target", "wa", "--layout", "nhwc", "-o", out);
    cr_assert_eq (s_run.code, 0, "%s\n%s", s_run.err, s_run.out);
    cr_assert (strstr (s_run.out, "\"layout\":\"nhwc\""), "%s", s_run.out);
    cr_assert (strstr (s_run.out, "\"converted\":2"), "%s", s_run.out);
    cr_assert_eq (s_count (out, "NhwcConv"), 2);
    cr_assert_eq (s_count (out, "Conv"), 0);
    cr_assert_eq (s_count (out, "Transpose"), 2);

    //  A target nobody matches: queued until its queue timeout.
    char hash [65], param [128];
    cr_assert_eq (cmn_blob_hash_file (model, hash, NULL, NULL), 0);
    snprintf (param, sizeof param, "model=%s", hash);
    itest_rxq (&s_run, 60000, "--broker", endpoint, "--json", "submit", "optimize", param,
               "--require", "target=no-such-device", "--queue-timeout-ms", "1500", "--wait");
    cr_assert_eq (s_run.code, 1, "%s\n%s", s_run.err, s_run.out);
    cr_assert (strstr (s_run.out, "no-such-device") || strstr (s_run.err, "no-such-device"),
               "the failed job names its target: %s\n%s", s_run.out, s_run.err);
    //  A bad layout is a usage error here and a job error on the worker.
    itest_rxq (&s_run, 10000, "optimize", model, "--layout", "nhwx", "-o", out);
    cr_assert_eq (s_run.code, 64);
    itest_rxq (&s_run, 60000, "--broker", endpoint, "submit", "optimize", param, "layout=nhwx",
               "--wait");
    cr_assert_eq (s_run.code, 1, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "layout: 'nhwx' is not nhwc or nchw"), "%s", s_run.err);
}
