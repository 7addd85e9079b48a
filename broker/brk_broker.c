/*  brk_broker: see brk_broker.h for the loop and proto/rxq-protocol.md for
 *  the messages. Section numbers in comments refer to the protocol. */
#include "brk_broker.h"
#include "brk_sets.h"
#include "brk_blobs.h"
#include "brk_farm.h"
#include "brk_job.h"
#include "brk_queue.h"
#include "brk_store.h"
#include "cmn_codec.h"
#include "cmn_kind.h"
#include "cmn_log.h"
#include "cmn_proto.h"
#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Messages read per turn before the batch is flushed; bounds the latency a
//  burst adds to the first reply in it.
#define BATCH_MAX 4096
//  Capacity a worker may claim (JOBs in flight to it).
#define CAPACITY_MAX 4096
//  Invalid-message log lines per second before they are only counted.
#define INVALID_LOG_PER_SEC 10
//  Events kept per job stream (approximate trim).
#define EVENTS_MAXLEN "1000"
//  LIST limits (5.6).
#define LIST_DEFAULT 100
#define LIST_MAX 10000

typedef struct {
    char id [24];               // hex of the routing identity
    zframe_t *identity;         // routing identity (owned)
    char name [128];            // worker-chosen name
    char **kinds;               // kinds it runs (owned strings)
    size_t nkinds;              // number of kinds
    uint64_t capacity;          // leases it may hold
    zlist_t *jobs;              // brk_job_t * it holds leased (not owned)
    int64_t last_recv_ms;       // monotonic ms of its last message
    int64_t last_send_ms;       // monotonic ms of our last message to it
    char *device;               // msgpack map describing its device (owned)
    size_t device_len;          // bytes
    char *tags;                 // msgpack array of tags (owned), or NULL
    size_t tags_len;            // bytes
    brk_caps_t caps;            // what jobs may require of it
    brk_weights_t weights;      // models its weight cache holds (6.10), as
                                // its last READY, HEARTBEAT or DONE said
    char tune_key [512];        // its device key for tuning entries
                                // (brk_farm_device_key), "" without a device
    bool quarantined;           // no new leases: it let a job overrun its
                                // deadline, or its device thread hung
    bool hung;                  // quarantined for a stalled device thread;
                                // lifted when a heartbeat says it beats
    uint64_t batch;             // most leases it takes in one JOBS (6.3.1);
                                // 0 or 1: JOB only
    cmn_packbuf_t pending;      // JOB maps of this turn's leases to it, for
                                // its next JOBS (empty outside s_dispatch)
    uint32_t npending;          // how many maps pending holds
    zlist_t *zombies;           // "id#attempt" of leases it still runs that
                                // are no longer valid (aborted, or taken
                                // from it); they use its capacity until
                                // it reports them done
} s_worker_t;

//  A submission whose acknowledgement waits for the batch's flush.
typedef struct {
    brk_job_t *job;             // the new job
    zframe_t *identity;         // client (owned)
    uint64_t req;               // request id
    bool wait;                  // stream events then FINAL
    bool events;                // with wait: the events are streamed
} s_pending_ack_t;

//  A lease sent in this batch, kept so a failed flush can undo it.
typedef struct {
    brk_job_t *job;
    s_worker_t *worker;
} s_pending_lease_t;

struct _brk_broker_t {
    brk_config_t cfg;           // configuration (strings copied below)
    char bind [256];            // as configured
    char endpoint [256];        // as bound
    char prefix [160];          // "rxq:<cluster>:"
    zsock_t *router;            // the one socket
    zpoller_t *poller;          // on router
    brk_store_t *store;         // Redis
    brk_blobs_t *blobs;         // blob store, NULL without a data dir
    bool redis_ok;              // false while Redis is unavailable
    int64_t redis_retry_ms;     // monotonic ms of the next reconnect try
    uint64_t epoch;             // this run's epoch (INCR at start)
    uint64_t job_counter;       // jobs created in this epoch
    uint64_t event_counter;     // events created in this epoch
    zhashx_t *jobs;             // id -> brk_job_t (owned): jobs not yet ended,
                                // and ended ones until written to Redis
    zhashx_t *keys;             // idempotency key -> job id, for jobs in memory
    brk_queue_t *queue;         // ready jobs
    zlist_t *delayed;           // brk_job_t * waiting for retry backoff
    zlist_t *orphans;           // brk_job_t * leased before a restart
    zhashx_t *workers;          // id -> s_worker_t (owned)
    //  The current batch.
    zlist_t *outbox;            // zmsg_t * to send once the batch is written
    zlist_t *acks;              // s_pending_ack_t *
    zlist_t *leases;            // s_pending_lease_t *
    zlist_t *touched;           // brk_job_t * written in this batch
    brk_sets_t *sets;           // their state-set moves (brk_sets)
    int64_t next_heartbeat_ms;  // monotonic ms of the next heartbeat pass
    int64_t invalid_window_ms;  // start of the current log-rate window
    int invalid_logged;         // lines logged in the window
    brk_stats_t stats;          // counters
};

static int64_t
s_now (void)
{
    return zclock_mono ();
}

static int64_t
s_unix_ms (void)
{
    return zclock_time ();
}

void
brk_config_defaults (brk_config_t *cfg)
{
    cfg->bind = "tcp://*:5555";
    cfg->redis_url = "redis://127.0.0.1:6379";
    cfg->cluster = "default";
    cfg->data_dir = NULL;
    cfg->heartbeat_ms = RXQ_HEARTBEAT_MS_DEFAULT;
    cfg->liveness = RXQ_LIVENESS_DEFAULT;
    cfg->max_attempts = 3;
    cfg->backoff_ms = 500;
    cfg->backoff_max_ms = 30000;
    cfg->hang_ms = 120000;
    cfg->keep_ended_s = BRK_KEEP_ENDED_DEFAULT_S;
}

//  ---------------------------------------------------------------------
//  Building and sending messages (bodies are cmn_packbuf_t)

//  Builds [identity][empty][header][cmd][body] and frees the body buffer.
static zmsg_t *
s_msg (zframe_t *identity, const char *header, int cmd, cmn_packbuf_t *b)
{
    zmsg_t *m = zmsg_new ();
    uint8_t c = (uint8_t) cmd;
    zmsg_append (m, &(zframe_t *) { zframe_dup (identity) });
    zmsg_addmem (m, "", 0);
    zmsg_addstr (m, header);
    zmsg_addmem (m, &c, 1);
    if (b) {
        zmsg_addmem (m, b->sb.data, b->sb.size);
        msgpack_sbuffer_destroy (&b->sb);
    }
    else
        zmsg_addmem (m, "\x80", 1);
    return m;
}

static void
s_send_now (brk_broker_t *self, zmsg_t *m)
{
    zmsg_send (&m, self->router);
}

static void
s_send_later (brk_broker_t *self, zmsg_t *m)
{
    zlist_append (self->outbox, m);
}

//  ERROR reply (5.9), sent at once.
static void
s_client_error (brk_broker_t *self, zframe_t *identity, uint64_t req, int code,
                const char *message)
{
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 4);
    cmn_pack_kv_uint (&b.pk, "req", req);
    cmn_pack_kv_uint (&b.pk, "code", (uint64_t) code);
    cmn_pack_kv_str (&b.pk, "name", cmn_error_name (code));
    cmn_pack_kv_str (&b.pk, "message", message);
    s_send_now (self, s_msg (identity, RXQ_PROTO_CLIENT, RXQ_CMD_ERROR, &b));
}

static void
s_worker_send (brk_broker_t *self, s_worker_t *w, int cmd, cmn_packbuf_t *b, bool later)
{
    zmsg_t *m = s_msg (w->identity, RXQ_PROTO_WORKER, cmd, b);
    w->last_send_ms = s_now ();
    if (later)
        s_send_later (self, m);
    else
        s_send_now (self, m);
}

//  DISCONNECT (6.8) with a reason for people and a code for programs.
static void
s_disconnect (brk_broker_t *self, zframe_t *identity, int code, const char *reason)
{
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 2);
    cmn_pack_kv_uint (&b.pk, "code", (uint64_t) code);
    cmn_pack_kv_str (&b.pk, "reason", reason);
    s_send_now (self, s_msg (identity, RXQ_PROTO_WORKER, RXQ_CMD_DISCONNECT, &b));
}

//  Logs an invalid message, at most INVALID_LOG_PER_SEC lines a second.
static void
s_invalid (brk_broker_t *self, zframe_t *identity, const char *what, const char *reason)
{
    self->stats.invalid_dropped++;
    int64_t now = s_now ();
    if (now - self->invalid_window_ms >= 1000) {
        if (self->invalid_logged > INVALID_LOG_PER_SEC)
            cmn_log_warn ("%d more invalid messages dropped in the last second",
                          self->invalid_logged - INVALID_LOG_PER_SEC);
        self->invalid_window_ms = now;
        self->invalid_logged = 0;
    }
    if (self->invalid_logged++ < INVALID_LOG_PER_SEC) {
        char *peer = identity ? zframe_strhex (identity) : strdup ("?");
        cmn_log_warn ("dropped invalid %s from peer %s: %s", what, peer ? peer : "?", reason);
        free (peer);
    }
}

//  ---------------------------------------------------------------------
//  Jobs: events, persistence, transitions

//  Marks JOB as changed in this batch. Its record is written once, at the
//  flush, with whatever state it has reached by then: a job submitted and
//  leased in the same batch costs one record in the batch's MSET and one
//  ZADD member, not two of each. Events that went to its stream are
//  already in the pipeline ahead of that write; a broker that dies
//  half-way through writing a batch may so leave an event whose state
//  change is not in the job's record, and recovery then treats the job by
//  the record (requeueing a lease, say), which is the safe side.
static void
s_touch (brk_broker_t *self, brk_job_t *job)
{
    if (!job->in_batch) {
        job->in_batch = true;
        zlist_append (self->touched, job);
    }
}

//  Appends the record of every job changed in this batch.
static void
s_write_touched (brk_broker_t *self)
{
    for (brk_job_t *job = zlist_first (self->touched); job; job = zlist_next (self->touched))
        brk_job_persist (job, self->store, self->prefix, self->sets, self->cfg.keep_ended_s);
    brk_sets_append (self->sets, self->store, self->prefix);
}

//  Appends event EV (packed, with id EID) of JOB to its stream.
static void
s_stream_event (brk_broker_t *self, brk_job_t *job, const char *eid, const char *ev,
                size_t len)
{
    char key [256];
    snprintf (key, sizeof key, "%sevents:%s", self->prefix, job->id);
    const char *argv [] = { "XADD", key, "MAXLEN", "~", EVENTS_MAXLEN, eid, "e", ev };
    size_t lens [] = { 4, strlen (key), 6, 1, strlen (EVENTS_MAXLEN), strlen (eid), 1, len };
    brk_store_appendv (self->store, 8, argv, lens);
}

//  Stores event EV of JOB (docs/redis.md): in its record while the record
//  keeps its events and EV is not `progress` (which can be many and
//  large); else in its stream, the record's events moved there first.
//  The move starts the stream afresh (DEL), so a move written by a broker
//  that died before writing the record that says so is simply redone.
static void
s_store_event (brk_broker_t *self, brk_job_t *job, bool progress, const char *eid,
               const char *ev, size_t len)
{
    if (!job->streamed) {
        if (!progress && brk_job_keep_event (job, eid, ev, len) == 0) {
            s_touch (self, job);
            return;
        }
        brk_store_append (self->store, "DEL %sevents:%s", self->prefix, job->id);
        for (size_t i = 0; i < job->nevents; i++)
            s_stream_event (self, job, job->events [i].eid, job->events [i].data,
                            job->events [i].len);
        brk_job_drop_events (job);
        job->streamed = true;
        s_touch (self, job);
    }
    s_stream_event (self, job, eid, ev, len);
}

//  Records event TYPE for JOB: stored in Redis (s_store_event) and sent as a
//  PARTIAL to watchers that asked for events. EXTRA holds N more key/value
//  pairs already packed (may be NULL).
static void
s_event (brk_broker_t *self, brk_job_t *job, const char *type, const cmn_packbuf_t *extra,
         uint32_t n)
{
    char eid [48];
    snprintf (eid, sizeof eid, "%" PRIu64 "-%" PRIu64, self->epoch, ++self->event_counter);
    cmn_packbuf_t ev;
    cmn_packbuf_init (&ev);
    msgpack_pack_map (&ev.pk, 3 + n);
    cmn_pack_kv_str (&ev.pk, "eid", eid);
    cmn_pack_kv_str (&ev.pk, "type", type);
    cmn_pack_kv_uint (&ev.pk, "ms", (uint64_t) s_unix_ms ());
    if (extra && n)
        msgpack_sbuffer_write (&ev.sb, extra->sb.data, extra->sb.size);
    s_store_event (self, job, strcmp (type, "progress") == 0, eid, ev.sb.data, ev.sb.size);
    if (job->watchers) {
        for (brk_watcher_t *w = zlist_first (job->watchers); w; w = zlist_next (job->watchers)) {
            if (!w->events)
                continue;
            cmn_packbuf_t b;
            cmn_packbuf_init (&b);
            msgpack_pack_map (&b.pk, 3);
            cmn_pack_kv_uint (&b.pk, "req", w->req);
            cmn_pack_kv_str (&b.pk, "id", job->id);
            cmn_pack_key (&b.pk, "event");
            msgpack_sbuffer_write (&b.sb, ev.sb.data, ev.sb.size);
            s_send_later (self, s_msg (w->identity, RXQ_PROTO_CLIENT, RXQ_CMD_PARTIAL, &b));
        }
    }
    msgpack_sbuffer_destroy (&ev.sb);
}

