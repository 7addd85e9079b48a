/*  brk_job: a job as the broker holds it in memory, and its Redis form.
 *
 *  The broker keeps every job that has not ended in memory (its queues and
 *  leases point at these records); a job that has ended is written to
 *  Redis and dropped from memory, so memory stays bounded by the work in
 *  flight. Redis layout (docs/redis.md):
 *      rxq:<cluster>:job:<id>        string, the job record packed as one
 *                                    msgpack map (brk_job_pack_record)
 *      rxq:<cluster>:state:<state>   sorted set of ids, score = seq
 *      rxq:<cluster>:events:<id>     stream of the job's events, once it
 *                                    has more than its record keeps
 *      rxq:<cluster>:key:<key>       idempotency key -> id
 *
 *  A job's first lifecycle events (every event but `progress`, at most
 *  BRK_EVENTS_INLINE) are kept in its record, so a job that runs once
 *  without progress costs Redis one write per state change and no stream.
 *  The first event that does not fit moves them all to the stream, where
 *  every later event goes (`streamed`).
 */
#ifndef BRK_JOB_H
#define BRK_JOB_H
#include <czmq.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "brk_route.h"
#include "cmn_proto.h"

typedef enum {
    BRK_QUEUED = 0,
    BRK_LEASED,
    BRK_SUCCEEDED,
    BRK_FAILED,
    BRK_CANCELLED,
    BRK_DEAD,
    BRK_STATE_COUNT,
    BRK_STATE_NONE = -1     // not yet stored
} brk_state_t;

typedef struct _brk_job_t brk_job_t;

//  Events kept in the job record before its events move to the stream.
#define BRK_EVENTS_INLINE 4

//  One event kept in the record.
typedef struct {
    char eid [48];          // event id, "<epoch>-<n>"
    char *data;             // the packed event map (owned)
    size_t len;             // bytes
} brk_event_t;

//  A client waiting on the job: WATCH or SUBMIT with wait.
typedef struct {
    zframe_t *identity;     // client routing identity (owned)
    uint64_t req;           // the request to reply to
    bool events;            // send PARTIAL events, not only the FINAL
} brk_watcher_t;

struct _brk_job_t {
    char id [RXQ_MAX_ID_LEN + 1];       // "0005-0000001a"
    char kind [RXQ_MAX_KIND_LEN + 1];   // job kind
    brk_state_t state;                  // current state
    brk_state_t stored_state;           // state set holding it in Redis once
                                        // the pipeline so far is written
    uint32_t priority;                  // 0..RXQ_PRIORITY_MAX, higher first
    uint64_t seq;                       // global submission order
    uint64_t attempt;                   // leases so far = fencing token
    uint64_t max_attempts;              // failures before the job is dead
    uint64_t failures;                  // attempts that failed or lost their
                                        // worker (refused leases and broker
                                        // restarts do not count)
    uint64_t timeout_ms;                // per-attempt deadline, 0 none
    int64_t queue_deadline_ms;          // Unix ms by which it must have
                                        // started, else it fails; 0 none
    brk_require_t require;              // what its worker must offer
    char worker [64];                   // worker id of the current/last lease
    char worker_name [128];             // that worker's name, for people
    int64_t created_ms;                 // Unix ms
    int64_t started_ms;                 // Unix ms of the current lease, 0 none
    int64_t finished_ms;                // Unix ms, 0 while running
    int64_t not_before_ms;              // monotonic ms: retry backoff
    int64_t orphan_until_ms;            // monotonic ms: a lease found at
                                        // start-up waits this long for its
                                        // worker to reclaim it
    char *params;                       // msgpack map as submitted (owned)
    size_t params_len;                  // bytes
    char *result;                       // msgpack map (owned), or NULL
    size_t result_len;                  // bytes
    int error_code;                     // cmn_error_t of the last failure
    char *error_msg;                    // its message (owned), or NULL
    char *key;                          // idempotency key (owned), or NULL
    bool cancel_requested;              // CANCEL received while leased
    int64_t abort_sent_ms;              // monotonic ms an ABORT for the
                                        // deadline was sent, 0 none
    bool dirty;                         // in-memory state not yet in Redis
    bool in_batch;                      // in the broker's touched list
    char reason [160];                  // why it waits, for STATUS
    brk_event_t events [BRK_EVENTS_INLINE]; // its events kept in the record
    size_t nevents;                     // how many of events [] are used
    bool streamed;                      // its events are in its stream
                                        // (events [] is then empty)
    zlist_t *watchers;                  // brk_watcher_t *, owned
    brk_job_t *prev, *next;             // links in its queue lane
    bool queued_in_lane;                // linked into a queue lane
};

