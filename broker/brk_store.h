/*  brk_store: the broker's connection to Redis.
 *
 *  Writes are pipelined: callers append commands during one turn of the
 *  broker's loop and brk_store_flush sends them all and reads every reply,
 *  so a burst of N submissions costs one round trip, not N. Reads used
 *  outside the hot path (recovery, STATUS of a finished job, event replay)
 *  are synchronous and must not be mixed with an unflushed pipeline (the
 *  functions assert that).
 *
 *  On any connection error the context is dropped and brk_store_ok () turns
 *  false; brk_store_reconnect () tries again (the broker calls it once per
 *  second while Redis is away). Errors keep hiredis' shape: a code
 *  (RXQ_E_REDIS, RXQ_E_REDIS_CONNECT, RXQ_E_REDIS_REPLY) and text.
 */
#ifndef BRK_STORE_H
#define BRK_STORE_H
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include "cmn_error.h"

typedef struct _brk_store_t brk_store_t;

//  Parses URL ("redis://[:password@]host[:port][/db]" or "host:port") and
//  connects, authenticating and selecting the database when given. Returns
//  NULL with ERR set when the URL is malformed or Redis cannot be reached.
brk_store_t *brk_store_new (const char *url, cmn_err_t *err);

//  Closes the connection. Idempotent; nulls *self_p.
void brk_store_destroy (brk_store_t **self_p);

//  True while the connection is usable.
bool brk_store_ok (brk_store_t *self);

//  Drops the connection and connects again. Returns 0 or -1 with the
//  store's error set. Pending appended commands are discarded.
int brk_store_reconnect (brk_store_t *self);

//  Appends a command to the pipeline (arguments as for redisCommandArgv;
//  LENS may be NULL for NUL-terminated strings). No I/O happens here.
void brk_store_appendv (brk_store_t *self, int argc, const char **argv,
                        const size_t *lens);

//  printf-style append, as redisAppendCommand.
void brk_store_append (brk_store_t *self, const char *fmt, ...);

//  Number of commands appended and not yet flushed.
size_t brk_store_pending (brk_store_t *self);

//  Sends every appended command and reads every reply. Returns 0 when all
//  succeeded, -1 when the connection failed or any reply was an error (the
//  first error is kept). After -1 the caller must assume none of the
//  batch's writes happened.
int brk_store_flush (brk_store_t *self);

//  Synchronous command; returns the reply (caller frees with
//  freeReplyObject) or NULL with the store's error set. An error reply is
//  returned as NULL too.
redisReply *brk_store_command (brk_store_t *self, const char *fmt, ...);
redisReply *brk_store_commandv (brk_store_t *self, int argc, const char **argv,
                                const size_t *lens);

//  The last error.
const cmn_err_t *brk_store_error (brk_store_t *self);

//  The URL with any password masked, for messages.
const char *brk_store_url (brk_store_t *self);

#endif
