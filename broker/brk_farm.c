/*  brk_farm: see brk_farm.h. */
#include "brk_farm.h"
#include "cmn_codec.h"
#include "cmn_log.h"
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
brk_farm_writes (const char *kind)
{
    return strncmp (kind, "bench.", 6) == 0 || strcmp (kind, "tune") == 0;
}

int
brk_farm_device_key (const msgpack_object *device, char *buf, size_t size)
{
    assert (buf && size);
    buf [0] = 0;
    char vendor [128] = "", name [128] = "", driver [128] = "";
    if (!device || device->type != MSGPACK_OBJECT_MAP
    ||  cmn_codec_get_cstr (device, "name", name, sizeof name, NULL) != 0 || !name [0])
        return -1;
    cmn_codec_get_cstr (device, "vendor", vendor, sizeof vendor, NULL);
    cmn_codec_get_cstr (device, "driver", driver, sizeof driver, NULL);
    snprintf (buf, size, "%s|%s|%s", vendor, name, driver);
    return 0;
}

//  Decodes JOB's result; -1 with ERR when it has none or it is not a map.
static int
s_decode_result (const brk_job_t *job, cmn_body_t *body, cmn_err_t *err)
{
    if (!job->result || !job->result_len)
        return cmn_err_set (err, RXQ_E_PARAM, "job %s (%s) succeeded without a result",
                            job->id, job->kind);
    cmn_err_t derr = { 0 };
    if (cmn_body_decode (body, job->result, job->result_len, &cmn_codec_limits_default, &derr))
        return cmn_err_set (err, RXQ_E_PARAM, "job %s (%s): result is not a valid map: %s",
                            job->id, job->kind, derr.msg);
    return 0;
}

int
brk_farm_tuning_body (const brk_job_t *job, msgpack_sbuffer *sb, cmn_err_t *err)
{
    assert (job && sb && strcmp (job->kind, "tune") == 0);
    cmn_body_t body;
    if (s_decode_result (job, &body, err))
        return -1;
    const msgpack_object *entry = NULL;
    char key [512] = "";
    if (cmn_codec_get_cstr (&body.root, "device_key", key, sizeof key, NULL) != 0 || !key [0]
    ||  cmn_codec_get_map (&body.root, "entry", &entry, NULL) != 0) {
        cmn_body_free (&body);
        return cmn_err_set (err, RXQ_E_PARAM, "job %s (tune): result has no 'device_key' "
                            "string or no 'entry' map", job->id);
    }
    double gflops = 0, gbps = 0;
    char version [64] = "", hash [32] = "";
    cmn_codec_get_double (&body.root, "gflops", &gflops, NULL);
    cmn_codec_get_double (&body.root, "gbps", &gbps, NULL);
    cmn_codec_get_cstr (&body.root, "rxq_version", version, sizeof version, NULL);
    cmn_codec_get_cstr (&body.root, "kernel_hash", hash, sizeof hash, NULL);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 9);
    cmn_pack_kv_str (&pk, "device_key", key);
    cmn_pack_key (&pk, "entry");
    msgpack_pack_object (&pk, *entry);
    cmn_pack_kv_double (&pk, "gflops", gflops);
    cmn_pack_kv_double (&pk, "gbps", gbps);
    cmn_pack_kv_str (&pk, "job", job->id);
    cmn_pack_kv_str (&pk, "worker", job->worker_name);
    cmn_pack_kv_uint (&pk, "ms", (uint64_t) (job->finished_ms > 0 ? job->finished_ms : 0));
    cmn_pack_kv_str (&pk, "rxq_version", version);
    cmn_pack_kv_str (&pk, "kernel_hash", hash);
    cmn_body_free (&body);
    return 0;
}

