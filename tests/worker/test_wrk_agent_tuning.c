/*  The worker side of TUNING (proto 6.9) against a fake broker (a ROUTER in
 *  the test, the agent in a thread): an entry for the worker's own device
 *  is installed as its override; one for another device, an invalid one,
 *  or one sent to a worker without a device is dropped and changes
 *  nothing, and the worker carries on.
 */
#include <criterion/criterion.h>
#include <czmq.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "cmn_codec.h"
#include "cmn_log.h"
#include "cmn_proto.h"
#include "wrk_agent.h"
#include "wrk_device.h"
#include "wrk_tune.h"

static struct {
    zsock_t *router;            // the fake broker
    wrk_device_t *device;       // the agent's device, or NULL
    wrk_agent_t *agent;         // the agent under test
    pthread_t thread;           // runs wrk_agent_run
    bool running;               // thread started and not joined
    zframe_t *peer;             // the agent's routing identity
} F;

static void *
s_run (void *arg)
{
    (void) arg;
    wrk_agent_run (F.agent);
    return NULL;
}

//  Receives the next message of COMMAND from the agent within TIMEOUT_MS,
//  skipping others; true when it came. Its body is dropped.
static bool
s_expect (int command, int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    while (zclock_mono () < end) {
        if (!(zsock_events (F.router) & ZMQ_POLLIN)) {
            zclock_sleep (5);
            continue;
        }
        zmsg_t *m = zmsg_recv (F.router);
        cr_assert_not_null (m);
        zframe_t *id = zmsg_pop (m);
        zframe_destroy (&F.peer);
        F.peer = id;
        zframe_t *cmd = zmsg_first (m);
        cmd = zmsg_next (m);
        cmd = zmsg_next (m);
        int c = cmd && zframe_size (cmd) == 1 ? zframe_data (cmd) [0] : -1;
        zmsg_destroy (&m);
        if (c == command)
            return true;
    }
    return false;
}

static void
s_send (int command, const msgpack_sbuffer *sb)
{
    zmsg_t *m = zmsg_new ();
    uint8_t c = (uint8_t) command;
    zmsg_append (m, &(zframe_t *) { zframe_dup (F.peer) });
    zmsg_addmem (m, "", 0);
    zmsg_addstr (m, RXQ_PROTO_WORKER);
    zmsg_addmem (m, &c, 1);
    zmsg_addmem (m, sb->data, sb->size);
    cr_assert_eq (zmsg_send (&m, F.router), 0);
}

static void
s_start (bool with_device)
{
    cmn_log_init ("worker", CMN_LOG_ERROR);
    cmn_err_t err = { 0 };
    if (with_device) {
        F.device = wrk_device_new (getenv ("RXQ_TEST_DEVICE"), NULL, &err);
        cr_assert_not_null (F.device, "no OpenCL device: %s", err.msg);
    }
    F.router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (F.router, "tcp://127.0.0.1:*");
    cr_assert_gt (port, 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    wrk_agent_config_t cfg = { .endpoint = endpoint, .name = "tuning-test" };
    F.agent = wrk_agent_new (&cfg, F.device, &err);
    cr_assert_not_null (F.agent, "%s", err.msg);
    cr_assert_eq (pthread_create (&F.thread, NULL, s_run, NULL), 0);
    F.running = true;
    cr_assert (s_expect (RXQ_CMD_READY, 5000), "no READY");
}

static void
s_fini (void)
{
    if (F.running) {
        wrk_agent_stop (F.agent);
        pthread_join (F.thread, NULL);
    }
    wrk_agent_destroy (&F.agent);
    wrk_device_destroy (&F.device);
    zframe_destroy (&F.peer);
    zsock_destroy (&F.router);
}

TestSuite (wrk_agent_tuning, .fini = s_fini, .timeout = 60);

//  TUNING {device_key: KEY, entry: {qmatmul: {QMM_WGS: WGS}}}; FAMILY
//  overrides the family's name (an invalid entry when unknown).
static void
s_tuning (const char *key, const char *family, int wgs)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_str (&pk, "device_key", key);
    cmn_pack_kv_str (&pk, "job", "0001-00000001");
    cmn_pack_key (&pk, "entry");
    msgpack_pack_map (&pk, 1);
    cmn_pack_key (&pk, family);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_uint (&pk, "QMM_WGS", (uint64_t) wgs);
    s_send (RXQ_CMD_TUNING, &sb);
    msgpack_sbuffer_destroy (&sb);
}

//  A noop JOB answered by DONE: the agent is alive and well.
static void
s_assert_alive (void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    cmn_pack_kv_str (&pk, "id", "alive");
    cmn_pack_kv_uint (&pk, "attempt", 1);
    cmn_pack_kv_str (&pk, "kind", "noop");
    cmn_pack_key (&pk, "params");
    msgpack_pack_map (&pk, 0);
    s_send (RXQ_CMD_JOB, &sb);
    msgpack_sbuffer_destroy (&sb);
    cr_assert (s_expect (RXQ_CMD_DONE, 5000), "the agent stopped answering");
}

Test (wrk_agent_tuning, entry_for_its_device_is_installed_others_are_dropped)
{
    s_start (true);
    char key [512];
    wrk_tune_device_key (wrk_device_info (F.device), key, sizeof key);
    wrk_tune_t t;
    wrk_tune_for_device (F.device, &t);
    int shipped = wrk_tune_get (&t, WRK_TUNE_QMATMUL, "QMM_WGS");
    int wanted = shipped == 16 ? 32 : 16;
    cr_assert_not (t.overridden);

    //  Another device's entry, an invalid entry for ours: nothing changes.
    s_tuning ("Other|Device|9.9", "qmatmul", wanted);
    s_tuning (key, "no_such_family", wanted);
    s_assert_alive ();
    wrk_tune_for_device (F.device, &t);
    cr_assert_not (t.overridden);
    cr_assert_eq (wrk_tune_get (&t, WRK_TUNE_QMATMUL, "QMM_WGS"), shipped);

    //  Ours: installed. The agent handles TUNING before the JOB after it.
    s_tuning (key, "qmatmul", wanted);
    s_assert_alive ();
    wrk_tune_for_device (F.device, &t);
    cr_assert (t.overridden);
    cr_assert_eq (wrk_tune_get (&t, WRK_TUNE_QMATMUL, "QMM_WGS"), wanted);
}

Test (wrk_agent_tuning, a_worker_without_a_device_drops_it)
{
    s_start (false);
    s_tuning ("Acme|Fancy|1.0", "qmatmul", 16);
    //  Not a map at all: dropped by the framing checks.
    msgpack_sbuffer sb = { .data = "\xc1", .size = 1 };
    s_send (RXQ_CMD_TUNING, &sb);
    s_assert_alive ();
}
