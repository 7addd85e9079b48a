/*  The blob store, proto/rxq-protocol.md section 9: BLOB_PUT, BLOB_DATA
 *  and BLOB_GET against an in-process broker (conformance tests named for
 *  the subsections they guard), and cmn_xfer, the client side, against a
 *  broker running in a thread (credit limits, hash checks, nothing
 *  half-written under a blob's name).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include "brk_blobs.h"
#include "cmn_xfer.h"
#include "tst_broker.h"

static char s_dir [64];

static void
s_open_store (bool with_store)
{
    cr_assert_eq (tst_redis_start (&tst_redis), 0, "redis-server did not start");
    brk_config_defaults (&tst_cfg);
    tst_cfg.bind = "tcp://127.0.0.1:*";
    tst_cfg.redis_url = tst_redis.url;
    tst_cfg.cluster = "test";
    tst_cfg.heartbeat_ms = 100;
    snprintf (s_dir, sizeof s_dir, "/tmp/rxq-blobs-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
    tst_cfg.data_dir = with_store ? s_dir : NULL;
    cmn_err_t err = { 0 };
    tst_broker = brk_broker_new (&tst_cfg, &err);
    cr_assert_not_null (tst_broker, "broker did not start: %s", err.msg);
}

static void
s_close_store (void)
{
    tst_broker_close ();
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    cr_assert_eq (system (cmd), 0);
}

//  A reply with its optional data frame.
typedef struct {
    int cmd;
    cmn_body_t body;
    zframe_t *frame;        // the body's bytes, which BODY points into
    zframe_t *data;
} s_reply_t;

static void
s_reply_free (s_reply_t *r)
{
    cmn_body_free (&r->body);
    zframe_destroy (&r->frame);
    zframe_destroy (&r->data);
}

static uint64_t s_req = 1;

//  Sends COMMAND with `req` and the NFIELDS fields the caller packed in
//  F (may be NULL), plus DATA when not NULL. Returns the req.
static uint64_t
s_send (zsock_t *s, int command, int nfields, msgpack_sbuffer *f, const void *data, size_t len)
{
    uint64_t req = s_req++;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, (uint32_t) nfields + 1);
    cmn_pack_kv_uint (&pk, "req", req);
    if (f) {
        msgpack_sbuffer_write (&sb, f->data, f->size);
        msgpack_sbuffer_destroy (f);
    }
    zmsg_t *m = zmsg_new ();
    uint8_t c = (uint8_t) command;
    zmsg_addmem (m, "", 0);
    zmsg_addstr (m, RXQ_PROTO_CLIENT);
    zmsg_addmem (m, &c, 1);
    zmsg_addmem (m, sb.data, sb.size);
    if (data)
        zmsg_addmem (m, data, len);
    msgpack_sbuffer_destroy (&sb);
    zmsg_send (&m, s);
    return req;
}

//  Runs the broker until S gets the reply to REQ.
static void
s_recv (zsock_t *s, uint64_t req, s_reply_t *r)
{
    int64_t end = zclock_mono () + 5000;
    while (zclock_mono () < end) {
        if (zsock_events (s) & ZMQ_POLLIN) {
            zmsg_t *m = zmsg_recv (s);
            cr_assert_geq (zmsg_size (m), 4);
            cr_assert_leq (zmsg_size (m), 5);
            zframe_t *f = zmsg_pop (m);
            zframe_destroy (&f);
            f = zmsg_pop (m);
            cr_assert (zframe_streq (f, RXQ_PROTO_CLIENT));
            zframe_destroy (&f);
            f = zmsg_pop (m);
            r->cmd = zframe_data (f) [0];
            zframe_destroy (&f);
            f = zmsg_pop (m);
            cmn_err_t err = { 0 };
            cr_assert_eq (cmn_body_decode (&r->body, zframe_data (f), zframe_size (f),
                                           &cmn_codec_limits_default, &err), 0, "%s", err.msg);
            r->frame = f;
            r->data = zmsg_pop (m);
            zmsg_destroy (&m);
            if (r->cmd == RXQ_CMD_HEARTBEAT) {
                s_reply_free (r);
                continue;
            }
            uint64_t got = 0;
            char *json = cmn_codec_to_json (&r->body.root);
            cr_assert_eq (cmn_codec_get_uint (&r->body.root, "req", &got, NULL), 0,
                          "reply 0x%02x without req: %s", r->cmd, json);
            free (json);
            if (got == req)
                return;
            s_reply_free (r);
            continue;
        }
        brk_broker_step (tst_broker, 5);
    }
    cr_assert_fail ("no reply to request %" PRIu64, req);
}

static void
s_expect_error (s_reply_t *r, int code, const char *words)
{
    cr_assert_eq (r->cmd, RXQ_CMD_ERROR, "expected ERROR, got 0x%02x", r->cmd);
    uint64_t got = 0;
    char msg [256] = "";
    cmn_codec_get_uint (&r->body.root, "code", &got, NULL);
    cmn_codec_get_cstr (&r->body.root, "message", msg, sizeof msg, NULL);
    cr_assert_eq ((int) got, code, "code %s, want %s (%s)", cmn_error_name ((int) got),
                  cmn_error_name (code), msg);
    if (words)
        cr_assert (strstr (msg, words), "message '%s' lacks '%s'", msg, words);
    s_reply_free (r);
}

static uint8_t *
s_data (size_t n, unsigned seed)
{
    uint8_t *p = malloc (n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p [i] = (uint8_t) ((i + seed) * 2654435761u >> 24);
    return p;
}

static void
s_hash (const void *p, size_t n, char *hex)
{
    cmn_blob_hash_t h;
    cmn_blob_hash_init (&h);
    cmn_blob_hash_update (&h, p, n);
    cmn_blob_hash_final (&h, hex);
}

static uint64_t
s_put (zsock_t *s, const char *hash, uint64_t size)
{
    msgpack_sbuffer f;
    msgpack_packer pk;
    msgpack_sbuffer_init (&f);
    msgpack_packer_init (&pk, &f, msgpack_sbuffer_write);
    cmn_pack_kv_str (&pk, "hash", hash);
    cmn_pack_kv_uint (&pk, "size", size);
    return s_send (s, RXQ_CMD_BLOB_PUT, 2, &f, NULL, 0);
}

static uint64_t
s_chunk (zsock_t *s, const char *hash, uint64_t offset, const void *data, size_t len)
{
    msgpack_sbuffer f;
    msgpack_packer pk;
    msgpack_sbuffer_init (&f);
    msgpack_packer_init (&pk, &f, msgpack_sbuffer_write);
    cmn_pack_kv_str (&pk, "hash", hash);
    cmn_pack_kv_uint (&pk, "offset", offset);
    return s_send (s, RXQ_CMD_BLOB_DATA, 2, &f, data, len);
}

static uint64_t
s_get (zsock_t *s, const char *hash, uint64_t offset, uint64_t length)
{
    msgpack_sbuffer f;
    msgpack_packer pk;
    msgpack_sbuffer_init (&f);
    msgpack_packer_init (&pk, &f, msgpack_sbuffer_write);
    cmn_pack_kv_str (&pk, "hash", hash);
    cmn_pack_kv_uint (&pk, "offset", offset);
    cmn_pack_kv_uint (&pk, "length", length);
    return s_send (s, RXQ_CMD_BLOB_GET, 3, &f, NULL, 0);
}

static int
s_count_parts (void)
{
    char path [128];
    snprintf (path, sizeof path, "%s/blobs/tmp", s_dir);
    DIR *d = opendir (path);
    cr_assert_not_null (d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir (d)) != NULL)
        n += de->d_name [0] != '.';
    closedir (d);
    return n;
}

static bool
s_stored (const char *hash)
{
    char path [256];
    snprintf (path, sizeof path, "%s/blobs/%.2s/%s", s_dir, hash, hash);
    return access (path, F_OK) == 0;
}

//  Uploads N bytes chunk by chunk and checks every reply.
static void
s_upload (zsock_t *s, const uint8_t *p, size_t n, const char *hash)
{
    s_reply_t r;
    s_recv (s, s_put (s, hash, n), &r);
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL);
    bool have = true;
    uint64_t chunk = 0, credit = 0;
    cr_assert_eq (cmn_codec_get_bool (&r.body.root, "have", &have, NULL), 0);
    cr_assert_not (have);
    cr_assert_eq (cmn_codec_get_uint (&r.body.root, "chunk", &chunk, NULL), 0);
    cr_assert_eq (cmn_codec_get_uint (&r.body.root, "credit", &credit, NULL), 0);
    cr_assert (chunk >= 1 && chunk <= RXQ_MAX_CHUNK_BYTES);
    cr_assert (credit >= 1 && credit <= RXQ_MAX_BLOB_CREDIT);
    s_reply_free (&r);
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        s_recv (s, s_chunk (s, hash, off, p + off, len), &r);
        cr_assert_eq (r.cmd, RXQ_CMD_FINAL);
        uint64_t received = 0;
        bool complete = false;
        cmn_codec_get_uint (&r.body.root, "received", &received, NULL);
        cmn_codec_get_bool (&r.body.root, "complete", &complete, NULL);
        cr_assert_eq (received, off + len);
        cr_assert_eq (complete, off + len == n);
        s_reply_free (&r);
    }
}

TestSuite (spec_9, .init = NULL, .fini = NULL, .timeout = 60);

Test (spec_9, put_then_data_stores_the_blob_under_its_name)
{
    s_open_store (true);
    zsock_t *c = tst_dealer ();
    size_t n = 3 * RXQ_MAX_CHUNK_BYTES + 7;
    uint8_t *p = s_data (n, 1);
    char hash [65];
    s_hash (p, n, hash);
    s_upload (c, p, n, hash);
    cr_assert (s_stored (hash));
    cr_assert_eq (s_count_parts (), 0, "a finished upload leaves no part file");
    //  Metadata only in Redis (docs/redis.md).
    redisReply *rr = tst_redis_cmd (&tst_redis, "HGET rxq:test:blob:%s size", hash);
    cr_assert_not_null (rr);
    cr_assert_eq (strtoull (rr->str, NULL, 10), n);
    freeReplyObject (rr);

    //  9.1: announcing a blob the store has costs no upload.
    s_reply_t r;
    s_recv (c, s_put (c, hash, n), &r);
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL);
    bool have = false;
    cr_assert_eq (cmn_codec_get_bool (&r.body.root, "have", &have, NULL), 0);
    cr_assert (have);
    cr_assert_null (cmn_codec_find (&r.body.root, "credit"));
    s_reply_free (&r);
    rr = tst_redis_cmd (&tst_redis, "HGET rxq:test:blob:%s refs", hash);
    cr_assert_str_eq (rr->str, "2");
    freeReplyObject (rr);
    //  ... but a size that disagrees with the stored blob is refused.
    s_recv (c, s_put (c, hash, n + 1), &r);
    s_expect_error (&r, RXQ_E_IO_HASH, "bytes");
    free (p);
    zsock_destroy (&c);
    s_close_store ();
}

Test (spec_9, hash_mismatch_stores_nothing)
{
    s_open_store (true);
    zsock_t *c = tst_dealer ();
    size_t n = RXQ_MAX_CHUNK_BYTES + 100;
    uint8_t *p = s_data (n, 2);
    char hash [65];
    s_hash (p, n, hash);
    p [n / 2] ^= 1;             // the bytes sent are not the bytes announced
    s_reply_t r;
    s_recv (c, s_put (c, hash, n), &r);
    s_reply_free (&r);
    s_recv (c, s_chunk (c, hash, 0, p, RXQ_MAX_CHUNK_BYTES), &r);
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL);
    s_reply_free (&r);
    s_recv (c, s_chunk (c, hash, RXQ_MAX_CHUNK_BYTES, p + RXQ_MAX_CHUNK_BYTES, 100), &r);
    s_expect_error (&r, RXQ_E_IO_HASH, "nothing was stored");
    cr_assert_not (s_stored (hash));
    cr_assert_eq (s_count_parts (), 0);
    free (p);
    zsock_destroy (&c);
    s_close_store ();
}

Test (spec_9, data_must_follow_put_in_order_and_within_size)
{
    s_open_store (true);
    zsock_t *c = tst_dealer ();
    uint8_t *p = s_data (3000, 3);
    char hash [65];
    s_hash (p, 3000, hash);
    s_reply_t r;
    //  No BLOB_PUT: nothing to append to.
    s_recv (c, s_chunk (c, hash, 0, p, 1000), &r);
    s_expect_error (&r, RXQ_E_STATE, "BLOB_PUT");
    //  Out of order: the upload is abandoned and its part file removed.
    s_recv (c, s_put (c, hash, 3000), &r);
    s_reply_free (&r);
    cr_assert_eq (s_count_parts (), 1);
    s_recv (c, s_chunk (c, hash, 1000, p + 1000, 1000), &r);
    s_expect_error (&r, RXQ_E_PROTO, "in order");
    cr_assert_eq (s_count_parts (), 0);
    s_recv (c, s_chunk (c, hash, 0, p, 1000), &r);
    s_expect_error (&r, RXQ_E_STATE, NULL);
    //  Past the announced size.
    s_recv (c, s_put (c, hash, 3000), &r);
    s_reply_free (&r);
    s_recv (c, s_chunk (c, hash, 0, p, 3000), &r);
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL, "the whole blob in one chunk is fine");
    s_reply_free (&r);
    cr_assert (s_stored (hash));
    char other [65];
    s_hash (p, 2000, other);
    s_recv (c, s_put (c, other, 2000), &r);
    s_reply_free (&r);
    s_recv (c, s_chunk (c, other, 0, p, 2001), &r);
    s_expect_error (&r, RXQ_E_LIMIT, "past the announced size");
    //  A DATA without its data frame.
    s_recv (c, s_put (c, other, 2000), &r);
    s_reply_free (&r);
    s_recv (c, s_chunk (c, other, 0, NULL, 0), &r);
    s_expect_error (&r, RXQ_E_PROTO, "data frame");
    cr_assert_eq (s_count_parts (), 0);
    free (p);
    zsock_destroy (&c);
    s_close_store ();
}

Test (spec_9, bad_names_and_sizes_are_refused)
{
    s_open_store (true);
    zsock_t *c = tst_dealer ();
    s_reply_t r;
    s_recv (c, s_put (c, "not-a-hash", 10), &r);
    s_expect_error (&r, RXQ_E_PARAM, "64 lowercase hex");
    s_recv (c, s_put (c, "../../../../etc/passwd/00000000000000000000000000000000000000000000",
                      10), &r);
    s_expect_error (&r, RXQ_E_PARAM, NULL);
    char hash [65];
    s_hash ("x", 1, hash);
    s_recv (c, s_put (c, hash, RXQ_MAX_BLOB_BYTES + 1), &r);
    s_expect_error (&r, RXQ_E_LIMIT, "limit");
    //  A missing field.
    msgpack_sbuffer f;
    msgpack_packer pk;
    msgpack_sbuffer_init (&f);
    msgpack_packer_init (&pk, &f, msgpack_sbuffer_write);
    cmn_pack_kv_str (&pk, "hash", hash);
    s_recv (c, s_send (c, RXQ_CMD_BLOB_PUT, 1, &f, NULL, 0), &r);
    s_expect_error (&r, RXQ_E_PROTO, "size");
    //  A data frame on a command that takes none.
    s_recv (c, s_send (c, RXQ_CMD_BLOB_GET, 0, NULL, "x", 1), &r);
    s_expect_error (&r, RXQ_E_PROTO, "no data frame");
    zsock_destroy (&c);
    s_close_store ();
}

Test (spec_9, get_returns_chunks_and_says_what_is_wrong)
{
    s_open_store (true);
    zsock_t *c = tst_dealer ();
    size_t n = 200000;
    uint8_t *p = s_data (n, 4);
    char hash [65];
    s_hash (p, n, hash);
    s_reply_t r;
    s_recv (c, s_get (c, hash, 0, 1000), &r);
    s_expect_error (&r, RXQ_E_NOTFOUND, "rxq put");
    s_upload (c, p, n, hash);
    //  Chunks of 65536 bytes; the last is short.
    for (uint64_t off = 0; off < n; off += 65536) {
        s_recv (c, s_get (c, hash, off, 65536), &r);
        cr_assert_eq (r.cmd, RXQ_CMD_FINAL);
        uint64_t size = 0, length = 0, offset = 1;
        cmn_codec_get_uint (&r.body.root, "size", &size, NULL);
        cmn_codec_get_uint (&r.body.root, "length", &length, NULL);
        cmn_codec_get_uint (&r.body.root, "offset", &offset, NULL);
        size_t want = n - off < 65536 ? n - off : 65536;
        cr_assert_eq (size, n);
        cr_assert_eq (offset, off);
        cr_assert_eq (length, want);
        cr_assert_not_null (r.data);
        cr_assert_eq (zframe_size (r.data), want);
        cr_assert_eq (memcmp (zframe_data (r.data), p + off, want), 0);
        s_reply_free (&r);
    }
    //  At the end: an empty chunk; past it: an error.
    s_recv (c, s_get (c, hash, n, 10), &r);
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL);
    cr_assert_eq (r.data ? zframe_size (r.data) : 0, 0);
    s_reply_free (&r);
    s_recv (c, s_get (c, hash, n + 1, 10), &r);
    s_expect_error (&r, RXQ_E_LIMIT, "past the end");
    s_recv (c, s_get (c, hash, 0, 0), &r);
    s_expect_error (&r, RXQ_E_LIMIT, "length");
    s_recv (c, s_get (c, hash, 0, RXQ_MAX_CHUNK_BYTES + 1), &r);
    s_expect_error (&r, RXQ_E_LIMIT, "length");
    free (p);
    zsock_destroy (&c);
    s_close_store ();
}

Test (spec_9, broker_without_data_dir_refuses_blobs)
{
    s_open_store (false);
    zsock_t *c = tst_dealer ();
    char hash [65];
    s_hash ("x", 1, hash);
    s_reply_t r;
    s_recv (c, s_put (c, hash, 1), &r);
    s_expect_error (&r, RXQ_E_UNSUPPORTED, "--data-dir");
    s_recv (c, s_get (c, hash, 0, 1), &r);
    s_expect_error (&r, RXQ_E_UNSUPPORTED, "--data-dir");
    zsock_destroy (&c);
    s_close_store ();
}

Test (spec_9, leftover_part_files_are_removed_at_start)
{
    s_open_store (true);
    zsock_t *c = tst_dealer ();
    char hash [65];
    s_hash ("abc", 3, hash);
    s_reply_t r;
    s_recv (c, s_put (c, hash, 3), &r);
    s_reply_free (&r);
    s_recv (c, s_chunk (c, hash, 0, "ab", 2), &r);
    s_reply_free (&r);
    zsock_destroy (&c);
    //  A crash mid-upload: the part file stays until the next start.
    char keep [256];
    snprintf (keep, sizeof keep, "%s/blobs/tmp/%s.1.1.part", s_dir, hash);
    FILE *f = fopen (keep, "w");
    cr_assert_not_null (f);
    fclose (f);
    tst_broker_restart ();
    cr_assert_eq (s_count_parts (), 0);
    cr_assert_not (s_stored (hash));
    s_close_store ();
}

//  9.5: a job whose `model` names a blob is refused while the store lacks
//  it, accepted once it is there; a path is not checked.
Test (spec_9, submit_with_a_blob_model_needs_the_blob)
{
    s_open_store (true);
    zsock_t *c = tst_dealer ();
    char hash [65];
    s_hash ("model bytes", 11, hash);
    const char *models [] = { hash, hash, "/models/on/the/worker.gguf" };
    for (int i = 0; i < 3; i++) {
        if (i == 1)
            s_upload (c, (const uint8_t *) "model bytes", 11, hash);
        msgpack_sbuffer f;
        msgpack_packer pk;
        msgpack_sbuffer_init (&f);
        msgpack_packer_init (&pk, &f, msgpack_sbuffer_write);
        cmn_pack_kv_str (&pk, "kind", "quantize");
        cmn_pack_key (&pk, "params");
        msgpack_pack_map (&pk, 2);
        cmn_pack_kv_str (&pk, "model", models [i]);
        cmn_pack_kv_str (&pk, "type", "q8_0");
        s_reply_t r;
        s_recv (c, s_send (c, RXQ_CMD_SUBMIT, 2, &f, NULL, 0), &r);
        if (i == 0)
            s_expect_error (&r, RXQ_E_NOTFOUND, "rxq put");
        else {
            cr_assert_eq (r.cmd, RXQ_CMD_FINAL, "model %d refused", i);
            s_reply_free (&r);
        }
    }
    tst_pump (50);
    redisReply *rr = tst_redis_cmd (&tst_redis, "HGET rxq:test:blob:%s refs", hash);
    cr_assert_not_null (rr);
    cr_assert_str_eq (rr->str, "2", "one upload and one job name it");
    freeReplyObject (rr);
    zsock_destroy (&c);
    s_close_store ();
}

//  ---------------------------------------------------------------------
//  6.10: weights and affinity, with fake workers

//  READY from a fake worker that runs quantize on a device with 8 GiB,
//  holding MODEL (NULL: nothing) in its weight cache.
static zsock_t *
s_fake_worker (const char *name, const char *model)
{
    zsock_t *w = tst_dealer ();
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    cmn_pack_kv_str (&pk, "name", name);
    cmn_pack_kv_uint (&pk, "capacity", 1);
    cmn_pack_key (&pk, "kinds");
    msgpack_pack_array (&pk, 1);
    cmn_pack_cstr (&pk, "quantize");
    cmn_pack_key (&pk, "device");
    msgpack_pack_map (&pk, 2);
    cmn_pack_kv_str (&pk, "type", "gpu");
    cmn_pack_kv_uint (&pk, "global_mem", 8ull << 30);
    cmn_pack_key (&pk, "weights");
    msgpack_pack_array (&pk, model ? 1 : 0);
    if (model) {
        msgpack_pack_map (&pk, 3);
        cmn_pack_kv_str (&pk, "model", model);
        cmn_pack_kv_str (&pk, "type", "q8_0");
        cmn_pack_kv_uint (&pk, "bytes", 1 << 20);
    }
    tst_send_raw (w, RXQ_PROTO_WORKER, RXQ_CMD_READY, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    tst_pump (50);
    return w;
}

//  Submits quantize on MODEL; returns the job id in ID.
static void
s_submit_on (zsock_t *c, const char *model, char *id)
{
    msgpack_sbuffer f;
    msgpack_packer pk;
    msgpack_sbuffer_init (&f);
    msgpack_packer_init (&pk, &f, msgpack_sbuffer_write);
    cmn_pack_kv_str (&pk, "kind", "quantize");
    cmn_pack_key (&pk, "params");
    msgpack_pack_map (&pk, 2);
    cmn_pack_kv_str (&pk, "model", model);
    cmn_pack_kv_str (&pk, "type", "q4_0");
    s_reply_t r;
    s_recv (c, s_send (c, RXQ_CMD_SUBMIT, 2, &f, NULL, 0), &r);
    cr_assert_eq (r.cmd, RXQ_CMD_FINAL);
    cr_assert_eq (cmn_codec_get_cstr (&r.body.root, "id", id, 80, NULL), 0);
    s_reply_free (&r);
}

//  The id of the next JOB W receives within MS, or "" when none comes.
static void
s_job_on (zsock_t *w, int ms, char *id)
{
    id [0] = 0;
    int64_t end = zclock_mono () + ms;
    while (zclock_mono () < end) {
        if (zsock_events (w) & ZMQ_POLLIN) {
            zmsg_t *m = zmsg_recv (w);
            zframe_t *f = zmsg_first (m);
            f = zmsg_next (m);
            f = zmsg_next (m);
            int cmd = zframe_data (f) [0];
            f = zmsg_next (m);
            if (cmd == RXQ_CMD_JOB) {
                cmn_body_t b;
                cr_assert_eq (cmn_body_decode (&b, zframe_data (f), zframe_size (f),
                                               &cmn_codec_limits_default, NULL), 0);
                cmn_codec_get_cstr (&b.root, "id", id, 80, NULL);
                cmn_body_free (&b);
                zmsg_destroy (&m);
                return;
            }
            zmsg_destroy (&m);
            continue;
        }
        brk_broker_step (tst_broker, 5);
    }
}

Test (spec_6_10, next_job_on_a_model_goes_to_the_worker_that_holds_it)
{
    s_open_store (true);
    zsock_t *c = tst_dealer ();
    char m1 [65], m2 [65];
    s_hash ("model one", 9, m1);
    s_hash ("model two", 9, m2);
    s_upload (c, (const uint8_t *) "model one", 9, m1);
    s_upload (c, (const uint8_t *) "model two", 9, m2);
    zsock_t *a = s_fake_worker ("a", NULL);
    zsock_t *b = s_fake_worker ("b", m1);
    char id [80], got [80];

    //  B holds model one: its job goes to B, whatever the table order.
    s_submit_on (c, m1, id);
    s_job_on (b, 2000, got);
    cr_assert_str_eq (got, id, "the job on model one did not go to b, which holds it");
    s_job_on (a, 100, got);
    cr_assert_str_eq (got, "", "a got a job");
    tst_done (b, id, 1, true, 0, true);
    tst_pump (50);

    //  A reports (HEARTBEAT) that it now holds model two: its job goes to A.
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    cmn_pack_key (&pk, "weights");
    msgpack_pack_array (&pk, 1);
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_str (&pk, "model", m2);
    cmn_pack_kv_str (&pk, "type", "q4_k");
    cmn_pack_kv_uint (&pk, "bytes", 1 << 20);
    tst_send_raw (a, RXQ_PROTO_WORKER, RXQ_CMD_HEARTBEAT, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    tst_pump (50);
    s_submit_on (c, m2, id);
    s_job_on (a, 2000, got);
    cr_assert_str_eq (got, id, "the job on model two did not go to a, which holds it");

    //  A is busy now; a second job on model two does not wait for it.
    char id2 [80];
    s_submit_on (c, m2, id2);
    s_job_on (b, 2000, got);
    cr_assert_str_eq (got, id2, "a free worker takes it when the holder is busy");

    //  WORKERS shows what each holds.
    s_reply_t r;
    s_recv (c, s_send (c, RXQ_CMD_WORKERS, 0, NULL, NULL, 0), &r);
    char *json = cmn_codec_to_json (&r.body.root);
    cr_assert (strstr (json, m1) && strstr (json, m2), "%s", json);
    free (json);
    s_reply_free (&r);
    zsock_destroy (&a);
    zsock_destroy (&b);
    zsock_destroy (&c);
    s_close_store ();
}

//  ---------------------------------------------------------------------
//  brk_blobs alone: idle uploads

Test (brk_blobs, idle_upload_is_dropped_with_its_part_file)
{
    char dir [] = "/tmp/rxq-blobs-XXXXXX";
    cr_assert_not_null (mkdtemp (dir));
    snprintf (s_dir, sizeof s_dir, "%s", dir);
    cmn_err_t err = { 0 };
    brk_blobs_t *b = brk_blobs_new (dir, NULL, "rxq:test:", &err);
    cr_assert_not_null (b, "%s", err.msg);
    brk_blobs_set_idle_ms (b, 50);
    zsock_t *router = zsock_new_router ("inproc://blobs-idle");
    zsock_t *c = zsock_new_dealer ("inproc://blobs-idle");
    char hash [65];
    s_hash ("abc", 3, hash);
    s_put (c, hash, 3);
    zmsg_t *m = zmsg_recv (router);
    zframe_t *id = zmsg_pop (m);
    for (int i = 0; i < 3; i++) {
        zframe_t *f = zmsg_pop (m);
        zframe_destroy (&f);
    }
    zframe_t *body_f = zmsg_pop (m);
    cmn_body_t body;
    cr_assert_eq (cmn_body_decode (&body, zframe_data (body_f), zframe_size (body_f),
                                   &cmn_codec_limits_default, NULL), 0);
    brk_blobs_request (b, router, id, RXQ_CMD_BLOB_PUT, &body.root, NULL);
    cmn_body_free (&body);
    cr_assert_eq (brk_blobs_uploads (b), 1);
    cr_assert_eq (s_count_parts (), 1);
    brk_blobs_tick (b);
    cr_assert_eq (brk_blobs_uploads (b), 1, "not idle yet");
    zclock_sleep (120);
    brk_blobs_tick (b);
    cr_assert_eq (brk_blobs_uploads (b), 0);
    cr_assert_eq (s_count_parts (), 0);
    zframe_destroy (&id);
    zframe_destroy (&body_f);
    zmsg_destroy (&m);
    zsock_destroy (&c);
    zsock_destroy (&router);
    brk_blobs_destroy (&b);
    brk_blobs_destroy (&b);
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq (system (cmd), 0);
}

//  ---------------------------------------------------------------------
//  cmn_xfer against a broker in a thread

static volatile int s_stop;

static void *
s_broker_thread (void *arg)
{
    (void) arg;
    while (!s_stop)
        brk_broker_step (tst_broker, 10);
    return NULL;
}

static void
s_write_file (const char *path, const void *p, size_t n)
{
    FILE *f = fopen (path, "wb");
    cr_assert_not_null (f);
    cr_assert_eq (fwrite (p, 1, n, f), n);
    fclose (f);
}

static int s_progress_calls;

static int
s_stop_after_two (void *arg, uint64_t done, uint64_t total)
{
    (void) arg;
    cr_assert_leq (done, total);
    return ++s_progress_calls == 2 ? RXQ_E_CANCELLED : 0;
}

Test (cmn_xfer, put_and_get_keep_within_the_credit, .timeout = 60)
{
    s_open_store (true);
    pthread_t t;
    s_stop = 0;
    pthread_create (&t, NULL, s_broker_thread, NULL);
    size_t n = 9 * RXQ_MAX_CHUNK_BYTES + 12345;
    uint8_t *p = s_data (n, 5);
    char in [128], out [128], want [65], hash [65];
    snprintf (in, sizeof in, "%s/in.bin", s_dir);
    snprintf (out, sizeof out, "%s/out.bin", s_dir);
    s_write_file (in, p, n);
    s_hash (p, n, want);
    cmn_err_t err = { 0 };
    cmn_xfer_t *x = cmn_xfer_new (brk_broker_endpoint (tst_broker), &err);
    cr_assert_not_null (x, "%s", err.msg);
    uint64_t size = 0;
    bool sent = false;
    cr_assert_eq (cmn_xfer_put (x, in, hash, &size, &sent, &err), 0, "%s", err.msg);
    cr_assert_str_eq (hash, want);
    cr_assert_eq (size, n);
    cr_assert (sent);
    int peak = cmn_xfer_peak_in_flight (x);
    cr_assert (peak > 1 && peak <= BRK_BLOBS_CREDIT_DEFAULT, "peak %d chunks in flight", peak);
    //  Again: the broker has it, nothing is sent.
    cr_assert_eq (cmn_xfer_put (x, in, hash, &size, &sent, &err), 0, "%s", err.msg);
    cr_assert_not (sent);
    cr_assert_eq (cmn_xfer_peak_in_flight (x), 0);
    //  Download with a small window.
    cmn_xfer_set_window (x, 3, 256 * 1024);
    cr_assert_eq (cmn_xfer_get (x, hash, out, &size, &err), 0, "%s", err.msg);
    cr_assert_eq (size, n);
    cr_assert_eq (cmn_xfer_peak_in_flight (x), 3);
    char got [65];
    cr_assert_eq (cmn_blob_hash_file (out, got, NULL, NULL), 0);
    cr_assert_str_eq (got, want);
    //  A progress callback stops a download (a cancelled job): it fails
    //  with that code and leaves nothing.
    unlink (out);
    cmn_xfer_set_progress (x, s_stop_after_two, NULL);
    s_progress_calls = 0;
    cr_assert_eq (cmn_xfer_get (x, hash, out, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_CANCELLED, "%s", err.msg);
    cr_assert_eq (s_progress_calls, 2);
    cr_assert_neq (access (out, F_OK), 0);
    cmn_xfer_set_progress (x, NULL, NULL);
    //  Unknown blob: the broker's error, no file.
    char none [65];
    s_hash ("none", 4, none);
    cr_assert_eq (cmn_xfer_get (x, none, out, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_NOTFOUND);
    cr_assert (cmn_xfer_error_from_broker (x));
    cr_assert_neq (access (out, F_OK), 0);
    cr_assert_eq (cmn_xfer_get (x, "ABC", out, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
    //  A stored blob corrupted on the broker's disk: the download is
    //  refused by its hash, and nothing appears under the output name.
    char stored [256];
    snprintf (stored, sizeof stored, "%s/blobs/%.2s/%s", s_dir, hash, hash);
    FILE *f = fopen (stored, "r+b");
    cr_assert_not_null (f);
    fseek (f, 5 * RXQ_MAX_CHUNK_BYTES, SEEK_SET);
    fputc (~p [5 * RXQ_MAX_CHUNK_BYTES] & 0xff, f);
    fclose (f);
    cr_assert_eq (cmn_xfer_get (x, hash, out, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_IO_HASH, "%s", err.msg);
    cr_assert (strstr (err.msg, "mismatch"), "%s", err.msg);
    cr_assert_neq (access (out, F_OK), 0, "a failed download left %s", out);
    DIR *d = opendir (s_dir);
    struct dirent *de;
    while ((de = readdir (d)) != NULL)
        cr_assert_null (strstr (de->d_name, ".part"), "left %s", de->d_name);
    closedir (d);
    cmn_xfer_destroy (&x);
    cmn_xfer_destroy (&x);
    s_stop = 1;
    pthread_join (t, NULL);
    free (p);
    s_close_store ();
}

Test (cmn_xfer, silent_broker_is_unreachable)
{
    cmn_err_t err = { 0 };
    int port = tst_free_port ();
    char ep [64];
    snprintf (ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    cmn_xfer_t *x = cmn_xfer_new (ep, &err);
    cr_assert_not_null (x);
    cmn_xfer_set_timeout (x, 200);
    char hash [65];
    s_hash ("x", 1, hash);
    cr_assert_eq (cmn_xfer_get (x, hash, "/tmp/rxq-xfer-never", NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_UNREACHABLE);
    cr_assert_not (cmn_xfer_error_from_broker (x));
    cr_assert_neq (access ("/tmp/rxq-xfer-never", F_OK), 0);
    cmn_xfer_destroy (&x);
}
