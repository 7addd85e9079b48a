/*  test_wrk_agent: the worker side of RXQ/1 (proto/rxq-protocol.md,
 *  sections 3.5, 4 and 6) against a fake broker: a ROUTER socket bound to
 *  an ephemeral TCP port in the test, with the agent running in a thread
 *  and no OpenCL device (only `noop` is advertised). Heartbeats are 200 ms
 *  so that the liveness tests take about a second.
 */
#include <criterion/criterion.h>
#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmn_codec.h"
#include "cmn_log.h"
#include "cmn_proto.h"
#include "wrk_agent.h"
#include "wrk_job.h"

#define HB_MS 200           // heartbeat interval given to the agent, ms
#define LIVENESS 3          // and its liveness

//  One fake broker and one agent per test (Criterion runs each test in its
//  own process).
static struct {
    zsock_t *router;            // the fake broker
    char endpoint [64];         // where it listens
    wrk_agent_t *agent;         // the agent under test
    pthread_t thread;           // runs wrk_agent_run
    bool running;               // thread was started and not yet joined
    atomic_int finished;        // wrk_agent_run has returned
    int rc;                     // what it returned
    zframe_t *peer;             // routing identity of the agent's latest message
    bool silent;                // the fake broker sends no HEARTBEAT
    int64_t beat_due_ms;        // when it sends its next HEARTBEAT
} F;

static void s_heartbeat (void);

//  A message received from the agent.
typedef struct {
    int command;                // RXQ_CMD_*
    zframe_t *frame;            // the body frame, which body points into
    cmn_body_t body;            // decoded body
    bool new_peer;              // from another routing identity than before
} msg_t;

static void
s_msg_free (msg_t *m)
{
    cmn_body_free (&m->body);
    zframe_destroy (&m->frame);
}

//  Receives one message from the agent within TIMEOUT_MS, checking the
//  framing every worker message must have (3.1). False on timeout.
static bool
s_recv (int timeout_ms, msg_t *m)
{
    memset (m, 0, sizeof *m);
    m->command = -1;
    //  Like a broker, heartbeat the agent while waiting (6.2), unless the
    //  test wants the broker silent.
    int64_t deadline = wrk_job_now_ms () + (timeout_ms < 0 ? 0 : timeout_ms);
    zmsg_t *msg = NULL;
    while (!msg) {
        int64_t now = wrk_job_now_ms ();
        if (!F.silent && F.peer && now >= F.beat_due_ms) {
            s_heartbeat ();
            F.beat_due_ms = now + HB_MS;
        }
        int64_t wait = deadline - now;
        if (wait > 20)
            wait = 20;
        zsock_set_rcvtimeo (F.router, wait < 0 ? 0 : (int) wait);
        msg = zmsg_recv (F.router);
        if (!msg && wrk_job_now_ms () >= deadline)
            return false;
    }
    cr_assert_eq (zmsg_size (msg), 5, "identity + 4 frames expected, got %zu", zmsg_size (msg));
    zframe_t *id = zmsg_pop (msg);
    if (!F.peer || !zframe_eq (F.peer, id)) {
        m->new_peer = F.peer != NULL;
        zframe_destroy (&F.peer);
        F.peer = id;
    }
    else
        zframe_destroy (&id);
    zframe_t *f = zmsg_pop (msg);
    cr_assert_eq (zframe_size (f), 0, "first frame must be the empty delimiter");
    zframe_destroy (&f);
    f = zmsg_pop (msg);
    cr_assert (zframe_streq (f, RXQ_PROTO_WORKER), "header must be %s", RXQ_PROTO_WORKER);
    zframe_destroy (&f);
    f = zmsg_pop (msg);
    cr_assert_eq (zframe_size (f), 1);
    m->command = zframe_data (f) [0];
    zframe_destroy (&f);
    m->frame = zmsg_pop (msg);
    zmsg_destroy (&msg);
    cmn_err_t err;
    cr_assert_eq (cmn_body_decode (&m->body, zframe_data (m->frame), zframe_size (m->frame),
                                   &cmn_codec_limits_default, &err), 0,
                  "%s body: %s", cmn_proto_command_name (m->command), err.msg);
    return true;
}

//  Waits for COMMAND, skipping HEARTBEAT and PROGRESS; any other command
//  fails the test. False when nothing came within TIMEOUT_MS.
static bool
s_expect (int command, int timeout_ms, msg_t *m)
{
    int64_t deadline = wrk_job_now_ms () + timeout_ms;
    while (s_recv ((int) (deadline - wrk_job_now_ms ()), m)) {
        if (m->command == command)
            return true;
        cr_assert (m->command == RXQ_CMD_HEARTBEAT || m->command == RXQ_CMD_PROGRESS,
                   "expected %s, got %s", cmn_proto_command_name (command),
                   cmn_proto_command_name (m->command));
        s_msg_free (m);
    }
    return false;
}

//  Sends raw frames to the agent (after its identity).
static void
s_send_frames (int count, const void *const data [], const size_t size [])
{
    cr_assert (F.peer, "no agent identity yet");
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *) { zframe_dup (F.peer) });
    for (int i = 0; i < count; i++)
        zmsg_addmem (msg, data [i], size [i]);
    cr_assert_eq (zmsg_send (&msg, F.router), 0);
}

