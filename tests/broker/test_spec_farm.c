/*  The broker's side of the benchmark farm, against a real Redis, as the
 *  protocol states it: 5.1.2 (the `worker` requirement), 5.10 (RECORDS),
 *  6.6 (records and tuning entries written when a farm job succeeds) and
 *  6.9 (TUNING after READY and after a tune). Fake workers are DEALER
 *  sockets driven by the test; the broker runs in this process. */
#include "broker/tst_broker.h"

TestSuite (spec_farm, .init = tst_broker_open, .fini = tst_broker_close, .timeout = 60);

//  A fake worker of KINDS (comma-separated) on the device VENDOR|NAME|1.0;
//  consumes the HEARTBEAT that answers READY, not what may follow it.
static zsock_t *
s_worker (const char *wname, const char *kinds, const char *vendor, const char *dname)
{
    zsock_t *w = tst_dealer ();
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 4);
    cmn_pack_kv_str (pk, "name", wname);
    cmn_pack_kv_uint (pk, "capacity", 1);
    cmn_pack_key (pk, "kinds");
    char buf [256];
    snprintf (buf, sizeof buf, "%s", kinds);
    int n = 1;
    for (char *p = buf; *p; p++)
        n += *p == ',';
    msgpack_pack_array (pk, (size_t) n);
    for (char *tok = strtok (buf, ","); tok; tok = strtok (NULL, ","))
        cmn_pack_cstr (pk, tok);
    cmn_pack_key (pk, "device");
    msgpack_pack_map (pk, 4);
    cmn_pack_kv_str (pk, "name", dname);
    cmn_pack_kv_str (pk, "vendor", vendor);
    cmn_pack_kv_str (pk, "driver", "1.0");
    cmn_pack_kv_str (pk, "type", "gpu");
    tst_send (w, RXQ_PROTO_WORKER, RXQ_CMD_READY, &b);
    tst_reply_t r;
    cr_assert_eq (tst_recv (w, &r, 3000), 0, "no reply to READY");
    cr_assert_eq (r.cmd, RXQ_CMD_HEARTBEAT);
    tst_reply_free (&r);
    return w;
}

//  SUBMIT of KIND pinned to worker PIN (NULL: not pinned); the id in ID.
static void
s_submit (zsock_t *c, const char *kind, const char *pin, char *id, size_t size)
{
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, pin ? 3 : 2);
    cmn_pack_kv_uint (pk, "req", tst_next_req++);
    cmn_pack_kv_str (pk, "kind", kind);
    if (pin) {
        cmn_pack_key (pk, "require");
        msgpack_pack_map (pk, 1);
        cmn_pack_kv_str (pk, "worker", pin);
    }
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, &b);
    tst_reply_t r;
    cr_assert_eq (tst_recv_skip_hb (c, &r, 3000), 0, "no reply to SUBMIT");
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL, "SUBMIT got 0x%02x", r.cmd);
    cr_assert_eq (cmn_codec_get_cstr (&r.body.root, "id", id, size, NULL), 0);
    tst_reply_free (&r);
}

//  DONE ok for (ID, ATTEMPT) with RESULT (packed map).
static void
s_done (zsock_t *w, const char *id, uint64_t attempt, const msgpack_sbuffer *result)
{
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 4);
    cmn_pack_kv_str (pk, "id", id);
    cmn_pack_kv_uint (pk, "attempt", attempt);
    cmn_pack_kv_bool (pk, "ok", true);
    cmn_pack_key (pk, "result");
    msgpack_sbuffer_write (&b.sb, result->data, result->size);
    tst_send (w, RXQ_PROTO_WORKER, RXQ_CMD_DONE, &b);
}

//  Waits for a TUNING on W and checks its key and SGEMM TSM.
static void
s_expect_tuning (zsock_t *w, const char *key, uint64_t tsm)
{
    tst_reply_t r;
    cr_assert_eq (tst_recv_skip_hb (w, &r, 3000), 0, "no TUNING");
    cr_assert_eq (r.cmd, RXQ_CMD_TUNING, "got 0x%02x, not TUNING", r.cmd);
    cr_assert_str_eq (r.header, RXQ_PROTO_WORKER);
    cr_assert (cmn_codec_str_eq (cmn_codec_find (&r.body.root, "device_key"), key));
    const msgpack_object *entry = NULL, *sgemm = NULL;
    cr_assert_eq (cmn_codec_get_map (&r.body.root, "entry", &entry, NULL), 0);
    cr_assert_eq (cmn_codec_get_map (entry, "sgemm", &sgemm, NULL), 0);
    uint64_t v = 0;
    cmn_codec_get_uint (sgemm, "TSM", &v, NULL);
    cr_assert_eq (v, tsm);
    tst_reply_free (&r);
}

