/*  brk_job: see brk_job.h. */
#include "brk_job.h"
#include "brk_sets.h"
#include "brk_store.h"
#include "cmn_codec.h"
#include "cmn_error.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *s_state_names [BRK_STATE_COUNT] = {
    "queued", "leased", "succeeded", "failed", "cancelled", "dead"
};

const char *
brk_state_name (brk_state_t state)
{
    return state >= 0 && state < BRK_STATE_COUNT ? s_state_names [state] : "none";
}

brk_state_t
brk_state_parse (const char *name, size_t len)
{
    for (int i = 0; i < BRK_STATE_COUNT; i++)
        if (strlen (s_state_names [i]) == len && memcmp (s_state_names [i], name, len) == 0)
            return (brk_state_t) i;
    return BRK_STATE_NONE;
}

bool
brk_state_terminal (brk_state_t state)
{
    return state == BRK_SUCCEEDED || state == BRK_FAILED
        || state == BRK_CANCELLED || state == BRK_DEAD;
}

static void
s_watcher_destroy (void **item)
{
    brk_watcher_t *w = *item;
    if (w) {
        zframe_destroy (&w->identity);
        free (w);
        *item = NULL;
    }
}

brk_job_t *
brk_job_new (void)
{
    brk_job_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->stored_state = BRK_STATE_NONE;
    self->max_attempts = 3;
    return self;
}

void
brk_job_destroy (brk_job_t **self_p)
{
    assert (self_p);
    brk_job_t *self = *self_p;
    if (self) {
        assert (!self->queued_in_lane);
        if (self->watchers) {
            brk_watcher_t *w;
            while ((w = zlist_pop (self->watchers))) {
                void *item = w;
                s_watcher_destroy (&item);
            }
            zlist_destroy (&self->watchers);
        }
        free (self->params);
        free (self->result);
        free (self->error_msg);
        free (self->key);
        free (self);
        *self_p = NULL;
    }
}

int
brk_job_set_bytes (char **field, size_t *field_len, const char *data, size_t len)
{
    char *copy = NULL;
    if (data) {
        copy = malloc (len ? len : 1);
        if (!copy)
            return -1;
        memcpy (copy, data, len);
    }
    free (*field);
    *field = copy;
    *field_len = data ? len : 0;
    return 0;
}

void
brk_job_set_error (brk_job_t *self, int code, const char *msg)
{
    free (self->error_msg);
    self->error_msg = code && msg ? strdup (msg) : NULL;
    self->error_code = code;
}

void
brk_job_watch (brk_job_t *self, zframe_t *identity, uint64_t req, bool events)
{
    if (!self->watchers)
        self->watchers = zlist_new ();
    brk_watcher_t *w = calloc (1, sizeof *w);
    if (!self->watchers || !w) {
        free (w);
        return;
    }
    w->identity = zframe_dup (identity);
    w->req = req;
    w->events = events;
    zlist_append (self->watchers, w);
}

static void
s_pack_raw_or_empty (msgpack_packer *pk, const char *data, size_t len)
{
    //  Stored maps are packed as they are; they were checked on the way in.
    if (data && len)
        msgpack_pack_str_body (pk, data, len);
    else
        msgpack_pack_map (pk, 0);
}

