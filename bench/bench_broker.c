/*  bench_broker: broker throughput and latency with state in Redis.
 *
 *  Starts a private local cluster (redis-server with AOF, the broker, W
 *  workers without a device running `noop` jobs with a prefetch capacity
 *  C), unless --broker names a running one. Submits N noop jobs through the
 *  real protocol from one client, keeping K submissions in flight, each
 *  with wait=true and events=false so the broker sends the FINAL when the
 *  job's end has been written to Redis. Prints:
 *    - jobs/s: N over the time from the first submit to the last FINAL;
 *    - p50/p99/max latency from submit to FINAL;
 *    - the same-run Redis ceiling: the rate at which this machine's Redis
 *      takes the broker's writes for one job (measured here with the same
 *      command mix, pipelined), and the broker's share of it;
 *    - the ratio to the 50,000 jobs/s target.
 */
#include "cmn_codec.h"
#include "cmn_proto.h"
#include "rxq_cluster.h"
#include <arpa/inet.h>
#include <czmq.h>
#include <netinet/in.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TARGET_JOBS_PER_S 50000.0

static int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static int64_t
s_now_us (void)
{
    return zclock_usecs ();
}

static void
s_send_submit (zsock_t *s, uint64_t req)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    cmn_pack_kv_uint (&pk, "req", req);
    cmn_pack_kv_str (&pk, "kind", "noop");
    cmn_pack_kv_bool (&pk, "wait", true);
    cmn_pack_kv_bool (&pk, "events", false);
    zmsg_t *m = zmsg_new ();
    uint8_t c = RXQ_CMD_SUBMIT;
    zmsg_addmem (m, "", 0);
    zmsg_addstr (m, RXQ_PROTO_CLIENT);
    zmsg_addmem (m, &c, 1);
    zmsg_addmem (m, sb.data, sb.size);
    zmsg_send (&m, s);
    msgpack_sbuffer_destroy (&sb);
}

//  Measures how many jobs' worth of the broker's Redis writes this Redis
//  takes per second: per job, three HSETs of a job hash and three XADDs
//  (submit, lease, finish), and per batch of 1,000 jobs two state moves of
//  them all, each one ZREM and one ZADD with every member (brk_sets),
//  pipelined.
static double
s_redis_ceiling (const char *host, int port, int jobs)
{
    redisContext *c = redisConnect (host, port);
    if (!c || c->err) {
        if (c)
            redisFree (c);
        return 0;
    }
    int64_t start = s_now_us ();
    const int batch = 1000;
    for (int done = 0; done < jobs; done += batch) {
        int n = 0;
        for (int i = done; i < done + batch && i < jobs; i++) {
            char key [64], ev [64], id [32], eid [32];
            snprintf (id, sizeof id, "%08x", i);
            snprintf (key, sizeof key, "rxq:benchceil:job:%s", id);
            snprintf (ev, sizeof ev, "rxq:benchceil:events:%s", id);
            for (int t = 0; t < 3; t++) {
                redisAppendCommand (c, "HSET %s id %s state queued attempt 1 worker w "
                                    "started_ms 0 finished_ms 0 max_attempts 3 error_code 0 "
                                    "error_msg %s cancel 0 kind noop priority 1 seq %d",
                                    key, id, "", i);
                snprintf (eid, sizeof eid, "1-%d", i * 3 + t + 1);
                redisAppendCommand (c, "XADD %s MAXLEN ~ 1000 %s e %b", ev, eid, "\x82\xa3""eid", 5);
                n += 2;
            }
        }
        //  The batch's state moves: queued -> leased -> succeeded.
        static const char *sets [] = { "rxq:benchceil:state:queued",
                                       "rxq:benchceil:state:leased",
                                       "rxq:benchceil:state:succeeded" };
        static char ids [1000][16], scores [1000][16];
        static const char *argv [2 + 2 * 1000];
        static size_t lens [2 + 2 * 1000];
        const int members = done + batch <= jobs ? batch : jobs - done;
        for (int i = 0; i < members; i++) {
            snprintf (ids [i], sizeof ids [i], "%08x", done + i);
            snprintf (scores [i], sizeof scores [i], "%d", done + i);
        }
        for (int t = 0; t < 2; t++)
            for (int add = 0; add < 2; add++) {
                int argc = 0;
                argv [argc] = add ? "ZADD" : "ZREM";
                lens [argc++] = 4;
                argv [argc] = sets [t + add];
                lens [argc++] = strlen (sets [t + add]);
                for (int i = 0; i < members; i++) {
                    if (add) {
                        argv [argc] = scores [i];
                        lens [argc++] = strlen (scores [i]);
                    }
                    argv [argc] = ids [i];
                    lens [argc++] = strlen (ids [i]);
                }
                redisAppendCommandArgv (c, argc, argv, lens);
                n++;
            }
        for (int i = 0; i < n; i++) {
            void *r = NULL;
            if (redisGetReply (c, &r) != REDIS_OK) {
                redisFree (c);
                return 0;
            }
            freeReplyObject (r);
        }
    }
    double secs = (double) (s_now_us () - start) / 1e6;
    redisReply *r = redisCommand (c, "EVAL \"local n=0 for _,k in ipairs(redis.call('KEYS', ARGV[1])) "
                                  "do redis.call('DEL', k) n=n+1 end return n\" 0 rxq:benchceil:*");
    if (r)
        freeReplyObject (r);
    redisFree (c);
    return jobs / secs;
}