//  The stored TUNING body of a device with SGEMM TSM.
static void
s_pack_tuning (msgpack_sbuffer *sb, const char *key, uint64_t tsm, bool device_key)
{
    msgpack_sbuffer_init (sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2 + device_key);
    if (device_key)
        cmn_pack_kv_str (&pk, "device_key", key);
    cmn_pack_kv_double (&pk, "gflops", 1.5);
    cmn_pack_key (&pk, "entry");
    msgpack_pack_map (&pk, 1);
    cmn_pack_key (&pk, "sgemm");
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_uint (&pk, "TSM", tsm);
}

Test (spec_farm, s5_1_2_worker_requirement_pins_a_job_to_one_worker)
{
    zsock_t *c = tst_dealer ();
    zsock_t *w1 = s_worker ("w1", "noop", "Acme", "Fancy");
    zsock_t *w2 = s_worker ("w2", "noop", "Acme", "Fancy");
    char id [64], jid [64];
    uint64_t attempt;
    //  Both idle and able: only the named one may take it, by name...
    s_submit (c, "noop", "w2", id, sizeof id);
    tst_expect_job (w2, jid, sizeof jid, &attempt);
    cr_assert_str_eq (jid, id);
    tst_worker_quiet (w1, 200);
    //  ...while w2 is busy, a job pinned to it waits rather than go to w1,
    //  as STATUS shows.
    s_submit (c, "noop", "w2", id, sizeof id);
    tst_worker_quiet (w1, 200);
    char state [16];
    tst_status (c, id, state, NULL);
    cr_assert_str_eq (state, "queued");
    zsock_destroy (&w1);
    zsock_destroy (&w2);
    zsock_destroy (&c);
}

Test (spec_farm, s6_6_a_succeeded_bench_job_appends_its_record)
{
    zsock_t *c = tst_dealer ();
    zsock_t *w = s_worker ("w1", "bench.gemm,noop", "Acme", "Fancy");
    msgpack_sbuffer rec;
    msgpack_sbuffer_init (&rec);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &rec, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    cmn_pack_kv_uint (&pk, "record_version", 1);
    cmn_pack_key (&pk, "device");
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_str (&pk, "name", "Fancy");
    char id [64], jid [64], bench_id [64];
    uint64_t attempt;
    s_submit (c, "bench.gemm", NULL, bench_id, sizeof bench_id);
    tst_expect_job (w, jid, sizeof jid, &attempt);
    s_done (w, jid, attempt, &rec);
    //  A noop job and a failed bench job write no record.
    s_submit (c, "noop", NULL, id, sizeof id);
    tst_expect_job (w, jid, sizeof jid, &attempt);
    s_done (w, jid, attempt, &rec);
    tst_body_t b;
    msgpack_packer *p = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (p, "req", tst_next_req++);
    cmn_pack_kv_str (p, "kind", "bench.gemm");
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, &b);
    tst_reply_t r;
    cr_assert_eq (tst_recv_skip_hb (c, &r, 3000), 0);
    tst_reply_free (&r);
    tst_expect_job (w, jid, sizeof jid, &attempt);
    tst_done (w, jid, attempt, false, RXQ_E_PARAM, false);
    tst_pump (200);
    redisReply *x = tst_redis_cmd (&tst_redis, "XRANGE rxq:test:bench - +");
    cr_assert_eq (x->elements, 1, "one record: the succeeded bench job's");
    redisReply *f = x->element [0]->element [1];
    cr_assert_str_eq (f->element [1]->str, bench_id);
    cr_assert_str_eq (f->element [3]->str, "bench.gemm");
    cr_assert_str_eq (f->element [5]->str, "w1");
    cr_assert_str_eq (f->element [7]->str, "Fancy");
    cr_assert_eq (f->element [11]->len, rec.size);
    cr_assert_eq (memcmp (f->element [11]->str, rec.data, rec.size), 0);
    freeReplyObject (x);

    //  5.10: RECORDS returns it; a bad query is refused.
    p = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (p, "req", tst_next_req++);
    cmn_pack_kv_str (p, "kind", "bench.gemm");
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_RECORDS, &b);
    cr_assert_eq (tst_recv_skip_hb (c, &r, 3000), 0, "no reply to RECORDS");
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL);
    const msgpack_object *recs = NULL;
    cr_assert_eq (cmn_codec_get_array (&r.body.root, "records", &recs, NULL), 0);
    cr_assert_eq (recs->via.array.size, 1);
    const msgpack_object *record = NULL;
    cr_assert_eq (cmn_codec_get_map (&recs->via.array.ptr [0], "record", &record, NULL), 0);
    cr_assert_not_null (cmn_codec_find (record, "record_version"));
    tst_reply_free (&r);
    p = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (p, "req", tst_next_req++);
    cmn_pack_kv_str (p, "after", "yesterday");
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_RECORDS, &b);
    cr_assert_eq (tst_recv_skip_hb (c, &r, 3000), 0);
    cr_assert_eq (r.cmd, RXQ_CMD_ERROR);
    uint64_t code = 0;
    cmn_codec_get_uint (&r.body.root, "code", &code, NULL);
    cr_assert_eq (code, RXQ_E_PARAM);
    tst_reply_free (&r);
    msgpack_sbuffer_destroy (&rec);
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec_farm, s6_9_tuning_follows_ready_when_an_entry_is_stored)
{
    msgpack_sbuffer sb;
    s_pack_tuning (&sb, "Acme|Fancy|1.0", 48, true);
    freeReplyObject (tst_redis_cmd (&tst_redis, "HSET rxq:test:tune %s %b", "Acme|Fancy|1.0",
                                    sb.data, sb.size));
    msgpack_sbuffer_destroy (&sb);
    zsock_t *w1 = s_worker ("w1", "noop", "Acme", "Fancy");
    s_expect_tuning (w1, "Acme|Fancy|1.0", 48);
    //  Another device: nothing.
    zsock_t *w2 = s_worker ("w2", "noop", "Acme", "Plain");
    tst_worker_quiet (w2, 300);
    //  A stored value that is not an entry is not sent; the worker still
    //  registers and runs jobs.
    freeReplyObject (tst_redis_cmd (&tst_redis, "HSET rxq:test:tune %s %b", "Acme|Broken|1.0",
                                    "\xc1", (size_t) 1));
    zsock_t *w3 = s_worker ("w3", "noop", "Acme", "Broken");
    tst_worker_quiet (w3, 300);
    zsock_t *c = tst_dealer ();
    char id [64], jid [64];
    uint64_t attempt;
    s_submit (c, "noop", "w3", id, sizeof id);
    tst_expect_job (w3, jid, sizeof jid, &attempt);
    zsock_destroy (&c);
    zsock_destroy (&w1);
    zsock_destroy (&w2);
    zsock_destroy (&w3);
}

