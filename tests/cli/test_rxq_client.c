/*  test_rxq_client: the client side of the protocol (proto/rxq-protocol.md,
 *  sections 3 and 5) against a scripted fake broker: a ROUTER on an
 *  ephemeral loopback port, run by a thread while the test's main thread
 *  makes one request with rxq_client.
 */
#include <criterion/criterion.h>
#include <czmq.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "rxq_client.h"
#include "cmn_codec.h"
#include "cmn_proto.h"

//  What the fake broker saw, and the script it runs.
typedef struct {
    zsock_t *router;            // bound ROUTER
    char endpoint [64];         // where the client connects
    void (*script) (void *);    // scenario run on the thread
    pthread_t thread;
    //  Recorded by the scripts:
    int requests;               // requests received
    int frames [4];             // frame count of each (identity included)
    char header [4][8];         // protocol header of each
    int command [4];            // command byte of each
    uint64_t req [4];           // req field of each
    char id [4][32];            // id field of each ("" if none)
    char since [4][32];         // since field of each ("" if none)
    char kind [32];             // kind field of the first
    bool wait_field;            // wait field of the first
} s_fake_t;

static s_fake_t s_fake;

//  Receives one request: records it; returns the routing identity.
static zframe_t *
s_recv_request (s_fake_t *f)
{
    zmsg_t *msg = zmsg_recv (f->router);
    cr_assert_not_null (msg);
    int n = f->requests++;
    cr_assert_lt (n, 4);
    f->frames [n] = (int) zmsg_size (msg);
    zframe_t *identity = zmsg_pop (msg);
    zframe_t *empty = zmsg_pop (msg);
    zframe_t *header = zmsg_pop (msg);
    zframe_t *cmd = zmsg_pop (msg);
    zframe_t *body = zmsg_pop (msg);
    cr_assert (empty && zframe_size (empty) == 0, "frame 0 must be the empty delimiter");
    cr_assert (header && zframe_size (header) == RXQ_PROTO_HEADER_LEN);
    memcpy (f->header [n], zframe_data (header), RXQ_PROTO_HEADER_LEN);
    f->header [n][RXQ_PROTO_HEADER_LEN] = 0;
    cr_assert (cmd && zframe_size (cmd) == 1);
    f->command [n] = zframe_data (cmd) [0];
    cmn_body_t b;
    cmn_err_t err;
    cr_assert (body);
    cr_assert_eq (cmn_body_decode (&b, zframe_data (body), zframe_size (body),
                                   &cmn_codec_limits_default, &err), 0, "%s", err.msg);
    cr_assert_eq (cmn_codec_get_uint (&b.root, "req", &f->req [n], &err), 0, "req missing");
    cmn_codec_get_cstr (&b.root, "id", f->id [n], sizeof f->id [n], NULL);
    cmn_codec_get_cstr (&b.root, "since", f->since [n], sizeof f->since [n], NULL);
    if (n == 0) {
        cmn_codec_get_cstr (&b.root, "kind", f->kind, sizeof f->kind, NULL);
        cmn_codec_get_bool (&b.root, "wait", &f->wait_field, NULL);
    }
    cmn_body_free (&b);
    zframe_destroy (&empty);
    zframe_destroy (&header);
    zframe_destroy (&cmd);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
    return identity;
}

//  Sends [identity][empty][HEADER][cmd][body] to the client.
static void
s_send (s_fake_t *f, zframe_t *identity, const char *header, int cmd, msgpack_sbuffer *body)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *) { zframe_dup (identity) });
    zmsg_addmem (msg, NULL, 0);
    zmsg_addmem (msg, header, strlen (header));
    uint8_t c = (uint8_t) cmd;
    zmsg_addmem (msg, &c, 1);
    zmsg_addmem (msg, body->data, body->size);
    cr_assert_eq (zmsg_send (&msg, f->router), 0);
}

//  Packs {req, extra string field KEY: VALUE (when KEY)} into SBUF.
static void
s_pack_reply (msgpack_sbuffer *sbuf, uint64_t req, const char *key, const char *value)
{
    msgpack_sbuffer_init (sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, key ? 2 : 1);
    cmn_pack_kv_uint (&pk, "req", req);
    if (key)
        cmn_pack_kv_str (&pk, key, value);
}

//  A PARTIAL {req, id, event: {eid, type: progress, fraction}}.
static void
s_send_event (s_fake_t *f, zframe_t *identity, uint64_t req, const char *eid)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_uint (&pk, "req", req);
    cmn_pack_kv_str (&pk, "id", "job-1");
    cmn_pack_key (&pk, "event");
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_str (&pk, "eid", eid);
    cmn_pack_kv_str (&pk, "type", "progress");
    cmn_pack_kv_double (&pk, "fraction", 0.5);
    s_send (f, identity, RXQ_PROTO_CLIENT, RXQ_CMD_PARTIAL, &sbuf);
    msgpack_sbuffer_destroy (&sbuf);
}

