/*  Conformance of the broker to proto/rxq-protocol.md, against a real Redis.
 *  Each test is named after the section it guards. */
#include "broker/tst_broker.h"

TestSuite (spec, .init = tst_broker_open, .fini = tst_broker_close, .timeout = 60);

static uint64_t
s_error_code (tst_reply_t *r)
{
    uint64_t code = 0;
    cr_assert_eq (r->cmd, RXQ_CMD_ERROR, "expected ERROR, got 0x%02x", r->cmd);
    cr_assert_eq (cmn_codec_get_uint (&r->body.root, "code", &code, NULL), 0);
    return code;
}

Test (spec, s3_5_invalid_messages_dropped_and_service_continues)
{
    zsock_t *c = tst_dealer ();
    //  Garbage of every shape: none may stop the broker.
    zsock_send (c, "s", "hello");
    zsock_send (c, "zs", "NOTRXQ");
    tst_send_raw (c, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, "\xc1", 1);          // invalid byte
    tst_send_raw (c, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, "\xdd\xff\xff\xff\xff", 5); // huge array
    tst_send_raw (c, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, "\x81\xa3req", 5);  // truncated map
    char deep [64];
    memset (deep, 0x91, sizeof deep);
    deep [63] = 0x01;
    tst_send_raw (c, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, deep, sizeof deep);  // too deep
    tst_send_raw (c, RXQ_PROTO_CLIENT, 0x7f, "\x81\xa3req\x01", 6);        // unknown command
    tst_send_raw (c, RXQ_PROTO_WORKER, RXQ_CMD_DONE, "\x80", 1);            // unregistered
    zmsg_t *many = zmsg_new ();
    for (int i = 0; i < 20; i++)
        zmsg_addstr (many, "x");
    zmsg_send (&many, c);
    tst_pump (200);
    cr_assert_geq (brk_broker_stats (tst_broker)->invalid_dropped, 5);
    //  Drain what the broker said about the garbage, then check it serves.
    tst_reply_t r;
    while (zsock_events (c) & ZMQ_POLLIN) {
        cr_assert_eq (tst_recv (c, &r, 100), 0);
        tst_reply_free (&r);
    }
    char id [64];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    cr_assert_gt (strlen (id), 0);
    zsock_destroy (&c);
}

Test (spec, s3_5_request_without_req_gets_error)
{
    zsock_t *c = tst_dealer ();
    tst_send_raw (c, RXQ_PROTO_CLIENT, RXQ_CMD_STATUS, "\x81\xa2id\xa1x", 6);
    tst_reply_t r;
    cr_assert_eq (tst_recv (c, &r, 2000), 0);
    cr_assert_eq (s_error_code (&r), RXQ_E_PROTO);
    tst_reply_free (&r);
    zsock_destroy (&c);
}

Test (spec, s3_5_unregistered_worker_told_to_register)
{
    zsock_t *w = tst_dealer ();
    tst_send_raw (w, RXQ_PROTO_WORKER, RXQ_CMD_HEARTBEAT, "\x80", 1);
    tst_reply_t r;
    cr_assert_eq (tst_recv (w, &r, 2000), 0);
    cr_assert_eq (r.cmd, RXQ_CMD_DISCONNECT);
    tst_reply_free (&r);
    zsock_destroy (&w);
}

Test (spec, s4_client_with_other_version_gets_version_error)
{
    zsock_t *c = tst_dealer ();
    tst_send_raw (c, "RXQC02", RXQ_CMD_STATUS, "\x81\xa3req\x01", 6);
    tst_reply_t r;
    cr_assert_eq (tst_recv (c, &r, 2000), 0);
    cr_assert_str_eq (r.header, RXQ_PROTO_CLIENT);
    cr_assert_eq (s_error_code (&r), RXQ_E_VERSION);
    char msg [200];
    cr_assert_eq (cmn_codec_get_cstr (&r.body.root, "message", msg, sizeof msg, NULL), 0);
    cr_assert (strstr (msg, "RXQC02") && strstr (msg, "RXQC01"), "message: %s", msg);
    tst_reply_free (&r);
    zsock_destroy (&c);
}

Test (spec, s4_worker_with_other_version_gets_disconnect)
{
    zsock_t *w = tst_dealer ();
    tst_send_raw (w, "RXQW02", RXQ_CMD_READY, "\x80", 1);
    tst_reply_t r;
    cr_assert_eq (tst_recv (w, &r, 2000), 0);
    cr_assert_eq (r.cmd, RXQ_CMD_DISCONNECT);
    char reason [200];
    cr_assert_eq (cmn_codec_get_cstr (&r.body.root, "reason", reason, sizeof reason, NULL), 0);
    cr_assert (strstr (reason, "RXQW02"), "reason: %s", reason);
    tst_reply_free (&r);
    zsock_destroy (&w);
}

Test (spec, s5_1_submit_persists_before_acknowledging)
{
    zsock_t *c = tst_dealer ();
    char id [64], state [16];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    //  The FINAL arrived: Redis must already hold the job.
    tst_redis_state (id, state);
    cr_assert_str_eq (state, "queued");
    redisReply *rep = tst_redis_cmd (&tst_redis, "ZSCORE rxq:test:state:queued %s", id);
    cr_assert (rep && rep->type == REDIS_REPLY_STRING);
    freeReplyObject (rep);
    zsock_destroy (&c);
}

Test (spec, s5_1_unknown_kind_and_bad_params_refused)
{
    zsock_t *c = tst_dealer ();
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (pk, "req", 7);
    cmn_pack_kv_str (pk, "kind", "frobnicate");
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, &b);
    tst_reply_t r;
    cr_assert_eq (tst_recv (c, &r, 2000), 0);
    cr_assert_eq (s_error_code (&r), RXQ_E_KIND);
    tst_reply_free (&r);

    pk = tst_body_begin (&b, 3);
    cmn_pack_kv_uint (pk, "req", 8);
    cmn_pack_kv_str (pk, "kind", "noop");
    cmn_pack_key (pk, "params");
    msgpack_pack_map (pk, 1);
    cmn_pack_kv_str (pk, "sleep_ms", "soon");
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, &b);
    cr_assert_eq (tst_recv (c, &r, 2000), 0);
    cr_assert_eq (s_error_code (&r), RXQ_E_PARAM);
    char msg [200];
    cmn_codec_get_cstr (&r.body.root, "message", msg, sizeof msg, NULL);
    cr_assert (strstr (msg, "sleep_ms"), "message does not name the parameter: %s", msg);
    tst_reply_free (&r);
    //  Nothing was persisted for either.
    redisReply *rep = tst_redis_cmd (&tst_redis, "ZCARD rxq:test:state:queued");
    cr_assert_eq (rep->integer, 0);
    freeReplyObject (rep);
    zsock_destroy (&c);
}

