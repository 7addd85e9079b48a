/*  test_cluster: the programs end to end, as real processes. A real
 *  redis-server on a free loopback port, rxq-broker, two rxq-worker
 *  processes on the default OpenCL device (PoCL here), driven by the `rxq`
 *  CLI as a process: bench.device through submit --wait --json, status,
 *  result, jobs, workers, watch and cancel; bad input and an unreachable
 *  broker; start-up failures of the worker and the broker; rxq up / down.
 *  Every test cleans up what it started in its fixture's .fini.
 */
#include "itest.h"

//  Outputs of `rxq` runs (static: an assertion that fails frees nothing).
static itest_run_t s_run, s_run2;

static void
s_fini (void)
{
    itest_cleanup ();
}


//  Counts occurrences of NEEDLE in TEXT.
static int
s_count (const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr (text, needle); p; p = strstr (p + 1, needle))
        n++;
    return n;
}

//  True when PID is gone or a zombie (rxq up daemons are not our children).
static bool
s_pid_gone (int pid)
{
    if (kill (pid, 0) < 0)
        return true;
    char path [64], buf [512];
    snprintf (path, sizeof path, "/proc/%d/stat", pid);
    itest_read_file (path, buf, sizeof buf);
    const char *paren = strrchr (buf, ')');
    return !paren || paren [2] == 'Z' || paren [2] == 'X';
}

//  Asserts that JSON holds the bench.device figures of a successful job.
static void
s_check_bench_json (const char *json)
{
    double gbps = 0, gflops = 0, err = 1, tol = 1e-3;
    cr_assert (itest_json_number (json, "gbps", &gbps), "no GB/s figure in: %.2000s", json);
    cr_assert (itest_json_number (json, "gflops", &gflops), "no GFLOPS figure in: %.2000s", json);
    cr_assert (itest_json_number (json, "max_rel_err", &err), "no max_rel_err in: %.2000s", json);
    itest_json_number (json, "tolerance", &tol);
    cr_assert_gt (gbps, 0.0, "copy bandwidth %g GB/s", gbps);
    cr_assert_gt (gflops, 0.0, "SGEMM %g GFLOPS", gflops);
    cr_assert_lt (err, tol, "SGEMM max rel. error %g over %g", err, tol);
    cr_assert_leq (tol, 1e-3, "the tolerance reported is itself sane (%g)", tol);
}

TestSuite (cluster, .fini = s_fini, .timeout = 150);

Test (cluster, bench_device_status_jobs_workers)
{
    itest_cluster_t c;
    itest_cluster_up (&c, 2);
    itest_run_t *r = &s_run;

    itest_rxq (r, 90000, "--broker", c.endpoint, "submit", "bench.device", "copy_mb=8",
               "gemm_n=128", "reps=2", "--wait", "--json");
    cr_assert_eq (r->code, 0, "submit --wait exit %d\nstdout: %s\nstderr: %s", r->code, r->out, r->err);
    cr_assert_eq (r->out [0], '{', "--json prints one JSON object: %s", r->out);
    cr_assert_eq (itest_lines (r->out), 1, "one JSON document on stdout: %s", r->out);
    cr_assert (strstr (r->out, "\"state\":\"succeeded\""), "%s", r->out);
    cr_assert (strstr (r->err, "accepted"), "progress goes to stderr: %s", r->err);
    cr_assert_eq (s_count (r->err, "accepted"), 1, "accepted once: %s", r->err);
    s_check_bench_json (r->out);
    char id [80];
    cr_assert (itest_json_string (r->out, "id", id, sizeof id), "%s", r->out);

    itest_rxq (r, 10000, "--broker", c.endpoint, "status", id);
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, "state:") && strstr (r->out, "succeeded"), "%s", r->out);
    cr_assert (strstr (r->out, id), "%s", r->out);

    itest_rxq (r, 10000, "--broker", c.endpoint, "--json", "status", id);
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, "\"state\":\"succeeded\""), "%s", r->out);
    s_check_bench_json (r->out);

    itest_rxq (r, 10000, "--broker", c.endpoint, "result", id);
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, "GB/s") && strstr (r->out, "GFLOPS"),
               "human result has the figures: %s", r->out);

    itest_rxq (r, 10000, "--broker", c.endpoint, "jobs");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, "STATE") && strstr (r->out, id), "%s", r->out);

    itest_rxq (r, 10000, "--broker", c.endpoint, "jobs", "--state", "succeeded", "--limit", "5", "--json");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert_eq (r->out [0], '[', "%s", r->out);
    cr_assert (strstr (r->out, id), "%s", r->out);

    itest_rxq (r, 10000, "--broker", c.endpoint, "workers");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, "w1") && strstr (r->out, "w2"), "%s", r->out);
    itest_rxq (r, 10000, "--broker", c.endpoint, "workers", "--json");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert_eq (r->out [0], '[', "%s", r->out);
    cr_assert_eq (s_count (r->out, "\"name\":\"w1\""), 1, "%s", r->out);
    cr_assert_eq (s_count (r->out, "\"name\":\"w2\""), 1, "%s", r->out);

    //  Errors from the broker: exit 2, one line.
    itest_rxq (r, 10000, "--broker", c.endpoint, "status", "no-such-job");
    cr_assert_eq (r->code, 2, "%s", r->err);
    itest_assert_one_error_line (r);
    itest_rxq (r, 10000, "--broker", c.endpoint, "cancel", id);
    cr_assert_eq (r->code, 2, "cancel of a finished job: %s", r->err);
    itest_assert_one_error_line (r);

    //  5.6: the state filter. A job leased straight after its submission
    //  must not stay listed as queued.
    itest_rxq (r, 10000, "--broker", c.endpoint, "jobs", "--state", "queued", "--json");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert_null (strstr (r->out, id), "the filter applies: %s", r->out);
}