int
brk_farm_persist (brk_store_t *store, const char *prefix, const brk_job_t *job,
                  char *key_out, size_t size, cmn_err_t *err)
{
    assert (store && prefix && job);
    assert (job->state == BRK_SUCCEEDED && brk_farm_writes (job->kind));
    if (key_out && size)
        key_out [0] = 0;
    char key [256];
    if (strcmp (job->kind, "tune") == 0) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        if (brk_farm_tuning_body (job, &sb, err)) {
            msgpack_sbuffer_destroy (&sb);
            return -1;
        }
        cmn_body_t body;
        char field [512] = "";
        if (cmn_body_decode (&body, sb.data, sb.size, &cmn_codec_limits_default, NULL) == 0) {
            cmn_codec_get_cstr (&body.root, "device_key", field, sizeof field, NULL);
            cmn_body_free (&body);
        }
        snprintf (key, sizeof key, "%stune", prefix);
        const char *argv [] = { "HSET", key, field, sb.data };
        size_t lens [] = { 4, strlen (key), strlen (field), sb.size };
        brk_store_appendv (store, 4, argv, lens);
        if (key_out && size)
            snprintf (key_out, size, "%s", field);
        msgpack_sbuffer_destroy (&sb);
        return 0;
    }
    cmn_body_t body;
    if (s_decode_result (job, &body, err))
        return -1;
    char device [128] = "";
    const msgpack_object *dev = NULL;
    if (cmn_codec_get_map (&body.root, "device", &dev, NULL) == 0)
        cmn_codec_get_cstr (dev, "name", device, sizeof device, NULL);
    cmn_body_free (&body);
    char ms [24];
    snprintf (ms, sizeof ms, "%" PRId64, job->finished_ms);
    snprintf (key, sizeof key, "%sbench", prefix);
    //  No MAXLEN: records are the farm's history and are never trimmed by
    //  the broker (docs/redis.md says how an operator trims them).
    const char *argv [] = { "XADD", key, "*", "job", job->id, "kind", job->kind,
                            "worker", job->worker_name, "device", device, "ms", ms,
                            "record", job->result };
    size_t lens [] = { 4, strlen (key), 1, 3, strlen (job->id), 4, strlen (job->kind),
                       6, strlen (job->worker_name), 6, strlen (device), 2, strlen (ms),
                       6, job->result_len };
    brk_store_appendv (store, 15, argv, lens);
    return 0;
}

int
brk_farm_tune_get (brk_store_t *store, const char *prefix, const char *key, char **body,
                   size_t *len, cmn_err_t *err)
{
    assert (store && prefix && key && body && len);
    *body = NULL;
    *len = 0;
    char hash [256];
    snprintf (hash, sizeof hash, "%stune", prefix);
    const char *argv [] = { "HGET", hash, key };
    size_t lens [] = { 4, strlen (hash), strlen (key) };
    redisReply *r = brk_store_commandv (store, 3, argv, lens);
    if (!r)
        return cmn_err_set (err, RXQ_E_UNAVAILABLE, "%s", brk_store_error (store)->msg);
    int rc = 1;
    if (r->type == REDIS_REPLY_STRING) {
        cmn_body_t b;
        cmn_err_t derr = { 0 };
        if (cmn_body_decode (&b, r->str, r->len, &cmn_codec_limits_default, &derr) != 0)
            rc = cmn_err_set (err, RXQ_E_REDIS_REPLY, "tuning entry for '%s' in %s is not a "
                              "valid msgpack map: %s", key, hash, derr.msg);
        else {
            const msgpack_object *entry = NULL;
            if (cmn_codec_get_map (&b.root, "entry", &entry, NULL) != 0)
                rc = cmn_err_set (err, RXQ_E_REDIS_REPLY, "tuning entry for '%s' in %s has "
                                  "no 'entry' map", key, hash);
            else
            if (!(*body = malloc (r->len)))
                rc = cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
            else {
                memcpy (*body, r->str, r->len);
                *len = r->len;
                rc = 0;
            }
            cmn_body_free (&b);
        }
    }
    freeReplyObject (r);
    return rc;
}

//  True when TEXT is a stream id "MS-SEQ".
static bool
s_stream_id (const char *text)
{
    const char *p = text;
    if (!isdigit ((unsigned char) *p))
        return false;
    while (isdigit ((unsigned char) *p))
        p++;
    if (*p++ != '-' || !isdigit ((unsigned char) *p))
        return false;
    while (isdigit ((unsigned char) *p))
        p++;
    return *p == 0 && strlen (text) <= 41;
}

int
brk_farm_query_parse (brk_farm_query_t *q, const msgpack_object *body, cmn_err_t *err)
{
    memset (q, 0, sizeof *q);
    q->limit = BRK_FARM_LIMIT_DEFAULT;
    if (cmn_codec_get_cstr (body, "kind", q->kind, sizeof q->kind, err) < 0
    ||  cmn_codec_get_uint (body, "from_ms", &q->from_ms, err) < 0
    ||  cmn_codec_get_cstr (body, "after", q->after, sizeof q->after, err) < 0
    ||  cmn_codec_get_uint (body, "limit", &q->limit, err) < 0)
        return -1;
    if (q->after [0] && !s_stream_id (q->after))
        return cmn_err_set (err, RXQ_E_PARAM, "'after' must be a stream id like "
                            "1700000000000-0, not '%s'", q->after);
    if (q->limit < 1 || q->limit > BRK_FARM_LIMIT_MAX)
        return cmn_err_set (err, RXQ_E_PARAM, "'limit' must be 1 to %d", BRK_FARM_LIMIT_MAX);
    if (q->from_ms > (uint64_t) INT64_MAX)
        return cmn_err_set (err, RXQ_E_PARAM, "'from_ms' is out of range");
    return 0;
}