static void
s_send_heartbeat (s_fake_t *f, zframe_t *identity)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 0);
    s_send (f, identity, RXQ_PROTO_CLIENT, RXQ_CMD_HEARTBEAT, &sbuf);
    msgpack_sbuffer_destroy (&sbuf);
}

static void *
s_thread (void *arg)
{
    s_fake_t *f = arg;
    f->script (f);
    return NULL;
}

static void
s_start (void (*script) (void *))
{
    memset (&s_fake, 0, sizeof s_fake);
    zsys_handler_set (NULL);
    s_fake.router = zsock_new (ZMQ_ROUTER);
    cr_assert_not_null (s_fake.router);
    zsock_set_linger (s_fake.router, 0);
    int port = zsock_bind (s_fake.router, "tcp://127.0.0.1:*");
    cr_assert_gt (port, 0);
    snprintf (s_fake.endpoint, sizeof s_fake.endpoint, "tcp://127.0.0.1:%d", port);
    s_fake.script = script;
    cr_assert_eq (pthread_create (&s_fake.thread, NULL, s_thread, &s_fake), 0);
}

static void
s_join (void)
{
    pthread_join (s_fake.thread, NULL);
    zsock_destroy (&s_fake.router);
}

//  Request body {kind: "noop", wait: WAIT}.
static void
s_pack_submit (msgpack_sbuffer *sbuf, bool wait)
{
    msgpack_sbuffer_init (sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, wait ? 2 : 1);
    cmn_pack_kv_str (&pk, "kind", "noop");
    if (wait)
        cmn_pack_kv_bool (&pk, "wait", true);
}

//  Counts PARTIALs and remembers the last event id.
typedef struct {
    int partials;
    char last_eid [32];
} s_seen_t;

static void
s_on_partial (void *arg, const msgpack_object *body)
{
    s_seen_t *seen = arg;
    seen->partials++;
    const msgpack_object *event = NULL;
    if (cmn_codec_get_map (body, "event", &event, NULL) == 0)
        cmn_codec_get_cstr (event, "eid", seen->last_eid, sizeof seen->last_eid, NULL);
}

//  ---------------------------------------------------------------------
//  3.1: framing, and 5.1: the req is echoed

static void
s_script_final (void *arg)
{
    s_fake_t *f = arg;
    zframe_t *id = s_recv_request (f);
    msgpack_sbuffer sbuf;
    s_pack_reply (&sbuf, f->req [0], "id", "job-1");
    s_send (f, id, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &sbuf);
    msgpack_sbuffer_destroy (&sbuf);
    zframe_destroy (&id);
}

Test (rxq_client, spec_3_1_request_framing_and_final)
{
    s_start (s_script_final);
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new (s_fake.endpoint, &err);
    cr_assert_not_null (client, "%s", err.msg);
    msgpack_sbuffer body;
    s_pack_submit (&body, false);
    cmn_body_t final;
    int rc = rxq_client_request (client, RXQ_CMD_SUBMIT, body.data, body.size, NULL, NULL,
                                 3000, &final, &err);
    cr_assert_eq (rc, 0, "%s", err.msg);
    s_join ();
    cr_assert_eq (s_fake.frames [0], 5, "identity + 4 frames, got %d", s_fake.frames [0]);
    cr_assert_str_eq (s_fake.header [0], "RXQC01");
    cr_assert_eq (s_fake.command [0], RXQ_CMD_SUBMIT);
    cr_assert_str_eq (s_fake.kind, "noop", "the caller's fields travel with req");
    uint64_t req = 0;
    cr_assert_eq (cmn_codec_get_uint (&final.root, "req", &req, NULL), 0);
    cr_assert_eq (req, s_fake.req [0], "the FINAL returned is the one for our req");
    char id [32];
    cr_assert_eq (cmn_codec_get_cstr (&final.root, "id", id, sizeof id, NULL), 0);
    cr_assert_str_eq (id, "job-1");
    cmn_body_free (&final);
    msgpack_sbuffer_destroy (&body);

    //  A second request gets a fresh req; nobody answers it.
    s_start (s_script_final);
    rxq_client_destroy (&client);
    client = rxq_client_new (s_fake.endpoint, &err);
    cr_assert_eq (rxq_client_request (client, RXQ_CMD_WORKERS, NULL, 0, NULL, NULL, 3000,
                                      &final, &err), 0, "%s", err.msg);
    uint64_t first = 0;
    cmn_codec_get_uint (&final.root, "req", &first, NULL);
    cmn_body_free (&final);
    cr_assert_eq (rxq_client_request (client, RXQ_CMD_WORKERS, NULL, 0, NULL, NULL, 300,
                                      &final, &err), -1, "no second answer: silence");
    s_join ();
    cr_assert_eq (first, s_fake.req [0]);
    rxq_client_destroy (&client);
    rxq_client_destroy (&client);
    cr_assert_null (client, "destroy nulls and is idempotent");
}

