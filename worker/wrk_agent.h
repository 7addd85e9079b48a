/*  wrk_agent: runs one worker: talks RXQ/1 to the broker (proto/
 *  rxq-protocol.md, section 6) and runs the leases it receives on a device
 *  thread.
 *
 *  Two threads:
 *    - the thread that calls wrk_agent_run () owns a DEALER socket to the
 *      broker. It registers (READY), heartbeats (6.2), reconnects after
 *      `heartbeat_ms * liveness` of broker silence, validates every message
 *      from the broker (invalid ones are dropped and logged, never
 *      asserted on), queues leases (JOB) in order of arrival, forwards
 *      ABORT to the running job's stop flag, and sends PROGRESS and DONE;
 *    - the device thread (a zactor) runs one lease at a time: it calls the
 *      kind's runner (wrk_jobs_find) and sends progress and the packed DONE
 *      body back over the actor pipe. A long kernel therefore never delays
 *      a heartbeat. It is handed up to 64 leases at once and runs them in
 *      order, so short jobs cost no wait between the threads each; an
 *      ABORT for one still waiting there is answered at once.
 *
 *  Exit: wrk_agent_run () returns when the process is interrupted
 *  (SIGINT/SIGTERM, through czmq's zsys_interrupted), when wrk_agent_stop ()
 *  is called, or when the broker refuses this worker's protocol version.
 *  On the way out it sends DISCONNECT (so the broker requeues the leases at
 *  once), stops the running job and waits for its runner to return.
 */
#ifndef WRK_AGENT_H
#define WRK_AGENT_H
#include <stddef.h>
#include <stdint.h>
#include "cmn_error.h"
#include "wrk_device.h"
#include "wrk_blobs.h"
#include "wrk_wcache.h"

typedef struct _wrk_agent_t wrk_agent_t;

//  Least interval between two PROGRESS messages of one job, ms; runners may
//  report far more often (noop: every 10 ms), and progress is advisory.
#define WRK_AGENT_PROGRESS_MS_DEFAULT 500

//  Most leases a worker may declare it can hold at once.
#define WRK_AGENT_CAPACITY_MAX 1024

//  Longest worker name and tag, bytes.
#define WRK_AGENT_NAME_MAX 255

typedef struct {
    const char *endpoint;       // broker endpoint ("tcp://host:5555"); required
    const char *name;           // worker name; NULL for "<hostname>/<pid>"
    uint32_t capacity;          // leases held at once; 0 for 1
    const char *const *tags;    // operator labels, tag_count of them; may be NULL
    size_t tag_count;           // number of entries in tags
    uint32_t heartbeat_ms;      // heartbeat interval, ms; 0 for RXQ_HEARTBEAT_MS_DEFAULT
    uint32_t liveness;          // silent intervals before reconnecting; 0 for
                                // RXQ_LIVENESS_DEFAULT
    uint32_t progress_ms;       // least ms between two PROGRESS of one job; 0 for
                                // WRK_AGENT_PROGRESS_MS_DEFAULT
    wrk_blobs_t *blobs;         // blob cache for the jobs (borrowed, used only
                                // by the device thread); NULL for none
    wrk_wcache_t *wcache;       // weight cache on the device (borrowed); what
                                // it holds is advertised as `weights` in
                                // READY, HEARTBEAT and DONE; NULL for none
} wrk_agent_config_t;

//  Creates an agent: copies CFG, connects a DEALER socket to the broker
//  (ZeroMQ connects lazily: an unreachable broker is not an error here) and
//  starts the device thread. DEVICE may be NULL: the agent then advertises
//  and runs only kinds that need no device. The agent borrows DEVICE: the
//  caller keeps it open until after wrk_agent_destroy () and does not use
//  it meanwhile (the device thread does).
//  Returns NULL with ERR set: RXQ_E_INVAL for a bad endpoint, name, tag or
//  number in CFG; RXQ_E_NOMEM; RXQ_E_INTERNAL when a socket or the thread
//  cannot be created.
wrk_agent_t *wrk_agent_new (const wrk_agent_config_t *cfg, wrk_device_t *device,
                            cmn_err_t *err);

//  Stops the device thread (after run () has returned, it is idle), closes
//  the socket and frees the agent. Idempotent; nulls *self_p.
void wrk_agent_destroy (wrk_agent_t **self_p);

//  Runs the worker until interrupted or stopped. Call it once, from one
//  thread (which need not be the one that called wrk_agent_new).
//  Returns 0 after an interrupt or wrk_agent_stop (), or 1 after a fatal
//  error (the broker refused our protocol version: RXQ_E_VERSION), whose
//  detail wrk_agent_error () holds. Blocks, at the end, until a running
//  job's runner has returned: a runner stuck inside the OpenCL driver
//  delays the exit until it comes back.
int wrk_agent_run (wrk_agent_t *self);

//  Asks a running wrk_agent_run () to return, as an interrupt would. Safe
//  from any thread and from a signal handler; run () notices within 100 ms.
void wrk_agent_stop (wrk_agent_t *self);

//  The last fatal error (code 0 when there is none). The agent keeps
//  ownership. Read it after run () has returned.
const cmn_err_t *wrk_agent_error (wrk_agent_t *self);

//  Monotonic ms (wrk_job_now_ms) of the start or last progress report of
//  the job running on the device thread, or 0 when it is idle. Safe from
//  any thread. A runner that stays silent long past its kind's norm is
//  probably stuck in the driver.
int64_t wrk_agent_device_beat_ms (wrk_agent_t *self);

#endif
