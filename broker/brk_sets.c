/*  brk_sets: the job records and state-set moves of one batch (brk_sets.h). */
#include "brk_sets.h"
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *id;             // borrowed
    uint64_t score;             // adds only
} s_member_t;

typedef struct {
    s_member_t *items;
    size_t count, max;
} s_list_t;

//  One record: where its key and value lie in the bytes buffer.
typedef struct {
    size_t key_off, key_len;    // bytes
    size_t val_off, val_len;    // bytes
} s_record_t;

//  One expiry: its key, back to back with the others in xkeys.
typedef struct {
    size_t off, len;            // bytes in xkeys
    uint64_t seconds;           // time to live
} s_expire_t;

struct _brk_sets_t {
    s_list_t removes [BRK_STATE_COUNT];
    s_list_t adds [BRK_STATE_COUNT];
    char *xkeys;                // keys of the expiries, back to back
    size_t xused, xsize;        // bytes used, allocated
    s_expire_t *expires;        // the expiries, in the order given
    size_t nexpires, maxexpires;    // used, allocated
    char *bytes;                // keys and values of the records, back to back
    size_t used, size;          // bytes used, allocated
    s_record_t *records;        // the records, in the order given
    size_t nrecords, maxrecords;    // used, allocated
};

brk_sets_t *
brk_sets_new (void)
{
    return calloc (1, sizeof (brk_sets_t));
}

void
brk_sets_destroy (brk_sets_t **self_p)
{
    assert (self_p);
    brk_sets_t *self = *self_p;
    if (!self)
        return;
    for (int s = 0; s < BRK_STATE_COUNT; s++) {
        free (self->removes [s].items);
        free (self->adds [s].items);
    }
    free (self->bytes);
    free (self->records);
    free (self->xkeys);
    free (self->expires);
    free (self);
    *self_p = NULL;
}

static int
s_push (s_list_t *list, const char *id, uint64_t score)
{
    if (list->count == list->max) {
        size_t max = list->max ? 2 * list->max : 64;
        s_member_t *grown = realloc (list->items, max * sizeof *grown);
        if (!grown)
            return -1;
        list->items = grown;
        list->max = max;
    }
    list->items [list->count++] = (s_member_t) { id, score };
    return 0;
}

int
brk_sets_remove (brk_sets_t *self, brk_state_t state, const char *id)
{
    assert (self && id && state >= 0 && state < BRK_STATE_COUNT);
    return s_push (&self->removes [state], id, 0);
}

int
brk_sets_add (brk_sets_t *self, brk_state_t state, uint64_t score, const char *id)
{
    assert (self && id && state >= 0 && state < BRK_STATE_COUNT);
    return s_push (&self->adds [state], id, score);
}

int
brk_sets_record (brk_sets_t *self, const char *key, const char *data, size_t len)
{
    assert (self && key && data);
    size_t key_len = strlen (key);
    if (len > SIZE_MAX / 4 || self->used + key_len + len > SIZE_MAX / 2)
        return -1;
    size_t need = self->used + key_len + len;
    if (need > self->size) {
        size_t size = self->size ? self->size : 65536;
        while (size < need)
            size *= 2;
        char *grown = realloc (self->bytes, size);
        if (!grown)
            return -1;
        self->bytes = grown;
        self->size = size;
    }
    if (self->nrecords == self->maxrecords) {
        size_t max = self->maxrecords ? 2 * self->maxrecords : 256;
        s_record_t *grown = realloc (self->records, max * sizeof *grown);
        if (!grown)
            return -1;
        self->records = grown;
        self->maxrecords = max;
    }
    s_record_t *r = &self->records [self->nrecords++];
    r->key_off = self->used;
    r->key_len = key_len;
    memcpy (self->bytes + self->used, key, key_len);
    self->used += key_len;
    r->val_off = self->used;
    r->val_len = len;
    memcpy (self->bytes + self->used, data, len);
    self->used += len;
    return 0;
}

int
brk_sets_expire (brk_sets_t *self, const char *key, uint64_t seconds)
{
    assert (self && key && seconds > 0);
    size_t len = strlen (key);
    if (self->xused + len > self->xsize) {
        size_t size = self->xsize ? self->xsize : 16384;
        while (size < self->xused + len)
            size *= 2;
        char *grown = realloc (self->xkeys, size);
        if (!grown)
            return -1;
        self->xkeys = grown;
        self->xsize = size;
    }
    if (self->nexpires == self->maxexpires) {
        size_t max = self->maxexpires ? 2 * self->maxexpires : 256;
        s_expire_t *grown = realloc (self->expires, max * sizeof *grown);
        if (!grown)
            return -1;
        self->expires = grown;
        self->maxexpires = max;
    }
    self->expires [self->nexpires++] = (s_expire_t) { self->xused, len, seconds };
    memcpy (self->xkeys + self->xused, key, len);
    self->xused += len;
    return 0;
}

