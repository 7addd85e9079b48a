/*  brk_queue: see brk_queue.h. */
#include "brk_queue.h"
#include <assert.h>
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    brk_job_t *head, *tail;     // oldest, newest
    size_t size;                // jobs linked
} s_lane_t;

//  The lanes of one (kind, requirement) pair.
typedef struct {
    char kind [RXQ_MAX_KIND_LEN + 1];   // job kind
    brk_require_t require;              // what a worker must offer
    s_lane_t lanes [RXQ_PRIORITY_MAX + 1];
    size_t size;                        // jobs in all its lanes
} s_kind_t;

struct _brk_queue_t {
    zhashx_t *kinds;            // "kind\x1frequirement" -> s_kind_t (owned)
    size_t size;                // jobs queued
};

static void
s_group_key (const brk_job_t *job, char *key, size_t size)
{
    char req [512];             // brk_require_key of the longest requirement fits
    brk_require_key (&job->require, req, sizeof req);
    snprintf (key, size, "%s\x1f%s", job->kind, req);
}

static void
s_kind_free (void **item)
{
    free (*item);
    *item = NULL;
}

brk_queue_t *
brk_queue_new (void)
{
    brk_queue_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->kinds = zhashx_new ();
    if (!self->kinds) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->kinds, s_kind_free);
    return self;
}

void
brk_queue_destroy (brk_queue_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zhashx_destroy (&(*self_p)->kinds);
        free (*self_p);
        *self_p = NULL;
    }
}

int
brk_queue_push (brk_queue_t *self, brk_job_t *job)
{
    assert (!job->queued_in_lane);
    assert (job->priority <= RXQ_PRIORITY_MAX);
    char key [600];
    s_group_key (job, key, sizeof key);
    s_kind_t *k = zhashx_lookup (self->kinds, key);
    if (!k) {
        k = calloc (1, sizeof *k);
        if (!k || zhashx_insert (self->kinds, key, k)) {
            free (k);
            return -1;
        }
        snprintf (k->kind, sizeof k->kind, "%s", job->kind);
        k->require = job->require;
    }
    s_lane_t *lane = &k->lanes [job->priority];
    //  Walk back from the newest to keep the lane in sequence order; new
    //  jobs stop at once, requeued ones walk to their original place.
    brk_job_t *after = lane->tail;
    while (after && after->seq > job->seq)
        after = after->prev;
    job->prev = after;
    job->next = after ? after->next : lane->head;
    if (job->next)
        job->next->prev = job;
    else
        lane->tail = job;
    if (after)
        after->next = job;
    else
        lane->head = job;
    job->queued_in_lane = true;
    lane->size++;
    k->size++;
    self->size++;
    return 0;
}

void
brk_queue_remove (brk_queue_t *self, brk_job_t *job)
{
    assert (job->queued_in_lane);
    char key [600];
    s_group_key (job, key, sizeof key);
    s_kind_t *k = zhashx_lookup (self->kinds, key);
    assert (k);
    s_lane_t *lane = &k->lanes [job->priority];
    if (job->prev)
        job->prev->next = job->next;
    else
        lane->head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        lane->tail = job->prev;
    job->prev = job->next = NULL;
    job->queued_in_lane = false;
    lane->size--;
    k->size--;
    self->size--;
}

static bool
s_runs (const char *const *kinds, size_t n, const char *kind)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp (kinds [i], kind) == 0)
            return true;
    return false;
}

brk_job_t *
brk_queue_pop (brk_queue_t *self, const char *const *kinds, size_t n, const brk_caps_t *caps)
{
    if (self->size == 0)
        return NULL;
    static const brk_caps_t no_caps;
    if (!caps)
        caps = &no_caps;
    for (int p = RXQ_PRIORITY_MAX; p >= 0; p--) {
        brk_job_t *best = NULL;
        for (s_kind_t *k = zhashx_first (self->kinds); k; k = zhashx_next (self->kinds))
            if (k->lanes [p].head && (!best || k->lanes [p].head->seq < best->seq)
            &&  s_runs (kinds, n, k->kind) && brk_route_match (&k->require, caps))
                best = k->lanes [p].head;
        if (best) {
            brk_queue_remove (self, best);
            return best;
        }
    }
    return NULL;
}

size_t
brk_queue_size (brk_queue_t *self)
{
    return self->size;
}

size_t
brk_queue_size_kind (brk_queue_t *self, const char *kind)
{
    size_t n = 0;
    for (s_kind_t *k = zhashx_first (self->kinds); k; k = zhashx_next (self->kinds))
        if (strcmp (k->kind, kind) == 0)
            n += k->size;
    return n;
}

void
brk_queue_foreach (brk_queue_t *self, void (*fn) (brk_job_t *job, void *arg), void *arg)
{
    for (int p = RXQ_PRIORITY_MAX; p >= 0; p--)
        for (s_kind_t *k = zhashx_first (self->kinds); k; k = zhashx_next (self->kinds))
            for (brk_job_t *j = k->lanes [p].head; j; j = j->next)
                fn (j, arg);
}
