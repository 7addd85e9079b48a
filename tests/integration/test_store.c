/*  test_store: the blob store end to end, as real processes (redis-server,
 *  rxq-broker --data-dir, the `rxq` CLI): a generated sparse file over
 *  1 GiB goes through `rxq put` and `rxq get`, comes back with the same
 *  SHA-256, and neither the broker nor the CLI ever holds more than a few
 *  chunks of it: their peak resident set (the broker's VmHWM from /proc,
 *  the CLI's ru_maxrss from getrusage of the reaped child) stays under
 *  64 MiB. Then the errors a user can make (issue 5, "Bad input").
 */
#include "itest.h"
#include "cmn_blob.h"
#include <sys/resource.h>

static itest_run_t s_run;

static void
s_fini (void)
{
    itest_cleanup ();
}

TestSuite (store, .fini = s_fini, .timeout = 300);

//  Peak resident set of PID in KiB (VmHWM), -1 when unreadable.
static long
s_vmhwm_kb (pid_t pid)
{
    char path [64], buf [4096];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    itest_read_file (path, buf, sizeof buf);
    const char *p = strstr (buf, "VmHWM:");
    return p ? strtol (p + 6, NULL, 10) : -1;
}

//  Largest peak resident set of any reaped child so far, in KiB.
static long
s_children_maxrss_kb (void)
{
    struct rusage ru;
    getrusage (RUSAGE_CHILDREN, &ru);
    return ru.ru_maxrss;
}

static itest_proc_t *
s_store_up (char *endpoint, size_t size, char *data_dir, size_t dsize)
{
    int redis_port = itest_free_port ();
    int port = itest_free_port ();
    while (port == redis_port)
        port = itest_free_port ();
    snprintf (endpoint, size, "tcp://127.0.0.1:%d", port);
    snprintf (data_dir, dsize, "%s/data", itest_tmpdir ());
    itest_start_redis (redis_port);
    char program [512], redis [64];
    itest_program ("rxq-broker", program, sizeof program);
    snprintf (redis, sizeof redis, "redis://127.0.0.1:%d", redis_port);
    char *argv [] = { program, "--bind", endpoint, "--redis", redis, "--data-dir", data_dir,
                      NULL };
    itest_proc_t *broker = itest_spawn ("broker", argv, NULL);
    //  Ready once it answers: a get of an unknown blob is refused.
    int64_t end = itest_now_ms () + 10000;
    do {
        itest_rxq (&s_run, 5000, "--broker", endpoint, "--timeout", "0.5", "get",
                   "0000000000000000000000000000000000000000000000000000000000000000",
                   "-o", "/dev/null");
    } while (s_run.code == 3 && itest_now_ms () < end);
    cr_assert_eq (s_run.code, 2, "broker not ready: %s\n%s", s_run.err, itest_log (broker));
    return broker;
}

//  The peak RSS that shows a process streamed the file rather than held
//  it. Under AddressSanitizer freed memory waits in a quarantine (256 MB
//  by default) before reuse, so the processes this test starts get a
//  small one; they then peak at about 28 MB, as without ASan.
#define S_RSS_LIMIT_KB (64 * 1024)

