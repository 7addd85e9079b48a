/*  brk_job: the stored form of a job record (docs/redis.md): packed and
 *  loaded back field for field, events kept in it up to BRK_EVENTS_INLINE,
 *  and malformed records refused without a crash. */
#include <criterion/criterion.h>
#include <stdio.h>
#include "brk_job.h"
#include "cmn_codec.h"
#include "cmn_error.h"

//  Packs an event map {eid, type, ms} and keeps it in JOB; returns what
//  brk_job_keep_event returned.
static int
s_keep (brk_job_t *job, const char *eid, const char *type)
{
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 3);
    cmn_pack_kv_str (&b.pk, "eid", eid);
    cmn_pack_kv_str (&b.pk, "type", type);
    cmn_pack_kv_uint (&b.pk, "ms", 1700000000000ull);
    int rc = brk_job_keep_event (job, eid, b.sb.data, b.sb.size);
    msgpack_sbuffer_destroy (&b.sb);
    return rc;
}

//  A job with every field of the record set.
static brk_job_t *
s_full_job (void)
{
    brk_job_t *job = brk_job_new ();
    cr_assert_not_null (job);
    snprintf (job->id, sizeof job->id, "0003-0000001a");
    snprintf (job->kind, sizeof job->kind, "bench.device");
    job->state = BRK_FAILED;
    job->priority = 2;
    job->seq = (3ull << 32) | 26;
    job->attempt = 4;
    job->max_attempts = 5;
    job->failures = 3;
    job->timeout_ms = 9000;
    job->queue_deadline_ms = 1700000009999;
    snprintf (job->worker, sizeof job->worker, "00a1b2c3d4");
    snprintf (job->worker_name, sizeof job->worker_name, "gpu-box-1");
    job->created_ms = 1700000000001;
    job->started_ms = 1700000000002;
    job->finished_ms = 1700000000003;
    snprintf (job->require.vendor, sizeof job->require.vendor, "NVIDIA");
    job->require.min_global_mem = 1ull << 33;
    job->require.opencl_c = 12;
    snprintf (job->require.tag, sizeof job->require.tag, "fast");
    cr_assert_eq (brk_job_set_bytes (&job->params, &job->params_len, "\x81\xa1n\xcd\x04\x00", 6), 0);
    cr_assert_eq (brk_job_set_bytes (&job->result, &job->result_len, "\x81\xa2ok\xc3", 5), 0);
    brk_job_set_error (job, RXQ_E_TIMEOUT, "took too long");
    job->key = strdup ("nightly-7");
    job->cancel_requested = true;
    cr_assert_eq (s_keep (job, "3-1", "accepted"), 0);
    cr_assert_eq (s_keep (job, "3-2", "leased"), 0);
    return job;
}

static void
s_pack (brk_job_t *job, cmn_packbuf_t *b)
{
    cmn_packbuf_init (b);
    brk_job_pack_record (job, &b->pk);
}