Test (cluster, watch_cancel_retry)
{
    itest_cluster_t c;
    itest_cluster_up (&c, 2);
    itest_run_t *r = &s_run;

    itest_rxq (r, 10000, "--broker", c.endpoint, "submit", "noop", "sleep_ms=60000");
    cr_assert_eq (r->code, 0, "%s", r->err);
    char id [80];
    cr_assert_eq (sscanf (r->out, "%79s", id), 1);

    //  A second job, so the failure exit code is checked too.
    itest_run_t *f = &s_run2;
    itest_rxq (f, 30000, "--broker", c.endpoint, "submit", "noop", "fail=true",
               "--max-attempts", "1", "--wait");
    cr_assert_eq (f->code, 1, "a failing job exits 1: %s", f->err);
    cr_assert (strstr (f->err, "rxq: job "), "%s", f->err);

    char program [512];
    itest_program ("rxq", program, sizeof program);
    char *argv [] = { program, "--broker", c.endpoint, "watch", id, NULL };
    itest_proc_t *watch = itest_spawn ("watch", argv, NULL);
    int64_t deadline = itest_now_ms () + 15000;
    char log [65536] = "";
    while (itest_now_ms () < deadline) {
        itest_read_file (watch->log, log, sizeof log);
        if (strstr (log, "progress"))
            break;
        itest_sleep_ms (100);
    }
    cr_assert (strstr (log, "progress"), "watch shows progress: %s", log);
    cr_assert (strstr (log, "leased by"), "watch shows the lease: %s", log);

    itest_rxq (r, 10000, "--broker", c.endpoint, "cancel", id);
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, id), "%s", r->out);

    int status = 0;
    cr_assert (itest_wait_exit (watch, 15000, &status), "watch ends when the job does");
    cr_assert (WIFEXITED (status));
    cr_assert_eq (WEXITSTATUS (status), 1, "a cancelled job exits 1; log: %s", itest_log (watch));
    cr_assert (strstr (itest_log (watch), "cancelled"), "%s", itest_log (watch));

    itest_rxq (r, 10000, "--broker", c.endpoint, "--json", "status", id);
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, "\"state\":\"cancelled\""), "%s", r->out);

    itest_rxq (r, 10000, "--broker", c.endpoint, "result", id);
    cr_assert_eq (r->code, 1, "result of a cancelled job exits 1: %s", r->err);

    itest_rxq (r, 10000, "--broker", c.endpoint, "--json", "retry", id);
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, "\"state\":\"queued\"") || strstr (r->out, "\"state\":\"leased\""),
               "%s", r->out);
    itest_rxq (r, 10000, "--broker", c.endpoint, "cancel", id);
    cr_assert_eq (r->code, 0, "%s", r->err);
}

