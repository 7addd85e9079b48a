/*  cmn_xfer: see cmn_xfer.h. */
#include "cmn_xfer.h"
#include "cmn_codec.h"
#include "cmn_proto.h"
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct _cmn_xfer_t {
    zsock_t *sock;              // DEALER to the broker
    zpoller_t *poller;          // on sock
    char endpoint [256];        // as given
    int timeout_ms;             // silence that means unreachable
    int credit;                 // download chunks in flight
    size_t chunk;               // download chunk, bytes
    uint64_t next_req;          // next request id
    bool from_broker;           // last error was an ERROR reply
    int peak;                   // most chunks in flight in the last transfer
    cmn_xfer_progress_fn *progress;     // or NULL
    void *progress_arg;         // its argument
};

cmn_xfer_t *
cmn_xfer_new (const char *endpoint, cmn_err_t *err)
{
    assert (endpoint);
    cmn_xfer_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    snprintf (self->endpoint, sizeof self->endpoint, "%s", endpoint);
    self->timeout_ms = CMN_XFER_TIMEOUT_MS_DEFAULT;
    self->credit = CMN_XFER_CREDIT_DEFAULT;
    self->chunk = CMN_XFER_CHUNK_DEFAULT;
    self->next_req = 1;
    self->sock = zsock_new (ZMQ_DEALER);
    if (!self->sock) {
        cmn_err_set (err, RXQ_E_INTERNAL, "cannot create a ZeroMQ socket");
        free (self);
        return NULL;
    }
    zsock_set_linger (self->sock, 0);
    if (zsock_connect (self->sock, "%s", endpoint) < 0) {
        cmn_err_set (err, RXQ_E_INVAL, "cannot connect to '%s': %s (expected an endpoint such "
                     "as tcp://host:5555)", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&self->sock);
        free (self);
        return NULL;
    }
    self->poller = zpoller_new (self->sock, NULL);
    return self;
}

void
cmn_xfer_destroy (cmn_xfer_t **self_p)
{
    assert (self_p);
    cmn_xfer_t *self = *self_p;
    if (!self)
        return;
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->sock);
    free (self);
    *self_p = NULL;
}

void
cmn_xfer_set_timeout (cmn_xfer_t *self, int timeout_ms)
{
    assert (self && timeout_ms > 0);
    self->timeout_ms = timeout_ms;
}

void
cmn_xfer_set_window (cmn_xfer_t *self, int credit, size_t chunk)
{
    assert (self && credit >= 1 && credit <= RXQ_MAX_BLOB_CREDIT);
    assert (chunk >= 1 && chunk <= RXQ_MAX_CHUNK_BYTES);
    self->credit = credit;
    self->chunk = chunk;
}

void
cmn_xfer_set_progress (cmn_xfer_t *self, cmn_xfer_progress_fn *fn, void *arg)
{
    assert (self);
    self->progress = fn;
    self->progress_arg = arg;
}

bool
cmn_xfer_error_from_broker (cmn_xfer_t *self)
{
    return self->from_broker;
}

int
cmn_xfer_peak_in_flight (cmn_xfer_t *self)
{
    return self->peak;
}

//  ---------------------------------------------------------------------
//  Messages

//  Sends request COMMAND: BODY holds the packed fields after `req` (a map
//  of NFIELDS + 1 entries is written around them), DATA (may be NULL) a
//  data frame. Returns the request id.
static uint64_t
s_send (cmn_xfer_t *self, int command, int nfields, const msgpack_sbuffer *fields,
        const void *data, size_t len)
{
    uint64_t req = self->next_req++;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, (uint32_t) nfields + 1);
    cmn_pack_kv_uint (&pk, "req", req);
    msgpack_sbuffer_write (&sb, fields->data, fields->size);
    zmsg_t *m = zmsg_new ();
    uint8_t c = (uint8_t) command;
    zmsg_addmem (m, "", 0);
    zmsg_addstr (m, RXQ_PROTO_CLIENT);
    zmsg_addmem (m, &c, 1);
    zmsg_addmem (m, sb.data, sb.size);
    if (data)
        zmsg_addmem (m, data, len);
    msgpack_sbuffer_destroy (&sb);
    zmsg_send (&m, self->sock);
    return req;
}

//  A FINAL reply: the decoded body points into its frame, so both live
//  until s_reply_free.
typedef struct {
    cmn_body_t body;            // decoded body
    zframe_t *frame;            // the body's bytes
    zframe_t *data;             // the data frame, or NULL
} s_reply_t;

static void
s_reply_free (s_reply_t *r)
{
    cmn_body_free (&r->body);
    zframe_destroy (&r->frame);
    zframe_destroy (&r->data);
}