//  Event with one string field.
static void
s_event_str (brk_broker_t *self, brk_job_t *job, const char *type, const char *key,
             const char *value)
{
    cmn_packbuf_t x;
    cmn_packbuf_init (&x);
    cmn_pack_kv_str (&x.pk, key, value);
    s_event (self, job, type, &x, 1);
    msgpack_sbuffer_destroy (&x.sb);
}

static void
s_event_error (brk_broker_t *self, brk_job_t *job, const char *type)
{
    cmn_packbuf_t x;
    cmn_packbuf_init (&x);
    cmn_pack_key (&x.pk, "error");
    msgpack_pack_map (&x.pk, 3);
    cmn_pack_kv_uint (&x.pk, "code", (uint64_t) job->error_code);
    cmn_pack_kv_str (&x.pk, "name", cmn_error_name (job->error_code));
    cmn_pack_kv_str (&x.pk, "message", job->error_msg ? job->error_msg : "");
    s_event (self, job, type, &x, 1);
    msgpack_sbuffer_destroy (&x.sb);
}

static void
s_queue_job (brk_broker_t *self, brk_job_t *job)
{
    job->state = BRK_QUEUED;
    if (brk_queue_push (self->queue, job))
        cmn_log_error ("out of memory queueing job %s", job->id);
}

//  Takes JOB off its worker's list (if any) and puts it back in the queue
//  at once, with an event naming REASON.
static void
s_requeue (brk_broker_t *self, brk_job_t *job, const char *reason)
{
    job->started_ms = 0;
    job->orphan_until_ms = 0;
    job->cancel_requested = false;
    snprintf (job->reason, sizeof job->reason, "%s", reason);
    s_queue_job (self, job);
    s_event_str (self, job, "requeued", "reason", reason);
    s_touch (self, job);
    self->stats.requeued++;
}

//  Moves JOB to an end state.
static void
s_finish (brk_broker_t *self, brk_job_t *job, brk_state_t state)
{
    assert (brk_state_terminal (state));
    job->state = state;
    job->finished_ms = s_unix_ms ();
    job->reason [0] = 0;
    if (state == BRK_SUCCEEDED)
        s_event (self, job, "succeeded", NULL, 0);
    else
    if (state == BRK_CANCELLED)
        s_event (self, job, "cancelled", NULL, 0);
    else
        s_event_error (self, job, brk_state_name (state));
    s_touch (self, job);
    self->stats.completed++;
}

static s_worker_t *
s_worker_of (brk_broker_t *self, brk_job_t *job)
{
    return job->worker [0] ? zhashx_lookup (self->workers, job->worker) : NULL;
}

//  Sends FINAL {req, job} to every watcher of JOB and forgets them.
static void
s_notify_final (brk_broker_t *self, brk_job_t *job)
{
    if (!job->watchers)
        return;
    brk_watcher_t *w;
    while ((w = zlist_pop (job->watchers))) {
        cmn_packbuf_t b;
        cmn_packbuf_init (&b);
        msgpack_pack_map (&b.pk, 2);
        cmn_pack_kv_uint (&b.pk, "req", w->req);
        cmn_pack_key (&b.pk, "job");
        brk_job_pack (job, &b.pk, false);
        s_send_now (self, s_msg (w->identity, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &b));
        zframe_destroy (&w->identity);
        free (w);
    }
}

static void
s_forget_job (brk_broker_t *self, brk_job_t *job)
{
    if (job->key) {
        const char *id = zhashx_lookup (self->keys, job->key);
        if (id && strcmp (id, job->id) == 0)
            zhashx_delete (self->keys, job->key);
    }
    zhashx_delete (self->jobs, job->id);
}

//  ---------------------------------------------------------------------
//  The batch: flush and its consequences

static void
s_undo_batch (brk_broker_t *self)
{
    //  Outgoing promises are withdrawn: nothing in the outbox is sent.
    zmsg_t *m;
    while ((m = zlist_pop (self->outbox)))
        zmsg_destroy (&m);
    s_pending_lease_t *l;
    while ((l = zlist_pop (self->leases))) {
        brk_job_t *job = l->job;
        zlist_remove (l->worker->jobs, job);
        job->attempt--;
        job->worker [0] = 0;
        job->started_ms = 0;
        s_queue_job (self, job);
        free (l);
    }
    s_pending_ack_t *a;
    while ((a = zlist_pop (self->acks))) {
        s_client_error (self, a->identity, a->req, RXQ_E_UNAVAILABLE,
                        "job not accepted: Redis is unavailable, so it could not be "
                        "persisted; try again later");
        brk_job_t *job = a->job;
        zlist_remove (self->touched, job);
        job->in_batch = false;
        if (job->queued_in_lane)
            brk_queue_remove (self->queue, job);
        s_forget_job (self, job);
        zframe_destroy (&a->identity);
        free (a);
        self->stats.submitted--;
    }
    brk_job_t *job;
    while ((job = zlist_pop (self->touched))) {
        job->dirty = true;
        job->in_batch = false;
    }
}

static void
s_commit_batch (brk_broker_t *self)
{
    s_pending_ack_t *a;
    while ((a = zlist_pop (self->acks))) {
        cmn_packbuf_t b;
        cmn_packbuf_init (&b);
        if (a->wait && a->events) {
            //  5.1: the `accepted` event, already in the outbox, is the
            //  acknowledgement.
            msgpack_sbuffer_destroy (&b.sb);
        }
        else
        if (a->wait) {
            //  5.1: with wait, the acknowledgement is a PARTIAL.
            msgpack_pack_map (&b.pk, 3);
            cmn_pack_kv_uint (&b.pk, "req", a->req);
            cmn_pack_kv_str (&b.pk, "id", a->job->id);
            cmn_pack_key (&b.pk, "event");
            msgpack_pack_map (&b.pk, 1);
            cmn_pack_kv_str (&b.pk, "type", "accepted");
            s_send_now (self, s_msg (a->identity, RXQ_PROTO_CLIENT, RXQ_CMD_PARTIAL, &b));
        }
        else {
            msgpack_pack_map (&b.pk, 3);
            cmn_pack_kv_uint (&b.pk, "req", a->req);
            cmn_pack_kv_str (&b.pk, "id", a->job->id);
            cmn_pack_kv_str (&b.pk, "state", brk_state_name (a->job->state));
            s_send_now (self, s_msg (a->identity, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &b));
        }
        zframe_destroy (&a->identity);
        free (a);
    }
    zmsg_t *m;
    while ((m = zlist_pop (self->outbox)))
        s_send_now (self, m);
    s_pending_lease_t *l;
    while ((l = zlist_pop (self->leases)))
        free (l);
    brk_job_t *job;
    while ((job = zlist_pop (self->touched))) {
        job->dirty = false;
        job->in_batch = false;
        if (brk_state_terminal (job->state)) {
            s_notify_final (self, job);
            s_forget_job (self, job);
        }
    }
}

static void
s_redis_lost (brk_broker_t *self)
{
    if (self->redis_ok)
        cmn_log_error ("Redis unavailable (%s): refusing new jobs until it returns",
                       brk_store_error (self->store)->msg);
    self->redis_ok = false;
    self->redis_retry_ms = s_now () + 1000;
}

//  Writes the batch and then keeps or withdraws its promises.
static void
s_flush (brk_broker_t *self)
{
    if (brk_store_pending (self->store) == 0 && zlist_size (self->touched) == 0
    &&  zlist_size (self->acks) == 0 && zlist_size (self->outbox) == 0)
        return;
    if (self->redis_ok)
        s_write_touched (self);
    int rc = self->redis_ok ? brk_store_flush (self->store) : -1;
    if (rc == 0)
        s_commit_batch (self);
    else {
        self->stats.redis_failures++;
        if (!brk_store_ok (self->store))
            s_redis_lost (self);
        s_undo_batch (self);
    }
}

//  A synchronous Redis read needs an empty pipeline: write the batch so far.
static bool
s_sync_point (brk_broker_t *self)
{
    s_flush (self);
    return self->redis_ok;
}

//  ---------------------------------------------------------------------
//  The benchmark farm (brk_farm.h)

//  A TUNING message (6.9) to W with body B.
static zmsg_t *
s_tuning_msg (s_worker_t *w, const char *b, size_t len)
{
    zmsg_t *m = zmsg_new ();
    uint8_t c = RXQ_CMD_TUNING;
    zmsg_append (m, &(zframe_t *) { zframe_dup (w->identity) });
    zmsg_addmem (m, "", 0);
    zmsg_addstr (m, RXQ_PROTO_WORKER);
    zmsg_addmem (m, &c, 1);
    zmsg_addmem (m, b, len);
    w->last_send_ms = s_now ();
    return m;
}

//  Appends what succeeded farm JOB writes (its record, or its tuning
//  entry) to the batch. A new tuning entry also goes to the live workers
//  with that device once the batch is written: it waits in the outbox,
//  which a failed flush withdraws with everything else.
static void
s_farm_write (brk_broker_t *self, brk_job_t *job)
{
    if (job->state != BRK_SUCCEEDED || !brk_farm_writes (job->kind))
        return;
    char key [512];
    cmn_err_t err = { 0 };
    if (brk_farm_persist (self->store, self->prefix, job, key, sizeof key, &err)) {
        cmn_log_warn ("%s; nothing stored for it", err.msg);
        return;
    }
    if (!key [0])
        return;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    if (brk_farm_tuning_body (job, &sb, &err) == 0)
        for (s_worker_t *w = zhashx_first (self->workers); w; w = zhashx_next (self->workers))
            if (strcmp (w->tune_key, key) == 0)
                s_send_later (self, s_tuning_msg (w, sb.data, sb.size));
    msgpack_sbuffer_destroy (&sb);
    cmn_log_info ("tuning entry for '%s' stored from job %s", key, job->id);
}

//  A job whose batch failed is written again; a farm job's record too.
static void
s_rewrite (brk_broker_t *self, brk_job_t *job)
{
    s_touch (self, job);
    s_farm_write (self, job);
}

//  Sends a registering worker the tuning entry stored for its device, if
//  any (6.9). Needs a synchronous read: READY is rare, and the entry must
//  reach the worker before its first JOB (both go on the same connection,
//  and leases are sent only after this turn's batch).
static void
s_tuning_on_ready (brk_broker_t *self, s_worker_t *w)
{
    if (!w->tune_key [0] || !s_sync_point (self))
        return;
    char *body = NULL;
    size_t len = 0;
    cmn_err_t err = { 0 };
    int rc = brk_farm_tune_get (self->store, self->prefix, w->tune_key, &body, &len, &err);
    if (rc < 0) {
        cmn_log_warn ("worker %s (%s): no tuning entry sent: %s", w->id, w->name, err.msg);
        if (!brk_store_ok (self->store))
            s_redis_lost (self);
    }
    else
    if (rc == 0) {
        s_send_now (self, s_tuning_msg (w, body, len));
        cmn_log_info ("worker %s (%s): sent the tuning entry for '%s'", w->id, w->name,
                      w->tune_key);
    }
    free (body);
}

//  ---------------------------------------------------------------------
//  Workers

static void
s_worker_free (void **item)
{
    s_worker_t *w = *item;
    if (w) {
        zframe_destroy (&w->identity);
        for (size_t i = 0; i < w->nkinds; i++)
            free (w->kinds [i]);
        free (w->kinds);
        zlist_destroy (&w->jobs);
        zlist_destroy (&w->zombies);
        free (w->device);
        free (w->tags);
        msgpack_sbuffer_destroy (&w->pending.sb);
        brk_caps_free (&w->caps);
        free (w);
        *item = NULL;
    }
}

//  Notes that W still runs lease (ID, ATTEMPT) although it is no longer
//  valid, so W's capacity is not overcommitted until it reports it done.
static void
s_zombie_add (s_worker_t *w, const char *id, uint64_t attempt)
{
    char key [RXQ_MAX_ID_LEN + 32];
    snprintf (key, sizeof key, "%s#%" PRIu64, id, attempt);
    zlist_append (w->zombies, key);         // the list keeps a copy
}