//  Routing by capability from the CLI: a job needing what no worker offers
//  waits queued with the reason in `rxq status`, and fails once its queue
//  timeout passes; one the workers can run goes through.
Test (cluster, require_and_queue_timeout)
{
    itest_cluster_t c;
    itest_cluster_up (&c, 1);
    itest_run_t *r = &s_run;

    itest_rxq (r, 10000, "--broker", c.endpoint, "submit", "noop",
               "--require", "tag=no-such-tag", "--queue-timeout-ms", "3000");
    cr_assert_eq (r->code, 0, "%s", r->err);
    char id [80];
    cr_assert_eq (sscanf (r->out, "%79s", id), 1);
    itest_sleep_ms (500);
    itest_rxq (r, 10000, "--broker", c.endpoint, "status", id);
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, "queued"), "%s", r->out);
    cr_assert (strstr (r->out, "no-such-tag"), "the reason names the tag: %s", r->out);

    itest_rxq (r, 20000, "--broker", c.endpoint, "watch", id);
    cr_assert_eq (r->code, 1, "a job that timed out in the queue exits 1: %s%s", r->out, r->err);
    itest_rxq (r, 10000, "--broker", c.endpoint, "--json", "status", id);
    cr_assert (strstr (r->out, "\"state\":\"failed\""), "%s", r->out);
    cr_assert (strstr (r->out, "RXQ_E_TIMEOUT"), "%s", r->out);

    //  The worker is PoCL's CPU device: type=cpu and OpenCL C 1.2 match.
    itest_rxq (r, 30000, "--broker", c.endpoint, "submit", "noop", "--require", "type=cpu",
               "--require", "opencl_c=1.2", "--require", "min_global_mem=1M", "--wait");
    cr_assert_eq (r->code, 0, "%s", r->err);
}

TestSuite (cli, .fini = s_fini, .timeout = 60);

Test (cli, bad_input_is_a_usage_error)
{
    //  Nothing listens here: validation is local, before any network.
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", itest_free_port ());
    itest_run_t *r = &s_run;

    itest_rxq (r, 10000, "--broker", endpoint, "submit", "no.such.kind");
    cr_assert_eq (r->code, 64, "unknown kind: %d %s", r->code, r->err);
    itest_assert_one_error_line (r);
    cr_assert (strstr (r->err, "no.such.kind"), "%s", r->err);
    cr_assert_lt (r->secs, 2.0);

    itest_rxq (r, 10000, "--broker", endpoint, "submit", "bench.device", "copy_mb=lots");
    cr_assert_eq (r->code, 64, "ill-typed: %d %s", r->code, r->err);
    itest_assert_one_error_line (r);
    cr_assert (strstr (r->err, "copy_mb"), "names the parameter: %s", r->err);

    itest_rxq (r, 10000, "--broker", endpoint, "submit", "bench.device", "gemm_n=1");
    cr_assert_eq (r->code, 64, "out of range: %d %s", r->code, r->err);
    itest_assert_one_error_line (r);

    itest_rxq (r, 10000, "--broker", endpoint, "submit", "noop", "nosuchparam=1");
    cr_assert_eq (r->code, 64, "%s", r->err);
    itest_assert_one_error_line (r);

    itest_rxq (r, 10000, "--broker", endpoint, "submit", "noop", "sleep_ms=1", "sleep_ms=2");
    cr_assert_eq (r->code, 64, "duplicate parameter: %s", r->err);
    itest_assert_one_error_line (r);

    itest_rxq (r, 10000, "--broker", endpoint, "submit", "noop", "--priority", "urgent");
    cr_assert_eq (r->code, 64, "%s", r->err);
    itest_assert_one_error_line (r);

    itest_rxq (r, 10000, "--broker", endpoint, "frobnicate");
    cr_assert_eq (r->code, 64, "%s", r->err);
    itest_assert_one_error_line (r);

    itest_rxq (r, 10000, "--broker", endpoint, "status", "--bogus", "x");
    cr_assert_eq (r->code, 64, "%s", r->err);
    itest_assert_one_error_line (r);

    itest_rxq (r, 10000, "--help");
    cr_assert_eq (r->code, 0);
    cr_assert (strstr (r->out, "Exit codes") && strstr (r->out, "64"), "%s", r->out);
    itest_rxq (r, 10000, "submit", "--help");
    cr_assert_eq (r->code, 0);
    cr_assert (strstr (r->out, "bench.device") && strstr (r->out, "copy_mb"), "%s", r->out);
}

