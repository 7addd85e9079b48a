/*  wrk_agent: the worker side of RXQ/1 (proto/rxq-protocol.md, section 6).
 *  See wrk_agent.h for the threads and their duties.
 *
 *  Ownership of a lease (s_lease_t): the main thread creates it when a JOB
 *  arrives and keeps it in `leases` (arrival order) until its DONE is sent.
 *  While it runs, the device thread reads its immutable fields and body and
 *  writes only through `stop` (atomic, written by the main thread, read by
 *  the runner). The device thread's DONE message over the pipe is the last
 *  time it touches the lease, so the main thread frees it on receipt.
 *
 *  The main thread hands the device thread up to S_HANDED_MAX leases at
 *  once, which it runs in order. A lease waiting there can still be
 *  withdrawn: `phase` goes from S_WAITING to S_STARTED when the device
 *  thread takes it up, or to S_WITHDRAWN when the main thread answers an
 *  ABORT for it before that (compare-and-swap, so exactly one of the two
 *  happens). A withdrawn lease has had its DONE sent; it stays in `leases`
 *  (not counted as held) until the device thread passes it back.
 *
 *  Pipe messages between the threads, all [command][lease pointer][data]:
 *    main -> device  "RUN"       run this lease (no data frame)
 *    device -> main  "PROGRESS"  a packed progress map from wrk_job_progress
 *    device -> main  "DONE"      the packed DONE body, ready for the broker
 *    device -> main  "SKIPPED"   a withdrawn lease, not run (empty data)
 */
#include "wrk_agent.h"
#include "cmn_codec.h"
#include "cmn_kind.h"
#include "cmn_log.h"
#include "cmn_proto.h"
#include "wrk_job.h"
#include "wrk_tune.h"
#include <czmq.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Longest the main loop sleeps, ms: interrupts that land on another thread
//  and wrk_agent_stop () are noticed at this granularity.
#define S_POLL_MAX_MS 100

//  Invalid messages from the broker: at most this many log lines a second,
//  so a broken broker cannot flood the log.
#define S_DROP_LOGS_PER_S 5

//  A handed lease's phase (s_lease_t.phase).
enum { S_WAITING = 0, S_STARTED, S_WITHDRAWN };

//  Messages read from one socket per pass of the main loop.
#define S_DRAIN_MAX 256

//  Leases handed to the device thread at once. It runs them one after the
//  other, in order, so a burst of short jobs costs no round trip between
//  the threads per job (the main thread refills the queue as DONEs come
//  back); a lease waiting there is still stopped through its stop flag,
//  and then reports DONE without having run.
#define S_HANDED_MAX 64

//  Room left in a DONE body for the fields around the runner's result.
#define S_DONE_ENVELOPE 1024

//  The params map a runner sees for a JOB without params (never NULL).
static const msgpack_object s_empty_map = {
    .type = MSGPACK_OBJECT_MAP, .via.map = { 0, NULL }
};

typedef struct {
    char id [RXQ_MAX_ID_LEN + 1];   // job id, NUL-terminated
    uint64_t attempt;               // lease attempt (fencing token)
    char kind [RXQ_MAX_KIND_LEN + 1];   // job kind, NUL-terminated
    wrk_job_fn *fn;                 // the kind's runner
    bool needs_device;              // the kind runs OpenCL kernels
    uint64_t timeout_ms;            // deadline from the start of the run, ms; 0 none
    char *raw;                      // copy of the JOB body; body points into it
    cmn_body_t body;                // decoded JOB body
    const msgpack_object *params;   // params map inside body, or s_empty_map
    atomic_int stop;                // 0, RXQ_E_CANCELLED or RXQ_E_TIMEOUT
    atomic_int phase;               // S_WAITING, S_STARTED or S_WITHDRAWN
    bool running;                   // handed to the device thread (running
                                    // there or waiting in its queue)
    int64_t received_ms;            // monotonic ms the JOB arrived
} s_lease_t;

//  What the device thread shares with the agent; immutable but for beat_ms.
typedef struct {
    wrk_device_t *device;           // the OpenCL device, or NULL
    wrk_blobs_t *blobs;             // the blob cache, or NULL
    wrk_wcache_t *wcache;           // the weight cache, or NULL
    uint32_t progress_ms;           // least ms between two forwarded progresses
    _Atomic int64_t beat_ms;        // monotonic ms of the running job's start or
                                    // last progress; 0 while idle
} s_devctx_t;

struct _wrk_agent_t {
    char *endpoint;                 // broker endpoint
    char *name;                     // worker name sent in READY
    uint32_t capacity;              // leases held at once
    char **tags;                    // operator labels
    size_t tag_count;               // entries in tags
    uint32_t heartbeat_ms;          // heartbeat interval, ms
    uint32_t liveness;              // silent intervals before reconnecting
    const char **kinds;             // kinds advertised (names from cmn_kinds)
    size_t kind_count;              // entries in kinds
    msgpack_sbuffer device_info;    // packed device map; size 0 without a device
    zsock_t *broker;                // DEALER to the broker; replaced on reconnect
    zactor_t *actor;                // the device thread
    zpoller_t *poller;              // broker + actor
    s_devctx_t devctx;              // shared with the device thread
    zlist_t *leases;                // s_lease_t *, held, in order of arrival
    size_t handed;                  // leases handed to the device thread whose
                                    // DONE has not come back (S_HANDED_MAX)
    size_t withdrawn;               // of those, the ones answered already
    bool broker_batches;            // the broker sent JOBS since our READY, so
                                    // it takes DONES (6.6.2)
    cmn_packbuf_t dones;            // DONE bodies waiting to go as one DONES
    uint32_t ndones;                // how many dones holds
    int64_t last_sent_ms;           // monotonic ms of our last message to the broker
    int64_t last_heard_ms;          // monotonic ms of the broker's last message
    atomic_int stop_requested;      // set by wrk_agent_stop
    bool ran;                       // run () has been called
    bool fatal;                     // run () must return 1
    cmn_err_t err;                  // the fatal error
    int64_t drop_window_ms;         // start of the current drop-log second
    unsigned drop_logged;           // drop lines logged in that second
    unsigned drop_suppressed;       // drop lines not logged in that second
};


//  --------------------------------------------------------------------------
//  Small helpers

static void
s_lease_destroy (s_lease_t **lease_p)
{
    s_lease_t *lease = *lease_p;
    if (lease) {
        cmn_body_free (&lease->body);
        free (lease->raw);
        free (lease);
        *lease_p = NULL;
    }
}

//  Errors the same JOB would hit again: the broker should not retry them.
//  UNSUPPORTED is a property of the input or of the kernels (a model's
//  architecture, an ONNX opset, a tensor layout), not a passing failure.
//  True when LEASE counts as held: not withdrawn.
static bool
s_held (s_lease_t *lease)
{
    return atomic_load (&lease->phase) != S_WITHDRAWN;
}

static bool
s_retryable (int code)
{
    int primary = cmn_error_primary (code);
    return primary != RXQ_E_PARAM && primary != RXQ_E_KIND
        && primary != RXQ_E_FORMAT && primary != RXQ_E_PROTO
        && primary != RXQ_E_UNSUPPORTED;
}

