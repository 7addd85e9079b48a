/*  rxq_cluster: see rxq_cluster.h. */
#include "rxq_cluster.h"
#include "rxq_client.h"
#include "cmn_codec.h"
#include "cmn_proto.h"
#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

//  Most workers rxq up starts.
#define MAX_WORKERS 64
//  Lines of a component's log printed when it fails.
#define LOG_TAIL_LINES 12

//  One process of the cluster.
typedef struct {
    char name [32];             // "redis", "broker", "worker-3": file names
    const char *program;        // executable's base name, to recognise its pid
    pid_t pid;                  // 0 when not started
    bool child;                 // our child (rxq up), so waitpid applies
    bool exited;                // seen exiting
    int status;                 // waitpid status once exited
} s_proc_t;

//  snprintf into a path buffer; paths too long are cut, and then fail to
//  open with a message naming them.
static void
s_path (char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (buf, size, fmt, ap);
    va_end (ap);
}

void
rxq_cluster_opts_default (rxq_cluster_opts_t *opts)
{
    assert (opts);
    memset (opts, 0, sizeof *opts);
    const char *dir = getenv ("RXQ_RUN_DIR");
    opts->run_dir = dir && *dir ? dir : ".rxq";
    opts->workers = RXQ_CLUSTER_WORKERS_DEFAULT;
    opts->redis_port = RXQ_CLUSTER_REDIS_PORT_DEFAULT;
    opts->port = RXQ_CLUSTER_BROKER_PORT_DEFAULT;
    opts->ready_ms = RXQ_CLUSTER_READY_MS_DEFAULT;
}

static int64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
        ;
}

int
rxq_cluster_parse_redis_url (const char *url, char *host, size_t host_size, int *port,
                             int *db, cmn_err_t *err)
{
    const char *p = url;
    if (strncmp (p, "redis://", 8) == 0)
        p += 8;
    const char *colon = strrchr (p, ':');
    const char *slash = strchr (p, '/');
    size_t hlen = colon ? (size_t) (colon - p) : slash ? (size_t) (slash - p) : strlen (p);
    if (hlen == 0 || hlen >= host_size || strchr (p, '@'))
        return cmn_err_set (err, RXQ_E_INVAL,
                            "invalid Redis URL '%s'; expected redis://HOST:PORT[/DB]", url);
    memcpy (host, p, hlen);
    host [hlen] = 0;
    *port = 6379;
    *db = 0;
    char *end = NULL;
    if (colon) {
        long v = strtol (colon + 1, &end, 10);
        if (end == colon + 1 || v < 1 || v > 65535 || (*end && *end != '/'))
            return cmn_err_set (err, RXQ_E_INVAL,
                                "invalid port in Redis URL '%s'; expected redis://HOST:PORT[/DB]", url);
        *port = (int) v;
        slash = *end == '/' ? end : NULL;
    }
    if (slash && slash [1]) {
        long v = strtol (slash + 1, &end, 10);
        if (end == slash + 1 || *end || v < 0 || v > 1000000)
            return cmn_err_set (err, RXQ_E_INVAL,
                                "invalid database in Redis URL '%s'; expected redis://HOST:PORT[/DB]", url);
        *db = (int) v;
    }
    return 0;
}

int
rxq_cluster_port_free (int port, const char *what, cmn_err_t *err)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cmn_err_set (err, RXQ_E_IO, "socket: %s", strerror (errno));
    //  Redis and ZeroMQ both bind with SO_REUSEADDR, so a port held only by
    //  connections in TIME_WAIT is free for them, and must be for us too.
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset (&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons ((uint16_t) port);
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int rc = bind (fd, (struct sockaddr *) &sa, sizeof sa);
    int e = errno;
    if (rc == 0)
        rc = listen (fd, 1), e = errno;
    close (fd);
    if (rc == 0)
        return 0;
    if (e == EADDRINUSE)
        return cmn_err_set (err, RXQ_E_ADDRINUSE, "port %d (%s) is already in use on 127.0.0.1",
                            port, what);
    return cmn_err_set (err, RXQ_E_IO, "cannot bind port %d (%s) on 127.0.0.1: %s",
                        port, what, strerror (e));
}

