/*  wrk_blobs: see wrk_blobs.h. */
#include "wrk_blobs.h"
#include "cmn_log.h"
#include <assert.h>
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  Longest cache directory: leaves room in a PATH_MAX buffer for names.
#define DIR_MAX 3072

typedef struct {
    char hash [CMN_BLOB_HEX_LEN + 1];   // name
    uint64_t size;                      // bytes
    int64_t used_ns;                    // last use (the file's mtime), ns
} s_entry_t;

struct _wrk_blobs_t {
    char dir [DIR_MAX];         // the cache directory
    uint64_t cap;               // size cap, bytes
    uint64_t bytes;             // total size of the entries
    zhashx_t *entries;          // hash -> s_entry_t (owned)
    cmn_xfer_t *xfer;           // transfers to and from the broker
    uint64_t counter;           // makes tmp names unique
};

static void
s_entry_free (void **item)
{
    free (*item);
    *item = NULL;
}

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
s_path (wrk_blobs_t *self, const char *hash, char *path, size_t size)
{
    snprintf (path, size, "%s/%s", self->dir, hash);
}

//  Marks E used now, in memory and in the file's mtime.
static void
s_touch (wrk_blobs_t *self, s_entry_t *e)
{
    e->used_ns = s_now_ns ();
    char path [PATH_MAX];
    s_path (self, e->hash, path, sizeof path);
    struct timespec times [2] = { { 0, UTIME_OMIT }, { (time_t) (e->used_ns / 1000000000),
                                                      (long) (e->used_ns % 1000000000) } };
    utimensat (AT_FDCWD, path, times, 0);
}

//  Evicts least recently used blobs, never KEEP (may be NULL), until the
//  total is within the cap.
static void
s_evict (wrk_blobs_t *self, const char *keep)
{
    while (self->bytes > self->cap) {
        s_entry_t *oldest = NULL;
        for (s_entry_t *e = zhashx_first (self->entries); e; e = zhashx_next (self->entries))
            if ((!keep || strcmp (e->hash, keep) != 0)
            &&  (!oldest || e->used_ns < oldest->used_ns))
                oldest = e;
        if (!oldest)
            break;
        char path [PATH_MAX];
        s_path (self, oldest->hash, path, sizeof path);
        if (unlink (path) < 0 && errno != ENOENT)
            cmn_log_warn ("blob cache: cannot remove %s: %s", path, strerror (errno));
        cmn_log_info ("blob cache: evicted %s (%" PRIu64 " bytes) to stay under %" PRIu64
                      " bytes", oldest->hash, oldest->size, self->cap);
        self->bytes -= oldest->size;
        zhashx_delete (self->entries, oldest->hash);
    }
}

//  True when NAME is work in progress of a process that is gone: NAME
//  holds "<pid>-" right after MARKER ("" for the start of NAME). Workers
//  on one machine may share a cache directory; a live one's files stay.
static bool
s_abandoned (const char *name, const char *marker)
{
    const char *p = *marker ? strstr (name, marker) : name;
    if (!p)
        return false;
    p += strlen (marker);
    char *end = NULL;
    long pid = strtol (p, &end, 10);
    if (end == p || *end != '-' || pid <= 0)
        return true;
    return kill ((pid_t) pid, 0) < 0 && errno == ESRCH;
}

static s_entry_t *
s_add (wrk_blobs_t *self, const char *hash, uint64_t size, int64_t used_ns)
{
    s_entry_t *e = zhashx_lookup (self->entries, hash);
    if (e) {
        self->bytes -= e->size;
        e->size = size;
    }
    else {
        e = calloc (1, sizeof *e);
        if (!e)
            return NULL;
        snprintf (e->hash, sizeof e->hash, "%s", hash);
        e->size = size;
        zhashx_insert (self->entries, hash, e);
    }
    e->used_ns = used_ns;
    self->bytes += size;
    return e;
}

