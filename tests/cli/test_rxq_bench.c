/*  rxq bench / rxq tune: command-line parsing. Every usage error exits 64
 *  with one line on stderr before anything is sent; a broker that does not
 *  answer exits 3. (The commands against a real cluster are in
 *  tests/integration/test_farm.c.)
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "rxq_bench.h"
#include "rxq_cmd.h"

//  Runs `rxq ARGS...` (NULL-terminated) in this process; returns its exit code.
static int
s_rxq (const char *first, ...)
{
    char *argv [32] = { "rxq" };
    int argc = 1;
    va_list ap;
    va_start (ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg (ap, const char *))
        argv [argc++] = (char *) a;
    va_end (ap);
    argv [argc] = NULL;
    return rxq_cmd_main (argc, argv);
}

static void
s_quiet (void)
{
    cr_redirect_stderr ();
    cr_redirect_stdout ();
}

Test (rxq_bench, usage_errors_exit_64, .init = s_quiet)
{
    //  A broker nobody listens on: none of these may get as far as asking.
    const char *b = "--broker=tcp://127.0.0.1:9";
    cr_assert_eq (s_rxq (b, "bench", NULL), RXQ_EXIT_USAGE, "no kind");
    cr_assert_eq (s_rxq (b, "bench", "noop", NULL), RXQ_EXIT_USAGE, "not a benchmark kind");
    cr_assert_eq (s_rxq (b, "bench", "bench.nope", NULL), RXQ_EXIT_USAGE, "unknown kind");
    cr_assert_eq (s_rxq (b, "bench", "tune", NULL), RXQ_EXIT_USAGE, "tune is rxq tune");
    cr_assert_eq (s_rxq (b, "bench", "bench.gemm", "n=abc", NULL), RXQ_EXIT_USAGE, "bad value");
    cr_assert_eq (s_rxq (b, "bench", "bench.gemm", "n=1", NULL), RXQ_EXIT_USAGE, "out of range");
    cr_assert_eq (s_rxq (b, "bench", "bench.gemm", "bogus=1", NULL), RXQ_EXIT_USAGE,
                  "unknown parameter");
    cr_assert_eq (s_rxq (b, "bench", "bench.gemm", "n", NULL), RXQ_EXIT_USAGE, "not key=value");
    cr_assert_eq (s_rxq (b, "bench", "bench.gemm", "--all-workers", "--worker", "w1", NULL),
                  RXQ_EXIT_USAGE, "both --all-workers and --worker");
    cr_assert_eq (s_rxq (b, "bench", "bench.gemm", "--worker", NULL), RXQ_EXIT_USAGE,
                  "--worker without a name");
    cr_assert_eq (s_rxq (b, "bench", "bench.gemm", "--worker=", NULL), RXQ_EXIT_USAGE,
                  "--worker with an empty name");
    cr_assert_eq (s_rxq (b, "bench", "bench.gemm", "--queue-timeout", "0", NULL), RXQ_EXIT_USAGE);
    cr_assert_eq (s_rxq (b, "bench", "bench.gemm", "--frobnicate", NULL), RXQ_EXIT_USAGE);
    cr_assert_eq (s_rxq (b, "bench", "report", "--since", "yesterday", NULL), RXQ_EXIT_USAGE);
    cr_assert_eq (s_rxq (b, "bench", "report", "--kind", "noop", NULL), RXQ_EXIT_USAGE);
    cr_assert_eq (s_rxq (b, "bench", "report", "--limit", "0", NULL), RXQ_EXIT_USAGE);
    cr_assert_eq (s_rxq (b, "bench", "report", "--html", NULL), RXQ_EXIT_USAGE);
    cr_assert_eq (s_rxq (b, "bench", "report", "extra", NULL), RXQ_EXIT_USAGE);
    cr_assert_eq (s_rxq (b, "tune", "budget_ms=5", NULL), RXQ_EXIT_USAGE, "below the minimum");
    cr_assert_eq (s_rxq (b, "tune", "--all-workers", "--worker", "x", NULL), RXQ_EXIT_USAGE);
    cr_assert_eq (s_rxq (b, "bench", "bench.gemm", "--timeout", "-1", NULL), RXQ_EXIT_USAGE);
}

Test (rxq_bench, usage_errors_say_what_is_wrong, .init = cr_redirect_stderr)
{
    cr_redirect_stdout ();
    s_rxq ("bench", "bench.gemm", "--all-workers", "--worker", "w1", NULL);
    fflush (stderr);
    cr_assert_stderr_eq_str ("rxq: --all-workers and --worker exclude each other\n");
}

Test (rxq_bench, help_exits_0, .init = s_quiet)
{
    cr_assert_eq (s_rxq ("bench", "--help", NULL), RXQ_EXIT_OK);
    cr_assert_eq (s_rxq ("bench", "bench.gemm", "--help", NULL), RXQ_EXIT_OK);
    cr_assert_eq (s_rxq ("bench", "report", "--help", NULL), RXQ_EXIT_OK);
    cr_assert_eq (s_rxq ("tune", "--help", NULL), RXQ_EXIT_OK);
}

//  A loopback port nothing listens on.
static int
s_dead_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    cr_assert_eq (bind (fd, (struct sockaddr *) &a, sizeof a), 0);
    getsockname (fd, (struct sockaddr *) &a, &len);
    close (fd);
    return ntohs (a.sin_port);
}

Test (rxq_bench, a_silent_broker_exits_3, .init = s_quiet, .timeout = 30)
{
    char broker [64];
    snprintf (broker, sizeof broker, "--broker=tcp://127.0.0.1:%d", s_dead_port ());
    cr_assert_eq (s_rxq (broker, "--timeout", "0.3", "bench", "bench.gemm", NULL),
                  RXQ_EXIT_UNREACHABLE);
    cr_assert_eq (s_rxq (broker, "--timeout", "0.3", "bench", "report", NULL),
                  RXQ_EXIT_UNREACHABLE);
    cr_assert_eq (s_rxq (broker, "--timeout", "0.3", "tune", NULL), RXQ_EXIT_UNREACHABLE);
    //  Options before `report` still make it a report, not a kind named so.
    cr_assert_eq (s_rxq ("bench", broker, "--timeout", "0.3", "report", NULL),
                  RXQ_EXIT_UNREACHABLE);
    cr_assert_eq (s_rxq ("bench", "--json", broker, "report", "--timeout=0.3", NULL),
                  RXQ_EXIT_UNREACHABLE);
}

Test (rxq_bench, since_accepts_durations_dates_and_milliseconds)
{
    uint64_t now = 1796113800000, from = 0;
    cmn_err_t err = { 0 };
    cr_assert_eq (rxq_bench_parse_since ("90s", now, &from, &err), 0, "%s", err.msg);
    cr_assert_eq (from, now - 90000);
    cr_assert_eq (rxq_bench_parse_since ("30m", now, &from, &err), 0);
    cr_assert_eq (from, now - 30 * 60000);
    cr_assert_eq (rxq_bench_parse_since ("12h", now, &from, &err), 0);
    cr_assert_eq (from, now - 12 * 3600000ull);
    cr_assert_eq (rxq_bench_parse_since ("7d", now, &from, &err), 0);
    cr_assert_eq (from, now - 7 * 86400000ull);
    cr_assert_eq (rxq_bench_parse_since ("2026-12-01", now, &from, &err), 0, "%s", err.msg);
    cr_assert_eq (from, 1796083200000ull);
    cr_assert_eq (rxq_bench_parse_since ("2026-12-01T08:30", now, &from, &err), 0, "%s", err.msg);
    cr_assert_eq (from, 1796113800000ull);
    cr_assert_eq (rxq_bench_parse_since ("1700000000000", now, &from, &err), 0);
    cr_assert_eq (from, 1700000000000ull);
    const char *bad [] = { "", "m", "-5m", "5x", "5 m", "12m3", "2026-13-01", "2026-12-01T25:00",
                           "2026-12-01Tnoon", "0", "yesterday", "99999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        memset (&err, 0, sizeof err);
        cr_assert_eq (rxq_bench_parse_since (bad [i], now, &from, &err), -1, "'%s' accepted",
                      bad [i]);
        cr_assert_eq (err.code, RXQ_E_INVAL);
        cr_assert (strstr (err.msg, "--since"), "%s", err.msg);
    }
}
