/*  cmn_proto: constants of the rxq wire protocol (proto/rxq-protocol.md).
 *
 *  A message from a peer's DEALER socket is
 *      [empty] [header] [command] [body] [bulk data]*
 *  where header is "RXQC01" (client) or "RXQW01" (worker), command is one
 *  byte, and body is one msgpack map. The ROUTER on the broker prepends the
 *  peer identity. This header holds the numbers; proto/ holds the meaning.
 */
#ifndef CMN_PROTO_H
#define CMN_PROTO_H

//  Protocol headers: 4 letters naming the role + 2 digits of version.
#define RXQ_PROTO_CLIENT        "RXQC01"
#define RXQ_PROTO_WORKER        "RXQW01"
#define RXQ_PROTO_CLIENT_PREFIX "RXQC"
#define RXQ_PROTO_WORKER_PREFIX "RXQW"
#define RXQ_PROTO_HEADER_LEN    6

//  Client to broker: requests. Each body carries `req`, echoed in replies.
#define RXQ_CMD_SUBMIT     0x01
#define RXQ_CMD_STATUS     0x02
#define RXQ_CMD_RESULT     0x03
#define RXQ_CMD_WATCH      0x04
#define RXQ_CMD_CANCEL     0x05
#define RXQ_CMD_LIST       0x06
#define RXQ_CMD_WORKERS    0x07
#define RXQ_CMD_RETRY      0x08
#define RXQ_CMD_RECORDS    0x09   // benchmark records from the farm's stream

//  Broker to client: replies.
#define RXQ_CMD_PARTIAL    0x11   // one streamed event; more follow
#define RXQ_CMD_FINAL      0x12   // the last reply to a request
#define RXQ_CMD_ERROR      0x13   // the last reply, reporting a failure

//  Worker to broker.
#define RXQ_CMD_READY      0x21   // registration, with device and kinds
#define RXQ_CMD_PROGRESS   0x23   // job progress (a PARTIAL for the job)
#define RXQ_CMD_DONE       0x24   // job finished: result or error (FINAL)
#define RXQ_CMD_DONES      0x25   // several DONEs in one message (6.6.2)

//  Broker to worker.
#define RXQ_CMD_JOB        0x31   // a lease: run this job attempt
#define RXQ_CMD_ABORT      0x32   // stop this job attempt (cancel, deadline)
#define RXQ_CMD_TUNING     0x33   // the stored tuning entry for the worker's device
#define RXQ_CMD_JOBS       0x34   // several leases in one message (6.3.1)

//  Client to broker: the blob store (proto section 8). Workers speak these
//  too, as clients, on a second socket (docs/store.md).
#define RXQ_CMD_BLOB_PUT   0x50   // announce an upload; the broker says if it has it
#define RXQ_CMD_BLOB_DATA  0x51   // one chunk of an upload (data in frame 4)
#define RXQ_CMD_BLOB_GET   0x52   // ask for one chunk of a blob (reply: data in frame 4)

//  Both directions, all peers.
#define RXQ_CMD_HEARTBEAT  0x40
#define RXQ_CMD_DISCONNECT 0x41

//  Heartbeat defaults: every message counts as a heartbeat; a peer that
//  has sent nothing for LIVENESS intervals is dead.
#define RXQ_HEARTBEAT_MS_DEFAULT   1000
#define RXQ_LIVENESS_DEFAULT       3

//  Limits. A frame or body over these is invalid and dropped.
#define RXQ_MAX_BODY_BYTES   (1u << 20)   // one msgpack body
#define RXQ_MAX_DEPTH        16           // nesting of arrays and maps
#define RXQ_MAX_STR_BYTES    (64u << 10)  // one string or bin field
#define RXQ_MAX_ITEMS        65536        // entries of one array or map
#define RXQ_MAX_FRAMES       8            // frames after the identity
#define RXQ_MAX_BATCH        256          // entries of one JOBS or DONES
#define RXQ_MAX_KIND_LEN     64
#define RXQ_MAX_ID_LEN       64
#define RXQ_MAX_KEY_LEN      256
#define RXQ_MAX_CHUNK_BYTES  (1u << 20)  // data frame of BLOB_DATA / BLOB_GET
#define RXQ_MAX_BLOB_BYTES   (1ull << 40) // one blob (1 TiB)
#define RXQ_MAX_BLOB_CREDIT  64           // chunks a broker grants in flight

//  Priorities: higher runs first; FIFO within a level.
#define RXQ_PRIORITY_LOW     0
#define RXQ_PRIORITY_NORMAL  1
#define RXQ_PRIORITY_HIGH    2
#define RXQ_PRIORITY_MAX     2

//  Returns the command's name ("SUBMIT") or "UNKNOWN".
const char *cmn_proto_command_name (int command);

#endif
