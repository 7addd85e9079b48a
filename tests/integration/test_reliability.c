/*  Reliability with real processes: redis-server, rxq-broker, rxq-worker.
 *  Workers and brokers are killed with SIGKILL and stopped with SIGSTOP;
 *  every acknowledged job must still end, exactly once. */
#include <criterion/criterion.h>
#include <czmq.h>
#include <inttypes.h>
#include <pthread.h>
#include "cmn_codec.h"
#include "cmn_proto.h"
#include "rxq_client.h"
#include "support/tst_jobs.h"
#include "support/tst_proc.h"
#include "support/tst_redis.h"

#define HB_MS 200
#define MAX_WORKERS 4

static tst_redis_t s_redis;
static tst_proc_t s_broker;
static tst_proc_t s_workers [MAX_WORKERS];
static int s_port;
static char s_endpoint [64];
static char s_dir [128];

static void
s_start_broker (void)
{
    char bind [64], hb [16], log [200];
    snprintf (bind, sizeof bind, "tcp://127.0.0.1:%d", s_port);
    snprintf (hb, sizeof hb, "%d", HB_MS);
    snprintf (log, sizeof log, "%s/broker.log", s_dir);
    char *argv [] = { (char *) tst_bin ("rxq-broker"), "--bind", bind, "--redis", s_redis.url,
                      "--cluster", "it", "--heartbeat-ms", hb, "--hang-ms", "5000", NULL };
    cr_assert_eq (tst_proc_start (&s_broker, log, argv), 0);
}

static void
s_start_worker (int i)
{
    char name [16], hb [16], log [200];
    snprintf (name, sizeof name, "w%d", i);
    snprintf (hb, sizeof hb, "%d", HB_MS);
    snprintf (log, sizeof log, "%s/worker-%d.log", s_dir, i);
    char *argv [] = { (char *) tst_bin ("rxq-worker"), "--broker", s_endpoint, "--no-device",
                      "--name", name, "--heartbeat-ms", hb, NULL };
    cr_assert_eq (tst_proc_start (&s_workers [i], log, argv), 0);
}

static void
s_setup (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/rxq-it-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
    cr_assert_eq (tst_redis_start (&s_redis), 0);
    s_port = tst_free_port ();
    snprintf (s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", s_port);
    s_start_broker ();
}

static void
s_teardown (void)
{
    for (int i = 0; i < MAX_WORKERS; i++) {
        tst_proc_signal (&s_workers [i], SIGCONT);
        tst_proc_kill (&s_workers [i]);
    }
    tst_proc_kill (&s_broker);
    tst_redis_destroy (&s_redis);
    char cmd [200];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    if (system (cmd) != 0)
        fprintf (stderr, "could not remove %s\n", s_dir);
}

TestSuite (reliability, .init = s_setup, .fini = s_teardown, .timeout = 240);

//  One request through a fresh client; returns 0 with FINAL decoded.
static int
s_request (int cmd, const char *fmt_unused, msgpack_sbuffer *body, cmn_body_t *final,
           cmn_err_t *err, int timeout_ms)
{
    (void) fmt_unused;
    rxq_client_t *c = rxq_client_new (s_endpoint, err);
    cr_assert_not_null (c);
    int rc = rxq_client_request (c, cmd, body ? body->data : NULL, body ? body->size : 0,
                                 NULL, NULL, timeout_ms, final, err);
    rxq_client_destroy (&c);
    return rc;
}

//  SUBMIT noop with SLEEP_MS and KEY (may be NULL); retries while the
//  broker is away. Returns the job id in ID.
static void
s_submit (uint64_t sleep_ms, const char *key, char *id, size_t size, int give_up_ms)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, key ? 3 : 2);
    cmn_pack_kv_str (&pk, "kind", "noop");
    cmn_pack_key (&pk, "params");
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_uint (&pk, "sleep_ms", sleep_ms);
    if (key)
        cmn_pack_kv_str (&pk, "key", key);
    int64_t end = zclock_mono () + give_up_ms;
    for (;;) {
        cmn_body_t final;
        cmn_err_t err = { 0 };
        if (s_request (RXQ_CMD_SUBMIT, NULL, &sb, &final, &err, 1000) == 0) {
            cr_assert_eq (cmn_codec_get_cstr (&final.root, "id", id, size, NULL), 0);
            cmn_body_free (&final);
            break;
        }
        cr_assert (zclock_mono () < end, "could not submit: %s", err.msg);
        usleep (100000);
    }
    msgpack_sbuffer_destroy (&sb);
}