static void
s_pack_done_error (msgpack_packer *pk, const char *id, uint64_t attempt, int code,
                   const char *message)
{
    msgpack_pack_map (pk, 5);
    cmn_pack_kv_str (pk, "id", id);
    cmn_pack_kv_uint (pk, "attempt", attempt);
    cmn_pack_kv_bool (pk, "ok", false);
    cmn_pack_key (pk, "error");
    msgpack_pack_map (pk, 2);
    cmn_pack_kv_uint (pk, "code", (uint64_t) code);
    cmn_pack_kv_str (pk, "message", message && *message ? message : cmn_error_message (code));
    cmn_pack_kv_bool (pk, "retry", s_retryable (code));
}

//  Copies a frame's bytes for a log line, with anything unprintable as '?'.
static const char *
s_printable (zframe_t *frame, char *buf, size_t size)
{
    size_t n = zframe_size (frame);
    const unsigned char *data = zframe_data (frame);
    size_t i;
    for (i = 0; i < n && i + 1 < size; i++)
        buf [i] = data [i] >= 0x20 && data [i] < 0x7f ? (char) data [i] : '?';
    buf [i] = 0;
    return buf;
}


//  --------------------------------------------------------------------------
//  Device thread

typedef struct {
    zsock_t *pipe;                  // the actor pipe
    s_lease_t *lease;               // the job's lease
    s_devctx_t *ctx;                // shared state
    const wrk_job_t *job;           // the job (its progress_ms)
    int64_t last_sent_ms;           // last progress forwarded, ms; 0 none yet
} s_sink_t;

static void
s_pipe_send (zsock_t *pipe, const char *command, s_lease_t *lease,
             const void *data, size_t size)
{
    zmsg_t *msg = zmsg_new ();
    assert (msg);
    zmsg_addstr (msg, command);
    zmsg_addmem (msg, &lease, sizeof lease);
    zmsg_addmem (msg, data, size);
    //  The main thread reads the pipe promptly and progress is throttled,
    //  so this does not block for long even at the pipe's HWM.
    if (zmsg_send (&msg, pipe))
        zmsg_destroy (&msg);
}

//  The job's progress sink: beats the liveness clock on every report and
//  forwards at most one report per job->progress_ms to the main thread
//  (the worker's interval, which a runner may lower for its job).
static void
s_sink (void *arg, const char *data, size_t size)
{
    s_sink_t *sink = arg;
    int64_t now = wrk_job_now_ms ();
    atomic_store (&sink->ctx->beat_ms, now);
    if (sink->last_sent_ms && now - sink->last_sent_ms < (int64_t) sink->job->progress_ms)
        return;
    sink->last_sent_ms = now;
    s_pipe_send (sink->pipe, "PROGRESS", sink->lease, data, size);
}

//  Runs LEASE and sends its DONE body over PIPE.
static void
s_device_run (s_devctx_t *ctx, zsock_t *pipe, s_lease_t *lease)
{
    int waiting = S_WAITING;
    if (!atomic_compare_exchange_strong (&lease->phase, &waiting, S_STARTED)) {
        //  Withdrawn: the main thread has answered it already.
        s_pipe_send (pipe, "SKIPPED", lease, "", 0);
        return;
    }
    int64_t start = wrk_job_now_ms ();
    atomic_store (&ctx->beat_ms, start);
    msgpack_sbuffer result;
    msgpack_sbuffer_init (&result);
    msgpack_packer result_pk;
    msgpack_packer_init (&result_pk, &result, msgpack_sbuffer_write);
    wrk_job_t job;
    memset (&job, 0, sizeof job);
    s_sink_t sink = { pipe, lease, ctx, &job, 0 };
    snprintf (job.id, sizeof job.id, "%s", lease->id);
    job.attempt = lease->attempt;
    job.params = lease->params;
    job.device = lease->needs_device ? ctx->device : NULL;
    job.device_name = ctx->device ? wrk_device_info (ctx->device)->name : NULL;
    job.blobs = ctx->blobs;
    job.wcache = ctx->wcache;
    job.stop = &lease->stop;
    job.deadline_ms = lease->timeout_ms ? start + (int64_t) lease->timeout_ms : 0;
    job.result = &result_pk;
    job.sink = s_sink;
    job.sink_arg = &sink;
    job.last_progress_ms = start;
    job.progress_ms = ctx->progress_ms;

    //  A lease aborted while it waited in the pipe is not started at all.
    int rc = wrk_job_should_stop (&job) ? -1 : lease->fn (&job);

    msgpack_sbuffer done;
    msgpack_sbuffer_init (&done);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &done, msgpack_sbuffer_write);
    cmn_codec_limits_t limits = cmn_codec_limits_default;
    limits.max_bytes -= S_DONE_ENVELOPE;
    cmn_err_t check;
    cmn_err_clear (&check);
    if (rc == 0 && cmn_codec_check (result.data, result.size, &limits, &check) == 0
    &&  (((unsigned char) result.data [0] & 0xf0) == 0x80
         || (unsigned char) result.data [0] == 0xde || (unsigned char) result.data [0] == 0xdf)) {
        msgpack_pack_map (&pk, 5 + (ctx->wcache != NULL));
        cmn_pack_kv_str (&pk, "id", lease->id);
        cmn_pack_kv_uint (&pk, "attempt", lease->attempt);
        cmn_pack_kv_bool (&pk, "ok", true);
        cmn_pack_key (&pk, "result");
        msgpack_sbuffer_write (&done, result.data, result.size);
        cmn_pack_kv_bool (&pk, "retry", true);
        if (ctx->wcache) {
            //  What the job left in device memory, before the broker
            //  leases the next job (6.10).
            cmn_pack_key (&pk, "weights");
            wrk_wcache_pack_held (ctx->wcache, &pk);
        }
        cmn_log_debug ("job %s attempt %" PRIu64 " (%s) succeeded in %" PRId64 " ms",
                      lease->id, lease->attempt, lease->kind, wrk_job_now_ms () - start);
    }
    else {
        int code = job.err.code;
        char message [512];
        snprintf (message, sizeof message, "%s", job.err.msg);
        if (rc == 0) {
            //  A runner that claims success must have packed one map.
            code = check.code == RXQ_E_LIMIT ? RXQ_E_LIMIT : RXQ_E_INTERNAL;
            snprintf (message, sizeof message, "runner for '%s' returned no valid result map%s%s",
                      lease->kind, check.code ? ": " : "", check.msg);
        }
        else
        if (code <= 0 || !cmn_error_known (code)) {
            snprintf (message, sizeof message, "runner for '%s' failed with error code %d: %s",
                      lease->kind, code, job.err.msg);
            code = RXQ_E_INTERNAL;
        }
        s_pack_done_error (&pk, lease->id, lease->attempt, code, message);
        cmn_log_info ("job %s attempt %" PRIu64 " (%s) failed after %" PRId64 " ms: %s: %s",
                      lease->id, lease->attempt, lease->kind, wrk_job_now_ms () - start,
                      cmn_error_name (code), message);
    }
    atomic_store (&ctx->beat_ms, 0);
    //  Last touch of the lease on this thread: the main thread frees it.
    s_pipe_send (pipe, "DONE", lease, done.data, done.size);
    msgpack_sbuffer_destroy (&done);
    msgpack_sbuffer_destroy (&result);
}