static void
s_send_header (const char *header, int command, const void *body, size_t size)
{
    uint8_t cmd = (uint8_t) command;
    const void *data [] = { "", header, &cmd, body };
    const size_t sizes [] = { 0, strlen (header), 1, size };
    s_send_frames (4, data, sizes);
}

static void
s_send (int command, msgpack_sbuffer *sb)
{
    s_send_header (RXQ_PROTO_WORKER, command, sb->data, sb->size);
    msgpack_sbuffer_destroy (sb);
}

#define PACKER(sb, pk) \
    msgpack_sbuffer sb; msgpack_sbuffer_init (&sb); \
    msgpack_packer pk; msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write)

//  JOB for KIND; SLEEP_MS < 0 and PAYLOAD NULL leave those params out.
static void
s_job (const char *id, uint64_t attempt, const char *kind, int64_t sleep_ms,
       const char *payload, uint64_t timeout_ms)
{
    PACKER (sb, pk);
    msgpack_pack_map (&pk, timeout_ms ? 5 : 4);
    cmn_pack_kv_str (&pk, "id", id);
    cmn_pack_kv_uint (&pk, "attempt", attempt);
    cmn_pack_kv_str (&pk, "kind", kind);
    cmn_pack_key (&pk, "params");
    msgpack_pack_map (&pk, (sleep_ms >= 0) + (payload != NULL));
    if (sleep_ms >= 0)
        cmn_pack_kv_uint (&pk, "sleep_ms", (uint64_t) sleep_ms);
    if (payload)
        cmn_pack_kv_str (&pk, "payload", payload);
    if (timeout_ms)
        cmn_pack_kv_uint (&pk, "timeout_ms", timeout_ms);
    s_send (RXQ_CMD_JOB, &sb);
}

static void
s_abort (const char *id, uint64_t attempt, const char *reason)
{
    PACKER (sb, pk);
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_str (&pk, "id", id);
    cmn_pack_kv_uint (&pk, "attempt", attempt);
    cmn_pack_kv_str (&pk, "reason", reason);
    s_send (RXQ_CMD_ABORT, &sb);
}

