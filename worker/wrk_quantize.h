/*  wrk_quantize: quantizes a model file (GGUF or safetensors; F32, F16,
 *  BF16 or already-quantized tensors) into a GGUF file on the worker's
 *  OpenCL device, and the `quantize` job runner around it.
 *
 *  Streaming: the input is mapped (cmn_gguf_open_file /
 *  cmn_safetensors_open_file) and never copied whole; the output's tensor
 *  data comes from cmn_gguf_writer's callback, which quantizes one chunk of
 *  rows at a time on the device (at most opts->chunk_bytes of float32
 *  values per chunk), so host and device memory stay bounded by a few
 *  chunks whatever the model's size. The writer writes OUT.tmp and renames
 *  it only when everything succeeded: on failure or cancel no file at OUT
 *  appears and the .tmp is removed.
 *
 *  Every converted tensor goes through the device: input rows are
 *  dequantized (F16, BF16, quantized types) to float32, quantized to the
 *  chosen type, dequantized again, and the error statistics of that round
 *  trip are computed on the device. The bytes are bit-identical with
 *  cmn_quant_quantize_row of cmn_quant_dequantize_row of the input.
 *  docs/quantize.md describes the choices per tensor and the report.
 */
#ifndef WRK_QUANTIZE_H
#define WRK_QUANTIZE_H
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_error.h"
#include "wrk_device.h"
#include "wrk_job.h"

//  opts->type for the mixed-precision plan (cmn_mixed).
#define WRK_QUANTIZE_MIXED (-1)

typedef struct {
    int type;               // target GGML/rxq type, or WRK_QUANTIZE_MIXED
    uint64_t budget_bytes;  // mixed: output file size limit in bytes (0: none)
    double bpw;             // mixed: limit on tensor-data bits per weight (0: none)
    const char *keep;       // NULL or "glob[:f16|q8_0|f32],..." kept at higher precision
    size_t chunk_bytes;     // float32 bytes per device chunk; 0 for 64 MiB
} wrk_quantize_opts_t;

//  Called before each tensor and between chunks with the fraction of input
//  bytes done and a short message. Returns 0 to go on, or -1 with ERR set
//  (RXQ_E_CANCELLED, RXQ_E_TIMEOUT) to stop.
typedef int (wrk_quantize_progress_fn) (void *arg, double fraction, const char *message,
                                        cmn_err_t *err);

//  Parses a type name: q4_0 q4_1 q5_0 q5_1 q8_0 q4_k q5_k q6_k (any case),
//  f32 f16 bf16, int4 (= int4_g32), int4_g64, int4_g128, or mixed
//  (WRK_QUANTIZE_MIXED). Returns 0, or -1 with ERR (RXQ_E_PARAM, listing
//  the names).
int wrk_quantize_parse_type (const char *name, int *type, cmn_err_t *err);

//  Quantizes IN_PATH into OUT_PATH on DEV. PROGRESS (may be NULL) is
//  called as described above. On success packs the report map into REPORT
//  (may be NULL) in one piece: {output, output_bytes, input_bytes,
//  seconds, gbps, type, tensors: [{name, type, rmse, max_abs, sqnr_db,
//  bpw, note?}], totals: {bpw, rmse, sqnr_db}, warnings: [str]}; sqnr_db
//  is nil where the error is zero. Nothing is packed on failure. Returns
//  0, or -1 with ERR: RXQ_E_IO / RXQ_E_FORMAT* for an unreadable or
//  malformed input (before anything is written), RXQ_E_PARAM for bad
//  options (unknown keep type, mixed without a budget, a budget no
//  assignment meets), RXQ_E_INVAL for a NaN or infinity in a tensor that
//  is quantized (naming the tensor and row), RXQ_E_UNSUPPORTED for a
//  device that cannot be bit-exact, RXQ_E_OPENCL*, RXQ_E_NOMEM, or what
//  PROGRESS set.
int wrk_quantize_file (wrk_device_t *dev, const char *in_path, const char *out_path,
                       const wrk_quantize_opts_t *opts, wrk_quantize_progress_fn *progress,
                       void *progress_arg, msgpack_packer *report, cmn_err_t *err);

//  Runner for the `quantize` job kind (params: model, type, output,
//  budget_bytes, bpw, keep; see common/cmn_kind.c): progress per tensor,
//  stop checks between tensors and chunks, the report as the result.
//  A `model` that is a blob name (64 hex digits) is fetched into the
//  worker's blob cache (job->blobs), and the output GGUF is uploaded to
//  the broker's store: the result then carries `output_blob` (its
//  SHA-256) instead of `output`, and `model_blob`, `model_cached`.
int wrk_quantize_job (wrk_job_t *job);

#endif
