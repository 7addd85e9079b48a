/*  brk_broker: the rxq broker (proto/rxq-protocol.md).
 *
 *  One ROUTER socket serves clients and workers. One thread runs a loop;
 *  each turn of it:
 *    1. waits for messages or the next timer (heartbeats, retry backoff,
 *       orphaned leases), at most one heartbeat interval;
 *    2. reads every message already queued on the socket, up to a batch
 *       limit, and handles each: state changes are made in memory and the
 *       Redis writes that record them are appended to one pipeline;
 *       replies that promise something (a job accepted, a lease) are held
 *       in an outbox;
 *    3. leases queued jobs to workers with free capacity;
 *    4. flushes the Redis pipeline, and only when every write succeeded
 *       sends the outbox and the FINAL replies of jobs that ended; when a
 *       write fails, the batch's promises are withdrawn (submissions get an
 *       error, leases are undone) and the jobs it touched are marked dirty,
 *       to be written again when Redis is back;
 *    5. sends heartbeats, declares silent workers dead and requeues their
 *       leases, moves jobs whose retry backoff has passed back to the
 *       queue, requeues leases found at start-up that no worker reclaimed,
 *       and while Redis is away tries to reconnect once per second.
 *  Batching is what makes it fast: a burst of N messages costs one Redis
 *  round trip.
 *
 *  On start the broker rebuilds its view from Redis: queued jobs go back to
 *  the queues; leased jobs wait a grace period for their worker to reclaim
 *  them (READY lists the leases a worker holds) and are requeued if none
 *  does.
 */
#ifndef BRK_BROKER_H
#define BRK_BROKER_H
#include <stdint.h>
#include "cmn_error.h"

typedef struct {
    const char *bind;           // ROUTER endpoint, e.g. "tcp://*:5555"
    const char *redis_url;      // "redis://127.0.0.1:6379/0"
    const char *cluster;        // key namespace: rxq:<cluster>:
    int heartbeat_ms;           // heartbeat interval, ms
    int liveness;               // intervals of silence before a peer is dead
    uint64_t max_attempts;      // default attempts per job
    int backoff_ms;             // first retry delay; doubles per attempt
    int backoff_max_ms;         // cap on the retry delay
    int hang_ms;                // a worker whose device thread shows no life
                                // this long while running a job is hung
    const char *data_dir;       // blob store directory (brk_blobs); NULL:
                                // the broker keeps no blobs and refuses
                                // BLOB_* requests with RXQ_E_UNSUPPORTED
    uint64_t keep_ended_s;      // an ended job stays in Redis this long,
                                // seconds; 0 for ever (docs/redis.md)
} brk_config_t;

//  Default of keep_ended_s: a week.
#define BRK_KEEP_ENDED_DEFAULT_S (7 * 86400)

typedef struct _brk_broker_t brk_broker_t;

//  Fills CFG with the defaults (tcp://*:5555, redis://127.0.0.1:6379,
//  cluster "default", 1000 ms, 3, 3 attempts, 500 ms, 30 s, 120 s, no
//  blob store, ended jobs kept a week).
void brk_config_defaults (brk_config_t *cfg);

//  Connects to Redis, rebuilds state from it and binds the socket. Returns
//  NULL with ERR set: RXQ_E_REDIS_CONNECT when Redis cannot be reached,
//  RXQ_E_ADDRINUSE when the endpoint is taken, RXQ_E_INVAL for a bad
//  endpoint.
brk_broker_t *brk_broker_new (const brk_config_t *cfg, cmn_err_t *err);

//  Stops and frees everything. Idempotent; nulls *self_p.
void brk_broker_destroy (brk_broker_t **self_p);

//  Runs until SIGINT/SIGTERM (zsys_interrupted). Returns 0.
int brk_broker_run (brk_broker_t *self);

//  Runs one turn of the loop, waiting at most TIMEOUT_MS for input.
void brk_broker_step (brk_broker_t *self, int timeout_ms);

//  The endpoint actually bound (useful with port 0 / ephemeral ports).
const char *brk_broker_endpoint (brk_broker_t *self);

//  Counters, for tests and logs.
typedef struct {
    uint64_t submitted;         // jobs accepted
    uint64_t completed;         // jobs that reached an end state
    uint64_t leases;            // leases sent
    uint64_t stale_refused;     // DONE/PROGRESS from stale leases refused
    uint64_t invalid_dropped;   // invalid messages dropped
    uint64_t workers_lost;      // workers declared dead
    uint64_t requeued;          // leases returned to the queue
    uint64_t redis_failures;    // batches whose Redis writes failed
} brk_stats_t;
const brk_stats_t *brk_broker_stats (brk_broker_t *self);

#endif