void
brk_job_pack (brk_job_t *self, msgpack_packer *pk, bool brief)
{
    bool req = !brk_require_empty (&self->require);
    uint32_t n = 14 + (brief ? 0 : 1) + (self->reason [0] ? 1 : 0) + (req ? 1 : 0)
               + (self->queue_deadline_ms ? 1 : 0)
               + (self->result && !brief ? 1 : 0) + (self->error_code ? 1 : 0);
    msgpack_pack_map (pk, n);
    cmn_pack_kv_str (pk, "id", self->id);
    cmn_pack_kv_str (pk, "kind", self->kind);
    cmn_pack_kv_str (pk, "state", brk_state_name (self->state));
    cmn_pack_kv_uint (pk, "priority", self->priority);
    cmn_pack_kv_uint (pk, "attempt", self->attempt);
    cmn_pack_kv_uint (pk, "max_attempts", self->max_attempts);
    cmn_pack_kv_uint (pk, "failures", self->failures);
    cmn_pack_kv_uint (pk, "timeout_ms", self->timeout_ms);
    cmn_pack_kv_str (pk, "worker", self->worker_name);
    cmn_pack_kv_str (pk, "worker_id", self->worker);
    cmn_pack_kv_uint (pk, "created_ms", (uint64_t) self->created_ms);
    cmn_pack_kv_uint (pk, "started_ms", (uint64_t) self->started_ms);
    cmn_pack_kv_uint (pk, "finished_ms", (uint64_t) self->finished_ms);
    cmn_pack_kv_str (pk, "key", self->key ? self->key : "");
    if (!brief) {
        cmn_pack_key (pk, "params");
        s_pack_raw_or_empty (pk, self->params, self->params_len);
    }
    if (self->reason [0])
        cmn_pack_kv_str (pk, "reason", self->reason);
    if (req) {
        cmn_pack_key (pk, "require");
        brk_require_pack (&self->require, pk);
    }
    if (self->queue_deadline_ms)
        cmn_pack_kv_uint (pk, "queue_deadline_ms", (uint64_t) self->queue_deadline_ms);
    if (self->result && !brief) {
        cmn_pack_key (pk, "result");
        s_pack_raw_or_empty (pk, self->result, self->result_len);
    }
    if (self->error_code) {
        cmn_pack_key (pk, "error");
        msgpack_pack_map (pk, 3);
        cmn_pack_kv_uint (pk, "code", (uint64_t) self->error_code);
        cmn_pack_kv_str (pk, "name", cmn_error_name (self->error_code));
        cmn_pack_kv_str (pk, "message", self->error_msg ? self->error_msg : "");
    }
}