Test (store, one_gib_sparse_file_streams_through_put_and_get)
{
#if defined (__SANITIZE_ADDRESS__)
    char asan [512];
    const char *was = getenv ("ASAN_OPTIONS");
    snprintf (asan, sizeof asan, "%s%squarantine_size_mb=4:thread_local_quarantine_size_kb=64",
              was ? was : "", was && *was ? ":" : "");
    setenv ("ASAN_OPTIONS", asan, 1);
#endif
    char endpoint [64], data_dir [512];
    itest_proc_t *broker = s_store_up (endpoint, sizeof endpoint, data_dir, sizeof data_dir);
    long base_rss = s_children_maxrss_kb ();

    //  1 GiB + 12345 bytes, sparse, with a few marked bytes so it is not
    //  all zeros (and a chunk boundary is crossed by one of them).
    char in [512], out [512];
    snprintf (in, sizeof in, "%s/big.bin", itest_tmpdir ());
    snprintf (out, sizeof out, "%s/big.out", itest_tmpdir ());
    uint64_t size = (1ull << 30) + 12345;
    int fd = open (in, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq (fd, 0);
    cr_assert_eq (ftruncate (fd, (off_t) size), 0);
    static const uint64_t marks [] = { 0, (1u << 20) - 2, 123456789, (1ull << 30) + 12340 };
    for (size_t i = 0; i < sizeof marks / sizeof marks [0]; i++)
        cr_assert_eq (pwrite (fd, "rxq!", 4, (off_t) marks [i]), 4);
    close (fd);
    char want [CMN_BLOB_HEX_LEN + 1];
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_blob_hash_file (in, want, NULL, &err), 0, "%s", err.msg);

    itest_rxq (&s_run, 240000, "--broker", endpoint, "--timeout", "30", "put", in);
    cr_assert_eq (s_run.code, 0, "rxq put: %s\n%s", s_run.err, itest_log (broker));
    cr_assert_eq (strncmp (s_run.out, want, 64), 0, "put printed %s, want %s", s_run.out, want);
    cr_assert (strstr (s_run.err, "uploaded"), "%s", s_run.err);
    double put_secs = s_run.secs;
    long put_rss = s_children_maxrss_kb ();
    char stored [1024];
    snprintf (stored, sizeof stored, "%s/blobs/%.2s/%s", data_dir, want, want);
    struct stat st;
    cr_assert_eq (stat (stored, &st), 0, "no blob at %s", stored);
    cr_assert_eq ((uint64_t) st.st_size, size);

    //  Again: the broker has it, nothing is sent.
    itest_rxq (&s_run, 60000, "--broker", endpoint, "put", in);
    cr_assert_eq (s_run.code, 0, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "already in the store"), "%s", s_run.err);

    itest_rxq (&s_run, 240000, "--broker", endpoint, "--timeout", "30", "get", want, "-o", out);
    cr_assert_eq (s_run.code, 0, "rxq get: %s\n%s", s_run.err, itest_log (broker));
    double get_secs = s_run.secs;
    long get_rss = s_children_maxrss_kb ();
    char got [CMN_BLOB_HEX_LEN + 1];
    uint64_t got_size = 0;
    cr_assert_eq (cmn_blob_hash_file (out, got, &got_size, &err), 0, "%s", err.msg);
    cr_assert_str_eq (got, want);
    cr_assert_eq (got_size, size);

    long broker_hwm = s_vmhwm_kb (broker->pid);
    cr_log_info ("1 GiB + 12345 B: put %.1f s (%.0f MB/s), get %.1f s (%.0f MB/s); peak RSS: "
                 "broker %ld KiB, rxq put/get %ld/%ld KiB (before: %ld)", put_secs,
                 (double) size / put_secs / 1e6, get_secs, (double) size / get_secs / 1e6,
                 broker_hwm, put_rss, get_rss, base_rss);
    fprintf (stderr, "store: put %.1f s (%.0f MB/s), get %.1f s (%.0f MB/s); peak RSS broker "
             "%ld KiB, rxq %ld KiB\n", put_secs, (double) size / put_secs / 1e6, get_secs,
             (double) size / get_secs / 1e6, broker_hwm, get_rss > put_rss ? get_rss : put_rss);
    cr_assert_gt (broker_hwm, 0);
    cr_assert_lt (broker_hwm, S_RSS_LIMIT_KB, "broker peak RSS %ld KiB", broker_hwm);
    cr_assert_lt (put_rss, S_RSS_LIMIT_KB, "rxq put peak RSS %ld KiB", put_rss);
    cr_assert_lt (get_rss, S_RSS_LIMIT_KB, "rxq get peak RSS %ld KiB", get_rss);
    unlink (in);
    unlink (out);
}

Test (store, bad_input_gets_a_clear_error_and_exit_code)
{
    char endpoint [64], data_dir [512];
    s_store_up (endpoint, sizeof endpoint, data_dir, sizeof data_dir);
    char out [512];
    snprintf (out, sizeof out, "%s/never.bin", itest_tmpdir ());

    itest_rxq (&s_run, 10000, "--broker", endpoint, "put", "/nonexistent/model.gguf");
    cr_assert_eq (s_run.code, 5, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "/nonexistent/model.gguf"), "%s", s_run.err);

    itest_rxq (&s_run, 10000, "--broker", endpoint, "get",
               "1111111111111111111111111111111111111111111111111111111111111111", "-o", out);
    cr_assert_eq (s_run.code, 2, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "no blob"), "%s", s_run.err);
    cr_assert_neq (access (out, F_OK), 0);

    itest_rxq (&s_run, 10000, "--broker", endpoint, "get", "no-such-job", "-o", out);
    cr_assert_eq (s_run.code, 2, "%s", s_run.err);

    itest_rxq (&s_run, 10000, "--broker", endpoint, "get",
               "1111111111111111111111111111111111111111111111111111111111111111");
    cr_assert_eq (s_run.code, 64, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "-o FILE"), "%s", s_run.err);

    itest_rxq (&s_run, 10000, "--broker", endpoint, "put");
    cr_assert_eq (s_run.code, 64, "%s", s_run.err);

    //  Writing into a directory that does not exist.
    char small [512];
    snprintf (small, sizeof small, "%s/small.bin", itest_tmpdir ());
    FILE *f = fopen (small, "w");
    fputs ("hello", f);
    fclose (f);
    itest_rxq (&s_run, 10000, "--broker", endpoint, "put", small);
    cr_assert_eq (s_run.code, 0, "%s", s_run.err);
    char hash [80];
    snprintf (hash, sizeof hash, "%.64s", s_run.out);
    itest_rxq (&s_run, 10000, "--broker", endpoint, "get", hash, "-o", "/nonexistent/dir/x");
    cr_assert_eq (s_run.code, 5, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "/nonexistent/dir/x"), "%s", s_run.err);
    //  And a broker without a store says how to get one.
    int port = itest_free_port ();
    char ep2 [64];
    snprintf (ep2, sizeof ep2, "tcp://127.0.0.1:%d", port);
    int rport = itest_free_port ();
    itest_start_redis (rport);
    itest_start_broker (port, rport);
    int64_t end = itest_now_ms () + 10000;
    do
        itest_rxq (&s_run, 5000, "--broker", ep2, "--timeout", "0.5", "put", small);
    while (s_run.code == 3 && itest_now_ms () < end);
    cr_assert_eq (s_run.code, 2, "%s", s_run.err);
    cr_assert (strstr (s_run.err, "--data-dir"), "%s", s_run.err);
}
