/*  rxq_client: see rxq_client.h. */
#include "rxq_client.h"
#include "cmn_log.h"
#include "cmn_proto.h"
#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct _rxq_client_t {
    zsock_t *sock;              // DEALER connected to the broker
    char *endpoint;             // broker endpoint, as given
    uint64_t next_req;          // next request id to hand out
    int interval_ms;            // broker heartbeat interval, ms
    int liveness;               // intervals of silence before a WATCH re-send
    int stream_timeout_ms;      // silence before an answered stream gives up, -1 none
    bool broker_error;          // the last failure was an ERROR reply
};

//  State of one request while it waits for its replies.
typedef struct {
    int command;                // the request's command
    const msgpack_object *fields;   // caller's fields, NULL for none
    uint64_t req;               // req of the request (or re-sent WATCH) in flight
    bool stream;                // WATCH, or SUBMIT with wait: re-sent on silence
    char job_id [RXQ_MAX_ID_LEN + 1];   // job being streamed, "" until known
    char last_eid [RXQ_MAX_ID_LEN + 1]; // id of the last event passed on, "" none
} s_request_t;

rxq_client_t *
rxq_client_new (const char *endpoint, cmn_err_t *err)
{
    assert (endpoint);
    rxq_client_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    self->interval_ms = RXQ_HEARTBEAT_MS_DEFAULT;
    self->liveness = RXQ_LIVENESS_DEFAULT;
    self->stream_timeout_ms = -1;
    self->next_req = 1;
    self->endpoint = strdup (endpoint);
    self->sock = zsock_new (ZMQ_DEALER);
    if (!self->endpoint || !self->sock) {
        cmn_err_set (err, RXQ_E_NOMEM, "cannot create a ZeroMQ socket: %s", zmq_strerror (zmq_errno ()));
        rxq_client_destroy (&self);
        return NULL;
    }
    //  Unsent requests must not hold the process open at exit.
    zsock_set_linger (self->sock, 0);
    if (zsock_connect (self->sock, "%s", endpoint) != 0) {
        cmn_err_set (err, RXQ_E_INVAL, "invalid broker endpoint '%s' (%s); expected tcp://HOST:PORT",
                     endpoint, zmq_strerror (zmq_errno ()));
        rxq_client_destroy (&self);
        return NULL;
    }
    return self;
}

void
rxq_client_destroy (rxq_client_t **self_p)
{
    assert (self_p);
    rxq_client_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->sock);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

const char *
rxq_client_endpoint (rxq_client_t *self)
{
    assert (self);
    return self->endpoint;
}

void
rxq_client_set_heartbeat (rxq_client_t *self, int interval_ms, int liveness)
{
    assert (self && interval_ms > 0 && liveness > 0);
    self->interval_ms = interval_ms;
    self->liveness = liveness;
}

void
rxq_client_set_stream_timeout (rxq_client_t *self, int timeout_ms)
{
    assert (self);
    self->stream_timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
}

bool
rxq_client_error_from_broker (rxq_client_t *self)
{
    assert (self);
    return self->broker_error;
}

//  Decodes BUF into BODY without tying BODY to BUF's lifetime: msgpack-c
//  points decoded strings into the buffer it unpacked, so the body gets its
//  own copy, freed by the zone's finalizer with the body.
static int
s_decode_owned (cmn_body_t *body, const void *buf, size_t len, cmn_err_t *err)
{
    void *copy = malloc (len ? len : 1);
    if (!copy)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    if (len)
        memcpy (copy, buf, len);
    if (cmn_body_decode (body, copy, len, &cmn_codec_limits_default, err)) {
        free (copy);
        return -1;
    }
    if (!msgpack_zone_push_finalizer (&body->zone, free, copy)) {
        free (copy);
        cmn_body_free (body);
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    }
    return 0;
}