Test (cli, unreachable_broker_exits_3)
{
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", itest_free_port ());
    itest_run_t *r = &s_run;

    itest_rxq (r, 10000, "--broker", endpoint, "--timeout", "1", "status", "x");
    cr_assert_eq (r->code, 3, "%d %s", r->code, r->err);
    itest_assert_one_error_line (r);
    cr_assert (strstr (r->err, endpoint), "names the endpoint: %s", r->err);
    cr_assert_geq (r->secs, 0.9);
    cr_assert_lt (r->secs, 4.0, "gives up within the timeout (%.1f s)", r->secs);

    //  The default timeout, and the endpoint from RXQ_BROKER.
    char env_broker [80];
    snprintf (env_broker, sizeof env_broker, "RXQ_BROKER=%s", endpoint);
    char *env [] = { env_broker, NULL };
    itest_rxq_env (r, 15000, env, "submit", "noop", NULL);
    cr_assert_eq (r->code, 3, "%d %s", r->code, r->err);
    itest_assert_one_error_line (r);
    cr_assert (strstr (r->err, "within 5 s"), "%s", r->err);
    cr_assert_lt (r->secs, 8.0, "%.1f s", r->secs);

    //  watch too, although it waits for ever once the broker has answered.
    itest_rxq (r, 15000, "--broker", endpoint, "watch", "x");
    cr_assert_eq (r->code, 3, "%d %s", r->code, r->err);
    cr_assert_lt (r->secs, 8.0, "%.1f s", r->secs);
}

TestSuite (programs, .fini = s_fini, .timeout = 60);

Test (programs, worker_without_device_exits_nonzero)
{
    char empty [512];
    snprintf (empty, sizeof empty, "%s/no-icd", itest_tmpdir ());
    mkdir (empty, 0755);
    char env_icd [600];
    snprintf (env_icd, sizeof env_icd, "OCL_ICD_VENDORS=%s", empty);
    char *env [] = { env_icd, NULL };
    int port = itest_free_port ();

    itest_proc_t *w = itest_start_worker ("noicd", port, NULL, env);
    int status = 0;
    cr_assert (itest_wait_exit (w, 20000, &status), "a worker without OpenCL exits");
    cr_assert (WIFEXITED (status) && WEXITSTATUS (status) != 0, "status %d", status);
    cr_assert (strstr (itest_log (w), "device"), "says what is wrong: %s", itest_log (w));

    char *extra [] = { "--device", "nomatch", NULL };
    w = itest_start_worker ("nomatch", port, extra, NULL);
    cr_assert (itest_wait_exit (w, 20000, &status), "a worker whose selector matches nothing exits");
    cr_assert (WIFEXITED (status) && WEXITSTATUS (status) != 0, "status %d", status);
    cr_assert (strstr (itest_log (w), "nomatch"), "names the selector: %s", itest_log (w));
}

Test (programs, broker_port_in_use_exits_nonzero)
{
    int redis_port = itest_free_port ();
    itest_start_redis (redis_port);
    int port = 0;
    int fd = itest_listen (&port);
    itest_proc_t *b = itest_start_broker (port, redis_port);
    int status = 0;
    bool exited = itest_wait_exit (b, 15000, &status);
    close (fd);
    cr_assert (exited, "a broker whose port is taken exits; log: %s", itest_log (b));
    cr_assert (WIFEXITED (status) && WEXITSTATUS (status) != 0, "status %d", status);
    char port_text [16];
    snprintf (port_text, sizeof port_text, "%d", port);
    cr_assert (strstr (itest_log (b), port_text), "names the port %s: %s", port_text, itest_log (b));
}

Test (programs, broker_without_redis_exits_nonzero)
{
    int redis_port = itest_free_port ();
    int port = itest_free_port ();
    itest_proc_t *b = itest_start_broker (port, redis_port);
    int status = 0;
    cr_assert (itest_wait_exit (b, 20000, &status),
               "a broker that cannot reach Redis refuses to start; log: %s", itest_log (b));
    cr_assert (WIFEXITED (status) && WEXITSTATUS (status) != 0, "status %d", status);
    char port_text [16];
    snprintf (port_text, sizeof port_text, "%d", redis_port);
    const char *log = itest_log (b);
    cr_assert ((strstr (log, "Redis") || strstr (log, "redis")) && strstr (log, port_text),
               "names Redis and its address: %s", log);
}

TestSuite (local, .fini = s_fini, .timeout = 150);

