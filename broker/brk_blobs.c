/*  brk_blobs: see brk_blobs.h; the messages are in proto/rxq-protocol.md,
 *  section 9. */
#include "brk_blobs.h"
#include "cmn_codec.h"
#include "cmn_log.h"
#include "cmn_proto.h"
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  Longest store directory: leaves room in a PATH_MAX buffer for the
//  names appended to it.
#define DIR_MAX 3072

//  One upload in progress: chunks must arrive in order (a DEALER-ROUTER
//  connection keeps a peer's messages in order), so the hash is computed
//  as they come and no second pass over the file is needed.
typedef struct {
    char key [128];             // "<peer hex>/<hash>"
    char hash [CMN_BLOB_HEX_LEN + 1];   // announced name
    uint64_t size;              // announced size, bytes
    uint64_t received;          // bytes written so far
    int fd;                     // the .part file, open for writing
    char tmp [PATH_MAX];        // its path
    cmn_blob_hash_t hasher;     // SHA-256 of the bytes so far
    int64_t last_ms;            // monotonic ms of the last chunk
} s_upload_t;

struct _brk_blobs_t {
    char dir [DIR_MAX];         // DIR/blobs
    brk_store_t *store;         // Redis (borrowed), or NULL
    char prefix [160];          // "rxq:<cluster>:"
    zhashx_t *uploads;          // key -> s_upload_t (owned)
    uint64_t counter;           // makes .part names unique
    int64_t idle_ms;            // idle limit of an upload
};

static void
s_upload_free (void **item)
{
    s_upload_t *u = *item;
    if (u) {
        if (u->fd >= 0)
            close (u->fd);
        if (u->tmp [0])
            unlink (u->tmp);
        free (u);
    }
    *item = NULL;
}

static int
s_mkdir (const char *path, cmn_err_t *err)
{
    if (mkdir (path, 0755) < 0 && errno != EEXIST)
        return cmn_err_set (err, RXQ_E_IO, "cannot create directory %s: %s", path,
                            strerror (errno));
    return 0;
}

//  mkdir -p for the data directory itself (it may be nested and new).
static int
s_mkdirs (const char *dir, cmn_err_t *err)
{
    char path [PATH_MAX];
    if (snprintf (path, sizeof path, "%s", dir) >= (int) sizeof path)
        return cmn_err_set (err, RXQ_E_INVAL, "data directory path is too long");
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (s_mkdir (path, err))
                return -1;
            *p = '/';
        }
    return s_mkdir (path, err);
}

brk_blobs_t *
brk_blobs_new (const char *dir, brk_store_t *store, const char *prefix, cmn_err_t *err)
{
    assert (dir && prefix);
    brk_blobs_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    self->store = store;
    snprintf (self->prefix, sizeof self->prefix, "%s", prefix);
    self->idle_ms = BRK_BLOBS_IDLE_MS_DEFAULT;
    if (strlen (dir) + 8 >= sizeof self->dir) {
        cmn_err_set (err, RXQ_E_INVAL, "data directory path is too long");
        free (self);
        return NULL;
    }
    snprintf (self->dir, sizeof self->dir, "%s/blobs", dir);
    char tmp [DIR_MAX + 8];
    snprintf (tmp, sizeof tmp, "%s/tmp", self->dir);
    if (s_mkdirs (self->dir, err) || s_mkdir (tmp, err)) {
        free (self);
        return NULL;
    }
    if (access (tmp, W_OK) < 0) {
        cmn_err_set (err, RXQ_E_IO, "cannot write to %s: %s", tmp, strerror (errno));
        free (self);
        return NULL;
    }
    //  Uploads cut short by a crash or kill: never complete, never named.
    DIR *d = opendir (tmp);
    if (d) {
        struct dirent *de;
        int removed = 0;
        while ((de = readdir (d)) != NULL) {
            size_t n = strlen (de->d_name);
            if (n > 5 && strcmp (de->d_name + n - 5, ".part") == 0) {
                char path [PATH_MAX];
                snprintf (path, sizeof path, "%s/%.200s", tmp, de->d_name);
                if (unlink (path) == 0)
                    removed++;
            }
        }
        closedir (d);
        if (removed)
            cmn_log_info ("blob store: removed %d unfinished upload(s) from %s", removed, tmp);
    }
    self->uploads = zhashx_new ();
    if (!self->uploads) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->uploads, s_upload_free);
    return self;
}

void
brk_blobs_destroy (brk_blobs_t **self_p)
{
    assert (self_p);
    brk_blobs_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->uploads);
    free (self);
    *self_p = NULL;
}