//  Forgets zombie (ID, ATTEMPT) of W; true when it was one.
static bool
s_zombie_remove (s_worker_t *w, const char *id, uint64_t attempt)
{
    char key [RXQ_MAX_ID_LEN + 32];
    snprintf (key, sizeof key, "%s#%" PRIu64, id, attempt);
    for (char *z = zlist_first (w->zombies); z; z = zlist_next (w->zombies))
        if (strcmp (z, key) == 0) {
            zlist_remove (w->zombies, z);   // and frees it
            return true;
        }
    return false;
}

//  Declares W dead: its leases go back to the queue at once (6.4).
static void
s_worker_dead (brk_broker_t *self, s_worker_t *w, const char *why)
{
    cmn_log_warn ("worker %s (%s) lost: %s; requeueing %zu job(s)", w->id, w->name, why,
                  zlist_size (w->jobs));
    brk_job_t *job;
    while ((job = zlist_pop (w->jobs))) {
        //  The lease may be in this very batch: then it was never promised.
        for (s_pending_lease_t *l = zlist_first (self->leases); l; l = zlist_next (self->leases))
            if (l->job == job)
                l->worker = NULL;
        if (job->cancel_requested) {
            brk_job_set_error (job, RXQ_E_CANCELLED, "cancelled (its worker was lost)");
            s_finish (self, job, BRK_CANCELLED);
            continue;
        }
        char reason [160];
        snprintf (reason, sizeof reason, "worker %s lost (%s)", w->name, why);
        //  A job whose workers keep dying is a poison pill: losing the
        //  worker counts as a failed attempt.
        job->failures++;
        if (job->failures >= job->max_attempts) {
            brk_job_set_error (job, RXQ_E_UNAVAILABLE, reason);
            s_finish (self, job, BRK_DEAD);
            continue;
        }
        s_requeue (self, job, reason);
    }
    //  Leases of this batch whose worker is gone must not be undone against
    //  it: drop those records.
    s_pending_lease_t *l = zlist_first (self->leases);
    while (l) {
        s_pending_lease_t *next = zlist_next (self->leases);
        if (!l->worker) {
            zlist_remove (self->leases, l);
            free (l);
        }
        l = next;
    }
    self->stats.workers_lost++;
    zhashx_delete (self->workers, w->id);
}

static bool
s_worker_runs (s_worker_t *w, const char *kind)
{
    for (size_t i = 0; i < w->nkinds; i++)
        if (strcmp (w->kinds [i], kind) == 0)
            return true;
    return false;
}

//  Sets JOB's reason when no live worker could run it: none runs its kind,
//  or none meets its requirement. Clears it otherwise.
static void
s_explain_wait (brk_broker_t *self, brk_job_t *job)
{
    bool kind = false, match = false;
    for (s_worker_t *w = zhashx_first (self->workers); w && !match; w = zhashx_next (self->workers))
        if (s_worker_runs (w, job->kind)) {
            kind = true;
            match = brk_route_match (&job->require, &w->caps);
        }
    if (!kind)
        snprintf (job->reason, sizeof job->reason, "no live worker runs kind '%s'", job->kind);
    else
    if (!match) {
        char req [100];
        brk_require_describe (&job->require, req, sizeof req);
        snprintf (job->reason, sizeof job->reason, "no live worker meets the requirement (%s)",
                  req);
    }
    else
        job->reason [0] = 0;
}

//  Leases JOB to W (6.3): persisted before the JOB is sent.
//  Room in a JOBS body for what surrounds its JOB maps.
#define JOBS_ENVELOPE 16

//  Queues W's pending JOB maps as one JOBS (6.3.1) in the batch's outbox.
static void
s_batch_flush (brk_broker_t *self, s_worker_t *w)
{
    if (!w->npending)
        return;
    cmn_packbuf_t b;
    cmn_pack_batch (&b, "jobs", w->npending, w->pending.sb.data, w->pending.sb.size);
    s_worker_send (self, w, RXQ_CMD_JOBS, &b, true);
    w->pending.sb.size = 0;
    w->npending = 0;
}

//  Adds the JOB body B (freed here) to W's next JOBS, which goes out when
//  it holds W's `batch` leases, at the end of s_dispatch, or before it
//  would outgrow a body; a JOB too large to share a body goes alone.
static void
s_batch_job (brk_broker_t *self, s_worker_t *w, cmn_packbuf_t *b)
{
    if (w->npending && w->pending.sb.size + b->sb.size + JOBS_ENVELOPE > RXQ_MAX_BODY_BYTES)
        s_batch_flush (self, w);
    if (b->sb.size + JOBS_ENVELOPE > RXQ_MAX_BODY_BYTES) {
        s_worker_send (self, w, RXQ_CMD_JOB, b, true);
        return;
    }
    msgpack_sbuffer_write (&w->pending.sb, b->sb.data, b->sb.size);
    msgpack_sbuffer_destroy (&b->sb);
    if (++w->npending >= w->batch)
        s_batch_flush (self, w);
}

static void
s_lease (brk_broker_t *self, s_worker_t *w, brk_job_t *job)
{
    job->state = BRK_LEASED;
    job->attempt++;
    snprintf (job->worker, sizeof job->worker, "%s", w->id);
    snprintf (job->worker_name, sizeof job->worker_name, "%s", w->name);
    job->started_ms = s_unix_ms ();
    job->abort_sent_ms = 0;
    job->reason [0] = 0;
    zlist_append (w->jobs, job);
    cmn_packbuf_t x;
    cmn_packbuf_init (&x);
    cmn_pack_kv_str (&x.pk, "worker", w->name);
    cmn_pack_kv_uint (&x.pk, "attempt", job->attempt);
    s_event (self, job, "leased", &x, 2);
    msgpack_sbuffer_destroy (&x.sb);
    s_touch (self, job);

    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 5);
    cmn_pack_kv_str (&b.pk, "id", job->id);
    cmn_pack_kv_uint (&b.pk, "attempt", job->attempt);
    cmn_pack_kv_str (&b.pk, "kind", job->kind);
    cmn_pack_key (&b.pk, "params");
    if (job->params)
        msgpack_pack_str_body (&b.pk, job->params, job->params_len);
    else
        msgpack_pack_map (&b.pk, 0);
    cmn_pack_kv_uint (&b.pk, "timeout_ms", job->timeout_ms);
    if (w->batch > 1)
        s_batch_job (self, w, &b);
    else
        s_worker_send (self, w, RXQ_CMD_JOB, &b, true);

    s_pending_lease_t *l = calloc (1, sizeof *l);
    if (l) {
        l->job = job;
        l->worker = w;
        zlist_append (self->leases, l);
    }
    self->stats.leases++;
}

//  Leases queued jobs to workers with free capacity, one job per worker
//  per round so load spreads, until no worker can take another.
//  True when W could take JOB now: a free slot, not quarantined, runs its
//  kind and meets its requirement.
static bool
s_worker_can_take (s_worker_t *w, brk_job_t *job)
{
    return zlist_size (w->jobs) + zlist_size (w->zombies) < w->capacity && !w->quarantined
        && s_worker_runs (w, job->kind) && brk_route_match (&job->require, &w->caps);
}

//  6.10: the worker that should run JOB, which FIRST popped. For a job
//  whose `model` names a blob, while some worker advertises weights: the
//  free worker that can take it with the best brk_route_score (holding
//  the model, then free device memory, then idle); FIRST keeps it on a
//  tie. Other jobs stay with FIRST.
static s_worker_t *
s_affinity (brk_broker_t *self, s_worker_t *first, brk_job_t *job, bool any_weights)
{
    char model [65];
    if (!any_weights || !brk_route_job_model (job->params, job->params_len, model))
        return first;
    s_worker_t *best = first;
    uint64_t best_score = brk_route_score (model, &first->caps, &first->weights,
                                           zlist_size (first->jobs));
    for (s_worker_t *w = zhashx_first (self->workers); w; w = zhashx_next (self->workers)) {
        if (w == first || !s_worker_can_take (w, job))
            continue;
        uint64_t score = brk_route_score (model, &w->caps, &w->weights, zlist_size (w->jobs));
        if (score > best_score) {
            best = w;
            best_score = score;
        }
    }
    if (best != first)
        cmn_log_debug ("job %s on model %.16s... goes to %s (%s) rather than %s: %s", job->id,
                       model, best->id, best->name, first->id,
                       brk_weights_holds (&best->weights, model) ? "it holds the model"
                                                                 : "more free memory or idle");
    return best;
}

static void
s_dispatch (brk_broker_t *self)
{
    if (!self->redis_ok || brk_queue_size (self->queue) == 0)
        return;
    //  A snapshot of the workers, so that s_affinity may walk the table
    //  while we do.
    size_t n = zhashx_size (self->workers), i = 0;
    s_worker_t **ws = n ? malloc (n * sizeof *ws) : NULL;
    if (!ws)
        return;
    bool any_weights = false;
    for (s_worker_t *w = zhashx_first (self->workers); w; w = zhashx_next (self->workers)) {
        ws [i++] = w;
        any_weights |= w->weights.n > 0;
    }
    bool progress = true;
    while (progress && brk_queue_size (self->queue) > 0) {
        progress = false;
        for (i = 0; i < n; i++) {
            s_worker_t *w = ws [i];
            if (zlist_size (w->jobs) + zlist_size (w->zombies) >= w->capacity || w->quarantined)
                continue;
            brk_job_t *job = brk_queue_pop (self->queue, (const char *const *) w->kinds,
                                            w->nkinds, &w->caps);
            if (job) {
                s_lease (self, s_affinity (self, w, job, any_weights), job);
                progress = true;
            }
        }
    }
    //  Leases are sent in JOBS of up to a worker's `batch`: what is left
    //  goes now, with the batch.
    for (i = 0; i < n; i++)
        s_batch_flush (self, ws [i]);
    free (ws);
}

//  ---------------------------------------------------------------------
//  Worker commands

static int
s_copy_msgpack (const msgpack_object *obj, char **out, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object (&pk, *obj);
    free (*out);
    *out = sb.data;
    *len = sb.size;
    return 0;
}

//  Adopts the leases a (re-)registering worker says it holds, when they
//  are still valid: the job is an orphan from before a restart, or was
//  requeued and not leased since, with the same attempt (6.1). Others get
//  an ABORT so the worker stops wasting its device on them.
static void
s_reclaim (brk_broker_t *self, s_worker_t *w, const msgpack_object *jobs)
{
    for (uint32_t i = 0; i < jobs->via.array.size; i++) {
        const msgpack_object *e = &jobs->via.array.ptr [i];
        char id [RXQ_MAX_ID_LEN + 1];
        uint64_t attempt;
        if (cmn_codec_get_cstr (e, "id", id, sizeof id, NULL) != 0
        ||  cmn_codec_get_uint (e, "attempt", &attempt, NULL) != 0)
            continue;
        brk_job_t *job = zhashx_lookup (self->jobs, id);
        if (job && job->state == BRK_LEASED && job->attempt == attempt
        &&  zlist_exists (w->jobs, job))
            continue;           // kept across its re-registration
        bool orphan = job && job->state == BRK_LEASED && job->orphan_until_ms
                   && job->attempt == attempt;
        bool requeued = job && job->state == BRK_QUEUED && job->queued_in_lane
                     && job->attempt == attempt;
        if (orphan || requeued) {
            if (requeued)
                brk_queue_remove (self->queue, job);
            else
                zlist_remove (self->orphans, job);
            job->state = BRK_LEASED;
            job->orphan_until_ms = 0;
            job->reason [0] = 0;
            snprintf (job->worker, sizeof job->worker, "%s", w->id);
            snprintf (job->worker_name, sizeof job->worker_name, "%s", w->name);
            zlist_append (w->jobs, job);
            s_event_str (self, job, "reclaimed", "worker", w->name);
            s_touch (self, job);
            cmn_log_info ("worker %s reclaimed job %s attempt %" PRIu64, w->name, id, attempt);
        }
        else {
            cmn_packbuf_t b;
            cmn_packbuf_init (&b);
            msgpack_pack_map (&b.pk, 3);
            cmn_pack_kv_str (&b.pk, "id", id);
            cmn_pack_kv_uint (&b.pk, "attempt", attempt);
            cmn_pack_kv_str (&b.pk, "reason", "lease no longer valid");
            s_worker_send (self, w, RXQ_CMD_ABORT, &b, false);
            s_zombie_add (w, id, attempt);
        }
    }
}