//  STATUS of ID into STATE (16 bytes), ATTEMPT and WORKER (64 bytes).
static int
s_status (const char *id, char *state, uint64_t *attempt, char *worker)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_str (&pk, "id", id);
    cmn_body_t final;
    cmn_err_t err = { 0 };
    int rc = s_request (RXQ_CMD_STATUS, NULL, &sb, &final, &err, 1000);
    msgpack_sbuffer_destroy (&sb);
    if (rc)
        return -1;
    const msgpack_object *job = NULL;
    cmn_codec_get_map (&final.root, "job", &job, NULL);
    cmn_codec_get_cstr (job, "state", state, 16, NULL);
    if (attempt)
        cmn_codec_get_uint (job, "attempt", attempt, NULL);
    if (worker)
        cmn_codec_get_cstr (job, "worker", worker, 64, NULL);
    cmn_body_free (&final);
    return 0;
}

//  Waits until job ID is in STATE; fails the test after MS.
static void
s_wait_state (const char *id, const char *want, int ms)
{
    int64_t end = zclock_mono () + ms;
    char state [16] = "";
    while (zclock_mono () < end) {
        if (s_status (id, state, NULL, NULL) == 0 && strcmp (state, want) == 0)
            return;
        usleep (50000);
    }
    cr_assert_fail ("job %s is '%s', not '%s', after %d ms", id, state, want, ms);
}

//  Most events one job of these tests has.
#define MAX_EVENTS 1024

//  Counts the events of TYPE stored for job ID, straight from Redis.
static int
s_events (const char *id, const char *type)
{
    static cmn_body_t ev [MAX_EVENTS];
    size_t n = tst_job_events (&s_redis, "rxq:it:", id, ev, MAX_EVENTS);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        char t [32] = "";
        cmn_codec_get_cstr (&ev [i].root, "type", t, sizeof t, NULL);
        count += strcmp (t, type) == 0;
    }
    tst_job_events_free (ev, n);
    return count;
}

//  Index of the worker process named in the job's lease.
static int
s_holder (const char *id)
{
    static cmn_body_t ev [MAX_EVENTS];
    size_t n = tst_job_events (&s_redis, "rxq:it:", id, ev, MAX_EVENTS);
    int who = -1;
    for (size_t i = n; who < 0 && i-- > 0; ) {
        char t [32] = "", w [32] = "";
        cmn_codec_get_cstr (&ev [i].root, "type", t, sizeof t, NULL);
        cmn_codec_get_cstr (&ev [i].root, "worker", w, sizeof w, NULL);
        if ((!strcmp (t, "leased") || !strcmp (t, "reclaimed")) && w [0] == 'w')
            who = atoi (w + 1);
    }
    tst_job_events_free (ev, n);
    return who;
}

Test (reliability, kill_9_worker_mid_job_requeues_at_once)
{
    s_start_worker (0);
    s_start_worker (1);
    char id [64];
    s_submit (1500, NULL, id, sizeof id, 10000);
    s_wait_state (id, "leased", 5000);
    int who = s_holder (id);
    cr_assert (who == 0 || who == 1);
    int64_t killed = zclock_mono ();
    tst_proc_kill (&s_workers [who]);
    s_wait_state (id, "succeeded", 10000);
    uint64_t attempt = 0;
    char state [16];
    s_status (id, state, &attempt, NULL);
    cr_assert_eq (attempt, 2, "the job ran %" PRIu64 " times", attempt);
    cr_assert_eq (s_events (id, "succeeded"), 1);
    cr_assert_eq (s_events (id, "requeued"), 1);
    //  Noticed within liveness x heartbeat (600 ms) plus the rerun, not an hour.
    cr_assert_lt (zclock_mono () - killed, 1500 + 600 + 1500);
}

typedef struct {
    char id [64];
    int rc;
    char state [16];
} s_waiter_t;

