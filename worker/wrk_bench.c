/*  wrk_bench: the bench.device runner and the SGEMM host code.
 *
 *  bench.device runs, on the worker's device:
 *    1. copy: kernels/copy.cl copies a buffer of random floats (fixed seed)
 *       once to warm up and `reps` times under event profiling; the output
 *       must equal the input bit for bit. GB/s = 2 * bytes / kernel time.
 *    2. sgemm: kernels/sgemm.cl computes C = A * B for n x n random
 *       matrices in [-1, 1) (fixed seed), once to warm up and `reps` times;
 *       C is checked against a double-accumulated CPU reference with the
 *       componentwise bound WRK_BENCH_SGEMM_TOL (see wrk_bench.h). Every
 *       row is checked for n <= 1024; above that, 64 evenly spaced rows and
 *       the last (the reference costs n^2 per row). GFLOPS = 2 n^3 / time.
 *
 *    3. the device's FMA throughput (sgemm_peak, wrk_farm_measure_fma),
 *       the ceiling its SGEMM figure is a fraction of.
 *
 *  The result is a complete farm record (wrk_farm.h: record_version,
 *  kind, device, rxq_version, kernel_hash, params {copy_mb, gemm_n,
 *  reps}, seed, tuning, figures {gflops: SGEMM median, gbps: copy median,
 *  peak_fraction: gflops over fma_gflops}, kernels [sgemm_peak, copy_f4,
 *  sgemm] with median times, measured_peak {copy_gbps: this copy's
 *  median, fma_gflops}), plus two maps of its own (all times from OpenCL
 *  event profiling, kernel only):
 *    copy:    { requested_bytes: uint   bytes asked for (copy_mb MiB)
 *               bytes:           uint   bytes copied per run, after
 *                                       clamping to the device's limits
 *               gbps_best:       float  2 * bytes / fastest run, GB/s
 *               gbps_median:     float  2 * bytes / median run, GB/s
 *               ms:              [float] each timed run, ms }
 *    sgemm:   { n:               uint   M = N = K
 *               gflops_best:     float  2 n^3 / fastest run, GFLOPS
 *               gflops_median:   float  2 n^3 / median run, GFLOPS
 *               ms:              [float] each timed run, ms
 *               max_rel_err:     float  largest componentwise error
 *               tolerance:       float  WRK_BENCH_SGEMM_TOL
 *               rows_checked:    uint   rows compared with the reference }
 */
#include "wrk_bench.h"
#include "wrk_farm.h"
#include "cmn_codec.h"
#include "cmn_log.h"
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_SEED 0x5eed2026u          // fixed, so every run sees the same data
#define S_COPY_WG 256               // copy work-group size, work-items
#define S_COPY_CHUNK (16u << 20)    // copy readback slice, bytes
#define S_CHECK_ALL_ROWS 1024       // sgemm: check every row up to this n
#define S_CHECK_SAMPLE_ROWS 64      // otherwise this many rows (and the last)
#define S_MAX_DIM ((size_t) 1 << 30) // sgemm: largest M, N or K
#define S_PROGRESS_MS 100           // least interval between per-run progress
                                    // events, ms (they become PARTIAL messages)

//  --------------------------------------------------------------------------
//  Random data and small statistics

//  xorshift64*: fast, reproducible, good enough for benchmark inputs.
static uint64_t
s_rand (uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

//  Fills DATA with floats k / 2^23 - 1 (k < 2^24): uniform in [-1, 1),
//  finite, exactly representable, never the copy fill pattern.
static void
s_fill_random (float *data, size_t count, uint64_t seed)
{
    uint64_t state = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < count; i++)
        data [i] = (float) (s_rand (&state) >> 40) / 8388608.0f - 1.0f;
}

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

//  Fastest and median of COUNT (>= 1) times in ns.
static void
s_stats (const uint64_t *ns, size_t count, double *best, double *median)
{
    uint64_t sorted [count];
    memcpy (sorted, ns, sizeof sorted);
    qsort (sorted, count, sizeof sorted [0], s_cmp_u64);
    *best = (double) sorted [0];
    *median = count % 2 ? (double) sorted [count / 2]
                        : ((double) sorted [count / 2 - 1] + (double) sorted [count / 2]) / 2;
}

//  Waits for EVENT, releases it, and returns its device time in ns (at
//  least 1, so rates stay finite on drivers with coarse timers).
static int
s_wait_release (cl_event *event, uint64_t *ns, cmn_err_t *err)
{
    cl_int rc = clWaitForEvents (1, event);
    uint64_t t = rc == CL_SUCCESS ? wrk_device_event_ns (*event) : 0;
    clReleaseEvent (*event);
    *event = NULL;
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clWaitForEvents", rc);
    *ns = t ? t : 1;
    return 0;
}

//  True when run R of REPS should be reported: the last one, and otherwise
//  no more often than every S_PROGRESS_MS, so that many short runs do not
//  flood the client while long ones still show the device thread alive.
static bool
s_progress_due (wrk_job_t *job, size_t r, size_t reps)
{
    return r == reps || wrk_job_now_ms () - job->last_progress_ms >= S_PROGRESS_MS;
}