//  Sends [empty][RXQC01][command][body] where body is {req, FIELDS...};
//  for a re-sent WATCH, FIELDS is replaced by {id, since}.
static int
s_send (rxq_client_t *self, s_request_t *r, bool resend, cmn_err_t *err)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    int command = r->command;
    if (resend) {
        command = RXQ_CMD_WATCH;
        msgpack_pack_map (&pk, r->last_eid [0] ? 3 : 2);
        cmn_pack_kv_uint (&pk, "req", r->req);
        cmn_pack_kv_str (&pk, "id", r->job_id);
        if (r->last_eid [0])
            cmn_pack_kv_str (&pk, "since", r->last_eid);
    }
    else {
        uint32_t n = 0;
        uint32_t total = r->fields ? r->fields->via.map.size : 0;
        for (uint32_t i = 0; i < total; i++)
            if (!cmn_codec_str_eq (&r->fields->via.map.ptr [i].key, "req"))
                n++;
        msgpack_pack_map (&pk, n + 1);
        cmn_pack_kv_uint (&pk, "req", r->req);
        for (uint32_t i = 0; i < total; i++) {
            const msgpack_object_kv *kv = &r->fields->via.map.ptr [i];
            if (cmn_codec_str_eq (&kv->key, "req"))
                continue;
            msgpack_pack_object (&pk, kv->key);
            msgpack_pack_object (&pk, kv->val);
        }
    }
    zmsg_t *msg = zmsg_new ();
    uint8_t cmd = (uint8_t) command;
    int rc = msg ? 0 : -1;
    rc = rc || zmsg_addmem (msg, NULL, 0);
    rc = rc || zmsg_addmem (msg, RXQ_PROTO_CLIENT, RXQ_PROTO_HEADER_LEN);
    rc = rc || zmsg_addmem (msg, &cmd, 1);
    rc = rc || zmsg_addmem (msg, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    if (rc || zmsg_send (&msg, self->sock) != 0) {
        zmsg_destroy (&msg);
        return cmn_err_set (err, RXQ_E_IO, "cannot send to broker at %s: %s",
                            self->endpoint, zmq_strerror (zmq_errno ()));
    }
    cmn_log_debug ("sent %s req=%" PRIu64 " to %s", cmn_proto_command_name (command),
                   r->req, self->endpoint);
    return 0;
}

//  Reads a broker message. Returns the command and fills BODY (to free),
//  or -1 for an invalid message (dropped with a log line).
static int
s_recv (rxq_client_t *self, cmn_body_t *body)
{
    zmsg_t *msg = zmsg_recv (self->sock);
    if (!msg)
        return -1;
    const char *why = NULL;
    cmn_err_t derr;
    cmn_err_clear (&derr);
    int command = -1;
    zframe_t *empty = zmsg_first (msg);
    zframe_t *header = zmsg_next (msg);
    zframe_t *cmdf = zmsg_next (msg);
    zframe_t *bodyf = zmsg_next (msg);
    if (zmsg_size (msg) < 4 || zmsg_size (msg) > RXQ_MAX_FRAMES)
        why = "wrong number of frames";
    else
    if (zframe_size (empty) != 0)
        why = "first frame is not empty";
    else
    if (zframe_size (header) != RXQ_PROTO_HEADER_LEN
    ||  memcmp (zframe_data (header), RXQ_PROTO_CLIENT, RXQ_PROTO_HEADER_LEN) != 0)
        why = "header is not " RXQ_PROTO_CLIENT;
    else
    if (zframe_size (cmdf) != 1)
        why = "command frame is not one byte";
    else
    if (s_decode_owned (body, zframe_data (bodyf), zframe_size (bodyf), &derr))
        why = derr.msg;
    else
        command = zframe_data (cmdf) [0];
    if (why)
        cmn_log_warn ("dropped an invalid message from broker at %s: %s", self->endpoint, why);
    zmsg_destroy (&msg);
    return command;
}

