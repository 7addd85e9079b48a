/*  test_optimize: `rxq optimize MODEL -o OUT` end to end through a real
 *  cluster (redis-server, rxq-broker, one rxq-worker): the `optimize` job
 *  reads the model at its absolute path, writes the optimized model and
 *  returns the report; a model with a cycle fails the job with an error
 *  naming the node and writes nothing; `--local` gives the same model.
 */
#include "itest.h"
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

Test (optimize, job_on_worker_and_local)
{
    int redis_port = itest_free_port ();
    int port = itest_free_port ();
    while (port == redis_port)
        port = itest_free_port ();
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    itest_start_redis (redis_port);
    itest_proc_t *broker = itest_start_broker (port, redis_port);
    char *extra [] = { "--no-device", NULL };
    itest_start_worker ("w1", port, extra, NULL);
    cr_assert_eq (itest_wait_workers (port, 1, 45000), 1, "no worker; broker log:\n%s",
                  itest_log (broker));

    char model [512], out [512], local [512];
    s_fixture ("pass_conv_bn_relu.onnx", model, sizeof model);
    snprintf (out, sizeof out, "%s/out.onnx", itest_tmpdir ());
    snprintf (local, sizeof local, "%s/local.onnx", itest_tmpdir ());
    itest_rxq (&s_run, 60000, "--broker", endpoint, "--json", "optimize", model, "-O2", "-o", out);
    cr_assert_eq (s_run.code, 0, "rxq optimize: %s\n%s", s_run.err, s_run.out);
    cr_assert (strstr (s_run.out, "\"fuse-conv-bn\":2"), "%s", s_run.out);
    cr_assert (strstr (s_run.out, "\"state\":\"succeeded\""), "%s", s_run.out);
    cr_assert_eq (s_count (out, "BatchNormalization"), 0);
    cr_assert_eq (s_count (out, "Conv"), 2);

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

    //  Usage errors do not reach the broker.
    itest_rxq (&s_run, 10000, "optimize", model, "-o", out, "--enable", "no-such-pass");
    cr_assert_eq (s_run.code, 64);
    itest_rxq (&s_run, 10000, "optimize", model, "-O3", "-o", out);
    cr_assert_eq (s_run.code, 64);
}
