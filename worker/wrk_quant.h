/*  wrk_quant: launchers for kernels/quant.cl, quantization and
 *  dequantization on the device, bit-identical with cmn_quant.c.
 *
 *  A wrk_quant_t belongs to one device (and so to the device thread). It
 *  checks once that the device can reproduce the CPU reference exactly
 *  (correctly rounded single-precision division and sqrt, subnormals),
 *  builds quant.cl with -cl-fp32-correctly-rounded-divide-sqrt and keeps
 *  its kernels and two small scratch buffers (the non-finite flag and the
 *  statistics partials).
 *
 *  Buffers hold whole blocks, back to back: a chunk of rows of a tensor
 *  whose row length is a multiple of the block size is a flat array of
 *  blocks, so the launchers take a value count N (a multiple of the
 *  type's block size) and nothing else about the shape.
 */
#ifndef WRK_QUANT_H
#define WRK_QUANT_H
#include <CL/cl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_error.h"
#include "wrk_device.h"

typedef struct _wrk_quant_t wrk_quant_t;

//  Error statistics of a dequantized copy Y of X (wrk_quant_stats).
typedef struct {
    uint64_t n;             // values compared
    double sse;             // sum of (x - y)^2
    double max_abs;         // max |x - y|
    double ssq;             // sum of x^2
} wrk_quant_stats_t;

//  Largest N one launch takes: 2^31 - 1 blocks would overflow the kernel's
//  int block index, and a single buffer is smaller anyway.
#define WRK_QUANT_MAX_BLOCKS ((size_t) 0x7fffffff)

//  True when TYPE has kernels in quant.cl (F32, F16, BF16, Q4_0, Q4_1,
//  Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K and the rxq INT4 types).
bool wrk_quant_type_supported (int type);

//  Creates the launcher for DEV (borrowed; it must outlive the object) and
//  builds quant.cl. Returns NULL with ERR set: RXQ_E_UNSUPPORTED when the
//  device lacks CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT or CL_FP_DENORM in
//  CL_DEVICE_SINGLE_FP_CONFIG (its results could not be bit-exact; the
//  message says which), RXQ_E_OPENCL* from the driver, RXQ_E_NOMEM.
wrk_quant_t *wrk_quant_new (wrk_device_t *dev, cmn_err_t *err);

//  Releases kernels and buffers; nulls *SELF_P; idempotent.
void wrk_quant_destroy (wrk_quant_t **self_p);

//  Enqueues quantization of N floats of SRC into DST (cmn_quant_row_bytes
//  (TYPE, N) bytes), without waiting. Blocks holding a NaN or infinity are
//  left unwritten and recorded; wrk_quant_finish reports them. Returns 0,
//  or -1 with ERR: RXQ_E_INVAL for an unsupported type, N not a multiple
//  of the block, or a buffer too small; RXQ_E_LIMIT past
//  WRK_QUANT_MAX_BLOCKS; RXQ_E_OPENCL*.
int wrk_quant_quantize (wrk_quant_t *self, int type, cl_mem src, cl_mem dst, size_t n,
                        cmn_err_t *err);

//  Waits for the queue and checks the non-finite record of the quantize
//  calls since the last finish. Returns 0, or -1 with ERR: RXQ_E_INVAL
//  "non-finite value (NaN or infinity) in block B" (B counts from the
//  start of the SRC of the launch that saw it, the smallest such), or
//  RXQ_E_OPENCL*.
int wrk_quant_finish (wrk_quant_t *self, size_t *bad_block, cmn_err_t *err);

//  Device time (OpenCL event profiling) of every kernel this object ran
//  that has finished, in ns: the kernels' share of a quantize job.
uint64_t wrk_quant_kernel_ns (wrk_quant_t *self);

//  Enqueues dequantization of N values of TYPE in SRC into DST (N floats),
//  without waiting. Errors as wrk_quant_quantize.
int wrk_quant_dequantize (wrk_quant_t *self, int type, cl_mem src, cl_mem dst, size_t n,
                          cmn_err_t *err);

//  Computes the error statistics of Y against X (N floats each) on the
//  device and adds them into *STATS (so chunks accumulate; zero it first).
//  Blocks until done. Returns 0, or -1 with ERR (RXQ_E_INVAL for small
//  buffers, RXQ_E_LIMIT past 2^32 - 1 values, RXQ_E_OPENCL*).
int wrk_quant_stats (wrk_quant_t *self, cl_mem x, cl_mem y, size_t n,
                     wrk_quant_stats_t *stats, cmn_err_t *err);

//  Host helpers, for tests and small inputs: quantize N floats at SRC into
//  DST (cmn_quant_row_bytes (TYPE, N) bytes) / dequantize into N floats,
//  through temporary device buffers; blocking. Same contract as
//  cmn_quant_quantize_row / dequantize_row except that failure is -1 with
//  ERR set (a non-finite value is RXQ_E_INVAL).
int wrk_quant_row (wrk_quant_t *self, int type, const float *src, void *dst, size_t n,
                   cmn_err_t *err);
int wrk_quant_dequant_row (wrk_quant_t *self, int type, const void *src, float *dst,
                           size_t n, cmn_err_t *err);

#endif
