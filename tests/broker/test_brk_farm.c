/*  brk_farm against a real Redis: records to the stream, tuning entries to
 *  the hash, RECORDS queries (filter, paging, malformed entries), the
 *  device key, and the errors for results that cannot be stored. */
#include <criterion/criterion.h>
#include "brk_farm.h"
#include "cmn_codec.h"
#include "support/tst_redis.h"

static tst_redis_t s_redis;
static brk_store_t *s_store;
//  Reply buffers of s_query: decoded bodies point into them, so they live
//  until the test ends.
static msgpack_sbuffer s_replies [16];
static int s_nreplies;

static void
s_setup (void)
{
    cr_assert_eq (tst_redis_start (&s_redis), 0);
    cmn_err_t err = { 0 };
    s_store = brk_store_new (s_redis.url, &err);
    cr_assert_not_null (s_store, "%s", err.msg);
}

static void
s_teardown (void)
{
    for (int i = 0; i < s_nreplies; i++)
        msgpack_sbuffer_destroy (&s_replies [i]);
    brk_store_destroy (&s_store);
    tst_redis_destroy (&s_redis);
}

TestSuite (brk_farm, .init = s_setup, .fini = s_teardown, .timeout = 60);

//  A v1-shaped record of KIND on DEVICE with GFLOPS.
static void
s_pack_record (msgpack_sbuffer *sb, const char *kind, const char *device, double gflops)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    cmn_pack_kv_uint (&pk, "record_version", 1);
    cmn_pack_kv_str (&pk, "kind", kind);
    cmn_pack_key (&pk, "device");
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_str (&pk, "name", device);
    cmn_pack_kv_str (&pk, "vendor", "Acme");
    cmn_pack_kv_str (&pk, "driver", "1.0");
    cmn_pack_key (&pk, "figures");
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_double (&pk, "gflops", gflops);
}

static brk_job_t *
s_job (const char *id, const char *kind, const void *result, size_t len)
{
    brk_job_t *job = brk_job_new ();
    cr_assert_not_null (job);
    snprintf (job->id, sizeof job->id, "%s", id);
    snprintf (job->kind, sizeof job->kind, "%s", kind);
    snprintf (job->worker_name, sizeof job->worker_name, "w-%s", id);
    job->state = BRK_SUCCEEDED;
    job->finished_ms = 1700000000000;
    if (result)
        brk_job_set_bytes (&job->result, &job->result_len, result, len);
    return job;
}

//  Appends a bench record of KIND for job ID and flushes.
static void
s_add_record (const char *id, const char *kind, const char *device, double gflops)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    s_pack_record (&sb, kind, device, gflops);
    brk_job_t *job = s_job (id, kind, sb.data, sb.size);
    cmn_err_t err = { 0 };
    cr_assert_eq (brk_farm_persist (s_store, "rxq:t:", job, NULL, 0, &err), 0, "%s", err.msg);
    cr_assert_eq (brk_store_flush (s_store), 0);
    brk_job_destroy (&job);
    msgpack_sbuffer_destroy (&sb);
}

//  Runs query Q and decodes the reply into BODY.
static void
s_query (const brk_farm_query_t *q, cmn_body_t *body)
{
    cr_assert_lt (s_nreplies, 16);
    msgpack_sbuffer *sb = &s_replies [s_nreplies++];
    msgpack_sbuffer_init (sb);
    cmn_err_t err = { 0 };
    cr_assert_eq (brk_farm_read (s_store, "rxq:t:", q, 7, sb, &err), 0, "%s", err.msg);
    cr_assert_eq (cmn_body_decode (body, sb->data, sb->size, &cmn_codec_limits_default, &err), 0,
                  "%s", err.msg);
}

Test (brk_farm, writes_only_for_bench_kinds_and_tune)
{
    cr_assert (brk_farm_writes ("bench.gemm"));
    cr_assert (brk_farm_writes ("bench.device"));
    cr_assert (brk_farm_writes ("tune"));
    cr_assert_not (brk_farm_writes ("noop"));
    cr_assert_not (brk_farm_writes ("benchmark"));
    cr_assert_not (brk_farm_writes ("quantize"));
}