//  A registered worker sent READY again (it lost touch with us, or we with
//  it): the leases it still lists move to its new registration, the ones
//  it no longer lists go back to the queue, and the old record goes.
static void
s_reregister (brk_broker_t *self, s_worker_t *old, s_worker_t *w, const msgpack_object *jobs)
{
    for (uint32_t i = 0; jobs && i < jobs->via.array.size; i++) {
        const msgpack_object *e = &jobs->via.array.ptr [i];
        char id [RXQ_MAX_ID_LEN + 1];
        uint64_t attempt;
        if (cmn_codec_get_cstr (e, "id", id, sizeof id, NULL) != 0
        ||  cmn_codec_get_uint (e, "attempt", &attempt, NULL) != 0)
            continue;
        brk_job_t *job = zhashx_lookup (self->jobs, id);
        if (job && job->state == BRK_LEASED && job->attempt == attempt
        &&  zlist_exists (old->jobs, job)) {
            zlist_remove (old->jobs, job);
            zlist_append (w->jobs, job);
        }
        else
        if (s_zombie_remove (old, id, attempt))
            s_zombie_add (w, id, attempt);
    }
    brk_job_t *job;
    while ((job = zlist_pop (old->jobs))) {
        char reason [160];
        snprintf (reason, sizeof reason, "worker %s re-registered without it", old->name);
        s_requeue (self, job, reason);
    }
    zhashx_delete (self->workers, old->id);
}

static void
s_on_ready (brk_broker_t *self, zframe_t *identity, const char *hex, const msgpack_object *body)
{
    cmn_err_t err = { 0 };
    const msgpack_object *kinds = NULL, *device = NULL, *tags = NULL, *jobs = NULL;
    char name [128] = "";
    uint64_t capacity = 1, batch = 0;
    if (cmn_codec_get_cstr (body, "name", name, sizeof name, &err) != 0
    ||  cmn_codec_get_array (body, "kinds", &kinds, &err) != 0
    ||  cmn_codec_get_uint (body, "capacity", &capacity, &err) < 0
    ||  cmn_codec_get_uint (body, "batch", &batch, &err) < 0
    ||  cmn_codec_get_map (body, "device", &device, &err) < 0
    ||  cmn_codec_get_array (body, "tags", &tags, &err) < 0
    ||  cmn_codec_get_array (body, "jobs", &jobs, &err) < 0) {
        s_invalid (self, identity, "READY", err.code ? err.msg : "missing 'name' or 'kinds'");
        s_disconnect (self, identity, RXQ_E_PROTO,
                      err.code ? err.msg : "READY needs 'name' and 'kinds'");
        return;
    }
    s_worker_t *w = calloc (1, sizeof *w);
    if (!w)
        return;
    snprintf (w->id, sizeof w->id, "%s", hex);
    snprintf (w->name, sizeof w->name, "%s", name);
    w->identity = zframe_dup (identity);
    w->jobs = zlist_new ();
    w->zombies = zlist_new ();
    zlist_autofree (w->zombies);
    s_worker_t *old = zhashx_lookup (self->workers, hex);
    if (old)
        s_reregister (self, old, w, jobs);
    w->capacity = capacity < 1 ? 1 : capacity > CAPACITY_MAX ? CAPACITY_MAX : capacity;
    w->batch = batch > RXQ_MAX_BATCH ? RXQ_MAX_BATCH : batch;
    cmn_packbuf_init (&w->pending);
    w->kinds = calloc (kinds->via.array.size + 1, sizeof (char *));
    for (uint32_t i = 0; w->kinds && i < kinds->via.array.size; i++) {
        const msgpack_object *k = &kinds->via.array.ptr [i];
        //  Only kinds the broker knows can ever be queued: keep just those.
        if (k->type == MSGPACK_OBJECT_STR && cmn_kind_find (k->via.str.ptr, k->via.str.size))
            w->kinds [w->nkinds++] = strndup (k->via.str.ptr, k->via.str.size);
    }
    if (device)
        s_copy_msgpack (device, &w->device, &w->device_len);
    if (tags)
        s_copy_msgpack (tags, &w->tags, &w->tags_len);
    brk_caps_parse (&w->caps, device, tags);
    const msgpack_object *weights = cmn_codec_find (body, "weights");
    if (weights)
        brk_weights_parse (&w->weights, weights, NULL);
    snprintf (w->caps.id, sizeof w->caps.id, "%s", w->id);
    snprintf (w->caps.name, sizeof w->caps.name, "%s", w->name);
    brk_farm_device_key (device, w->tune_key, sizeof w->tune_key);
    w->last_recv_ms = w->last_send_ms = s_now ();
    zhashx_insert (self->workers, w->id, w);
    cmn_log_info ("worker %s (%s) ready: %zu kind(s), capacity %" PRIu64, w->id, w->name,
                  w->nkinds, w->capacity);
    if (jobs)
        s_reclaim (self, w, jobs);
    //  A heartbeat tells the worker it is registered.
    s_worker_send (self, w, RXQ_CMD_HEARTBEAT, NULL, false);
    s_tuning_on_ready (self, w);
}

//  Finds the job a PROGRESS or DONE names and checks the lease is current
//  (6.5, 6.6). Returns NULL for a stale or unknown lease, counting it.
static brk_job_t *
s_current_lease (brk_broker_t *self, s_worker_t *w, const msgpack_object *body,
                 const char *what, uint64_t *attempt_out)
{
    char id [RXQ_MAX_ID_LEN + 1];
    uint64_t attempt = 0;
    cmn_err_t err = { 0 };
    if (cmn_codec_get_cstr (body, "id", id, sizeof id, &err) != 0
    ||  cmn_codec_get_uint (body, "attempt", &attempt, &err) != 0) {
        s_invalid (self, w->identity, what, err.code ? err.msg : "missing 'id' or 'attempt'");
        return NULL;
    }
    brk_job_t *job = zhashx_lookup (self->jobs, id);
    if (!job || job->state != BRK_LEASED || job->attempt != attempt
    ||  strcmp (job->worker, w->id) != 0) {
        if (strcmp (what, "DONE") == 0)
            s_zombie_remove (w, id, attempt);
        self->stats.stale_refused++;
        cmn_log_warn ("refused %s for job %s attempt %" PRIu64 " from worker %s: stale lease "
                      "(current attempt %" PRIu64 ", state %s)", what, id, attempt, w->name,
                      job ? job->attempt : 0, job ? brk_state_name (job->state) : "unknown");
        return NULL;
    }
    *attempt_out = attempt;
    return job;
}

//  Kind-specific fields of a PROGRESS forwarded with it (6.5).
#define PROGRESS_MAX_EXTRA 8

static void
s_on_progress (brk_broker_t *self, s_worker_t *w, const msgpack_object *body)
{
    uint64_t attempt;
    brk_job_t *job = s_current_lease (self, w, body, "PROGRESS", &attempt);
    if (!job)
        return;
    double fraction = 0;
    char message [256] = "";
    cmn_err_t err = { 0 };
    if (cmn_codec_get_double (body, "fraction", &fraction, &err) < 0
    ||  cmn_codec_get_cstr (body, "message", message, sizeof message, &err) < 0) {
        s_invalid (self, w->identity, "PROGRESS", err.msg);
        return;
    }
    cmn_packbuf_t x;
    cmn_packbuf_init (&x);
    cmn_pack_kv_uint (&x.pk, "attempt", attempt);
    cmn_pack_kv_double (&x.pk, "fraction", fraction);
    cmn_pack_kv_str (&x.pk, "message", message);
    //  Kind-specific fields (6.5) travel on unchanged, at most
    //  PROGRESS_MAX_EXTRA of them (generate's streamed text, for one).
    uint32_t n = 3;
    for (uint32_t i = 0; i < body->via.map.size && n < 3 + PROGRESS_MAX_EXTRA; i++) {
        const msgpack_object_kv *kv = &body->via.map.ptr [i];
        if (cmn_codec_str_eq (&kv->key, "id") || cmn_codec_str_eq (&kv->key, "attempt")
        ||  cmn_codec_str_eq (&kv->key, "fraction") || cmn_codec_str_eq (&kv->key, "message")
        ||  kv->key.type != MSGPACK_OBJECT_STR)
            continue;
        msgpack_pack_object (&x.pk, kv->key);
        msgpack_pack_object (&x.pk, kv->val);
        n++;
    }
    s_event (self, job, "progress", &x, n);
    msgpack_sbuffer_destroy (&x.sb);
}

static int64_t
s_backoff_ms (brk_broker_t *self, uint64_t attempt)
{
    int64_t d = self->cfg.backoff_ms;
    for (uint64_t i = 1; i < attempt && d < self->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > self->cfg.backoff_max_ms)
        d = self->cfg.backoff_max_ms;
    //  Full jitter on half the delay: spreads retries of jobs that failed
    //  together without letting the delay collapse to nothing.
    return d / 2 + (d > 1 ? (int64_t) (random () % (d / 2 + 1)) : 0);
}

static void
s_on_done (brk_broker_t *self, s_worker_t *w, const msgpack_object *body)
{
    uint64_t attempt;
    brk_job_t *job = s_current_lease (self, w, body, "DONE", &attempt);
    if (!job)
        return;
    bool ok = false, retry = true;
    const msgpack_object *result = NULL, *error = NULL;
    cmn_err_t err = { 0 };
    if (cmn_codec_get_bool (body, "ok", &ok, &err) != 0
    ||  cmn_codec_get_map (body, "result", &result, &err) < 0
    ||  cmn_codec_get_map (body, "error", &error, &err) < 0
    ||  cmn_codec_get_bool (body, "retry", &retry, &err) < 0) {
        s_invalid (self, w->identity, "DONE", err.code ? err.msg : "missing 'ok'");
        return;
    }
    zlist_remove (w->jobs, job);
    if (ok) {
        if (result)
            s_copy_msgpack (result, &job->result, &job->result_len);
        else
            brk_job_set_bytes (&job->result, &job->result_len, "\x80", 1);
        brk_job_set_error (job, 0, NULL);
        s_finish (self, job, BRK_SUCCEEDED);
        s_farm_write (self, job);
        return;
    }
    uint64_t code = RXQ_E_INTERNAL;
    char message [512] = "worker reported a failure without a message";
    if (error) {
        cmn_codec_get_uint (error, "code", &code, NULL);
        cmn_codec_get_cstr (error, "message", message, sizeof message, NULL);
    }
    if (code > INT32_MAX || !cmn_error_known ((int) code))
        code = RXQ_E_INTERNAL;
    brk_job_set_error (job, (int) code, message);
    if (job->cancel_requested && cmn_error_primary ((int) code) == RXQ_E_CANCELLED) {
        s_finish (self, job, BRK_CANCELLED);
        return;
    }
    //  A deadline would be missed again: timeouts are not retried.
    if (!retry || cmn_error_primary ((int) code) == RXQ_E_TIMEOUT) {
        s_finish (self, job, BRK_FAILED);
        return;
    }
    //  The worker refused the lease without running it (it was busy with
    //  work we did not count): not a failure; try again shortly.
    bool refused = cmn_error_primary ((int) code) == RXQ_E_UNAVAILABLE;
    if (!refused && ++job->failures >= job->max_attempts) {
        s_finish (self, job, BRK_DEAD);
        return;
    }
    int64_t delay = refused ? 100 : s_backoff_ms (self, job->failures);
    job->state = BRK_QUEUED;
    job->started_ms = 0;
    job->not_before_ms = s_now () + delay;
    snprintf (job->reason, sizeof job->reason, "attempt %" PRIu64 " failed; retrying in %" PRId64
              " ms", job->attempt, delay);
    zlist_append (self->delayed, job);
    s_event_error (self, job, "retrying");
    s_touch (self, job);
}

//  DONES (6.6.2): each element is handled as a DONE, in order; one that is
//  not a map is dropped as an invalid DONE would be, and the rest count.
static void
s_on_dones (brk_broker_t *self, s_worker_t *w, zframe_t *identity, const msgpack_object *body)
{
    const msgpack_object *done = NULL;
    cmn_err_t err = { 0 };
    if (cmn_codec_get_array (body, "done", &done, &err) != 0
    ||  done->via.array.size == 0 || done->via.array.size > RXQ_MAX_BATCH) {
        s_invalid (self, identity, "DONES",
                   err.code ? err.msg : "'done' must be an array of 1 to 256 DONE maps");
        return;
    }
    for (uint32_t i = 0; i < done->via.array.size; i++) {
        const msgpack_object *d = &done->via.array.ptr [i];
        if (d->type != MSGPACK_OBJECT_MAP) {
            s_invalid (self, identity, "DONES", "an element of 'done' is not a map");
            continue;
        }
        //  6.10: a DONE may say what its weight cache holds now.
        const msgpack_object *weights = cmn_codec_find (d, "weights");
        if (weights)
            brk_weights_parse (&w->weights, weights, NULL);
        s_on_done (self, w, d);
    }
}