Test (spec, s5_1_1_same_key_returns_existing_job)
{
    zsock_t *c = tst_dealer ();
    char id1 [64], id2 [64];
    tst_submit (c, "noop", 1, "key", "nightly-42", id1, sizeof id1);
    tst_submit (c, "noop", 1, "key", "nightly-42", id2, sizeof id2);
    cr_assert_str_eq (id1, id2);
    //  Still the same after a restart (the key lives in Redis).
    zsock_destroy (&c);
    tst_broker_restart ();
    c = tst_dealer ();
    tst_submit (c, "noop", 1, "key", "nightly-42", id2, sizeof id2);
    cr_assert_str_eq (id1, id2);
    zsock_destroy (&c);
}

Test (spec, s5_2_status_of_unknown_job_is_notfound)
{
    zsock_t *c = tst_dealer ();
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (pk, "req", 5);
    cmn_pack_kv_str (pk, "id", "nope");
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_STATUS, &b);
    tst_reply_t r;
    cr_assert_eq (tst_recv (c, &r, 2000), 0);
    cr_assert_eq (s_error_code (&r), RXQ_E_NOTFOUND);
    tst_reply_free (&r);
    zsock_destroy (&c);
}

Test (spec, s6_3_lease_persisted_before_job_sent)
{
    zsock_t *c = tst_dealer ();
    char id [64], jid [64], state [16];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    zsock_t *w = tst_worker ("w1", "noop", 1);
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    cr_assert_str_eq (jid, id);
    cr_assert_eq (attempt, 1);
    tst_redis_state (id, state);
    cr_assert_str_eq (state, "leased");
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec, s6_3_capacity_is_respected)
{
    zsock_t *c = tst_dealer ();
    char id [64], jid [64];
    for (int i = 0; i < 3; i++)
        tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    zsock_t *w = tst_worker ("w1", "noop", 2);
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    tst_expect_job (w, jid, sizeof jid, &attempt);
    tst_reply_t r;
    cr_assert_neq (tst_recv_skip_hb (w, &r, 300), 0, "a third JOB exceeded capacity 2");
    zsock_destroy (&w);
    zsock_destroy (&c);
}

//  Reads leases from W until COUNT have come or 1 s passes without one:
//  ids and attempts into IDS/ATTEMPTS; *JOBS_MSGS counts the JOBS messages
//  and *MOST the most leases one of them held. Returns the leases read.
//  (Quickly: a fake worker sends no heartbeats, and after 300 ms of
//  silence the broker declares it dead.)
static int
s_read_leases (zsock_t *w, int count, char (*ids) [64], uint64_t *attempts,
               int *jobs_msgs, int *most)
{
    int n = 0;
    *jobs_msgs = *most = 0;
    tst_reply_t r;
    while (n < count && tst_recv_skip_hb (w, &r, 1000) == 0) {
        if (r.cmd == RXQ_CMD_JOB) {
            cmn_codec_get_cstr (&r.body.root, "id", ids [n], 64, NULL);
            cmn_codec_get_uint (&r.body.root, "attempt", &attempts [n], NULL);
            n++;
        }
        else {
            cr_assert_eq (r.cmd, RXQ_CMD_JOBS, "got command 0x%02x", r.cmd);
            const msgpack_object *jobs = NULL;
            cr_assert_eq (cmn_codec_get_array (&r.body.root, "jobs", &jobs, NULL), 0);
            (*jobs_msgs)++;
            if ((int) jobs->via.array.size > *most)
                *most = (int) jobs->via.array.size;
            for (uint32_t i = 0; i < jobs->via.array.size; i++) {
                cr_assert_lt (n, count, "more leases than asked for");
                const msgpack_object *j = &jobs->via.array.ptr [i];
                cr_assert_eq (cmn_codec_get_cstr (j, "id", ids [n], 64, NULL), 0);
                cr_assert_eq (cmn_codec_get_uint (j, "attempt", &attempts [n], NULL), 0);
                n++;
            }
        }
        tst_reply_free (&r);
    }
    return n;
}