//  Appends the expiries, one EXPIRE each (Redis has no multi-key form).
static void
s_append_expires (brk_sets_t *self, brk_store_t *store)
{
    for (size_t i = 0; i < self->nexpires; i++) {
        const s_expire_t *e = &self->expires [i];
        char ttl [24];
        snprintf (ttl, sizeof ttl, "%" PRIu64, e->seconds);
        const char *argv [] = { "EXPIRE", self->xkeys + e->off, ttl };
        size_t lens [] = { 6, e->len, strlen (ttl) };
        brk_store_appendv (store, 3, argv, lens);
    }
    self->nexpires = 0;
    self->xused = 0;
}

//  Appends the records as MSETs of BRK_SETS_CHUNK records each.
static void
s_append_records (brk_sets_t *self, brk_store_t *store)
{
    const char *argv [1 + 2 * BRK_SETS_CHUNK];
    size_t lens [1 + 2 * BRK_SETS_CHUNK];
    for (size_t done = 0; done < self->nrecords; ) {
        size_t n = self->nrecords - done < BRK_SETS_CHUNK ? self->nrecords - done
                                                          : BRK_SETS_CHUNK;
        int argc = 0;
        argv [argc] = "MSET";
        lens [argc++] = 4;
        for (size_t i = 0; i < n; i++) {
            const s_record_t *r = &self->records [done + i];
            argv [argc] = self->bytes + r->key_off;
            lens [argc++] = r->key_len;
            argv [argc] = self->bytes + r->val_off;
            lens [argc++] = r->val_len;
        }
        brk_store_appendv (store, argc, argv, lens);
        done += n;
    }
    self->nrecords = 0;
    self->used = 0;
}

//  Appends LIST as commands "ZREM key id..." or "ZADD key score id ...",
//  BRK_SETS_CHUNK members each.
static void
s_append_list (s_list_t *list, bool add, brk_store_t *store, const char *key)
{
    const char *argv [2 + 2 * BRK_SETS_CHUNK];
    size_t lens [2 + 2 * BRK_SETS_CHUNK];
    char scores [BRK_SETS_CHUNK][24];
    for (size_t done = 0; done < list->count; ) {
        size_t n = list->count - done < BRK_SETS_CHUNK ? list->count - done : BRK_SETS_CHUNK;
        int argc = 0;
        argv [argc] = add ? "ZADD" : "ZREM";
        lens [argc++] = 4;
        argv [argc] = key;
        lens [argc++] = strlen (key);
        for (size_t i = 0; i < n; i++) {
            const s_member_t *m = &list->items [done + i];
            if (add) {
                snprintf (scores [i], sizeof scores [i], "%" PRIu64, m->score);
                argv [argc] = scores [i];
                lens [argc++] = strlen (scores [i]);
            }
            argv [argc] = m->id;
            lens [argc++] = strlen (m->id);
        }
        brk_store_appendv (store, argc, argv, lens);
        done += n;
    }
    list->count = 0;
}

void
brk_sets_append (brk_sets_t *self, brk_store_t *store, const char *prefix)
{
    assert (self && store && prefix);
    s_append_records (self, store);
    s_append_expires (self, store);
    char key [256];
    for (int s = 0; s < BRK_STATE_COUNT; s++) {
        snprintf (key, sizeof key, "%sstate:%s", prefix, brk_state_name ((brk_state_t) s));
        s_append_list (&self->removes [s], false, store, key);
    }
    for (int s = 0; s < BRK_STATE_COUNT; s++) {
        snprintf (key, sizeof key, "%sstate:%s", prefix, brk_state_name ((brk_state_t) s));
        s_append_list (&self->adds [s], true, store, key);
    }
}

size_t
brk_sets_pending (brk_sets_t *self)
{
    assert (self);
    size_t n = self->nrecords + self->nexpires;
    for (int s = 0; s < BRK_STATE_COUNT; s++)
        n += self->removes [s].count + self->adds [s].count;
    return n;
}