//  Parses a Redis stream id "MS-SEQ". Returns false when TEXT is not one.
static bool
s_eid_parse (const char *text, size_t len, uint64_t *ms, uint64_t *seq)
{
    char buf [RXQ_MAX_ID_LEN + 1];
    if (len == 0 || len > RXQ_MAX_ID_LEN)
        return false;
    memcpy (buf, text, len);
    buf [len] = 0;
    char *end = NULL;
    *ms = strtoull (buf, &end, 10);
    if (end == buf || *end != '-')
        return false;
    char *start = end + 1;
    *seq = strtoull (start, &end, 10);
    return end != start && *end == 0;
}

//  True when the event EID is at or before LAST (already passed on).
static bool
s_eid_seen (const char *last, const char *eid, size_t len)
{
    uint64_t lm, ls, em, es;
    if (!last [0] || !s_eid_parse (last, strlen (last), &lm, &ls)
    ||  !s_eid_parse (eid, len, &em, &es))
        return false;
    return em < lm || (em == lm && es <= ls);
}

//  Handles a PARTIAL for the request: remembers the job id and the last
//  event id, drops events already passed on, and calls the callback.
static void
s_on_partial (s_request_t *r, const msgpack_object *body,
              rxq_client_partial_fn *on_partial, void *arg)
{
    const char *id;
    size_t idlen;
    if (!r->job_id [0] && cmn_codec_get_str (body, "id", &id, &idlen, NULL) == 0
    &&  idlen > 0 && idlen <= RXQ_MAX_ID_LEN) {
        memcpy (r->job_id, id, idlen);
        r->job_id [idlen] = 0;
    }
    const msgpack_object *event = NULL;
    const char *eid;
    size_t eidlen;
    if (cmn_codec_get_map (body, "event", &event, NULL) == 0
    &&  cmn_codec_get_str (event, "eid", &eid, &eidlen, NULL) == 0
    &&  eidlen > 0 && eidlen <= RXQ_MAX_ID_LEN) {
        if (s_eid_seen (r->last_eid, eid, eidlen))
            return;
        memcpy (r->last_eid, eid, eidlen);
        r->last_eid [eidlen] = 0;
    }
    if (on_partial)
        on_partial (arg, body);
}

