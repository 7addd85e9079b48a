/*  tst_jobs: a job's record and events read straight from Redis, in the
 *  layout of docs/redis.md, for tests that check what the broker stored.
 *
 *  Header-only (each test file is its own executable). The record is the
 *  string `<prefix>job:<id>`, one msgpack map; its events are those kept
 *  in the record (`events`), or, once the record says `streamed`, the
 *  entries of the stream `<prefix>events:<id>`.
 */
#ifndef TST_JOBS_H
#define TST_JOBS_H
#include <stdlib.h>
#include <string.h>
#include "cmn_codec.h"
#include "support/tst_redis.h"

//  Limits for a stored record: params, a result and a few events.
static const cmn_codec_limits_t tst_record_limits = {
    8u << 20, 32, 1u << 20, 1u << 20
};

//  Decodes the record of job ID under PREFIX ("rxq:test:") into OUT.
//  Returns 0 (caller calls cmn_body_free), 1 when there is no such key, -1
//  when it is not a string holding a msgpack map.
static inline int
tst_job_record (tst_redis_t *r, const char *prefix, const char *id, cmn_body_t *out)
{
    redisReply *g = tst_redis_cmd (r, "GET %sjob:%s", prefix, id);
    int rc = -1;
    if (g && g->type == REDIS_REPLY_NIL)
        rc = 1;
    else
    if (g && g->type == REDIS_REPLY_STRING)
        rc = cmn_body_decode (out, g->str, g->len, &tst_record_limits, NULL) == 0 ? 0 : -1;
    if (g)
        freeReplyObject (g);
    return rc;
}

//  The stored state of job ID into STATE (16 bytes; "" when absent).
static inline void
tst_job_state (tst_redis_t *r, const char *prefix, const char *id, char *state)
{
    cmn_body_t rec;
    state [0] = 0;
    if (tst_job_record (r, prefix, id, &rec) == 0) {
        cmn_codec_get_cstr (&rec.root, "state", state, 16, NULL);
        cmn_body_free (&rec);
    }
}

//  The stored events of job ID, oldest first: up to MAX of them decoded
//  into OUT (caller calls cmn_body_free on each). Returns how many.
static inline size_t
tst_job_events (tst_redis_t *r, const char *prefix, const char *id, cmn_body_t *out,
                size_t max)
{
    size_t n = 0;
    bool streamed = false;
    cmn_body_t rec;
    if (tst_job_record (r, prefix, id, &rec) == 0) {
        cmn_codec_get_bool (&rec.root, "streamed", &streamed, NULL);
        const msgpack_object *events = NULL;
        cmn_codec_get_array (&rec.root, "events", &events, NULL);
        for (uint32_t i = 0; events && i < events->via.array.size && n < max; i++) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init (&sb);
            msgpack_packer pk;
            msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_object (&pk, events->via.array.ptr [i]);
            if (cmn_body_decode (&out [n], sb.data, sb.size, &cmn_codec_limits_default,
                                 NULL) == 0)
                n++;
            msgpack_sbuffer_destroy (&sb);
        }
        cmn_body_free (&rec);
    }
    if (!streamed)
        return n;
    redisReply *x = tst_redis_cmd (r, "XRANGE %sevents:%s - +", prefix, id);
    for (size_t i = 0; x && x->type == REDIS_REPLY_ARRAY && i < x->elements && n < max; i++) {
        redisReply *f = x->element [i]->element [1];
        if (f->elements == 2
        &&  cmn_body_decode (&out [n], f->element [1]->str, f->element [1]->len,
                             &cmn_codec_limits_default, NULL) == 0)
            n++;
    }
    if (x)
        freeReplyObject (x);
    return n;
}

//  Frees N event bodies filled by tst_job_events.
static inline void
tst_job_events_free (cmn_body_t *events, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cmn_body_free (&events [i]);
}

#endif