//  True when the LEN bytes at BUF are one valid msgpack map within the
//  protocol's limits (it goes into a reply as it is).
static bool
s_is_map (const char *buf, size_t len)
{
    if (len == 0 || cmn_codec_check (buf, len, &cmn_codec_limits_default, NULL))
        return false;
    unsigned char first = (unsigned char) buf [0];
    return (first >= 0x80 && first <= 0x8f) || first == 0xde || first == 0xdf;
}

//  The string value of field NAME in a stream entry's field list, or NULL.
static const redisReply *
s_field (const redisReply *fields, const char *name)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element [i];
        if (k->type == REDIS_REPLY_STRING && k->len == strlen (name)
        &&  memcmp (k->str, name, k->len) == 0)
            return fields->element [i + 1]->type == REDIS_REPLY_STRING
                 ? fields->element [i + 1] : NULL;
    }
    return NULL;
}

int
brk_farm_read (brk_store_t *store, const char *prefix, const brk_farm_query_t *q,
               uint64_t req, msgpack_sbuffer *sb, cmn_err_t *err)
{
    assert (store && prefix && q && sb);
    char key [256], start [64], count [24];
    snprintf (key, sizeof key, "%sbench", prefix);
    if (q->after [0])
        snprintf (start, sizeof start, "(%s", q->after);
    else
    if (q->from_ms)
        snprintf (start, sizeof start, "%" PRIu64, q->from_ms);
    else
        snprintf (start, sizeof start, "-");
    snprintf (count, sizeof count, "%" PRIu64, q->limit);
    const char *argv [] = { "XRANGE", key, start, "+", "COUNT", count };
    redisReply *r = brk_store_commandv (store, 6, argv, NULL);
    if (!r)
        return cmn_err_set (err, RXQ_E_UNAVAILABLE, "cannot read benchmark records: %s",
                            brk_store_error (store)->msg);
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    //  Records are packed into their own buffer first: the reply's array
    //  header needs the count, known only at the end.
    msgpack_sbuffer recs;
    msgpack_sbuffer_init (&recs);
    msgpack_packer rpk;
    msgpack_packer_init (&rpk, &recs, msgpack_sbuffer_write);
    uint32_t packed = 0;
    uint64_t skipped = 0;
    char last [48] = "";
    bool full = false;
    for (size_t i = 0; i < n && !full; i++) {
        const redisReply *e = r->element [i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
        ||  e->element [0]->type != REDIS_REPLY_STRING
        ||  e->element [1]->type != REDIS_REPLY_ARRAY) {
            skipped++;
            continue;
        }
        snprintf (last, sizeof last, "%.*s", (int) e->element [0]->len, e->element [0]->str);
        const redisReply *f = e->element [1];
        const redisReply *job = s_field (f, "job"), *kind = s_field (f, "kind");
        const redisReply *worker = s_field (f, "worker"), *device = s_field (f, "device");
        const redisReply *ms = s_field (f, "ms"), *record = s_field (f, "record");
        if (!job || !kind || !record || !s_is_map (record->str, record->len)) {
            skipped++;
            continue;
        }
        if (q->kind [0] && (kind->len != strlen (q->kind) || memcmp (kind->str, q->kind, kind->len)))
            continue;
        msgpack_pack_map (&rpk, 7);
        cmn_pack_kv_strn (&rpk, "id", e->element [0]->str, e->element [0]->len);
        cmn_pack_kv_strn (&rpk, "job", job->str, job->len);
        cmn_pack_kv_strn (&rpk, "kind", kind->str, kind->len);
        cmn_pack_kv_strn (&rpk, "worker", worker ? worker->str : "", worker ? worker->len : 0);
        cmn_pack_kv_strn (&rpk, "device", device ? device->str : "", device ? device->len : 0);
        cmn_pack_kv_uint (&rpk, "ms", ms ? strtoull (ms->str, NULL, 10) : 0);
        cmn_pack_key (&rpk, "record");
        msgpack_sbuffer_write (&recs, record->str, record->len);
        packed++;
        full = recs.size >= BRK_FARM_REPLY_BYTES;
    }
    //  More may follow when the scan stopped early or filled its count.
    bool more = full || (n > 0 && n == q->limit);
    freeReplyObject (r);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    cmn_pack_kv_uint (&pk, "req", req);
    cmn_pack_key (&pk, "records");
    msgpack_pack_array (&pk, packed);
    msgpack_sbuffer_write (sb, recs.data ? recs.data : "", recs.size);
    cmn_pack_kv_str (&pk, "last", last);
    cmn_pack_kv_bool (&pk, "more", more);
    cmn_pack_kv_uint (&pk, "skipped", skipped);
    msgpack_sbuffer_destroy (&recs);
    if (skipped)
        cmn_log_warn ("RECORDS: skipped %" PRIu64 " malformed entr%s of %s", skipped,
                      skipped == 1 ? "y" : "ies", key);
    return 0;
}
