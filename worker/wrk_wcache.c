/*  wrk_wcache: see wrk_wcache.h. */
#include "wrk_wcache.h"
#include "cmn_codec.h"
#include "cmn_gguf.h"
#include "cmn_log.h"
#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;                 // tensor name (owned)
    cl_mem buf;                 // its bytes on the device
    size_t size;                // bytes
} s_tensor_t;

typedef struct {
    char model [CMN_BLOB_HEX_LEN + 1];  // model blob name
    char type [32];             // type name ("q4_k", "mixed", ...)
    s_tensor_t *tensors;        // n of them (owned); none for an object
    size_t n;                   // tensors
    void *obj;                  // an object entry's object (owned), or NULL
    wrk_wcache_free_fn *free_fn;    // destroys obj
    uint64_t bytes;             // device bytes of all tensors, or of obj
    uint64_t used;              // LRU clock value of the last use
    char *extra;                // msgpack from the filler (owned), or NULL
    size_t extra_len;           // bytes
} s_entry_t;

struct _wrk_wcache_t {
    wrk_device_t *dev;          // borrowed
    uint64_t budget;            // bytes
    uint64_t bytes;             // held
    uint64_t clock;             // LRU clock, +1 per use
    s_entry_t **entries;        // owned; count of them
    size_t count;               // entries
    size_t alloc;               // slots in entries
    pthread_mutex_t lock;       // guards entries' keys and the list shape
                                // against wrk_wcache_pack_held
};

static void
s_entry_free (s_entry_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++) {
        if (e->tensors [i].buf)
            clReleaseMemObject (e->tensors [i].buf);
        free (e->tensors [i].name);
    }
    free (e->tensors);
    free (e->extra);
    if (e->obj)
        e->free_fn (e->obj);
    free (e);
}

wrk_wcache_t *
wrk_wcache_new (wrk_device_t *dev, uint64_t budget_bytes)
{
    assert (dev && budget_bytes > 0);
    wrk_wcache_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->dev = dev;
    self->budget = budget_bytes;
    pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
wrk_wcache_destroy (wrk_wcache_t **self_p)
{
    assert (self_p);
    wrk_wcache_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        s_entry_free (self->entries [i]);
    free (self->entries);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

static ssize_t
s_find (wrk_wcache_t *self, const char *model, const char *type)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->entries [i]->model, model) == 0
        &&  strcmp (self->entries [i]->type, type) == 0)
            return (ssize_t) i;
    return -1;
}

//  Removes entry I (under the lock) and frees it (outside).
static void
s_remove (wrk_wcache_t *self, size_t i)
{
    pthread_mutex_lock (&self->lock);
    s_entry_t *e = self->entries [i];
    self->entries [i] = self->entries [--self->count];
    self->bytes -= e->bytes;
    pthread_mutex_unlock (&self->lock);
    s_entry_free (e);
}

void
wrk_wcache_drop (wrk_wcache_t *self, const char *model, const char *type)
{
    assert (self && model && type);
    ssize_t i = s_find (self, model, type);
    if (i >= 0)
        s_remove (self, (size_t) i);
}

//  Evicts least recently used entries until BYTES more fit the budget.
static void
s_make_room (wrk_wcache_t *self, uint64_t bytes)
{
    while (self->bytes + bytes > self->budget && self->count > 0) {
        size_t oldest = 0;
        for (size_t i = 1; i < self->count; i++)
            if (self->entries [i]->used < self->entries [oldest]->used)
                oldest = i;
        cmn_log_info ("weight cache: evicting %.16s... at %s (%" PRIu64 " bytes)",
                      self->entries [oldest]->model, self->entries [oldest]->type,
                      self->entries [oldest]->bytes);
        s_remove (self, oldest);
    }
}

static int
s_over_budget (wrk_wcache_t *self, const char *model, const char *type, uint64_t bytes,
               cmn_err_t *err)
{
    return cmn_err_set (err, RXQ_E_LIMIT, "%s at %s needs %" PRIu64 " bytes of device memory, "
                        "over the weight cache's budget of %" PRIu64, model, type, bytes,
                        self->budget);
}

