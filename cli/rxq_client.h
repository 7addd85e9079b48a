/*  rxq_client: the client side of the rxq wire protocol (proto/rxq-protocol.md,
 *  section 5), used by the `rxq` CLI and by tests.
 *
 *  One DEALER socket connected to the broker. A request is sent as
 *      [empty] ["RXQC01"] [command] [body]
 *  where body is the caller's msgpack map with a fresh `req` added. Replies
 *  are matched on `req`: PARTIALs go to a callback, and the request ends
 *  with one FINAL (returned to the caller) or ERROR (returned as an error
 *  carrying the broker's code and message). Replies to other requests, and
 *  invalid messages, are dropped. Every message from the broker (HEARTBEAT
 *  included) resets the silence timer; a silence of `timeout_ms` before the
 *  request is answered means the broker is unreachable (RXQ_E_UNREACHABLE).
 *
 *  Streams (WATCH, and SUBMIT with wait=true) follow 5.4: after a silence
 *  of liveness * interval the client sends WATCH again, with a new `req`
 *  and `since` set to the last event id it saw, so a stream survives a
 *  broker restart. Once a stream has been answered, it gives up only after
 *  the stream timeout (rxq_client_set_stream_timeout; none by default).
 *  Events already seen (by `eid`) are not passed on twice.
 */
#ifndef RXQ_CLIENT_H
#define RXQ_CLIENT_H
#include <msgpack.h>
#include <stddef.h>
#include "cmn_codec.h"
#include "cmn_error.h"

typedef struct _rxq_client_t rxq_client_t;

//  Called for each PARTIAL reply of the request in flight. BODY is the
//  reply's map ({req, id, event}); it is valid only during the call.
typedef void (rxq_client_partial_fn) (void *arg, const msgpack_object *body);

//  Default silence, in ms, after which the broker counts as unreachable.
#define RXQ_CLIENT_TIMEOUT_MS_DEFAULT 5000

//  Creates a client connected to ENDPOINT ("tcp://host:port"; the
//  connection itself is made in the background). Returns NULL with ERR set
//  (RXQ_E_INVAL) when the endpoint cannot be used.
rxq_client_t *rxq_client_new (const char *endpoint, cmn_err_t *err);

//  Closes the socket without waiting for unsent messages and frees the
//  client. Idempotent; nulls *self_p.
void rxq_client_destroy (rxq_client_t **self_p);

//  The endpoint given to rxq_client_new.
const char *rxq_client_endpoint (rxq_client_t *self);

//  Sets the heartbeat interval and liveness that time WATCH re-sends
//  (defaults RXQ_HEARTBEAT_MS_DEFAULT and RXQ_LIVENESS_DEFAULT).
void rxq_client_set_heartbeat (rxq_client_t *self, int interval_ms, int liveness);

//  Sets how long, in ms, a stream that has been answered may stay silent
//  (re-sending WATCH all the while) before the request fails with
//  RXQ_E_UNREACHABLE; -1 (the default) waits for ever.
void rxq_client_set_stream_timeout (rxq_client_t *self, int timeout_ms);

//  Sends request COMMAND (RXQ_CMD_SUBMIT ... RXQ_CMD_RECORDS) with BODY, the
//  packed msgpack map of its fields other than `req` (SIZE bytes; BODY may
//  be NULL for an empty map), then waits for its replies. ON_PARTIAL (may
//  be NULL) is called with ARG for each PARTIAL. TIMEOUT_MS is the silence
//  that means the broker is unreachable (<= 0: the default, 5 s).
//  Returns 0 with the FINAL reply decoded into FINAL (the caller must call
//  cmn_body_free (FINAL)), or -1 with ERR set: the broker's code and message
//  for an ERROR reply; RXQ_E_UNREACHABLE when the broker stayed silent;
//  RXQ_E_INVAL when BODY is not a map; RXQ_E_IO when the socket failed.
int rxq_client_request (rxq_client_t *self, int command, const void *body, size_t size,
                        rxq_client_partial_fn *on_partial, void *arg, int timeout_ms,
                        cmn_body_t *final, cmn_err_t *err);

//  True when the last failed request ended with an ERROR reply from the
//  broker (as opposed to silence or a local failure).
bool rxq_client_error_from_broker (rxq_client_t *self);

#endif