Test (spec_farm, s6_9_a_succeeded_tune_is_stored_and_sent_to_that_device)
{
    zsock_t *c = tst_dealer ();
    zsock_t *w1 = s_worker ("w1", "tune", "Acme", "Fancy");
    zsock_t *w2 = s_worker ("w2", "tune", "Acme", "Fancy");
    zsock_t *w3 = s_worker ("w3", "tune", "Acme", "Plain");
    char id [64], jid [64];
    uint64_t attempt;
    s_submit (c, "tune", "w1", id, sizeof id);
    tst_expect_job (w1, jid, sizeof jid, &attempt);
    msgpack_sbuffer result;
    s_pack_tuning (&result, "Acme|Fancy|1.0", 64, true);
    s_done (w1, jid, attempt, &result);
    msgpack_sbuffer_destroy (&result);
    //  Both workers of that device get it; the other does not.
    s_expect_tuning (w1, "Acme|Fancy|1.0", 64);
    s_expect_tuning (w2, "Acme|Fancy|1.0", 64);
    tst_worker_quiet (w3, 300);
    redisReply *h = tst_redis_cmd (&tst_redis, "HGET rxq:test:tune %s", "Acme|Fancy|1.0");
    cr_assert_eq (h->type, REDIS_REPLY_STRING);
    cmn_body_t body;
    cr_assert_eq (cmn_body_decode (&body, h->str, h->len, &cmn_codec_limits_default, NULL), 0);
    cr_assert (cmn_codec_str_eq (cmn_codec_find (&body.root, "job"), id));
    cr_assert (cmn_codec_str_eq (cmn_codec_find (&body.root, "worker"), "w1"));
    cmn_body_free (&body);
    freeReplyObject (h);
    //  A tune result without a device key stores nothing; the job still
    //  succeeds.
    s_submit (c, "tune", "w3", id, sizeof id);
    tst_expect_job (w3, jid, sizeof jid, &attempt);
    s_pack_tuning (&result, "", 32, false);
    s_done (w3, jid, attempt, &result);
    msgpack_sbuffer_destroy (&result);
    tst_worker_quiet (w3, 200);
    char state [16];
    tst_status (c, id, state, NULL);
    cr_assert_str_eq (state, "succeeded");
    h = tst_redis_cmd (&tst_redis, "HLEN rxq:test:tune");
    cr_assert_eq (h->integer, 1);
    freeReplyObject (h);
    zsock_destroy (&w1);
    zsock_destroy (&w2);
    zsock_destroy (&w3);
    zsock_destroy (&c);
}