static void
s_disconnect (const char *header, const char *reason)
{
    PACKER (sb, pk);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_str (&pk, "reason", reason);
    s_send_header (header, RXQ_CMD_DISCONNECT, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
}

static void
s_heartbeat (void)
{
    PACKER (sb, pk);
    msgpack_pack_map (&pk, 0);
    s_send (RXQ_CMD_HEARTBEAT, &sb);
}

//  Field readers that fail the test when the field is missing or ill-typed.
static const msgpack_object *
s_map (const msgpack_object *map, const char *key)
{
    const msgpack_object *out = NULL;
    cmn_err_t err;
    cr_assert_eq (cmn_codec_get_map (map, key, &out, &err), 0, "field '%s'", key);
    return out;
}

static uint64_t
s_uint (const msgpack_object *map, const char *key)
{
    uint64_t out = 0;
    cmn_err_t err;
    cr_assert_eq (cmn_codec_get_uint (map, key, &out, &err), 0, "field '%s'", key);
    return out;
}

static bool
s_bool (const msgpack_object *map, const char *key)
{
    bool out = false;
    cmn_err_t err;
    cr_assert_eq (cmn_codec_get_bool (map, key, &out, &err), 0, "field '%s'", key);
    return out;
}

static void
s_assert_str (const msgpack_object *map, const char *key, const char *expected)
{
    char out [256];
    cmn_err_t err;
    cr_assert_eq (cmn_codec_get_cstr (map, key, out, sizeof out, &err), 0, "field '%s'", key);
    cr_assert_str_eq (out, expected, "field '%s'", key);
}

static bool
s_array_has (const msgpack_object *array, const char *text)
{
    for (uint32_t i = 0; i < array->via.array.size; i++)
        if (cmn_codec_str_eq (&array->via.array.ptr [i], text))
            return true;
    return false;
}

//  Checks a DONE for (ID, ATTEMPT) reports error CODE with RETRY.
static void
s_assert_done_error (msg_t *m, const char *id, uint64_t attempt, int code, bool retry)
{
    const msgpack_object *body = &m->body.root;
    s_assert_str (body, "id", id);
    cr_assert_eq (s_uint (body, "attempt"), attempt);
    cr_assert_not (s_bool (body, "ok"));
    const msgpack_object *error = s_map (body, "error");
    uint64_t got = s_uint (error, "code");
    cr_assert_eq (got, (uint64_t) code, "error %s, expected %s",
                  cmn_error_name ((int) got), cmn_error_name (code));
    char message [256];
    cmn_err_t err;
    cr_assert_eq (cmn_codec_get_cstr (error, "message", message, sizeof message, &err), 0);
    cr_assert (*message, "error message must say what was wrong");
    cr_assert_eq (s_bool (body, "retry"), retry);
}

static void *
s_run_thread (void *arg)
{
    (void) arg;
    F.rc = wrk_agent_run (F.agent);
    atomic_store (&F.finished, 1);
    return NULL;
}

static bool
s_wait_finished (int timeout_ms)
{
    int64_t deadline = wrk_job_now_ms () + timeout_ms;
    while (!atomic_load (&F.finished) && wrk_job_now_ms () < deadline)
        zclock_sleep (5);
    return atomic_load (&F.finished);
}

//  Starts the fake broker and the agent (with CFG, its endpoint and
//  heartbeat filled in), and waits for the first READY, returned in M.
static void
s_start (wrk_agent_config_t *cfg, msg_t *m)
{
    cmn_log_init ("worker", CMN_LOG_WARN);
    F.router = zsock_new (ZMQ_ROUTER);
    cr_assert (F.router);
    int port = zsock_bind (F.router, "tcp://127.0.0.1:*");
    cr_assert (port > 0);
    snprintf (F.endpoint, sizeof F.endpoint, "tcp://127.0.0.1:%d", port);
    cfg->endpoint = F.endpoint;
    if (!cfg->heartbeat_ms)
        cfg->heartbeat_ms = HB_MS;
    if (!cfg->liveness)
        cfg->liveness = LIVENESS;
    cmn_err_t err;
    cmn_err_clear (&err);
    F.agent = wrk_agent_new (cfg, NULL, &err);
    cr_assert (F.agent, "wrk_agent_new: %s", err.msg);
    cr_assert_eq (pthread_create (&F.thread, NULL, s_run_thread, NULL), 0);
    F.running = true;
    cr_assert (s_expect (RXQ_CMD_READY, 3000, m), "no READY from the agent");
}

static void
s_start_default (void)
{
    wrk_agent_config_t cfg = { .name = "test-worker" };
    msg_t m;
    s_start (&cfg, &m);
    s_msg_free (&m);
}

static void
s_fini (void)
{
    if (F.running) {
        wrk_agent_stop (F.agent);
        pthread_join (F.thread, NULL);
        F.running = false;
    }
    wrk_agent_destroy (&F.agent);
    zframe_destroy (&F.peer);
    zsock_destroy (&F.router);
}

TestSuite (wrk_agent, .fini = s_fini, .timeout = 20);


//  --------------------------------------------------------------------------
//  6.1 READY

Test (wrk_agent, ready_6_1_header_kinds_capacity_tags)
{
    const char *tags [] = { "rack-a", "spare" };
    wrk_agent_config_t cfg = { .name = "test-worker", .tags = tags, .tag_count = 2 };
    msg_t m;
    s_start (&cfg, &m);
    const msgpack_object *body = &m.body.root;
    s_assert_str (body, "name", "test-worker");
    const msgpack_object *kinds = NULL;
    cmn_err_t err;
    cr_assert_eq (cmn_codec_get_array (body, "kinds", &kinds, &err), 0);
    cr_assert (s_array_has (kinds, "noop"), "kinds must include noop");
    cr_assert_not (s_array_has (kinds, "bench.device"),
                   "a worker without a device must not advertise bench.device");
    cr_assert_eq (s_uint (body, "capacity"), 1);
    const msgpack_object *tag_array = NULL;
    cr_assert_eq (cmn_codec_get_array (body, "tags", &tag_array, &err), 0);
    cr_assert_eq (tag_array->via.array.size, 2);
    cr_assert (s_array_has (tag_array, "rack-a") && s_array_has (tag_array, "spare"));
    cr_assert_null (cmn_codec_find (body, "device"), "no device, no device map");
    cr_assert_null (cmn_codec_find (body, "jobs"), "a new worker holds no leases");
    s_msg_free (&m);
}

Test (wrk_agent, ready_6_1_default_name_is_host_slash_pid)
{
    wrk_agent_config_t cfg = { .capacity = 3 };
    msg_t m;
    s_start (&cfg, &m);
    char name [300], suffix [32];
    cmn_err_t err;
    cr_assert_eq (cmn_codec_get_cstr (&m.body.root, "name", name, sizeof name, &err), 0);
    snprintf (suffix, sizeof suffix, "/%d", (int) getpid ());
    size_t n = strlen (name), s = strlen (suffix);
    cr_assert (n > s && strcmp (name + n - s, suffix) == 0, "name '%s' is not host/pid", name);
    cr_assert_eq (s_uint (&m.body.root, "capacity"), 3);
    s_msg_free (&m);
}


//  --------------------------------------------------------------------------
//  6.3 JOB, 6.6 DONE

Test (wrk_agent, job_6_3_noop_done_echoes_payload_and_attempt)
{
    s_start_default ();
    s_job ("job-1", 7, "noop", -1, "hello", 0);
    msg_t m;
    cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m), "no DONE");
    const msgpack_object *body = &m.body.root;
    s_assert_str (body, "id", "job-1");
    cr_assert_eq (s_uint (body, "attempt"), 7);
    cr_assert (s_bool (body, "ok"));
    cr_assert_null (cmn_codec_find (body, "error"));
    const msgpack_object *result = s_map (body, "result");
    s_assert_str (result, "payload", "hello");
    cr_assert (s_bool (result, "ok"));
    s_msg_free (&m);
}

Test (wrk_agent, job_6_6_runner_failure_is_retryable_error)
{
    s_start_default ();
    PACKER (sb, pk);
    msgpack_pack_map (&pk, 4);
    cmn_pack_kv_str (&pk, "id", "fails");
    cmn_pack_kv_uint (&pk, "attempt", 1);
    cmn_pack_kv_str (&pk, "kind", "noop");
    cmn_pack_key (&pk, "params");
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_bool (&pk, "fail", true);
    s_send (RXQ_CMD_JOB, &sb);
    msg_t m;
    cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m));
    s_assert_done_error (&m, "fails", 1, RXQ_E_CHECK, true);
    s_msg_free (&m);
}