//  HEARTBEAT from a worker (6.2, 6.6.1): `stalled_ms` over the hang limit
//  means its device thread has shown no life for that long (a kernel that
//  never returns): its leases go back to the queue and it is quarantined
//  until its device thread beats again.
static void
s_on_heartbeat (brk_broker_t *self, s_worker_t *w, const msgpack_object *body)
{
    uint64_t stalled = 0;
    cmn_codec_get_uint (body, "stalled_ms", &stalled, NULL);
    if (stalled > (uint64_t) self->cfg.hang_ms) {
        if (!w->quarantined || zlist_size (w->jobs)) {
            cmn_log_warn ("worker %s (%s): device thread stalled for %" PRIu64 " ms; "
                          "requeueing %zu job(s) and quarantining it", w->id, w->name, stalled,
                          zlist_size (w->jobs));
            w->quarantined = true;
            w->hung = true;
            brk_job_t *job;
            char reason [160];
            snprintf (reason, sizeof reason, "worker %s stalled for %" PRIu64 " ms", w->name,
                      stalled);
            while ((job = zlist_pop (w->jobs))) {
                s_zombie_add (w, job->id, job->attempt);
                job->failures++;
                s_requeue (self, job, reason);
            }
        }
    }
    else
    if (w->hung && stalled < (uint64_t) self->cfg.hang_ms) {
        cmn_log_info ("worker %s (%s): device thread beats again; quarantine lifted",
                      w->id, w->name);
        w->hung = false;
        w->quarantined = false;
    }
}

static void
s_on_worker (brk_broker_t *self, zframe_t *identity, const char *hex, int cmd,
             const msgpack_object *body)
{
    if (cmd == RXQ_CMD_READY) {
        s_on_ready (self, identity, hex, body);
        return;
    }
    s_worker_t *w = zhashx_lookup (self->workers, hex);
    if (!w) {
        //  A result from a worker declared dead is from a stale lease by
        //  definition: its jobs went back to the queue (6.4, 6.6).
        if (cmd == RXQ_CMD_DONE || cmd == RXQ_CMD_DONES || cmd == RXQ_CMD_PROGRESS) {
            self->stats.stale_refused++;
            cmn_log_warn ("refused %s from unregistered worker %s: stale lease",
                          cmn_proto_command_name (cmd), hex);
        }
        //  3.5: an unregistered worker is told to register.
        if (cmd != RXQ_CMD_DISCONNECT)
            s_disconnect (self, identity, RXQ_E_STATE, "not registered: send READY");
        return;
    }
    w->last_recv_ms = s_now ();
    //  6.10: HEARTBEAT and DONE may say what its weight cache holds now.
    const msgpack_object *weights = cmn_codec_find (body, "weights");
    if (weights && (cmd == RXQ_CMD_HEARTBEAT || cmd == RXQ_CMD_DONE))
        brk_weights_parse (&w->weights, weights, NULL);
    if ((cmd == RXQ_CMD_DONE || cmd == RXQ_CMD_DONES) && w->quarantined && !w->hung) {
        //  Its device thread came back: it can take work again.
        cmn_log_info ("worker %s (%s) reported again; quarantine lifted", w->id, w->name);
        w->quarantined = false;
    }
    switch (cmd) {
        case RXQ_CMD_HEARTBEAT:
            s_on_heartbeat (self, w, body);
            break;
        case RXQ_CMD_PROGRESS:
            s_on_progress (self, w, body);
            break;
        case RXQ_CMD_DONE:
            s_on_done (self, w, body);
            break;
        case RXQ_CMD_DONES:
            s_on_dones (self, w, identity, body);
            break;
        case RXQ_CMD_DISCONNECT:
            s_worker_dead (self, w, "disconnected");
            break;
        default:
            s_invalid (self, identity, cmn_proto_command_name (cmd),
                       "command not valid from a worker");
    }
}

//  ---------------------------------------------------------------------
//  Client commands

//  Loads an ended job from Redis into a temporary record the caller
//  destroys; NULL with ERR set when absent or unreadable.
static brk_job_t *
s_load_job (brk_broker_t *self, const char *id, cmn_err_t *err)
{
    if (!s_sync_point (self)) {
        cmn_err_set (err, RXQ_E_UNAVAILABLE, "Redis is unavailable; cannot read job %s", id);
        return NULL;
    }
    redisReply *r = brk_store_command (self->store, "GET %sjob:%s", self->prefix, id);
    const cmn_err_t *serr = brk_store_error (self->store);
    const bool hash = !r && serr->code == RXQ_E_REDIS_REPLY && strstr (serr->msg, "WRONGTYPE");
    if (hash)
        //  A hash: the job was stored by a broker from before the record
        //  was one string (docs/redis.md, "Upgrading"). Read it as such;
        //  the job's next write replaces it.
        r = brk_store_command (self->store, "HGETALL %sjob:%s", self->prefix, id);
    if (!r) {
        cmn_err_set (err, RXQ_E_UNAVAILABLE, "%s", brk_store_error (self->store)->msg);
        if (!brk_store_ok (self->store))
            s_redis_lost (self);
        return NULL;
    }
    brk_job_t *job = NULL;
    if (hash) {
        job = brk_job_new ();
        if (job && brk_job_load_hash (job, r) != 0) {
            brk_job_destroy (&job);
            cmn_err_set (err, RXQ_E_REDIS_REPLY, "job %s is malformed in Redis", id);
        }
    }
    else
    if (r->type == REDIS_REPLY_NIL)
        cmn_err_set (err, RXQ_E_NOTFOUND, "no job with id '%s'", id);
    else {
        job = brk_job_new ();
        if (job && (r->type != REDIS_REPLY_STRING
                ||  brk_job_load (job, r->str, r->len) != 0)) {
            brk_job_destroy (&job);
            cmn_err_set (err, RXQ_E_REDIS_REPLY, "job %s is malformed in Redis", id);
        }
    }
    freeReplyObject (r);
    return job;
}

//  The job named by the request's "id": in memory, else loaded into *TEMP.
static brk_job_t *
s_request_job (brk_broker_t *self, zframe_t *identity, uint64_t req,
               const msgpack_object *body, brk_job_t **temp)
{
    char id [RXQ_MAX_ID_LEN + 1];
    cmn_err_t err = { 0 };
    if (cmn_codec_get_cstr (body, "id", id, sizeof id, &err) != 0) {
        s_client_error (self, identity, req, RXQ_E_PROTO,
                        err.code ? err.msg : "request needs a job 'id'");
        return NULL;
    }
    brk_job_t *job = zhashx_lookup (self->jobs, id);
    if (job)
        return job;
    *temp = s_load_job (self, id, &err);
    if (!*temp)
        s_client_error (self, identity, req, err.code, err.msg);
    return *temp;
}

static void
s_reply_job (brk_broker_t *self, zframe_t *identity, uint64_t req, brk_job_t *job)
{
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 2);
    cmn_pack_kv_uint (&b.pk, "req", req);
    cmn_pack_key (&b.pk, "job");
    brk_job_pack (job, &b.pk, false);
    s_send_now (self, s_msg (identity, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &b));
}

static void
s_reply_state (brk_broker_t *self, zframe_t *identity, uint64_t req, brk_job_t *job,
               bool later)
{
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 3);
    cmn_pack_kv_uint (&b.pk, "req", req);
    cmn_pack_kv_str (&b.pk, "id", job->id);
    cmn_pack_kv_str (&b.pk, "state", brk_state_name (job->state));
    zmsg_t *m = s_msg (identity, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &b);
    if (later)
        s_send_later (self, m);
    else
        s_send_now (self, m);
}

//  Replies to a SUBMIT whose key names an existing job (5.1.1).
static void
s_submit_existing (brk_broker_t *self, zframe_t *identity, uint64_t req, const char *id,
                   bool wait, bool events)
{
    brk_job_t *job = zhashx_lookup (self->jobs, id), *temp = NULL;
    cmn_err_t err = { 0 };
    if (!job)
        job = temp = s_load_job (self, id, &err);
    if (!job) {
        s_client_error (self, identity, req, err.code, err.msg);
        return;
    }
    if (wait && !brk_state_terminal (job->state))
        brk_job_watch (job, identity, req, events);
    else
    if (wait)
        s_reply_job (self, identity, req, job);
    else
        s_reply_state (self, identity, req, job, false);
    brk_job_destroy (&temp);
}

//  Section 9.5: a `model` parameter that names a blob must name one in the
//  store, so a job is refused at once rather than failing on a worker;
//  each job naming a blob counts in its `refs` (docs/redis.md). A path
//  (anything that is not 64 hex digits) is the worker's business.
static int
s_check_blobs (brk_broker_t *self, const msgpack_object *params, cmn_err_t *err)
{
    const msgpack_object *model = params ? cmn_codec_find (params, "model") : NULL;
    if (!model || model->type != MSGPACK_OBJECT_STR
    ||  !cmn_blob_name_valid (model->via.str.ptr, model->via.str.size))
        return 0;
    char hash [CMN_BLOB_HEX_LEN + 1];
    memcpy (hash, model->via.str.ptr, CMN_BLOB_HEX_LEN);
    hash [CMN_BLOB_HEX_LEN] = 0;
    if (!self->blobs)
        return cmn_err_set (err, RXQ_E_UNSUPPORTED, "parameter 'model' names a blob, but this "
                            "broker keeps no blobs: start rxq-broker with --data-dir DIR");
    if (!brk_blobs_has (self->blobs, hash, NULL))
        return cmn_err_set (err, RXQ_E_NOTFOUND, "parameter 'model' names blob %s, which is "
                            "not in the broker's store (upload it with: rxq put FILE)", hash);
    brk_blobs_ref (self->blobs, hash);
    return 0;
}

static void
s_on_submit (brk_broker_t *self, zframe_t *identity, uint64_t req, const msgpack_object *body)
{
    cmn_err_t err = { 0 };
    const char *kind_s;
    size_t kind_len;
    const msgpack_object *params = NULL, *require = NULL;
    uint64_t priority = RXQ_PRIORITY_NORMAL, max_attempts = self->cfg.max_attempts;
    uint64_t timeout_ms = 0, queue_timeout_ms = 0;
    brk_require_t req_caps;
    bool wait = false, events = true;
    char key [RXQ_MAX_KEY_LEN + 1] = "";
    int rc = cmn_codec_get_str (body, "kind", &kind_s, &kind_len, &err);
    if (rc == 1)
        cmn_err_set (&err, RXQ_E_PROTO, "SUBMIT needs a 'kind'");
    if (rc != 0
    ||  cmn_codec_get_map (body, "params", &params, &err) < 0
    ||  cmn_codec_get_uint (body, "priority", &priority, &err) < 0
    ||  cmn_codec_get_uint (body, "max_attempts", &max_attempts, &err) < 0
    ||  cmn_codec_get_uint (body, "timeout_ms", &timeout_ms, &err) < 0
    ||  cmn_codec_get_uint (body, "queue_timeout_ms", &queue_timeout_ms, &err) < 0
    ||  cmn_codec_get_map (body, "require", &require, &err) < 0
    ||  brk_require_parse (&req_caps, require, &err) < 0
    ||  cmn_codec_get_bool (body, "wait", &wait, &err) < 0
    ||  cmn_codec_get_bool (body, "events", &events, &err) < 0
    ||  cmn_codec_get_cstr (body, "key", key, sizeof key, &err) < 0) {
        s_client_error (self, identity, req, err.code, err.msg);
        return;
    }
    const cmn_kind_t *kind = cmn_kind_find (kind_s, kind_len);
    if (!kind) {
        char msg [160];
        snprintf (msg, sizeof msg, "unknown job kind '%.*s' (rxq submit --help lists them)",
                  (int) (kind_len > 64 ? 64 : kind_len), kind_s);
        s_client_error (self, identity, req, RXQ_E_KIND, msg);
        return;
    }
    if (cmn_kind_validate (kind, params, &err)) {
        s_client_error (self, identity, req, err.code, err.msg);
        return;
    }
    if (priority > RXQ_PRIORITY_MAX) {
        s_client_error (self, identity, req, RXQ_E_PARAM, "priority must be 0, 1 or 2");
        return;
    }
    if (max_attempts < 1 || max_attempts > 100) {
        s_client_error (self, identity, req, RXQ_E_PARAM, "max_attempts must be between 1 and 100");
        return;
    }
    if (s_check_blobs (self, params, &err)) {
        s_client_error (self, identity, req, err.code, err.msg);
        return;
    }
    if (!self->redis_ok) {
        s_client_error (self, identity, req, RXQ_E_UNAVAILABLE,
                        "job not accepted: Redis is unavailable, so it cannot be persisted; "
                        "try again later");
        return;
    }
    if (key [0]) {
        const char *existing = zhashx_lookup (self->keys, key);
        if (existing) {
            s_submit_existing (self, identity, req, existing, wait, events);
            return;
        }
        if (!s_sync_point (self)) {
            s_client_error (self, identity, req, RXQ_E_UNAVAILABLE, "Redis is unavailable");
            return;
        }
        redisReply *r = brk_store_command (self->store, "GET %skey:%s", self->prefix, key);
        if (!r) {
            s_client_error (self, identity, req, RXQ_E_UNAVAILABLE,
                            brk_store_error (self->store)->msg);
            return;
        }
        if (r->type == REDIS_REPLY_STRING && r->len <= RXQ_MAX_ID_LEN) {
            char id [RXQ_MAX_ID_LEN + 1];
            memcpy (id, r->str, r->len);
            id [r->len] = 0;
            freeReplyObject (r);
            s_submit_existing (self, identity, req, id, wait, events);
            return;
        }
        freeReplyObject (r);
    }
    brk_job_t *job = brk_job_new ();
    s_pending_ack_t *ack = calloc (1, sizeof *ack);
    if (!job || !ack) {
        brk_job_destroy (&job);
        free (ack);
        s_client_error (self, identity, req, RXQ_E_NOMEM, "broker out of memory");
        return;
    }
    self->job_counter++;
    snprintf (job->id, sizeof job->id, "%04" PRIx64 "-%08" PRIx64, self->epoch, self->job_counter);
    memcpy (job->kind, kind_s, kind_len);
    job->kind [kind_len] = 0;
    job->priority = (uint32_t) priority;
    job->seq = (self->epoch << 32) | self->job_counter;
    job->max_attempts = max_attempts;
    job->timeout_ms = timeout_ms;
    job->created_ms = s_unix_ms ();
    job->queue_deadline_ms = queue_timeout_ms ? job->created_ms + (int64_t) queue_timeout_ms : 0;
    job->require = req_caps;
    if (params)
        s_copy_msgpack (params, &job->params, &job->params_len);
    if (key [0]) {
        job->key = strdup (key);
        zhashx_insert (self->keys, key, job->id);
        brk_store_append (self->store, "SET %skey:%s %s", self->prefix, key, job->id);
    }
    if (wait)
        brk_job_watch (job, identity, req, events);
    zhashx_insert (self->jobs, job->id, job);
    s_queue_job (self, job);
    s_explain_wait (self, job);
    s_touch (self, job);
    s_event (self, job, "accepted", NULL, 0);
    ack->job = job;
    ack->identity = zframe_dup (identity);
    ack->req = req;
    ack->wait = wait;
    ack->events = events;
    zlist_append (self->acks, ack);
    self->stats.submitted++;
}

