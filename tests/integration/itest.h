/*  itest: helpers for integration tests that run the real programs.
 *
 *  Header-only (static functions), since tests/CMakeLists.txt builds each
 *  test_*.c as its own executable. Finds rxq, rxq-broker and rxq-worker in
 *  $RXQ_BIN_DIR (set by ctest), picks free loopback ports, spawns
 *  redis-server, the broker and workers as child processes with their
 *  output in log files under a temporary directory, runs the `rxq` CLI as a
 *  process with a deadline and captures its stdout, stderr and exit code,
 *  and kills everything it started in itest_cleanup (call it from a
 *  fixture's .fini so it runs even when an assertion fails). Children also
 *  get PR_SET_PDEATHSIG, so they die with the test process if it crashes.
 */
#ifndef ITEST_H
#define ITEST_H
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "rxq_client.h"
#include "cmn_proto.h"
#include "support/tst_redis.h"

#define ITEST_MAX_PROCS 16
//  Helpers are static, and a test file need not use them all.
#define ITEST_FN static __attribute__ ((unused))

//  A process started by a test.
typedef struct {
    pid_t pid;              // 0 once reaped
    char name [32];         // "redis", "broker", "worker-1": its log's name
    char log [512];         // its stdout and stderr
} itest_proc_t;

//  Everything a test started; itest_cleanup undoes it.
typedef struct {
    char dir [256];                     // temporary directory, "" until made
    itest_proc_t procs [ITEST_MAX_PROCS];   // spawned processes
    int nprocs;                         // entries used in procs
    char run_dirs [4][512];             // rxq up run dirs to `rxq down`
    int nrun_dirs;                      // entries used in run_dirs
} itest_t;

static itest_t itest;

//  Output of one `rxq` run.
typedef struct {
    int code;               // exit code, or -1 when killed at the deadline
    char out [65536];       // stdout, NUL-terminated (cut when longer)
    char err [8192];        // stderr, NUL-terminated (cut when longer)
    double secs;            // wall time
} itest_run_t;

ITEST_FN int64_t
itest_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ITEST_FN void
itest_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
        ;
}

//  Directory of the programs under test.
ITEST_FN const char *
itest_bin_dir (void)
{
    const char *dir = getenv ("RXQ_BIN_DIR");
    cr_assert (dir && *dir, "RXQ_BIN_DIR is not set (run the test through ctest)");
    return dir;
}

//  Full path of program NAME in RXQ_BIN_DIR, into a static buffer per call
//  site's use; skips the test when it has not been built.
ITEST_FN const char *
itest_program (const char *name, char *buf, size_t size)
{
    snprintf (buf, size, "%s/%s", itest_bin_dir (), name);
    if (access (buf, X_OK) != 0)
        cr_skip_test ("%s has not been built", buf);
    return buf;
}

//  Creates the test's temporary directory.
ITEST_FN const char *
itest_tmpdir (void)
{
    if (!itest.dir [0]) {
        snprintf (itest.dir, sizeof itest.dir, "/tmp/rxq-itest-XXXXXX");
        cr_assert_not_null (mkdtemp (itest.dir), "mkdtemp: %s", strerror (errno));
    }
    return itest.dir;
}

//  A TCP port on 127.0.0.1 that nothing listens on right now
//  (tests/support/tst_redis.h).
ITEST_FN int
itest_free_port (void)
{
    int port = tst_free_port ();
    cr_assert_gt (port, 0, "no free loopback port");
    return port;
}