Test (brk_farm, a_record_is_appended_to_the_stream_with_its_fields)
{
    s_add_record ("0001-00000001", "bench.gemm", "Fancy GPU", 123.5);
    redisReply *r = tst_redis_cmd (&s_redis, "XRANGE rxq:t:bench - +");
    cr_assert_eq (r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq (r->elements, 1);
    redisReply *f = r->element [0]->element [1];
    cr_assert_eq (f->elements, 12, "job, kind, worker, device, ms, record");
    const char *want [] = { "job", "0001-00000001", "kind", "bench.gemm", "worker",
                            "w-0001-00000001", "device", "Fancy GPU", "ms", "1700000000000" };
    for (int i = 0; i < 10; i++)
        cr_assert_str_eq (f->element [i]->str, want [i]);
    cr_assert_str_eq (f->element [10]->str, "record");
    //  The record is the result byte for byte.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    s_pack_record (&sb, "bench.gemm", "Fancy GPU", 123.5);
    cr_assert_eq (f->element [11]->len, sb.size);
    cr_assert_eq (memcmp (f->element [11]->str, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy (&sb);
    freeReplyObject (r);
}

Test (brk_farm, records_are_filtered_by_kind_and_paged)
{
    char id [32];
    for (int i = 0; i < 7; i++) {
        snprintf (id, sizeof id, "0001-%08d", i + 1);
        s_add_record (id, i % 2 ? "bench.gemv" : "bench.gemm", i < 4 ? "A" : "B", i);
    }
    brk_farm_query_t q = { .limit = 1000 };
    cmn_body_t body;
    s_query (&q, &body);
    const msgpack_object *recs = NULL;
    cr_assert_eq (cmn_codec_get_array (&body.root, "records", &recs, NULL), 0);
    cr_assert_eq (recs->via.array.size, 7);
    bool more = true;
    cmn_codec_get_bool (&body.root, "more", &more, NULL);
    cr_assert_not (more);
    uint64_t req = 0;
    cmn_codec_get_uint (&body.root, "req", &req, NULL);
    cr_assert_eq (req, 7);
    //  Every entry carries its record as a map.
    const msgpack_object *rec = NULL;
    cr_assert_eq (cmn_codec_get_map (&recs->via.array.ptr [0], "record", &rec, NULL), 0);
    cr_assert (cmn_codec_str_eq (cmn_codec_find (rec, "kind"), "bench.gemm"));
    cmn_body_free (&body);

    snprintf (q.kind, sizeof q.kind, "bench.gemv");
    s_query (&q, &body);
    cmn_codec_get_array (&body.root, "records", &recs, NULL);
    cr_assert_eq (recs->via.array.size, 3);
    for (uint32_t i = 0; i < 3; i++)
        cr_assert (cmn_codec_str_eq (cmn_codec_find (&recs->via.array.ptr [i], "kind"),
                                     "bench.gemv"));
    cmn_body_free (&body);

    //  Pages of 3 entries scanned: 3 + 3 + 1, each after the last.
    memset (&q, 0, sizeof q);
    q.limit = 3;
    size_t total = 0;
    for (int page = 0; page < 5; page++) {
        s_query (&q, &body);
        cmn_codec_get_array (&body.root, "records", &recs, NULL);
        total += recs->via.array.size;
        more = false;
        cmn_codec_get_bool (&body.root, "more", &more, NULL);
        cmn_codec_get_cstr (&body.root, "last", q.after, sizeof q.after, NULL);
        cmn_body_free (&body);
        if (!more)
            break;
    }
    cr_assert_eq (total, 7);
}

Test (brk_farm, from_ms_skips_older_records)
{
    s_add_record ("0001-00000001", "bench.gemm", "A", 1);
    tst_sleep_ms (20);
    int64_t cut = zclock_time ();
    tst_sleep_ms (20);
    s_add_record ("0001-00000002", "bench.gemm", "A", 2);
    brk_farm_query_t q = { .limit = 10, .from_ms = (uint64_t) cut };
    cmn_body_t body;
    s_query (&q, &body);
    const msgpack_object *recs = NULL;
    cmn_codec_get_array (&body.root, "records", &recs, NULL);
    cr_assert_eq (recs->via.array.size, 1);
    cr_assert (cmn_codec_str_eq (cmn_codec_find (&recs->via.array.ptr [0], "job"),
                                 "0001-00000002"));
    cmn_body_free (&body);
}

Test (brk_farm, malformed_stream_entries_are_skipped_and_counted)
{
    s_add_record ("0001-00000001", "bench.gemm", "A", 1);
    //  Written by hand: no record, a record that is not msgpack, a record
    //  that is msgpack but not a map.
    freeReplyObject (tst_redis_cmd (&s_redis, "XADD rxq:t:bench * job x kind bench.gemm"));
    freeReplyObject (tst_redis_cmd (&s_redis, "XADD rxq:t:bench * job y kind bench.gemm "
                                    "record %b", "\xc1\xff", (size_t) 2));
    freeReplyObject (tst_redis_cmd (&s_redis, "XADD rxq:t:bench * job z kind bench.gemm "
                                    "record %b", "\x93\x01\x02\x03", (size_t) 4));
    s_add_record ("0001-00000002", "bench.gemm", "A", 2);
    brk_farm_query_t q = { .limit = 100 };
    cmn_body_t body;
    s_query (&q, &body);
    const msgpack_object *recs = NULL;
    cmn_codec_get_array (&body.root, "records", &recs, NULL);
    cr_assert_eq (recs->via.array.size, 2);
    uint64_t skipped = 0;
    cmn_codec_get_uint (&body.root, "skipped", &skipped, NULL);
    cr_assert_eq (skipped, 3);
    cmn_body_free (&body);
}

Test (brk_farm, query_fields_are_checked)
{
    brk_farm_query_t q;
    cmn_err_t err = { 0 };
    const char *bodies [] = {
        "\x81\xa5" "after" "\xa3" "abc",            // not a stream id
        "\x81\xa5" "after" "\xa2" "1-",             // half a stream id
        "\x81\xa5" "limit" "\x00",                  // 0
        "\x81\xa5" "limit" "\xcd\x03\xe9",          // 1001
        "\x81\xa4" "kind" "\x01",                   // not a string
    };
    int codes [] = { RXQ_E_PARAM, RXQ_E_PARAM, RXQ_E_PARAM, RXQ_E_PARAM, RXQ_E_PROTO };
    size_t lens [] = { 11, 10, 8, 10, 7 };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies [0]; i++) {
        cmn_body_t b;
        cr_assert_eq (cmn_body_decode (&b, bodies [i], lens [i], &cmn_codec_limits_default, &err),
                      0, "body %zu: %s", i, err.msg);
        memset (&err, 0, sizeof err);
        cr_assert_eq (brk_farm_query_parse (&q, &b.root, &err), -1, "body %zu accepted", i);
        cr_assert_eq (err.code, codes [i], "body %zu: %s", i, err.msg);
        cmn_body_free (&b);
    }
    cmn_body_t b;
    cr_assert_eq (cmn_body_decode (&b, "\x82\xa5" "after" "\xa3" "5-1" "\xa5" "limit" "\x05", 18,
                                   &cmn_codec_limits_default, &err), 0, "%s", err.msg);
    cr_assert_eq (brk_farm_query_parse (&q, &b.root, &err), 0, "%s", err.msg);
    cr_assert_str_eq (q.after, "5-1");
    cr_assert_eq (q.limit, 5);
    cmn_body_free (&b);
}

//  A tune job's result: device_key, entry, gflops, gbps.
static void
s_pack_tune (msgpack_sbuffer *sb, const char *key, int tsm, bool with_entry)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3 + with_entry);
    cmn_pack_kv_str (&pk, "device_key", key);
    if (with_entry) {
        cmn_pack_key (&pk, "entry");
        msgpack_pack_map (&pk, 1);
        cmn_pack_key (&pk, "sgemm");
        msgpack_pack_map (&pk, 1);
        cmn_pack_kv_uint (&pk, "TSM", (uint64_t) tsm);
    }
    cmn_pack_kv_double (&pk, "gflops", 10.0 * tsm);
    cmn_pack_kv_double (&pk, "gbps", 2.5);
}