static void
s_on_status (brk_broker_t *self, zframe_t *identity, uint64_t req,
             const msgpack_object *body, bool result_only)
{
    brk_job_t *temp = NULL;
    brk_job_t *job = s_request_job (self, identity, req, body, &temp);
    if (!job)
        return;
    if (job->state == BRK_QUEUED && job->queued_in_lane)
        s_explain_wait (self, job);
    if (result_only && !brk_state_terminal (job->state)) {
        char msg [160];
        snprintf (msg, sizeof msg, "job %s has not finished (state %s); use rxq watch to wait",
                  job->id, brk_state_name (job->state));
        s_client_error (self, identity, req, RXQ_E_STATE, msg);
    }
    else
        s_reply_job (self, identity, req, job);
    brk_job_destroy (&temp);
}

//  True when event id A ("<epoch>-<n>") comes after event id B, in the
//  order of stream ids; B may be a bare "<epoch>" (as XRANGE allows). An
//  id that does not parse comes first.
static bool
s_eid_after (const char *a, const char *b)
{
    unsigned long long ae = 0, an = 0, be = 0, bn = 0;
    if (sscanf (a, "%llu-%llu", &ae, &an) != 2)
        return false;
    int nb = sscanf (b, "%llu-%llu", &be, &bn);
    if (nb < 1)
        return true;
    if (nb == 1)
        bn = 0;
    return ae > be || (ae == be && an > bn);
}

//  Sends a stored event (EV, LEN bytes of packed map) of JOB to a WATCH as
//  PARTIAL {req, id, event}.
static void
s_replay_event (brk_broker_t *self, zframe_t *identity, uint64_t req, brk_job_t *job,
                const char *ev, size_t len)
{
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 3);
    cmn_pack_kv_uint (&b.pk, "req", req);
    cmn_pack_kv_str (&b.pk, "id", job->id);
    cmn_pack_key (&b.pk, "event");
    msgpack_sbuffer_write (&b.sb, ev, len);
    s_send_now (self, s_msg (identity, RXQ_PROTO_CLIENT, RXQ_CMD_PARTIAL, &b));
}

static void
s_on_watch (brk_broker_t *self, zframe_t *identity, uint64_t req, const msgpack_object *body)
{
    char since [48] = "-";
    char range_start [52];
    cmn_err_t err = { 0 };
    if (cmn_codec_get_cstr (body, "since", since, sizeof since, &err) < 0) {
        s_client_error (self, identity, req, err.code, err.msg);
        return;
    }
    for (const char *p = since; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '-')) {
            s_client_error (self, identity, req, RXQ_E_PROTO, "'since' must be an event id");
            return;
        }
    //  The batch is written before the job is looked up: writing it
    //  forgets the jobs that ended in it, and a pointer taken before would
    //  then dangle (a WATCH arriving in the turn its job ended added its
    //  watcher to freed memory and never got a FINAL).
    bool synced = s_sync_point (self);
    brk_job_t *temp = NULL;
    brk_job_t *job = s_request_job (self, identity, req, body, &temp);
    if (!job)
        return;
    //  Replay stored events after SINCE (exclusive), then stream live ones:
    //  those kept in the record, or those in the stream (never both).
    for (size_t i = 0; i < job->nevents; i++) {
        if (strcmp (since, "-") != 0 && !s_eid_after (job->events [i].eid, since))
            continue;
        s_replay_event (self, identity, req, job, job->events [i].data, job->events [i].len);
    }
    if (synced && job->streamed) {
        snprintf (range_start, sizeof range_start, "%s%s",
                  strcmp (since, "-") == 0 ? "" : "(", since);
        redisReply *r = brk_store_command (self->store, "XRANGE %sevents:%s %s + COUNT 10000",
                                           self->prefix, job->id, range_start);
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *e = r->element [i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
            ||  e->element [1]->type != REDIS_REPLY_ARRAY || e->element [1]->elements != 2)
                continue;
            redisReply *v = e->element [1]->element [1];
            if (v->type != REDIS_REPLY_STRING
            ||  cmn_codec_check (v->str, v->len, &cmn_codec_limits_default, NULL))
                continue;
            s_replay_event (self, identity, req, job, v->str, v->len);
        }
        if (r)
            freeReplyObject (r);
    }
    //  A job not in memory has ended (every live job is): the replay is
    //  followed at once by the FINAL. A live one streams until it ends.
    if (temp)
        s_reply_job (self, identity, req, job);
    else
        brk_job_watch (job, identity, req, true);
    brk_job_destroy (&temp);
}

static void
s_on_cancel (brk_broker_t *self, zframe_t *identity, uint64_t req, const msgpack_object *body)
{
    brk_job_t *temp = NULL;
    brk_job_t *job = s_request_job (self, identity, req, body, &temp);
    if (!job)
        return;
    if (temp || brk_state_terminal (job->state)) {
        char msg [160];
        snprintf (msg, sizeof msg, "job %s has already ended (state %s)", job->id,
                  brk_state_name (job->state));
        s_client_error (self, identity, req, RXQ_E_STATE, msg);
        brk_job_destroy (&temp);
        return;
    }
    if (!self->redis_ok) {
        s_client_error (self, identity, req, RXQ_E_UNAVAILABLE,
                        "Redis is unavailable; cannot record the cancellation");
        return;
    }
    if (job->state == BRK_QUEUED) {
        if (job->queued_in_lane)
            brk_queue_remove (self->queue, job);
        else
            zlist_remove (self->delayed, job);
        brk_job_set_error (job, RXQ_E_CANCELLED, "cancelled while queued");
        s_finish (self, job, BRK_CANCELLED);
    }
    else {
        s_worker_t *w = s_worker_of (self, job);
        job->cancel_requested = true;
        if (!w) {
            //  An orphan lease from before a restart: nobody runs it.
            zlist_remove (self->orphans, job);
            brk_job_set_error (job, RXQ_E_CANCELLED, "cancelled");
            s_finish (self, job, BRK_CANCELLED);
        }
        else {
            cmn_packbuf_t b;
            cmn_packbuf_init (&b);
            msgpack_pack_map (&b.pk, 3);
            cmn_pack_kv_str (&b.pk, "id", job->id);
            cmn_pack_kv_uint (&b.pk, "attempt", job->attempt);
            cmn_pack_kv_str (&b.pk, "reason", "cancelled");
            s_worker_send (self, w, RXQ_CMD_ABORT, &b, true);
            s_event_str (self, job, "cancelling", "worker", w->name);
            s_touch (self, job);
        }
    }
    s_reply_state (self, identity, req, job, true);
}

static void
s_on_retry (brk_broker_t *self, zframe_t *identity, uint64_t req, const msgpack_object *body)
{
    brk_job_t *temp = NULL;
    brk_job_t *job = s_request_job (self, identity, req, body, &temp);
    if (!job)
        return;
    if (job->state != BRK_FAILED && job->state != BRK_DEAD && job->state != BRK_CANCELLED) {
        char msg [160];
        snprintf (msg, sizeof msg, "only failed, dead or cancelled jobs can be retried; "
                  "job %s is %s", job->id, brk_state_name (job->state));
        s_client_error (self, identity, req, RXQ_E_STATE, msg);
        brk_job_destroy (&temp);
        return;
    }
    if (!self->redis_ok) {
        s_client_error (self, identity, req, RXQ_E_UNAVAILABLE, "Redis is unavailable");
        brk_job_destroy (&temp);
        return;
    }
    if (temp) {
        zhashx_insert (self->jobs, temp->id, temp);
        job = temp;
    }
    job->failures = 0;
    job->finished_ms = 0;
    job->worker [0] = 0;
    job->cancel_requested = false;
    s_requeue (self, job, "retry requested");
    s_reply_state (self, identity, req, job, true);
}

typedef struct {
    brk_job_t *job;             // record to report (owned when temp)
    bool temp;                  // loaded from Redis for this reply
    uint64_t seq;               // newest first
} s_list_item_t;

static int
s_list_cmp (const void *a, const void *b)
{
    const s_list_item_t *x = a, *y = b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

static void
s_on_list (brk_broker_t *self, zframe_t *identity, uint64_t req, const msgpack_object *body)
{
    char state_s [16] = "";
    uint64_t limit = LIST_DEFAULT;
    cmn_err_t err = { 0 };
    if (cmn_codec_get_cstr (body, "state", state_s, sizeof state_s, &err) < 0
    ||  cmn_codec_get_uint (body, "limit", &limit, &err) < 0) {
        s_client_error (self, identity, req, err.code ? err.code : RXQ_E_PROTO, err.msg);
        return;
    }
    brk_state_t only = BRK_STATE_NONE;
    if (state_s [0] && (only = brk_state_parse (state_s, strlen (state_s))) == BRK_STATE_NONE) {
        s_client_error (self, identity, req, RXQ_E_INVAL,
                        "state must be queued, leased, succeeded, failed, cancelled or dead");
        return;
    }
    if (limit == 0 || limit > LIST_MAX)
        limit = limit ? LIST_MAX : LIST_DEFAULT;
    if (!s_sync_point (self)) {
        s_client_error (self, identity, req, RXQ_E_UNAVAILABLE, "Redis is unavailable");
        return;
    }
    //  Newest `limit` ids of each wanted state set, merged by sequence.
    size_t cap = (size_t) limit * BRK_STATE_COUNT, n = 0;
    s_list_item_t *items = calloc (cap, sizeof *items);
    if (!items) {
        s_client_error (self, identity, req, RXQ_E_NOMEM, "broker out of memory");
        return;
    }
    for (int s = 0; s < BRK_STATE_COUNT; s++) {
        if (only != BRK_STATE_NONE && s != (int) only)
            continue;
        redisReply *r = brk_store_command (self->store, "ZREVRANGE %sstate:%s 0 %" PRIu64,
                                           self->prefix, brk_state_name (s), limit - 1);
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && n < cap; i++) {
            redisReply *e = r->element [i];
            if (e->type != REDIS_REPLY_STRING || e->len > RXQ_MAX_ID_LEN)
                continue;
            char id [RXQ_MAX_ID_LEN + 1];
            memcpy (id, e->str, e->len);
            id [e->len] = 0;
            brk_job_t *job = zhashx_lookup (self->jobs, id);
            bool temp = false;
            if (!job) {
                job = s_load_job (self, id, &err);
                temp = true;
            }
            if (job) {
                items [n].job = job;
                items [n].temp = temp;
                items [n].seq = job->seq;
                n++;
            }
        }
        if (r)
            freeReplyObject (r);
    }
    qsort (items, n, sizeof *items, s_list_cmp);
    size_t shown = n < limit ? n : (size_t) limit;
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 2);
    cmn_pack_kv_uint (&b.pk, "req", req);
    cmn_pack_key (&b.pk, "jobs");
    msgpack_pack_array (&b.pk, shown);
    for (size_t i = 0; i < shown; i++)
        brk_job_pack (items [i].job, &b.pk, true);
    for (size_t i = 0; i < n; i++)
        if (items [i].temp)
            brk_job_destroy (&items [i].job);
    free (items);
    s_send_now (self, s_msg (identity, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &b));
}