Test (spec, s6_3_1_jobs_batches_leases_within_batch_and_capacity)
{
    zsock_t *c = tst_dealer ();
    char id [64];
    for (int i = 0; i < 10; i++)
        tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    zsock_t *w = tst_worker_batch ("wb", "noop", 7, 4);
    char ids [16][64];
    uint64_t attempts [16];
    int msgs, most;
    int n = s_read_leases (w, 7, ids, attempts, &msgs, &most);
    //  Each was persisted as leased before it was sent (6.3).
    for (int i = 0; i < n; i++) {
        char state [16];
        tst_redis_state (ids [i], state);
        cr_assert_str_eq (state, "leased");
    }
    cr_assert_eq (n, 7, "capacity 7: %d leases", n);
    cr_assert_geq (msgs, 2, "7 leases in JOBS of at most 4");
    cr_assert_eq (most, 4, "JOBS never above the worker's batch");
    tst_reply_t r;
    cr_assert_neq (tst_recv_skip_hb (w, &r, 100), 0, "a lease beyond capacity 7");
    //  A worker that did not ask for batches gets JOB (tst_expect_job
    //  asserts the command).
    zsock_t *plain = tst_worker ("wp", "noop", 3);
    char jid [64];
    uint64_t attempt;
    tst_expect_job (plain, jid, sizeof jid, &attempt);
    zsock_destroy (&plain);
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec, s6_6_2_dones_ends_each_job_and_drops_bad_elements)
{
    zsock_t *c = tst_dealer ();
    char id [64];
    for (int i = 0; i < 3; i++)
        tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    zsock_t *w = tst_worker_batch ("wb", "noop", 3, 8);
    char ids [4][64];
    uint64_t attempts [4];
    int msgs, most;
    cr_assert_eq (s_read_leases (w, 3, ids, attempts, &msgs, &most), 3);
    //  DONES: job 0 succeeds, a stale attempt of job 1, a number, job 2
    //  fails without retry.
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 1);
    cmn_pack_key (pk, "done");
    msgpack_pack_array (pk, 4);
    msgpack_pack_map (pk, 4);
    cmn_pack_kv_str (pk, "id", ids [0]);
    cmn_pack_kv_uint (pk, "attempt", attempts [0]);
    cmn_pack_kv_bool (pk, "ok", true);
    cmn_pack_key (pk, "result");
    msgpack_pack_map (pk, 1);
    cmn_pack_kv_uint (pk, "answer", 42);
    msgpack_pack_map (pk, 3);
    cmn_pack_kv_str (pk, "id", ids [1]);
    cmn_pack_kv_uint (pk, "attempt", attempts [1] + 7);
    cmn_pack_kv_bool (pk, "ok", true);
    msgpack_pack_uint8 (pk, 5);
    msgpack_pack_map (pk, 5);
    cmn_pack_kv_str (pk, "id", ids [2]);
    cmn_pack_kv_uint (pk, "attempt", attempts [2]);
    cmn_pack_kv_bool (pk, "ok", false);
    cmn_pack_kv_bool (pk, "retry", false);
    cmn_pack_key (pk, "error");
    msgpack_pack_map (pk, 2);
    cmn_pack_kv_uint (pk, "code", RXQ_E_PARAM);
    cmn_pack_kv_str (pk, "message", "bad");
    tst_send (w, RXQ_PROTO_WORKER, RXQ_CMD_DONES, &b);
    //  An empty DONES and one without `done`: invalid, dropped.
    pk = tst_body_begin (&b, 1);
    cmn_pack_key (pk, "done");
    msgpack_pack_array (pk, 0);
    tst_send (w, RXQ_PROTO_WORKER, RXQ_CMD_DONES, &b);
    pk = tst_body_begin (&b, 1);
    cmn_pack_kv_uint (pk, "x", 1);
    tst_send (w, RXQ_PROTO_WORKER, RXQ_CMD_DONES, &b);
    tst_pump (200);
    char state [16];
    tst_redis_state (ids [0], state);
    cr_assert_str_eq (state, "succeeded");
    tst_redis_state (ids [1], state);
    cr_assert_str_eq (state, "leased", "a stale element is refused");
    tst_redis_state (ids [2], state);
    cr_assert_str_eq (state, "failed");
    cr_assert_geq (brk_broker_stats (tst_broker)->invalid_dropped, 3);
    //  The broker still serves the worker: the current DONE of job 1.
    tst_done (w, ids [1], attempts [1], true, 0, true);
    tst_pump (200);
    tst_redis_state (ids [1], state);
    cr_assert_str_eq (state, "succeeded");
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec, s6_6_done_records_result_once_and_refuses_stale)
{
    zsock_t *c = tst_dealer ();
    char id [64], jid [64], state [16];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    zsock_t *w = tst_worker ("w1", "noop", 1);
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    tst_done (w, jid, attempt + 5, true, 0, true);      // wrong attempt: stale
    tst_pump (100);
    cr_assert_eq (brk_broker_stats (tst_broker)->stale_refused, 1);
    tst_status (c, id, state, NULL);
    cr_assert_str_eq (state, "leased");
    tst_done (w, jid, attempt, true, 0, true);
    tst_pump (100);
    tst_status (c, id, state, NULL);
    cr_assert_str_eq (state, "succeeded");
    tst_redis_state (id, state);
    cr_assert_str_eq (state, "succeeded");
    tst_done (w, jid, attempt, true, 0, true);          // a duplicate DONE
    tst_pump (100);
    cr_assert_eq (brk_broker_stats (tst_broker)->stale_refused, 2);
    cr_assert_eq (brk_broker_stats (tst_broker)->completed, 1);
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec, s6_6_failed_attempts_retry_then_dead)
{
    zsock_t *c = tst_dealer ();
    char id [64], jid [64], state [16];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);   // max_attempts 3
    zsock_t *w = tst_worker ("w1", "noop", 1);
    for (uint64_t a = 1; a <= 3; a++) {
        uint64_t attempt;
        tst_expect_job (w, jid, sizeof jid, &attempt);
        cr_assert_eq (attempt, a);
        tst_done (w, jid, attempt, false, RXQ_E_OPENCL, true);
    }
    tst_pump (100);
    uint64_t attempt;
    tst_status (c, id, state, &attempt);
    cr_assert_str_eq (state, "dead");
    cr_assert_eq (attempt, 3);
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec, s6_6_error_without_retry_fails_at_once)
{
    zsock_t *c = tst_dealer ();
    char id [64], jid [64], state [16];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    zsock_t *w = tst_worker ("w1", "noop", 1);
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    tst_done (w, jid, attempt, false, RXQ_E_PARAM, false);
    tst_pump (100);
    tst_status (c, id, state, &attempt);
    cr_assert_str_eq (state, "failed");
    cr_assert_eq (attempt, 1);
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec, s6_4_silent_worker_declared_dead_and_job_requeued)
{
    zsock_t *c = tst_dealer ();
    char id [64], jid [64], state [16];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    zsock_t *w1 = tst_worker ("w1", "noop", 1);
    uint64_t attempt;
    tst_expect_job (w1, jid, sizeof jid, &attempt);
    //  w1 goes silent; w2 registers and keeps answering heartbeats.
    zsock_t *w2 = tst_worker ("w2", "noop", 1);
    int64_t start = zclock_mono ();
    tst_reply_t r;
    bool got = false;
    while (!got && zclock_mono () - start < 3000) {
        cr_assert_eq (tst_recv (w2, &r, 3000), 0);
        if (r.cmd == RXQ_CMD_HEARTBEAT)
            tst_send_raw (w2, RXQ_PROTO_WORKER, RXQ_CMD_HEARTBEAT, "\x80", 1);
        else {
            cr_assert_eq (r.cmd, RXQ_CMD_JOB);
            cmn_codec_get_uint (&r.body.root, "attempt", &attempt, NULL);
            got = true;
        }
        tst_reply_free (&r);
    }
    cr_assert (got, "job never moved to the live worker");
    cr_assert_eq (attempt, 2);
    //  Detected after liveness (3) x heartbeat (100 ms), not much later.
    cr_assert_lt (zclock_mono () - start, 1000);
    //  w1's late result is refused.
    tst_done (w1, jid, 1, true, 0, true);
    tst_pump (100);
    cr_assert_eq (brk_broker_stats (tst_broker)->stale_refused, 1);
    tst_status (c, id, state, NULL);
    cr_assert_str_eq (state, "leased");
    zsock_destroy (&w1);
    zsock_destroy (&w2);
    zsock_destroy (&c);
}