Test (wrk_agent, job_6_3_unknown_kind_is_not_retried)
{
    s_start_default ();
    s_job ("k1", 1, "no.such.kind", -1, NULL, 0);
    msg_t m;
    cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m));
    s_assert_done_error (&m, "k1", 1, RXQ_E_KIND, false);
    s_msg_free (&m);
    //  A kind that needs a device, on a worker without one.
    s_job ("k2", 4, "bench.device", -1, NULL, 0);
    cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m));
    s_assert_done_error (&m, "k2", 4, RXQ_E_KIND, false);
    s_msg_free (&m);
}

Test (wrk_agent, job_6_3_ill_typed_fields_get_done_errors)
{
    s_start_default ();
    msg_t m;
    //  kind of the wrong type
    PACKER (sb, pk);
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_str (&pk, "id", "bad-kind");
    cmn_pack_kv_uint (&pk, "attempt", 2);
    cmn_pack_kv_uint (&pk, "kind", 42);
    s_send (RXQ_CMD_JOB, &sb);
    cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m));
    s_assert_done_error (&m, "bad-kind", 2, RXQ_E_PROTO, false);
    s_msg_free (&m);
    //  a parameter of the wrong type
    PACKER (sb2, pk2);
    msgpack_pack_map (&pk2, 4);
    cmn_pack_kv_str (&pk2, "id", "bad-param");
    cmn_pack_kv_uint (&pk2, "attempt", 1);
    cmn_pack_kv_str (&pk2, "kind", "noop");
    cmn_pack_key (&pk2, "params");
    msgpack_pack_map (&pk2, 1);
    cmn_pack_kv_str (&pk2, "sleep_ms", "soon");
    s_send (RXQ_CMD_JOB, &sb2);
    cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m));
    s_assert_done_error (&m, "bad-param", 1, RXQ_E_PARAM, false);
    s_msg_free (&m);
    //  params that are not a map
    PACKER (sb3, pk3);
    msgpack_pack_map (&pk3, 4);
    cmn_pack_kv_str (&pk3, "id", "bad-params");
    cmn_pack_kv_uint (&pk3, "attempt", 1);
    cmn_pack_kv_str (&pk3, "kind", "noop");
    cmn_pack_key (&pk3, "params");
    msgpack_pack_array (&pk3, 0);
    s_send (RXQ_CMD_JOB, &sb3);
    cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m));
    s_assert_done_error (&m, "bad-params", 1, RXQ_E_PARAM, false);
    s_msg_free (&m);
}

Test (wrk_agent, job_6_6_duplicate_lease_gets_one_done)
{
    s_start_default ();
    s_job ("dup", 1, "noop", 200, NULL, 0);
    s_job ("dup", 1, "noop", 200, NULL, 0);
    msg_t m;
    cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m));
    cr_assert (s_bool (&m.body.root, "ok"));
    s_msg_free (&m);
    cr_assert_not (s_expect (RXQ_CMD_DONE, 800, &m), "a second DONE for one lease");
}

Test (wrk_agent, job_6_3_timeout_ms_gives_timeout_error)
{
    s_start_default ();
    int64_t start = wrk_job_now_ms ();
    s_job ("slow", 3, "noop", 5000, NULL, 100);
    msg_t m;
    cr_assert (s_expect (RXQ_CMD_DONE, 2000, &m), "the deadline did not stop the job");
    s_assert_done_error (&m, "slow", 3, RXQ_E_TIMEOUT, true);
    cr_assert_lt (wrk_job_now_ms () - start, 1500);
    s_msg_free (&m);
}


//  --------------------------------------------------------------------------
//  6.2 HEARTBEAT, 6.5 PROGRESS

Test (wrk_agent, heartbeat_6_2_flows_during_a_long_job)
{
    s_start_default ();
    int64_t start = wrk_job_now_ms ();
    s_job ("long", 1, "noop", 2000, NULL, 0);
    int heartbeats = 0, progresses = 0;
    int64_t last = start, max_gap = 0;
    msg_t m;
    while (true) {
        cr_assert (s_recv (4000, &m), "agent silent during the job");
        int64_t now = wrk_job_now_ms ();
        if (now - last > max_gap)
            max_gap = now - last;
        last = now;
        if (m.command == RXQ_CMD_DONE)
            break;
        if (m.command == RXQ_CMD_HEARTBEAT) {
            //  During a job the heartbeat says how long the device thread
            //  has been quiet (6.6.1): never longer than the job has run.
            uint64_t stalled = 0;
            cr_assert_eq (cmn_codec_get_uint (&m.body.root, "stalled_ms", &stalled, NULL), 0,
                          "HEARTBEAT during a job carries stalled_ms");
            cr_assert_leq ((int64_t) stalled, now - start);
            heartbeats++;
        }
        else {
            cr_assert_eq (m.command, RXQ_CMD_PROGRESS, "got %s",
                          cmn_proto_command_name (m.command));
            const msgpack_object *body = &m.body.root;
            s_assert_str (body, "id", "long");
            cr_assert_eq (s_uint (body, "attempt"), 1);
            double fraction = -1;
            cmn_err_t err;
            cr_assert_eq (cmn_codec_get_double (body, "fraction", &fraction, &err), 0);
            cr_assert (fraction >= 0 && fraction <= 1);
            cr_assert_not_null (cmn_codec_find (body, "message"));
            int64_t beat = wrk_agent_device_beat_ms (F.agent);
            cr_assert (beat > 0 && now - beat < 1000, "device beat not kept");
            progresses++;
        }
        s_msg_free (&m);
    }
    cr_assert (s_bool (&m.body.root, "ok"));
    s_msg_free (&m);
    cr_assert_geq (wrk_job_now_ms () - start, 1900);
    cr_assert_geq (heartbeats, 1, "no HEARTBEAT while the job ran");
    cr_assert_geq (progresses, 1, "no PROGRESS while the job ran");
    cr_assert_lt (max_gap, 2 * HB_MS, "the agent was silent for %lld ms",
                  (long long) max_gap);
    cr_assert_eq (wrk_agent_device_beat_ms (F.agent), 0, "device thread idle after DONE");
}

