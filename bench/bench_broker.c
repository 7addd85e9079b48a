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
 *      takes the broker's writes for one job (measured here with the
 *      broker's own code for them, pipelined), and the broker's share of it;
 *    - the ratio to the 50,000 jobs/s target.
 */
#include "brk_broker.h"
#include "brk_job.h"
#include "brk_sets.h"
#include "brk_store.h"
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

//  Packs an event like the broker's: eid, type, ms and WORKER/ATTEMPT for
//  a lease (WORKER NULL otherwise), and keeps it in JOB's record.
static void
s_keep_event (brk_job_t *job, uint64_t n, const char *type, const char *worker)
{
    char eid [48];
    snprintf (eid, sizeof eid, "1-%" PRIu64, n);
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, worker ? 5 : 3);
    cmn_pack_kv_str (&b.pk, "eid", eid);
    cmn_pack_kv_str (&b.pk, "type", type);
    cmn_pack_kv_uint (&b.pk, "ms", (uint64_t) zclock_time ());
    if (worker) {
        cmn_pack_kv_str (&b.pk, "worker", worker);
        cmn_pack_kv_uint (&b.pk, "attempt", job->attempt);
    }
    brk_job_keep_event (job, eid, b.sb.data, b.sb.size);
    msgpack_sbuffer_destroy (&b.sb);
}

//  Measures how many jobs' worth of the broker's Redis writes this Redis
//  takes per second, with the broker's own code for them (brk_job_persist,
//  brk_sets): per batch of 1,000 noop jobs, three pipelines, one per
//  state a job passes (queued with its `accepted` event, leased, succeeded),
//  each writing the batch's records as MSETs and its state moves as one
//  ZREM and one ZADD per set. That is what the broker writes for a job
//  that is submitted, leased and ended in three different loop turns, its
//  events kept in its record (docs/redis.md).
static double
s_redis_ceiling (const char *host, int port, int jobs)
{
    char url [64];
    snprintf (url, sizeof url, "%s:%d", host, port);
    cmn_err_t err = { 0 };
    brk_store_t *store = brk_store_new (url, &err);
    brk_sets_t *sets = brk_sets_new ();
    enum { BATCH = 1000 };
    brk_job_t **batch = calloc (BATCH, sizeof *batch);
    double rate = 0;
    if (!store || !sets || !batch)
        goto done;
    static const char *prefix = "rxq:benchceil:";
    uint64_t events = 0;
    int64_t start = s_now_us ();
    bool ok = true;
    for (int done = 0; ok && done < jobs; done += BATCH) {
        int n = jobs - done < BATCH ? jobs - done : BATCH;
        for (int step = 0; ok && step < 3; step++) {
            for (int i = 0; i < n; i++) {
                brk_job_t *job = batch [i];
                if (step == 0) {
                    job = batch [i] = brk_job_new ();
                    if (!job) {
                        ok = false;
                        break;
                    }
                    snprintf (job->id, sizeof job->id, "0001-%08x", done + i);
                    snprintf (job->kind, sizeof job->kind, "noop");
                    job->seq = (1ull << 32) | (uint64_t) (done + i);
                    job->priority = 1;
                    job->created_ms = zclock_time ();
                    job->state = BRK_QUEUED;
                    s_keep_event (job, ++events, "accepted", NULL);
                }
                else
                if (step == 1) {
                    job->state = BRK_LEASED;
                    job->attempt = 1;
                    snprintf (job->worker, sizeof job->worker, "0123456789");
                    snprintf (job->worker_name, sizeof job->worker_name, "w0");
                    job->started_ms = zclock_time ();
                    s_keep_event (job, ++events, "leased", "w0");
                }
                else {
                    job->state = BRK_SUCCEEDED;
                    job->finished_ms = zclock_time ();
                    brk_job_set_bytes (&job->result, &job->result_len, "\x80", 1);
                    s_keep_event (job, ++events, "succeeded", NULL);
                }
                brk_job_persist (job, store, prefix, sets, BRK_KEEP_ENDED_DEFAULT_S);
            }
            brk_sets_append (sets, store, prefix);
            ok = ok && brk_store_flush (store) == 0;
        }
        for (int i = 0; i < n; i++)
            brk_job_destroy (&batch [i]);
    }
    double secs = (double) (s_now_us () - start) / 1e6;
    if (ok)
        rate = jobs / secs;
    redisReply *r = brk_store_command (store, "EVAL %s 0 %s",
                                       "local n=0 for _,k in ipairs(redis.call('KEYS', ARGV[1])) "
                                       "do redis.call('DEL', k) n=n+1 end return n",
                                       "rxq:benchceil:*");
    if (r)
        freeReplyObject (r);
done:
    if (batch)
        for (int i = 0; i < BATCH; i++)
            brk_job_destroy (&batch [i]);
    free (batch);
    brk_sets_destroy (&sets);
    brk_store_destroy (&store);
    return rate;
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
