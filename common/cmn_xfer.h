/*  cmn_xfer: moves blobs between a file and the broker's blob store, the
 *  client side of proto/rxq-protocol.md section 9. Used by the `rxq` CLI
 *  (put, get, quantize) and by workers (fetching models, returning
 *  outputs).
 *
 *  It owns one DEALER socket and speaks the client role (RXQC01). A
 *  worker uses one of these next to its control socket, so that megabytes
 *  of chunks never queue ahead of its heartbeats.
 *
 *  Flow control is by credit, as in the zguide's file-transfer example:
 *  - upload: the broker's BLOB_PUT reply grants `credit` chunks of at most
 *    `chunk` bytes; the sender never has more BLOB_DATA unanswered, and
 *    each reply gives one credit back;
 *  - download: the receiver keeps at most its own credit of BLOB_GET
 *    requests outstanding, each for one chunk.
 *  So a transfer holds at most credit * chunk bytes in memory on either
 *  side, whatever the blob's size.
 *
 *  A download is written to PATH.part-<pid>-<n> beside PATH, hashed as it
 *  arrives, and renamed to PATH only when its SHA-256 equals the name it
 *  was asked for; otherwise the part file is removed and the call fails
 *  with RXQ_E_IO_HASH. Nothing half-written ever appears under PATH.
 */
#ifndef CMN_XFER_H
#define CMN_XFER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_blob.h"
#include "cmn_error.h"

typedef struct _cmn_xfer_t cmn_xfer_t;

//  Called after each chunk with the bytes moved so far and the total.
//  Returns 0 to go on, or an error code (RXQ_E_CANCELLED, RXQ_E_TIMEOUT)
//  to stop the transfer: it then fails with that code, and a download
//  leaves nothing behind.
typedef int (cmn_xfer_progress_fn) (void *arg, uint64_t done, uint64_t total);

#define CMN_XFER_TIMEOUT_MS_DEFAULT 5000
#define CMN_XFER_CREDIT_DEFAULT     8           // download chunks in flight
#define CMN_XFER_CHUNK_DEFAULT      (1u << 20)  // download chunk, bytes

//  Creates a transfer client for the broker at ENDPOINT. Returns NULL with
//  ERR set (RXQ_E_INVAL) when the endpoint cannot be used.
cmn_xfer_t *cmn_xfer_new (const char *endpoint, cmn_err_t *err);

//  Closes the socket and frees the object. Idempotent; nulls *self_p.
void cmn_xfer_destroy (cmn_xfer_t **self_p);

//  Silence, in ms, after which the broker counts as unreachable (> 0).
void cmn_xfer_set_timeout (cmn_xfer_t *self, int timeout_ms);

//  Download credit (chunks in flight, 1..RXQ_MAX_BLOB_CREDIT) and chunk
//  size (1..RXQ_MAX_CHUNK_BYTES bytes).
void cmn_xfer_set_window (cmn_xfer_t *self, int credit, size_t chunk);

//  Sets the progress callback (FN may be NULL).
void cmn_xfer_set_progress (cmn_xfer_t *self, cmn_xfer_progress_fn *fn, void *arg);

//  Hashes the file at PATH, asks the broker whether it has that blob and
//  uploads it when not. Stores the blob name in HASH, its size in SIZE
//  (may be NULL) and in SENT (may be NULL) whether bytes were sent.
//  Returns 0, or -1 with ERR set: RXQ_E_IO for an unreadable file or one
//  that shrank while being sent; the broker's code and message for an
//  ERROR (RXQ_E_IO_HASH when the file changed while being sent,
//  RXQ_E_UNSUPPORTED for a broker without a blob store);
//  RXQ_E_UNREACHABLE when the broker stayed silent.
int cmn_xfer_put (cmn_xfer_t *self, const char *path, char hash [CMN_BLOB_HEX_LEN + 1],
                  uint64_t *size, bool *sent, cmn_err_t *err);

//  Downloads blob HASH into PATH (see above). Stores its size in SIZE (may
//  be NULL). Returns 0, or -1 with ERR set: RXQ_E_PARAM for a HASH that is
//  not 64 lowercase hex digits; RXQ_E_NOTFOUND (from the broker) when the
//  store lacks it; RXQ_E_IO_HASH when the bytes received do not hash to
//  HASH; RXQ_E_IO when PATH cannot be written; RXQ_E_PROTO for a reply
//  that breaks the protocol; RXQ_E_UNREACHABLE.
int cmn_xfer_get (cmn_xfer_t *self, const char *hash, const char *path, uint64_t *size,
                  cmn_err_t *err);

//  True when the last failure was an ERROR reply from the broker.
bool cmn_xfer_error_from_broker (cmn_xfer_t *self);

//  Most chunks that were in flight at once during the last transfer (the
//  credit actually used; tests check it never exceeds the grant).
int cmn_xfer_peak_in_flight (cmn_xfer_t *self);

#endif