void
brk_job_persist (brk_job_t *self, brk_store_t *store, const char *prefix, bool with_params,
                 brk_sets_t *sets)
{
    char key [256], nums [12][24];
    snprintf (key, sizeof key, "%sjob:%s", prefix, self->id);
    const char *argv [64];
    size_t lens [64];
    int argc = 0;
#define ARG(s, n) do { argv [argc] = (s); lens [argc] = (n); argc++; } while (0)
#define ARGS(s) ARG ((s), strlen (s))
    ARGS ("HSET");
    ARGS (key);
    ARGS ("id");        ARGS (self->id);
    ARGS ("state");     ARGS (brk_state_name (self->state));
    ARGS ("attempt");   snprintf (nums [0], 24, "%" PRIu64, self->attempt);  ARGS (nums [0]);
    ARGS ("worker");    ARGS (self->worker);
    ARGS ("worker_name"); ARGS (self->worker_name);
    ARGS ("started_ms");  snprintf (nums [1], 24, "%" PRId64, self->started_ms);  ARGS (nums [1]);
    ARGS ("finished_ms"); snprintf (nums [2], 24, "%" PRId64, self->finished_ms); ARGS (nums [2]);
    ARGS ("max_attempts"); snprintf (nums [3], 24, "%" PRIu64, self->max_attempts); ARGS (nums [3]);
    ARGS ("failures");  snprintf (nums [11], 24, "%" PRIu64, self->failures); ARGS (nums [11]);
    ARGS ("error_code"); snprintf (nums [4], 24, "%d", self->error_code); ARGS (nums [4]);
    ARGS ("error_msg"); ARGS (self->error_msg ? self->error_msg : "");
    ARGS ("cancel");    ARGS (self->cancel_requested ? "1" : "0");
    if (self->result) {
        ARGS ("result");
        ARG (self->result, self->result_len);
    }
    if (with_params) {
        ARGS ("kind");      ARGS (self->kind);
        ARGS ("priority");  snprintf (nums [5], 24, "%u", self->priority); ARGS (nums [5]);
        ARGS ("seq");       snprintf (nums [6], 24, "%" PRIu64, self->seq); ARGS (nums [6]);
        ARGS ("created_ms"); snprintf (nums [7], 24, "%" PRId64, self->created_ms); ARGS (nums [7]);
        ARGS ("timeout_ms");
        char tmo [24];
        snprintf (tmo, sizeof tmo, "%" PRIu64, self->timeout_ms);
        ARGS (tmo);
        ARGS ("key");       ARGS (self->key ? self->key : "");
        ARGS ("queue_deadline_ms");
        snprintf (nums [8], 24, "%" PRId64, self->queue_deadline_ms); ARGS (nums [8]);
        ARGS ("req_vendor"); ARGS (self->require.vendor);
        ARGS ("req_type");  ARGS (self->require.type);
        ARGS ("req_mem");   snprintf (nums [9], 24, "%" PRIu64, self->require.min_global_mem);
        ARGS (nums [9]);
        ARGS ("req_clc");   snprintf (nums [10], 24, "%u", self->require.opencl_c);
        ARGS (nums [10]);
        ARGS ("req_tag");   ARGS (self->require.tag);
        ARGS ("req_worker"); ARGS (self->require.worker);
        ARGS ("req_target"); ARGS (self->require.target);
        ARGS ("params");    ARG (self->params ? self->params : "\x80",
                                 self->params ? self->params_len : 1);
        brk_store_appendv (store, argc, argv, lens);
    }
    else
        brk_store_appendv (store, argc, argv, lens);
#undef ARG
#undef ARGS
    //  Move the id between state sets, in SETS with the batch's other
    //  moves (or at once, should SETS run out of memory). Once the batch
    //  is written Redis holds the new state; when it fails the job is
    //  marked dirty and its next write removes it from every other set.
    if (self->stored_state != self->state || self->dirty) {
        char set [256];
        for (int s = 0; s < BRK_STATE_COUNT; s++) {
            bool remove = self->dirty ? s != (int) self->state
                                      : s == (int) self->stored_state;
            if (remove && brk_sets_remove (sets, (brk_state_t) s, self->id) != 0) {
                snprintf (set, sizeof set, "%sstate:%s", prefix, brk_state_name (s));
                brk_store_append (store, "ZREM %s %s", set, self->id);
            }
        }
        if (brk_sets_add (sets, self->state, self->seq, self->id) != 0) {
            snprintf (set, sizeof set, "%sstate:%s", prefix, brk_state_name (self->state));
            brk_store_append (store, "ZADD %s %" PRIu64 " %s", set, self->seq, self->id);
        }
        self->stored_state = self->state;
    }
}

static int
s_u64 (const redisReply *v, uint64_t *out)
{
    char buf [32];
    if (v->type != REDIS_REPLY_STRING || v->len == 0 || v->len >= sizeof buf)
        return -1;
    memcpy (buf, v->str, v->len);
    buf [v->len] = 0;
    char *end;
    unsigned long long x = strtoull (buf, &end, 10);
    if (*end || buf [0] == '-')
        return -1;
    *out = x;
    return 0;
}

static int
s_i64 (const redisReply *v, int64_t *out)
{
    char buf [32];
    if (v->type != REDIS_REPLY_STRING || v->len == 0 || v->len >= sizeof buf)
        return -1;
    memcpy (buf, v->str, v->len);
    buf [v->len] = 0;
    char *end;
    long long x = strtoll (buf, &end, 10);
    if (*end)
        return -1;
    *out = x;
    return 0;
}

static int
s_copy_str (const redisReply *v, char *out, size_t size)
{
    if (v->type != REDIS_REPLY_STRING || v->len >= size || memchr (v->str, 0, v->len))
        return -1;
    memcpy (out, v->str, v->len);
    out [v->len] = 0;
    return 0;
}