static void *
s_wait_thread (void *arg)
{
    s_waiter_t *w = arg;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_str (&pk, "id", w->id);
    cmn_err_t err = { 0 };
    rxq_client_t *c = rxq_client_new (s_endpoint, &err);
    rxq_client_set_heartbeat (c, HB_MS, 3);
    rxq_client_set_stream_timeout (c, 30000);
    cmn_body_t final;
    w->rc = rxq_client_request (c, RXQ_CMD_WATCH, sb.data, sb.size, NULL, NULL, 2000, &final, &err);
    if (w->rc == 0) {
        const msgpack_object *job = NULL;
        cmn_codec_get_map (&final.root, "job", &job, NULL);
        cmn_codec_get_cstr (job, "state", w->state, sizeof w->state, NULL);
        cmn_body_free (&final);
    }
    else
        fprintf (stderr, "watch failed: %s\n", err.msg);
    rxq_client_destroy (&c);
    msgpack_sbuffer_destroy (&sb);
    return NULL;
}

Test (reliability, kill_9_broker_while_a_job_streams)
{
    s_start_worker (0);
    s_waiter_t w = { .rc = -2 };
    s_submit (2000, NULL, w.id, sizeof w.id, 10000);
    s_wait_state (w.id, "leased", 5000);
    pthread_t t;
    pthread_create (&t, NULL, s_wait_thread, &w);
    usleep (300000);
    tst_proc_kill (&s_broker);
    usleep (500000);
    s_start_broker ();
    pthread_join (t, NULL);
    cr_assert_eq (w.rc, 0, "the watching client never got its result");
    cr_assert_str_eq (w.state, "succeeded");
    //  The worker reclaimed its lease: it ran once.
    uint64_t attempt = 0;
    char state [16];
    s_status (w.id, state, &attempt, NULL);
    cr_assert_eq (attempt, 1);
    cr_assert_eq (s_events (w.id, "succeeded"), 1);
}

Test (reliability, redis_restart_refuses_then_recovers)
{
    s_start_worker (0);
    char id [64];
    s_submit (0, NULL, id, sizeof id, 10000);
    s_wait_state (id, "succeeded", 5000);
    int port = s_redis.port;
    char dir [256];
    snprintf (dir, sizeof dir, "%s", s_redis.dir);
    tst_redis_stop (&s_redis, false);
    //  Refused with a clear error while Redis is down; the broker lives.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_str (&pk, "kind", "noop");
    cmn_body_t final;
    cmn_err_t err = { 0 };
    usleep (300000);
    cr_assert_eq (s_request (RXQ_CMD_SUBMIT, NULL, &sb, &final, &err, 3000), -1);
    cr_assert_eq (err.code, RXQ_E_UNAVAILABLE, "%d %s", err.code, err.msg);
    cr_assert (strstr (err.msg, "Redis"), "%s", err.msg);
    msgpack_sbuffer_destroy (&sb);
    cr_assert (tst_proc_alive (&s_broker));
    //  Redis comes back with its AOF: old jobs are there, new ones run.
    tst_redis_t again;
    cr_assert_eq (tst_redis_start_port (&again, port), 0);
    //  (tst_redis_start_port made a fresh dir; point it at the old data.)
    tst_redis_stop (&again, true);
    rmdir (again.dir);
    pid_t pid = fork ();
    if (pid == 0) {
        char portbuf [16];
        snprintf (portbuf, sizeof portbuf, "%d", port);
        if (!freopen ("/dev/null", "w", stdout) || !freopen ("/dev/null", "w", stderr))
            _exit (127);
        for (int fd = 3; fd < 1024; fd++)
            close (fd);
        execlp ("redis-server", "redis-server", "--port", portbuf, "--bind", "127.0.0.1",
                "--dir", dir, "--save", "", "--appendonly", "yes", (char *) NULL);
        _exit (127);
    }
    s_redis.pid = pid;
    char state [16];
    int64_t end = zclock_mono () + 10000;
    while (s_status (id, state, NULL, NULL) != 0 && zclock_mono () < end)
        usleep (100000);
    cr_assert_str_eq (state, "succeeded");
    char id2 [64];
    s_submit (0, NULL, id2, sizeof id2, 10000);
    s_wait_state (id2, "succeeded", 5000);
}