wrk_blobs_t *
wrk_blobs_new (const char *dir, uint64_t cap_bytes, const char *endpoint, cmn_err_t *err)
{
    assert (dir && endpoint && cap_bytes > 0);
    if (strlen (dir) + 8 >= DIR_MAX) {
        cmn_err_set (err, RXQ_E_INVAL, "blob cache directory path is too long");
        return NULL;
    }
    wrk_blobs_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    self->cap = cap_bytes;
    self->entries = zhashx_new ();
    if (!self->entries) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->entries, s_entry_free);
    char tmp [DIR_MAX + 8];
    snprintf (tmp, sizeof tmp, "%s/tmp", self->dir);
    //  mkdir -p DIR, then DIR/tmp.
    char path [DIR_MAX];
    snprintf (path, sizeof path, "%s", self->dir);
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir (path, 0755);
            *p = '/';
        }
    if ((mkdir (self->dir, 0755) < 0 && errno != EEXIST)
    ||  (mkdir (tmp, 0755) < 0 && errno != EEXIST) || access (tmp, W_OK) < 0) {
        cmn_err_set (err, RXQ_E_IO, "cannot use %s as the blob cache: %s", self->dir,
                     strerror (errno));
        wrk_blobs_destroy (&self);
        return NULL;
    }
    //  Work in progress from an earlier run never completed.
    DIR *d = opendir (tmp);
    struct dirent *de;
    while (d && (de = readdir (d)) != NULL)
        if (de->d_name [0] != '.' && s_abandoned (de->d_name, "")) {
            char f [PATH_MAX];
            snprintf (f, sizeof f, "%s/%.200s", tmp, de->d_name);
            unlink (f);
        }
    if (d)
        closedir (d);
    //  Index what an earlier run left.
    d = opendir (self->dir);
    while (d && (de = readdir (d)) != NULL) {
        char f [PATH_MAX];
        s_path (self, de->d_name, f, sizeof f);
        if (strstr (de->d_name, ".part-")) {
            if (s_abandoned (de->d_name, ".part-"))
                unlink (f);     // a download cut short (cmn_xfer_get)
            continue;
        }
        if (!cmn_blob_name_valid (de->d_name, strlen (de->d_name)))
            continue;
        struct stat st;
        if (stat (f, &st) == 0 && S_ISREG (st.st_mode))
            s_add (self, de->d_name, (uint64_t) st.st_size,
                   (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
    }
    if (d)
        closedir (d);
    s_evict (self, NULL);
    self->xfer = cmn_xfer_new (endpoint, err);
    if (!self->xfer) {
        wrk_blobs_destroy (&self);
        return NULL;
    }
    //  A worker fetches while its main thread heartbeats: a broker busy
    //  with other transfers may take a while to answer one chunk.
    cmn_xfer_set_timeout (self->xfer, 30000);
    cmn_log_info ("blob cache %s: %zu blob(s), %" PRIu64 " of %" PRIu64 " bytes", self->dir,
                  zhashx_size (self->entries), self->bytes, self->cap);
    return self;
}

void
wrk_blobs_destroy (wrk_blobs_t **self_p)
{
    assert (self_p);
    wrk_blobs_t *self = *self_p;
    if (!self)
        return;
    cmn_xfer_destroy (&self->xfer);
    zhashx_destroy (&self->entries);
    free (self);
    *self_p = NULL;
}

int
wrk_blobs_tmp_path (wrk_blobs_t *self, const char *suffix, char *path, size_t path_size)
{
    assert (self && suffix && path);
    int n = snprintf (path, path_size, "%s/tmp/%d-%" PRIu64 "%s", self->dir, (int) getpid (),
                      ++self->counter, suffix);
    return n < 0 || (size_t) n >= path_size ? -1 : 0;
}

int
wrk_blobs_fetch (wrk_blobs_t *self, const char *hash, char *path, size_t path_size,
                 bool *hit, cmn_xfer_progress_fn *progress, void *arg, cmn_err_t *err)
{
    assert (self && hash && path);
    if (hit)
        *hit = false;
    if (!cmn_blob_name_valid (hash, strlen (hash)))
        return cmn_err_set (err, RXQ_E_PARAM, "'%.80s' is not a blob name (64 lowercase hex "
                            "digits)", hash);
    if ((size_t) snprintf (path, path_size, "%s/%s", self->dir, hash) >= path_size)
        return cmn_err_set (err, RXQ_E_INVAL, "blob path does not fit");
    s_entry_t *e = zhashx_lookup (self->entries, hash);
    if (e && access (path, R_OK) == 0) {
        s_touch (self, e);
        if (hit)
            *hit = true;
        return 0;
    }
    if (e) {
        //  Removed behind our back: forget it and fetch again.
        self->bytes -= e->size;
        zhashx_delete (self->entries, hash);
    }
    //  cmn_xfer writes PATH.part-* beside PATH and renames only a verified
    //  blob to PATH; the index is only updated after that.
    cmn_xfer_set_progress (self->xfer, progress, arg);
    uint64_t size = 0;
    int rc = cmn_xfer_get (self->xfer, hash, path, &size, err);
    cmn_xfer_set_progress (self->xfer, NULL, NULL);
    if (rc)
        return -1;
    e = s_add (self, hash, size, s_now_ns ());
    if (!e)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    s_touch (self, e);
    s_evict (self, hash);
    return 0;
}

int
wrk_blobs_put (wrk_blobs_t *self, const char *path, char hash [CMN_BLOB_HEX_LEN + 1],
               uint64_t *size_p, cmn_err_t *err)
{
    assert (self && path && hash);
    uint64_t size = 0;
    if (cmn_xfer_put (self->xfer, path, hash, &size, NULL, err))
        return -1;
    if (size_p)
        *size_p = size;
    char dest [PATH_MAX];
    s_path (self, hash, dest, sizeof dest);
    if (rename (path, dest) < 0)
        return cmn_err_set (err, RXQ_E_IO, "cannot move %s into the blob cache: %s", path,
                            strerror (errno));
    s_entry_t *e = s_add (self, hash, size, s_now_ns ());
    if (!e)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    s_touch (self, e);
    s_evict (self, hash);
    return 0;
}

int
wrk_blobs_push (wrk_blobs_t *self, const char *hash, cmn_err_t *err)
{
    assert (self && hash);
    s_entry_t *e = zhashx_lookup (self->entries, hash);
    char path [PATH_MAX];
    s_path (self, hash, path, sizeof path);
    if (!e || access (path, R_OK) < 0)
        return cmn_err_set (err, RXQ_E_NOTFOUND, "blob %s is not in the worker's cache", hash);
    char got [CMN_BLOB_HEX_LEN + 1];
    if (cmn_xfer_put (self->xfer, path, got, NULL, NULL, err))
        return -1;
    if (strcmp (got, hash) != 0) {
        //  Changed on disk behind our back: not this blob any more.
        unlink (path);
        self->bytes -= e->size;
        zhashx_delete (self->entries, hash);
        return cmn_err_set (err, RXQ_E_NOTFOUND, "cached file of blob %s no longer matches its "
                            "name; dropped", hash);
    }
    s_touch (self, e);
    return 0;
}

bool
wrk_blobs_has (wrk_blobs_t *self, const char *hash)
{
    assert (self && hash);
    return zhashx_lookup (self->entries, hash) != NULL;
}

uint64_t
wrk_blobs_bytes (wrk_blobs_t *self)
{
    return self->bytes;
}

size_t
wrk_blobs_count (wrk_blobs_t *self)
{
    return zhashx_size (self->entries);
}

uint64_t
wrk_blobs_cap (wrk_blobs_t *self)
{
    return self->cap;
}