//  ---------------------------------------------------------------------
//  5: PARTIALs, then the FINAL; HEARTBEATs and repeated events

static void
s_script_partials (void *arg)
{
    s_fake_t *f = arg;
    zframe_t *id = s_recv_request (f);
    s_send_event (f, id, f->req [0], "100-0");
    s_send_heartbeat (f, id);
    s_send_event (f, id, f->req [0], "100-1");
    s_send_event (f, id, f->req [0], "100-0");     // seen already: dropped
    msgpack_sbuffer sbuf;
    s_pack_reply (&sbuf, f->req [0], "id", "job-1");
    s_send (f, id, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &sbuf);
    msgpack_sbuffer_destroy (&sbuf);
    zframe_destroy (&id);
}

Test (rxq_client, spec_5_partials_then_final)
{
    s_start (s_script_partials);
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new (s_fake.endpoint, &err);
    msgpack_sbuffer body;
    s_pack_submit (&body, true);
    s_seen_t seen = { 0, "" };
    cmn_body_t final;
    int rc = rxq_client_request (client, RXQ_CMD_SUBMIT, body.data, body.size, s_on_partial,
                                 &seen, 3000, &final, &err);
    cr_assert_eq (rc, 0, "%s", err.msg);
    s_join ();
    cr_assert (s_fake.wait_field);
    cr_assert_eq (seen.partials, 2, "two new events, got %d", seen.partials);
    cr_assert_str_eq (seen.last_eid, "100-1");
    cmn_body_free (&final);
    msgpack_sbuffer_destroy (&body);
    rxq_client_destroy (&client);
}

//  ---------------------------------------------------------------------
//  5.9: ERROR becomes the broker's code and message

static void
s_script_error (void *arg)
{
    s_fake_t *f = arg;
    zframe_t *id = s_recv_request (f);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    cmn_pack_kv_uint (&pk, "req", f->req [0]);
    cmn_pack_kv_uint (&pk, "code", RXQ_E_NOTFOUND);
    cmn_pack_kv_str (&pk, "name", "RXQ_E_NOTFOUND");
    cmn_pack_kv_str (&pk, "message", "no job with id 'nope'");
    s_send (f, id, RXQ_PROTO_CLIENT, RXQ_CMD_ERROR, &sbuf);
    msgpack_sbuffer_destroy (&sbuf);
    zframe_destroy (&id);
}

Test (rxq_client, spec_5_9_error_reply)
{
    s_start (s_script_error);
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new (s_fake.endpoint, &err);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_str (&pk, "id", "nope");
    cmn_body_t final;
    int rc = rxq_client_request (client, RXQ_CMD_STATUS, body.data, body.size, NULL, NULL,
                                 3000, &final, &err);
    s_join ();
    cr_assert_eq (rc, -1);
    cr_assert_eq (err.code, RXQ_E_NOTFOUND);
    cr_assert_str_eq (err.msg, "no job with id 'nope'");
    cr_assert (rxq_client_error_from_broker (client));
    cr_assert_str_eq (s_fake.id [0], "nope");
    cr_assert_eq (s_fake.command [0], RXQ_CMD_STATUS);
    msgpack_sbuffer_destroy (&body);
    rxq_client_destroy (&client);
}

//  ---------------------------------------------------------------------
//  5: replies to other requests, and invalid messages, are ignored