//  A socket listening on 127.0.0.1:PORT (0: any), to make a port busy.
//  Returns the fd; *PORT gets the port.
ITEST_FN int
itest_listen (int *port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    cr_assert_geq (fd, 0);
    struct sockaddr_in sa;
    memset (&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons ((uint16_t) *port);
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    cr_assert_eq (bind (fd, (struct sockaddr *) &sa, sizeof sa), 0);
    cr_assert_eq (listen (fd, 4), 0);
    socklen_t len = sizeof sa;
    getsockname (fd, (struct sockaddr *) &sa, &len);
    *port = ntohs (sa.sin_port);
    return fd;
}

//  Starts ARGV (NULL-terminated) with stdout and stderr in TMPDIR/NAME.log
//  and ENV (NULL, or "KEY=VALUE" strings, NULL-terminated) added to the
//  environment. Returns the process entry.
ITEST_FN itest_proc_t *
itest_spawn (const char *name, char *const argv [], char *const env [])
{
    cr_assert_lt (itest.nprocs, ITEST_MAX_PROCS);
    itest_proc_t *p = &itest.procs [itest.nprocs++];
    memset (p, 0, sizeof *p);
    snprintf (p->name, sizeof p->name, "%s", name);
    char dir [256];
    snprintf (dir, sizeof dir, "%s", itest_tmpdir ());
    snprintf (p->log, sizeof p->log, "%s/%s.log", dir, name);
    int fd = open (p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq (fd, 0, "%s: %s", p->log, strerror (errno));
    fflush (NULL);
    pid_t pid = fork ();
    cr_assert_geq (pid, 0);
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        setpgid (0, 0);
        int devnull = open ("/dev/null", O_RDONLY);
        dup2 (devnull, 0);
        dup2 (fd, 1);
        dup2 (fd, 2);
        for (int i = 0; env && env [i]; i++)
            putenv (env [i]);
        execvp (argv [0], argv);
        fprintf (stderr, "exec %s: %s\n", argv [0], strerror (errno));
        _exit (127);
    }
    close (fd);
    p->pid = pid;
    return p;
}

//  Waits up to TIMEOUT_MS for P to exit. Returns true with *STATUS (the
//  waitpid status) when it has.
ITEST_FN bool
itest_wait_exit (itest_proc_t *p, int timeout_ms, int *status)
{
    int64_t deadline = itest_now_ms () + timeout_ms;
    while (p->pid > 0) {
        int st = 0;
        pid_t r = waitpid (p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            if (status)
                *status = st;
            return true;
        }
        if (itest_now_ms () >= deadline)
            return false;
        itest_sleep_ms (20);
    }
    return true;
}

//  Stops P: SIGTERM, 5 s, then SIGKILL; reaps it.
ITEST_FN void
itest_kill (itest_proc_t *p)
{
    if (p->pid <= 0)
        return;
    kill (p->pid, SIGTERM);
    if (!itest_wait_exit (p, 5000, NULL)) {
        kill (p->pid, SIGKILL);
        itest_wait_exit (p, 5000, NULL);
    }
}

//  Reads up to SIZE - 1 bytes of FILE into BUF.
ITEST_FN void
itest_read_file (const char *file, char *buf, size_t size)
{
    buf [0] = 0;
    FILE *f = fopen (file, "r");
    if (!f)
        return;
    size_t n = fread (buf, 1, size - 1, f);
    buf [n] = 0;
    fclose (f);
}

//  The log of P (the last 4000 bytes), for assertion messages.
ITEST_FN const char *
itest_log (const itest_proc_t *p)
{
    static char buf [8192];
    char all [65536];
    itest_read_file (p->log, all, sizeof all);
    size_t n = strlen (all);
    const char *tail = n > 4000 ? all + n - 4000 : all;
    memcpy (buf, tail, strlen (tail) + 1);
    return buf;
}

//  Runs `rxq ARGS...` (NULL-terminated list) with a deadline of TIMEOUT_MS;
//  fills R. ENV as in itest_spawn.
ITEST_FN void
itest_rxq_env (itest_run_t *r, int timeout_ms, char *const env [], ...)
{
    char program [512];
    itest_program ("rxq", program, sizeof program);
    char *argv [64];
    int argc = 0;
    argv [argc++] = program;
    va_list ap;
    va_start (ap, env);
    char *arg;
    while ((arg = va_arg (ap, char *)) != NULL && argc < 63)
        argv [argc++] = arg;
    va_end (ap);
    argv [argc] = NULL;
    char out [512], err [512];
    snprintf (out, sizeof out, "%s/rxq.out", itest_tmpdir ());
    snprintf (err, sizeof err, "%s/rxq.err", itest_tmpdir ());
    int ofd = open (out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int efd = open (err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert (ofd >= 0 && efd >= 0);
    int64_t start = itest_now_ms ();
    fflush (NULL);
    pid_t pid = fork ();
    cr_assert_geq (pid, 0);
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open ("/dev/null", O_RDONLY);
        dup2 (devnull, 0);
        dup2 (ofd, 1);
        dup2 (efd, 2);
        for (int i = 0; env && env [i]; i++)
            putenv (env [i]);
        execv (program, argv);
        _exit (127);
    }
    close (ofd);
    close (efd);
    itest_proc_t p = { pid, "rxq", "" };
    int status = 0;
    if (itest_wait_exit (&p, timeout_ms, &status))
        r->code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
    else {
        kill (pid, SIGKILL);
        itest_wait_exit (&p, 5000, NULL);
        r->code = -1;
    }
    r->secs = (double) (itest_now_ms () - start) / 1000.0;
    itest_read_file (out, r->out, sizeof r->out);
    itest_read_file (err, r->err, sizeof r->err);
}

#define itest_rxq(r, timeout_ms, ...) itest_rxq_env ((r), (timeout_ms), NULL, __VA_ARGS__, NULL)

//  Number of lines in TEXT.
ITEST_FN int
itest_lines (const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    if (*text && text [strlen (text) - 1] != '\n')
        n++;
    return n;
}

//  Asserts that R's stderr is exactly one line starting "rxq: ".
#define itest_assert_one_error_line(r) do { \
    cr_assert_eq (itest_lines ((r)->err), 1, "one line on stderr, got: %s", (r)->err); \
    cr_assert_eq (strncmp ((r)->err, "rxq: ", 5), 0, "stderr starts with 'rxq: ': %s", (r)->err); \
} while (0)

//  Waits until Redis on 127.0.0.1:PORT answers PING. Returns true if it did.
ITEST_FN bool
itest_wait_redis (int port, int timeout_ms)
{
    int64_t deadline = itest_now_ms () + timeout_ms;
    while (itest_now_ms () < deadline) {
        struct timeval tv = { 0, 200000 };
        redisContext *c = redisConnectWithTimeout ("127.0.0.1", port, tv);
        if (c && !c->err) {
            redisReply *reply = redisCommand (c, "PING");
            bool ok = reply && reply->type == REDIS_REPLY_STATUS;
            if (reply)
                freeReplyObject (reply);
            redisFree (c);
            if (ok)
                return true;
        }
        else
        if (c)
            redisFree (c);
        itest_sleep_ms (50);
    }
    return false;
}

//  Starts redis-server on 127.0.0.1:PORT with AOF on, no RDB snapshots, its
//  data in the temporary directory, and waits for PING.
ITEST_FN itest_proc_t *
itest_start_redis (int port)
{
    char port_text [16], dir [512];
    snprintf (port_text, sizeof port_text, "%d", port);
    snprintf (dir, sizeof dir, "%s/redis-%d", itest_tmpdir (), port);
    mkdir (dir, 0755);
    char *argv [] = { "redis-server", "--port", port_text, "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "yes", "--dir", dir,
                      "--daemonize", "no", NULL };
    itest_proc_t *p = itest_spawn ("redis", argv, NULL);
    cr_assert (itest_wait_redis (port, 10000), "redis-server did not start on port %d:\n%s",
               port, itest_log (p));
    return p;
}

//  Starts rxq-broker on tcp://127.0.0.1:PORT with Redis at REDIS_PORT.
//  Does not wait (see itest_wait_workers).
ITEST_FN itest_proc_t *
itest_start_broker (int port, int redis_port)
{
    char program [512], bind [64], redis [64];
    itest_program ("rxq-broker", program, sizeof program);
    snprintf (bind, sizeof bind, "tcp://127.0.0.1:%d", port);
    snprintf (redis, sizeof redis, "redis://127.0.0.1:%d", redis_port);
    char *argv [] = { program, "--bind", bind, "--redis", redis, "--log-level", "debug", NULL };
    return itest_spawn ("broker", argv, NULL);
}

//  As itest_start_broker, with a blob store (--data-dir) in the temporary
//  directory, for jobs on models put in the store (docs/store.md).
ITEST_FN itest_proc_t *
itest_start_broker_store (int port, int redis_port)
{
    char program [512], bind [64], redis [64], data [512];
    itest_program ("rxq-broker", program, sizeof program);
    snprintf (bind, sizeof bind, "tcp://127.0.0.1:%d", port);
    snprintf (redis, sizeof redis, "redis://127.0.0.1:%d", redis_port);
    snprintf (data, sizeof data, "%s/data-%d", itest_tmpdir (), port);
    char *argv [] = { program, "--bind", bind, "--redis", redis, "--data-dir", data,
                      "--log-level", "debug", NULL };
    return itest_spawn ("broker", argv, NULL);
}

//  Starts rxq-worker NAME against the broker on BROKER_PORT with
//  --capacity 1, its program cache in the temporary directory, and EXTRA
//  (NULL-terminated, may be NULL) appended to its arguments.
ITEST_FN itest_proc_t *
itest_start_worker (const char *name, int broker_port, char *const extra [], char *const env [])
{
    char program [512], endpoint [64], cache [512];
    itest_program ("rxq-worker", program, sizeof program);
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", broker_port);
    snprintf (cache, sizeof cache, "%s/cache", itest_tmpdir ());
    char *argv [32] = { program, "--broker", endpoint, "--name", (char *) name,
                        "--capacity", "1", "--cache-dir", cache };
    int argc = 9;
    for (int i = 0; extra && extra [i] && argc < 31; i++)
        argv [argc++] = extra [i];
    argv [argc] = NULL;
    return itest_spawn (name, argv, env);
}

//  Asks the broker on PORT for its workers until it lists at least COUNT,
//  or TIMEOUT_MS passes. Returns how many it listed last (-1: no answer).
ITEST_FN int
itest_wait_workers (int port, int count, int timeout_ms)
{
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new (endpoint, &err);
    cr_assert_not_null (client);
    int listed = -1;
    int64_t deadline = itest_now_ms () + timeout_ms;
    while (itest_now_ms () < deadline) {
        cmn_body_t final;
        if (rxq_client_request (client, RXQ_CMD_WORKERS, NULL, 0, NULL, NULL, 1000,
                                &final, &err) == 0) {
            const msgpack_object *workers = NULL;
            listed = cmn_codec_get_array (&final.root, "workers", &workers, NULL) == 0
                   ? (int) workers->via.array.size : 0;
            cmn_body_free (&final);
            if (listed >= count)
                break;
        }
        itest_sleep_ms (100);
    }
    rxq_client_destroy (&client);
    return listed;
}

//  Finds "...NAME...": NUMBER in JSON TEXT (NAME inside a key) and parses
//  the number. Returns false when absent.
ITEST_FN bool
itest_json_number (const char *text, const char *name, double *out)
{
    for (const char *p = strstr (text, name); p; p = strstr (p + 1, name)) {
        const char *q = p + strlen (name);
        while (*q && *q != '"' && *q != ',' && *q != '{' && *q != ':')
            q++;
        if (q [0] != '"' || q [1] != ':')
            continue;
        char *end = NULL;
        double v = strtod (q + 2, &end);
        if (end != q + 2) {
            *out = v;
            return true;
        }
    }
    return false;
}

//  Copies the string value of the first "KEY":"VALUE" in JSON TEXT.
ITEST_FN bool
itest_json_string (const char *text, const char *key, char *out, size_t size)
{
    char pattern [128];
    snprintf (pattern, sizeof pattern, "\"%s\":\"", key);
    const char *p = strstr (text, pattern);
    if (!p)
        return false;
    p += strlen (pattern);
    const char *end = strchr (p, '"');
    if (!end || (size_t) (end - p) >= size)
        return false;
    memcpy (out, p, (size_t) (end - p));
    out [end - p] = 0;
    return true;
}

//  Remembers RUN_DIR so itest_cleanup runs `rxq down` on it.
ITEST_FN void
itest_track_run_dir (const char *run_dir)
{
    if (itest.nrun_dirs < 4)
        snprintf (itest.run_dirs [itest.nrun_dirs++], sizeof itest.run_dirs [0], "%s", run_dir);
}

//  Kills every pid listed in RUN_DIR's *.pid files (rxq up daemons are not
//  our children, so PDEATHSIG does not cover them).
ITEST_FN void
itest_kill_pid_files (const char *run_dir)
{
    static const char *names [] = { "worker-1", "worker-2", "worker-3", "worker-4",
                                    "broker", "redis", NULL };
    for (int i = 0; names [i]; i++) {
        char file [600], text [32];
        snprintf (file, sizeof file, "%s/%s.pid", run_dir, names [i]);
        itest_read_file (file, text, sizeof text);
        int pid = atoi (text);
        if (pid > 1)
            kill (pid, SIGKILL);
    }
}

//  Stops everything the test started, newest first, and removes the
//  temporary directory. For a fixture's .fini.
ITEST_FN void
itest_cleanup (void)
{
    for (int i = 0; i < itest.nrun_dirs; i++) {
        char program [512];
        snprintf (program, sizeof program, "%s/rxq", itest_bin_dir ());
        pid_t pid = fork ();
        if (pid == 0) {
            int devnull = open ("/dev/null", O_WRONLY);
            dup2 (devnull, 1);
            execl (program, program, "down", "--run-dir", itest.run_dirs [i], (char *) NULL);
            _exit (127);
        }
        if (pid > 0) {
            itest_proc_t p = { pid, "down", "" };
            if (!itest_wait_exit (&p, 20000, NULL)) {
                kill (pid, SIGKILL);
                itest_wait_exit (&p, 2000, NULL);
            }
        }
        itest_kill_pid_files (itest.run_dirs [i]);
    }
    for (int i = itest.nprocs - 1; i >= 0; i--)
        itest_kill (&itest.procs [i]);
    if (itest.dir [0] && strncmp (itest.dir, "/tmp/rxq-itest-", 15) == 0
    &&  !getenv ("RXQ_ITEST_KEEP")) {
        char cmd [600];
        snprintf (cmd, sizeof cmd, "rm -rf '%s'", itest.dir);
        if (system (cmd) != 0)
            fprintf (stderr, "could not remove %s\n", itest.dir);
    }
    memset (&itest, 0, sizeof itest);
}

//  A running cluster: Redis, broker and WORKERS workers named w1, w2, ...
//  on free loopback ports. Returns the broker.
typedef struct {
    int redis_port;
    int port;
    char endpoint [64];     // "tcp://127.0.0.1:PORT"
} itest_cluster_t;

ITEST_FN itest_proc_t *
itest_cluster_up (itest_cluster_t *c, int workers)
{
    c->redis_port = itest_free_port ();
    c->port = itest_free_port ();
    while (c->port == c->redis_port)
        c->port = itest_free_port ();
    snprintf (c->endpoint, sizeof c->endpoint, "tcp://127.0.0.1:%d", c->port);
    itest_start_redis (c->redis_port);
    itest_proc_t *broker = itest_start_broker (c->port, c->redis_port);
    for (int i = 0; i < workers; i++) {
        char name [16];
        snprintf (name, sizeof name, "w%d", i + 1);
        itest_start_worker (name, c->port, NULL, NULL);
    }
    int listed = itest_wait_workers (c->port, workers, 45000);
    cr_assert_eq (listed, workers, "broker lists %d of %d workers; broker log:\n%s",
                  listed, workers, itest_log (broker));
    return broker;
}

#endif
