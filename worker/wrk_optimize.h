/*  wrk_optimize: the `optimize` job: reads an ONNX model, runs the
 *  optimizer (common/cmn_opt) and writes the result. CPU work: it needs no
 *  OpenCL device.
 *
 *  The model is a blob of the broker's store (64 hex digits; docs/store.md):
 *  fetched into the worker's blob cache (a hit costs nothing), optimized
 *  into the cache's tmp directory, uploaded to the store (nothing is sent
 *  when the store has those bytes) and kept in the cache. Or it is a file
 *  path on the worker, the output then written next to it or to `output`.
 *
 *  Parameters (common/cmn_kind.c): model (blob or path), output (path,
 *  path models only; default MODEL without .onnx + ".opt.onnx"), level
 *  (0..2, default 1), enable and
 *  disable (comma-separated pass names), layout (nhwc or nchw: the layout
 *  pass on or off), target (the device the model is for; the broker
 *  routed the job to it by require.target: without layout, the layout is
 *  this worker's, wrk_optimize_layout_for). The result map: output (the
 *  path; with a blob model output_blob, its name, then model_blob and
 *  model_cached, true when the worker had the model already), level,
 *  nodes [before, after], ops {type: [before, after]}, passes {name:
 *  rewrites}, flops [before, after], memory {naive_before, naive_after,
 *  planned_before, planned_after, buffers, tensors, partial}, weights_bytes
 *  [before, after], layout {layout, converted, transposes_inserted,
 *  transposes_cancelled, transposes_left}, seconds. docs/optimize.md is
 *  the manual.
 */
#ifndef WRK_OPTIMIZE_H
#define WRK_OPTIMIZE_H
#include "wrk_job.h"

//  The runner. Errors: RXQ_E_PARAM (bad pass name or layout, `output` with a blob
//  model), the blob fetch's and upload's (wrk_job_fetch_blob),
//  the model's errors (cmn_onnx_load, cmn_opt_run: naming the field or
//  node), RXQ_E_IO (output not writable), RXQ_E_CANCELLED / TIMEOUT.
int wrk_optimize_job (wrk_job_t *job);

//  The layout a worker whose device is DEVICE_NAME (NULL or "" for none)
//  prefers for conv nets: "nhwc" with any OpenCL device (rxq's conv
//  kernels are NHWC), "nchw" (no conversion) without one.
const char *wrk_optimize_layout_for (const char *device_name);

#endif
