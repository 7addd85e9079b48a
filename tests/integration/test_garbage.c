/*  test_garbage: a real rxq-broker (with a real Redis) fed invalid messages
 *  on its ROUTER socket (proto/rxq-protocol.md 3.4, 3.5 and 4): random
 *  bytes, wrong headers and versions, truncated, oversized and deeply
 *  nested msgpack, unknown commands, too many frames, empty messages. It
 *  must answer what the spec says it answers (ERROR RXQ_E_VERSION to an
 *  RXQC02 client, DISCONNECT with a reason to an RXQW02 worker, ERROR
 *  RXQ_E_PROTO to a readable request it cannot serve), drop the rest, and
 *  afterwards still serve SUBMIT and STATUS, its process alive.
 */
#include "itest.h"
#include <czmq.h>

static void
s_fini (void)
{
    itest_cleanup ();
}

//  Sends one message of COUNT frames.
static void
s_send (zsock_t *sock, int count, const void *const data [], const size_t size [])
{
    zmsg_t *msg = zmsg_new ();
    for (int i = 0; i < count; i++)
        zmsg_addmem (msg, data [i], size [i]);
    cr_assert_eq (zmsg_send (&msg, sock), 0);
}

//  Sends [empty][HEADER][cmd][body].
static void
s_send_request (zsock_t *sock, const char *header, int cmd, const void *body, size_t size)
{
    uint8_t c = (uint8_t) cmd;
    const void *data [] = { "", header, &c, body };
    size_t sizes [] = { 0, strlen (header), 1, size };
    s_send (sock, 4, data, sizes);
}

//  Waits up to TIMEOUT_MS for a reply [empty][header][cmd][body]: returns
//  its command and decodes BODY (to free), or -1 when none came.
static int
s_recv (zsock_t *sock, int timeout_ms, char *header, cmn_body_t *body)
{
    zpoller_t *poller = zpoller_new (sock, NULL);
    void *which = zpoller_wait (poller, timeout_ms);
    zpoller_destroy (&poller);
    if (!which)
        return -1;
    zmsg_t *msg = zmsg_recv (sock);
    cr_assert_not_null (msg);
    cr_assert_eq (zmsg_size (msg), 4, "replies have 4 frames, got %zu", zmsg_size (msg));
    zframe_t *f = zmsg_first (msg);
    cr_assert_eq (zframe_size (f), 0);
    f = zmsg_next (msg);
    cr_assert_eq (zframe_size (f), RXQ_PROTO_HEADER_LEN);
    memcpy (header, zframe_data (f), RXQ_PROTO_HEADER_LEN);
    header [RXQ_PROTO_HEADER_LEN] = 0;
    f = zmsg_next (msg);
    cr_assert_eq (zframe_size (f), 1);
    int cmd = zframe_data (f) [0];
    f = zmsg_next (msg);
    //  msgpack-c points decoded strings into the buffer: give the body its
    //  own copy, freed with it.
    void *copy = malloc (zframe_size (f) + 1);
    memcpy (copy, zframe_data (f), zframe_size (f));
    cmn_err_t err;
    cr_assert_eq (cmn_body_decode (body, copy, zframe_size (f), &cmn_codec_limits_default, &err),
                  0, "the broker's reply is valid: %s", err.msg);
    msgpack_zone_push_finalizer (&body->zone, free, copy);
    zmsg_destroy (&msg);
    return cmd;
}

//  Drains whatever replies are queued on SOCK, waiting up to TIMEOUT_MS
//  for the first; returns how many.
static int
s_drain (zsock_t *sock, int timeout_ms)
{
    int n = 0;
    zpoller_t *poller = zpoller_new (sock, NULL);
    while (zpoller_wait (poller, n ? 50 : timeout_ms)) {
        zmsg_t *msg = zmsg_recv (sock);
        zmsg_destroy (&msg);
        n++;
    }
    zpoller_destroy (&poller);
    return n;
}

static zsock_t *
s_dealer (int port)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    cr_assert_not_null (sock);
    zsock_set_linger (sock, 0);
    zsock_set_sndhwm (sock, 100000);
    cr_assert_eq (zsock_connect (sock, "tcp://127.0.0.1:%d", port), 0);
    return sock;
}