Test (spec, s5_5_cancel_queued_and_leased)
{
    zsock_t *c = tst_dealer ();
    char id1 [64], id2 [64], jid [64], state [16];
    tst_submit (c, "noop", 1, NULL, NULL, id1, sizeof id1);
    zsock_t *w = tst_worker ("w1", "noop", 1);
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    tst_submit (c, "noop", 1, NULL, NULL, id2, sizeof id2);    // stays queued
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (pk, "req", 100);
    cmn_pack_kv_str (pk, "id", id2);
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_CANCEL, &b);
    tst_reply_t r;
    cr_assert_eq (tst_recv_skip_hb (c, &r, 2000), 0);
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL);
    tst_reply_free (&r);
    tst_status (c, id2, state, NULL);
    cr_assert_str_eq (state, "cancelled");
    //  The leased one: ABORT to the worker, cancelled once it reports.
    pk = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (pk, "req", 101);
    cmn_pack_kv_str (pk, "id", id1);
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_CANCEL, &b);
    cr_assert_eq (tst_recv_skip_hb (w, &r, 2000), 0);
    cr_assert_eq (r.cmd, RXQ_CMD_ABORT);
    tst_reply_free (&r);
    cr_assert_eq (tst_recv_skip_hb (c, &r, 2000), 0);
    tst_reply_free (&r);
    tst_done (w, jid, attempt, false, RXQ_E_CANCELLED, true);
    tst_pump (100);
    tst_status (c, id1, state, NULL);
    cr_assert_str_eq (state, "cancelled");
    //  Cancelling an ended job is an error.
    pk = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (pk, "req", 102);
    cmn_pack_kv_str (pk, "id", id1);
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_CANCEL, &b);
    cr_assert_eq (tst_recv_skip_hb (c, &r, 2000), 0);
    cr_assert_eq (s_error_code (&r), RXQ_E_STATE);
    tst_reply_free (&r);
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec, s7_high_priority_submitted_behind_100_low_starts_first)
{
    zsock_t *c = tst_dealer ();
    char id [64], high [64], jid [64];
    for (int i = 0; i < 100; i++)
        tst_submit (c, "noop", RXQ_PRIORITY_LOW, NULL, NULL, id, sizeof id);
    tst_submit (c, "noop", RXQ_PRIORITY_HIGH, NULL, NULL, high, sizeof high);
    zsock_t *w = tst_worker ("w1", "noop", 1);
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    cr_assert_str_eq (jid, high);
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec, s7_fifo_within_a_priority)
{
    zsock_t *c = tst_dealer ();
    char ids [5][64], jid [64];
    for (int i = 0; i < 5; i++)
        tst_submit (c, "noop", 1, NULL, NULL, ids [i], sizeof ids [i]);
    zsock_t *w = tst_worker ("w1", "noop", 1);
    for (int i = 0; i < 5; i++) {
        uint64_t attempt;
        tst_expect_job (w, jid, sizeof jid, &attempt);
        cr_assert_str_eq (jid, ids [i]);
        tst_done (w, jid, attempt, true, 0, true);
    }
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec, s7_jobs_go_only_to_workers_running_their_kind)
{
    zsock_t *c = tst_dealer ();
    char id [64];
    tst_submit (c, "bench.device", 1, NULL, NULL, id, sizeof id);
    zsock_t *w = tst_worker ("cpu-only", "noop", 1);
    tst_reply_t r;
    cr_assert_neq (tst_recv_skip_hb (w, &r, 300), 0, "a noop-only worker got bench.device");
    char state [16];
    tst_status (c, id, state, NULL);
    cr_assert_str_eq (state, "queued");
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec, s5_4_watch_streams_events_then_final)
{
    zsock_t *c = tst_dealer ();
    char id [64], jid [64];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (pk, "req", 55);
    cmn_pack_kv_str (pk, "id", id);
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_WATCH, &b);
    zsock_t *w = tst_worker ("w1", "noop", 1);
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    pk = tst_body_begin (&b, 4);
    cmn_pack_kv_str (pk, "id", jid);
    cmn_pack_kv_uint (pk, "attempt", attempt);
    cmn_pack_kv_double (pk, "fraction", 0.5);
    cmn_pack_kv_str (pk, "message", "halfway");
    tst_send (w, RXQ_PROTO_WORKER, RXQ_CMD_PROGRESS, &b);
    tst_done (w, jid, attempt, true, 0, true);
    const char *want [] = { "accepted", "leased", "progress", "succeeded" };
    int seen = 0;
    tst_reply_t r;
    for (;;) {
        cr_assert_eq (tst_recv_skip_hb (c, &r, 3000), 0, "watch stream stopped after %d events", seen);
        if (r.cmd == RXQ_CMD_FINAL) {
            tst_reply_free (&r);
            break;
        }
        cr_assert_eq (r.cmd, RXQ_CMD_PARTIAL);
        const msgpack_object *ev = NULL;
        char type [32];
        cmn_codec_get_map (&r.body.root, "event", &ev, NULL);
        cmn_codec_get_cstr (ev, "type", type, sizeof type, NULL);
        cr_assert (seen < 4, "unexpected extra event %s", type);
        cr_assert_str_eq (type, want [seen]);
        seen++;
        tst_reply_free (&r);
    }
    cr_assert_eq (seen, 4);
    zsock_destroy (&w);
    zsock_destroy (&c);
}

//  Regression: a WATCH read in the same loop turn as its job's DONE found
//  the job in memory, then wrote the batch (which forgets ended jobs) and
//  added its watcher to the freed record: no FINAL ever came (a `rxq
//  bench` of a job that fails at once hung in a clean-clone ASan run).
Test (spec, s5_4_watch_in_the_turn_its_job_ends_gets_final)
{
    zsock_t *c = tst_dealer ();
    char id [64], jid [64];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    zsock_t *w = tst_worker ("w1", "noop", 1);
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    //  Both queued before the broker's next turn, so one turn reads both.
    tst_done (w, jid, attempt, false, RXQ_E_PARAM, false);
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (pk, "req", 77);
    cmn_pack_kv_str (pk, "id", id);
    zclock_sleep (50);
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_WATCH, &b);
    zclock_sleep (50);
    tst_reply_t r;
    bool final = false;
    while (!final && tst_recv_skip_hb (c, &r, 3000) == 0) {
        final = r.cmd == RXQ_CMD_FINAL;
        if (final) {
            const msgpack_object *job = NULL;
            char state [16] = "";
            cr_assert_eq (cmn_codec_get_map (&r.body.root, "job", &job, NULL), 0);
            cmn_codec_get_cstr (job, "state", state, sizeof state, NULL);
            cr_assert_str_eq (state, "failed");
        }
        tst_reply_free (&r);
    }
    cr_assert (final, "the watch got its FINAL");
    zsock_destroy (&w);
    zsock_destroy (&c);
}

//  Sends WATCH {id, since} (SINCE may be NULL) and reads the replay up to
//  the FINAL: the events' types and eids into TYPES and EIDS (MAX each).
//  Returns how many events came.
static int
s_watch_replay (zsock_t *c, const char *id, const char *since, char (*types) [32],
                char (*eids) [48], int max)
{
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, since ? 3 : 2);
    cmn_pack_kv_uint (pk, "req", 91);
    cmn_pack_kv_str (pk, "id", id);
    if (since)
        cmn_pack_kv_str (pk, "since", since);
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_WATCH, &b);
    int n = 0;
    tst_reply_t r;
    for (;;) {
        cr_assert_eq (tst_recv_skip_hb (c, &r, 3000), 0, "replay stopped after %d events", n);
        if (r.cmd == RXQ_CMD_FINAL) {
            tst_reply_free (&r);
            return n;
        }
        cr_assert_eq (r.cmd, RXQ_CMD_PARTIAL);
        cr_assert_lt (n, max, "more events than expected");
        const msgpack_object *ev = NULL;
        cr_assert_eq (cmn_codec_get_map (&r.body.root, "event", &ev, NULL), 0);
        cr_assert_eq (cmn_codec_get_cstr (ev, "type", types [n], 32, NULL), 0);
        cr_assert_eq (cmn_codec_get_cstr (ev, "eid", eids [n], 48, NULL), 0);
        n++;
        tst_reply_free (&r);
    }
}