static void
s_on_workers (brk_broker_t *self, zframe_t *identity, uint64_t req)
{
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 2);
    cmn_pack_kv_uint (&b.pk, "req", req);
    cmn_pack_key (&b.pk, "workers");
    msgpack_pack_array (&b.pk, zhashx_size (self->workers));
    int64_t now = s_now (), unix_now = s_unix_ms ();
    for (s_worker_t *w = zhashx_first (self->workers); w; w = zhashx_next (self->workers)) {
        msgpack_pack_map (&b.pk, 10);
        cmn_pack_kv_str (&b.pk, "id", w->id);
        cmn_pack_kv_str (&b.pk, "name", w->name);
        cmn_pack_kv_str (&b.pk, "state", w->quarantined ? "quarantined"
                                        : zlist_size (w->jobs) ? "busy" : "idle");
        cmn_pack_kv_uint (&b.pk, "capacity", w->capacity);
        cmn_pack_key (&b.pk, "jobs");
        msgpack_pack_array (&b.pk, zlist_size (w->jobs));
        for (brk_job_t *j = zlist_first (w->jobs); j; j = zlist_next (w->jobs))
            cmn_pack_cstr (&b.pk, j->id);
        cmn_pack_key (&b.pk, "kinds");
        msgpack_pack_array (&b.pk, w->nkinds);
        for (size_t i = 0; i < w->nkinds; i++)
            cmn_pack_cstr (&b.pk, w->kinds [i]);
        cmn_pack_key (&b.pk, "device");
        if (w->device)
            msgpack_pack_str_body (&b.pk, w->device, w->device_len);
        else
            msgpack_pack_map (&b.pk, 0);
        cmn_pack_key (&b.pk, "tags");
        if (w->tags)
            msgpack_pack_str_body (&b.pk, w->tags, w->tags_len);
        else
            msgpack_pack_array (&b.pk, 0);
        cmn_pack_kv_uint (&b.pk, "last_seen_ms", (uint64_t) (unix_now - (now - w->last_recv_ms)));
        cmn_pack_key (&b.pk, "weights");
        msgpack_pack_array (&b.pk, w->weights.n);
        for (size_t i = 0; i < w->weights.n; i++)
            cmn_pack_cstr (&b.pk, w->weights.model [i]);
    }
    s_send_now (self, s_msg (identity, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &b));
}

//  RECORDS (5.10): a page of the farm's benchmark records.
static void
s_on_records (brk_broker_t *self, zframe_t *identity, uint64_t req, const msgpack_object *body)
{
    brk_farm_query_t q;
    cmn_err_t err = { 0 };
    if (brk_farm_query_parse (&q, body, &err)) {
        s_client_error (self, identity, req, err.code, err.msg);
        return;
    }
    if (!s_sync_point (self)) {
        s_client_error (self, identity, req, RXQ_E_UNAVAILABLE,
                        "Redis is unavailable; cannot read benchmark records");
        return;
    }
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    if (brk_farm_read (self->store, self->prefix, &q, req, &b.sb, &err)) {
        msgpack_sbuffer_destroy (&b.sb);
        if (!brk_store_ok (self->store))
            s_redis_lost (self);
        s_client_error (self, identity, req, err.code, err.msg);
        return;
    }
    s_send_now (self, s_msg (identity, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &b));
}

static void
s_on_client (brk_broker_t *self, zframe_t *identity, int cmd, const msgpack_object *body)
{
    uint64_t req = 0;
    cmn_err_t err = { 0 };
    if (cmn_codec_get_uint (body, "req", &req, &err) != 0) {
        s_invalid (self, identity, cmn_proto_command_name (cmd),
                   err.code ? err.msg : "missing 'req'");
        s_client_error (self, identity, 0, RXQ_E_PROTO,
                        err.code ? err.msg : "request has no 'req' field");
        return;
    }
    switch (cmd) {
        case RXQ_CMD_SUBMIT:  s_on_submit (self, identity, req, body); break;
        case RXQ_CMD_STATUS:  s_on_status (self, identity, req, body, false); break;
        case RXQ_CMD_RESULT:  s_on_status (self, identity, req, body, true); break;
        case RXQ_CMD_WATCH:   s_on_watch (self, identity, req, body); break;
        case RXQ_CMD_CANCEL:  s_on_cancel (self, identity, req, body); break;
        case RXQ_CMD_LIST:    s_on_list (self, identity, req, body); break;
        case RXQ_CMD_WORKERS: s_on_workers (self, identity, req); break;
        case RXQ_CMD_RETRY:   s_on_retry (self, identity, req, body); break;
        case RXQ_CMD_RECORDS: s_on_records (self, identity, req, body); break;
        case RXQ_CMD_HEARTBEAT: break;
        default: {
            char msg [96];
            snprintf (msg, sizeof msg, "command 0x%02x is not a client request", cmd);
            s_invalid (self, identity, "client message", msg);
            s_client_error (self, identity, req, RXQ_E_PROTO, msg);
        }
    }
}

//  ---------------------------------------------------------------------
//  Reading messages (3.1, 3.5, 4)

static void
s_on_message (brk_broker_t *self, zmsg_t *msg)
{
    size_t frames = zmsg_size (msg);
    zframe_t *identity = zmsg_pop (msg);
    if (!identity)
        return;
    zframe_t *empty = zmsg_pop (msg);
    zframe_t *header = zmsg_pop (msg);
    zframe_t *command = zmsg_pop (msg);
    zframe_t *body_f = zmsg_pop (msg);
    const char *reason = NULL;
    bool is_client = false, is_worker = false;
    if (frames > RXQ_MAX_FRAMES + 1)
        reason = "too many frames";
    else
    if (!empty || zframe_size (empty) != 0)
        reason = "missing empty delimiter frame";
    else
    if (!header || zframe_size (header) != RXQ_PROTO_HEADER_LEN)
        reason = "missing or malformed protocol header";
    else {
        is_client = memcmp (zframe_data (header), RXQ_PROTO_CLIENT_PREFIX, 4) == 0;
        is_worker = memcmp (zframe_data (header), RXQ_PROTO_WORKER_PREFIX, 4) == 0;
        if (!is_client && !is_worker)
            reason = "unknown protocol header";
    }
    if (!reason && (is_client || is_worker)) {
        const char *mine = is_client ? RXQ_PROTO_CLIENT : RXQ_PROTO_WORKER;
        if (memcmp (zframe_data (header), mine, RXQ_PROTO_HEADER_LEN) != 0) {
            //  4: another version of the protocol.
            char theirs [RXQ_PROTO_HEADER_LEN + 1];
            for (int i = 0; i < RXQ_PROTO_HEADER_LEN; i++) {
                char c = (char) zframe_data (header) [i];
                theirs [i] = c >= 0x20 && c < 0x7f ? c : '?';
            }
            theirs [RXQ_PROTO_HEADER_LEN] = 0;
            char msg [160];
            snprintf (msg, sizeof msg, "protocol version %s is not supported; this broker "
                      "speaks %s", theirs, mine);
            s_invalid (self, identity, "message", msg);
            if (is_client)
                s_client_error (self, identity, 0, RXQ_E_VERSION, msg);
            else
                s_disconnect (self, identity, RXQ_E_VERSION, msg);
            goto done;
        }
    }
    if (!reason && (!command || zframe_size (command) != 1))
        reason = "missing or malformed command frame";
    if (!reason && !body_f)
        reason = "missing body frame";
    if (reason) {
        s_invalid (self, identity, "message", reason);
        goto done;
    }
    int cmd = zframe_data (command) [0];
    cmn_body_t body;
    cmn_err_t err = { 0 };
    if (cmn_body_decode (&body, zframe_data (body_f), zframe_size (body_f),
                         &cmn_codec_limits_default, &err)) {
        s_invalid (self, identity, cmn_proto_command_name (cmd), err.msg);
        if (is_client)
            s_client_error (self, identity, 0, err.code, err.msg);
        goto done;
    }
    if (is_client && (cmd == RXQ_CMD_BLOB_PUT || cmd == RXQ_CMD_BLOB_DATA
                  ||  cmd == RXQ_CMD_BLOB_GET)) {
        //  Section 9: the blob store; its data frame follows the body.
        zframe_t *data = zmsg_pop (msg);
        if (self->blobs)
            brk_blobs_request (self->blobs, self->router, identity, cmd, &body.root, data);
        else {
            uint64_t req = 0;
            cmn_codec_get_uint (&body.root, "req", &req, NULL);
            s_client_error (self, identity, req, RXQ_E_UNSUPPORTED, "this broker keeps no "
                            "blobs: start rxq-broker with --data-dir DIR");
        }
        zframe_destroy (&data);
    }
    else
    if (is_client)
        s_on_client (self, identity, cmd, &body.root);
    else {
        char hex [24];
        size_t n = zframe_size (identity);
        if (n > 10)
            n = 10;
        for (size_t i = 0; i < n; i++)
            snprintf (hex + 2 * i, 3, "%02x", zframe_data (identity) [i]);
        hex [2 * n] = 0;
        if (zframe_size (identity) > 10)
            s_invalid (self, identity, "worker message", "routing identity longer than 10 bytes");
        else
            s_on_worker (self, identity, hex, cmd, &body.root);
    }
    cmn_body_free (&body);
done:
    zframe_destroy (&identity);
    zframe_destroy (&empty);
    zframe_destroy (&header);
    zframe_destroy (&command);
    zframe_destroy (&body_f);
}

//  ---------------------------------------------------------------------
//  Timers

//  Enforces queue timeouts and attempt deadlines, once per heartbeat.
//  A queued job past its queue deadline fails with RXQ_E_TIMEOUT. A leased
//  job past its attempt deadline should be stopped and reported by its
//  worker; if no DONE has come GRACE ms after the deadline the broker sends
//  an ABORT, and if none has come GRACE ms after that the worker is taken
//  to be hung: the job fails with RXQ_E_TIMEOUT, and the worker gets no new
//  leases until it reports again.
static void
s_deadlines (brk_broker_t *self, int64_t grace)
{
    int64_t unix_now = s_unix_ms (), now = s_now ();
    brk_job_t *job = zhashx_first (self->jobs);
    while (job) {
        brk_job_t *next = zhashx_next (self->jobs);
        if (job->state == BRK_QUEUED && job->queue_deadline_ms
        &&  unix_now > job->queue_deadline_ms) {
            if (job->queued_in_lane)
                brk_queue_remove (self->queue, job);
            else
                zlist_remove (self->delayed, job);
            char msg [160];
            snprintf (msg, sizeof msg, "not started within its queue timeout of %" PRId64 " ms",
                      job->queue_deadline_ms - job->created_ms);
            brk_job_set_error (job, RXQ_E_TIMEOUT, msg);
            s_finish (self, job, BRK_FAILED);
        }
        else
        if (job->state == BRK_LEASED && job->timeout_ms && job->started_ms
        &&  unix_now > job->started_ms + (int64_t) job->timeout_ms + grace) {
            s_worker_t *w = s_worker_of (self, job);
            if (w && !job->abort_sent_ms) {
                cmn_packbuf_t b;
                cmn_packbuf_init (&b);
                msgpack_pack_map (&b.pk, 3);
                cmn_pack_kv_str (&b.pk, "id", job->id);
                cmn_pack_kv_uint (&b.pk, "attempt", job->attempt);
                cmn_pack_kv_str (&b.pk, "reason", "deadline");
                s_worker_send (self, w, RXQ_CMD_ABORT, &b, false);
                job->abort_sent_ms = now;
            }
            else
            if (!w || now - job->abort_sent_ms > grace) {
                if (w) {
                    zlist_remove (w->jobs, job);
                    w->quarantined = true;
                    cmn_log_warn ("worker %s (%s) did not stop job %s past its deadline: "
                                  "quarantined until it reports again", w->id, w->name, job->id);
                }
                char msg [200];
                snprintf (msg, sizeof msg, "attempt %" PRIu64 " ran past its deadline of %" PRIu64
                          " ms and its worker did not stop it", job->attempt, job->timeout_ms);
                brk_job_set_error (job, RXQ_E_TIMEOUT, msg);
                s_finish (self, job, BRK_FAILED);
            }
        }
        job = next;
    }
}

