/*  tst_proc: run the rxq programs as real processes in tests.
 *
 *  Header-only. Programs come from $RXQ_BIN_DIR (set by tests/CMakeLists);
 *  each child's stdout and stderr go to a log file the test can read. A
 *  child is started in its own process group so a test can kill it and
 *  anything it started.
 */
#ifndef TST_PROC_H
#define TST_PROC_H
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    pid_t pid;              // child, 0 when not running
    int status;             // wait status once reaped
    char log [256];         // its combined stdout and stderr
} tst_proc_t;

//  Path of program NAME in $RXQ_BIN_DIR, in a static buffer.
static inline const char *
tst_bin (const char *name)
{
    static char path [4][512];
    static int next;
    char *p = path [next++ % 4];
    const char *dir = getenv ("RXQ_BIN_DIR");
    snprintf (p, 512, "%s/%s", dir ? dir : ".", name);
    return p;
}

//  Starts ARGV [0] with ARGV, output to LOG (truncated). Returns 0 or -1.
static inline int
tst_proc_start (tst_proc_t *p, const char *log, char *const argv [])
{
    memset (p, 0, sizeof *p);
    snprintf (p->log, sizeof p->log, "%s", log);
    fflush (NULL);
    p->pid = fork ();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        setpgid (0, 0);
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            close (fd);
        }
        int null = open ("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2 (null, 0);
        for (int fd = 3; fd < 1024; fd++)
            close (fd);
        execv (argv [0], argv);
        fprintf (stderr, "exec %s: %s\n", argv [0], strerror (errno));
        _exit (127);
    }
    return 0;
}

//  True while the child runs (reaps it when it has exited).
static inline bool
tst_proc_alive (tst_proc_t *p)
{
    if (p->pid <= 0)
        return false;
    pid_t r = waitpid (p->pid, &p->status, WNOHANG);
    if (r == p->pid) {
        p->pid = 0;
        return false;
    }
    return true;
}

//  Sends SIG to the child's process group.
static inline void
tst_proc_signal (tst_proc_t *p, int sig)
{
    if (p->pid > 0)
        kill (-p->pid, sig);
}

//  Waits up to MS for the child to exit; returns its exit code, or -1 when
//  it is still running (or died of a signal: then 128 + signal).
static inline int
tst_proc_wait (tst_proc_t *p, int ms)
{
    for (int waited = 0; p->pid > 0; waited += 10) {
        pid_t r = waitpid (p->pid, &p->status, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            break;
        }
        if (waited >= ms)
            return -1;
        usleep (10000);
    }
    if (WIFEXITED (p->status))
        return WEXITSTATUS (p->status);
    if (WIFSIGNALED (p->status))
        return 128 + WTERMSIG (p->status);
    return -1;
}

//  Kills the child (SIGKILL) and reaps it. Idempotent.
static inline void
tst_proc_kill (tst_proc_t *p)
{
    if (p->pid > 0) {
        kill (-p->pid, SIGKILL);
        kill (p->pid, SIGKILL);
        waitpid (p->pid, &p->status, 0);
        p->pid = 0;
    }
}

//  Stops the child politely (SIGTERM), then SIGKILL after MS.
static inline void
tst_proc_stop (tst_proc_t *p, int ms)
{
    if (p->pid > 0) {
        kill (p->pid, SIGTERM);
        if (tst_proc_wait (p, ms) == -1 && p->pid > 0)
            tst_proc_kill (p);
    }
}

//  Reads up to SIZE - 1 bytes of the child's log into BUF; returns BUF.
static inline char *
tst_proc_log (const tst_proc_t *p, char *buf, size_t size)
{
    buf [0] = 0;
    FILE *f = fopen (p->log, "r");
    if (f) {
        size_t n = fread (buf, 1, size - 1, f);
        buf [n] = 0;
        fclose (f);
    }
    return buf;
}

//  Counts occurrences of NEEDLE in the child's log.
static inline int
tst_proc_log_count (const tst_proc_t *p, const char *needle)
{
    static char buf [1 << 22];
    tst_proc_log (p, buf, sizeof buf);
    int n = 0;
    for (const char *s = strstr (buf, needle); s; s = strstr (s + 1, needle))
        n++;
    return n;
}
#endif