//  {req: REQ, id: "x"}
static void
s_pack_status (msgpack_sbuffer *sbuf, uint64_t req)
{
    msgpack_sbuffer_init (sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    cmn_pack_kv_uint (&pk, "req", req);
    cmn_pack_kv_str (&pk, "id", "x");
}

//  A broker that is up and answering; returns its port.
static itest_proc_t *s_broker;

static int
s_start_broker (void)
{
    zsys_handler_set (NULL);
    int redis_port = itest_free_port ();
    int port = itest_free_port ();
    while (port == redis_port)
        port = itest_free_port ();
    itest_start_redis (redis_port);
    s_broker = itest_start_broker (port, redis_port);
    cr_assert_eq (itest_wait_workers (port, 0, 15000), 0, "broker answers; log: %s",
                  itest_log (s_broker));
    return port;
}

//  The broker serves a normal SUBMIT and STATUS, and its process lives.
static void
s_assert_healthy (int port)
{
    int status = 0;
    cr_assert_not (itest_wait_exit (s_broker, 0, &status),
                   "the broker process is alive (status %d); log: %s", status, itest_log (s_broker));
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new (endpoint, &err);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    cmn_pack_kv_str (&pk, "kind", "noop");
    cmn_pack_key (&pk, "params");
    msgpack_pack_map (&pk, 0);
    cmn_body_t final;
    cr_assert_eq (rxq_client_request (client, RXQ_CMD_SUBMIT, sbuf.data, sbuf.size, NULL, NULL,
                                      5000, &final, &err), 0, "SUBMIT after garbage: %s", err.msg);
    char id [80];
    cr_assert_eq (cmn_codec_get_cstr (&final.root, "id", id, sizeof id, NULL), 0);
    cmn_body_free (&final);
    msgpack_sbuffer_destroy (&sbuf);
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_str (&pk, "id", id);
    cr_assert_eq (rxq_client_request (client, RXQ_CMD_STATUS, sbuf.data, sbuf.size, NULL, NULL,
                                      5000, &final, &err), 0, "STATUS after garbage: %s", err.msg);
    const msgpack_object *job = NULL;
    cr_assert_eq (cmn_codec_get_map (&final.root, "job", &job, NULL), 0);
    cr_assert (cmn_codec_str_eq (cmn_codec_find (job, "id"), id));
    cmn_body_free (&final);
    msgpack_sbuffer_destroy (&sbuf);
    rxq_client_destroy (&client);
}

TestSuite (garbage, .fini = s_fini, .timeout = 90);

//  4: another client version gets ERROR RXQ_E_VERSION naming both.
Test (garbage, spec_4_client_version_error)
{
    int port = s_start_broker ();
    zsock_t *sock = s_dealer (port);
    msgpack_sbuffer sbuf;
    s_pack_status (&sbuf, 77);
    s_send_request (sock, "RXQC02", RXQ_CMD_STATUS, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    char header [8];
    cmn_body_t body;
    int cmd = s_recv (sock, 5000, header, &body);
    cr_assert_eq (cmd, RXQ_CMD_ERROR, "RXQC02 gets an ERROR, got %d", cmd);
    cr_assert_str_eq (header, "RXQC01", "the reply's header is RXQC01");
    uint64_t code = 0, req = 0;
    char message [256] = "";
    cmn_codec_get_uint (&body.root, "code", &code, NULL);
    cmn_codec_get_uint (&body.root, "req", &req, NULL);
    cmn_codec_get_cstr (&body.root, "message", message, sizeof message, NULL);
    cr_assert_eq (code, RXQ_E_VERSION, "code %lu", (unsigned long) code);
    //  Another version's body need not be readable: req is echoed, or 0.
    cr_assert (req == 77 || req == 0, "req %lu", (unsigned long) req);
    cr_assert (strstr (message, "02") && strstr (message, "01"),
               "the message names both versions: %s", message);
    cmn_body_free (&body);
    zsock_destroy (&sock);
    s_assert_healthy (port);
}

//  4: another worker version gets DISCONNECT with a reason naming both.
Test (garbage, spec_4_worker_version_disconnect)
{
    int port = s_start_broker ();
    zsock_t *sock = s_dealer (port);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    cmn_pack_kv_str (&pk, "name", "old-worker");
    cmn_pack_key (&pk, "kinds");
    msgpack_pack_array (&pk, 1);
    cmn_pack_cstr (&pk, "noop");
    s_send_request (sock, "RXQW02", RXQ_CMD_READY, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    char header [8];
    cmn_body_t body;
    int cmd = s_recv (sock, 5000, header, &body);
    cr_assert_eq (cmd, RXQ_CMD_DISCONNECT, "RXQW02 gets a DISCONNECT, got %d", cmd);
    char reason [256] = "";
    cmn_codec_get_cstr (&body.root, "reason", reason, sizeof reason, NULL);
    cr_assert (strstr (reason, "02") && strstr (reason, "01"),
               "the reason names both versions: %s", reason);
    cmn_body_free (&body);
    zsock_destroy (&sock);
    s_assert_healthy (port);
}

//  3.5: a readable request the broker cannot serve gets ERROR RXQ_E_PROTO.
Test (garbage, spec_3_5_unknown_command_error)
{
    int port = s_start_broker ();
    zsock_t *sock = s_dealer (port);
    msgpack_sbuffer sbuf;
    s_pack_status (&sbuf, 91);
    s_send_request (sock, RXQ_PROTO_CLIENT, 0x7e, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    char header [8];
    cmn_body_t body;
    int cmd = s_recv (sock, 5000, header, &body);
    cr_assert_eq (cmd, RXQ_CMD_ERROR, "unknown command gets an ERROR, got %d", cmd);
    uint64_t code = 0, req = 0;
    cmn_codec_get_uint (&body.root, "code", &code, NULL);
    cmn_codec_get_uint (&body.root, "req", &req, NULL);
    cr_assert_eq (code, RXQ_E_PROTO, "code %lu", (unsigned long) code);
    cr_assert_eq (req, 91);
    cmn_body_free (&body);

    //  A SUBMIT whose priority is a string: invalid, but its req is readable.
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_uint (&pk, "req", 92);
    cmn_pack_kv_str (&pk, "kind", "noop");
    cmn_pack_kv_str (&pk, "priority", "high");
    s_send_request (sock, RXQ_PROTO_CLIENT, RXQ_CMD_SUBMIT, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    cmd = s_recv (sock, 5000, header, &body);
    cr_assert_eq (cmd, RXQ_CMD_ERROR, "an ill-typed field gets an ERROR, got %d", cmd);
    cmn_codec_get_uint (&body.root, "req", &req, NULL);
    cr_assert_eq (req, 92);
    cmn_body_free (&body);
    zsock_destroy (&sock);
    s_assert_healthy (port);
}

//  3.4, 3.5: a few seconds of garbage from several peers; the broker
//  drops it and keeps serving.
Test (garbage, spec_3_5_garbage_flood_survives)
{
    int port = s_start_broker ();
    unsigned seed = (unsigned) time (NULL);
    srand (seed);
    cr_log_info ("garbage seed %u", seed);
    zsock_t *socks [4];
    for (int i = 0; i < 4; i++)
        socks [i] = s_dealer (port);

    //  Fixed shapes.
    uint8_t *big = calloc (1, RXQ_MAX_BODY_BYTES + 64);
    big [0] = 0xc6;     // bin 32 declaring more than the limit
    big [1] = 0x00; big [2] = 0x10; big [3] = 0x00; big [4] = 0x10;
    uint8_t deep [200];
    for (int i = 0; i < 199; i++)
        deep [i] = 0x91;    // array of one element, 199 levels
    deep [199] = 0xc0;
    uint8_t huge_count [] = { 0xdf, 0xff, 0xff, 0xff, 0xff };   // map of 2^32-1 pairs, no data
    uint8_t truncated [] = { 0x82, 0xa3, 'r', 'e', 'q', 0x01, 0xa2, 'i' };
    uint8_t not_a_map [] = { 0x93, 0x01, 0x02, 0x03 };
    uint8_t trailing [] = { 0x81, 0xa3, 'r', 'e', 'q', 0x01, 0xff, 0xff };
    uint8_t int_keys [] = { 0x81, 0x01, 0x02 };
    uint8_t cmd_status = RXQ_CMD_STATUS, cmd_ready = RXQ_CMD_READY, cmd_done = RXQ_CMD_DONE;

    int64_t end = itest_now_ms () + 4000;
    long sent = 0;
    while (itest_now_ms () < end) {
        zsock_t *sock = socks [rand () % 4];
        int shape = rand () % 16;
        uint8_t rnd [256];
        size_t rlen = (size_t) (rand () % (int) sizeof rnd);
        for (size_t i = 0; i < rlen; i++)
            rnd [i] = (uint8_t) rand ();
        switch (shape) {
            case 0: {   // random bytes, one frame
                const void *d [] = { rnd };
                size_t s [] = { rlen };
                s_send (sock, 1, d, s);
                break;
            }
            case 1: {   // random frames, random count up to 20
                int n = 1 + rand () % 20;
                const void *d [20];
                size_t s [20];
                for (int i = 0; i < n; i++) {
                    d [i] = rnd + (rand () % 128);
                    s [i] = (size_t) (rand () % 64);
                }
                s_send (sock, n, d, s);
                break;
            }
            case 2:     // wrong header
                s_send_request (sock, "XXXX01", cmd_status, rnd, rlen);
                break;
            case 3:     // valid header, random body
                s_send_request (sock, RXQ_PROTO_CLIENT, rand () % 256, rnd, rlen);
                break;
            case 4:     // oversized body
                s_send_request (sock, RXQ_PROTO_CLIENT, cmd_status, big, RXQ_MAX_BODY_BYTES + 64);
                break;
            case 5:
                s_send_request (sock, RXQ_PROTO_CLIENT, cmd_status, deep, sizeof deep);
                break;
            case 6:
                s_send_request (sock, RXQ_PROTO_CLIENT, cmd_status, huge_count, sizeof huge_count);
                break;
            case 7:
                s_send_request (sock, RXQ_PROTO_CLIENT, cmd_status, truncated, sizeof truncated);
                break;
            case 8:
                s_send_request (sock, RXQ_PROTO_CLIENT, cmd_status, not_a_map, sizeof not_a_map);
                break;
            case 9:
                s_send_request (sock, RXQ_PROTO_CLIENT, cmd_status, trailing, sizeof trailing);
                break;
            case 10:    // worker header, garbage READY and DONE
                s_send_request (sock, RXQ_PROTO_WORKER, rand () % 2 ? cmd_ready : cmd_done,
                                rnd, rlen);
                break;
            case 11: {  // 20 frames of a plausible request
                const void *d [20];
                size_t s [20];
                d [0] = ""; s [0] = 0;
                d [1] = RXQ_PROTO_CLIENT; s [1] = RXQ_PROTO_HEADER_LEN;
                d [2] = &cmd_status; s [2] = 1;
                for (int i = 3; i < 20; i++) {
                    d [i] = not_a_map;
                    s [i] = sizeof not_a_map;
                }
                s_send (sock, 20, d, s);
                break;
            }
            case 12: {  // one empty frame
                const void *d [] = { "" };
                size_t s [] = { 0 };
                s_send (sock, 1, d, s);
                break;
            }
            case 13: {  // delimiter, header, nothing else
                const void *d [] = { "", RXQ_PROTO_CLIENT };
                size_t s [] = { 0, RXQ_PROTO_HEADER_LEN };
                s_send (sock, 2, d, s);
                break;
            }
            case 14:
                s_send_request (sock, RXQ_PROTO_CLIENT, cmd_status, int_keys, sizeof int_keys);
                break;
            default:    // an empty body
                s_send_request (sock, RXQ_PROTO_CLIENT, cmd_status, "", 0);
                break;
        }
        sent++;
        if (sent % 64 == 0)
            for (int i = 0; i < 4; i++)
                s_drain (socks [i], 0);
    }
    cr_log_info ("sent %ld garbage messages", sent);
    for (int i = 0; i < 4; i++) {
        s_drain (socks [i], 200);
        zsock_destroy (&socks [i]);
    }
    free (big);
    s_assert_healthy (port);
}
