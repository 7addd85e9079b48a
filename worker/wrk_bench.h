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
#include "wrk_job.h"
#include "wrk_device.h"

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
