/*  tst_broker: drive an in-process broker from test clients and fake
 *  workers. The test thread runs the broker's loop (brk_broker_step)
 *  whenever it waits for a reply, so no threads are involved.
 */
#ifndef TST_BROKER_H
#define TST_BROKER_H
#include <criterion/criterion.h>
#include <czmq.h>
#include "brk_broker.h"
#include "cmn_codec.h"
#include "cmn_proto.h"
#include "support/tst_jobs.h"
#include "support/tst_redis.h"

static tst_redis_t tst_redis;
static brk_broker_t *tst_broker;
static brk_config_t tst_cfg;

typedef struct {
    int cmd;                // command byte
    cmn_body_t body;        // decoded body
    char header [8];        // protocol header
} tst_reply_t;

static inline void
tst_broker_open (void)
{
    cr_assert_eq (tst_redis_start (&tst_redis), 0, "redis-server did not start");
    brk_config_defaults (&tst_cfg);
    tst_cfg.bind = "tcp://127.0.0.1:*";
    tst_cfg.redis_url = tst_redis.url;
    tst_cfg.cluster = "test";
    tst_cfg.heartbeat_ms = 100;
    tst_cfg.backoff_ms = 20;
    tst_cfg.backoff_max_ms = 100;
    tst_cfg.hang_ms = 500;
    cmn_err_t err = { 0 };
    tst_broker = brk_broker_new (&tst_cfg, &err);
    cr_assert_not_null (tst_broker, "broker did not start: %s", err.msg);
}

static inline void
tst_broker_close (void)
{
    brk_broker_destroy (&tst_broker);
    tst_redis_destroy (&tst_redis);
}

//  Restarts the broker on the same Redis (simulates kill -9: nothing is
//  flushed beyond what each step already wrote).
static inline void
tst_broker_restart (void)
{
    brk_broker_destroy (&tst_broker);
    cmn_err_t err = { 0 };
    tst_broker = brk_broker_new (&tst_cfg, &err);
    cr_assert_not_null (tst_broker, "broker did not restart: %s", err.msg);
}

static inline zsock_t *
tst_dealer (void)
{
    zsock_t *s = zsock_new (ZMQ_DEALER);
    zsock_set_linger (s, 0);
    cr_assert_eq (zsock_connect (s, "%s", brk_broker_endpoint (tst_broker)), 0);
    return s;
}

static inline void
tst_send_raw (zsock_t *s, const char *header, int cmd, const void *body, size_t len)
{
    zmsg_t *m = zmsg_new ();
    uint8_t c = (uint8_t) cmd;
    zmsg_addmem (m, "", 0);
    zmsg_addstr (m, header);
    zmsg_addmem (m, &c, 1);
    zmsg_addmem (m, body, len);
    zmsg_send (&m, s);
}

//  Packs a body with N key/value pairs written by the caller between
//  tst_body_begin and tst_send.
typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} tst_body_t;

static inline msgpack_packer *
tst_body_begin (tst_body_t *b, uint32_t n)
{
    msgpack_sbuffer_init (&b->sb);
    msgpack_packer_init (&b->pk, &b->sb, msgpack_sbuffer_write);
    msgpack_pack_map (&b->pk, n);
    return &b->pk;
}

static inline void
tst_send (zsock_t *s, const char *header, int cmd, tst_body_t *b)
{
    tst_send_raw (s, header, cmd, b->sb.data, b->sb.size);
    msgpack_sbuffer_destroy (&b->sb);
}