Test (brk_job, record_round_trips_every_field)
{
    brk_job_t *job = s_full_job ();
    cmn_packbuf_t b;
    s_pack (job, &b);
    brk_job_t *back = brk_job_new ();
    cr_assert_eq (brk_job_load (back, b.sb.data, b.sb.size), 0);
    cr_assert_str_eq (back->id, job->id);
    cr_assert_str_eq (back->kind, job->kind);
    cr_assert_eq (back->state, BRK_FAILED);
    cr_assert_eq (back->stored_state, BRK_FAILED);
    cr_assert_eq (back->priority, 2);
    cr_assert_eq (back->seq, job->seq);
    cr_assert_eq (back->attempt, 4);
    cr_assert_eq (back->max_attempts, 5);
    cr_assert_eq (back->failures, 3);
    cr_assert_eq (back->timeout_ms, 9000);
    cr_assert_eq (back->queue_deadline_ms, job->queue_deadline_ms);
    cr_assert_str_eq (back->worker, "00a1b2c3d4");
    cr_assert_str_eq (back->worker_name, "gpu-box-1");
    cr_assert_eq (back->created_ms, job->created_ms);
    cr_assert_eq (back->started_ms, job->started_ms);
    cr_assert_eq (back->finished_ms, job->finished_ms);
    cr_assert_str_eq (back->require.vendor, "NVIDIA");
    cr_assert_eq (back->require.min_global_mem, 1ull << 33);
    cr_assert_eq (back->require.opencl_c, 12);
    cr_assert_str_eq (back->require.tag, "fast");
    cr_assert_eq (back->params_len, 6);
    cr_assert_eq (memcmp (back->params, job->params, 6), 0);
    cr_assert_eq (back->result_len, 5);
    cr_assert_eq (memcmp (back->result, job->result, 5), 0);
    cr_assert_eq (back->error_code, RXQ_E_TIMEOUT);
    cr_assert_str_eq (back->error_msg, "took too long");
    cr_assert_str_eq (back->key, "nightly-7");
    cr_assert (back->cancel_requested);
    cr_assert_not (back->streamed);
    cr_assert_eq (back->nevents, 2);
    cr_assert_str_eq (back->events [1].eid, "3-2");
    cr_assert_eq (back->events [1].len, job->events [1].len);
    cr_assert_eq (memcmp (back->events [1].data, job->events [1].data, job->events [1].len), 0);
    //  Packed again, the loaded job gives the same bytes.
    cmn_packbuf_t again;
    s_pack (back, &again);
    cr_assert_eq (again.sb.size, b.sb.size);
    cr_assert_eq (memcmp (again.sb.data, b.sb.data, b.sb.size), 0);
    msgpack_sbuffer_destroy (&again.sb);
    msgpack_sbuffer_destroy (&b.sb);
    brk_job_destroy (&back);
    brk_job_destroy (&job);
}

Test (brk_job, record_keeps_at_most_BRK_EVENTS_INLINE_events)
{
    brk_job_t *job = brk_job_new ();
    char eid [16];
    for (int i = 0; i < BRK_EVENTS_INLINE; i++) {
        snprintf (eid, sizeof eid, "1-%d", i + 1);
        cr_assert_eq (s_keep (job, eid, "leased"), 0);
    }
    cr_assert_eq (s_keep (job, "1-99", "succeeded"), -1, "one more than the record keeps");
    cr_assert_eq (job->nevents, BRK_EVENTS_INLINE);
    brk_job_drop_events (job);
    cr_assert_eq (job->nevents, 0);
    job->streamed = true;
    cr_assert_eq (s_keep (job, "1-100", "accepted"), -1, "a streamed job keeps none");
    brk_job_destroy (&job);
    brk_job_destroy (&job);
    cr_assert_null (job);
}

Test (brk_job, streamed_record_round_trips_without_events)
{
    brk_job_t *job = s_full_job ();
    brk_job_drop_events (job);
    job->streamed = true;
    cmn_packbuf_t b;
    s_pack (job, &b);
    brk_job_t *back = brk_job_new ();
    cr_assert_eq (brk_job_load (back, b.sb.data, b.sb.size), 0);
    cr_assert (back->streamed);
    cr_assert_eq (back->nevents, 0);
    msgpack_sbuffer_destroy (&b.sb);
    brk_job_destroy (&back);
    brk_job_destroy (&job);
}

//  Loads LEN bytes at DATA into a fresh job and returns brk_job_load's result.
static int
s_load (const char *data, size_t len)
{
    brk_job_t *job = brk_job_new ();
    cr_assert_not_null (job);
    int rc = brk_job_load (job, data, len);
    brk_job_destroy (&job);
    return rc;
}

Test (brk_job, every_truncation_of_a_record_is_refused)
{
    brk_job_t *job = s_full_job ();
    cmn_packbuf_t b;
    s_pack (job, &b);
    for (size_t len = 0; len < b.sb.size; len++)
        cr_assert_eq (s_load (b.sb.data, len), -1, "truncated at %zu of %zu", len, b.sb.size);
    cr_assert_eq (s_load (b.sb.data, b.sb.size), 0);
    cr_assert_eq (s_load (NULL, 0), -1);
    msgpack_sbuffer_destroy (&b.sb);
    brk_job_destroy (&job);
}

//  Packs a record map with the N key/value pairs of F (F packs them).
static void
s_record (cmn_packbuf_t *b, uint32_t n, void (*f) (msgpack_packer *))
{
    cmn_packbuf_init (b);
    msgpack_pack_map (&b->pk, n);
    f (&b->pk);
}

