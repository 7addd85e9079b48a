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
        brk_job_drop_events (self);
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

//  Packs the record of proto 5.2 as a map with EXTRA more entries, which
//  the caller packs next.
static void
s_pack (brk_job_t *self, msgpack_packer *pk, bool brief, uint32_t extra)
{
    bool req = !brk_require_empty (&self->require);
    uint32_t n = 14 + (brief ? 0 : 1) + (self->reason [0] ? 1 : 0) + (req ? 1 : 0)
               + (self->queue_deadline_ms ? 1 : 0)
               + (self->result && !brief ? 1 : 0) + (self->error_code ? 1 : 0);
    msgpack_pack_map (pk, n + extra);
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
brk_job_pack (brk_job_t *self, msgpack_packer *pk, bool brief)
{
    s_pack (self, pk, brief, 0);
}

void
brk_job_pack_record (brk_job_t *self, msgpack_packer *pk)
{
    s_pack (self, pk, false, 3);
    cmn_pack_kv_uint (pk, "seq", self->seq);
    cmn_pack_kv_bool (pk, "cancel", self->cancel_requested);
    if (self->streamed)
        cmn_pack_kv_bool (pk, "streamed", true);
    else {
        //  Each event is packed as it was recorded.
        cmn_pack_key (pk, "events");
        msgpack_pack_array (pk, (uint32_t) self->nevents);
        for (size_t i = 0; i < self->nevents; i++)
            msgpack_pack_str_body (pk, self->events [i].data, self->events [i].len);
    }
}

int
brk_job_keep_event (brk_job_t *self, const char *eid, const char *data, size_t len)
{
    assert (self && eid && data);
    if (self->streamed || self->nevents == BRK_EVENTS_INLINE
    ||  strlen (eid) >= sizeof self->events [0].eid)
        return -1;
    char *copy = malloc (len ? len : 1);
    if (!copy)
        return -1;
    memcpy (copy, data, len);
    brk_event_t *e = &self->events [self->nevents++];
    snprintf (e->eid, sizeof e->eid, "%s", eid);
    e->data = copy;
    e->len = len;
    return 0;
}

void
brk_job_drop_events (brk_job_t *self)
{
    assert (self);
    for (size_t i = 0; i < self->nevents; i++) {
        free (self->events [i].data);
        self->events [i].data = NULL;
    }
    self->nevents = 0;
}

void
brk_job_persist (brk_job_t *self, brk_store_t *store, const char *prefix, brk_sets_t *sets,
                 uint64_t keep_s)
{
    char key [256];
    snprintf (key, sizeof key, "%sjob:%s", prefix, self->id);
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    brk_job_pack_record (self, &b.pk);
    //  With the batch's other records as one MSET, or at once as a SET
    //  should SETS run out of memory.
    if (brk_sets_record (sets, key, b.sb.data, b.sb.size) != 0) {
        const char *argv [] = { "SET", key, b.sb.data };
        size_t lens [] = { 3, strlen (key), b.sb.size };
        brk_store_appendv (store, 3, argv, lens);
    }
    msgpack_sbuffer_destroy (&b.sb);
    //  An ended job lives KEEP_S more seconds, with its stream and key.
    //  (Its record is rewritten, clearing the time to live, if it is
    //  retried.) Should SETS run out of memory these are left out: the
    //  keys then stay, which loses nothing.
    const bool ended = brk_state_terminal (self->state);
    if (ended && keep_s) {
        brk_sets_expire (sets, key, keep_s);
        if (self->streamed) {
            snprintf (key, sizeof key, "%sevents:%s", prefix, self->id);
            brk_sets_expire (sets, key, keep_s);
        }
        if (self->key) {
            snprintf (key, sizeof key, "%skey:%s", prefix, self->key);
            brk_sets_expire (sets, key, keep_s);
        }
    }
    const uint64_t score = ended ? (uint64_t) self->finished_ms : self->seq;
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
        if (brk_sets_add (sets, self->state, score, self->id) != 0) {
            snprintf (set, sizeof set, "%sstate:%s", prefix, brk_state_name (self->state));
            brk_store_append (store, "ZADD %s %" PRIu64 " %s", set, score, self->id);
        }
        self->stored_state = self->state;
    }
}

//  Copies the str field KEY of MAP into OUT (SIZE bytes); absent leaves
//  OUT as it is. -1 when present and not a str that fits without NULs.
static int
s_field_str (const msgpack_object *map, const char *key, char *out, size_t size)
{
    const char *str;
    size_t len;
    int rc = cmn_codec_get_str (map, key, &str, &len, NULL);
    if (rc)
        return rc < 0 ? -1 : 0;
    if (len >= size || memchr (str, 0, len))
        return -1;
    memcpy (out, str, len);
    out [len] = 0;
    return 0;
}

//  Copies the map field KEY of MAP, re-packed, into *OUT (malloc'd) and
//  *LEN; absent leaves them as they are.
static int
s_field_map (const msgpack_object *map, const char *key, char **out, size_t *len)
{
    const msgpack_object *v;
    int rc = cmn_codec_get_map (map, key, &v, NULL);
    if (rc)
        return rc < 0 ? -1 : 0;
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_object (&b.pk, *v);
    rc = brk_job_set_bytes (out, len, b.sb.data, b.sb.size);
    msgpack_sbuffer_destroy (&b.sb);
    return rc;
}