//  Runs the broker until S has a message or TIMEOUT_MS passes. Returns 0
//  with R filled (free with tst_reply_free), -1 on timeout.
static inline int
tst_recv (zsock_t *s, tst_reply_t *r, int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    while (zclock_mono () < end) {
        if (zsock_events (s) & ZMQ_POLLIN) {
            zmsg_t *m = zmsg_recv (s);
            cr_assert_not_null (m);
            cr_assert_eq (zmsg_size (m), 4, "reply has %zu frames", zmsg_size (m));
            zframe_t *f = zmsg_first (m);
            cr_assert_eq (zframe_size (f), 0);
            f = zmsg_next (m);
            cr_assert_eq (zframe_size (f), 6);
            memcpy (r->header, zframe_data (f), 6);
            r->header [6] = 0;
            f = zmsg_next (m);
            r->cmd = zframe_data (f) [0];
            f = zmsg_next (m);
            cmn_err_t err = { 0 };
            cr_assert_eq (cmn_body_decode (&r->body, zframe_data (f), zframe_size (f),
                                           &cmn_codec_limits_default, &err), 0,
                          "reply body: %s", err.msg);
            zmsg_destroy (&m);
            return 0;
        }
        brk_broker_step (tst_broker, 5);
    }
    return -1;
}

//  Like tst_recv, skipping HEARTBEATs.
static inline int
tst_recv_skip_hb (zsock_t *s, tst_reply_t *r, int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    while (zclock_mono () < end) {
        if (tst_recv (s, r, (int) (end - zclock_mono ())) != 0)
            return -1;
        if (r->cmd != RXQ_CMD_HEARTBEAT)
            return 0;
        cmn_body_free (&r->body);
    }
    return -1;
}

static inline void
tst_reply_free (tst_reply_t *r)
{
    cmn_body_free (&r->body);
}

//  Runs the broker for MS milliseconds while fake worker W stays alive (it
//  answers each HEARTBEAT as a real worker does) and asserts that nothing
//  but HEARTBEATs reaches it. A silent fake worker is declared dead after
//  heartbeat_ms x liveness (300 ms here), which a loaded machine can
//  stretch a wait of that length past (seen under ctest -j2).
static inline void
tst_worker_quiet (zsock_t *w, int ms)
{
    tst_reply_t r;
    int64_t end = zclock_mono () + ms;
    while (zclock_mono () < end)
        if (tst_recv (w, &r, (int) (end - zclock_mono ())) == 0) {
            cr_assert_eq (r.cmd, RXQ_CMD_HEARTBEAT, "unexpected command 0x%02x", r.cmd);
            tst_reply_free (&r);
            tst_send_raw (w, RXQ_PROTO_WORKER, RXQ_CMD_HEARTBEAT, "\x80", 1);
        }
}

//  Runs the broker for MS milliseconds.
static inline void
tst_pump (int ms)
{
    int64_t end = zclock_mono () + ms;
    while (zclock_mono () < end)
        brk_broker_step (tst_broker, 5);
}

static uint64_t tst_next_req = 1;

//  SUBMIT of KIND with priority; returns the new job id in ID.
static inline void
tst_submit (zsock_t *s, const char *kind, uint64_t priority, const char *extra_key,
            const char *extra_val, char *id, size_t id_size)
{
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, extra_key ? 4 : 3);
    uint64_t req = tst_next_req++;
    cmn_pack_kv_uint (pk, "req", req);
    cmn_pack_kv_str (pk, "kind", kind);
    cmn_pack_kv_uint (pk, "priority", priority);
    if (extra_key)
        cmn_pack_kv_str (pk, extra_key, extra_val);
    tst_send (s, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, &b);
    tst_reply_t r;
    cr_assert_eq (tst_recv_skip_hb (s, &r, 3000), 0, "no reply to SUBMIT");
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL, "SUBMIT got command 0x%02x", r.cmd);
    uint64_t rreq = 0;
    cr_assert_eq (cmn_codec_get_uint (&r.body.root, "req", &rreq, NULL), 0);
    cr_assert_eq (rreq, req);
    cr_assert_eq (cmn_codec_get_cstr (&r.body.root, "id", id, id_size, NULL), 0);
    tst_reply_free (&r);
}