static void
s_script_other_req (void *arg)
{
    s_fake_t *f = arg;
    zframe_t *id = s_recv_request (f);
    msgpack_sbuffer sbuf;
    //  Another request's FINAL and ERROR.
    s_pack_reply (&sbuf, f->req [0] + 1000, "id", "wrong");
    s_send (f, id, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &sbuf);
    s_send (f, id, RXQ_PROTO_CLIENT, RXQ_CMD_ERROR, &sbuf);
    msgpack_sbuffer_destroy (&sbuf);
    //  Invalid: worker header, a truncated body, a body that is not a map.
    s_pack_reply (&sbuf, f->req [0], "id", "invalid");
    s_send (f, id, RXQ_PROTO_WORKER, RXQ_CMD_FINAL, &sbuf);
    sbuf.size -= 2;
    s_send (f, id, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &sbuf);
    msgpack_sbuffer_destroy (&sbuf);
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 1);
    msgpack_pack_uint64 (&pk, f->req [0]);
    s_send (f, id, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &sbuf);
    msgpack_sbuffer_destroy (&sbuf);
    //  Then ours.
    s_pack_reply (&sbuf, f->req [0], "id", "right");
    s_send (f, id, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &sbuf);
    msgpack_sbuffer_destroy (&sbuf);
    zframe_destroy (&id);
}

Test (rxq_client, spec_5_other_req_and_invalid_ignored)
{
    s_start (s_script_other_req);
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new (s_fake.endpoint, &err);
    cmn_body_t final;
    int rc = rxq_client_request (client, RXQ_CMD_WORKERS, NULL, 0, NULL, NULL, 3000, &final, &err);
    s_join ();
    cr_assert_eq (rc, 0, "%s", err.msg);
    char id [32];
    cr_assert_eq (cmn_codec_get_cstr (&final.root, "id", id, sizeof id, NULL), 0);
    cr_assert_str_eq (id, "right");
    cmn_body_free (&final);
    rxq_client_destroy (&client);
}

//  ---------------------------------------------------------------------
//  5: silence means unreachable; heartbeats reset the timer

static void
s_script_silent (void *arg)
{
    s_fake_t *f = arg;
    zframe_t *id = s_recv_request (f);
    zframe_destroy (&id);
}

Test (rxq_client, spec_5_silence_is_unreachable)
{
    s_start (s_script_silent);
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new (s_fake.endpoint, &err);
    cmn_body_t final;
    int64_t start = zclock_mono ();
    int rc = rxq_client_request (client, RXQ_CMD_WORKERS, NULL, 0, NULL, NULL, 400, &final, &err);
    int64_t elapsed = zclock_mono () - start;
    s_join ();
    cr_assert_eq (rc, -1);
    cr_assert_eq (err.code, RXQ_E_UNREACHABLE);
    cr_assert_not (rxq_client_error_from_broker (client));
    cr_assert (strstr (err.msg, s_fake.endpoint), "message names the endpoint: %s", err.msg);
    cr_assert (strstr (err.msg, "did not answer within 0.4 s"), "%s", err.msg);
    cr_assert (strstr (err.msg, "rxq up"), "message says what to do: %s", err.msg);
    cr_assert_geq (elapsed, 390);
    cr_assert_lt (elapsed, 2000);
    rxq_client_destroy (&client);
}