Test (brk_farm, tune_entries_are_stored_per_device_and_replaced)
{
    const char *key = "Acme|Fancy GPU|1.0";
    for (int round = 0; round < 2; round++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        s_pack_tune (&sb, key, round ? 64 : 32, true);
        brk_job_t *job = s_job (round ? "0001-00000002" : "0001-00000001", "tune", sb.data,
                                sb.size);
        char out [512];
        cmn_err_t err = { 0 };
        cr_assert_eq (brk_farm_persist (s_store, "rxq:t:", job, out, sizeof out, &err), 0,
                      "%s", err.msg);
        cr_assert_str_eq (out, key);
        cr_assert_eq (brk_store_flush (s_store), 0);
        brk_job_destroy (&job);
        msgpack_sbuffer_destroy (&sb);
    }
    redisReply *r = tst_redis_cmd (&s_redis, "HLEN rxq:t:tune");
    cr_assert_eq (r->integer, 1);
    freeReplyObject (r);
    char *body = NULL;
    size_t len = 0;
    cmn_err_t err = { 0 };
    cr_assert_eq (brk_farm_tune_get (s_store, "rxq:t:", key, &body, &len, &err), 0, "%s",
                  err.msg);
    cmn_body_t b;
    cr_assert_eq (cmn_body_decode (&b, body, len, &cmn_codec_limits_default, &err), 0);
    const msgpack_object *entry = NULL, *sgemm = NULL;
    cr_assert_eq (cmn_codec_get_map (&b.root, "entry", &entry, NULL), 0);
    cr_assert_eq (cmn_codec_get_map (entry, "sgemm", &sgemm, NULL), 0);
    uint64_t tsm = 0;
    cmn_codec_get_uint (sgemm, "TSM", &tsm, NULL);
    cr_assert_eq (tsm, 64, "the later tune replaces the earlier one");
    cr_assert (cmn_codec_str_eq (cmn_codec_find (&b.root, "job"), "0001-00000002"));
    cr_assert (cmn_codec_str_eq (cmn_codec_find (&b.root, "device_key"), key));
    cmn_body_free (&b);
    free (body);
    cr_assert_eq (brk_farm_tune_get (s_store, "rxq:t:", "Other|GPU|2", &body, &len, &err), 1);
    cr_assert_null (body);
}

