/*  wrk_optimize: the `optimize` job: reads an ONNX model from a path on
 *  the worker, runs the optimizer (common/cmn_opt) and writes the result
 *  next to it or to `output`. CPU work: it needs no OpenCL device.
 *
 *  Parameters (common/cmn_kind.c): model (path), output (path, default
 *  MODEL without .onnx + ".opt.onnx"), level (0..2, default 1), enable and
 *  disable (comma-separated pass names). The result map: output, level,
 *  nodes [before, after], ops {type: [before, after]}, passes {name:
 *  rewrites}, flops [before, after], memory {naive_before, naive_after,
 *  planned_before, planned_after, buffers, tensors, partial}, weights_bytes
 *  [before, after], seconds. docs/optimize.md is the manual.
 */
#ifndef WRK_OPTIMIZE_H
#define WRK_OPTIMIZE_H
#include "wrk_job.h"

//  The runner. Errors: RXQ_E_PARAM (bad pass name, blob hash given),
//  the model's errors (cmn_onnx_load, cmn_opt_run: naming the field or
//  node), RXQ_E_IO (output not writable), RXQ_E_CANCELLED / TIMEOUT.
int wrk_optimize_job (wrk_job_t *job);

#endif
