/*  fuzz_onnx: libFuzzer target for the ONNX reader (cmn_onnx) and the
 *  optimizer behind it (cmn_graph, cmn_opt). Every input must parse or
 *  fail with an error; a model that parses must write, re-read (else the
 *  writer produced something the reader refuses: trap), and go through
 *  -O2 with the layout pass (--layout nhwc) or fail with an error.
 *  External data is refused (no directory).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "cmn_onnx.h"
#include "cmn_opt.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    cmn_err_t err;
    cmn_onnx_limits_t limits = cmn_onnx_limits_default;
    limits.max_count = 1u << 16;
    cmn_onnx_model_t *m = cmn_onnx_read (data, size, NULL, &limits, &err);
    if (!m)
        return 0;
    uint8_t *buf;
    size_t len;
    if (cmn_onnx_write (m, &buf, &len, &err) == 0) {
        cmn_onnx_model_t *again = cmn_onnx_read (buf, len, NULL, &limits, &err);
        if (!again)
            __builtin_trap ();
        cmn_onnx_destroy (&again);
        free (buf);
    }
    cmn_opt_opts_t opts = cmn_opt_opts_default;
    opts.level = 2;
    opts.force [CMN_OPT_LAYOUT] = 1;
    opts.fold_max_bytes = 1 << 20;
    cmn_opt_report_t report;
    (void) cmn_opt_run (m, &opts, &report, &err);
    cmn_onnx_destroy (&m);
    return 0;
}