//  Runs one noop job to success on worker W, with a PROGRESS when
//  PROGRESS is true; returns its id in ID (64 bytes).
static void
s_run_noop (zsock_t *c, zsock_t *w, bool progress, char *id)
{
    char jid [64];
    uint64_t attempt;
    tst_submit (c, "noop", 1, NULL, NULL, id, 64);
    tst_expect_job (w, jid, sizeof jid, &attempt);
    if (progress) {
        tst_body_t b;
        msgpack_packer *pk = tst_body_begin (&b, 4);
        cmn_pack_kv_str (pk, "id", jid);
        cmn_pack_kv_uint (pk, "attempt", attempt);
        cmn_pack_kv_double (pk, "fraction", 0.5);
        cmn_pack_kv_str (pk, "message", "halfway");
        tst_send (w, RXQ_PROTO_WORKER, RXQ_CMD_PROGRESS, &b);
    }
    tst_done (w, jid, attempt, true, 0, true);
    char state [16] = "";
    for (int i = 0; i < 100 && strcmp (state, "succeeded"); i++) {
        tst_pump (20);
        tst_redis_state (id, state);
    }
    cr_assert_str_eq (state, "succeeded");
}

static long
s_stream_len (const char *id)
{
    redisReply *r = tst_redis_cmd (&tst_redis, "XLEN rxq:test:events:%s", id);
    cr_assert (r && r->type == REDIS_REPLY_INTEGER);
    long n = (long) r->integer;
    freeReplyObject (r);
    return n;
}

//  docs/redis.md: a job's lifecycle events live in its record until one
//  does not fit; the replay of 5.4 is the same either way.
Test (spec, s5_4_replay_of_events_kept_in_the_record)
{
    zsock_t *c = tst_dealer ();
    zsock_t *w = tst_worker ("w1", "noop", 1);
    char id [64], types [8][32], eids [8][48];
    s_run_noop (c, w, false, id);
    cr_assert_eq (s_stream_len (id), 0, "a job without progress has no stream");
    int n = s_watch_replay (c, id, NULL, types, eids, 8);
    cr_assert_eq (n, 3);
    cr_assert_str_eq (types [0], "accepted");
    cr_assert_str_eq (types [1], "leased");
    cr_assert_str_eq (types [2], "succeeded");
    //  `since` is exclusive, in stream-id order.
    char first [48];
    snprintf (first, sizeof first, "%s", eids [0]);
    n = s_watch_replay (c, id, first, types, eids, 8);
    cr_assert_eq (n, 2);
    cr_assert_str_eq (types [0], "leased");
    n = s_watch_replay (c, id, eids [1], types, eids, 8);
    cr_assert_eq (n, 0);
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec, s5_4_replay_of_events_moved_to_the_stream)
{
    zsock_t *c = tst_dealer ();
    zsock_t *w = tst_worker ("w1", "noop", 1);
    char id [64], types [8][32], eids [8][48];
    s_run_noop (c, w, true, id);
    cr_assert_eq (s_stream_len (id), 4, "the progress moved every event to the stream");
    cmn_body_t rec;
    cr_assert_eq (tst_job_record (&tst_redis, "rxq:test:", id, &rec), 0);
    bool streamed = false;
    cr_assert_eq (cmn_codec_get_bool (&rec.root, "streamed", &streamed, NULL), 0);
    cr_assert (streamed);
    cr_assert_null (cmn_codec_find (&rec.root, "events"));
    cmn_body_free (&rec);
    static const char *want [] = { "accepted", "leased", "progress", "succeeded" };
    int n = s_watch_replay (c, id, NULL, types, eids, 8);
    cr_assert_eq (n, 4);
    for (int i = 0; i < 4; i++)
        cr_assert_str_eq (types [i], want [i]);
    n = s_watch_replay (c, id, eids [1], types, eids, 8);
    cr_assert_eq (n, 2);
    cr_assert_str_eq (types [0], "progress");
    zsock_destroy (&w);
    zsock_destroy (&c);
}

//  Events kept in the record survive a broker restart with the job, and
//  the first event of the new epoch after them moves them to the stream in
//  order.
Test (spec, s5_4_record_events_survive_a_restart)
{
    zsock_t *c = tst_dealer ();
    char id [64], types [8][32], eids [8][48];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    tst_pump (50);
    zsock_destroy (&c);
    tst_broker_restart ();
    c = tst_dealer ();
    zsock_t *w = tst_worker ("w1", "noop", 1);
    char jid [64];
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    cr_assert_str_eq (jid, id);
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 4);
    cmn_pack_kv_str (pk, "id", jid);
    cmn_pack_kv_uint (pk, "attempt", attempt);
    cmn_pack_kv_double (pk, "fraction", 0.5);
    cmn_pack_kv_str (pk, "message", "halfway");
    tst_send (w, RXQ_PROTO_WORKER, RXQ_CMD_PROGRESS, &b);
    tst_done (w, jid, attempt, true, 0, true);
    tst_pump (200);
    static const char *want [] = { "accepted", "leased", "progress", "succeeded" };
    int n = s_watch_replay (c, id, NULL, types, eids, 8);
    cr_assert_eq (n, 4);
    for (int i = 0; i < 4; i++)
        cr_assert_str_eq (types [i], want [i]);
    cr_assert_eq (strncmp (eids [0], "1-", 2), 0, "accepted in epoch 1: %s", eids [0]);
    cr_assert_eq (strncmp (eids [1], "2-", 2), 0, "leased in epoch 2: %s", eids [1]);
    cr_assert_eq (s_stream_len (id), 4);
    zsock_destroy (&w);
    zsock_destroy (&c);
}

Test (spec, s5_6_list_newest_first_with_state_filter)
{
    zsock_t *c = tst_dealer ();
    char ids [3][64];
    for (int i = 0; i < 3; i++)
        tst_submit (c, "noop", 1, NULL, NULL, ids [i], sizeof ids [i]);
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (pk, "req", 9);
    cmn_pack_kv_str (pk, "state", "queued");
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_LIST, &b);
    tst_reply_t r;
    cr_assert_eq (tst_recv_skip_hb (c, &r, 2000), 0);
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL);
    const msgpack_object *jobs = NULL;
    cr_assert_eq (cmn_codec_get_array (&r.body.root, "jobs", &jobs, NULL), 0);
    cr_assert_eq (jobs->via.array.size, 3);
    char first [64];
    cmn_codec_get_cstr (&jobs->via.array.ptr [0], "id", first, sizeof first, NULL);
    cr_assert_str_eq (first, ids [2]);
    tst_reply_free (&r);
    zsock_destroy (&c);
}