//  Adds E, most recently used, to the list. Returns 0, or -1 with ERR set
//  when out of memory (E is then still the caller's).
static int
s_insert (wrk_wcache_t *self, s_entry_t *e, cmn_err_t *err)
{
    e->used = ++self->clock;
    pthread_mutex_lock (&self->lock);
    if (self->count == self->alloc) {
        size_t alloc = self->alloc ? self->alloc * 2 : 8;
        s_entry_t **grown = realloc (self->entries, alloc * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock (&self->lock);
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        }
        self->entries = grown;
        self->alloc = alloc;
    }
    self->entries [self->count++] = e;
    self->bytes += e->bytes;
    pthread_mutex_unlock (&self->lock);
    return 0;
}

int
wrk_wcache_reserve (wrk_wcache_t *self, uint64_t bytes, cmn_err_t *err)
{
    assert (self);
    if (bytes > self->budget)
        return cmn_err_set (err, RXQ_E_LIMIT, "%" PRIu64 " bytes of device memory are over the "
                            "weight cache's budget of %" PRIu64, bytes, self->budget);
    s_make_room (self, bytes);
    return 0;
}

int
wrk_wcache_put (wrk_wcache_t *self, const char *model, const char *type, void **obj_p,
                uint64_t bytes, wrk_wcache_free_fn *free_fn, cmn_err_t *err)
{
    assert (self && model && type && obj_p && *obj_p && free_fn);
    if (strlen (model) > CMN_BLOB_HEX_LEN || strlen (type) >= 32)
        return cmn_err_set (err, RXQ_E_INVAL, "weight cache key too long");
    if (bytes > self->budget)
        return s_over_budget (self, model, type, bytes, err);
    s_entry_t *e = calloc (1, sizeof *e);
    if (!e)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    snprintf (e->model, sizeof e->model, "%s", model);
    snprintf (e->type, sizeof e->type, "%s", type);
    e->bytes = bytes;
    //  Replace, then make room: least recently used first.
    wrk_wcache_drop (self, model, type);
    s_make_room (self, bytes);
    if (s_insert (self, e, err)) {
        free (e);
        return -1;
    }
    e->obj = *obj_p;
    e->free_fn = free_fn;
    *obj_p = NULL;
    cmn_log_info ("weight cache: holds %.16s... at %s (%" PRIu64 " bytes; %" PRIu64 " of %"
                  PRIu64 " in use)", model, type, bytes, self->bytes, self->budget);
    return 0;
}

void *
wrk_wcache_object (wrk_wcache_t *self, const char *model, const char *type)
{
    assert (self && model && type);
    ssize_t i = s_find (self, model, type);
    if (i < 0 || !self->entries [i]->obj)
        return NULL;
    s_entry_t *e = self->entries [i];
    pthread_mutex_lock (&self->lock);
    e->used = ++self->clock;
    pthread_mutex_unlock (&self->lock);
    return e->obj;
}