//  --------------------------------------------------------------------------
//  SGEMM host side

//  Build options tried, in order, when the device's tuned set does not
//  fit the compiled kernel (a driver may allow fewer work-items per group
//  than the device maximum when the kernel needs many registers).
static const char *s_sgemm_fallbacks [] = {
    "-DDIRECT=0 -DTSM=32 -DTSN=32 -DTSK=16 -DWPTM=4 -DWPTN=4 -DVW=4 -DAPAD=1",
    "-DDIRECT=0 -DTSM=16 -DTSN=16 -DTSK=8 -DWPTM=4 -DWPTN=4 -DVW=4 -DAPAD=1",
};

typedef struct {
    cl_kernel kernel;           // owned
    wrk_tune_t tune;            // the set it was built with (sgemm family)
    size_t local [2];           // work-group size, dims 0 (N) and 1 (M)
    char options [WRK_TUNE_OPTIONS_MAX];  // its build options
} s_sgemm_t;

//  Builds sgemm.cl with OPTIONS (-D words over the kernel's defaults) and
//  creates the kernel. RXQ_E_UNSUPPORTED when the set does not fit the
//  device or the compiled kernel; RXQ_E_PARAM when it is invalid.
static int
s_sgemm_build (wrk_device_t *dev, const char *options, s_sgemm_t *sg, cmn_err_t *err)
{
    const wrk_device_info_t *info = wrk_device_info (dev);
    memset (sg, 0, sizeof *sg);
    wrk_tune_default (&sg->tune);
    if (wrk_tune_parse_options (&sg->tune, WRK_TUNE_SGEMM, options, err)
    ||  wrk_tune_validate (&sg->tune, err))
        return -1;
    wrk_tune_options (&sg->tune, WRK_TUNE_SGEMM, sg->options, sizeof sg->options);
    size_t wgs = wrk_tune_wg_size (&sg->tune, WRK_TUNE_SGEMM);
    size_t lmem = wrk_tune_local_bytes (&sg->tune, WRK_TUNE_SGEMM);
    if (wgs > info->max_wg || lmem > info->local_mem)
        return cmn_err_set (err, RXQ_E_UNSUPPORTED, "sgemm %s: needs %zu work-items and %zu "
                            "bytes of local memory; the device has %zu and %llu",
                            sg->options, wgs, lmem, info->max_wg,
                            (unsigned long long) info->local_mem);
    cl_program program = wrk_device_program (dev, "sgemm.cl", sg->options, err);
    if (!program)
        return -1;
    cl_int rc;
    cl_kernel kernel = clCreateKernel (program, "sgemm", &rc);
    if (!kernel)
        return wrk_device_cl_error (err, "clCreateKernel (sgemm)", rc);
    size_t kwg = 0;
    rc = clGetKernelWorkGroupInfo (kernel, wrk_device_id (dev), CL_KERNEL_WORK_GROUP_SIZE,
                                   sizeof kwg, &kwg, NULL);
    if (rc != CL_SUCCESS) {
        clReleaseKernel (kernel);
        return wrk_device_cl_error (err, "clGetKernelWorkGroupInfo", rc);
    }
    if (kwg < wgs) {
        clReleaseKernel (kernel);
        return cmn_err_set (err, RXQ_E_UNSUPPORTED, "sgemm %s: the compiled kernel allows "
                            "%zu work-items per group, it needs %zu", sg->options, kwg, wgs);
    }
    sg->local [0] = (size_t) (wrk_tune_get (&sg->tune, WRK_TUNE_SGEMM, "TSN")
                              / wrk_tune_get (&sg->tune, WRK_TUNE_SGEMM, "WPTN"));
    sg->local [1] = (size_t) (wrk_tune_get (&sg->tune, WRK_TUNE_SGEMM, "TSM")
                              / wrk_tune_get (&sg->tune, WRK_TUNE_SGEMM, "WPTM"));
        sg->kernel = kernel;
    return 0;
}

//  Builds with OPTIONS, or the device's tuned set when NULL; only for the
//  tuned set, falls back to smaller tiles when it does not fit.
static int
s_sgemm_prepare (wrk_device_t *dev, const char *options, s_sgemm_t *sg, cmn_err_t *err)
{
    char tuned [WRK_TUNE_OPTIONS_MAX];
    if (options)
        return s_sgemm_build (dev, options, sg, err);
    wrk_tune_device_options (dev, WRK_TUNE_SGEMM, tuned, sizeof tuned);
    cmn_err_t first = { 0 };
    if (s_sgemm_build (dev, tuned, sg, &first) == 0)
        return 0;
    if (first.code != RXQ_E_UNSUPPORTED) {
        if (err)
            *err = first;
        return -1;
    }
    for (size_t i = 0; i < sizeof s_sgemm_fallbacks / sizeof s_sgemm_fallbacks [0]; i++) {
        cmn_err_t e = { 0 };
        if (s_sgemm_build (dev, s_sgemm_fallbacks [i], sg, &e) == 0)
            return 0;
        if (e.code != RXQ_E_UNSUPPORTED) {
            if (err)
                *err = e;
            return -1;
        }
    }
    if (err)
        *err = first;
    return -1;
}

