/*  tst_redis: start and stop a private redis-server for tests.
 *
 *  Header-only (each test file is its own executable). The server listens
 *  on 127.0.0.1 at a free port, keeps its files in a fresh temporary
 *  directory, has AOF on (as in production) and RDB snapshots off.
 */
#ifndef TST_REDIS_H
#define TST_REDIS_H
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t pid;          // server process, 0 when not running
    int port;           // TCP port on 127.0.0.1
    char dir [256];     // its working directory
    char url [64];      // redis://127.0.0.1:PORT
} tst_redis_t;

//  A TCP port on 127.0.0.1 that was free a moment ago.
static inline int
tst_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { 0 };
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind (fd, (struct sockaddr *) &a, sizeof a) == 0
    &&  getsockname (fd, (struct sockaddr *) &a, &len) == 0)
        port = ntohs (a.sin_port);
    if (fd >= 0)
        close (fd);
    return port;
}

static inline void
tst_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep (&ts, NULL);
}

//  Starts redis-server on PORT (0: a free one). Returns 0 once it answers
//  PING, -1 when it did not start within 10 s.
static inline int
tst_redis_start_port (tst_redis_t *r, int port)
{
    memset (r, 0, sizeof *r);
    snprintf (r->dir, sizeof r->dir, "/tmp/rxq-test-redis-XXXXXX");
    if (!mkdtemp (r->dir))
        return -1;
    r->port = port ? port : tst_free_port ();
    snprintf (r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    r->pid = fork ();
    if (r->pid == 0) {
        char portbuf [16];
        snprintf (portbuf, sizeof portbuf, "%d", r->port);
        //  Nothing of the test's may stay open in the server: a pipe it
        //  inherited would keep the test's reader waiting after it exits.
        if (!freopen ("/dev/null", "w", stdout) || !freopen ("/dev/null", "w", stderr))
            _exit (127);
        for (int fd = 3; fd < 1024; fd++)
            close (fd);
        execlp ("redis-server", "redis-server", "--port", portbuf, "--bind", "127.0.0.1",
                "--dir", r->dir, "--save", "", "--appendonly", "yes",
                "--appendfsync", "everysec", (char *) NULL);
        _exit (127);
    }
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnect ("127.0.0.1", r->port);
        if (c && !c->err) {
            redisReply *rep = redisCommand (c, "PING");
            bool ok = rep && rep->type == REDIS_REPLY_STATUS;
            if (rep)
                freeReplyObject (rep);
            redisFree (c);
            if (ok)
                return 0;
        }
        else
        if (c)
            redisFree (c);
        tst_sleep_ms (50);
    }
    return -1;
}

static inline int
tst_redis_start (tst_redis_t *r)
{
    return tst_redis_start_port (r, 0);
}

//  Stops the server (SIGKILL when HARD, else SIGTERM) and waits for it.
static inline void
tst_redis_stop (tst_redis_t *r, bool hard)
{
    if (r->pid > 0) {
        kill (r->pid, hard ? SIGKILL : SIGTERM);
        waitpid (r->pid, NULL, 0);
        r->pid = 0;
    }
}

//  Stops the server and removes its directory.
static inline void
tst_redis_destroy (tst_redis_t *r)
{
    tst_redis_stop (r, true);
    if (r->dir [0]) {
        char cmd [300];
        snprintf (cmd, sizeof cmd, "rm -rf '%s'", r->dir);
        if (system (cmd) != 0)
            fprintf (stderr, "could not remove %s\n", r->dir);
        r->dir [0] = 0;
    }
}

//  Runs a command on the test server; the caller frees the reply.
static inline redisReply *
tst_redis_cmd (tst_redis_t *r, const char *fmt, ...)
{
    redisContext *c = redisConnect ("127.0.0.1", r->port);
    if (!c || c->err) {
        if (c)
            redisFree (c);
        return NULL;
    }
    va_list ap;
    va_start (ap, fmt);
    redisReply *rep = redisvCommand (c, fmt, ap);
    va_end (ap);
    redisFree (c);
    return rep;
}
#endif