void
brk_blobs_set_idle_ms (brk_blobs_t *self, int64_t idle_ms)
{
    assert (self && idle_ms > 0);
    self->idle_ms = idle_ms;
}

size_t
brk_blobs_uploads (brk_blobs_t *self)
{
    return zhashx_size (self->uploads);
}

static void
s_blob_path (brk_blobs_t *self, const char *hash, char *path, size_t size)
{
    snprintf (path, size, "%s/%.2s/%s", self->dir, hash, hash);
}

bool
brk_blobs_has (brk_blobs_t *self, const char *hash, uint64_t *size)
{
    assert (self && hash);
    if (!cmn_blob_name_valid (hash, strlen (hash)))
        return false;
    char path [PATH_MAX];
    s_blob_path (self, hash, path, sizeof path);
    struct stat st;
    if (stat (path, &st) < 0 || !S_ISREG (st.st_mode))
        return false;
    if (size)
        *size = (uint64_t) st.st_size;
    return true;
}

void
brk_blobs_ref (brk_blobs_t *self, const char *hash)
{
    assert (self && hash);
    if (self->store)
        brk_store_append (self->store, "HINCRBY %sblob:%s refs 1", self->prefix, hash);
}

//  Metadata of a blob that was just stored or announced again (Redis keys
//  in docs/redis.md). Appended to the broker's pipeline: the disk, not
//  Redis, says what exists, so a lost write only loses the bookkeeping.
static void
s_record (brk_blobs_t *self, const char *hash, uint64_t size)
{
    if (!self->store)
        return;
    int64_t now = zclock_time ();
    brk_store_append (self->store, "HSET %sblob:%s size %" PRIu64, self->prefix, hash, size);
    brk_store_append (self->store, "HSETNX %sblob:%s created_ms %" PRId64, self->prefix,
                      hash, now);
    brk_store_append (self->store, "HINCRBY %sblob:%s refs 1", self->prefix, hash);
    brk_store_append (self->store, "ZADD %sblobs NX %" PRId64 " %s", self->prefix, now, hash);
}

//  ---------------------------------------------------------------------
//  Replies

//  Sends [identity][empty][RXQC01][cmd][body][data?]; takes DATA.
static void
s_send (zsock_t *router, zframe_t *identity, int cmd, cmn_packbuf_t *b, zframe_t **data)
{
    zmsg_t *m = zmsg_new ();
    uint8_t c = (uint8_t) cmd;
    zmsg_append (m, &(zframe_t *) { zframe_dup (identity) });
    zmsg_addmem (m, "", 0);
    zmsg_addstr (m, RXQ_PROTO_CLIENT);
    zmsg_addmem (m, &c, 1);
    zmsg_addmem (m, b->sb.data, b->sb.size);
    msgpack_sbuffer_destroy (&b->sb);
    if (data && *data)
        zmsg_append (m, data);
    zmsg_send (&m, router);
}

static void
s_error (zsock_t *router, zframe_t *identity, uint64_t req, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));

static void
s_error (zsock_t *router, zframe_t *identity, uint64_t req, int code, const char *fmt, ...)
{
    char msg [320];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 4);
    cmn_pack_kv_uint (&b.pk, "req", req);
    cmn_pack_kv_uint (&b.pk, "code", (uint64_t) code);
    cmn_pack_kv_str (&b.pk, "name", cmn_error_name (code));
    cmn_pack_kv_str (&b.pk, "message", msg);
    s_send (router, identity, RXQ_CMD_ERROR, &b, NULL);
}

//  Reads the `hash` field into HASH, or says why not.
static int
s_get_hash (const msgpack_object *body, char hash [CMN_BLOB_HEX_LEN + 1], cmn_err_t *err)
{
    const char *s = NULL;
    size_t n = 0;
    int rc = cmn_codec_get_str (body, "hash", &s, &n, err);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return cmn_err_set (err, RXQ_E_PROTO, "missing field 'hash'");
    if (!cmn_blob_name_valid (s, n))
        return cmn_err_set (err, RXQ_E_PARAM, "field 'hash' must be 64 lowercase hex digits "
                            "(a SHA-256), got %zu bytes", n);
    memcpy (hash, s, n);
    hash [n] = 0;
    return 0;
}

static void
s_upload_key (zframe_t *identity, const char *hash, char *key, size_t size)
{
    char *hex = zframe_strhex (identity);
    snprintf (key, size, "%.40s/%.64s", hex ? hex : "?", hash);
    free (hex);
}