Test (spec, s2_restart_rebuilds_queue_and_reclaims_leases)
{
    zsock_t *c = tst_dealer ();
    char queued [64], leased [64], jid [64], state [16];
    tst_submit (c, "noop", 1, NULL, NULL, leased, sizeof leased);
    zsock_t *w = tst_worker ("w1", "noop", 1);
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    tst_submit (c, "noop", 1, NULL, NULL, queued, sizeof queued);
    zsock_destroy (&c);
    zsock_destroy (&w);
    tst_broker_restart ();
    //  The worker comes back holding its lease and reclaims it.
    w = tst_dealer ();
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 4);
    cmn_pack_kv_str (pk, "name", "w1");
    cmn_pack_kv_uint (pk, "capacity", 2);
    cmn_pack_key (pk, "kinds");
    msgpack_pack_array (pk, 1);
    cmn_pack_cstr (pk, "noop");
    cmn_pack_key (pk, "jobs");
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 2);
    cmn_pack_kv_str (pk, "id", jid);
    cmn_pack_kv_uint (pk, "attempt", attempt);
    tst_send (w, RXQ_PROTO_WORKER, RXQ_CMD_READY, &b);
    //  It also gets the queued job, which survived the restart.
    char jid2 [64];
    uint64_t attempt2;
    tst_expect_job (w, jid2, sizeof jid2, &attempt2);
    cr_assert_str_eq (jid2, queued);
    tst_done (w, jid, attempt, true, 0, true);
    tst_done (w, jid2, attempt2, true, 0, true);
    tst_pump (200);
    tst_redis_state (leased, state);
    cr_assert_str_eq (state, "succeeded");
    tst_redis_state (queued, state);
    cr_assert_str_eq (state, "succeeded");
    zsock_destroy (&w);
}

Test (spec, s2_restart_requeues_unreclaimed_leases)
{
    zsock_t *c = tst_dealer ();
    char id [64], jid [64];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    zsock_t *w = tst_worker ("w1", "noop", 1);
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    zsock_destroy (&w);
    zsock_destroy (&c);
    tst_broker_restart ();
    zsock_t *w2 = tst_worker ("w2", "noop", 1);
    //  Grace is 2 x liveness x heartbeat = 600 ms, then the job moves.
    tst_reply_t r;
    int64_t start = zclock_mono ();
    for (;;) {
        cr_assert_eq (tst_recv (w2, &r, 3000), 0, "job never requeued");
        if (r.cmd == RXQ_CMD_HEARTBEAT) {
            tst_send_raw (w2, RXQ_PROTO_WORKER, RXQ_CMD_HEARTBEAT, "\x80", 1);
            tst_reply_free (&r);
            continue;
        }
        cr_assert_eq (r.cmd, RXQ_CMD_JOB);
        cmn_codec_get_uint (&r.body.root, "attempt", &attempt, NULL);
        tst_reply_free (&r);
        break;
    }
    cr_assert_eq (attempt, 2);
    cr_assert_lt (zclock_mono () - start, 2000);
    zsock_destroy (&w2);
}

Test (spec, s9_redis_outage_refuses_then_recovers)
{
    zsock_t *c = tst_dealer ();
    char id [64];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    int port = tst_redis.port;
    tst_redis_stop (&tst_redis, true);
    //  A submission while Redis is down is refused, with a clear error.
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (pk, "req", 300);
    cmn_pack_kv_str (pk, "kind", "noop");
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, &b);
    tst_reply_t r;
    cr_assert_eq (tst_recv_skip_hb (c, &r, 5000), 0);
    cr_assert_eq (s_error_code (&r), RXQ_E_UNAVAILABLE);
    tst_reply_free (&r);
    //  Redis returns (AOF keeps the first job); the broker reconnects.
    char dir [256];
    snprintf (dir, sizeof dir, "%s", tst_redis.dir);
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
    tst_redis.pid = pid;
    tst_pump (2500);
    char id2 [64], state [16];
    tst_submit (c, "noop", 1, NULL, NULL, id2, sizeof id2);
    tst_redis_state (id2, state);
    cr_assert_str_eq (state, "queued");
    zsock_destroy (&c);
}

//  READY with a device vendor and a tag, for routing tests.
static zsock_t *
s_worker_with_device (const char *name, const char *vendor, const char *tag)
{
    zsock_t *w = tst_dealer ();
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 4);
    cmn_pack_kv_str (pk, "name", name);
    cmn_pack_key (pk, "kinds");
    msgpack_pack_array (pk, 1);
    cmn_pack_cstr (pk, "noop");
    cmn_pack_key (pk, "device");
    msgpack_pack_map (pk, 4);
    cmn_pack_kv_str (pk, "vendor", vendor);
    cmn_pack_kv_str (pk, "type", "gpu");
    cmn_pack_kv_uint (pk, "global_mem", 8ull << 30);
    cmn_pack_kv_str (pk, "opencl_c", "OpenCL C 1.2 ");
    cmn_pack_key (pk, "tags");
    msgpack_pack_array (pk, 1);
    cmn_pack_cstr (pk, tag);
    tst_send (w, RXQ_PROTO_WORKER, RXQ_CMD_READY, &b);
    tst_reply_t r;
    cr_assert_eq (tst_recv (w, &r, 3000), 0);
    tst_reply_free (&r);
    return w;
}

static void
s_submit_body (zsock_t *c, tst_body_t *b, char *id, size_t size)
{
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, b);
    tst_reply_t r;
    cr_assert_eq (tst_recv_skip_hb (c, &r, 3000), 0);
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL, "SUBMIT refused");
    cr_assert_eq (cmn_codec_get_cstr (&r.body.root, "id", id, size, NULL), 0);
    tst_reply_free (&r);
}

Test (spec, s5_1_2_requirements_route_jobs_and_explain_waits)
{
    zsock_t *c = tst_dealer ();
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 3);
    cmn_pack_kv_uint (pk, "req", 900);
    cmn_pack_kv_str (pk, "kind", "noop");
    cmn_pack_key (pk, "require");
    msgpack_pack_map (pk, 3);
    cmn_pack_kv_str (pk, "vendor", "advanced micro");
    cmn_pack_kv_uint (pk, "min_global_mem", 4ull << 30);
    cmn_pack_kv_str (pk, "tag", "rack-7");
    char id [64], jid [64];
    s_submit_body (c, &b, id, sizeof id);
    zsock_t *nv = s_worker_with_device ("nv", "NVIDIA Corporation", "rack-7");
    tst_reply_t r;
    tst_worker_quiet (nv, 300);        // no AMD-only job for the NVIDIA worker
    //  STATUS says why it waits.
    pk = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (pk, "req", 901);
    cmn_pack_kv_str (pk, "id", id);
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_STATUS, &b);
    cr_assert_eq (tst_recv_skip_hb (c, &r, 2000), 0);
    const msgpack_object *job = NULL;
    cmn_codec_get_map (&r.body.root, "job", &job, NULL);
    char reason [200] = "";
    cmn_codec_get_cstr (job, "reason", reason, sizeof reason, NULL);
    cr_assert (strstr (reason, "requirement") && strstr (reason, "advanced micro"),
               "reason: '%s'", reason);
    tst_reply_free (&r);
    zsock_t *amd = s_worker_with_device ("rx580", "Advanced Micro Devices, Inc.", "rack-7");
    uint64_t attempt;
    tst_expect_job (amd, jid, sizeof jid, &attempt);
    cr_assert_str_eq (jid, id);
    //  An unknown requirement is refused.
    pk = tst_body_begin (&b, 3);
    cmn_pack_kv_uint (pk, "req", 902);
    cmn_pack_kv_str (pk, "kind", "noop");
    cmn_pack_key (pk, "require");
    msgpack_pack_map (pk, 1);
    cmn_pack_kv_str (pk, "colour", "red");
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, &b);
    cr_assert_eq (tst_recv_skip_hb (c, &r, 2000), 0);
    cr_assert_eq (s_error_code (&r), RXQ_E_PARAM);
    tst_reply_free (&r);
    zsock_destroy (&nv);
    zsock_destroy (&amd);
    zsock_destroy (&c);
}

