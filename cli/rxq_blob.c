/*  rxq_blob: see rxq_blob.h. */
#include "rxq_blob.h"
#include "rxq_cmd.h"
#include "cmn_codec.h"
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

cmn_xfer_t *
rxq_blob_connect (rxq_args_t *o, int *code)
{
    cmn_err_t err;
    cmn_xfer_t *xfer = cmn_xfer_new (o->broker, &err);
    if (!xfer)
        *code = rxq_args_error (RXQ_EXIT_USAGE, "%s", err.msg);
    else
        cmn_xfer_set_timeout (xfer, o->timeout_ms);
    return xfer;
}

int
rxq_blob_failed (cmn_xfer_t *xfer, const cmn_err_t *err)
{
    if (err->code == RXQ_E_UNREACHABLE)
        return rxq_args_error (RXQ_EXIT_UNREACHABLE, "%s", err->msg);
    if (cmn_xfer_error_from_broker (xfer) && err->code != RXQ_E_IO_HASH)
        return rxq_args_error (RXQ_EXIT_BROKER, "%s", err->msg);
    return rxq_args_error (RXQ_EXIT_IO, "%s", err->msg);
}

int
rxq_blob_model (rxq_args_t *o, cmn_xfer_t **xfer_p, const char *model, bool quiet,
                char hash [CMN_BLOB_HEX_LEN + 1])
{
    int code = 0;
    if (!*xfer_p && !(*xfer_p = rxq_blob_connect (o, &code)))
        return code;
    cmn_xfer_set_timeout (*xfer_p, o->timeout_ms > RXQ_BLOB_TIMEOUT_MS ? o->timeout_ms
                                                                       : RXQ_BLOB_TIMEOUT_MS);
    if (cmn_blob_name_valid (model, strlen (model))) {
        memcpy (hash, model, CMN_BLOB_HEX_LEN + 1);
        return 0;
    }
    uint64_t size = 0;
    bool sent = false;
    cmn_err_t err;
    if (cmn_xfer_put (*xfer_p, model, hash, &size, &sent, &err))
        return rxq_blob_failed (*xfer_p, &err);
    if (sent || !quiet)
        fprintf (stderr, "model %s: blob %.16s... (%" PRIu64 " bytes, %s)\n", model, hash, size,
                 sent ? "uploaded" : "already in the store");
    return 0;
}

int
rxq_blob_output (cmn_xfer_t *xfer, const msgpack_object *job, const char *out)
{
    const msgpack_object *result = NULL;
    char hash [CMN_BLOB_HEX_LEN + 1] = "";
    if (cmn_codec_get_map (job, "result", &result, NULL) != 0
    ||  cmn_codec_get_cstr (result, "output_blob", hash, sizeof hash, NULL) != 0
    ||  !cmn_blob_name_valid (hash, strlen (hash)))
        return rxq_args_error (RXQ_EXIT_BROKER, "the job's result names no output blob");
    uint64_t size = 0;
    cmn_err_t err;
    if (cmn_xfer_get (xfer, hash, out, &size, &err))
        return rxq_blob_failed (xfer, &err);
    fprintf (stderr, "%s: %" PRIu64 " bytes (blob %.16s...)\n", out, size, hash);
    return 0;
}
