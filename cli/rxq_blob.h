/*  rxq_blob: the command line's side of the blob store (docs/store.md):
 *  a transfer connection to the broker, a job's model file uploaded as a
 *  blob, and a job's output blob downloaded into a file. `rxq put` and
 *  `rxq get` use the first; quantize, optimize and generate send their
 *  model this way, and quantize and optimize fetch their output.
 */
#ifndef RXQ_BLOB_H
#define RXQ_BLOB_H
#include <msgpack.h>
#include <stdbool.h>
#include "cmn_blob.h"
#include "cmn_xfer.h"
#include "rxq_args.h"

//  Least milliseconds a model upload or output download waits for the
//  broker, whatever --timeout says (it hashes and writes each chunk).
#define RXQ_BLOB_TIMEOUT_MS 30000

//  Opens a transfer connection to O's broker with O's timeout. NULL with
//  *CODE set (and the error printed) when the endpoint is invalid.
cmn_xfer_t *rxq_blob_connect (rxq_args_t *o, int *code);

//  Prints the error of a failed transfer and returns its exit code
//  (rxq_cmd.h): 3 unreachable, 2 the broker refused, 5 a local file or a
//  download's hash check.
int rxq_blob_failed (cmn_xfer_t *xfer, const cmn_err_t *err);

//  The `model` parameter of a job for MODEL, written into HASH: MODEL
//  itself when it is a blob name (64 hex digits: a blob already in the
//  store, e.g. from `rxq put`; the broker checks that it is there), else
//  the name of the local file MODEL after uploading it to the store
//  (nothing is sent when the store has those bytes). *XFER_P is the
//  connection to use, opened here when NULL (the caller destroys it); its
//  timeout is set to at least RXQ_BLOB_TIMEOUT_MS, for the output too.
//  One line on stderr says what happened to the file ("uploaded" or
//  "already in the store"); with QUIET, only when bytes were sent.
//  Returns 0, or the exit code with the error printed.
int rxq_blob_model (rxq_args_t *o, cmn_xfer_t **xfer_p, const char *model, bool quiet,
                    char hash [CMN_BLOB_HEX_LEN + 1]);

//  Downloads the output blob of finished job JOB (its result's
//  `output_blob`) into the file OUT (checked against its hash, renamed
//  into place) and says so on stderr. Returns 0, or the exit code with the
//  error printed (2 when the result names no output blob).
int rxq_blob_output (cmn_xfer_t *xfer, const msgpack_object *job, const char *out);

#endif