Test (spec, s6_6_1_queue_timeout_fails_a_job_that_never_starts)
{
    zsock_t *c = tst_dealer ();
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 3);
    cmn_pack_kv_uint (pk, "req", 910);
    cmn_pack_kv_str (pk, "kind", "noop");
    cmn_pack_kv_uint (pk, "queue_timeout_ms", 150);
    char id [64], state [16];
    s_submit_body (c, &b, id, sizeof id);
    tst_pump (600);
    tst_status (c, id, state, NULL);
    cr_assert_str_eq (state, "failed");
    zsock_destroy (&c);
}

//  A worker that answers heartbeats (so it stays alive) with BODY (raw).
static void
s_keep_alive (zsock_t *w, const char *body, size_t len, int ms, int *aborts)
{
    int64_t end = zclock_mono () + ms;
    tst_reply_t r;
    while (zclock_mono () < end) {
        if (tst_recv (w, &r, (int) (end - zclock_mono ())) != 0)
            break;
        if (r.cmd == RXQ_CMD_HEARTBEAT)
            tst_send_raw (w, RXQ_PROTO_WORKER, RXQ_CMD_HEARTBEAT, body, len);
        else
        if (r.cmd == RXQ_CMD_ABORT && aborts)
            (*aborts)++;
        tst_reply_free (&r);
    }
}

Test (spec, s6_6_1_stalled_device_thread_requeues_and_quarantines)
{
    zsock_t *c = tst_dealer ();
    char id [64], jid [64], state [16];
    tst_submit (c, "noop", 1, NULL, NULL, id, sizeof id);
    zsock_t *w1 = tst_worker ("hangs", "noop", 1);
    uint64_t attempt;
    tst_expect_job (w1, jid, sizeof jid, &attempt);
    //  w1's heartbeats report its device thread stalled for 2 s (> 500).
    s_keep_alive (w1, "\x81\xaastalled_ms\xcd\x07\xd0", 15, 400, NULL);
    tst_status (c, id, state, &attempt);
    cr_assert_str_eq (state, "queued");
    //  A second job is not leased to the quarantined worker.
    char id2 [64];
    tst_submit (c, "noop", 1, NULL, NULL, id2, sizeof id2);
    s_keep_alive (w1, "\x81\xaastalled_ms\xcd\x07\xd0", 15, 300, NULL);
    tst_status (c, id2, state, NULL);
    cr_assert_str_eq (state, "queued");
    //  Its device thread comes back: the stuck attempt reports (stale, and
    //  it frees the capacity it held), quarantine is lifted, work resumes.
    tst_done (w1, jid, 1, true, 0, true);
    tst_send_raw (w1, RXQ_PROTO_WORKER, RXQ_CMD_HEARTBEAT, "\x80", 1);
    tst_expect_job (w1, jid, sizeof jid, &attempt);
    cr_assert_str_eq (jid, id);
    cr_assert_eq (attempt, 2);
    zsock_destroy (&w1);
    zsock_destroy (&c);
}

Test (spec, s6_6_1_deadline_overrun_aborts_then_fails)
{
    zsock_t *c = tst_dealer ();
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 3);
    cmn_pack_kv_uint (pk, "req", 920);
    cmn_pack_kv_str (pk, "kind", "noop");
    cmn_pack_kv_uint (pk, "timeout_ms", 100);
    char id [64], jid [64], state [16];
    s_submit_body (c, &b, id, sizeof id);
    zsock_t *w = tst_worker ("slow", "noop", 1);
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    //  The worker ignores the deadline: ABORT after 100 + 300 ms, failure
    //  300 ms after that.
    int aborts = 0;
    s_keep_alive (w, "\x80", 1, 1400, &aborts);
    cr_assert_eq (aborts, 1);
    uint64_t a;
    tst_status (c, id, state, &a);
    cr_assert_str_eq (state, "failed");
    zsock_destroy (&w);
    zsock_destroy (&c);
}

//  docs/redis.md "Upgrading": jobs stored by a broker from before the
//  record was one string (a hash per job, every event in its stream) are
//  read after an upgrade: a queued one is recovered, leased and run (its
//  record then replaces the hash), an ended one answers STATUS, and both
//  replay their events from the stream.
static void
s_old_hash_job (const char *id, const char *state, uint64_t seq, const char *result)
{
    //  The old broker wrote `result` only once there was one.
    redisReply *r = tst_redis_cmd (&tst_redis, "HSET rxq:test:job:%s id %s kind noop state %s "
                                   "priority 1 seq %" PRIu64 " attempt 0 max_attempts 3 "
                                   "failures 0 timeout_ms 0 worker %s worker_name %s "
                                   "created_ms 1000 started_ms 0 finished_ms 0 error_code 0 "
                                   "error_msg %s cancel 0 key %s params %b",
                                   id, id, state, seq, "", "", "", "", "\x80", (size_t) 1);
    cr_assert (r && r->type == REDIS_REPLY_INTEGER, "HSET: %s", r ? r->str : "no reply");
    freeReplyObject (r);
    if (result) {
        r = tst_redis_cmd (&tst_redis, "HSET rxq:test:job:%s result %b", id, result,
                           strlen (result));
        freeReplyObject (r);
    }
    r = tst_redis_cmd (&tst_redis, "ZADD rxq:test:state:%s %" PRIu64 " %s", state, seq, id);
    freeReplyObject (r);
    //  Its accepted event, in the old epoch 0.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_str (&pk, "eid", "0-1");
    cmn_pack_kv_str (&pk, "type", "accepted");
    cmn_pack_kv_uint (&pk, "ms", 1000);
    r = tst_redis_cmd (&tst_redis, "XADD rxq:test:events:%s 0-%" PRIu64 " e %b", id, seq,
                       sb.data, sb.size);
    cr_assert (r && r->type == REDIS_REPLY_STRING, "XADD: %s", r ? r->str : "no reply");
    freeReplyObject (r);
    msgpack_sbuffer_destroy (&sb);
}