//  The device thread: runs the leases it is handed one at a time, in
//  order, until $TERM.
static void
s_device_actor (zsock_t *pipe, void *args)
{
    s_devctx_t *ctx = args;
    //  SIGINT/SIGTERM belong to the main thread, whose poll they interrupt.
    sigset_t set;
    sigemptyset (&set);
    sigaddset (&set, SIGINT);
    sigaddset (&set, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &set, NULL);
    zsock_signal (pipe, 0);

    while (true) {
        zmsg_t *msg = zmsg_recv (pipe);
        if (!msg)
            break;              //  context terminated
        char *command = zmsg_popstr (msg);
        bool term = !command || streq (command, "$TERM");
        if (!term) {
            assert (streq (command, "RUN"));
            zframe_t *frame = zmsg_first (msg);
            assert (frame && zframe_size (frame) == sizeof (s_lease_t *));
            s_lease_t *lease;
            memcpy (&lease, zframe_data (frame), sizeof lease);
            s_device_run (ctx, pipe, lease);
        }
        zstr_free (&command);
        zmsg_destroy (&msg);
        if (term)
            break;
    }
}


//  --------------------------------------------------------------------------
//  Talking to the broker

//  Sends one message. Never blocks: while the broker is unreachable and the
//  socket's queue is full the message is dropped, and the reconnect after
//  the silence discards the queue anyway.
static void
s_send (wrk_agent_t *self, int command, const void *body, size_t size)
{
    void *sock = zsock_resolve (self->broker);
    uint8_t cmd = (uint8_t) command;
    self->last_sent_ms = wrk_job_now_ms ();
    //  ZeroMQ queues a multipart message whole or not at all (the HWM is
    //  checked on its first frame), so only the first send can fail.
    if (zmq_send (sock, NULL, 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
        cmn_log_debug ("%s to broker not sent: %s", cmn_proto_command_name (command),
                       zmq_strerror (errno));
        return;
    }
    zmq_send (sock, RXQ_PROTO_WORKER, RXQ_PROTO_HEADER_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (sock, &cmd, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (sock, body, size, ZMQ_DONTWAIT);
}

static void
s_send_packed (wrk_agent_t *self, int command, msgpack_sbuffer *sb)
{
    s_send (self, command, sb->data, sb->size);
}


//  Room in a DONES body for what surrounds its DONE maps.
#define S_DONES_ENVELOPE 16

//  Sends the DONE bodies collected in `dones`: one alone as DONE, more as
//  one DONES (6.6.2).
static void
s_dones_flush (wrk_agent_t *self)
{
    if (self->ndones == 1)
        s_send (self, RXQ_CMD_DONE, self->dones.sb.data, self->dones.sb.size);
    else
    if (self->ndones > 1) {
        cmn_packbuf_t b;
        cmn_pack_batch (&b, "done", self->ndones, self->dones.sb.data, self->dones.sb.size);
        s_send_packed (self, RXQ_CMD_DONES, &b.sb);
        msgpack_sbuffer_destroy (&b.sb);
    }
    self->dones.sb.size = 0;
    self->ndones = 0;
}

//  A DONE body for the broker: sent at once to a broker that has not sent
//  JOBS, else collected for the DONES that s_dones_flush sends when the
//  main loop has read what was queued (or when the batch is full, or the
//  next body would not fit in it).
static void
s_done_out (wrk_agent_t *self, const void *body, size_t size)
{
    if (!self->broker_batches) {
        s_send (self, RXQ_CMD_DONE, body, size);
        return;
    }
    if (self->ndones
    &&  (self->ndones == RXQ_MAX_BATCH
         || self->dones.sb.size + size + S_DONES_ENVELOPE > RXQ_MAX_BODY_BYTES))
        s_dones_flush (self);
    if (size + S_DONES_ENVELOPE > RXQ_MAX_BODY_BYTES) {
        s_send (self, RXQ_CMD_DONE, body, size);
        return;
    }
    msgpack_sbuffer_write (&self->dones.sb, body, size);
    self->ndones++;
}

//  HEARTBEAT (6.2). While a job runs it carries `stalled_ms`, the time
//  since the device thread last showed life (the job's start or its last
//  progress report), so the broker can tell a hung device thread from a
//  busy one (6.6.1).
static void
s_send_heartbeat (wrk_agent_t *self)
{
    int64_t beat = atomic_load (&self->devctx.beat_ms);
    bool weights = self->devctx.wcache && wrk_wcache_count (self->devctx.wcache) > 0;
    if (!beat && !weights) {
        static const uint8_t empty_map = 0x80;
        s_send (self, RXQ_CMD_HEARTBEAT, &empty_map, 1);
        return;
    }
    int64_t stalled = wrk_job_now_ms () - beat;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, (beat != 0) + weights);
    if (beat)
        cmn_pack_kv_uint (&pk, "stalled_ms", (uint64_t) (stalled > 0 ? stalled : 0));
    if (weights) {
        cmn_pack_key (&pk, "weights");
        wrk_wcache_pack_held (self->devctx.wcache, &pk);
    }
    s_send_packed (self, RXQ_CMD_HEARTBEAT, &sb);
    msgpack_sbuffer_destroy (&sb);
}

//  READY (6.1): name, kinds, capacity, and when there are any, the device,
//  the tags and the leases we still hold.
static void
s_send_ready (wrk_agent_t *self)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    size_t held = zlist_size (self->leases) - self->withdrawn;
    msgpack_pack_map (&pk, 4 + (self->device_info.size > 0) + (self->tag_count > 0)
                           + (held > 0) + (self->devctx.wcache != NULL));
    cmn_pack_kv_str (&pk, "name", self->name);
    cmn_pack_key (&pk, "kinds");
    msgpack_pack_array (&pk, self->kind_count);
    for (size_t i = 0; i < self->kind_count; i++)
        cmn_pack_cstr (&pk, self->kinds [i]);
    cmn_pack_kv_uint (&pk, "capacity", self->capacity);
    //  6.3.1: leases in one JOBS, as many as the device thread is handed.
    cmn_pack_kv_uint (&pk, "batch", S_HANDED_MAX);
    if (self->device_info.size) {
        cmn_pack_key (&pk, "device");
        msgpack_sbuffer_write (&sb, self->device_info.data, self->device_info.size);
    }
    if (self->tag_count) {
        cmn_pack_key (&pk, "tags");
        msgpack_pack_array (&pk, self->tag_count);
        for (size_t i = 0; i < self->tag_count; i++)
            cmn_pack_cstr (&pk, self->tags [i]);
    }
    if (held) {
        cmn_pack_key (&pk, "jobs");
        msgpack_pack_array (&pk, held);
        for (s_lease_t *lease = zlist_first (self->leases); lease;
             lease = zlist_next (self->leases)) {
            if (!s_held (lease))
                continue;
            msgpack_pack_map (&pk, 2);
            cmn_pack_kv_str (&pk, "id", lease->id);
            cmn_pack_kv_uint (&pk, "attempt", lease->attempt);
        }
    }
    if (self->devctx.wcache) {
        cmn_pack_key (&pk, "weights");
        wrk_wcache_pack_held (self->devctx.wcache, &pk);
    }
    s_send_packed (self, RXQ_CMD_READY, &sb);
    msgpack_sbuffer_destroy (&sb);
    //  A new registration (6.6.2): DONE, not DONES, until this broker has
    //  sent JOBS again; it may be another broker, or an older one.
    self->broker_batches = false;
    cmn_log_debug ("READY sent to broker %s as '%s' (%zu lease%s held)",
                   self->endpoint, self->name, held, held == 1 ? "" : "s");
}

static void
s_send_done_error (wrk_agent_t *self, const char *id, uint64_t attempt, int code,
                   const char *message)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    s_pack_done_error (&pk, id, attempt, code, message);
    s_send_packed (self, RXQ_CMD_DONE, &sb);
    msgpack_sbuffer_destroy (&sb);
    cmn_log_info ("job %s attempt %" PRIu64 " refused: %s: %s", id, attempt,
                  cmn_error_name (code), message);
}