static void
s_base (msgpack_packer *pk)
{
    cmn_pack_kv_str (pk, "id", "0001-00000001");
    cmn_pack_kv_str (pk, "kind", "noop");
}

static void s_ok (msgpack_packer *pk)          { s_base (pk); cmn_pack_kv_str (pk, "state", "queued"); }
static void s_no_state (msgpack_packer *pk)    { s_base (pk); cmn_pack_kv_uint (pk, "seq", 1); }
static void s_bad_state (msgpack_packer *pk)   { s_base (pk); cmn_pack_kv_str (pk, "state", "sleeping"); }
static void s_bad_seq (msgpack_packer *pk)     { s_ok (pk); cmn_pack_kv_str (pk, "seq", "12"); }
static void s_long_id (msgpack_packer *pk)
{
    cmn_pack_kv_str (pk, "id", "0001-000000010000000000000000000000000000000000000000000000000000");
    cmn_pack_kv_str (pk, "kind", "noop");
    cmn_pack_kv_str (pk, "state", "queued");
}
static void s_bad_params (msgpack_packer *pk)  { s_ok (pk); cmn_pack_kv_str (pk, "params", "x"); }
static void s_bad_error (msgpack_packer *pk)
{
    s_ok (pk);
    cmn_pack_key (pk, "error");
    msgpack_pack_map (pk, 1);
    cmn_pack_kv_int (pk, "code", -5);
}
static void s_bad_require (msgpack_packer *pk)
{
    s_ok (pk);
    cmn_pack_key (pk, "require");
    msgpack_pack_map (pk, 1);
    cmn_pack_kv_str (pk, "colour", "red");
}
static void s_events_not_array (msgpack_packer *pk) { s_ok (pk); cmn_pack_kv_uint (pk, "events", 3); }
static void s_event_without_eid (msgpack_packer *pk)
{
    s_ok (pk);
    cmn_pack_key (pk, "events");
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 1);
    cmn_pack_kv_str (pk, "type", "accepted");
}
static void s_too_many_events (msgpack_packer *pk)
{
    s_ok (pk);
    cmn_pack_key (pk, "events");
    msgpack_pack_array (pk, BRK_EVENTS_INLINE + 1);
    for (int i = 0; i < BRK_EVENTS_INLINE + 1; i++) {
        char eid [16];
        snprintf (eid, sizeof eid, "1-%d", i + 1);
        msgpack_pack_map (pk, 1);
        cmn_pack_kv_str (pk, "eid", eid);
    }
}
static void s_streamed_with_events (msgpack_packer *pk)
{
    s_ok (pk);
    cmn_pack_kv_bool (pk, "streamed", true);
    cmn_pack_key (pk, "events");
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 1);
    cmn_pack_kv_str (pk, "eid", "1-1");
}

Test (brk_job, malformed_records_are_refused)
{
    static const struct {
        const char *what;
        uint32_t n;
        void (*f) (msgpack_packer *);
        int want;
    } cases [] = {
        { "minimal record", 3, s_ok, 0 },
        { "no state", 3, s_no_state, -1 },
        { "unknown state", 3, s_bad_state, -1 },
        { "seq not a uint", 4, s_bad_seq, -1 },
        { "id longer than an id", 3, s_long_id, -1 },
        { "params not a map", 4, s_bad_params, -1 },
        { "negative error code", 4, s_bad_error, -1 },
        { "unknown requirement", 4, s_bad_require, -1 },
        { "events not an array", 4, s_events_not_array, -1 },
        { "event without eid", 4, s_event_without_eid, -1 },
        { "more events than a record keeps", 4, s_too_many_events, -1 },
        { "streamed and events", 5, s_streamed_with_events, -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        cmn_packbuf_t b;
        s_record (&b, cases [i].n, cases [i].f);
        cr_assert_eq (s_load (b.sb.data, b.sb.size), cases [i].want, "%s", cases [i].what);
        msgpack_sbuffer_destroy (&b.sb);
    }
    //  Not a map, and the old hash layout's field text: refused.
    cr_assert_eq (s_load ("\x93\x01\x02\x03", 4), -1);
    cr_assert_eq (s_load ("state", 5), -1);
}