//  Creates DIR and its parents (mode 0755).
static int
s_mkdirs (const char *dir, cmn_err_t *err)
{
    char path [PATH_MAX];
    if (strlen (dir) >= sizeof path)
        return cmn_err_set (err, RXQ_E_INVAL, "run dir path is too long");
    s_path (path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir (path, 0755) < 0 && errno != EEXIST)
                return cmn_err_set (err, RXQ_E_IO, "cannot create %s: %s", path, strerror (errno));
            *p = '/';
        }
    if (mkdir (path, 0755) < 0 && errno != EEXIST)
        return cmn_err_set (err, RXQ_E_IO, "cannot create %s: %s", path, strerror (errno));
    return 0;
}

//  True when PID runs PROGRAM (its command line names it) and is not a
//  zombie, so a recycled pid or an exited process counts as gone.
static bool
s_alive (pid_t pid, const char *program)
{
    if (pid <= 0 || kill (pid, 0) < 0)
        return errno == EPERM;
    char path [64], buf [4096];
    s_path (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return true;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf [n] = 0;
    const char *close_paren = strrchr (buf, ')');
    if (close_paren && close_paren [1] == ' ' && (close_paren [2] == 'Z' || close_paren [2] == 'X'))
        return false;
    s_path (path, sizeof path, "/proc/%d/cmdline", (int) pid);
    f = fopen (path, "r");
    if (!f)
        return true;
    n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    for (size_t i = 0; i < n; i++)
        if (buf [i] == 0)
            buf [i] = ' ';
    buf [n] = 0;
    return strstr (buf, program) != NULL;
}

//  Reads the pid in FILE; 0 when absent or unreadable.
static pid_t
s_read_pid (const char *file)
{
    FILE *f = fopen (file, "r");
    if (!f)
        return 0;
    long pid = 0;
    if (fscanf (f, "%ld", &pid) != 1 || pid <= 0 || pid > INT_MAX)
        pid = 0;
    fclose (f);
    return (pid_t) pid;
}

//  Which program a pid file name belongs to, or NULL for other files.
static const char *
s_program_of (const char *file)
{
    size_t n = strlen (file);
    if (n < 5 || strcmp (file + n - 4, ".pid") != 0)
        return NULL;
    if (strcmp (file, "redis.pid") == 0)
        return "redis-server";
    if (strcmp (file, "broker.pid") == 0)
        return "rxq-broker";
    if (strncmp (file, "worker-", 7) == 0)
        return "rxq-worker";
    return NULL;
}

//  Loads the processes named by RUN_DIR's pid files into PROCS (at most
//  MAX; stale pid files are removed). Returns how many are alive.
static int
s_load (const char *run_dir, s_proc_t *procs, int max)
{
    DIR *d = opendir (run_dir);
    if (!d)
        return 0;
    int count = 0;
    struct dirent *de;
    while ((de = readdir (d)) != NULL) {
        const char *program = s_program_of (de->d_name);
        if (!program || strlen (de->d_name) - 4 >= sizeof procs [0].name)
            continue;
        char file [PATH_MAX];
        s_path (file, sizeof file, "%s/%s", run_dir, de->d_name);
        pid_t pid = s_read_pid (file);
        if (!s_alive (pid, program)) {
            unlink (file);
            continue;
        }
        if (count == max)
            continue;
        s_proc_t *p = &procs [count++];
        memset (p, 0, sizeof *p);
        snprintf (p->name, sizeof p->name, "%.*s", (int) (strlen (de->d_name) - 4), de->d_name);
        p->program = program;
        p->pid = pid;
    }
    closedir (d);
    return count;
}

//  Finds an rxq program: $RXQ_BIN_DIR, then the directory of the running
//  rxq executable, then the PATH (returning the bare name for execvp).
static void
s_find_program (const char *name, char *out, size_t size)
{
    const char *env = getenv ("RXQ_BIN_DIR");
    if (env && *env) {
        s_path (out, size, "%s/%s", env, name);
        if (access (out, X_OK) == 0)
            return;
    }
    char self [PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self [n] = 0;
        char *slash = strrchr (self, '/');
        if (slash) {
            *slash = 0;
            s_path (out, size, "%s/%s", self, name);
            if (access (out, X_OK) == 0)
                return;
        }
    }
    snprintf (out, size, "%s", name);
}

//  Starts ARGV as a daemon of the cluster: own session, stdin from
//  /dev/null, stdout and stderr to RUN_DIR/<name>.log, pid in
//  RUN_DIR/<name>.pid.
static int
s_spawn (s_proc_t *p, const char *run_dir, char *const argv [], cmn_err_t *err)
{
    char log [PATH_MAX], pidfile [PATH_MAX];
    s_path (log, sizeof log, "%s/%s.log", run_dir, p->name);
    s_path (pidfile, sizeof pidfile, "%s/%s.pid", run_dir, p->name);
    int logfd = open (log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logfd < 0)
        return cmn_err_set (err, RXQ_E_IO, "cannot create %s: %s", log, strerror (errno));
    int nullfd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    fflush (NULL);
    pid_t pid = fork ();
    if (pid < 0) {
        close (logfd);
        if (nullfd >= 0)
            close (nullfd);
        return cmn_err_set (err, RXQ_E_IO, "fork: %s", strerror (errno));
    }
    if (pid == 0) {
        //  Only async-signal-safe calls until exec: the parent may have
        //  threads (ZeroMQ's) whose locks a child must not touch.
        setsid ();
        if (nullfd >= 0)
            dup2 (nullfd, 0);
        dup2 (logfd, 1);
        dup2 (logfd, 2);
        execvp (argv [0], argv);
        static const char msg [] = "rxq up: cannot execute ";
        ssize_t w = write (2, msg, sizeof msg - 1);
        w = write (2, argv [0], strlen (argv [0]));
        w = write (2, "\n", 1);
        (void) w;
        _exit (127);
    }
    close (logfd);
    if (nullfd >= 0)
        close (nullfd);
    p->pid = pid;
    p->child = true;
    FILE *f = fopen (pidfile, "w");
    if (!f || fprintf (f, "%d\n", (int) pid) < 0 || fclose (f) != 0)
        return cmn_err_set (err, RXQ_E_IO, "cannot write %s: %s", pidfile, strerror (errno));
    return 0;
}

//  True when P has exited (reaping it when it is our child).
static bool
s_exited (s_proc_t *p)
{
    if (p->pid <= 0 || p->exited)
        return true;
    if (p->child) {
        int status;
        pid_t r = waitpid (p->pid, &status, WNOHANG);
        if (r == p->pid || (r < 0 && errno == ECHILD)) {
            p->exited = true;
            p->status = r == p->pid ? status : 0;
        }
        return p->exited;
    }
    if (!s_alive (p->pid, p->program))
        p->exited = true;
    return p->exited;
}

//  Sends SIG to the group's live processes, then waits up to WAIT_MS for
//  them all to exit. Returns how many are still alive.
static int
s_signal_group (s_proc_t *procs, int count, int sig, int wait_ms)
{
    for (int i = 0; i < count; i++)
        if (!s_exited (&procs [i]))
            kill (procs [i].pid, sig);
    int64_t deadline = s_mono_ms () + wait_ms;
    while (true) {
        int alive = 0;
        for (int i = 0; i < count; i++)
            alive += !s_exited (&procs [i]);
        if (alive == 0 || s_mono_ms () >= deadline)
            return alive;
        s_sleep_ms (20);
    }
}

//  Stops PROCS group by group (workers, broker, Redis), SIGKILL after
//  WAIT_MS, removes their pid files; reports to OUT when not NULL.
static int
s_stop (const char *run_dir, s_proc_t *procs, int count, int wait_ms, FILE *out)
{
    static const char *order [] = { "rxq-worker", "rxq-broker", "redis-server" };
    int failed = 0;
    for (int g = 0; g < 3; g++) {
        s_proc_t group [MAX_WORKERS + 2];
        int n = 0;
        for (int i = 0; i < count && n < MAX_WORKERS + 2; i++)
            if (strcmp (procs [i].program, order [g]) == 0)
                group [n++] = procs [i];
        if (n == 0)
            continue;
        bool killed = false;
        if (s_signal_group (group, n, SIGTERM, wait_ms) > 0) {
            killed = true;
            failed += s_signal_group (group, n, SIGKILL, 2000);
        }
        for (int i = 0; i < n; i++) {
            char pidfile [PATH_MAX];
            s_path (pidfile, sizeof pidfile, "%s/%s.pid", run_dir, group [i].name);
            if (group [i].exited)
                unlink (pidfile);
            if (out)
                fprintf (out, "stopped %-10s (pid %d)%s\n", group [i].name, (int) group [i].pid,
                         !group [i].exited ? ": STILL RUNNING"
                         : killed ? " with SIGKILL after SIGTERM timed out" : "");
        }
    }
    return failed;
}

void
rxq_cluster_print_log_tail (const char *run_dir, const char *name)
{
    char path [PATH_MAX];
    s_path (path, sizeof path, "%s/%s.log", run_dir, name);
    FILE *f = fopen (path, "r");
    if (!f) {
        fprintf (stderr, "  (no log at %s)\n", path);
        return;
    }
    fseek (f, 0, SEEK_END);
    long size = ftell (f);
    long start = size > 8192 ? size - 8192 : 0;
    fseek (f, start, SEEK_SET);
    char buf [8193];
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf [n] = 0;
    int lines = 0;
    char *p = buf + n;
    if (p > buf && p [-1] == '\n')
        p--;
    while (p > buf) {
        if (p [-1] == '\n' && ++lines == LOG_TAIL_LINES)
            break;
        p--;
    }
    if (!*p) {
        fprintf (stderr, "  (%s is empty)\n", path);
        return;
    }
    fprintf (stderr, "  last lines of %s:\n", path);
    for (char *line = strtok (p, "\n"); line; line = strtok (NULL, "\n"))
        fprintf (stderr, "  | %s\n", line);
}

//  Describes how P exited, into BUF.
static void
s_exit_text (char *buf, size_t size, const s_proc_t *p)
{
    if (WIFEXITED (p->status))
        snprintf (buf, size, "exited with status %d", WEXITSTATUS (p->status));
    else
    if (WIFSIGNALED (p->status))
        snprintf (buf, size, "was killed by signal %d", WTERMSIG (p->status));
    else
        snprintf (buf, size, "exited");
}

//  Waits until Redis at HOST:PORT answers PING. Returns 0, 1 when
//  REDIS (may be NULL) exited, -1 at DEADLINE.
static int
s_wait_redis (const char *host, int port, s_proc_t *redis, int64_t deadline)
{
    while (s_mono_ms () < deadline) {
        if (redis && s_exited (redis))
            return 1;
        struct timeval tv = { 0, 300000 };
        redisContext *c = redisConnectWithTimeout (host, port, tv);
        if (c && !c->err) {
            redisSetTimeout (c, tv);
            redisReply *reply = redisCommand (c, "PING");
            bool ok = reply && reply->type == REDIS_REPLY_STATUS && strcmp (reply->str, "PONG") == 0;
            if (reply)
                freeReplyObject (reply);
            redisFree (c);
            if (ok)
                return 0;
        }
        else
        if (c)
            redisFree (c);
        s_sleep_ms (100);
    }
    return -1;
}

//  Looks for NAME among the broker's workers (by name).
static bool
s_listed (const msgpack_object *workers, const char *name)
{
    for (uint32_t i = 0; workers && i < workers->via.array.size; i++)
        if (cmn_codec_str_eq (cmn_codec_find (&workers->via.array.ptr [i], "name"), name))
            return true;
    return false;
}

int
rxq_cluster_up (const rxq_cluster_opts_t *opts, FILE *out, char *failed, size_t failed_size,
                cmn_err_t *err)
{
    assert (opts && opts->run_dir && out && failed && failed_size > 0);
    failed [0] = 0;
    if (opts->workers < 0 || opts->workers > MAX_WORKERS)
        return cmn_err_set (err, RXQ_E_INVAL, "--workers must be between 0 and %d", MAX_WORKERS);
    char redis_host [256] = "127.0.0.1";
    int redis_port = opts->redis_port, redis_db = 0;
    if (opts->redis_url && rxq_cluster_parse_redis_url (opts->redis_url, redis_host,
                                                          sizeof redis_host, &redis_port,
                                                          &redis_db, err))
        return -1;
    if (s_mkdirs (opts->run_dir, err))
        return -1;
    char run_dir [PATH_MAX];
    if (!realpath (opts->run_dir, run_dir))
        return cmn_err_set (err, RXQ_E_IO, "cannot resolve %s: %s", opts->run_dir, strerror (errno));

    s_proc_t running [MAX_WORKERS + 2];
    if (s_load (run_dir, running, MAX_WORKERS + 2) > 0)
        return cmn_err_set (err, RXQ_E_STATE,
                            "a cluster from %s is already running (%s, pid %d); "
                            "stop it with: rxq down --run-dir %s",
                            run_dir, running [0].name, (int) running [0].pid, run_dir);
    if (!opts->redis_url && rxq_cluster_port_free (redis_port, "redis", err))
        return -1;
    if (rxq_cluster_port_free (opts->port, "broker", err))
        return -1;

    s_proc_t procs [MAX_WORKERS + 2];
    memset (procs, 0, sizeof procs);
    int count = 0;
    int rc = 0;
    rxq_client_t *client = NULL;
    int64_t deadline = s_mono_ms () + opts->ready_ms;
    char port_text [16], redis_url [300], endpoint [64], program [PATH_MAX];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", opts->port);
    if (opts->redis_url)
        snprintf (redis_url, sizeof redis_url, "%s", opts->redis_url);
    else
        snprintf (redis_url, sizeof redis_url, "redis://127.0.0.1:%d", redis_port);

    //  Redis first: the broker refuses to start without it.
    s_proc_t *redis = NULL;
    if (!opts->redis_url) {
        char data_dir [PATH_MAX];
        s_path (data_dir, sizeof data_dir, "%s/redis", run_dir);
        if (s_mkdirs (data_dir, err))
            return -1;
        snprintf (port_text, sizeof port_text, "%d", redis_port);
        redis = &procs [count++];
        snprintf (redis->name, sizeof redis->name, "redis");
        redis->program = "redis-server";
        const char *server = getenv ("RXQ_REDIS_SERVER");
        char *argv [] = { (char *) (server && *server ? server : "redis-server"),
                          "--port", port_text, "--bind", "127.0.0.1",
                          "--appendonly", "yes", "--appendfsync", "everysec",
                          //  The AOF is the durable copy (docs/redis.md);
                          //  RDB snapshots on top of it would fork and
                          //  compress the whole data set every minute
                          //  under load, for nothing.
                          "--save", "",
                          "--dir", data_dir, "--daemonize", "no", NULL };
        if ((rc = s_spawn (redis, run_dir, argv, err)) != 0)
            goto fail;
    }
    int r = s_wait_redis (redis_host, redis_port, redis, deadline);
    if (r != 0) {
        char how [64] = "did not answer PING";
        if (r == 1)
            s_exit_text (how, sizeof how, redis);
        rc = cmn_err_set (err, r == 1 ? RXQ_E_UNAVAILABLE : RXQ_E_TIMEOUT,
                          "redis at %s:%d %s%s", redis_host, redis_port, how,
                          r == 1 ? " during start-up" : " within the start-up timeout");
        if (redis)
            snprintf (failed, failed_size, "%s", "redis");
        goto fail_reported;
    }
    fprintf (out, "redis     ready at %s:%d%s\n", redis_host, redis_port,
             opts->redis_url ? " (external)" : "");

    s_proc_t *broker = &procs [count++];
    snprintf (broker->name, sizeof broker->name, "broker");
    broker->program = "rxq-broker";
    s_find_program ("rxq-broker", program, sizeof program);
    char bind [64];
    snprintf (bind, sizeof bind, "tcp://127.0.0.1:%d", opts->port);
    {
        //  The blob store (rxq put / get / quantize) lives in the run dir.
        char data_dir [PATH_MAX];
        s_path (data_dir, sizeof data_dir, "%s/data", run_dir);
        char *argv [] = { program, "--bind", bind, "--redis", redis_url, "--data-dir", data_dir,
                          NULL };
        if ((rc = s_spawn (broker, run_dir, argv, err)) != 0)
            goto fail;
    }
    s_find_program ("rxq-worker", program, sizeof program);
    for (int i = 0; i < opts->workers; i++) {
        s_proc_t *w = &procs [count++];
        snprintf (w->name, sizeof w->name, "worker-%d", i + 1);
        w->program = "rxq-worker";
        char *argv [12];
        char capacity [16];
        int a = 0;
        argv [a++] = program;
        argv [a++] = "--broker";
        argv [a++] = endpoint;
        argv [a++] = "--name";
        argv [a++] = w->name;
        if (opts->capacity > 0) {
            snprintf (capacity, sizeof capacity, "%d", opts->capacity);
            argv [a++] = "--capacity";
            argv [a++] = capacity;
        }
        if (opts->no_device)
            argv [a++] = "--no-device";
        else
        if (opts->device) {
            argv [a++] = "--device";
            argv [a++] = (char *) opts->device;
        }
        argv [a] = NULL;
        if ((rc = s_spawn (w, run_dir, argv, err)) != 0)
            goto fail;
    }

    //  Ready when the broker lists every worker; a component that exits
    //  meanwhile fails the start at once.
    client = rxq_client_new (endpoint, err);
    if (!client) {
        rc = -1;
        goto fail;
    }
    bool broker_answered = false;
    int listed = 0;
    cmn_body_t final;
    memset (&final, 0, sizeof final);
    while (true) {
        for (int i = 0; i < count; i++)
            if (s_exited (&procs [i])) {
                char how [64];
                s_exit_text (how, sizeof how, &procs [i]);
                rc = cmn_err_set (err, RXQ_E_UNAVAILABLE, "%s %s during start-up",
                                  procs [i].name, how);
                snprintf (failed, failed_size, "%s", procs [i].name);
                goto fail_reported;
            }
        cmn_body_free (&final);
        cmn_err_t rerr;
        if (rxq_client_request (client, RXQ_CMD_WORKERS, NULL, 0, NULL, NULL, 1000,
                                &final, &rerr) == 0) {
            broker_answered = true;
            const msgpack_object *workers = NULL;
            listed = cmn_codec_get_array (&final.root, "workers", &workers, NULL) == 0
                   ? (int) workers->via.array.size : 0;
            if (listed >= opts->workers)
                break;
        }
        if (s_mono_ms () >= deadline) {
            if (!broker_answered) {
                rc = cmn_err_set (err, RXQ_E_TIMEOUT, "broker at %s did not answer within %d s",
                                  endpoint, opts->ready_ms / 1000);
                snprintf (failed, failed_size, "%s", "broker");
            }
            else {
                const msgpack_object *workers = NULL;
                cmn_codec_get_array (&final.root, "workers", &workers, NULL);
                const char *missing = procs [count - 1].name;
                for (int i = 0; i < count; i++)
                    if (strcmp (procs [i].program, "rxq-worker") == 0
                    &&  !s_listed (workers, procs [i].name)) {
                        missing = procs [i].name;
                        break;
                    }
                rc = cmn_err_set (err, RXQ_E_TIMEOUT,
                                  "only %d of %d workers registered with the broker within %d s "
                                  "(%s is missing)", listed, opts->workers,
                                  opts->ready_ms / 1000, missing);
                snprintf (failed, failed_size, "%s", missing);
            }
            cmn_body_free (&final);
            goto fail_reported;
        }
        s_sleep_ms (100);
    }
    cmn_body_free (&final);
    rxq_client_destroy (&client);
    fprintf (out, "broker    ready at %s (pid %d)\n", endpoint, (int) broker->pid);
    fprintf (out, "workers   %d registered\n", listed);
    fprintf (out, "run dir   %s (logs: <name>.log, pids: <name>.pid)\n", run_dir);
    if (opts->port != RXQ_CLUSTER_BROKER_PORT_DEFAULT)
        fprintf (out, "use it with: export RXQ_BROKER=%s\n", endpoint);
    return 0;

fail:
    //  ERR holds the message; nothing has been printed yet.
    (void) rc;
fail_reported:
    rxq_client_destroy (&client);
    s_stop (run_dir, procs, count, 5000, NULL);
    return -1;
}

int
rxq_cluster_down (const char *run_dir, FILE *out, cmn_err_t *err)
{
    assert (run_dir && out);
    s_proc_t procs [MAX_WORKERS + 2];
    int count = s_load (run_dir, procs, MAX_WORKERS + 2);
    if (count == 0) {
        fprintf (out, "no cluster is running from %s\n", run_dir);
        return 0;
    }
    int failed = s_stop (run_dir, procs, count, RXQ_CLUSTER_STOP_MS, out);
    if (failed)
        return cmn_err_set (err, RXQ_E_STATE, "%d process%s of %s could not be stopped",
                            failed, failed == 1 ? "" : "es", run_dir);
    return 0;
}