//  PROGRESS (6.5): {id, attempt} followed by the runner's fields (fraction,
//  message and any kind-specific ones).
static void
s_send_progress (wrk_agent_t *self, s_lease_t *lease, const void *data, size_t size)
{
    cmn_body_t body;
    cmn_err_t err;
    if (cmn_body_decode (&body, data, size, &cmn_codec_limits_default, &err)) {
        cmn_log_warn ("job %s: progress report not sent: %s", lease->id, err.msg);
        return;
    }
    const msgpack_object_map *map = &body.root.via.map;
    uint32_t extra = 0;
    for (uint32_t i = 0; i < map->size; i++)
        if (!cmn_codec_str_eq (&map->ptr [i].key, "id")
        &&  !cmn_codec_str_eq (&map->ptr [i].key, "attempt"))
            extra++;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2 + extra);
    cmn_pack_kv_str (&pk, "id", lease->id);
    cmn_pack_kv_uint (&pk, "attempt", lease->attempt);
    for (uint32_t i = 0; i < map->size; i++)
        if (!cmn_codec_str_eq (&map->ptr [i].key, "id")
        &&  !cmn_codec_str_eq (&map->ptr [i].key, "attempt")) {
            msgpack_pack_object (&pk, map->ptr [i].key);
            msgpack_pack_object (&pk, map->ptr [i].val);
        }
    s_send_packed (self, RXQ_CMD_PROGRESS, &sb);
    msgpack_sbuffer_destroy (&sb);
    cmn_body_free (&body);
}