//  Waits for the reply to request REQ. Replies to a peer come in the order
//  of its requests, so REQ is always the oldest one in flight; a reply to
//  an older request (a transfer abandoned before) is dropped. Returns 0
//  with the FINAL in R (caller frees with s_reply_free); -1 with ERR set.
static int
s_recv (cmn_xfer_t *self, uint64_t req, s_reply_t *r, cmn_err_t *err)
{
    memset (r, 0, sizeof *r);
    for (;;) {
        void *which = zpoller_wait (self->poller, self->timeout_ms);
        if (!which) {
            if (zpoller_terminated (self->poller))
                return cmn_err_set (err, RXQ_E_CANCELLED, "interrupted");
            return cmn_err_set (err, RXQ_E_UNREACHABLE, "no answer from the broker at %s "
                                "within %d ms (is it running? see rxq up)", self->endpoint,
                                self->timeout_ms);
        }
        zmsg_t *m = zmsg_recv (self->sock);
        if (!m)
            return cmn_err_set (err, RXQ_E_IO, "receiving from the broker failed");
        zframe_t *empty = zmsg_pop (m), *header = zmsg_pop (m), *cmd_f = zmsg_pop (m),
                 *body_f = zmsg_pop (m);
        zframe_t *extra = zmsg_pop (m);
        int cmd = cmd_f && zframe_size (cmd_f) == 1 ? zframe_data (cmd_f) [0] : -1;
        bool valid = empty && zframe_size (empty) == 0 && header
                  && zframe_streq (header, RXQ_PROTO_CLIENT) && cmd >= 0 && body_f;
        cmn_body_t b;
        uint64_t got = 0;
        int rc = 1;         // 1: not ours, keep waiting
        if (valid && cmn_body_decode (&b, zframe_data (body_f), zframe_size (body_f),
                                      &cmn_codec_limits_default, NULL) == 0) {
            if (cmn_codec_get_uint (&b.root, "req", &got, NULL) == 0 && got == req) {
                if (cmd == RXQ_CMD_ERROR) {
                    uint64_t code = 0;
                    char msg [256] = "";
                    cmn_codec_get_uint (&b.root, "code", &code, NULL);
                    cmn_codec_get_cstr (&b.root, "message", msg, sizeof msg, NULL);
                    self->from_broker = true;
                    cmn_err_set (err, cmn_error_known ((int) code) && code ? (int) code
                                 : RXQ_E_PROTO, "%s", msg [0] ? msg : "the broker refused");
                    rc = -1;
                }
                else
                if (cmd == RXQ_CMD_FINAL) {
                    r->body = b;
                    r->frame = body_f;
                    r->data = extra;
                    body_f = extra = NULL;
                    rc = 0;
                }
            }
            if (rc != 0)
                cmn_body_free (&b);
        }
        zframe_destroy (&empty);
        zframe_destroy (&header);
        zframe_destroy (&cmd_f);
        zframe_destroy (&body_f);
        zframe_destroy (&extra);
        zmsg_destroy (&m);
        if (rc <= 0)
            return rc;
    }
}