int
wrk_wcache_load_gguf (wrk_wcache_t *self, const char *model, const char *type,
                      const char *path, const void *extra, size_t extra_len, cmn_err_t *err)
{
    assert (self && model && type && path);
    if (strlen (model) > CMN_BLOB_HEX_LEN || strlen (type) >= 32)
        return cmn_err_set (err, RXQ_E_INVAL, "weight cache key too long");
    cmn_gguf_t *g = cmn_gguf_open_file (path, NULL, err);
    if (!g)
        return -1;
    size_t n = cmn_gguf_tensor_count (g);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += cmn_gguf_tensor (g, i)->size;
    if (bytes > self->budget) {
        cmn_gguf_destroy (&g);
        return s_over_budget (self, model, type, bytes, err);
    }
    //  Replace, then make room: least recently used first.
    wrk_wcache_drop (self, model, type);
    s_make_room (self, bytes);
    s_entry_t *e = calloc (1, sizeof *e);
    if (e) {
        e->tensors = calloc (n ? n : 1, sizeof *e->tensors);
        e->extra = extra_len ? malloc (extra_len) : NULL;
    }
    if (!e || !e->tensors || (extra_len && !e->extra)) {
        s_entry_free (e);
        cmn_gguf_destroy (&g);
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    }
    snprintf (e->model, sizeof e->model, "%s", model);
    snprintf (e->type, sizeof e->type, "%s", type);
    if (extra_len)
        memcpy (e->extra, extra, extra_len);
    e->extra_len = extra_len;
    cl_context ctx = wrk_device_context (self->dev);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const cmn_gguf_tensor_t *t = cmn_gguf_tensor (g, i);
        e->tensors [i].name = strdup (t->name);
        e->tensors [i].size = t->size;
        e->n = i + 1;
        if (!e->tensors [i].name) {
            rc = cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
            break;
        }
        if (t->size == 0)
            continue;
        //  Copied from the mapped file straight into the buffer.
        cl_int status = CL_SUCCESS;
        e->tensors [i].buf = clCreateBuffer (ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                             t->size, (void *) t->data, &status);
        if (status != CL_SUCCESS) {
            e->tensors [i].buf = NULL;
            char what [160];
            snprintf (what, sizeof what, "weight cache buffer for %.100s", t->name);
            rc = wrk_device_cl_error (err, what, status);
        }
        else
            e->bytes += t->size;
    }
    cmn_gguf_destroy (&g);
    if (rc) {
        s_entry_free (e);
        return -1;
    }
    if (s_insert (self, e, err)) {
        s_entry_free (e);
        return -1;
    }
    cmn_log_info ("weight cache: holds %.16s... at %s (%zu tensors, %" PRIu64 " bytes; %"
                  PRIu64 " of %" PRIu64 " in use)", model, type, e->n, e->bytes, self->bytes,
                  self->budget);
    return 0;
}

bool
wrk_wcache_lookup (wrk_wcache_t *self, const char *model, const char *type,
                   const void **extra, size_t *extra_len, uint64_t *bytes)
{
    assert (self && model && type);
    ssize_t i = s_find (self, model, type);
    if (i < 0)
        return false;
    s_entry_t *e = self->entries [i];
    pthread_mutex_lock (&self->lock);
    e->used = ++self->clock;
    pthread_mutex_unlock (&self->lock);
    if (extra)
        *extra = e->extra;
    if (extra_len)
        *extra_len = e->extra_len;
    if (bytes)
        *bytes = e->bytes;
    return true;
}

cl_mem
wrk_wcache_tensor (wrk_wcache_t *self, const char *model, const char *type, const char *name)
{
    assert (self && model && type && name);
    ssize_t i = s_find (self, model, type);
    if (i < 0)
        return NULL;
    s_entry_t *e = self->entries [i];
    for (size_t t = 0; t < e->n; t++)
        if (strcmp (e->tensors [t].name, name) == 0)
            return e->tensors [t].buf;
    return NULL;
}

static int
s_by_use (const void *a, const void *b)
{
    const s_entry_t *x = *(s_entry_t *const *) a, *y = *(s_entry_t *const *) b;
    return x->used < y->used ? 1 : x->used > y->used ? -1 : 0;
}

void
wrk_wcache_pack_held (wrk_wcache_t *self, msgpack_packer *pk)
{
    assert (self && pk);
    pthread_mutex_lock (&self->lock);
    //  Most recently used first. Out of memory for the copy: cache order,
    //  which only weakens the broker's preference, never its correctness.
    s_entry_t **sorted = self->count ? malloc (self->count * sizeof *sorted) : NULL;
    if (sorted) {
        memcpy (sorted, self->entries, self->count * sizeof *sorted);
        qsort (sorted, self->count, sizeof *sorted, s_by_use);
    }
    s_entry_t **list = sorted ? sorted : self->entries;
    msgpack_pack_array (pk, self->count);
    for (size_t i = 0; i < self->count; i++) {
        msgpack_pack_map (pk, 3);
        cmn_pack_kv_str (pk, "model", list [i]->model);
        cmn_pack_kv_str (pk, "type", list [i]->type);
        cmn_pack_kv_uint (pk, "bytes", list [i]->bytes);
    }
    pthread_mutex_unlock (&self->lock);
    free (sorted);
}

size_t
wrk_wcache_count (wrk_wcache_t *self)
{
    return self->count;
}

uint64_t
wrk_wcache_bytes (wrk_wcache_t *self)
{
    return self->bytes;
}

uint64_t
wrk_wcache_budget (wrk_wcache_t *self)
{
    return self->budget;
}