//  Limits of a stored record: it holds params, a result and a few events,
//  each of which was a body within the protocol's limits.
static const cmn_codec_limits_t s_record_limits = {
    4 * RXQ_MAX_BODY_BYTES + 65536, RXQ_MAX_DEPTH + 2, RXQ_MAX_STR_BYTES, RXQ_MAX_ITEMS
};

int
brk_job_load (brk_job_t *self, const char *data, size_t len)
{
    cmn_body_t rec;
    if (!data || cmn_body_decode (&rec, data, len, &s_record_limits, NULL) != 0)
        return -1;
    const msgpack_object *m = &rec.root;
    int rc = -1;
    char state [16] = "";
    uint64_t priority = 1, code = 0;
    const char *key = NULL;
    size_t key_len = 0;
    const msgpack_object *require = NULL, *error = NULL, *events = NULL;
    if (cmn_codec_get_cstr (m, "id", self->id, sizeof self->id, NULL) != 0
    ||  cmn_codec_get_cstr (m, "kind", self->kind, sizeof self->kind, NULL) != 0
    ||  cmn_codec_get_cstr (m, "state", state, sizeof state, NULL) != 0
    ||  (self->state = brk_state_parse (state, strlen (state))) == BRK_STATE_NONE
    ||  cmn_codec_get_uint (m, "priority", &priority, NULL) < 0
    ||  cmn_codec_get_uint (m, "seq", &self->seq, NULL) < 0
    ||  cmn_codec_get_uint (m, "attempt", &self->attempt, NULL) < 0
    ||  cmn_codec_get_uint (m, "max_attempts", &self->max_attempts, NULL) < 0
    ||  cmn_codec_get_uint (m, "failures", &self->failures, NULL) < 0
    ||  cmn_codec_get_uint (m, "timeout_ms", &self->timeout_ms, NULL) < 0
    ||  cmn_codec_get_int (m, "created_ms", &self->created_ms, NULL) < 0
    ||  cmn_codec_get_int (m, "started_ms", &self->started_ms, NULL) < 0
    ||  cmn_codec_get_int (m, "finished_ms", &self->finished_ms, NULL) < 0
    ||  cmn_codec_get_int (m, "queue_deadline_ms", &self->queue_deadline_ms, NULL) < 0
    ||  s_field_str (m, "worker_id", self->worker, sizeof self->worker) != 0
    ||  s_field_str (m, "worker", self->worker_name, sizeof self->worker_name) != 0
    ||  s_field_str (m, "reason", self->reason, sizeof self->reason) != 0
    ||  cmn_codec_get_str (m, "key", &key, &key_len, NULL) < 0
    ||  cmn_codec_get_bool (m, "cancel", &self->cancel_requested, NULL) < 0
    ||  cmn_codec_get_bool (m, "streamed", &self->streamed, NULL) < 0
    ||  s_field_map (m, "params", &self->params, &self->params_len) != 0
    ||  s_field_map (m, "result", &self->result, &self->result_len) != 0
    ||  cmn_codec_get_map (m, "require", &require, NULL) < 0
    ||  cmn_codec_get_map (m, "error", &error, NULL) < 0
    ||  cmn_codec_get_array (m, "events", &events, NULL) < 0)
        goto done;
    self->stored_state = self->state;
    self->priority = priority > RXQ_PRIORITY_MAX ? RXQ_PRIORITY_MAX : (uint32_t) priority;
    //  The requirement was checked at submission; its stored form is what
    //  brk_require_pack wrote, which brk_require_parse reads back.
    if (require && brk_require_parse (&self->require, require, NULL) != 0)
        goto done;
    if (key_len) {
        free (self->key);
        self->key = strndup (key, key_len);
    }
    if (error) {
        const char *msg = "";
        size_t msg_len = 0;
        if (cmn_codec_get_uint (error, "code", &code, NULL) < 0 || code > INT32_MAX
        ||  cmn_codec_get_str (error, "message", &msg, &msg_len, NULL) < 0)
            goto done;
        free (self->error_msg);
        self->error_msg = strndup (msg, msg_len);
        self->error_code = (int) code;
    }
    brk_job_drop_events (self);
    for (uint32_t i = 0; events && i < events->via.array.size; i++) {
        const msgpack_object *ev = &events->via.array.ptr [i];
        char eid [48];
        if (ev->type != MSGPACK_OBJECT_MAP
        ||  cmn_codec_get_cstr (ev, "eid", eid, sizeof eid, NULL) != 0)
            goto done;
        cmn_packbuf_t b;
        cmn_packbuf_init (&b);
        msgpack_pack_object (&b.pk, *ev);
        int kept = brk_job_keep_event (self, eid, b.sb.data, b.sb.size);
        msgpack_sbuffer_destroy (&b.sb);
        if (kept != 0)
            goto done;
    }
    if (self->streamed && self->nevents)
        goto done;
    rc = 0;
done:
    cmn_body_free (&rec);
    return rc;
}

//  --------------------------------------------------------------------------
//  The hash layout of before (read only, for an upgraded broker)

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
brk_job_load_hash (brk_job_t *self, const redisReply *h)
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
    //  Every event of the old layout went to the stream.
    brk_job_drop_events (self);
    self->streamed = true;
    return have_id && have_kind && have_state ? 0 : -1;
}