Test (wrk_agent, heartbeat_6_2_broker_silence_reconnects_and_sends_ready)
{
    s_start_default ();
    F.silent = true;
    int64_t start = wrk_job_now_ms ();
    msg_t m;
    cr_assert (s_expect (RXQ_CMD_READY, 3000, &m), "no READY after broker silence");
    int64_t elapsed = wrk_job_now_ms () - start;
    cr_assert (m.new_peer, "READY must come from a new socket");
    s_msg_free (&m);
    cr_assert_geq (elapsed, HB_MS * LIVENESS - 100, "reconnected after only %lld ms",
                   (long long) elapsed);
    cr_assert_leq (elapsed, HB_MS * LIVENESS + 500, "reconnected after %lld ms",
                   (long long) elapsed);
}

Test (wrk_agent, heartbeat_6_2_broker_heartbeats_keep_the_connection)
{
    s_start_default ();
    int64_t end = wrk_job_now_ms () + 4 * HB_MS * LIVENESS / 2;
    int64_t next_beat = 0;
    msg_t m;
    while (wrk_job_now_ms () < end) {
        if (wrk_job_now_ms () >= next_beat) {
            s_heartbeat ();
            next_beat = wrk_job_now_ms () + HB_MS / 2;
        }
        if (s_recv (20, &m)) {
            cr_assert_eq (m.command, RXQ_CMD_HEARTBEAT, "got %s while the broker was alive",
                          cmn_proto_command_name (m.command));
            cr_assert_not (m.new_peer);
            s_msg_free (&m);
        }
    }
}


//  --------------------------------------------------------------------------
//  6.7 ABORT

Test (wrk_agent, abort_6_7_running_job_is_cancelled)
{
    s_start_default ();
    s_job ("victim", 2, "noop", 5000, NULL, 0);
    msg_t m;
    cr_assert (s_expect (RXQ_CMD_PROGRESS, 2000, &m), "job did not start");
    s_msg_free (&m);
    int64_t start = wrk_job_now_ms ();
    s_abort ("victim", 2, "cancelled by the client");
    cr_assert (s_expect (RXQ_CMD_DONE, 2000, &m));
    cr_assert_lt (wrk_job_now_ms () - start, 1000);
    s_assert_done_error (&m, "victim", 2, RXQ_E_CANCELLED, true);
    s_msg_free (&m);
}

Test (wrk_agent, abort_6_7_deadline_reason_gives_timeout)
{
    s_start_default ();
    s_job ("late", 5, "noop", 5000, NULL, 0);
    msg_t m;
    cr_assert (s_expect (RXQ_CMD_PROGRESS, 2000, &m));
    s_msg_free (&m);
    s_abort ("late", 4, "stale attempt: must be ignored");
    s_abort ("late", 5, "deadline exceeded");
    cr_assert (s_expect (RXQ_CMD_DONE, 2000, &m));
    s_assert_done_error (&m, "late", 5, RXQ_E_TIMEOUT, true);
    s_msg_free (&m);
}

Test (wrk_agent, abort_6_7_queued_lease_is_answered_at_once)
{
    wrk_agent_config_t cfg = { .name = "test-worker", .capacity = 2 };
    msg_t m;
    s_start (&cfg, &m);
    cr_assert_eq (s_uint (&m.body.root, "capacity"), 2);
    s_msg_free (&m);
    s_job ("first", 1, "noop", 5000, NULL, 0);
    s_job ("second", 1, "noop", 0, NULL, 0);
    cr_assert (s_expect (RXQ_CMD_PROGRESS, 2000, &m));
    s_msg_free (&m);
    s_abort ("second", 1, "cancelled by the client");
    cr_assert (s_expect (RXQ_CMD_DONE, 1000, &m));
    s_assert_done_error (&m, "second", 1, RXQ_E_CANCELLED, true);
    s_msg_free (&m);
    s_abort ("first", 1, "cancelled by the client");
    cr_assert (s_expect (RXQ_CMD_DONE, 2000, &m));
    s_assert_done_error (&m, "first", 1, RXQ_E_CANCELLED, true);
    s_msg_free (&m);
}


//  --------------------------------------------------------------------------
//  Capacity: leases run one at a time, in order of arrival

Test (wrk_agent, capacity_leases_run_in_fifo_order)
{
    wrk_agent_config_t cfg = { .name = "test-worker", .capacity = 2 };
    msg_t m;
    s_start (&cfg, &m);
    s_msg_free (&m);
    s_job ("a", 1, "noop", 300, NULL, 0);
    s_job ("b", 1, "noop", 0, "second", 0);
    cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m));
    s_assert_str (&m.body.root, "id", "a");
    s_msg_free (&m);
    cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m));
    s_assert_str (&m.body.root, "id", "b");
    cr_assert (s_bool (&m.body.root, "ok"));
    s_msg_free (&m);
}

