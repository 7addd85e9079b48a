/*  brk_sets: the state-set moves of one batch (brk_sets.h). */
#include "brk_sets.h"
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
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

struct _brk_sets_t {
    s_list_t removes [BRK_STATE_COUNT];
    s_list_t adds [BRK_STATE_COUNT];
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
    size_t n = 0;
    for (int s = 0; s < BRK_STATE_COUNT; s++)
        n += self->removes [s].count + self->adds [s].count;
    return n;
}