//  Name of a state ("queued"); brk_state_parse returns BRK_STATE_NONE for
//  an unknown name.
const char *brk_state_name (brk_state_t state);
brk_state_t brk_state_parse (const char *name, size_t len);
bool brk_state_terminal (brk_state_t state);

//  Creates an empty job record; NULL when out of memory.
brk_job_t *brk_job_new (void);

//  Frees the job and its watchers. Idempotent; nulls *self_p. The job must
//  not be linked into a queue.
void brk_job_destroy (brk_job_t **self_p);

//  Replaces a byte field (params, result) with a copy of DATA.
int brk_job_set_bytes (char **field, size_t *field_len, const char *data, size_t len);

//  Sets the error fields; CODE 0 clears them.
void brk_job_set_error (brk_job_t *self, int code, const char *msg);

//  Adds a watcher; the job takes a copy of IDENTITY.
void brk_job_watch (brk_job_t *self, zframe_t *identity, uint64_t req, bool events);

//  Packs the job record of proto 5.2. BRIEF omits params and result.
void brk_job_pack (brk_job_t *self, msgpack_packer *pk, bool brief);

//  Packs the stored form of the job (docs/redis.md): the record of proto
//  5.2 with params, plus `seq`, `cancel`, and `events` (the events kept in
//  the record) or `streamed`.
void brk_job_pack_record (brk_job_t *self, msgpack_packer *pk);

//  Keeps the packed event DATA (LEN bytes) with id EID in the record.
//  Returns 0, or -1 when the record keeps no more events (the caller moves
//  them to the stream) or out of memory.
int brk_job_keep_event (brk_job_t *self, const char *eid, const char *data, size_t len);

//  Frees the events kept in the record.
void brk_job_drop_events (brk_job_t *self);

//  Adds to SETS (brk_sets) what makes Redis match the in-memory record:
//  the stored form under "<PREFIX>job:<id>", and the move of the id
//  between state sets (score: the submission sequence; for an ended job
//  its finish time, Unix ms, by which the broker prunes the ended sets).
//  An ended job's record, stream and idempotency key get KEEP_S seconds
//  to live (0: kept for ever). PREFIX is "rxq:<cluster>:". Should SETS run
//  out of memory, the commands go to STORE's pipeline at once instead.
struct _brk_store_t;
struct _brk_sets_t;
void brk_job_persist (brk_job_t *self, struct _brk_store_t *store, const char *prefix,
                      struct _brk_sets_t *sets, uint64_t keep_s);

//  Fills a job from its stored form (DATA, LEN bytes, as GET returns it).
//  Returns 0, or -1 when DATA is not the record of a job (not msgpack
//  within the store limits, missing id, kind or state, a field of the
//  wrong type or out of range).
int brk_job_load (brk_job_t *self, const char *data, size_t len);

//  Fills a job from the layout before the record became one string: a
//  hash per job (HGETALL's reply H, fields of docs/redis.md "Upgrading")
//  whose events are all in the job's stream, so the job comes back
//  `streamed`. Returns 0, or -1 as brk_job_load does. The broker reads
//  such a key when GET finds a hash, and its next write of the job
//  replaces the hash with the record.
struct redisReply;
int brk_job_load_hash (brk_job_t *self, const struct redisReply *h);

#endif