//  More leases than the device thread is handed at once (S_HANDED_MAX):
//  every one runs once, in order of arrival, and one waiting behind a long
//  job and aborted is answered at once and not run.
Test (wrk_agent, capacity_burst_runs_each_lease_once_in_order)
{
    enum { N = 150 };
    wrk_agent_config_t cfg = { .name = "test-worker", .capacity = N + 1 };
    msg_t m;
    s_start (&cfg, &m);
    s_msg_free (&m);
    s_job ("long", 1, "noop", 400, NULL, 0);
    char id [16];
    for (int i = 0; i < N; i++) {
        snprintf (id, sizeof id, "j%d", i);
        s_job (id, 1, "noop", 0, NULL, 0);
    }
    //  j3 waits in the device thread's queue behind `long`.
    s_abort ("j3", 1, "cancelled by the client");
    cr_assert (s_expect (RXQ_CMD_DONE, 300, &m), "the queued lease was not answered at once");
    s_assert_done_error (&m, "j3", 1, RXQ_E_CANCELLED, true);
    s_msg_free (&m);
    cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m));
    s_assert_str (&m.body.root, "id", "long");
    s_msg_free (&m);
    for (int i = 0; i < N; i++) {
        if (i == 3)
            continue;
        snprintf (id, sizeof id, "j%d", i);
        cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m), "no DONE for %s", id);
        s_assert_str (&m.body.root, "id", id);
        cr_assert (s_bool (&m.body.root, "ok"), "%s failed", id);
        s_msg_free (&m);
    }
    cr_assert_not (s_expect (RXQ_CMD_DONE, 300, &m), "a lease was answered twice");
}

//  JOBS (6.3.1) of N noop jobs "b0".."b<N-1>", attempt 1, with a number
//  (not a map) as element BAD when BAD >= 0.
static void
s_jobs (int n, int bad)
{
    PACKER (sb, pk);
    msgpack_pack_map (&pk, 1);
    cmn_pack_key (&pk, "jobs");
    msgpack_pack_array (&pk, (uint32_t) n);
    for (int i = 0; i < n; i++) {
        if (i == bad) {
            msgpack_pack_uint8 (&pk, 7);
            continue;
        }
        char id [16];
        snprintf (id, sizeof id, "b%d", i);
        msgpack_pack_map (&pk, 4);
        cmn_pack_kv_str (&pk, "id", id);
        cmn_pack_kv_uint (&pk, "attempt", 1);
        cmn_pack_kv_str (&pk, "kind", "noop");
        cmn_pack_key (&pk, "params");
        msgpack_pack_map (&pk, 0);
    }
    s_send (RXQ_CMD_JOBS, &sb);
}

//  Reads DONE and DONES until COUNT results came: marks seen [i] (I below
//  IDS) for the id "b<i>" of each successful one, counts the DONES in
//  *DONES.
static void
s_expect_results (int count, int ids, bool *seen, int *dones)
{
    int got = 0;
    *dones = 0;
    while (got < count) {
        msg_t m;
        cr_assert (s_recv (3000, &m), "%d of %d results came", got, count);
        if (m.command == RXQ_CMD_HEARTBEAT || m.command == RXQ_CMD_PROGRESS) {
            s_msg_free (&m);
            continue;
        }
        const msgpack_object *list = &m.body.root, one = m.body.root;
        uint32_t n = 1;
        if (m.command == RXQ_CMD_DONES) {
            cr_assert_eq (cmn_codec_get_array (&m.body.root, "done", &list, NULL), 0);
            n = list->via.array.size;
            list = list->via.array.ptr;
            (*dones)++;
        }
        else {
            cr_assert_eq (m.command, RXQ_CMD_DONE, "got %s", cmn_proto_command_name (m.command));
            list = &one;
        }
        for (uint32_t i = 0; i < n; i++) {
            char id [16] = "";
            cr_assert_eq (cmn_codec_get_cstr (&list [i], "id", id, sizeof id, NULL), 0);
            cr_assert (s_bool (&list [i], "ok"), "%s failed", id);
            int k = atoi (id + 1);
            cr_assert (id [0] == 'b' && k >= 0 && k < ids && !seen [k], "result %s", id);
            seen [k] = true;
            got++;
        }
        s_msg_free (&m);
    }
}

Test (wrk_agent, ready_6_1_asks_for_batches)
{
    wrk_agent_config_t cfg = { .name = "test-worker", .capacity = 4 };
    msg_t m;
    s_start (&cfg, &m);
    cr_assert_gt (s_uint (&m.body.root, "batch"), 1);
    s_msg_free (&m);
}

Test (wrk_agent, jobs_6_3_1_each_runs_once_and_done_comes_back_batched)
{
    enum { N = 40 };
    wrk_agent_config_t cfg = { .name = "test-worker", .capacity = N };
    msg_t m;
    s_start (&cfg, &m);
    s_msg_free (&m);
    //  Before any JOBS: a plain DONE (6.6.2).
    s_job ("plain", 1, "noop", 0, NULL, 0);
    cr_assert (s_expect (RXQ_CMD_DONE, 2000, &m));
    s_assert_str (&m.body.root, "id", "plain");
    s_msg_free (&m);
    s_jobs (N, -1);
    bool seen [N] = { false };
    int dones;
    s_expect_results (N, N, seen, &dones);
    cr_assert_gt (dones, 0, "results of a JOBS came back as DONES");
    cr_assert_not (s_expect (RXQ_CMD_DONE, 300, &m), "a lease was answered twice");
}