Test (spec, s2_upgrade_reads_jobs_an_older_broker_stored_as_hashes)
{
    s_old_hash_job ("0000-00000042", "queued", 0x42, NULL);
    s_old_hash_job ("0000-00000043", "succeeded", 0x43, "\x81\xa2ok\xc3");
    tst_broker_restart ();
    zsock_t *c = tst_dealer ();
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (pk, "req", 6);
    cmn_pack_kv_str (pk, "id", "0000-00000043");
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_STATUS, &b);
    tst_reply_t r;
    cr_assert_eq (tst_recv (c, &r, 2000), 0);
    char msg [200] = "";
    cmn_codec_get_cstr (&r.body.root, "message", msg, sizeof msg, NULL);
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL, "STATUS of an old ended job: command %d %s", r.cmd, msg);
    const msgpack_object *job = NULL, *result = NULL;
    cr_assert_eq (cmn_codec_get_map (&r.body.root, "job", &job, NULL), 0);
    char state [16];
    cr_assert_eq (cmn_codec_get_cstr (job, "state", state, sizeof state, NULL), 0);
    cr_assert_str_eq (state, "succeeded");
    cr_assert_eq (cmn_codec_get_map (job, "result", &result, NULL), 0);
    cr_assert_not_null (cmn_codec_find (result, "ok"));
    tst_reply_free (&r);

    zsock_t *w = tst_worker ("w1", "noop", 1);
    char jid [64];
    uint64_t attempt;
    tst_expect_job (w, jid, sizeof jid, &attempt);
    cr_assert_str_eq (jid, "0000-00000042");
    tst_done (w, jid, attempt, true, 0, true);
    for (int i = 0; i < 100 && strcmp (state, "succeeded") != 0; i++) {
        tst_pump (20);
        strcpy (state, "");
        redisReply *t = tst_redis_cmd (&tst_redis, "TYPE rxq:test:job:%s", jid);
        bool string = t && t->type == REDIS_REPLY_STATUS && !strcmp (t->str, "string");
        freeReplyObject (t);
        if (string)
            tst_redis_state (jid, state);
    }
    cr_assert_str_eq (state, "succeeded", "the run job's record replaced its hash");
    char types [8][32], eids [8][48];
    static const char *want [] = { "accepted", "leased", "succeeded" };
    int n = s_watch_replay (c, jid, NULL, types, eids, 8);
    cr_assert_eq (n, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_str_eq (types [i], want [i]);
    cr_assert_eq (s_watch_replay (c, "0000-00000043", NULL, types, eids, 8), 1);
    cr_assert_str_eq (types [0], "accepted");
    zsock_destroy (&w);
    zsock_destroy (&c);
}

//  TTL of KEY in seconds (-2 absent, -1 no expiry).
static long long
s_ttl (const char *fmt, const char *id)
{
    char key [256];
    snprintf (key, sizeof key, fmt, id);
    redisReply *r = tst_redis_cmd (&tst_redis, "TTL %s", key);
    cr_assert (r && r->type == REDIS_REPLY_INTEGER);
    long long t = r->integer;
    freeReplyObject (r);
    return t;
}

//  docs/redis.md "Retention": an ended job (record, stream, idempotency
//  key) expires --keep-ended seconds after it ends and leaves its state
//  set; a job still queued never expires. After that its id is unknown
//  and its key is free for a new job.
Test (spec, s2_ended_jobs_leave_redis_after_keep_ended)
{
    tst_cfg.keep_ended_s = 1;
    tst_broker_restart ();
    zsock_t *c = tst_dealer ();
    zsock_t *w = tst_worker ("w1", "noop", 1);
    char id [64], keyed [64], jid [64], queued [64];
    s_run_noop (c, w, true, id);                // with progress: streamed
    uint64_t attempt;
    tst_submit (c, "noop", 1, "key", "k-1", keyed, sizeof keyed);
    tst_expect_job (w, jid, sizeof jid, &attempt);
    tst_done (w, jid, attempt, true, 0, true);
    tst_submit (c, "bench.device", 1, NULL, NULL, queued, sizeof queued);   // no worker runs it
    char state [16] = "";
    for (int i = 0; i < 100 && strcmp (state, "succeeded"); i++) {
        tst_pump (20);
        tst_redis_state (keyed, state);
    }
    cr_assert_str_eq (state, "succeeded");
    long long t = s_ttl ("rxq:test:job:%s", id);
    cr_assert (t == 0 || t == 1, "record TTL %lld", t);
    t = s_ttl ("rxq:test:events:%s", id);
    cr_assert (t == 0 || t == 1, "stream TTL %lld", t);
    t = s_ttl ("rxq:test:key:%s", "k-1");
    cr_assert (t == 0 || t == 1, "key TTL %lld", t);
    cr_assert_eq (s_ttl ("rxq:test:job:%s", queued), -1, "a queued job does not expire");
    //  Ended sets are scored by finish time (Unix ms).
    redisReply *r = tst_redis_cmd (&tst_redis, "ZSCORE rxq:test:state:succeeded %s", id);
    cr_assert (r && r->type == REDIS_REPLY_STRING);
    cr_assert_gt (strtod (r->str, NULL), 1e12);
    freeReplyObject (r);

    tst_worker_quiet (w, 2300);                 // past expiry, and two prunes
    cr_assert_eq (s_ttl ("rxq:test:job:%s", id), -2, "record still there");
    cr_assert_eq (s_ttl ("rxq:test:events:%s", id), -2, "stream still there");
    r = tst_redis_cmd (&tst_redis, "ZCARD rxq:test:state:succeeded");
    cr_assert (r && r->type == REDIS_REPLY_INTEGER);
    cr_assert_eq (r->integer, 0, "ended set not pruned");
    freeReplyObject (r);
    tst_body_t b;
    msgpack_packer *pk = tst_body_begin (&b, 2);
    cmn_pack_kv_uint (pk, "req", 77);
    cmn_pack_kv_str (pk, "id", id);
    tst_send (c, RXQ_PROTO_CLIENT, RXQ_CMD_STATUS, &b);
    tst_reply_t rep;
    cr_assert_eq (tst_recv_skip_hb (c, &rep, 2000), 0);
    cr_assert_eq (s_error_code (&rep), RXQ_E_NOTFOUND);
    tst_reply_free (&rep);
    tst_status (c, queued, state, NULL);
    cr_assert_str_eq (state, "queued");
    char again [64];
    tst_submit (c, "noop", 1, "key", "k-1", again, sizeof again);
    cr_assert_str_neq (again, keyed, "the expired key still named the old job");
    zsock_destroy (&w);
    zsock_destroy (&c);
}