//  A fake worker: READY with the kinds given (comma-separated), asking for
//  JOBS of up to BATCH leases (6.3.1) when BATCH is not 0.
static inline zsock_t *
tst_worker_batch (const char *name, const char *kinds, uint64_t capacity, uint64_t batch)
{
    zsock_t *w = tst_dealer ();
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, batch ? 4 : 3);
    cmn_pack_kv_str (pk, "name", name);
    cmn_pack_kv_uint (pk, "capacity", capacity);
    if (batch)
        cmn_pack_kv_uint (pk, "batch", batch);
    cmn_pack_key (pk, "kinds");
    char buf [256];
    snprintf (buf, sizeof buf, "%s", kinds);
    int n = 1;
    for (char *p = buf; *p; p++)
        n += *p == ',';
    msgpack_pack_array (pk, (size_t) n);
    for (char *tok = strtok (buf, ","); tok; tok = strtok (NULL, ","))
        cmn_pack_cstr (pk, tok);
    tst_send (w, RXQ_PROTO_WORKER, RXQ_CMD_READY, &b);
    tst_reply_t r;
    //  The broker answers READY with a HEARTBEAT.
    cr_assert_eq (tst_recv (w, &r, 3000), 0, "no reply to READY");
    cr_assert_eq (r.cmd, RXQ_CMD_HEARTBEAT);
    tst_reply_free (&r);
    return w;
}

//  A fake worker that takes JOB only.
static inline zsock_t *
tst_worker (const char *name, const char *kinds, uint64_t capacity)
{
    return tst_worker_batch (name, kinds, capacity, 0);
}

//  Waits for a JOB on worker W; returns its id and attempt.
static inline void
tst_expect_job (zsock_t *w, char *id, size_t id_size, uint64_t *attempt)
{
    tst_reply_t r;
    cr_assert_eq (tst_recv_skip_hb (w, &r, 3000), 0, "worker got no JOB");
    cr_assert_eq (r.cmd, RXQ_CMD_JOB, "worker got command 0x%02x, not JOB", r.cmd);
    cr_assert_eq (cmn_codec_get_cstr (&r.body.root, "id", id, id_size, NULL), 0);
    cr_assert_eq (cmn_codec_get_uint (&r.body.root, "attempt", attempt, NULL), 0);
    tst_reply_free (&r);
}

//  Sends DONE for (ID, ATTEMPT): ok, or an error with CODE and RETRY.
static inline void
tst_done (zsock_t *w, const char *id, uint64_t attempt, bool ok, int code, bool retry)
{
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 5);
    cmn_pack_kv_str (pk, "id", id);
    cmn_pack_kv_uint (pk, "attempt", attempt);
    cmn_pack_kv_bool (pk, "ok", ok);
    cmn_pack_kv_bool (pk, "retry", retry);
    if (ok) {
        cmn_pack_key (pk, "result");
        msgpack_pack_map (pk, 1);
        cmn_pack_kv_uint (pk, "answer", 42);
    }
    else {
        cmn_pack_key (pk, "error");
        msgpack_pack_map (pk, 2);
        cmn_pack_kv_uint (pk, "code", (uint64_t) code);
        cmn_pack_kv_str (pk, "message", "it broke");
    }
    tst_send (w, RXQ_PROTO_WORKER, RXQ_CMD_DONE, &b);
}

//  Job state as stored in Redis ("" when absent); STATE must hold 16 bytes.
static inline void
tst_redis_state (const char *id, char *state)
{
    tst_job_state (&tst_redis, "rxq:test:", id, state);
}

//  STATUS of ID; fills STATE (16 bytes) and ATTEMPT.
static inline void
tst_status (zsock_t *c, const char *id, char *state, uint64_t *attempt)
{
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 2);
    uint64_t req = tst_next_req++;
    cmn_pack_kv_uint (pk, "req", req);
    cmn_pack_kv_str (pk, "id", id);
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_STATUS, &b);
    tst_reply_t r;
    cr_assert_eq (tst_recv_skip_hb (c, &r, 3000), 0, "no reply to STATUS");
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL);
    const msgpack_object *job = NULL;
    cr_assert_eq (cmn_codec_get_map (&r.body.root, "job", &job, NULL), 0);
    cr_assert_eq (cmn_codec_get_cstr (job, "state", state, 16, NULL), 0);
    if (attempt)
        cr_assert_eq (cmn_codec_get_uint (job, "attempt", attempt, NULL), 0);
    tst_reply_free (&r);
}
#endif