//  Regression: a worker re-registering (DISCONNECT, then READY) kept
//  sending DONES to a broker that had not sent it JOBS since, which an
//  older broker would drop. After READY it sends DONE until JOBS again.
Test (wrk_agent, dones_6_6_2_not_after_a_new_ready_until_jobs)
{
    enum { N = 30 };
    wrk_agent_config_t cfg = { .name = "test-worker", .capacity = N };
    msg_t m;
    s_start (&cfg, &m);
    s_msg_free (&m);
    s_jobs (N, -1);
    bool seen [N] = { false };
    int dones;
    s_expect_results (N, N, seen, &dones);
    cr_assert_gt (dones, 0);
    s_disconnect (RXQ_PROTO_WORKER, "worker is not registered");
    cr_assert (s_expect (RXQ_CMD_READY, 1000, &m), "no READY after DISCONNECT");
    s_msg_free (&m);
    for (int i = 0; i < N; i++) {
        char id [16];
        snprintf (id, sizeof id, "b%d", i);
        s_job (id, 2, "noop", 0, NULL, 0);
    }
    memset (seen, 0, sizeof seen);
    s_expect_results (N, N, seen, &dones);
    cr_assert_eq (dones, 0, "DONES to a broker that sent no JOBS since READY");
}

Test (wrk_agent, jobs_6_3_1_invalid_element_dropped_the_rest_run)
{
    wrk_agent_config_t cfg = { .name = "test-worker", .capacity = 8 };
    msg_t m;
    s_start (&cfg, &m);
    s_msg_free (&m);
    //  Without `jobs`, and empty: dropped.
    PACKER (sb, pk);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_uint (&pk, "jobs", 3);
    s_send (RXQ_CMD_JOBS, &sb);
    PACKER (sb2, pk2);
    msgpack_pack_map (&pk2, 1);
    cmn_pack_key (&pk2, "jobs");
    msgpack_pack_array (&pk2, 0);
    s_send (RXQ_CMD_JOBS, &sb2);
    s_jobs (5, 2);
    bool seen [5] = { false };
    int dones;
    seen [2] = true;
    s_expect_results (4, 5, seen, &dones);
    cr_assert_not (s_expect (RXQ_CMD_DONE, 300, &m), "nothing for the invalid element");
}

Test (wrk_agent, capacity_over_the_limit_is_refused_retryable)
{
    s_start_default ();
    s_job ("held", 1, "noop", 5000, NULL, 0);
    s_job ("extra", 1, "noop", 0, NULL, 0);
    msg_t m;
    cr_assert (s_expect (RXQ_CMD_DONE, 2000, &m));
    s_assert_done_error (&m, "extra", 1, RXQ_E_UNAVAILABLE, true);
    s_msg_free (&m);
}


//  --------------------------------------------------------------------------
//  3.5 Invalid messages from the broker are dropped