//  Moves a fully received upload to its name, once the hash matches.
static int
s_complete (brk_blobs_t *self, s_upload_t *u, cmn_err_t *err)
{
    char got [CMN_BLOB_HEX_LEN + 1];
    cmn_blob_hash_final (&u->hasher, got);
    if (strcmp (got, u->hash) != 0)
        return cmn_err_set (err, RXQ_E_IO_HASH, "blob hash mismatch: the upload was announced as "
                            "%s but its %" PRIu64 " bytes hash to %s; nothing was stored",
                            u->hash, u->size, got);
    close (u->fd);
    u->fd = -1;
    char dir [DIR_MAX + 8], path [PATH_MAX];
    snprintf (dir, sizeof dir, "%s/%.2s", self->dir, u->hash);
    if (s_mkdir (dir, err))
        return -1;
    s_blob_path (self, u->hash, path, sizeof path);
    if (rename (u->tmp, path) < 0)
        return cmn_err_set (err, RXQ_E_IO, "cannot store blob %s: rename to %s: %s", u->hash,
                            path, strerror (errno));
    u->tmp [0] = 0;
    s_record (self, u->hash, u->size);
    cmn_log_info ("blob %s stored (%" PRIu64 " bytes)", u->hash, u->size);
    return 0;
}

static s_upload_t *
s_upload_new (brk_blobs_t *self, const char *key, const char *hash, uint64_t size,
              cmn_err_t *err)
{
    s_upload_t *u = calloc (1, sizeof *u);
    if (!u) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    snprintf (u->key, sizeof u->key, "%s", key);
    snprintf (u->hash, sizeof u->hash, "%s", hash);
    u->size = size;
    u->last_ms = zclock_mono ();
    cmn_blob_hash_init (&u->hasher);
    snprintf (u->tmp, sizeof u->tmp, "%s/tmp/%s.%d.%" PRIu64 ".part", self->dir, hash,
              (int) getpid (), ++self->counter);
    u->fd = open (u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (u->fd < 0) {
        cmn_err_set (err, RXQ_E_IO, "cannot create %s: %s", u->tmp, strerror (errno));
        u->tmp [0] = 0;
        free (u);
        return NULL;
    }
    return u;
}

//  ---------------------------------------------------------------------
//  Requests

static void
s_on_put (brk_blobs_t *self, zsock_t *router, zframe_t *identity, uint64_t req,
          const msgpack_object *body)
{
    cmn_err_t err = { 0 };
    char hash [CMN_BLOB_HEX_LEN + 1];
    uint64_t size = 0;
    if (s_get_hash (body, hash, &err)) {
        s_error (router, identity, req, err.code, "%s", err.msg);
        return;
    }
    int rc = cmn_codec_get_uint (body, "size", &size, &err);
    if (rc != 0) {
        s_error (router, identity, req, rc < 0 ? err.code : RXQ_E_PROTO, "%s",
                 rc < 0 ? err.msg : "missing field 'size'");
        return;
    }
    if (size > RXQ_MAX_BLOB_BYTES) {
        s_error (router, identity, req, RXQ_E_LIMIT, "blob of %" PRIu64 " bytes is over the "
                 "limit of %llu bytes", size, (unsigned long long) RXQ_MAX_BLOB_BYTES);
        return;
    }
    char key [128];
    s_upload_key (identity, hash, key, sizeof key);
    //  A new announcement of the same blob from the same peer restarts it.
    zhashx_delete (self->uploads, key);
    uint64_t have = 0;
    bool exists = brk_blobs_has (self, hash, &have);
    if (exists && have != size) {
        s_error (router, identity, req, RXQ_E_IO_HASH, "blob %s is stored with %" PRIu64
                 " bytes, but the upload announces %" PRIu64 ": the file changed or the hash "
                 "is wrong", hash, have, size);
        return;
    }
    if (!exists && size == 0) {
        //  The empty blob: nothing to send; store it at once if the name
        //  is right.
        s_upload_t *u = s_upload_new (self, key, hash, 0, &err);
        if (!u || s_complete (self, u, &err)) {
            s_error (router, identity, req, err.code, "%s", err.msg);
            if (u)
                s_upload_free ((void **) &u);
            return;
        }
        s_upload_free ((void **) &u);
        exists = true;
    }
    else
    if (exists)
        s_record (self, hash, size);
    else {
        if (zhashx_size (self->uploads) >= BRK_BLOBS_UPLOADS_MAX) {
            s_error (router, identity, req, RXQ_E_UNAVAILABLE, "the broker has %d uploads in "
                     "progress; try again later", BRK_BLOBS_UPLOADS_MAX);
            return;
        }
        s_upload_t *u = s_upload_new (self, key, hash, size, &err);
        if (!u) {
            s_error (router, identity, req, err.code, "%s", err.msg);
            return;
        }
        zhashx_insert (self->uploads, key, u);
    }
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, exists ? 4 : 6);
    cmn_pack_kv_uint (&b.pk, "req", req);
    cmn_pack_kv_str (&b.pk, "hash", hash);
    cmn_pack_kv_uint (&b.pk, "size", size);
    cmn_pack_kv_bool (&b.pk, "have", exists);
    if (!exists) {
        cmn_pack_kv_uint (&b.pk, "chunk", BRK_BLOBS_CHUNK_DEFAULT);
        cmn_pack_kv_uint (&b.pk, "credit", BRK_BLOBS_CREDIT_DEFAULT);
    }
    s_send (router, identity, RXQ_CMD_FINAL, &b, NULL);
}