static void
s_timers (brk_broker_t *self)
{
    int64_t now = s_now ();
    //  Retry backoff elapsed: back to the queue.
    brk_job_t *job = zlist_first (self->delayed);
    while (job) {
        brk_job_t *next = zlist_next (self->delayed);
        if (job->not_before_ms <= now) {
            zlist_remove (self->delayed, job);
            job->not_before_ms = 0;
            s_queue_job (self, job);
        }
        job = next;
    }
    //  Leases found at start-up that no worker reclaimed in time.
    job = zlist_first (self->orphans);
    while (job) {
        brk_job_t *next = zlist_next (self->orphans);
        if (job->orphan_until_ms <= now) {
            zlist_remove (self->orphans, job);
            job->worker [0] = 0;
            s_requeue (self, job, "lease not reclaimed after a broker restart");
        }
        job = next;
    }
    if (now < self->next_heartbeat_ms)
        return;
    self->next_heartbeat_ms = now + self->cfg.heartbeat_ms;
    int64_t dead_after = (int64_t) self->cfg.heartbeat_ms * self->cfg.liveness;
    s_worker_t *w = zhashx_first (self->workers);
    while (w) {
        s_worker_t *next = zhashx_next (self->workers);
        if (now - w->last_recv_ms > dead_after) {
            char why [64];
            snprintf (why, sizeof why, "silent for %" PRId64 " ms", now - w->last_recv_ms);
            s_worker_dead (self, w, why);
            //  Deleting from the hash invalidates the cursor: start over.
            next = zhashx_first (self->workers);
        }
        else
        if (now - w->last_send_ms >= self->cfg.heartbeat_ms)
            s_worker_send (self, w, RXQ_CMD_HEARTBEAT, NULL, false);
        w = next;
    }
    s_deadlines (self, dead_after);
    //  Clients waiting on jobs hear from us each interval (5.4).
    for (brk_job_t *j = zhashx_first (self->jobs); j; j = zhashx_next (self->jobs))
        if (j->watchers)
            for (brk_watcher_t *wt = zlist_first (j->watchers); wt; wt = zlist_next (j->watchers))
                s_send_now (self, s_msg (wt->identity, RXQ_PROTO_CLIENT, RXQ_CMD_HEARTBEAT, NULL));
    //  Ended jobs older than --keep-ended leave the ended state sets (their
    //  records, streams and keys expire on their own: docs/redis.md,
    //  "Retention"). Bookkeeping, in this turn's pipeline: a failed prune
    //  is done by the next one.
    if (self->redis_ok && self->cfg.keep_ended_s) {
        const int64_t cutoff = zclock_time () - (int64_t) self->cfg.keep_ended_s * 1000;
        for (int s = 0; s < BRK_STATE_COUNT; s++)
            if (brk_state_terminal ((brk_state_t) s))
                brk_store_append (self->store, "ZREMRANGEBYSCORE %sstate:%s -inf (%" PRId64,
                                  self->prefix, brk_state_name ((brk_state_t) s), cutoff);
    }
    //  Writes that failed while Redis was up (an error reply) are retried.
    if (self->redis_ok)
        for (brk_job_t *j = zhashx_first (self->jobs); j; j = zhashx_next (self->jobs))
            if (j->dirty)
                s_rewrite (self, j);
    //  Redis away: try again, and write what piled up once it is back.
    if (!self->redis_ok && now >= self->redis_retry_ms) {
        if (brk_store_reconnect (self->store) == 0) {
            cmn_log_info ("Redis is back at %s; writing pending state", brk_store_url (self->store));
            self->redis_ok = true;
            for (brk_job_t *j = zhashx_first (self->jobs); j; j = zhashx_next (self->jobs))
                if (j->dirty)
                    s_rewrite (self, j);
        }
        else
            self->redis_retry_ms = now + 1000;
    }
}

//  ---------------------------------------------------------------------
//  Start-up: rebuild from Redis

static int
s_recover (brk_broker_t *self, cmn_err_t *err)
{
    redisReply *r = brk_store_command (self->store, "INCR %sepoch", self->prefix);
    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer < 1 || r->integer >= (1ll << 20)) {
        if (r)
            freeReplyObject (r);
        return cmn_err_set (err, RXQ_E_REDIS, "cannot start a new epoch in Redis: %s",
                            brk_store_error (self->store)->msg);
    }
    self->epoch = (uint64_t) r->integer;
    freeReplyObject (r);
    size_t queued = 0, leased = 0, bad = 0;
    int64_t grace = 2 * (int64_t) self->cfg.heartbeat_ms * self->cfg.liveness;
    for (int s = BRK_QUEUED; s <= BRK_LEASED; s++) {
        r = brk_store_command (self->store, "ZRANGE %sstate:%s 0 -1", self->prefix,
                               brk_state_name (s));
        if (!r)
            return cmn_err_set (err, RXQ_E_REDIS, "cannot read jobs from Redis: %s",
                                brk_store_error (self->store)->msg);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *e = r->element [i];
            if (e->type != REDIS_REPLY_STRING || e->len > RXQ_MAX_ID_LEN)
                continue;
            char id [RXQ_MAX_ID_LEN + 1];
            memcpy (id, e->str, e->len);
            id [e->len] = 0;
            cmn_err_t lerr;
            brk_job_t *job = s_load_job (self, id, &lerr);
            if (!job || job->state != (brk_state_t) s || !cmn_kind_find (job->kind, strlen (job->kind))) {
                cmn_log_warn ("skipping job %s found in Redis: %s", id,
                              job ? "state or kind does not match" : lerr.msg);
                brk_job_destroy (&job);
                bad++;
                continue;
            }
            zhashx_insert (self->jobs, job->id, job);
            if (job->key)
                zhashx_insert (self->keys, job->key, job->id);
            if (s == BRK_QUEUED) {
                s_queue_job (self, job);
                queued++;
            }
            else {
                job->orphan_until_ms = s_now () + grace;
                job->worker [0] = 0;
                zlist_append (self->orphans, job);
                leased++;
            }
        }
        freeReplyObject (r);
    }
    cmn_log_info ("recovered from Redis: %zu queued, %zu leased (awaiting reclaim for %" PRId64
                  " ms), %zu skipped; epoch %" PRIu64, queued, leased, grace, bad, self->epoch);
    return 0;
}

//  ---------------------------------------------------------------------
//  Life cycle

static void
s_job_free (void **item)
{
    brk_job_t *job = *item;
    brk_job_destroy (&job);
    *item = NULL;
}

brk_broker_t *
brk_broker_new (const brk_config_t *cfg, cmn_err_t *err)
{
    assert (cfg && cfg->bind && cfg->redis_url && cfg->cluster);
    assert (cfg->heartbeat_ms > 0 && cfg->liveness > 0);
    brk_broker_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    snprintf (self->bind, sizeof self->bind, "%s", cfg->bind);
    self->cfg.bind = self->bind;
    if (strlen (cfg->cluster) == 0 || strlen (cfg->cluster) > 64 || strpbrk (cfg->cluster, " :{}")) {
        cmn_err_set (err, RXQ_E_INVAL, "cluster name '%s' must be 1-64 characters without "
                     "spaces, ':' or braces", cfg->cluster);
        free (self);
        return NULL;
    }
    snprintf (self->prefix, sizeof self->prefix, "rxq:%s:", cfg->cluster);
    self->jobs = zhashx_new ();
    self->keys = zhashx_new ();
    self->workers = zhashx_new ();
    self->queue = brk_queue_new ();
    self->delayed = zlist_new ();
    self->orphans = zlist_new ();
    self->outbox = zlist_new ();
    self->acks = zlist_new ();
    self->leases = zlist_new ();
    self->touched = zlist_new ();
    self->sets = brk_sets_new ();
    if (!self->jobs || !self->keys || !self->workers || !self->queue || !self->delayed
    ||  !self->orphans || !self->outbox || !self->acks || !self->leases || !self->touched
    ||  !self->sets) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        brk_broker_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->jobs, s_job_free);
    zhashx_set_destructor (self->workers, s_worker_free);
    //  The keys map points into job records: no duplicates, no destructor.
    zhashx_set_duplicator (self->keys, NULL);
    zhashx_set_destructor (self->keys, NULL);
    self->store = brk_store_new (cfg->redis_url, err);
    if (!self->store) {
        brk_broker_destroy (&self);
        return NULL;
    }
    self->redis_ok = true;
    if (cfg->data_dir) {
        self->blobs = brk_blobs_new (cfg->data_dir, self->store, self->prefix, err);
        if (!self->blobs) {
            brk_broker_destroy (&self);
            return NULL;
        }
    }
    if (s_recover (self, err)) {
        brk_broker_destroy (&self);
        return NULL;
    }
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->router) {
        cmn_err_set (err, RXQ_E_INTERNAL, "cannot create a ZeroMQ socket");
        brk_broker_destroy (&self);
        return NULL;
    }
    //  Replies are never dropped at the high-water mark for ordinary loads;
    //  a client that stops reading is bounded by this many messages.
    zsock_set_sndhwm (self->router, 1000000);
    zsock_set_rcvhwm (self->router, 1000000);
    zsock_set_linger (self->router, 0);
    if (zsock_bind (self->router, "%s", self->bind) < 0) {
        int e = zmq_errno ();
        cmn_err_set (err, e == EADDRINUSE ? RXQ_E_ADDRINUSE : RXQ_E_INVAL,
                     "cannot bind %s: %s%s", self->bind, zmq_strerror (e),
                     e == EADDRINUSE ? " (another broker running? use --bind to pick another port)"
                                     : "");
        brk_broker_destroy (&self);
        return NULL;
    }
    const char *ep = zsock_endpoint (self->router);
    snprintf (self->endpoint, sizeof self->endpoint, "%s", ep ? ep : self->bind);
    self->poller = zpoller_new (self->router, NULL);
    self->next_heartbeat_ms = s_now () + self->cfg.heartbeat_ms;
    srandom ((unsigned) (s_now () ^ getpid ()));
    cmn_log_info ("broker bound to %s, Redis %s, cluster '%s'", self->endpoint,
                  brk_store_url (self->store), cfg->cluster);
    return self;
}

void
brk_broker_destroy (brk_broker_t **self_p)
{
    assert (self_p);
    brk_broker_t *self = *self_p;
    if (!self)
        return;
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->router);
    if (self->outbox) {
        zmsg_t *m;
        while ((m = zlist_pop (self->outbox)))
            zmsg_destroy (&m);
    }
    if (self->acks) {
        s_pending_ack_t *a;
        while ((a = zlist_pop (self->acks))) {
            zframe_destroy (&a->identity);
            free (a);
        }
    }
    if (self->leases) {
        s_pending_lease_t *l;
        while ((l = zlist_pop (self->leases)))
            free (l);
    }
    zlist_destroy (&self->outbox);
    zlist_destroy (&self->acks);
    zlist_destroy (&self->leases);
    zlist_destroy (&self->touched);
    brk_sets_destroy (&self->sets);
    zlist_destroy (&self->delayed);
    zlist_destroy (&self->orphans);
    zhashx_destroy (&self->workers);
    //  Unlink queued jobs before their records are destroyed.
    if (self->jobs && self->queue)
        for (brk_job_t *j = zhashx_first (self->jobs); j; j = zhashx_next (self->jobs))
            if (j->queued_in_lane)
                brk_queue_remove (self->queue, j);
    zhashx_destroy (&self->keys);
    zhashx_destroy (&self->jobs);
    brk_queue_destroy (&self->queue);
    brk_blobs_destroy (&self->blobs);
    brk_store_destroy (&self->store);
    free (self);
    *self_p = NULL;
}

void
brk_broker_step (brk_broker_t *self, int timeout_ms)
{
    int64_t now = s_now ();
    int64_t wait = self->next_heartbeat_ms - now;
    if (wait > timeout_ms)
        wait = timeout_ms;
    if (zlist_size (self->delayed) || zlist_size (self->orphans))
        wait = wait > 50 ? 50 : wait;
    if (wait < 0)
        wait = 0;
    zpoller_wait (self->poller, (int) wait);
    for (int n = 0; n < BATCH_MAX && (zsock_events (self->router) & ZMQ_POLLIN); n++) {
        zmsg_t *msg = zmsg_recv (self->router);
        if (!msg)
            break;
        s_on_message (self, msg);
        zmsg_destroy (&msg);
    }
    s_timers (self);
    if (self->blobs)
        brk_blobs_tick (self->blobs);
    s_dispatch (self);
    s_flush (self);
}

int
brk_broker_run (brk_broker_t *self)
{
    while (!zsys_interrupted)
        brk_broker_step (self, self->cfg.heartbeat_ms);
    cmn_log_info ("broker stopping: %" PRIu64 " jobs accepted, %" PRIu64 " completed, %" PRIu64
                  " stale results refused", self->stats.submitted, self->stats.completed,
                  self->stats.stale_refused);
    return 0;
}

const char *
brk_broker_endpoint (brk_broker_t *self)
{
    return self->endpoint;
}

const brk_stats_t *
brk_broker_stats (brk_broker_t *self)
{
    return &self->stats;
}