int
brk_job_load (brk_job_t *self, const redisReply *h)
{
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements % 2)
        return -1;
    bool have_id = false, have_kind = false, have_state = false;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element [i], *v = h->element [i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return -1;
        const char *f = k->str;
        int rc = 0;
        uint64_t u;
        if (!strcmp (f, "id"))
            rc = s_copy_str (v, self->id, sizeof self->id), have_id = rc == 0;
        else
        if (!strcmp (f, "kind"))
            rc = s_copy_str (v, self->kind, sizeof self->kind), have_kind = rc == 0;
        else
        if (!strcmp (f, "state")) {
            self->state = brk_state_parse (v->str, v->len);
            rc = self->state == BRK_STATE_NONE ? -1 : 0;
            self->stored_state = self->state;
            have_state = rc == 0;
        }
        else
        if (!strcmp (f, "priority")) {
            rc = s_u64 (v, &u);
            self->priority = u > RXQ_PRIORITY_MAX ? RXQ_PRIORITY_MAX : (uint32_t) u;
        }
        else
        if (!strcmp (f, "seq"))          rc = s_u64 (v, &self->seq);
        else
        if (!strcmp (f, "attempt"))      rc = s_u64 (v, &self->attempt);
        else
        if (!strcmp (f, "max_attempts")) rc = s_u64 (v, &self->max_attempts);
        else
        if (!strcmp (f, "failures"))     rc = s_u64 (v, &self->failures);
        else
        if (!strcmp (f, "timeout_ms"))   rc = s_u64 (v, &self->timeout_ms);
        else
        if (!strcmp (f, "created_ms"))   rc = s_i64 (v, &self->created_ms);
        else
        if (!strcmp (f, "started_ms"))   rc = s_i64 (v, &self->started_ms);
        else
        if (!strcmp (f, "finished_ms"))  rc = s_i64 (v, &self->finished_ms);
        else
        if (!strcmp (f, "worker"))       rc = s_copy_str (v, self->worker, sizeof self->worker);
        else
        if (!strcmp (f, "worker_name"))  rc = s_copy_str (v, self->worker_name, sizeof self->worker_name);
        else
        if (!strcmp (f, "queue_deadline_ms")) rc = s_i64 (v, &self->queue_deadline_ms);
        else
        if (!strcmp (f, "req_vendor"))   rc = s_copy_str (v, self->require.vendor, sizeof self->require.vendor);
        else
        if (!strcmp (f, "req_type"))     rc = s_copy_str (v, self->require.type, sizeof self->require.type);
        else
        if (!strcmp (f, "req_mem"))      rc = s_u64 (v, &self->require.min_global_mem);
        else
        if (!strcmp (f, "req_clc")) {
            rc = s_u64 (v, &u);
            self->require.opencl_c = u > 1000 ? 0 : (uint32_t) u;
        }
        else
        if (!strcmp (f, "req_tag"))      rc = s_copy_str (v, self->require.tag, sizeof self->require.tag);
        else
        if (!strcmp (f, "req_worker"))   rc = s_copy_str (v, self->require.worker, sizeof self->require.worker);
        else
        if (!strcmp (f, "req_target"))   rc = s_copy_str (v, self->require.target, sizeof self->require.target);
        else
        if (!strcmp (f, "cancel"))       self->cancel_requested = v->len == 1 && v->str [0] == '1';
        else
        if (!strcmp (f, "error_code")) {
            int64_t c;
            rc = s_i64 (v, &c);
            self->error_code = (int) c;
        }
        else
        if (!strcmp (f, "error_msg") && v->len) {
            free (self->error_msg);
            self->error_msg = strndup (v->str, v->len);
        }
        else
        if (!strcmp (f, "key") && v->len) {
            free (self->key);
            self->key = strndup (v->str, v->len);
        }
        else
        if (!strcmp (f, "params"))
            rc = brk_job_set_bytes (&self->params, &self->params_len, v->str, v->len);
        else
        if (!strcmp (f, "result"))
            rc = brk_job_set_bytes (&self->result, &self->result_len, v->str, v->len);
        if (rc)
            return -1;
    }
    //  Stored maps are packed raw into replies: check them like any input.
    cmn_err_t err;
    if (self->params && cmn_codec_check (self->params, self->params_len,
                                         &cmn_codec_limits_default, &err))
        return -1;
    if (self->result && cmn_codec_check (self->result, self->result_len,
                                         &cmn_codec_limits_default, &err))
        return -1;
    return have_id && have_kind && have_state ? 0 : -1;
}