Test (reliability, sigstop_worker_its_stale_result_is_refused)
{
    s_start_worker (0);
    char id [64];
    s_submit (1500, NULL, id, sizeof id, 10000);
    s_wait_state (id, "leased", 5000);
    tst_proc_signal (&s_workers [0], SIGSTOP);
    s_start_worker (1);
    //  The stopped worker is declared dead; the job moves to w1.
    int64_t end = zclock_mono () + 5000;
    while (s_holder (id) != 1 && zclock_mono () < end)
        usleep (50000);
    cr_assert_eq (s_holder (id), 1, "the job did not move to the live worker");
    tst_proc_signal (&s_workers [0], SIGCONT);
    s_wait_state (id, "succeeded", 10000);
    //  w0 woke up and finished its copy: its DONE must have been refused.
    end = zclock_mono () + 5000;
    while (tst_proc_log_count (&s_broker, "stale lease") == 0 && zclock_mono () < end)
        usleep (100000);
    cr_assert_geq (tst_proc_log_count (&s_broker, "stale lease"), 1);
    cr_assert_eq (s_events (id, "succeeded"), 1);
    uint64_t attempt = 0;
    char state [16];
    s_status (id, state, &attempt, NULL);
    cr_assert_eq (attempt, 2);
}

//  The soak: N short jobs while workers and the broker are killed and
//  restarted at random. Every job must end succeeded, exactly once.
#define SOAK_JOBS 2000
#define SOAK_WORKERS 3

static volatile int s_chaos_stop;
static int s_worker_kills, s_broker_kills;
static int64_t s_kill_ms [MAX_WORKERS + 1][256];    // Unix ms of each kill; [MAX] = broker
static int s_kill_n [MAX_WORKERS + 1];

static void *
s_chaos (void *arg)
{
    (void) arg;
    unsigned seed = 4242;
    while (!s_chaos_stop) {
        usleep ((useconds_t) (100000 + rand_r (&seed) % 200000));
        if (s_chaos_stop)
            break;
        int victim = rand_r (&seed) % (SOAK_WORKERS + 1);
        if (victim == SOAK_WORKERS) {
            tst_proc_kill (&s_broker);
            if (s_kill_n [MAX_WORKERS] < 256)
                s_kill_ms [MAX_WORKERS][s_kill_n [MAX_WORKERS]++] = zclock_time ();
            s_broker_kills++;
            usleep (200000);
            s_start_broker ();
        }
        else {
            tst_proc_kill (&s_workers [victim]);
            if (s_kill_n [victim] < 256)
                s_kill_ms [victim][s_kill_n [victim]++] = zclock_time ();
            s_worker_kills++;
            usleep (100000);
            s_start_worker (victim);
        }
    }
    return NULL;
}

//  Prints the state and events of up to five jobs that did not succeed,
//  so a failure says what happened to them.
static void
s_dump_unfinished (char (*ids) [64], int n)
{
    int shown = 0;
    for (int i = 0; i < n && shown < 5; i++) {
        char state [16];
        tst_job_state (&s_redis, "rxq:it:", ids [i], state);
        if (strcmp (state, "succeeded") != 0) {
            fprintf (stderr, "job %s: state %s\n", ids [i], state [0] ? state : "(none)");
            static cmn_body_t ev [MAX_EVENTS];
            size_t n_ev = tst_job_events (&s_redis, "rxq:it:", ids [i], ev, MAX_EVENTS);
            for (size_t e = 0; e < n_ev; e++) {
                char *json = cmn_codec_to_json (&ev [e].root);
                fprintf (stderr, "    %s\n", json ? json : "?");
                free (json);
            }
            tst_job_events_free (ev, n_ev);
            shown++;
        }
    }
}