Test (rxq_client, spec_5_nothing_listening_is_unreachable)
{
    //  A plain TCP socket that listens but never accepts nor speaks ZMTP:
    //  the connection never completes, so nothing answers. (A port bound
    //  and then freed could be taken by a broker of a test running beside
    //  this one, which did happen under ctest -j2.)
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    cr_assert_geq (fd, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    cr_assert_eq (bind (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    cr_assert_eq (listen (fd, 1), 0);
    socklen_t len = sizeof addr;
    cr_assert_eq (getsockname (fd, (struct sockaddr *) &addr, &len), 0);
    int port = ntohs (addr.sin_port);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new (endpoint, &err);
    cr_assert_not_null (client);
    cmn_body_t final;
    cr_assert_eq (rxq_client_request (client, RXQ_CMD_WORKERS, NULL, 0, NULL, NULL, 1000,
                                      &final, &err), -1);
    cr_assert_eq (err.code, RXQ_E_UNREACHABLE);
    cr_assert (strstr (err.msg, "did not answer within 1 s"), "%s", err.msg);
    rxq_client_destroy (&client);    close (fd);
}

Test (rxq_client, bad_endpoint_is_refused)
{
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new ("nonsense://x", &err);
    cr_assert_null (client);
    cr_assert_eq (err.code, RXQ_E_INVAL);
    cr_assert (strstr (err.msg, "nonsense://x"), "%s", err.msg);
}

static void
s_script_heartbeats (void *arg)
{
    s_fake_t *f = arg;
    zframe_t *id = s_recv_request (f);
    for (int i = 0; i < 8; i++) {
        zclock_sleep (100);
        s_send_heartbeat (f, id);
    }
    msgpack_sbuffer sbuf;
    s_pack_reply (&sbuf, f->req [0], NULL, NULL);
    s_send (f, id, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &sbuf);
    msgpack_sbuffer_destroy (&sbuf);
    zframe_destroy (&id);
}

Test (rxq_client, spec_6_2_heartbeats_reset_silence)
{
    s_start (s_script_heartbeats);
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new (s_fake.endpoint, &err);
    cmn_body_t final;
    //  800 ms of heartbeats, every 100 ms, under a 300 ms silence limit.
    int rc = rxq_client_request (client, RXQ_CMD_WORKERS, NULL, 0, NULL, NULL, 300, &final, &err);
    s_join ();
    cr_assert_eq (rc, 0, "%s", err.msg);
    cmn_body_free (&final);
    rxq_client_destroy (&client);
}

//  ---------------------------------------------------------------------
//  5.4: a silent WATCH is sent again with since = the last event id

static void
s_script_watch_resend (void *arg)
{
    s_fake_t *f = arg;
    zframe_t *id = s_recv_request (f);
    s_send_event (f, id, f->req [0], "1700000000000-3");
    zframe_destroy (&id);
    //  Silence: the client must come back with since = 1700000000000-3.
    id = s_recv_request (f);
    msgpack_sbuffer sbuf;
    s_pack_reply (&sbuf, f->req [0], "id", "stale");    // old subscription: ignored
    s_send (f, id, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &sbuf);
    msgpack_sbuffer_destroy (&sbuf);
    s_send_event (f, id, f->req [1], "1700000000000-3");  // replayed: dropped
    s_send_event (f, id, f->req [1], "1700000000001-0");
    s_pack_reply (&sbuf, f->req [1], "id", "job-1");
    s_send (f, id, RXQ_PROTO_CLIENT, RXQ_CMD_FINAL, &sbuf);
    msgpack_sbuffer_destroy (&sbuf);
    zframe_destroy (&id);
}

Test (rxq_client, spec_5_4_watch_resent_with_since)
{
    s_start (s_script_watch_resend);
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new (s_fake.endpoint, &err);
    rxq_client_set_heartbeat (client, 100, 3);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_str (&pk, "id", "job-1");
    s_seen_t seen = { 0, "" };
    cmn_body_t final;
    int rc = rxq_client_request (client, RXQ_CMD_WATCH, body.data, body.size, s_on_partial,
                                 &seen, 5000, &final, &err);
    s_join ();
    cr_assert_eq (rc, 0, "%s", err.msg);
    cr_assert_eq (s_fake.requests, 2);
    cr_assert_eq (s_fake.command [1], RXQ_CMD_WATCH);
    cr_assert_str_eq (s_fake.id [1], "job-1");
    cr_assert_str_eq (s_fake.since [0], "");
    cr_assert_str_eq (s_fake.since [1], "1700000000000-3");
    cr_assert_neq (s_fake.req [0], s_fake.req [1], "the re-sent WATCH has a new req");
    cr_assert_eq (seen.partials, 2, "each event once, got %d", seen.partials);
    char id [32];
    cmn_codec_get_cstr (&final.root, "id", id, sizeof id, NULL);
    cr_assert_str_eq (id, "job-1");
    cmn_body_free (&final);
    msgpack_sbuffer_destroy (&body);
    rxq_client_destroy (&client);
}

static void
s_script_watch_dead (void *arg)
{
    s_fake_t *f = arg;
    zframe_t *id = s_recv_request (f);
    s_send_event (f, id, f->req [0], "5-0");
    zframe_destroy (&id);
    //  Gone for good: the re-sent WATCHes find nobody.
    for (int i = 0; i < 3; i++)
        zframe_destroy (&(zframe_t *) { s_recv_request (f) });
}

Test (rxq_client, spec_5_4_stream_timeout)
{
    s_start (s_script_watch_dead);
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new (s_fake.endpoint, &err);
    rxq_client_set_heartbeat (client, 100, 2);
    rxq_client_set_stream_timeout (client, 900);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_str (&pk, "id", "job-1");
    cmn_body_t final;
    int64_t start = zclock_mono ();
    int rc = rxq_client_request (client, RXQ_CMD_WATCH, body.data, body.size, NULL, NULL,
                                 5000, &final, &err);
    int64_t elapsed = zclock_mono () - start;
    s_join ();
    cr_assert_eq (rc, -1);
    cr_assert_eq (err.code, RXQ_E_UNREACHABLE);
    cr_assert_geq (elapsed, 850);
    cr_assert_lt (elapsed, 3000, "the stream timeout, not the 5 s one, applies once answered");
    cr_assert_geq (s_fake.requests, 4, "WATCH re-sent every 200 ms of silence");
    cr_assert_str_eq (s_fake.since [1], "5-0");
    msgpack_sbuffer_destroy (&body);
    rxq_client_destroy (&client);
}