static void
s_sgemm_release (s_sgemm_t *sg)
{
    if (sg->kernel)
        clReleaseKernel (sg->kernel);
    sg->kernel = NULL;
}

//  Enqueues one C = alpha A B + beta C on tightly packed buffers; EVENT
//  receives the kernel's event.
static int
s_sgemm_enqueue (wrk_device_t *dev, s_sgemm_t *sg, int M, int N, int K, float alpha,
                 cl_mem a, cl_mem b, float beta, cl_mem c, cl_event *event,
                 cmn_err_t *err)
{
    const int zero = 0;
    cl_kernel k = sg->kernel;
    cl_int rc = CL_SUCCESS;
    rc |= clSetKernelArg (k, 0, sizeof M, &M);
    rc |= clSetKernelArg (k, 1, sizeof N, &N);
    rc |= clSetKernelArg (k, 2, sizeof K, &K);
    rc |= clSetKernelArg (k, 3, sizeof alpha, &alpha);
    rc |= clSetKernelArg (k, 4, sizeof a, &a);
    rc |= clSetKernelArg (k, 5, sizeof zero, &zero);
    rc |= clSetKernelArg (k, 6, sizeof K, &K);
    rc |= clSetKernelArg (k, 7, sizeof b, &b);
    rc |= clSetKernelArg (k, 8, sizeof zero, &zero);
    rc |= clSetKernelArg (k, 9, sizeof N, &N);
    rc |= clSetKernelArg (k, 10, sizeof beta, &beta);
    rc |= clSetKernelArg (k, 11, sizeof c, &c);
    rc |= clSetKernelArg (k, 12, sizeof zero, &zero);
    rc |= clSetKernelArg (k, 13, sizeof N, &N);
    //  OR-ing statuses keeps the code short; any non-zero means one failed,
    //  and a failure here is a mismatch between this file and sgemm.cl.
    if (rc != CL_SUCCESS)
        return cmn_err_set (err, RXQ_E_OPENCL, "clSetKernelArg (sgemm) failed: the "
                            "kernel's arguments do not match wrk_bench.c");
    const size_t tsn = sg->local [0] * (size_t) wrk_tune_get (&sg->tune, WRK_TUNE_SGEMM, "WPTN");
    const size_t tsm = sg->local [1] * (size_t) wrk_tune_get (&sg->tune, WRK_TUNE_SGEMM, "WPTM");
    size_t global [2] = {
        ((size_t) N + tsn - 1) / tsn * sg->local [0],
        ((size_t) M + tsm - 1) / tsm * sg->local [1]
    };
    rc = clEnqueueNDRangeKernel (wrk_device_queue (dev), k, 2, NULL, global, sg->local,
                                 0, NULL, event);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueNDRangeKernel (sgemm)", rc);
    return 0;
}

//  Checks the sizes against the kernel's int indexing (a tile start plus a
//  tile must not overflow either, hence the 2^30 cap on each dimension) and
//  the device's largest buffer.
static int
s_sgemm_check_sizes (wrk_device_t *dev, size_t M, size_t N, size_t K, cmn_err_t *err)
{
    if (M == 0 || N == 0 || K == 0)
        return cmn_err_set (err, RXQ_E_INVAL, "sgemm: dimensions must be >= 1 (M=%zu N=%zu "
                            "K=%zu)", M, N, K);
    if (M > S_MAX_DIM || N > S_MAX_DIM || K > S_MAX_DIM)
        return cmn_err_set (err, RXQ_E_LIMIT, "sgemm: dimensions must be <= 2^30 (M=%zu "
                            "N=%zu K=%zu)", M, N, K);
    uint64_t max_alloc = wrk_device_info (dev)->max_alloc;
    const size_t dims [3][2] = { { M, K }, { K, N }, { M, N } };
    for (int i = 0; i < 3; i++) {
        size_t r = dims [i][0], c = dims [i][1];
        if (r > INT_MAX || c > INT_MAX || r * c > (size_t) INT_MAX)
            return cmn_err_set (err, RXQ_E_LIMIT, "sgemm: a %zu x %zu matrix is too large "
                                "for int indexing", r, c);
        if ((uint64_t) r * c * sizeof (float) > max_alloc)
            return cmn_err_set (err, RXQ_E_LIMIT, "sgemm: a %zu x %zu matrix needs %llu "
                                "bytes, over the device's largest buffer (%llu)", r, c,
                                (unsigned long long) r * c * sizeof (float),
                                (unsigned long long) max_alloc);
    }
    return 0;
}