Test (wrk_agent, invalid_3_5_garbage_is_dropped_and_work_goes_on)
{
    s_start_default ();
    //  A valid JOB body that must never be run when it arrives broken.
    PACKER (job, pk);
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_str (&pk, "id", "garbage");
    cmn_pack_kv_uint (&pk, "attempt", 1);
    cmn_pack_kv_str (&pk, "kind", "noop");
    uint8_t cmd_job = RXQ_CMD_JOB, cmd_bad = 0x99;
    static const uint8_t truncated [] = { 0x83, 0xa2, 'i', 'd', 0xa1 };
    static const uint8_t not_map [] = { 0x92, 0x01, 0x02 };
    static const uint8_t empty_map [] = { 0x80 };
    static const uint8_t trailing [] = { 0x80, 0x80 };
    static const uint8_t huge_array [] = { 0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff };
    size_t big_size = RXQ_MAX_BODY_BYTES + 1;
    uint8_t *big = calloc (1, big_size);
    cr_assert (big);
    big [0] = 0xc6;             // bin 32 declaring the rest
    big [1] = 0x00; big [2] = 0x10; big [3] = 0x00; big [4] = 0x00;
    struct { int n; const void *data [5]; size_t size [5]; } cases [] = {
        { 4, { "", "RXQC01", &cmd_job, job.data }, { 0, 6, 1, job.size } },
        { 4, { "", "XXXX01", &cmd_job, job.data }, { 0, 6, 1, job.size } },
        { 4, { "", "RXQW02", &cmd_job, job.data }, { 0, 6, 1, job.size } },
        { 4, { "", "RXQW0", &cmd_job, job.data }, { 0, 5, 1, job.size } },
        { 4, { "x", RXQ_PROTO_WORKER, &cmd_job, job.data }, { 1, 6, 1, job.size } },
        { 4, { "", RXQ_PROTO_WORKER, "\x31\x31", job.data }, { 0, 6, 2, job.size } },
        { 4, { "", RXQ_PROTO_WORKER, &cmd_job, truncated }, { 0, 6, 1, sizeof truncated } },
        { 4, { "", RXQ_PROTO_WORKER, &cmd_job, not_map }, { 0, 6, 1, sizeof not_map } },
        { 4, { "", RXQ_PROTO_WORKER, &cmd_job, trailing }, { 0, 6, 1, sizeof trailing } },
        { 4, { "", RXQ_PROTO_WORKER, &cmd_job, huge_array }, { 0, 6, 1, sizeof huge_array } },
        { 4, { "", RXQ_PROTO_WORKER, &cmd_job, empty_map }, { 0, 6, 1, 1 } },
        { 4, { "", RXQ_PROTO_WORKER, &cmd_job, "" }, { 0, 6, 1, 0 } },
        { 4, { "", RXQ_PROTO_WORKER, &cmd_job, big }, { 0, 6, 1, big_size } },
        { 4, { "", RXQ_PROTO_WORKER, &cmd_bad, empty_map }, { 0, 6, 1, 1 } },
        { 5, { "", RXQ_PROTO_WORKER, &cmd_job, job.data, "bulk" }, { 0, 6, 1, job.size, 4 } },
        { 3, { "", RXQ_PROTO_WORKER, &cmd_job }, { 0, 6, 1 } },
        { 1, { "\x01\x02\x03random" }, { 9 } },
        { 4, { "", RXQ_PROTO_WORKER, "\x32", truncated }, { 0, 6, 1, sizeof truncated } },
        { 4, { "", RXQ_PROTO_WORKER, "\x41", empty_map }, { 0, 6, 1, 1 } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++)
        s_send_frames (cases [i].n, cases [i].data, cases [i].size);
    free (big);
    msgpack_sbuffer_destroy (&job);

    //  Random frames, some behind a valid header and command.
    srand (566);
    for (int i = 0; i < 300; i++) {
        uint8_t bytes [5][48];
        const void *data [5];
        size_t size [5];
        int n = 1 + rand () % 5;
        for (int f = 0; f < n; f++) {
            size [f] = (size_t) (rand () % 48);
            for (size_t b = 0; b < size [f]; b++)
                bytes [f][b] = (uint8_t) rand ();
            data [f] = bytes [f];
        }
        if (n == 4 && i % 2) {
            size [0] = 0;
            data [1] = RXQ_PROTO_WORKER;
            size [1] = 6;
            bytes [2][0] = (uint8_t) (i % 3 == 0 ? RXQ_CMD_JOB : RXQ_CMD_ABORT);
            size [2] = 1;
        }
        s_send_frames (n, data, size);
    }

    s_job ("after", 1, "noop", -1, "still here", 0);
    msg_t m;
    cr_assert (s_expect (RXQ_CMD_DONE, 3000, &m), "the agent stopped working");
    s_assert_str (&m.body.root, "id", "after");
    cr_assert (s_bool (&m.body.root, "ok"));
    s_msg_free (&m);
}


//  --------------------------------------------------------------------------
//  4 Version negotiation, 6.8 DISCONNECT

Test (wrk_agent, disconnect_4_version_refused_makes_run_fail)
{
    s_start_default ();
    s_disconnect (RXQ_PROTO_WORKER,
                  "unsupported protocol version: worker speaks RXQW01, broker RXQW02");
    cr_assert (s_wait_finished (3000), "run () did not return");
    cr_assert_neq (F.rc, 0);
    cr_assert_eq (wrk_agent_error (F.agent)->code, RXQ_E_VERSION);
}

Test (wrk_agent, disconnect_4_from_a_broker_of_another_version)
{
    s_start_default ();
    s_disconnect ("RXQW02", "refused");
    cr_assert (s_wait_finished (3000), "run () did not return");
    cr_assert_neq (F.rc, 0);
    cr_assert_eq (wrk_agent_error (F.agent)->code, RXQ_E_VERSION);
}

Test (wrk_agent, disconnect_6_8_not_registered_resends_ready_with_leases)
{
    s_start_default ();
    s_job ("kept", 9, "noop", 5000, NULL, 0);
    msg_t m;
    cr_assert (s_expect (RXQ_CMD_PROGRESS, 2000, &m));
    s_msg_free (&m);
    s_disconnect (RXQ_PROTO_WORKER, "worker is not registered");
    cr_assert (s_expect (RXQ_CMD_READY, 1000, &m), "no READY after DISCONNECT");
    const msgpack_object *jobs = NULL;
    cmn_err_t err;
    cr_assert_eq (cmn_codec_get_array (&m.body.root, "jobs", &jobs, &err), 0);
    cr_assert_eq (jobs->via.array.size, 1);
    s_assert_str (&jobs->via.array.ptr [0], "id", "kept");
    cr_assert_eq (s_uint (&jobs->via.array.ptr [0], "attempt"), 9);
    s_msg_free (&m);
    cr_assert_not (atomic_load (&F.finished));
}

Test (wrk_agent, stop_sends_disconnect_and_returns_zero)
{
    s_start_default ();
    s_job ("interrupted", 1, "noop", 5000, NULL, 0);
    msg_t m;
    cr_assert (s_expect (RXQ_CMD_PROGRESS, 2000, &m));
    s_msg_free (&m);
    wrk_agent_stop (F.agent);
    cr_assert (s_expect (RXQ_CMD_DISCONNECT, 2000, &m), "no DISCONNECT on the way out");
    cr_assert_not_null (cmn_codec_find (&m.body.root, "reason"));
    s_msg_free (&m);
    cr_assert (s_wait_finished (2000), "run () did not return");
    cr_assert_eq (F.rc, 0);
    cr_assert_eq (wrk_agent_device_beat_ms (F.agent), 0);
}