static void
s_on_data (brk_blobs_t *self, zsock_t *router, zframe_t *identity, uint64_t req,
           const msgpack_object *body, zframe_t *data)
{
    cmn_err_t err = { 0 };
    char hash [CMN_BLOB_HEX_LEN + 1];
    uint64_t offset = 0;
    if (s_get_hash (body, hash, &err)) {
        s_error (router, identity, req, err.code, "%s", err.msg);
        return;
    }
    int rc = cmn_codec_get_uint (body, "offset", &offset, &err);
    if (rc != 0) {
        s_error (router, identity, req, rc < 0 ? err.code : RXQ_E_PROTO, "%s",
                 rc < 0 ? err.msg : "missing field 'offset'");
        return;
    }
    char key [128];
    s_upload_key (identity, hash, key, sizeof key);
    s_upload_t *u = zhashx_lookup (self->uploads, key);
    if (!u) {
        s_error (router, identity, req, RXQ_E_STATE, "no upload of blob %s is in progress "
                 "from this peer: send BLOB_PUT first", hash);
        return;
    }
    size_t len = data ? zframe_size (data) : 0;
    if (!data || len == 0 || len > BRK_BLOBS_CHUNK_DEFAULT) {
        s_error (router, identity, req, RXQ_E_PROTO, "BLOB_DATA needs a data frame of 1 to %u "
                 "bytes, got %zu; upload of %s abandoned", BRK_BLOBS_CHUNK_DEFAULT, len, hash);
        zhashx_delete (self->uploads, key);
        return;
    }
    if (offset != u->received) {
        s_error (router, identity, req, RXQ_E_PROTO, "chunk at offset %" PRIu64 " but %" PRIu64
                 " bytes were received: chunks must be sent in order; upload of %s abandoned",
                 offset, u->received, hash);
        zhashx_delete (self->uploads, key);
        return;
    }
    if (len > u->size - u->received) {
        s_error (router, identity, req, RXQ_E_LIMIT, "chunk ends at byte %" PRIu64 ", past the "
                 "announced size %" PRIu64 "; upload of %s abandoned", offset + len, u->size,
                 hash);
        zhashx_delete (self->uploads, key);
        return;
    }
    const uint8_t *p = zframe_data (data);
    size_t left = len;
    off_t at = (off_t) offset;
    while (left) {
        ssize_t n = pwrite (u->fd, p, left, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s_error (router, identity, req, RXQ_E_IO, "cannot write blob %s on the broker: %s; "
                     "upload abandoned", hash, n < 0 ? strerror (errno) : "short write");
            zhashx_delete (self->uploads, key);
            return;
        }
        p += n;
        at += n;
        left -= (size_t) n;
    }
    cmn_blob_hash_update (&u->hasher, zframe_data (data), len);
    u->received += len;
    u->last_ms = zclock_mono ();
    bool complete = u->received == u->size;
    if (complete && s_complete (self, u, &err)) {
        s_error (router, identity, req, err.code, "%s", err.msg);
        zhashx_delete (self->uploads, key);
        return;
    }
    uint64_t received = u->received;
    if (complete)
        zhashx_delete (self->uploads, key);
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 4);
    cmn_pack_kv_uint (&b.pk, "req", req);
    cmn_pack_kv_str (&b.pk, "hash", hash);
    cmn_pack_kv_uint (&b.pk, "received", received);
    cmn_pack_kv_bool (&b.pk, "complete", complete);
    s_send (router, identity, RXQ_CMD_FINAL, &b, NULL);
}