//  Logs one line for an invalid message from the broker (3.5), at most
//  S_DROP_LOGS_PER_S a second; the rest are counted and reported.
static void
s_drop (wrk_agent_t *self, int command, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Ends the current drop-log second once it is over, reporting how many
//  lines it held back.
static void
s_drop_flush (wrk_agent_t *self, int64_t now)
{
    if (now - self->drop_window_ms < 1000)
        return;
    if (self->drop_suppressed)
        cmn_log_warn ("%u more invalid messages from the broker dropped",
                      self->drop_suppressed);
    self->drop_window_ms = now;
    self->drop_logged = 0;
    self->drop_suppressed = 0;
}

static void
s_drop (wrk_agent_t *self, int command, const char *fmt, ...)
{
    s_drop_flush (self, wrk_job_now_ms ());
    if (self->drop_logged >= S_DROP_LOGS_PER_S) {
        self->drop_suppressed++;
        return;
    }
    self->drop_logged++;
    char reason [512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (reason, sizeof reason, fmt, ap);
    va_end (ap);
    cmn_log_warn ("dropped invalid %s from broker: %s",
                  command < 0 ? "message" : cmn_proto_command_name (command), reason);
}

//  Replaces the DEALER socket with a new one (a new routing identity, an
//  empty queue) and connects it. Returns 0, or -1 with ERR set.
static int
s_connect (wrk_agent_t *self, cmn_err_t *err)
{
    if (self->broker) {
        zpoller_remove (self->poller, self->broker);
        zsock_destroy (&self->broker);
    }
    self->broker = zsock_new (ZMQ_DEALER);
    if (!self->broker)
        return cmn_err_set (err, RXQ_E_INTERNAL, "cannot create a ZeroMQ socket: %s",
                            zmq_strerror (errno));
    zsock_set_linger (self->broker, 0);
    if (zsock_connect (self->broker, "%s", self->endpoint) == -1)
        return cmn_err_set (err, RXQ_E_INVAL, "cannot connect to broker endpoint '%s': %s",
                            self->endpoint, zmq_strerror (errno));
    zpoller_add (self->poller, self->broker);
    return 0;
}


//  --------------------------------------------------------------------------
//  Leases

static s_lease_t *
s_lease_find (wrk_agent_t *self, const char *id, bool any_attempt, uint64_t attempt)
{
    for (s_lease_t *lease = zlist_first (self->leases); lease;
         lease = zlist_next (self->leases))
        if (streq (lease->id, id) && (any_attempt || lease->attempt == attempt))
            return lease;
    return NULL;
}

//  Hands waiting leases to the device thread, oldest first, until it holds
//  S_HANDED_MAX of them.
static void
s_dispatch (wrk_agent_t *self)
{
    for (s_lease_t *lease = zlist_first (self->leases);
         lease && self->handed < S_HANDED_MAX; lease = zlist_next (self->leases))
        if (!lease->running) {
            lease->running = true;
            self->handed++;
            int rc = zsock_send (self->actor, "sp", "RUN", lease);
            assert (rc == 0);
            (void) rc;
            cmn_log_debug ("job %s attempt %" PRIu64 " (%s) handed to the device thread",
                           lease->id, lease->attempt, lease->kind);
        }
}

//  Stops LEASE with CODE (RXQ_E_CANCELLED or RXQ_E_TIMEOUT): a running job
//  is told through its stop flag and reports DONE itself; a waiting one is
//  answered with DONE here and forgotten (withdrawn, if the device thread
//  holds it in its queue). A withdrawn lease was answered already.
static void
s_abort_lease (wrk_agent_t *self, s_lease_t *lease, int code, const char *why)
{
    if (lease->running) {
        int phase = S_WAITING;
        if (atomic_compare_exchange_strong (&lease->phase, &phase, S_WITHDRAWN))
            self->withdrawn++;
        else {
            if (phase == S_STARTED) {
                int expected = 0;
                atomic_compare_exchange_strong (&lease->stop, &expected, code);
                cmn_log_info ("job %s attempt %" PRIu64 ": stopping (%s)", lease->id,
                              lease->attempt, why);
            }
            return;
        }
    }
    char message [300];
    snprintf (message, sizeof message, "aborted before it started: %s", why);
    s_send_done_error (self, lease->id, lease->attempt, code, message);
    if (!lease->running) {
        zlist_remove (self->leases, lease);
        s_lease_destroy (&lease);
    }
}



//  --------------------------------------------------------------------------
//  Commands from the broker

//  JOB (6.3). Without a readable id and attempt there is nobody to answer,
//  so the message is dropped; after that, every JOB gets exactly one DONE,
//  an error one if the lease cannot be run.
static void
s_on_job (wrk_agent_t *self, const void *data, size_t size)
{
    s_lease_t *lease = calloc (1, sizeof *lease);
    if (!lease || !(lease->raw = malloc (size ? size : 1))) {
        free (lease);
        s_drop (self, RXQ_CMD_JOB, "out of memory");
        return;
    }
    memcpy (lease->raw, data, size);
    cmn_err_t err;
    cmn_err_clear (&err);
    //  msgpack_unpack leaves strings pointing into raw, which the lease keeps.
    if (cmn_body_decode (&lease->body, lease->raw, size, &cmn_codec_limits_default, &err)) {
        //  A failed decode leaves nothing to free, but may leave the zone's
        //  pointers behind: forget them before s_lease_destroy frees the body.
        memset (&lease->body, 0, sizeof lease->body);
        s_drop (self, RXQ_CMD_JOB, "%s", err.msg);
        s_lease_destroy (&lease);
        return;
    }
    const msgpack_object *map = &lease->body.root;
    int rc = cmn_codec_get_cstr (map, "id", lease->id, sizeof lease->id, &err);
    if (rc || !*lease->id) {
        s_drop (self, RXQ_CMD_JOB, "%s", rc == 1 ? "field 'id' is missing"
                                        : rc == 0 ? "field 'id' is empty" : err.msg);
        s_lease_destroy (&lease);
        return;
    }
    rc = cmn_codec_get_uint (map, "attempt", &lease->attempt, &err);
    if (rc) {
        s_drop (self, RXQ_CMD_JOB, "job %s: %s", lease->id,
                rc == 1 ? "field 'attempt' is missing" : err.msg);
        s_lease_destroy (&lease);
        return;
    }
    if (s_lease_find (self, lease->id, false, lease->attempt)) {
        //  A second DONE for this lease would be taken as its result.
        s_drop (self, RXQ_CMD_JOB, "job %s attempt %" PRIu64 " is already held",
                lease->id, lease->attempt);
        s_lease_destroy (&lease);
        return;
    }
    //  The broker re-leased a job we still hold: our attempt is stale.
    s_lease_t *older = s_lease_find (self, lease->id, true, 0);
    if (older) {
        char why [64];
        snprintf (why, sizeof why, "superseded by attempt %" PRIu64, lease->attempt);
        s_abort_lease (self, older, RXQ_E_CANCELLED, why);
    }

    int code = 0;
    char message [512] = "";
    const char *kind;
    size_t kind_len;
    const cmn_kind_t *spec = NULL;
    const msgpack_object *params = NULL;
    rc = cmn_codec_get_str (map, "kind", &kind, &kind_len, &err);
    if (rc) {
        code = RXQ_E_PROTO;
        snprintf (message, sizeof message, "invalid JOB: %s",
                  rc == 1 ? "field 'kind' is missing" : err.msg);
    }
    else
    if (!(spec = cmn_kind_find (kind, kind_len))) {
        code = RXQ_E_KIND;
        snprintf (message, sizeof message, "unknown job kind '%.*s'",
                  (int) (kind_len > RXQ_MAX_KIND_LEN ? RXQ_MAX_KIND_LEN : kind_len), kind);
    }
    else {
        snprintf (lease->kind, sizeof lease->kind, "%s", spec->name);
        lease->fn = wrk_jobs_find (spec->name);
        lease->needs_device = spec->needs_device;
        if (!lease->fn) {
            code = RXQ_E_KIND;
            snprintf (message, sizeof message, "this worker has no runner for kind '%s'",
                      spec->name);
        }
        else
        if (spec->needs_device && !self->devctx.device) {
            code = RXQ_E_KIND;
            snprintf (message, sizeof message,
                      "kind '%s' needs an OpenCL device and this worker runs without one",
                      spec->name);
        }
        else
        if ((rc = cmn_codec_get_map (map, "params", &params, &err)) < 0) {
            code = RXQ_E_PARAM;
            snprintf (message, sizeof message, "%s", err.msg);
        }
        else {
            lease->params = rc == 1 ? &s_empty_map : params;
            if (cmn_kind_validate (spec, lease->params, &err)) {
                code = err.code ? err.code : RXQ_E_PARAM;
                snprintf (message, sizeof message, "%s", err.msg);
            }
            else
            if (cmn_codec_get_uint (map, "timeout_ms", &lease->timeout_ms, &err) < 0) {
                code = RXQ_E_PROTO;
                snprintf (message, sizeof message, "invalid JOB: %s", err.msg);
            }
            else
            if (zlist_size (self->leases) - self->withdrawn >= self->capacity) {
                //  The broker broke 6.3; it may lease the job elsewhere.
                code = RXQ_E_UNAVAILABLE;
                snprintf (message, sizeof message,
                          "worker already holds %zu leases (capacity %" PRIu32 ")",
                          zlist_size (self->leases) - self->withdrawn, self->capacity);
            }
        }
    }
    if (code) {
        s_send_done_error (self, lease->id, lease->attempt, code, message);
        s_lease_destroy (&lease);
        return;
    }
    lease->received_ms = wrk_job_now_ms ();
    atomic_init (&lease->stop, 0);
    atomic_init (&lease->phase, S_WAITING);
    zlist_append (self->leases, lease);
    cmn_log_debug ("job %s attempt %" PRIu64 " (%s) leased; %zu held", lease->id,
                  lease->attempt, lease->kind, zlist_size (self->leases));
    s_dispatch (self);
}

//  True when an ABORT reason means the deadline, not a cancel.
//  JOBS (6.3.1): each element is taken as a JOB, in order; from now on
//  this broker takes DONES (6.6.2).
static void
s_on_jobs (wrk_agent_t *self, zframe_t *frame)
{
    cmn_body_t body;
    cmn_err_t err;
    const msgpack_object *jobs = NULL;
    if (cmn_body_decode (&body, zframe_data (frame), zframe_size (frame),
                         &cmn_codec_limits_default, &err)) {
        s_drop (self, RXQ_CMD_JOBS, "%s", err.msg);
        return;
    }
    if (cmn_codec_get_array (&body.root, "jobs", &jobs, &err) != 0
    ||  jobs->via.array.size == 0 || jobs->via.array.size > RXQ_MAX_BATCH)
        s_drop (self, RXQ_CMD_JOBS, "%s", err.code ? err.msg
                : "'jobs' must be an array of 1 to 256 JOB maps");
    else {
        self->broker_batches = true;
        cmn_packbuf_t b;
        cmn_packbuf_init (&b);
        for (uint32_t i = 0; i < jobs->via.array.size; i++) {
            //  Each JOB as its own body, as a lease keeps it.
            b.sb.size = 0;
            msgpack_pack_object (&b.pk, jobs->via.array.ptr [i]);
            s_on_job (self, b.sb.data, b.sb.size);
        }
        msgpack_sbuffer_destroy (&b.sb);
    }
    cmn_body_free (&body);
}

static bool
s_reason_is_deadline (const char *reason)
{
    return strcasestr (reason, "deadline") || strcasestr (reason, "timeout")
        || strcasestr (reason, "timed out");
}

//  ABORT (6.7): {id, attempt, reason}.
static void
s_on_abort (wrk_agent_t *self, const msgpack_object *map)
{
    char id [RXQ_MAX_ID_LEN + 1];
    uint64_t attempt;
    char reason [256] = "";
    cmn_err_t err;
    int rc = cmn_codec_get_cstr (map, "id", id, sizeof id, &err);
    if (rc) {
        s_drop (self, RXQ_CMD_ABORT, "%s", rc == 1 ? "field 'id' is missing" : err.msg);
        return;
    }
    rc = cmn_codec_get_uint (map, "attempt", &attempt, &err);
    if (rc) {
        s_drop (self, RXQ_CMD_ABORT, "%s", rc == 1 ? "field 'attempt' is missing" : err.msg);
        return;
    }
    const char *text;
    size_t len;
    rc = cmn_codec_get_str (map, "reason", &text, &len, &err);
    if (rc < 0) {
        s_drop (self, RXQ_CMD_ABORT, "%s", err.msg);
        return;
    }
    if (rc == 0)
        snprintf (reason, sizeof reason, "%.*s", (int) (len < 255 ? len : 255), text);
    s_lease_t *lease = s_lease_find (self, id, false, attempt);
    if (!lease) {
        cmn_log_info ("ABORT for job %s attempt %" PRIu64 ", which this worker does not hold:"
                      " ignored", id, attempt);
        return;
    }
    s_abort_lease (self, lease, s_reason_is_deadline (reason) ? RXQ_E_TIMEOUT
                                                              : RXQ_E_CANCELLED,
                   *reason ? reason : "aborted by the broker");
}

//  True when a DISCONNECT reason says the broker refuses our protocol
//  version (4): it names the versions, so it mentions "version" or a
//  worker header other than ours.
static bool
s_reason_is_version (const char *reason)
{
    if (strcasestr (reason, "version"))
        return true;
    for (const char *p = strstr (reason, RXQ_PROTO_WORKER_PREFIX); p;
         p = strstr (p + 1, RXQ_PROTO_WORKER_PREFIX))
        if (strlen (p) >= RXQ_PROTO_HEADER_LEN
        &&  p [4] >= '0' && p [4] <= '9' && p [5] >= '0' && p [5] <= '9'
        &&  memcmp (p, RXQ_PROTO_WORKER, RXQ_PROTO_HEADER_LEN) != 0)
            return true;
    return false;
}

static void
s_refused (wrk_agent_t *self, const char *reason)
{
    cmn_err_set (&self->err, RXQ_E_VERSION,
                 "broker %s refused this worker's protocol %s: %s", self->endpoint,
                 RXQ_PROTO_WORKER, reason);
    cmn_log_error ("%s", self->err.msg);
    self->fatal = true;
}

//  DISCONNECT (6.8): {reason}. A refused version ends the worker (4);
//  anything else means we are not registered, so we register again.
static void
s_on_disconnect (wrk_agent_t *self, const msgpack_object *map)
{
    const char *text;
    size_t len;
    cmn_err_t err;
    int rc = cmn_codec_get_str (map, "reason", &text, &len, &err);
    if (rc) {
        s_drop (self, RXQ_CMD_DISCONNECT, "%s", rc == 1 ? "field 'reason' is missing" : err.msg);
        return;
    }
    char reason [256];
    snprintf (reason, sizeof reason, "%.*s", (int) (len < 255 ? len : 255), text);
    //  The code says what to do (6.8); a broker that sends none is judged
    //  by its words.
    uint64_t code = 0;
    cmn_codec_get_uint (map, "code", &code, &err);
    if (code == RXQ_E_VERSION || (code == 0 && s_reason_is_version (reason))) {
        s_refused (self, reason);
        return;
    }
    cmn_log_warn ("broker disconnected this worker (%s); registering again", reason);
    s_send_ready (self);
}

//  TUNING (6.9): {device_key, entry, ...}, the tuning entry stored for this
//  worker's device. It is installed as the device's override, so every
//  program built from now on uses it; one for another device (the broker
//  matched a key we do not have) or an invalid one is dropped, and the
//  shipped row stays.
static void
s_on_tuning (wrk_agent_t *self, const msgpack_object *map)
{
    char key [512], mine [512];
    const msgpack_object *entry = NULL;
    cmn_err_t err;
    int rc = cmn_codec_get_cstr (map, "device_key", key, sizeof key, &err);
    if (rc) {
        s_drop (self, RXQ_CMD_TUNING, "%s", rc == 1 ? "field 'device_key' is missing" : err.msg);
        return;
    }
    rc = cmn_codec_get_map (map, "entry", &entry, &err);
    if (rc) {
        s_drop (self, RXQ_CMD_TUNING, "%s", rc == 1 ? "field 'entry' is missing" : err.msg);
        return;
    }
    if (!self->devctx.device) {
        s_drop (self, RXQ_CMD_TUNING, "this worker has no device");
        return;
    }
    wrk_tune_device_key (wrk_device_info (self->devctx.device), mine, sizeof mine);
    if (strcmp (key, mine) != 0) {
        s_drop (self, RXQ_CMD_TUNING, "entry is for device '%s', this worker's is '%s'", key, mine);
        return;
    }
    if (wrk_tune_set_override (self->devctx.device, entry, &err)) {
        s_drop (self, RXQ_CMD_TUNING, "%s", err.msg);
        return;
    }
    char job [RXQ_MAX_ID_LEN + 1] = "?";
    cmn_codec_get_cstr (map, "job", job, sizeof job, NULL);
    cmn_log_info ("installed the stored tuning entry for '%s' (from job %s)", key, job);
}

//  Reads one message from the broker, checks its frames (3.1, 3.4) and
//  dispatches it. Invalid messages are dropped and logged (3.5).
static void
s_on_broker (wrk_agent_t *self)
{
    zmsg_t *msg = zmsg_recv (self->broker);
    if (!msg)
        return;
    //  Every message counts as a heartbeat (6.2).
    self->last_heard_ms = wrk_job_now_ms ();
    char shown [16];
    size_t frames = zmsg_size (msg);
    zframe_t *delimiter = zmsg_first (msg);
    zframe_t *header = zmsg_next (msg);
    zframe_t *command = zmsg_next (msg);
    zframe_t *body_frame = zmsg_next (msg);
    int cmd = command && zframe_size (command) == 1 ? zframe_data (command) [0] : -1;
    //  None of the commands a broker sends a worker carries bulk frames.
    if (frames != 4)
        s_drop (self, cmd, "%zu frames, expected 4", frames);
    else
    if (zframe_size (delimiter) != 0)
        s_drop (self, cmd, "first frame is not the empty delimiter");
    else
    if (zframe_size (header) != RXQ_PROTO_HEADER_LEN
    ||  memcmp (zframe_data (header), RXQ_PROTO_WORKER_PREFIX, 4) != 0)
        s_drop (self, cmd, "protocol header '%s' is not a worker header",
                s_printable (header, shown, sizeof shown));
    else
    if (cmd < 0)
        s_drop (self, cmd, "command frame of %zu bytes, expected 1", zframe_size (command));
    else
    if (zframe_size (body_frame) == 0 || zframe_size (body_frame) > RXQ_MAX_BODY_BYTES)
        s_drop (self, cmd, "body of %zu bytes (1 to %u allowed)", zframe_size (body_frame),
                RXQ_MAX_BODY_BYTES);
    else
    if (memcmp (zframe_data (header), RXQ_PROTO_WORKER, RXQ_PROTO_HEADER_LEN) != 0) {
        //  Another version: a DISCONNECT is the broker refusing us (4).
        if (cmd == RXQ_CMD_DISCONNECT) {
            char reason [64];
            snprintf (reason, sizeof reason, "it speaks %s",
                      s_printable (header, shown, sizeof shown));
            s_refused (self, reason);
        }
        else
            s_drop (self, cmd, "protocol header '%s', this worker speaks %s",
                    s_printable (header, shown, sizeof shown), RXQ_PROTO_WORKER);
    }
    else
    if (cmd == RXQ_CMD_JOB)
        s_on_job (self, zframe_data (body_frame), zframe_size (body_frame));
    else
    if (cmd == RXQ_CMD_JOBS)
        s_on_jobs (self, body_frame);
    else
    if (cmd == RXQ_CMD_ABORT || cmd == RXQ_CMD_DISCONNECT || cmd == RXQ_CMD_HEARTBEAT
    ||  cmd == RXQ_CMD_TUNING) {
        cmn_body_t body;
        cmn_err_t err;
        if (cmn_body_decode (&body, zframe_data (body_frame), zframe_size (body_frame),
                             &cmn_codec_limits_default, &err))
            s_drop (self, cmd, "%s", err.msg);
        else {
            if (cmd == RXQ_CMD_ABORT)
                s_on_abort (self, &body.root);
            else
            if (cmd == RXQ_CMD_DISCONNECT)
                s_on_disconnect (self, &body.root);
            else
            if (cmd == RXQ_CMD_TUNING)
                s_on_tuning (self, &body.root);
            cmn_body_free (&body);
        }
    }
    else
        s_drop (self, cmd, "command 0x%02x is not one a broker sends a worker", cmd);
    zmsg_destroy (&msg);
}

//  Reads one message from the device thread: a progress report to forward,
//  or a DONE that ends a lease it was handed (then more are handed over).
//  FORWARD false discards them instead (shutting down).
static void
s_on_device (wrk_agent_t *self, bool forward)
{
    zmsg_t *msg = zmsg_recv (self->actor);
    if (!msg)
        return;
    char *command = zmsg_popstr (msg);
    zframe_t *pointer = zmsg_first (msg);
    zframe_t *data = zmsg_next (msg);
    assert (command && pointer && data && zframe_size (pointer) == sizeof (s_lease_t *));
    s_lease_t *lease;
    memcpy (&lease, zframe_data (pointer), sizeof lease);
    assert (lease->running && self->handed > 0);
    if (streq (command, "SKIPPED")) {
        assert (!s_held (lease) && self->withdrawn > 0);
        zlist_remove (self->leases, lease);
        s_lease_destroy (&lease);
        self->handed--;
        self->withdrawn--;
        if (forward)
            s_dispatch (self);
    }
    else
    if (streq (command, "PROGRESS")) {
        if (forward)
            s_send_progress (self, lease, zframe_data (data), zframe_size (data));
    }
    else {
        assert (streq (command, "DONE"));
        if (forward)
            s_done_out (self, zframe_data (data), zframe_size (data));
        zlist_remove (self->leases, lease);
        s_lease_destroy (&lease);
        self->handed--;
        if (forward)
            s_dispatch (self);
    }
    zstr_free (&command);
    zmsg_destroy (&msg);
}


//  --------------------------------------------------------------------------
//  Public API

wrk_agent_t *
wrk_agent_new (const wrk_agent_config_t *cfg, wrk_device_t *device, cmn_err_t *err)
{
    assert (cfg);
    if (!cfg->endpoint || !*cfg->endpoint) {
        cmn_err_set (err, RXQ_E_INVAL, "no broker endpoint given");
        return NULL;
    }
    if (cfg->capacity > WRK_AGENT_CAPACITY_MAX) {
        cmn_err_set (err, RXQ_E_INVAL, "capacity %" PRIu32 " is over the limit of %d",
                     cfg->capacity, WRK_AGENT_CAPACITY_MAX);
        return NULL;
    }
    if (cfg->heartbeat_ms && (cfg->heartbeat_ms < 10 || cfg->heartbeat_ms > 3600000)) {
        cmn_err_set (err, RXQ_E_INVAL, "heartbeat interval %" PRIu32
                     " ms is outside 10 to 3600000", cfg->heartbeat_ms);
        return NULL;
    }
    if (cfg->liveness > 100) {
        cmn_err_set (err, RXQ_E_INVAL, "liveness %" PRIu32 " is outside 1 to 100",
                     cfg->liveness);
        return NULL;
    }
    if (cfg->name && (!*cfg->name || strlen (cfg->name) > WRK_AGENT_NAME_MAX)) {
        cmn_err_set (err, RXQ_E_INVAL, "worker name must be 1 to %d bytes",
                     WRK_AGENT_NAME_MAX);
        return NULL;
    }
    for (size_t i = 0; i < cfg->tag_count; i++)
        if (!cfg->tags [i] || !*cfg->tags [i] || strlen (cfg->tags [i]) > WRK_AGENT_NAME_MAX) {
            cmn_err_set (err, RXQ_E_INVAL, "tag %zu must be 1 to %d bytes", i + 1,
                         WRK_AGENT_NAME_MAX);
            return NULL;
        }

    wrk_agent_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory creating the worker");
        return NULL;
    }
    msgpack_sbuffer_init (&self->device_info);
    self->capacity = cfg->capacity ? cfg->capacity : 1;
    self->heartbeat_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : RXQ_HEARTBEAT_MS_DEFAULT;
    self->liveness = cfg->liveness ? cfg->liveness : RXQ_LIVENESS_DEFAULT;
    self->devctx.device = device;
    self->devctx.blobs = cfg->blobs;
    self->devctx.wcache = cfg->wcache;
    self->devctx.progress_ms = cfg->progress_ms ? cfg->progress_ms
                                                : WRK_AGENT_PROGRESS_MS_DEFAULT;
    atomic_init (&self->devctx.beat_ms, 0);
    cmn_packbuf_init (&self->dones);
    atomic_init (&self->stop_requested, 0);
    self->endpoint = strdup (cfg->endpoint);
    if (cfg->name)
        self->name = strdup (cfg->name);
    else {
        char host [256] = "localhost";
        if (gethostname (host, sizeof host - 1) != 0)
            snprintf (host, sizeof host, "localhost");
        host [sizeof host - 1] = 0;
        self->name = zsys_sprintf ("%s/%d", host, (int) getpid ());
    }
    self->tags = cfg->tag_count ? calloc (cfg->tag_count, sizeof (char *)) : NULL;
    self->tag_count = cfg->tag_count;
    bool nomem = !self->endpoint || !self->name || (cfg->tag_count && !self->tags);
    for (size_t i = 0; !nomem && i < cfg->tag_count; i++)
        nomem = !(self->tags [i] = strdup (cfg->tags [i]));

    //  Advertise every kind with a runner that this worker can run now.
    size_t known = 0;
    while (cmn_kinds [known].name)
        known++;
    self->kinds = nomem ? NULL : calloc (known + 1, sizeof (char *));
    nomem = nomem || !self->kinds;
    for (size_t i = 0; !nomem && i < known; i++)
        if (wrk_jobs_find (cmn_kinds [i].name) && (!cmn_kinds [i].needs_device || device))
            self->kinds [self->kind_count++] = cmn_kinds [i].name;
    self->leases = nomem ? NULL : zlist_new ();
    if (nomem || !self->leases) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory creating the worker");
        wrk_agent_destroy (&self);
        return NULL;
    }
    //  Packed once: READY must not touch the device while a job uses it.
    if (device) {
        msgpack_packer pk;
        msgpack_packer_init (&pk, &self->device_info, msgpack_sbuffer_write);
        wrk_device_pack_info (device, &pk);
    }
    self->actor = zactor_new (s_device_actor, &self->devctx);
    if (!self->actor) {
        cmn_err_set (err, RXQ_E_INTERNAL, "cannot start the device thread");
        wrk_agent_destroy (&self);
        return NULL;
    }
    self->poller = zpoller_new (self->actor, NULL);
    if (!self->poller) {
        cmn_err_set (err, RXQ_E_INTERNAL, "cannot create a ZeroMQ poller");
        wrk_agent_destroy (&self);
        return NULL;
    }
    //  We watch zsys_interrupted ourselves, and must keep polling the device
    //  thread after an interrupt while its job winds down.
    zpoller_set_nonstop (self->poller, true);
    if (s_connect (self, err)) {
        wrk_agent_destroy (&self);
        return NULL;
    }
    return self;
}

