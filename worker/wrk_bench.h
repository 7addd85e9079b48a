/*  wrk_bench: benchmark job runners (bench.device, and the farm's kinds).
 *
 *  bench.device measures, on the worker's device, copy bandwidth (GB/s,
 *  bytes read + bytes written over kernel time) and single-precision
 *  matrix-multiply throughput (GFLOPS, 2*M*N*K over kernel time), checks
 *  each kernel's output against a CPU reference, and returns the figures
 *  with per-kernel times from OpenCL event profiling.
 *
 *  The SGEMM entry points below are also used by tests/worker and by the
 *  bench/ programs that compare kernels/sgemm.cl with CLBlast.
 */
#ifndef WRK_BENCH_H
#define WRK_BENCH_H
#include <stddef.h>
#include <stdint.h>
#include <CL/cl.h>
#include "wrk_job.h"
#include "wrk_device.h"
#include "wrk_tune.h"

//  The SGEMM error bound. The error measure is componentwise:
//      err_ij = |C_ij - ref_ij| / (|alpha| * sum_k |A_ik| |B_kj| + |beta| |C0_ij|)
//  where ref is alpha*A*B + beta*C0 computed in double. A float result
//  with float accumulation stays far below this for inputs in [-1, 1)
//  (rounding errors relative to the sum of magnitudes are O(2^-24) each),
//  while one dropped or doubled product among K terms costs about 1/K,
//  so the bound catches that up to K of about 10,000. NaN or infinity in
//  C counts as an infinite error.
#define WRK_BENCH_SGEMM_TOL 1e-4

//  Runner for bench.device (see wrk_job.h for the contract). Parameters:
//  copy_mb (MiB, default 64, 1..4096; clamped to the device's largest
//  buffer), gemm_n (default 512, 1..8192), reps (default 5, 1..1000).
//  Fails with RXQ_E_PARAM on a bad parameter, RXQ_E_CHECK when a kernel's
//  output is wrong (the message names the worst element), RXQ_E_OPENCL*
//  from the driver, or what wrk_job_should_stop said.
int wrk_bench_device (wrk_job_t *job);

//  Measures copy bandwidth with kernels/copy.cl: *BYTES_P bytes of random
//  floats (clamped to the device's largest buffer and a third of its
//  memory, rounded down to whole float4s; *BYTES_P receives the size
//  used) are copied once to warm up and REPS (>= 1) times under event
//  profiling; NS [REPS] receives each timed run's ns. The output must
//  equal the input bit for bit (RXQ_E_CHECK otherwise). GB/s = 2 * bytes
//  / ns. JOB may be NULL; when given, progress goes to it (fractions 0.05
//  to 0.45) and wrk_job_should_stop is checked before every enqueue (its
//  error is copied to ERR). Returns 0 or -1 with ERR set (RXQ_E_LIMIT,
//  RXQ_E_NOMEM, RXQ_E_CHECK, RXQ_E_OPENCL*, RXQ_E_CANCELLED/TIMEOUT).
int wrk_bench_copy (wrk_device_t *device, wrk_job_t *job, uint64_t *bytes_p,
                    size_t reps, uint64_t *ns, cmn_err_t *err);

//  Enqueues C = alpha * A * B + beta * C with kernels/sgemm.cl on buffers
//  A (M x K), B (K x N), C (M x N), row-major and tightly packed, without
//  waiting. OPTIONS are the sgemm family's -D words (wrk_tune_options),
//  over the kernel's defaults; NULL uses the device's tuned set
//  (wrk_tune_for_device), falling back to smaller tiles when the compiled
//  kernel cannot run it. C is read only when beta != 0. EVENT, when not
//  NULL, receives the kernel's profiling event; the caller releases it.
//  The buffers stay the caller's. Returns 0, or -1 with ERR set as for
//  wrk_bench_sgemm, plus RXQ_E_INVAL for a buffer smaller than its matrix,
//  RXQ_E_PARAM for invalid OPTIONS and RXQ_E_UNSUPPORTED when OPTIONS do
//  not fit the device.
int wrk_bench_sgemm_enqueue (wrk_device_t *device, const char *options, size_t M,
                             size_t N, size_t K, float alpha, cl_mem A, cl_mem B,
                             float beta, cl_mem C, cl_event *event, cmn_err_t *err);

//  The build options wrk_bench_sgemm_enqueue uses on DEVICE with OPTIONS
//  NULL (after any fallback), into BUF of SIZE bytes.
void wrk_bench_sgemm_options (wrk_device_t *device, char *buf, size_t size);

//  Largest componentwise error (the measure of WRK_BENCH_SGEMM_TOL) of C
//  against A * B computed in double, over every STEP-th row and the last
//  (STEP 0 counts as 1); infinite for a NaN or infinite element. Returns 0,
//  or -1 when out of memory.
int wrk_bench_sgemm_max_error (size_t M, size_t N, size_t K, const float *A,
                               const float *B, const float *C, size_t step,
                               double *max_err);

//  Computes C = alpha * A * B + beta * C on DEVICE with kernels/sgemm.cl,
//  row-major, A M x K, B K x N, C M x N, tightly packed (lda = K, ldb = N,
//  ldc = N). C is read only when beta != 0. Blocks until C holds the
//  result. When NS is not NULL stores the kernel's device time (event
//  profiling, ns). Allocates and releases its own buffers on every path.
//  Returns 0, or -1 with ERR set: RXQ_E_INVAL for a zero dimension,
//  RXQ_E_LIMIT when a dimension exceeds 2^30 or a matrix exceeds the
//  device's largest buffer or int indexing (2^31 - 1 elements), RXQ_E_UNSUPPORTED when no tile configuration fits the device,
//  RXQ_E_OPENCL* from the driver.
int wrk_bench_sgemm (wrk_device_t *device, size_t M, size_t N, size_t K,
                     float alpha, const float *A, const float *B, float beta,
                     float *C, uint64_t *ns, cmn_err_t *err);

//  wrk_bench_sgemm with alpha = 1, beta = 0: C = A * B (C is output only).
int wrk_bench_sgemm_run (wrk_device_t *device, size_t M, size_t N, size_t K,
                         const float *A, const float *B, float *C,
                         uint64_t *ns, cmn_err_t *err);

#endif