//  Creates a buffer of SIZE bytes, copied from HOST when not NULL.
static cl_mem
s_buffer (wrk_device_t *dev, cl_mem_flags flags, size_t size, const void *host,
          cmn_err_t *err)
{
    cl_int rc;
    cl_mem mem = clCreateBuffer (wrk_device_context (dev),
                                 flags | (host ? CL_MEM_COPY_HOST_PTR : 0), size,
                                 (void *) host, &rc);
    if (!mem)
        wrk_device_cl_error (err, "clCreateBuffer", rc);
    return mem;
}

//  Fills C with NaN, so that elements a kernel fails to write are caught
//  by the check instead of passing with stale values.
static int
s_fill_nan (wrk_device_t *dev, cl_mem c, size_t bytes, cmn_err_t *err)
{
    const float nan_value = NAN;
    cl_int rc = clEnqueueFillBuffer (wrk_device_queue (dev), c, &nan_value, sizeof nan_value,
                                     0, bytes, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueFillBuffer", rc);
    return 0;
}

int
wrk_bench_sgemm (wrk_device_t *dev, size_t M, size_t N, size_t K, float alpha,
                 const float *A, const float *B, float beta, float *C, uint64_t *ns,
                 cmn_err_t *err)
{
    assert (dev && A && B && C);
    if (s_sgemm_check_sizes (dev, M, N, K, err))
        return -1;
    int rc = -1;
    s_sgemm_t sg = { 0 };
    cl_mem a = NULL, b = NULL, c = NULL;
    cl_event ev = NULL;
    size_t c_bytes = M * N * sizeof (float);
    if (s_sgemm_prepare (dev, NULL, &sg, err)
    ||  !(a = s_buffer (dev, CL_MEM_READ_ONLY, M * K * sizeof (float), A, err))
    ||  !(b = s_buffer (dev, CL_MEM_READ_ONLY, K * N * sizeof (float), B, err))
    ||  !(c = s_buffer (dev, CL_MEM_READ_WRITE, c_bytes, beta != 0.0f ? C : NULL, err)))
        goto done;
    if (beta == 0.0f && s_fill_nan (dev, c, c_bytes, err))
        goto done;
    if (s_sgemm_enqueue (dev, &sg, (int) M, (int) N, (int) K, alpha, a, b, beta, c, &ev, err))
        goto done;
    uint64_t t;
    if (s_wait_release (&ev, &t, err))
        goto done;
    cl_int cl = clEnqueueReadBuffer (wrk_device_queue (dev), c, CL_TRUE, 0, c_bytes, C,
                                     0, NULL, NULL);
    if (cl != CL_SUCCESS) {
        wrk_device_cl_error (err, "clEnqueueReadBuffer", cl);
        goto done;
    }
    if (ns)
        *ns = t;
    rc = 0;
done:
    if (ev)
        clReleaseEvent (ev);
    if (c)
        clReleaseMemObject (c);
    if (b)
        clReleaseMemObject (b);
    if (a)
        clReleaseMemObject (a);
    s_sgemm_release (&sg);
    return rc;
}

int
wrk_bench_sgemm_run (wrk_device_t *dev, size_t M, size_t N, size_t K, const float *A,
                     const float *B, float *C, uint64_t *ns, cmn_err_t *err)
{
    return wrk_bench_sgemm (dev, M, N, K, 1.0f, A, B, 0.0f, C, ns, err);
}

int
wrk_bench_sgemm_enqueue (wrk_device_t *dev, const char *options, size_t M, size_t N,
                         size_t K, float alpha, cl_mem a, cl_mem b, float beta, cl_mem c,
                         cl_event *event, cmn_err_t *err)
{
    assert (dev && a && b && c);
    if (event)
        *event = NULL;
    if (s_sgemm_check_sizes (dev, M, N, K, err))
        return -1;
    const size_t need [3] = { M * K * sizeof (float), K * N * sizeof (float),
                              M * N * sizeof (float) };
    const cl_mem mems [3] = { a, b, c };
    for (int i = 0; i < 3; i++) {
        size_t have = 0;
        cl_int cl = clGetMemObjectInfo (mems [i], CL_MEM_SIZE, sizeof have, &have, NULL);
        if (cl != CL_SUCCESS)
            return wrk_device_cl_error (err, "clGetMemObjectInfo", cl);
        if (have < need [i])
            return cmn_err_set (err, RXQ_E_INVAL, "sgemm: buffer %c holds %zu bytes, the "
                                "shape needs %zu", "abc" [i], have, need [i]);
    }
    s_sgemm_t sg;
    if (s_sgemm_prepare (dev, options, &sg, err))
        return -1;
    int rc = s_sgemm_enqueue (dev, &sg, (int) M, (int) N, (int) K, alpha, a, b, beta, c,
                              event, err);
    //  The queue keeps the kernel alive until it has run.
    s_sgemm_release (&sg);
    return rc;
}

void
wrk_bench_sgemm_options (wrk_device_t *dev, char *buf, size_t size)
{
    assert (dev && buf && size);
    s_sgemm_t sg;
    if (s_sgemm_prepare (dev, NULL, &sg, NULL) == 0) {
        snprintf (buf, size, "%s", sg.options);
        s_sgemm_release (&sg);
    }
    else
        wrk_tune_device_options (dev, WRK_TUNE_SGEMM, buf, size);
}

//  The worst element found by s_sgemm_check.
typedef struct {
    double max_err;             // largest componentwise error (inf for NaN)
    size_t row, col;            // where
    double got, want;           // C and the reference there
    size_t rows;                // rows checked
} s_check_t;

//  Compares C = A * B (M x K times K x N, alpha 1, beta 0) with a double
//  reference over every STEP-th row and the last; see WRK_BENCH_SGEMM_TOL
//  for the measure. Returns -1 only when out of memory.
static int
s_sgemm_check_mnk (size_t M, size_t N, size_t K, const float *A, const float *B,
                   const float *C, size_t step, s_check_t *out)
{
    double *ref = malloc (N * sizeof *ref);
    double *mag = malloc (N * sizeof *mag);
    if (!ref || !mag) {
        free (ref);
        free (mag);
        return -1;
    }
    memset (out, 0, sizeof *out);
    if (step < 1)
        step = 1;
    for (size_t i = 0; ; i = i + step < M ? i + step : M - 1) {
        for (size_t j = 0; j < N; j++)
            ref [j] = mag [j] = 0;
        for (size_t k = 0; k < K; k++) {
            double a = A [i * K + k];
            const float *brow = B + k * N;
            for (size_t j = 0; j < N; j++) {
                double p = a * brow [j];
                ref [j] += p;
                mag [j] += fabs (p);
            }
        }
        for (size_t j = 0; j < N; j++) {
            double got = C [i * N + j];
            double diff = fabs (got - ref [j]);
            double e = isfinite (got) ? (mag [j] > 0 ? diff / mag [j] : (diff > 0 ? INFINITY : 0))
                                      : INFINITY;
            if (e > out->max_err || (out->rows == 0 && j == 0)) {
                out->max_err = e;
                out->row = i;
                out->col = j;
                out->got = got;
                out->want = ref [j];
            }
        }
        out->rows++;
        if (i == M - 1)
            break;
    }
    free (ref);
    free (mag);
    return 0;
}

static int
s_sgemm_check (size_t n, const float *A, const float *B, const float *C, size_t step,
               s_check_t *out)
{
    return s_sgemm_check_mnk (n, n, n, A, B, C, step, out);
}

int
wrk_bench_sgemm_max_error (size_t M, size_t N, size_t K, const float *A, const float *B,
                           const float *C, size_t step, double *max_err)
{
    assert (M && N && K && A && B && C && max_err);
    s_check_t check;
    if (s_sgemm_check_mnk (M, N, K, A, B, C, step, &check))
        return -1;
    *max_err = check.max_err;
    return 0;
}

//  --------------------------------------------------------------------------
//  bench.device

//  What the two measurements produce, packed at the end so that a failure
//  never leaves half a result in job->result.
typedef struct {
    uint64_t requested_bytes;   // copy_mb in bytes
    uint64_t copy_bytes;        // bytes copied per run
    uint64_t *copy_ns;          // per timed run, ns
    uint64_t n;                 // sgemm size
    uint64_t *gemm_ns;          // per timed run, ns
    s_check_t check;            // sgemm verification
    char gemm_options [WRK_TUNE_OPTIONS_MAX];    // sgemm build options
    size_t reps;                // timed runs of each kernel
} s_bench_t;

//  Reads an optional uint parameter within [lo, hi].
static int
s_param (wrk_job_t *job, const char *key, uint64_t lo, uint64_t hi, uint64_t *value)
{
    if (cmn_codec_get_uint (job->params, key, value, &job->err) < 0) {
        job->err.code = RXQ_E_PARAM;
        return -1;
    }
    if (*value < lo || *value > hi)
        return cmn_err_set (&job->err, RXQ_E_PARAM, "parameter '%s' is %llu, must be in "
                            "[%llu, %llu]", key, (unsigned long long) *value,
                            (unsigned long long) lo, (unsigned long long) hi);
    return 0;
}

int
wrk_bench_copy (wrk_device_t *dev, wrk_job_t *job, uint64_t *bytes_p, size_t reps,
                uint64_t *copy_ns, cmn_err_t *err)
{
    assert (dev && bytes_p && reps >= 1 && copy_ns);
    const wrk_device_info_t *info = wrk_device_info (dev);
    cl_command_queue q = wrk_device_queue (dev);

    //  Two buffers must fit, beside whatever else the worker holds: at most
    //  the largest allocation and a third of the memory each, whole float4s.
    uint64_t bytes = *bytes_p;
    if (bytes > info->max_alloc)
        bytes = info->max_alloc;
    if (bytes > info->global_mem / 3)
        bytes = info->global_mem / 3;
    bytes &= ~(uint64_t) 15;
    if (bytes < 16 || bytes / 16 > UINT_MAX)
        return cmn_err_set (err, RXQ_E_LIMIT, "copy: cannot size a buffer (device "
                            "max_alloc %llu, global_mem %llu)",
                            (unsigned long long) info->max_alloc,
                            (unsigned long long) info->global_mem);
    if (bytes < *bytes_p)
        cmn_log_info ("bench.device: copy clamped from %llu to %llu bytes by the device",
                      (unsigned long long) *bytes_p, (unsigned long long) bytes);
    *bytes_p = bytes;
    size_t count = (size_t) bytes / sizeof (float);
    cl_uint n4 = (cl_uint) (bytes / 16);

    int rc = -1;
    cl_mem src = NULL, dst = NULL;
    cl_kernel kernel = NULL;
    cl_event ev = NULL;
    float *host = malloc ((size_t) bytes);
    float *back = malloc (S_COPY_CHUNK);
    if (!host || !back) {
        cmn_err_set (err, RXQ_E_NOMEM, "copy: cannot allocate %llu host bytes",
                     (unsigned long long) bytes);
        goto done;
    }
    s_fill_random (host, count, S_SEED);
    cl_program program = wrk_device_program (dev, "copy.cl", NULL, err);
    if (!program)
        goto done;
    cl_int cl;
    if (!(kernel = clCreateKernel (program, "copy_f4", &cl))) {
        wrk_device_cl_error (err, "clCreateKernel (copy_f4)", cl);
        goto done;
    }
    if (!(src = s_buffer (dev, CL_MEM_READ_ONLY, (size_t) bytes, host, err))
    ||  !(dst = s_buffer (dev, CL_MEM_WRITE_ONLY, (size_t) bytes, NULL, err)))
        goto done;
    //  A pattern no input element has, so a kernel that writes nothing fails.
    const cl_uint pattern = 0xa5a5a5a5u;
    cl = clEnqueueFillBuffer (q, dst, &pattern, sizeof pattern, 0, (size_t) bytes, 0, NULL, NULL);
    if (cl != CL_SUCCESS) {
        wrk_device_cl_error (err, "clEnqueueFillBuffer", cl);
        goto done;
    }
    cl = clSetKernelArg (kernel, 0, sizeof src, &src);
    if (cl == CL_SUCCESS)
        cl = clSetKernelArg (kernel, 1, sizeof dst, &dst);
    if (cl == CL_SUCCESS)
        cl = clSetKernelArg (kernel, 2, sizeof n4, &n4);
    if (cl != CL_SUCCESS) {
        wrk_device_cl_error (err, "clSetKernelArg (copy_f4)", cl);
        goto done;
    }
    size_t local = S_COPY_WG, kwg = 0;
    if (clGetKernelWorkGroupInfo (kernel, wrk_device_id (dev), CL_KERNEL_WORK_GROUP_SIZE,
                                  sizeof kwg, &kwg, NULL) == CL_SUCCESS && kwg && kwg < local)
        local = kwg;
    size_t global = ((size_t) n4 + local - 1) / local * local;

    if (job)
        wrk_job_progress (job, 0.05, "copy: %llu bytes, warm-up", (unsigned long long) bytes);
    for (size_t r = 0; r <= reps; r++) {
        if (job && wrk_job_should_stop (job)) {
            if (err && err != &job->err)
                *err = job->err;
            goto done;
        }
        cl = clEnqueueNDRangeKernel (q, kernel, 1, NULL, &global, &local, 0, NULL, &ev);
        if (cl != CL_SUCCESS) {
            wrk_device_cl_error (err, "clEnqueueNDRangeKernel (copy_f4)", cl);
            goto done;
        }
        uint64_t t;
        if (s_wait_release (&ev, &t, err))
            goto done;
        //  Run 0 warms caches, clocks and the driver; it is not timed.
        if (r > 0)
            copy_ns [r - 1] = t;
        if (r > 0 && job && s_progress_due (job, r, reps))
            wrk_job_progress (job, 0.05 + 0.35 * (double) r / (double) reps,
                              "copy: run %zu of %zu, %.1f GB/s", r, reps,
                              2.0 * (double) bytes / (double) t);
    }

    //  Read back in slices so the host needs one input copy, not two.
    for (size_t off = 0; off < (size_t) bytes; off += S_COPY_CHUNK) {
        size_t len = (size_t) bytes - off < S_COPY_CHUNK ? (size_t) bytes - off : S_COPY_CHUNK;
        cl = clEnqueueReadBuffer (q, dst, CL_TRUE, off, len, back, 0, NULL, NULL);
        if (cl != CL_SUCCESS) {
            wrk_device_cl_error (err, "clEnqueueReadBuffer", cl);
            goto done;
        }
        const char *want = (const char *) host + off;
        if (memcmp (back, want, len) != 0) {
            size_t i = 0, bad = 0, first = 0;
            for (; i < len / sizeof (float); i++)
                if (memcmp (&back [i], want + i * sizeof (float), sizeof (float)) != 0)
                    if (bad++ == 0)
                        first = i;
            float expect;
            memcpy (&expect, want + first * sizeof (float), sizeof expect);
            cmn_err_set (err, RXQ_E_CHECK, "copy: element %zu of %zu is %.9g, expected "
                         "%.9g (%zu of the %zu elements in its %zu-byte slice differ)",
                         off / sizeof (float) + first, count, (double) back [first],
                         (double) expect, bad, len / sizeof (float), len);
            goto done;
        }
    }
    if (job)
        wrk_job_progress (job, 0.45, "copy: output verified");
    rc = 0;
done:
    if (ev)
        clReleaseEvent (ev);
    if (kernel)
        clReleaseKernel (kernel);
    if (dst)
        clReleaseMemObject (dst);
    if (src)
        clReleaseMemObject (src);
    free (back);
    free (host);
    return rc;
}

static int
s_bench_copy (wrk_job_t *job, s_bench_t *res)
{
    uint64_t bytes = res->requested_bytes;
    if (wrk_bench_copy (job->device, job, &bytes, res->reps, res->copy_ns, &job->err))
        return -1;
    res->copy_bytes = bytes;
    return 0;
}

static int
s_bench_sgemm (wrk_job_t *job, s_bench_t *res)
{
    wrk_device_t *dev = job->device;
    size_t n = (size_t) res->n;
    if (s_sgemm_check_sizes (dev, n, n, n, &job->err))
        return -1;
    int rc = -1;
    s_sgemm_t sg = { 0 };
    cl_mem a = NULL, b = NULL, c = NULL;
    cl_event ev = NULL;
    size_t bytes = n * n * sizeof (float);
    float *A = malloc (bytes), *B = malloc (bytes), *C = malloc (bytes);
    if (!A || !B || !C) {
        cmn_err_set (&job->err, RXQ_E_NOMEM, "sgemm: cannot allocate 3 x %zu host bytes", bytes);
        goto done;
    }
    s_fill_random (A, n * n, S_SEED + 1);
    s_fill_random (B, n * n, S_SEED + 2);
    wrk_job_progress (job, 0.5, "sgemm: n=%zu, building", n);
    if (s_sgemm_prepare (dev, NULL, &sg, &job->err)
    ||  !(a = s_buffer (dev, CL_MEM_READ_ONLY, bytes, A, &job->err))
    ||  !(b = s_buffer (dev, CL_MEM_READ_ONLY, bytes, B, &job->err))
    ||  !(c = s_buffer (dev, CL_MEM_READ_WRITE, bytes, NULL, &job->err))
    ||  s_fill_nan (dev, c, bytes, &job->err))
        goto done;
    snprintf (res->gemm_options, sizeof res->gemm_options, "%s", sg.options);
    double flop = 2.0 * (double) n * (double) n * (double) n;

    wrk_job_progress (job, 0.55, "sgemm: warm-up");
    for (size_t r = 0; r <= res->reps; r++) {
        if (wrk_job_should_stop (job))
            goto done;
        if (s_sgemm_enqueue (dev, &sg, (int) n, (int) n, (int) n, 1.0f, a, b, 0.0f, c,
                             &ev, &job->err))
            goto done;
        uint64_t t;
        if (s_wait_release (&ev, &t, &job->err))
            goto done;
        if (r > 0)
            res->gemm_ns [r - 1] = t;
        if (r > 0 && s_progress_due (job, r, res->reps))
            wrk_job_progress (job, 0.55 + 0.35 * (double) r / (double) res->reps,
                              "sgemm: run %zu of %zu, %.1f GFLOPS", r, res->reps,
                              flop / (double) t);
    }
    cl_int cl = clEnqueueReadBuffer (wrk_device_queue (dev), c, CL_TRUE, 0, bytes, C,
                                     0, NULL, NULL);
    if (cl != CL_SUCCESS) {
        wrk_device_cl_error (&job->err, "clEnqueueReadBuffer", cl);
        goto done;
    }
    size_t step = n <= S_CHECK_ALL_ROWS ? 1 : (n + S_CHECK_SAMPLE_ROWS - 1) / S_CHECK_SAMPLE_ROWS;
    if (s_sgemm_check (n, A, B, C, step, &res->check)) {
        cmn_err_set (&job->err, RXQ_E_NOMEM, "sgemm: out of memory for the reference");
        goto done;
    }
    //  Written as !(x <= tol) so that a NaN error fails too.
    if (!(res->check.max_err <= WRK_BENCH_SGEMM_TOL)) {
        cmn_err_set (&job->err, RXQ_E_CHECK, "sgemm n=%zu: C[%zu,%zu] is %.9g, reference "
                     "%.9g: error %.3g over the bound %.0e (|C-ref| / sum|a||b|)", n,
                     res->check.row, res->check.col, res->check.got, res->check.want,
                     res->check.max_err, WRK_BENCH_SGEMM_TOL);
        goto done;
    }
    wrk_job_progress (job, 0.95, "sgemm: output verified (max error %.2g)",
                      res->check.max_err);
    rc = 0;
done:
    if (ev)
        clReleaseEvent (ev);
    if (c)
        clReleaseMemObject (c);
    if (b)
        clReleaseMemObject (b);
    if (a)
        clReleaseMemObject (a);
    s_sgemm_release (&sg);
    free (A);
    free (B);
    free (C);
    return rc;
}

static void
s_pack_ms (msgpack_packer *pk, const char *key, const uint64_t *ns, size_t count)
{
    cmn_pack_key (pk, key);
    msgpack_pack_array (pk, count);
    for (size_t i = 0; i < count; i++)
        msgpack_pack_double (pk, (double) ns [i] / 1e6);
}

//  Packs RES as bench.device's record (see the top of this file); R holds
//  the measured FMA peak and its kernel entry.
static void
s_pack_result (wrk_job_t *job, const s_bench_t *res, wrk_farm_record_t *r)
{
    msgpack_packer *pk = job->result;
    double copy_best, copy_median, gemm_best, gemm_median;
    s_stats (res->copy_ns, res->reps, &copy_best, &copy_median);
    s_stats (res->gemm_ns, res->reps, &gemm_best, &gemm_median);
    const double flop = 2.0 * (double) res->n * (double) res->n * (double) res->n;

    //  The record's kernel entries take sorted copies: the maps below list
    //  the runs in order.
    uint64_t *ns = malloc (res->reps * sizeof *ns);
    assert (ns);        // res->reps entries, as the two arrays allocated before
    memcpy (ns, res->copy_ns, res->reps * sizeof *ns);
    wrk_farm_record_kernel (r, "copy_f4", ns, res->reps);
    memcpy (ns, res->gemm_ns, res->reps * sizeof *ns);
    wrk_farm_record_kernel (r, "sgemm", ns, res->reps);
    free (ns);
    r->copy_gbps = r->gbps = 2.0 * (double) res->copy_bytes / copy_median;
    r->gflops = flop / gemm_median;
    r->peak_fraction = r->fma_gflops > 0 ? r->gflops / r->fma_gflops : 0;
    wrk_farm_pack_record_open (job, r, 2);

    cmn_pack_key (pk, "copy");
    msgpack_pack_map (pk, 5);
    cmn_pack_kv_uint (pk, "requested_bytes", res->requested_bytes);
    cmn_pack_kv_uint (pk, "bytes", res->copy_bytes);
    cmn_pack_kv_double (pk, "gbps_best", 2.0 * (double) res->copy_bytes / copy_best);
    cmn_pack_kv_double (pk, "gbps_median", 2.0 * (double) res->copy_bytes / copy_median);
    s_pack_ms (pk, "ms", res->copy_ns, res->reps);

    cmn_pack_key (pk, "sgemm");
    msgpack_pack_map (pk, 7);
    cmn_pack_kv_uint (pk, "n", res->n);
    cmn_pack_kv_double (pk, "gflops_best", flop / gemm_best);
    cmn_pack_kv_double (pk, "gflops_median", flop / gemm_median);
    s_pack_ms (pk, "ms", res->gemm_ns, res->reps);
    cmn_pack_kv_double (pk, "max_rel_err", res->check.max_err);
    cmn_pack_kv_double (pk, "tolerance", WRK_BENCH_SGEMM_TOL);
    cmn_pack_kv_uint (pk, "rows_checked", res->check.rows);
}

int
wrk_bench_device (wrk_job_t *job)
{
    assert (job);
    if (!job->device)
        return cmn_err_set (&job->err, RXQ_E_NODEVICE, "bench.device needs an OpenCL device "
                            "and this worker has none");
    uint64_t copy_mb = 64, gemm_n = 512, reps = 5;
    if (s_param (job, "copy_mb", 1, 4096, &copy_mb)
    ||  s_param (job, "gemm_n", 1, 8192, &gemm_n)
    ||  s_param (job, "reps", 1, 1000, &reps))
        return -1;

    s_bench_t res = { 0 };
    wrk_farm_record_t *r = calloc (1, sizeof *r);
    res.requested_bytes = copy_mb << 20;
    res.n = gemm_n;
    res.reps = (size_t) reps;
    res.copy_ns = calloc (res.reps, sizeof *res.copy_ns);
    res.gemm_ns = calloc (res.reps, sizeof *res.gemm_ns);
    int rc = -1;
    if (!res.copy_ns || !res.gemm_ns || !r)
        cmn_err_set (&job->err, RXQ_E_NOMEM, "bench.device: out of memory");
    else
    if (s_bench_copy (job, &res) == 0 && s_bench_sgemm (job, &res) == 0) {
        wrk_farm_record_start (r, job->device, "bench.device", S_SEED, WRK_TUNE_FAMILIES);
        wrk_farm_record_param (r, "copy_mb", copy_mb, NULL);
        wrk_farm_record_param (r, "gemm_n", gemm_n, NULL);
        wrk_farm_record_param (r, "reps", reps, NULL);
        snprintf (r->options, sizeof r->options, "%s", res.gemm_options);
        wrk_job_progress (job, 0.96, "measuring the device's FMA peak");
        if (wrk_farm_measure_fma (job, r) == 0) {
            s_pack_result (job, &res, r);
            wrk_job_progress (job, 1.0, "done");
            rc = 0;
        }
    }
    free (res.copy_ns);
    free (res.gemm_ns);
    free (r);
    return rc;
}