static void
s_on_get (brk_blobs_t *self, zsock_t *router, zframe_t *identity, uint64_t req,
          const msgpack_object *body)
{
    cmn_err_t err = { 0 };
    char hash [CMN_BLOB_HEX_LEN + 1];
    uint64_t offset = 0, length = RXQ_MAX_CHUNK_BYTES;
    if (s_get_hash (body, hash, &err)
    ||  cmn_codec_get_uint (body, "offset", &offset, &err) < 0
    ||  cmn_codec_get_uint (body, "length", &length, &err) < 0) {
        s_error (router, identity, req, err.code, "%s", err.msg);
        return;
    }
    if (length == 0 || length > RXQ_MAX_CHUNK_BYTES) {
        s_error (router, identity, req, RXQ_E_LIMIT, "field 'length' must be 1 to %u bytes, "
                 "not %" PRIu64, RXQ_MAX_CHUNK_BYTES, length);
        return;
    }
    char path [PATH_MAX];
    s_blob_path (self, hash, path, sizeof path);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            s_error (router, identity, req, RXQ_E_NOTFOUND, "no blob %s in the broker's store "
                     "(upload it with: rxq put FILE)", hash);
        else
            s_error (router, identity, req, RXQ_E_IO, "cannot open blob %s: %s", hash,
                     strerror (errno));
        return;
    }
    struct stat st;
    if (fstat (fd, &st) < 0) {
        s_error (router, identity, req, RXQ_E_IO, "cannot stat blob %s: %s", hash,
                 strerror (errno));
        close (fd);
        return;
    }
    uint64_t size = (uint64_t) st.st_size;
    if (offset > size) {
        s_error (router, identity, req, RXQ_E_LIMIT, "offset %" PRIu64 " is past the end of "
                 "blob %s (%" PRIu64 " bytes)", offset, hash, size);
        close (fd);
        return;
    }
    size_t n = (size_t) (size - offset < length ? size - offset : length);
    //  Read straight into the frame that goes out: one chunk of memory.
    zframe_t *data = zframe_new (NULL, n);
    size_t got = 0;
    while (data && got < n) {
        ssize_t r = pread (fd, zframe_data (data) + got, n - got, (off_t) (offset + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t) r;
    }
    close (fd);
    if (!data || got != n) {
        s_error (router, identity, req, data ? RXQ_E_IO : RXQ_E_NOMEM, "cannot read blob %s at "
                 "offset %" PRIu64 "%s", hash, offset, data ? "" : ": out of memory");
        zframe_destroy (&data);
        return;
    }
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    msgpack_pack_map (&b.pk, 5);
    cmn_pack_kv_uint (&b.pk, "req", req);
    cmn_pack_kv_str (&b.pk, "hash", hash);
    cmn_pack_kv_uint (&b.pk, "size", size);
    cmn_pack_kv_uint (&b.pk, "offset", offset);
    cmn_pack_kv_uint (&b.pk, "length", n);
    s_send (router, identity, RXQ_CMD_FINAL, &b, &data);
}

void
brk_blobs_request (brk_blobs_t *self, zsock_t *router, zframe_t *identity, int command,
                   const msgpack_object *body, zframe_t *data)
{
    assert (self && router && identity && body);
    uint64_t req = 0;
    cmn_err_t err = { 0 };
    if (cmn_codec_get_uint (body, "req", &req, &err) != 0) {
        s_error (router, identity, 0, RXQ_E_PROTO, "%s",
                 err.code ? err.msg : "request has no 'req' field");
        return;
    }
    if (data && command != RXQ_CMD_BLOB_DATA) {
        s_error (router, identity, req, RXQ_E_PROTO, "%s carries no data frame",
                 cmn_proto_command_name (command));
        return;
    }
    switch (command) {
        case RXQ_CMD_BLOB_PUT:  s_on_put (self, router, identity, req, body); break;
        case RXQ_CMD_BLOB_DATA: s_on_data (self, router, identity, req, body, data); break;
        case RXQ_CMD_BLOB_GET:  s_on_get (self, router, identity, req, body); break;
        default:
            assert (false);
    }
}

void
brk_blobs_tick (brk_blobs_t *self)
{
    assert (self);
    int64_t now = zclock_mono ();
    zlist_t *expired = zlist_new ();
    for (s_upload_t *u = zhashx_first (self->uploads); u; u = zhashx_next (self->uploads))
        if (now - u->last_ms > self->idle_ms)
            zlist_append (expired, u->key);
    for (char *key = zlist_first (expired); key; key = zlist_next (expired)) {
        cmn_log_warn ("blob upload %s idle for over %" PRId64 " ms: dropped", key, self->idle_ms);
        zhashx_delete (self->uploads, key);
    }
    zlist_destroy (&expired);
}