int
rxq_client_request (rxq_client_t *self, int command, const void *body, size_t size,
                    rxq_client_partial_fn *on_partial, void *arg, int timeout_ms,
                    cmn_body_t *final, cmn_err_t *err)
{
    assert (self && final);
    assert (command >= RXQ_CMD_SUBMIT && command <= RXQ_CMD_RECORDS);
    self->broker_error = false;
    if (timeout_ms <= 0)
        timeout_ms = RXQ_CLIENT_TIMEOUT_MS_DEFAULT;
    cmn_body_t fields;
    memset (&fields, 0, sizeof fields);
    cmn_err_t derr;
    if (body && s_decode_owned (&fields, body, size, &derr))
        return cmn_err_set (err, RXQ_E_INVAL, "request body: %s", derr.msg);

    s_request_t r;
    memset (&r, 0, sizeof r);
    r.command = command;
    r.fields = body ? &fields.root : NULL;
    bool wait = false;
    if (r.fields)
        cmn_codec_get_bool (r.fields, "wait", &wait, NULL);
    r.stream = command == RXQ_CMD_WATCH || (command == RXQ_CMD_SUBMIT && wait);
    if (command == RXQ_CMD_WATCH && r.fields)
        cmn_codec_get_cstr (r.fields, "id", r.job_id, sizeof r.job_id, NULL);
    if (command == RXQ_CMD_WATCH && r.fields)
        cmn_codec_get_cstr (r.fields, "since", r.last_eid, sizeof r.last_eid, NULL);

    r.req = self->next_req++;
    int rc = s_send (self, &r, false, err);
    int64_t last_heard = zclock_mono ();   // last valid message from the broker
    int64_t last_sent = last_heard;         // last (re-)send of the request
    bool answered = false;                  // the broker has sent us something
    int64_t resend_ms = (int64_t) self->interval_ms * self->liveness;
    while (rc == 0) {
        int64_t now = zclock_mono ();
        int64_t limit = answered && r.stream ? self->stream_timeout_ms : timeout_ms;
        int64_t give_up = limit < 0 ? INT64_MAX : last_heard + limit;
        int64_t resend = r.stream && r.job_id [0]
                       ? (last_heard > last_sent ? last_heard : last_sent) + resend_ms
                       : INT64_MAX;
        if (now >= give_up) {
            if (limit % 1000 == 0)
                rc = cmn_err_set (err, RXQ_E_UNREACHABLE,
                                  "broker at %s did not answer within %" PRId64 " s; is it running? "
                                  "(rxq up starts a local cluster)", self->endpoint, limit / 1000);
            else
                rc = cmn_err_set (err, RXQ_E_UNREACHABLE,
                                  "broker at %s did not answer within %.1f s; is it running? "
                                  "(rxq up starts a local cluster)", self->endpoint,
                                  (double) limit / 1000.0);
            break;
        }
        if (now >= resend) {
            //  5.4: a stream that went silent is picked up where it left off,
            //  under a new req so late replies to the old one are ignored.
            r.req = self->next_req++;
            rc = s_send (self, &r, true, err);
            last_sent = now;
            continue;
        }
        int64_t wait_ms = (give_up < resend ? give_up : resend) - now;
        zmq_pollitem_t item = { zsock_resolve (self->sock), 0, ZMQ_POLLIN, 0 };
        int n = zmq_poll (&item, 1, (long) (wait_ms > 1000 ? 1000 : wait_ms));
        if (n < 0) {
            if (zmq_errno () == EINTR)
                continue;
            rc = cmn_err_set (err, RXQ_E_IO, "polling the broker socket: %s",
                              zmq_strerror (zmq_errno ()));
            break;
        }
        if (n == 0)
            continue;
        cmn_body_t reply;
        memset (&reply, 0, sizeof reply);
        int cmd = s_recv (self, &reply);
        if (cmd < 0)
            continue;
        last_heard = zclock_mono ();
        answered = true;
        uint64_t req = 0;
        if (cmd == RXQ_CMD_HEARTBEAT
        ||  cmn_codec_get_uint (&reply.root, "req", &req, NULL) != 0 || req != r.req) {
            if (cmd != RXQ_CMD_HEARTBEAT)
                cmn_log_debug ("ignored %s for req=%" PRIu64 " (waiting for %" PRIu64 ")",
                               cmn_proto_command_name (cmd), req, r.req);
            cmn_body_free (&reply);
            continue;
        }
        if (cmd == RXQ_CMD_PARTIAL) {
            s_on_partial (&r, &reply.root, on_partial, arg);
            cmn_body_free (&reply);
        }
        else
        if (cmd == RXQ_CMD_FINAL) {
            *final = reply;
            break;
        }
        else
        if (cmd == RXQ_CMD_ERROR) {
            uint64_t code = RXQ_E_INTERNAL;
            char message [200] = "";
            char name [64] = "";
            cmn_codec_get_uint (&reply.root, "code", &code, NULL);
            cmn_codec_get_cstr (&reply.root, "message", message, sizeof message, NULL);
            cmn_codec_get_cstr (&reply.root, "name", name, sizeof name, NULL);
            int icode = code <= INT32_MAX ? (int) code : RXQ_E_INTERNAL;
            if (!message [0])
                snprintf (message, sizeof message, "%s",
                          name [0] ? name : cmn_error_message (icode));
            rc = cmn_err_set (err, icode, "%s", message);
            self->broker_error = true;
            cmn_body_free (&reply);
        }
        else {
            cmn_log_warn ("dropped unexpected %s from broker at %s",
                          cmn_proto_command_name (cmd), self->endpoint);
            cmn_body_free (&reply);
        }
    }
    cmn_body_free (&fields);
    return rc ? -1 : 0;
}