Test (reliability, soak_2000_jobs_with_random_kills)
{
    for (int i = 0; i < SOAK_WORKERS; i++)
        s_start_worker (i);
    pthread_t t;
    pthread_create (&t, NULL, s_chaos, NULL);
    static char ids [SOAK_JOBS][64];
    unsigned seed = 7;
    int64_t start = zclock_mono ();
    for (int i = 0; i < SOAK_JOBS; i++) {
        char key [32];
        snprintf (key, sizeof key, "soak-%d", i);
        s_submit ((uint64_t) (5 + rand_r (&seed) % 25), key, ids [i], sizeof ids [i], 30000);
    }
    //  Keep the chaos going until three quarters of the jobs are done, so
    //  kills land while jobs run, not only while they are submitted.
    for (int64_t until = zclock_mono () + 60000; zclock_mono () < until; usleep (100000)) {
        redisReply *r = tst_redis_cmd (&s_redis, "ZCARD rxq:it:state:succeeded");
        long n = r && r->type == REDIS_REPLY_INTEGER ? (long) r->integer : 0;
        if (r)
            freeReplyObject (r);
        if (n >= SOAK_JOBS * 3 / 4)
            break;
    }
    s_chaos_stop = 1;
    pthread_join (t, NULL);
    //  Every job ends, within two minutes of the chaos stopping.
    int64_t end = zclock_mono () + 120000;
    long done = 0;
    while (zclock_mono () < end) {
        redisReply *r = tst_redis_cmd (&s_redis, "ZCARD rxq:it:state:succeeded");
        done = r ? r->integer : 0;
        if (r)
            freeReplyObject (r);
        if (done >= SOAK_JOBS)
            break;
        usleep (200000);
    }
    int64_t elapsed = zclock_mono () - start;
    if (done != SOAK_JOBS)
        s_dump_unfinished (ids, SOAK_JOBS);
    cr_assert_eq (done, SOAK_JOBS, "only %ld of %d jobs succeeded", done, SOAK_JOBS);
    //  None missing, none recorded twice, ids unique per key.
    int twice = 0, requeues = 0;
    int64_t worst = 0;
    for (int i = 0; i < SOAK_JOBS; i++) {
        char key [32];
        snprintf (key, sizeof key, "soak-%d", i);
        redisReply *r = tst_redis_cmd (&s_redis, "GET rxq:it:key:%s", key);
        cr_assert (r && r->type == REDIS_REPLY_STRING, "key %s missing", key);
        cr_assert_str_eq (r->str, ids [i]);
        freeReplyObject (r);
        int n = s_events (ids [i], "succeeded");
        twice += n > 1;
        cr_assert_eq (n, 1, "job %s recorded %d times", ids [i], n);
        //  Requeue delay: from the kill that took the lease to the requeue.
        static cmn_body_t ev [MAX_EVENTS];
        size_t n_ev = tst_job_events (&s_redis, "rxq:it:", ids [i], ev, MAX_EVENTS);
        for (size_t e = 0; e < n_ev; e++) {
            char type [32] = "", reason [160] = "";
            uint64_t ms = 0;
            cmn_codec_get_cstr (&ev [e].root, "type", type, sizeof type, NULL);
            cmn_codec_get_cstr (&ev [e].root, "reason", reason, sizeof reason, NULL);
            cmn_codec_get_uint (&ev [e].root, "ms", &ms, NULL);
            if (strcmp (type, "requeued"))
                continue;
            requeues++;
            int who = -1;
            if (strncmp (reason, "worker w", 8) == 0)
                who = atoi (reason + 8);
            else
            if (strstr (reason, "broker restart"))
                who = MAX_WORKERS;
            if (who < 0 || who > MAX_WORKERS)
                continue;
            int64_t kill_at = 0;
            for (int k = 0; k < s_kill_n [who]; k++)
                if (s_kill_ms [who][k] <= (int64_t) ms && s_kill_ms [who][k] > kill_at)
                    kill_at = s_kill_ms [who][k];
            if (kill_at && (int64_t) ms - kill_at > worst)
                worst = (int64_t) ms - kill_at;
        }
        tst_job_events_free (ev, n_ev);
    }
    int stale = tst_proc_log_count (&s_broker, "stale lease");
    //  The figures docs/reliability.md records.
    FILE *f = fopen ("/tmp/rxq-soak-figures.txt", "w");
    for (FILE *out = stderr; out; out = out == stderr ? f : NULL)
        fprintf (out, "soak: %d jobs, %d succeeded once each, %d twice, 0 missing; "
                 "%d worker kills, %d broker kills; %d requeues; %d stale results refused; "
                 "longest requeue delay %" PRId64 " ms; %.1f s\n", SOAK_JOBS, (int) done, twice,
                 s_worker_kills, s_broker_kills, requeues, stale, worst, elapsed / 1000.0);
    if (f)
        fclose (f);
    cr_assert_gt (s_worker_kills + s_broker_kills, 5, "the chaos did too little");
}