Test (brk_farm, unusable_results_store_nothing)
{
    cmn_err_t err = { 0 };
    //  A tune result without an entry.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    s_pack_tune (&sb, "Acme|X|1", 32, false);
    brk_job_t *job = s_job ("0001-00000001", "tune", sb.data, sb.size);
    cr_assert_eq (brk_farm_persist (s_store, "rxq:t:", job, NULL, 0, &err), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
    cr_assert (strstr (err.msg, "entry"), "%s", err.msg);
    brk_job_destroy (&job);
    msgpack_sbuffer_destroy (&sb);
    //  A bench result that is not msgpack, and one with no result at all.
    job = s_job ("0001-00000002", "bench.gemm", "\xc1", 1);
    cr_assert_eq (brk_farm_persist (s_store, "rxq:t:", job, NULL, 0, &err), -1);
    brk_job_destroy (&job);
    job = s_job ("0001-00000003", "bench.gemm", NULL, 0);
    cr_assert_eq (brk_farm_persist (s_store, "rxq:t:", job, NULL, 0, &err), -1);
    brk_job_destroy (&job);
    cr_assert_eq (brk_store_pending (s_store), 0, "nothing appended");
    //  A stored value that is not a map is reported, not sent.
    freeReplyObject (tst_redis_cmd (&s_redis, "HSET rxq:t:tune bad %b", "\x01", (size_t) 1));
    char *body = NULL;
    size_t len;
    cr_assert_eq (brk_farm_tune_get (s_store, "rxq:t:", "bad", &body, &len, &err), -1);
    cr_assert_eq (err.code, RXQ_E_REDIS_REPLY);
}

Test (brk_farm, device_key_is_vendor_name_driver)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_str (&pk, "vendor", "Advanced Micro Devices, Inc.");
    cmn_pack_kv_str (&pk, "name", "Ellesmere");
    cmn_pack_kv_str (&pk, "driver", "3614.0");
    cmn_body_t b;
    cr_assert_eq (cmn_body_decode (&b, sb.data, sb.size, &cmn_codec_limits_default, NULL), 0);
    char key [256];
    cr_assert_eq (brk_farm_device_key (&b.root, key, sizeof key), 0);
    cr_assert_str_eq (key, "Advanced Micro Devices, Inc.|Ellesmere|3614.0");
    cr_assert_eq (brk_farm_device_key (NULL, key, sizeof key), -1);
    cr_assert_str_eq (key, "");
    cmn_body_free (&b);
    msgpack_sbuffer_destroy (&sb);
}
