/*  brk_sets: the job records and state-set moves of one batch, written
 *  together.
 *
 *  Each job changed in a batch is stored once, as the string
 *  `rxq:<c>:job:<id>` (docs/redis.md); the batch's records go out as one
 *  MSET (split every BRK_SETS_CHUNK records), which Redis takes at a
 *  fraction of the cost of one command per job.
 *
 *  Each job's id lives in the sorted set of its state (docs/redis.md,
 *  `rxq:<c>:state:<state>`, score = submission sequence). A job that
 *  changes state leaves one set and enters another. Written one job at a
 *  time that is a ZREM and a ZADD per job; collected over a batch it is at
 *  most one ZREM and one ZADD per state set (split every BRK_SETS_CHUNK
 *  members), which costs Redis far less per job.
 *
 *  Ids are borrowed: they must stay valid until brk_sets_append, which the
 *  broker calls in the same loop turn, while the jobs are in its batch.
 */
#ifndef BRK_SETS_H
#define BRK_SETS_H
#include <stdint.h>
#include "brk_job.h"
#include "brk_store.h"

#define BRK_SETS_CHUNK 512      // members per ZREM / ZADD, records per MSET

typedef struct _brk_sets_t brk_sets_t;

//  Creates an empty collection; NULL when out of memory.
brk_sets_t *brk_sets_new (void);

//  Frees SELF. Idempotent; nulls *self_p.
void brk_sets_destroy (brk_sets_t **self_p);

//  Records that ID leaves the set of STATE. Returns 0, -1 out of memory.
int brk_sets_remove (brk_sets_t *self, brk_state_t state, const char *id);

//  Records that ID enters the set of STATE with SCORE. Returns 0, -1 out
//  of memory.
int brk_sets_add (brk_sets_t *self, brk_state_t state, uint64_t score, const char *id);

//  Records that KEY is to be set to the LEN bytes at DATA; both are
//  copied. Returns 0, -1 out of memory.
int brk_sets_record (brk_sets_t *self, const char *key, const char *data, size_t len);

//  Records that KEY is to expire SECONDS after the batch is written (an
//  ended job's record, stream and idempotency key: docs/redis.md,
//  "Retention"); KEY is copied. The EXPIRE follows the batch's MSETs,
//  which would otherwise clear it. Returns 0, -1 out of memory.
int brk_sets_expire (brk_sets_t *self, const char *key, uint64_t seconds);

//  Appends what was collected to STORE's pipeline, the records first (as
//  MSETs), then the expiries, then the moves (removes first, then adds,
//  state by state) under PREFIX ("rxq:<cluster>:"), and empties SELF.
void brk_sets_append (brk_sets_t *self, brk_store_t *store, const char *prefix);

//  Records, expiries and moves collected and not yet appended.
size_t brk_sets_pending (brk_sets_t *self);

#endif