//  A TCP port on 127.0.0.1 that was free a moment ago.
static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { 0 };
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind (fd, (struct sockaddr *) &a, sizeof a) == 0
    &&  getsockname (fd, (struct sockaddr *) &a, &len) == 0)
        port = ntohs (a.sin_port);
    if (fd >= 0)
        close (fd);
    return port;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: bench_broker [--jobs N] [--workers W] [--capacity C] [--window K]\n"
        "                    [--broker ENDPOINT --redis-port P]\n"
        "  --jobs N        noop jobs to run (default 100000)\n"
        "  --workers W     workers to start (default 2)\n"
        "  --capacity C    leases each worker may hold (default 256)\n"
        "  --window K      submissions in flight from the client (default 20000)\n"
        "  --broker EP     use a running broker instead of starting a cluster\n"
        "  --redis-port P  with --broker: Redis port on 127.0.0.1 for the ceiling test\n");
}

int
main (int argc, char **argv)
{
    long jobs = 100000, workers = 2, capacity = 256, window = 20000, redis_port = 0;
    const char *endpoint = NULL;
    static const struct option options [] = {
        { "jobs", required_argument, 0, 'n' },
        { "workers", required_argument, 0, 'w' },
        { "capacity", required_argument, 0, 'c' },
        { "window", required_argument, 0, 'k' },
        { "broker", required_argument, 0, 'b' },
        { "redis-port", required_argument, 0, 'r' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
            case 'n': jobs = atol (optarg); break;
            case 'w': workers = atol (optarg); break;
            case 'c': capacity = atol (optarg); break;
            case 'k': window = atol (optarg); break;
            case 'b': endpoint = optarg; break;
            case 'r': redis_port = atol (optarg); break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 64;
        }
    }
    if (jobs < 1 || workers < 0 || capacity < 1 || window < 1) {
        s_usage (stderr);
        return 64;
    }
    char run_dir [] = "/tmp/rxq-bench-XXXXXX";
    char ep [64];
    bool own = !endpoint;
    if (own) {
        if (!mkdtemp (run_dir)) {
            perror ("bench_broker: mkdtemp");
            return 1;
        }
        rxq_cluster_opts_t o;
        rxq_cluster_opts_default (&o);
        o.run_dir = run_dir;
        o.workers = (int) workers;
        o.no_device = true;
        o.capacity = (int) capacity;
        cmn_err_t err = { 0 };
        char failed [64];
        o.port = s_free_port ();
        o.redis_port = s_free_port ();
        if (rxq_cluster_up (&o, stderr, failed, sizeof failed, &err) != 0) {
            fprintf (stderr, "bench_broker: cannot start a cluster: %s\n", err.msg);
            return 1;
        }
        snprintf (ep, sizeof ep, "tcp://127.0.0.1:%d", o.port);
        redis_port = o.redis_port;
        endpoint = ep;
    }
    zsock_t *s = zsock_new (ZMQ_DEALER);
    zsock_set_sndhwm (s, 0);
    zsock_set_rcvhwm (s, 0);
    zsock_set_linger (s, 0);
    zsock_connect (s, "%s", endpoint);
    int64_t *sent_at = calloc ((size_t) jobs + 1, sizeof (int64_t));
    int64_t *lat = calloc ((size_t) jobs, sizeof (int64_t));
    long submitted = 0, completed = 0, errors = 0;
    zpoller_t *poller = zpoller_new (s, NULL);
    int64_t start = s_now_us (), last = start, silence_since = start;
    while (completed + errors < jobs) {
        while (submitted < jobs && submitted - completed - errors < window) {
            submitted++;
            sent_at [submitted] = s_now_us ();
            s_send_submit (s, (uint64_t) submitted);
        }
        if (!zpoller_wait (poller, 1000)) {
            if (zpoller_terminated (poller))
                break;
            if (s_now_us () - silence_since > 30000000) {
                fprintf (stderr, "bench_broker: no reply for 30 s; %ld of %ld jobs done\n",
                         completed, jobs);
                break;
            }
            continue;
        }
        while (zsock_events (s) & ZMQ_POLLIN) {
            zmsg_t *m = zmsg_recv (s);
            silence_since = s_now_us ();
            if (!m || zmsg_size (m) != 4) {
                zmsg_destroy (&m);
                continue;
            }
            zframe_t *f = zmsg_first (m);
            f = zmsg_next (m);
            f = zmsg_next (m);
            int cmd = zframe_data (f) [0];
            f = zmsg_next (m);
            if (cmd == RXQ_CMD_FINAL || cmd == RXQ_CMD_ERROR) {
                cmn_body_t body;
                uint64_t req = 0;
                if (cmn_body_decode (&body, zframe_data (f), zframe_size (f),
                                     &cmn_codec_limits_default, NULL) == 0) {
                    cmn_codec_get_uint (&body.root, "req", &req, NULL);
                    cmn_body_free (&body);
                }
                if (req >= 1 && req <= (uint64_t) submitted && sent_at [req]) {
                    int64_t now = s_now_us ();
                    if (cmd == RXQ_CMD_FINAL)
                        lat [completed++] = now - sent_at [req];
                    else
                        errors++;
                    sent_at [req] = 0;
                    last = now;
                }
            }
            zmsg_destroy (&m);
        }
    }
    double secs = (double) (last - start) / 1e6;
    double rate = completed / secs;
    qsort (lat, (size_t) completed, sizeof (int64_t), s_cmp_i64);
    double ceiling = redis_port ? s_redis_ceiling ("127.0.0.1", (int) redis_port, 50000) : 0;
    printf ("bench_broker: %ld noop jobs (%ld errors), %ld workers x capacity %ld, window %ld\n",
            completed, errors, workers, capacity, window);
    if (completed) {
        printf ("  throughput       %10.0f jobs/s  (submit to FINAL, state in Redis)\n", rate);
        printf ("  latency p50      %10.2f ms\n", lat [completed / 2] / 1000.0);
        printf ("  latency p99      %10.2f ms\n", lat [(completed * 99) / 100] / 1000.0);
        printf ("  latency max      %10.2f ms\n", lat [completed - 1] / 1000.0);
    }
    if (ceiling > 0)
        printf ("  Redis ceiling    %10.0f jobs/s  (same writes per job, pipelined, same run)\n"
                "  broker / ceiling %10.2f\n", ceiling, rate / ceiling);
    printf ("  target ratio     %10.2f  (of %.0f jobs/s)\n", rate / TARGET_JOBS_PER_S,
            TARGET_JOBS_PER_S);
    zpoller_destroy (&poller);
    zsock_destroy (&s);
    free (sent_at);
    free (lat);
    if (own) {
        cmn_err_t err = { 0 };
        rxq_cluster_down (run_dir, stderr, &err);
        char cmd [128];
        snprintf (cmd, sizeof cmd, "rm -rf %s", run_dir);
        if (system (cmd) != 0)
            fprintf (stderr, "bench_broker: could not remove %s\n", run_dir);
    }
    return completed == jobs ? 0 : 1;
}