static int
s_write_all (int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write (fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

//  Reads exactly LEN bytes (fewer only at end of file); returns the count
//  or -1.
static ssize_t
s_read_full (int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read (fd, (uint8_t *) buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t) n;
    }
    return (ssize_t) got;
}

//  ---------------------------------------------------------------------
//  Upload

int
cmn_xfer_put (cmn_xfer_t *self, const char *path, char hash [CMN_BLOB_HEX_LEN + 1],
              uint64_t *size_p, bool *sent, cmn_err_t *err)
{
    assert (self && path && hash);
    self->from_broker = false;
    self->peak = 0;
    if (sent)
        *sent = false;
    uint64_t size = 0;
    if (cmn_blob_hash_file (path, hash, &size, err))
        return -1;
    if (size_p)
        *size_p = size;

    msgpack_sbuffer f;
    msgpack_packer pk;
    msgpack_sbuffer_init (&f);
    msgpack_packer_init (&pk, &f, msgpack_sbuffer_write);
    cmn_pack_kv_str (&pk, "hash", hash);
    cmn_pack_kv_uint (&pk, "size", size);
    uint64_t req = s_send (self, RXQ_CMD_BLOB_PUT, 2, &f, NULL, 0);
    msgpack_sbuffer_destroy (&f);
    s_reply_t reply;
    if (s_recv (self, req, &reply, err))
        return -1;
    bool have = false;
    uint64_t chunk = 0, credit = 0;
    cmn_codec_get_bool (&reply.body.root, "have", &have, NULL);
    cmn_codec_get_uint (&reply.body.root, "chunk", &chunk, NULL);
    cmn_codec_get_uint (&reply.body.root, "credit", &credit, NULL);
    s_reply_free (&reply);
    if (have)
        return 0;
    if (chunk == 0 || chunk > RXQ_MAX_CHUNK_BYTES || credit == 0 || credit > RXQ_MAX_BLOB_CREDIT)
        return cmn_err_set (err, RXQ_E_PROTO, "the broker granted chunk %" PRIu64 " bytes and "
                            "credit %" PRIu64 ", outside 1..%u and 1..%d", chunk, credit,
                            RXQ_MAX_CHUNK_BYTES, RXQ_MAX_BLOB_CREDIT);

    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cmn_err_set (err, RXQ_E_IO, "cannot open %s: %s", path, strerror (errno));
    posix_fadvise (fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    uint8_t *buf = malloc (chunk);
    if (!buf) {
        close (fd);
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    }
    uint64_t offset = 0, acked = 0;
    uint64_t first = 0;         // oldest request in flight
    int in_flight = 0, rc = 0;
    bool complete = false;
    while (!complete) {
        //  Spend the credit: never more than CREDIT chunks unanswered.
        while (in_flight < (int) credit && offset < size) {
            size_t n = (size_t) (size - offset < chunk ? size - offset : chunk);
            ssize_t got = s_read_full (fd, buf, n);
            if (got != (ssize_t) n) {
                rc = cmn_err_set (err, RXQ_E_IO, "%s %s while it was being sent (at byte %"
                                  PRIu64 " of %" PRIu64 ")", path, got < 0 ? "became unreadable"
                                  : "shrank", offset, size);
                break;
            }
            msgpack_sbuffer_init (&f);
            msgpack_packer_init (&pk, &f, msgpack_sbuffer_write);
            cmn_pack_kv_str (&pk, "hash", hash);
            cmn_pack_kv_uint (&pk, "offset", offset);
            uint64_t r = s_send (self, RXQ_CMD_BLOB_DATA, 2, &f, buf, n);
            msgpack_sbuffer_destroy (&f);
            if (in_flight++ == 0)
                first = r;
            if (in_flight > self->peak)
                self->peak = in_flight;
            offset += n;
        }
        if (rc || in_flight == 0)
            break;
        if (s_recv (self, first, &reply, err)) {
            rc = -1;
            break;
        }
        uint64_t received = 0;
        cmn_codec_get_uint (&reply.body.root, "received", &received, NULL);
        cmn_codec_get_bool (&reply.body.root, "complete", &complete, NULL);
        s_reply_free (&reply);
        in_flight--;
        first++;
        if (received <= acked || received > size) {
            rc = cmn_err_set (err, RXQ_E_PROTO, "the broker acknowledged %" PRIu64 " bytes "
                              "after %" PRIu64 " of %" PRIu64, received, acked, size);
            break;
        }
        acked = received;
        int stop = self->progress ? self->progress (self->progress_arg, acked, size) : 0;
        if (stop) {
            rc = cmn_err_set (err, stop, "upload of %s stopped at byte %" PRIu64 " of %" PRIu64
                              ": %s", path, acked, size, cmn_error_message (stop));
            break;
        }
        if (complete != (acked == size)) {
            rc = cmn_err_set (err, RXQ_E_PROTO, "the broker said complete=%s at %" PRIu64
                              " of %" PRIu64 " bytes", complete ? "true" : "false", acked,
                              size);
            break;
        }
    }
    free (buf);
    close (fd);
    if (rc == 0 && sent)
        *sent = true;
    return rc;
}

//  ---------------------------------------------------------------------
//  Download

//  Checks one BLOB_GET reply for the chunk at OFFSET and writes its data.
static int
s_take_chunk (s_reply_t *reply, const char *hash, uint64_t offset, uint64_t *size, int fd,
              cmn_blob_hash_t *hasher, cmn_err_t *err)
{
    zframe_t *data = reply->data;
    uint64_t r_off = 0, r_len = 0, r_size = 0;
    if (cmn_codec_get_uint (&reply->body.root, "offset", &r_off, err)
    ||  cmn_codec_get_uint (&reply->body.root, "length", &r_len, err)
    ||  cmn_codec_get_uint (&reply->body.root, "size", &r_size, err))
        return cmn_err_set (err, RXQ_E_PROTO, "BLOB_GET reply for %s lacks offset, length or "
                            "size", hash);
    size_t dlen = data ? zframe_size (data) : 0;
    if (r_off != offset || r_len != dlen || (*size != UINT64_MAX && r_size != *size)
    ||  r_off + r_len > r_size)
        return cmn_err_set (err, RXQ_E_PROTO, "BLOB_GET reply for %s does not fit: offset %"
                            PRIu64 " (asked %" PRIu64 "), length %" PRIu64 " with %zu data "
                            "bytes, size %" PRIu64, hash, r_off, offset, r_len, dlen, r_size);
    *size = r_size;
    if (dlen) {
        if (s_write_all (fd, zframe_data (data), dlen))
            return cmn_err_set (err, RXQ_E_IO, "cannot write the download of %s: %s", hash,
                                strerror (errno));
        cmn_blob_hash_update (hasher, zframe_data (data), dlen);
    }
    return 0;
}

int
cmn_xfer_get (cmn_xfer_t *self, const char *hash, const char *path, uint64_t *size_p,
              cmn_err_t *err)
{
    assert (self && hash && path);
    self->from_broker = false;
    self->peak = 0;
    if (!cmn_blob_name_valid (hash, strlen (hash)))
        return cmn_err_set (err, RXQ_E_PARAM, "'%.80s' is not a blob name: expected 64 lowercase "
                            "hex digits (a SHA-256)", hash);
    static int counter = 0;
    char tmp [PATH_MAX];
    if (snprintf (tmp, sizeof tmp, "%s.part-%d-%d", path, (int) getpid (), ++counter)
        >= (int) sizeof tmp)
        return cmn_err_set (err, RXQ_E_INVAL, "output path is too long");
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return cmn_err_set (err, RXQ_E_IO, "cannot create %s: %s", tmp, strerror (errno));
    cmn_blob_hash_t hasher;
    cmn_blob_hash_init (&hasher);
    uint64_t size = UINT64_MAX;     // unknown until the first reply
    uint64_t next = 0;              // offset of the next request
    uint64_t done = 0;              // bytes written
    uint64_t first = 0;             // oldest request in flight
    uint64_t first_off = 0;         // its offset
    int in_flight = 0, rc = 0;
    msgpack_sbuffer f;
    msgpack_packer pk;
    for (;;) {
        //  The first request alone tells the size; then keep the credit
        //  spent: at most CREDIT requests outstanding.
        int window = size == UINT64_MAX ? 1 : self->credit;
        while (in_flight < window && (size == UINT64_MAX ? next == 0 : next < size)) {
            msgpack_sbuffer_init (&f);
            msgpack_packer_init (&pk, &f, msgpack_sbuffer_write);
            cmn_pack_kv_str (&pk, "hash", hash);
            cmn_pack_kv_uint (&pk, "offset", next);
            cmn_pack_kv_uint (&pk, "length", self->chunk);
            uint64_t r = s_send (self, RXQ_CMD_BLOB_GET, 3, &f, NULL, 0);
            msgpack_sbuffer_destroy (&f);
            if (in_flight++ == 0) {
                first = r;
                first_off = next;
            }
            if (in_flight > self->peak)
                self->peak = in_flight;
            next += self->chunk;
            if (size != UINT64_MAX && next > size)
                next = size;
        }
        if (in_flight == 0)
            break;
        s_reply_t reply;
        if (s_recv (self, first, &reply, err)) {
            rc = -1;
            break;
        }
        rc = s_take_chunk (&reply, hash, first_off, &size, fd, &hasher, err);
        if (reply.data)
            done += zframe_size (reply.data);
        s_reply_free (&reply);
        if (rc)
            break;
        in_flight--;
        first++;
        first_off += self->chunk;
        if (next > size)
            next = size;
        int stop = self->progress ? self->progress (self->progress_arg, done, size) : 0;
        if (stop) {
            rc = cmn_err_set (err, stop, "download of %s stopped at byte %" PRIu64 " of %"
                              PRIu64 ": %s", hash, done, size, cmn_error_message (stop));
            break;
        }
        if (done == size && in_flight == 0)
            break;
    }
    if (close (fd) < 0 && rc == 0)
        rc = cmn_err_set (err, RXQ_E_IO, "cannot write %s: %s", tmp, strerror (errno));
    if (rc == 0) {
        char got [CMN_BLOB_HEX_LEN + 1];
        cmn_blob_hash_final (&hasher, got);
        if (strcmp (got, hash) != 0)
            rc = cmn_err_set (err, RXQ_E_IO_HASH, "blob hash mismatch: asked for %s but the %"
                              PRIu64 " bytes received hash to %s; nothing was written to %s",
                              hash, done, got, path);
        else
        if (rename (tmp, path) < 0)
            rc = cmn_err_set (err, RXQ_E_IO, "cannot rename %s to %s: %s", tmp, path,
                              strerror (errno));
    }
    //  Replies still in flight after a failure are dropped by the next
    //  transfer: their request ids are older than any it waits for.
    if (rc)
        unlink (tmp);
    else
    if (size_p)
        *size_p = size;
    return rc;
}