void
wrk_agent_destroy (wrk_agent_t **self_p)
{
    assert (self_p);
    wrk_agent_t *self = *self_p;
    if (!self)
        return;
    //  The device thread is idle: run () waits for the leases it handed
    //  there before it returns, and without run () no lease ever arrived.
    assert (!self->handed);
    zactor_destroy (&self->actor);
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->broker);
    if (self->leases) {
        s_lease_t *lease;
        while ((lease = zlist_pop (self->leases)))
            s_lease_destroy (&lease);
        zlist_destroy (&self->leases);
    }
    for (size_t i = 0; self->tags && i < self->tag_count; i++)
        free (self->tags [i]);
    free (self->tags);
    free (self->kinds);
    msgpack_sbuffer_destroy (&self->device_info);
    msgpack_sbuffer_destroy (&self->dones.sb);
    free (self->name);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

//  Leaves: tells the broker (unless it refused us), stops every job, waits
//  for the device thread to come back from a running one, frees the leases.
static void
s_shutdown (wrk_agent_t *self)
{
    if (!self->fatal) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 1);
        cmn_pack_kv_str (&pk, "reason", "worker shutting down");
        s_send_packed (self, RXQ_CMD_DISCONNECT, &sb);
        msgpack_sbuffer_destroy (&sb);
        //  Give the DISCONNECT a moment to leave when the socket closes.
        zsock_set_linger (self->broker, 1000);
    }
    s_lease_t *lease = zlist_first (self->leases);
    while (lease) {
        s_lease_t *next = zlist_next (self->leases);
        if (lease->running) {
            int expected = 0;
            atomic_compare_exchange_strong (&lease->stop, &expected, RXQ_E_CANCELLED);
        }
        else {
            zlist_remove (self->leases, lease);
            s_lease_destroy (&lease);
        }
        lease = next;
    }
    int64_t since = wrk_job_now_ms ();
    int64_t next_log = since;
    while (self->handed) {
        if (wrk_job_now_ms () >= next_log) {
            lease = zlist_first (self->leases);
            cmn_log_info ("waiting for job %s to stop", lease ? lease->id : "?");
            next_log += 5000;
        }
        void *which = zpoller_wait (self->poller, 1000);
        if (which == self->actor)
            s_on_device (self, false);
        else
        if (which == self->broker) {
            zmsg_t *msg = zmsg_recv (self->broker);
            zmsg_destroy (&msg);
        }
    }
}