Test (local, up_submit_down)
{
    char run_dir [512];
    snprintf (run_dir, sizeof run_dir, "%s/run", itest_tmpdir ());
    itest_track_run_dir (run_dir);
    int redis_port = itest_free_port ();
    int port = itest_free_port ();
    while (port == redis_port)
        port = itest_free_port ();
    char rp [16], bp [16], endpoint [64];
    snprintf (rp, sizeof rp, "%d", redis_port);
    snprintf (bp, sizeof bp, "%d", port);
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    itest_run_t *r = &s_run;

    itest_rxq (r, 90000, "up", "--run-dir", run_dir, "--redis-port", rp, "--port", bp,
               "--workers", "2", "--ready-timeout", "60");
    cr_assert_eq (r->code, 0, "rxq up exit %d\nstdout: %s\nstderr: %s", r->code, r->out, r->err);
    int pids [4];
    const char *names [] = { "redis", "broker", "worker-1", "worker-2" };
    for (int i = 0; i < 4; i++) {
        char file [600], text [32];
        snprintf (file, sizeof file, "%s/%s.pid", run_dir, names [i]);
        itest_read_file (file, text, sizeof text);
        pids [i] = atoi (text);
        cr_assert_gt (pids [i], 1, "%s has a pid file", names [i]);
        cr_assert_not (s_pid_gone (pids [i]), "%s runs", names [i]);
    }

    itest_rxq (r, 30000, "up", "--run-dir", run_dir, "--redis-port", rp, "--port", bp);
    cr_assert_eq (r->code, 4, "a second rxq up on the same run dir: %d %s", r->code, r->err);
    itest_assert_one_error_line (r);
    cr_assert (strstr (r->err, "already running"), "%s", r->err);

    itest_rxq (r, 90000, "--broker", endpoint, "submit", "bench.device", "copy_mb=8",
               "gemm_n=64", "reps=1", "--wait");
    cr_assert_eq (r->code, 0, "exit %d\nstdout: %s\nstderr: %s", r->code, r->out, r->err);
    cr_assert (strstr (r->out, "GB/s") && strstr (r->out, "GFLOPS"), "%s", r->out);

    itest_rxq (r, 10000, "--broker", endpoint, "workers", "--json");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert_eq (s_count (r->out, "\"name\":\"worker-"), 2, "%s", r->out);

    itest_rxq (r, 60000, "down", "--run-dir", run_dir);
    cr_assert_eq (r->code, 0, "rxq down: %d %s %s", r->code, r->out, r->err);
    for (int i = 0; i < 4; i++) {
        cr_assert (s_pid_gone (pids [i]), "%s (pid %d) stopped", names [i], pids [i]);
        char file [600];
        snprintf (file, sizeof file, "%s/%s.pid", run_dir, names [i]);
        cr_assert_neq (access (file, F_OK), 0, "%s removed", file);
    }
    itest_rxq (r, 10000, "down", "--run-dir", run_dir);
    cr_assert_eq (r->code, 0);
    cr_assert (strstr (r->out, "no cluster"), "%s", r->out);
}

Test (local, up_refuses_a_busy_port)
{
    char run_dir [512];
    snprintf (run_dir, sizeof run_dir, "%s/run", itest_tmpdir ());
    itest_track_run_dir (run_dir);
    int busy = 0;
    int fd = itest_listen (&busy);
    int other = itest_free_port ();
    while (other == busy)
        other = itest_free_port ();
    char busy_text [16], other_text [16];
    snprintf (busy_text, sizeof busy_text, "%d", busy);
    snprintf (other_text, sizeof other_text, "%d", other);
    itest_run_t *r = &s_run;

    itest_rxq (r, 30000, "up", "--run-dir", run_dir, "--redis-port", other_text, "--port", busy_text);
    cr_assert_eq (r->code, 4, "broker port busy: %d %s", r->code, r->err);
    itest_assert_one_error_line (r);
    cr_assert (strstr (r->err, busy_text), "names the port: %s", r->err);

    itest_rxq (r, 30000, "up", "--run-dir", run_dir, "--redis-port", busy_text, "--port", other_text);
    cr_assert_eq (r->code, 4, "redis port busy: %d %s", r->code, r->err);
    itest_assert_one_error_line (r);
    cr_assert (strstr (r->err, busy_text), "names the port: %s", r->err);
    close (fd);

    itest_rxq (r, 10000, "down", "--run-dir", run_dir);
    cr_assert_eq (r->code, 0);
    cr_assert (strstr (r->out, "no cluster"), "nothing was left running: %s", r->out);
}
