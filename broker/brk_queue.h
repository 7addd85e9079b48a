/*  brk_queue: the broker's ready queues.
 *
 *  One lane per (kind, requirement, priority), each a doubly linked FIFO
 *  ordered by the
 *  job's submission sequence, so a job that goes back to the queue (retry,
 *  dead worker) takes its original place rather than the back. A worker
 *  asks for the best job among the kinds it runs and the requirements its
 *  capabilities meet: the highest priority first and, within it, the
 *  lowest sequence number. Cost: O(distinct kind+requirement pairs) per
 *  pop, a small number in practice; O(1) push for new jobs; removal O(1).
 *
 *  The queue does not own the jobs; it links them through their prev/next
 *  fields.
 */
#ifndef BRK_QUEUE_H
#define BRK_QUEUE_H
#include <stddef.h>
#include "brk_job.h"

typedef struct _brk_queue_t brk_queue_t;

//  Creates an empty queue; NULL when out of memory.
brk_queue_t *brk_queue_new (void);

//  Destroys the queue (not the jobs, which must have been removed or be
//  destroyed by the caller after this). Idempotent; nulls *self_p.
void brk_queue_destroy (brk_queue_t **self_p);

//  Links JOB into the lane of its kind and priority, in sequence order.
//  Returns 0, or -1 when out of memory.
int brk_queue_push (brk_queue_t *self, brk_job_t *job);

//  Unlinks JOB, which must be queued.
void brk_queue_remove (brk_queue_t *self, brk_job_t *job);

//  Unlinks and returns the best job whose kind is one of KINDS (N names)
//  and whose requirement CAPS meet (NULL: only jobs without requirements),
//  or NULL when none is queued.
brk_job_t *brk_queue_pop (brk_queue_t *self, const char *const *kinds, size_t n,
                          const brk_caps_t *caps);

//  Number of jobs queued.
size_t brk_queue_size (brk_queue_t *self);

//  Number of jobs queued of KIND, all priorities.
size_t brk_queue_size_kind (brk_queue_t *self, const char *kind);

//  Calls FN for each queued job, highest priority first, ARG passed along.
void brk_queue_foreach (brk_queue_t *self, void (*fn) (brk_job_t *job, void *arg), void *arg);

#endif