int
wrk_agent_run (wrk_agent_t *self)
{
    assert (self);
    assert (!self->ran);
    self->ran = true;
    int64_t silence = (int64_t) self->heartbeat_ms * self->liveness;
    self->last_heard_ms = wrk_job_now_ms ();
    cmn_log_info ("worker '%s' connecting to broker %s (kinds: %zu, capacity %" PRIu32 ")",
                  self->name, self->endpoint, self->kind_count, self->capacity);
    s_send_ready (self);

    //  Each pass: wait for a message or the next timer, handle it, then
    //  reconnect after broker silence (6.2) and heartbeat after our own.
    while (!self->fatal && !zsys_interrupted && !atomic_load (&self->stop_requested)) {
        int64_t now = wrk_job_now_ms ();
        int64_t next = self->last_sent_ms + self->heartbeat_ms;
        if (next > self->last_heard_ms + silence)
            next = self->last_heard_ms + silence;
        int64_t wait = next - now;
        wait = wait < 0 ? 0 : wait > S_POLL_MAX_MS ? S_POLL_MAX_MS : wait;
        void *which = zpoller_wait (self->poller, (int) wait);
        //  What is already queued is read without polling again, up to
        //  S_DRAIN_MAX messages, so the timers below still run in a burst.
        if (which == self->broker) {
            int n = 0;
            do
                s_on_broker (self);
            while (!self->fatal && ++n < S_DRAIN_MAX
                   && (zsock_events (self->broker) & ZMQ_POLLIN));
        }
        else
        if (which == self->actor) {
            int n = 0;
            do
                s_on_device (self, true);
            while (++n < S_DRAIN_MAX && (zsock_events (self->actor) & ZMQ_POLLIN));
            s_dones_flush (self);
        }
        else
        if (zpoller_terminated (self->poller) && errno == ETERM) {
            cmn_err_set (&self->err, RXQ_E_INTERNAL, "ZeroMQ context terminated");
            self->fatal = true;
        }
        if (self->fatal)
            break;
        now = wrk_job_now_ms ();
        if (now - self->last_heard_ms >= silence) {
            //  Logged every silence period while the broker is unreachable.
            cmn_log_warn ("no message from broker %s for %" PRId64 " ms; reconnecting and"
                          " registering again",
                          self->endpoint, now - self->last_heard_ms);
            cmn_err_t err;
            if (s_connect (self, &err)) {
                self->err = err;
                self->fatal = true;
                break;
            }
            self->last_heard_ms = now;
            s_send_ready (self);
        }
        if (now - self->last_sent_ms >= self->heartbeat_ms)
            s_send_heartbeat (self);
        s_drop_flush (self, now);
    }
    if (!self->fatal)
        cmn_log_info ("worker '%s' stopping", self->name);
    s_shutdown (self);
    return self->fatal ? 1 : 0;
}

void
wrk_agent_stop (wrk_agent_t *self)
{
    assert (self);
    atomic_store (&self->stop_requested, 1);
}

const cmn_err_t *
wrk_agent_error (wrk_agent_t *self)
{
    assert (self);
    return &self->err;
}

int64_t
wrk_agent_device_beat_ms (wrk_agent_t *self)
{
    assert (self);
    return atomic_load (&self->devctx.beat_ms);
}
