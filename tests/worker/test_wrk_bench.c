/*  test_wrk_bench: the bench.device runner and kernels/sgemm.cl, on
 *  whatever OpenCL device the machine has (PoCL's CPU device in CI), with
 *  sizes small enough for two CPU cores.
 *
 *  SGEMM results are compared with this file's own double-precision
 *  reference under the componentwise bound WRK_BENCH_SGEMM_TOL:
 *  |C - ref| / (|alpha| sum_k |A_ik||B_kj| + |beta| |C0_ij|).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "wrk_bench.h"
#include "wrk_device.h"
#include "wrk_farm.h"
#include "cmn_codec.h"

//  ---------------------------------------------------------------------------
//  Job scaffolding

typedef struct {
    int events;                 // progress events received
    double last;                // last fraction
    bool monotonic;             // fractions never went down
    atomic_int *stop_on_first;  // when set, set to CANCELLED at the first event
} s_sink_t;

static void
s_sink (void *arg, const char *data, size_t size)
{
    s_sink_t *sink = arg;
    cmn_body_t body;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&body, data, size, &cmn_codec_limits_default, &err), 0,
                  "progress event: %s", err.msg);
    double fraction;
    char message [256];
    cr_assert_eq (cmn_codec_get_double (&body.root, "fraction", &fraction, &err), 0);
    cr_assert_eq (cmn_codec_get_cstr (&body.root, "message", message, sizeof message, &err), 0);
    cr_assert_gt (strlen (message), 0);
    if (fraction < sink->last)
        sink->monotonic = false;
    sink->last = fraction;
    sink->events++;
    if (sink->stop_on_first)
        atomic_store (sink->stop_on_first, RXQ_E_CANCELLED);
    cmn_body_free (&body);
}

typedef struct {
    msgpack_sbuffer params_buf; // packed parameters
    cmn_body_t params;          // decoded parameters
    msgpack_sbuffer result_buf; // what the runner packs
    msgpack_packer result;      // packer onto result_buf
    atomic_int stop;            // the stop flag
    s_sink_t sink;              // progress collector
    wrk_job_t job;              // the job handed to the runner
} s_job_t;

//  Sets up J with parameters given as (key, value) pairs of uints, ending
//  with a NULL key.
static void
s_job_init (s_job_t *j, wrk_device_t *dev, ...)
{
    memset (j, 0, sizeof *j);
    msgpack_sbuffer_init (&j->params_buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &j->params_buf, msgpack_sbuffer_write);
    va_list ap;
    int count = 0;
    va_start (ap, dev);
    while (va_arg (ap, const char *)) {
        (void) va_arg (ap, unsigned);
        count++;
    }
    va_end (ap);
    msgpack_pack_map (&pk, (size_t) count);
    va_start (ap, dev);
    const char *key;
    while ((key = va_arg (ap, const char *)) != NULL)
        cmn_pack_kv_uint (&pk, key, va_arg (ap, unsigned));
    va_end (ap);
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&j->params, j->params_buf.data, j->params_buf.size,
                                   &cmn_codec_limits_default, &err), 0, "%s", err.msg);
    msgpack_sbuffer_init (&j->result_buf);
    msgpack_packer_init (&j->result, &j->result_buf, msgpack_sbuffer_write);
    atomic_init (&j->stop, 0);
    j->sink.monotonic = true;
    snprintf (j->job.id, sizeof j->job.id, "test-job");
    j->job.attempt = 1;
    j->job.params = &j->params.root;
    j->job.device = dev;
    j->job.stop = &j->stop;
    j->job.result = &j->result;
    j->job.sink = s_sink;
    j->job.sink_arg = &j->sink;
}

static void
s_job_free (s_job_t *j)
{
    cmn_body_free (&j->params);
    msgpack_sbuffer_destroy (&j->params_buf);
    msgpack_sbuffer_destroy (&j->result_buf);
}

static wrk_device_t *
s_open (void)
{
    cmn_err_t err = { 0 };
    wrk_device_t *dev = wrk_device_new (NULL, NULL, &err);
    cr_assert_not_null (dev, "%s", err.msg);
    return dev;
}

static double
s_get_number (const msgpack_object *map, const char *key)
{
    const msgpack_object *v = cmn_codec_find (map, key);
    cr_assert_not_null (v, "result lacks '%s'", key);
    if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
        return v->via.f64;
    cr_assert_eq (v->type, MSGPACK_OBJECT_POSITIVE_INTEGER, "'%s' is not a number", key);
    return (double) v->via.u64;
}

static const msgpack_object *
s_get_map (const msgpack_object *map, const char *key)
{
    const msgpack_object *v;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_codec_get_map (map, key, &v, &err), 0, "'%s': %s", key, err.msg);
    return v;
}

//  Checks that MAP[key] is an array of COUNT positive numbers.
static void
s_check_ms (const msgpack_object *map, const char *key, uint32_t count)
{
    const msgpack_object *a;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_codec_get_array (map, key, &a, &err), 0, "'%s': %s", key, err.msg);
    cr_assert_eq (a->via.array.size, count);
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *v = &a->via.array.ptr [i];
        cr_assert_eq (v->type, MSGPACK_OBJECT_FLOAT64);
        cr_assert_gt (v->via.f64, 0);
    }
}

static char *
s_kernel_dir_with (const char *name, const char *text)
{
    char *dir = strdup ("/tmp/rxq-test-bench-XXXXXX");
    cr_assert_not_null (mkdtemp (dir));
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen (path, "wb");
    cr_assert_not_null (f);
    fputs (text, f);
    fclose (f);
    setenv ("RXQ_KERNEL_DIR", dir, 1);
    return dir;
}

static void
s_kernel_dir_remove (char *dir, const char *name)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    unlink (path);
    rmdir (dir);
    unsetenv ("RXQ_KERNEL_DIR");
    free (dir);
}

//  ---------------------------------------------------------------------------
//  bench.device

Test (wrk_bench, device_small_run_reports_every_field)
{
    wrk_device_t *dev = s_open ();
    s_job_t j;
    s_job_init (&j, dev, "copy_mb", 4u, "gemm_n", 67u, "reps", 2u, NULL);
    int rc = wrk_bench_device (&j.job);
    cr_assert_eq (rc, 0, "bench.device: %s", j.job.err.msg);
    cr_assert_geq (j.sink.events, 6, "progress events: %d", j.sink.events);
    cr_assert (j.sink.monotonic, "progress went backwards");
    cr_assert_float_eq (j.sink.last, 1.0, 1e-12);

    cmn_body_t res;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&res, j.result_buf.data, j.result_buf.size,
                                   &cmn_codec_limits_default, &err), 0, "%s", err.msg);
    //  The farm record's 11 fields (wrk_farm.h) and bench.device's two maps.
    cr_assert_eq (res.root.via.map.size, 13);
    cr_assert_eq (s_get_number (&res.root, "record_version"), 1);
    char text [256];
    cr_assert_eq (cmn_codec_get_cstr (&res.root, "kind", text, sizeof text, &err), 0);
    cr_assert_str_eq (text, "bench.device");
    cr_assert_eq (cmn_codec_get_cstr (&res.root, "rxq_version", text, sizeof text, &err), 0);
    cr_assert_str_eq (text, RXQ_VERSION);
    cr_assert_eq (cmn_codec_get_cstr (&res.root, "kernel_hash", text, sizeof text, &err), 0);
    cr_assert_str_eq (text, wrk_farm_kernel_hash ());
    const msgpack_object *params = s_get_map (&res.root, "params");
    cr_assert_eq (params->via.map.size, 3);
    cr_assert_eq (s_get_number (params, "copy_mb"), 4);
    cr_assert_eq (s_get_number (params, "gemm_n"), 67);
    cr_assert_eq (s_get_number (params, "reps"), 2);
    cr_assert_gt (s_get_number (&res.root, "seed"), 0);
    const msgpack_object *tuning = s_get_map (&res.root, "tuning");
    cr_assert_eq (cmn_codec_get_cstr (tuning, "options", text, sizeof text, &err), 0);
    cr_assert (strstr (text, "-D"), "tuning options '%s'", text);
    const msgpack_object *peak = s_get_map (&res.root, "measured_peak");
    const msgpack_object *fig = s_get_map (&res.root, "figures");
    cr_assert_gt (s_get_number (peak, "fma_gflops"), 0);

    const msgpack_object *copy = s_get_map (&res.root, "copy");
    cr_assert_eq (s_get_number (copy, "requested_bytes"), 4.0 * 1024 * 1024);
    double bytes = s_get_number (copy, "bytes");
    cr_assert_gt (bytes, 0);
    cr_assert_leq (bytes, 4.0 * 1024 * 1024);
    cr_assert_leq (bytes, (double) wrk_device_info (dev)->max_alloc);
    double best = s_get_number (copy, "gbps_best");
    double median = s_get_number (copy, "gbps_median");
    cr_assert_gt (median, 0);
    cr_assert_geq (best, median);
    s_check_ms (copy, "ms", 2);

    //  The headline figures are the medians, against the ceilings.
    cr_assert_float_eq (s_get_number (fig, "gbps"), median, 1e-9 * median);
    cr_assert_float_eq (s_get_number (peak, "copy_gbps"), median, 1e-9 * median);

    const msgpack_object *sgemm = s_get_map (&res.root, "sgemm");
    cr_assert_eq (s_get_number (sgemm, "n"), 67);
    const double gflops = s_get_number (sgemm, "gflops_median");
    cr_assert_float_eq (s_get_number (fig, "gflops"), gflops, 1e-9 * gflops);
    cr_assert_float_eq (s_get_number (fig, "peak_fraction"),
                        gflops / s_get_number (peak, "fma_gflops"), 1e-9);
    cr_assert_gt (s_get_number (sgemm, "gflops_median"), 0);
    cr_assert_geq (s_get_number (sgemm, "gflops_best"), s_get_number (sgemm, "gflops_median"));
    s_check_ms (sgemm, "ms", 2);
    double max_err = s_get_number (sgemm, "max_rel_err");
    cr_assert_geq (max_err, 0);
    cr_assert_lt (max_err, WRK_BENCH_SGEMM_TOL);
    cr_assert_eq (s_get_number (sgemm, "tolerance"), WRK_BENCH_SGEMM_TOL);
    cr_assert_eq (s_get_number (sgemm, "rows_checked"), 67);

    const msgpack_object *device = s_get_map (&res.root, "device");
    char name [256];
    cr_assert_eq (cmn_codec_get_cstr (device, "name", name, sizeof name, &err), 0);
    cr_assert_str_eq (name, wrk_device_info (dev)->name);

    const msgpack_object *kernels;
    cr_assert_eq (cmn_codec_get_array (&res.root, "kernels", &kernels, &err), 0, "%s", err.msg);
    cr_assert_eq (kernels->via.array.size, 3);
    const char *names [] = { "sgemm_peak", "copy_f4", "sgemm" };
    for (int i = 0; i < 3; i++) {
        const msgpack_object *k = &kernels->via.array.ptr [i];
        char kname [64];
        cr_assert_eq (cmn_codec_get_cstr (k, "name", kname, sizeof kname, &err), 0);
        cr_assert_str_eq (kname, names [i]);
        cr_assert_gt (s_get_number (k, "ns"), 0);
        cr_assert_eq (s_get_number (k, "runs"), i == 0 ? 3 : 2);
    }
    cmn_body_free (&res);
    s_job_free (&j);
    wrk_device_destroy (&dev);
}

Test (wrk_bench, stop_before_start_is_cancelled)
{
    wrk_device_t *dev = s_open ();
    s_job_t j;
    s_job_init (&j, dev, "copy_mb", 4u, "gemm_n", 67u, "reps", 2u, NULL);
    atomic_store (&j.stop, RXQ_E_CANCELLED);
    cr_assert_eq (wrk_bench_device (&j.job), -1);
    cr_assert_eq (j.job.err.code, RXQ_E_CANCELLED, "%d %s", j.job.err.code, j.job.err.msg);
    cr_assert_eq (j.result_buf.size, 0, "a failed run packed a result");
    s_job_free (&j);
    wrk_device_destroy (&dev);
}

Test (wrk_bench, stop_while_running_is_cancelled)
{
    wrk_device_t *dev = s_open ();
    s_job_t j;
    s_job_init (&j, dev, "copy_mb", 1u, "gemm_n", 16u, "reps", 3u, NULL);
    //  The first progress event comes after setup; the stop must be seen
    //  at the next enqueue.
    j.sink.stop_on_first = &j.stop;
    cr_assert_eq (wrk_bench_device (&j.job), -1);
    cr_assert_eq (j.job.err.code, RXQ_E_CANCELLED, "%d %s", j.job.err.code, j.job.err.msg);
    cr_assert_eq (j.sink.events, 1);
    cr_assert_eq (j.result_buf.size, 0);
    s_job_free (&j);
    wrk_device_destroy (&dev);
}

Test (wrk_bench, past_deadline_is_timeout)
{
    wrk_device_t *dev = s_open ();
    s_job_t j;
    s_job_init (&j, dev, "copy_mb", 1u, "gemm_n", 16u, "reps", 1u, NULL);
    j.job.deadline_ms = wrk_job_now_ms () - 1;
    cr_assert_eq (wrk_bench_device (&j.job), -1);
    cr_assert_eq (j.job.err.code, RXQ_E_TIMEOUT, "%d %s", j.job.err.code, j.job.err.msg);
    s_job_free (&j);
    wrk_device_destroy (&dev);
}

Test (wrk_bench, bad_parameters_are_refused)
{
    wrk_device_t *dev = s_open ();
    s_job_t j;
    s_job_init (&j, dev, "reps", 0u, NULL);
    cr_assert_eq (wrk_bench_device (&j.job), -1);
    cr_assert_eq (j.job.err.code, RXQ_E_PARAM);
    cr_assert (strstr (j.job.err.msg, "reps"), "%s", j.job.err.msg);
    s_job_free (&j);

    s_job_init (&j, dev, "gemm_n", 9000u, NULL);
    cr_assert_eq (wrk_bench_device (&j.job), -1);
    cr_assert_eq (j.job.err.code, RXQ_E_PARAM);
    cr_assert (strstr (j.job.err.msg, "gemm_n"), "%s", j.job.err.msg);
    s_job_free (&j);

    //  A string where a number belongs.
    s_job_init (&j, dev, NULL);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_str (&pk, "copy_mb", "lots");
    cmn_body_t params;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&params, sb.data, sb.size, &cmn_codec_limits_default, &err), 0);
    j.job.params = &params.root;
    cr_assert_eq (wrk_bench_device (&j.job), -1);
    cr_assert_eq (j.job.err.code, RXQ_E_PARAM);
    cr_assert (strstr (j.job.err.msg, "copy_mb"), "%s", j.job.err.msg);
    cmn_body_free (&params);
    msgpack_sbuffer_destroy (&sb);
    s_job_free (&j);
    wrk_device_destroy (&dev);
}

Test (wrk_bench, no_device_is_refused)
{
    s_job_t j;
    s_job_init (&j, NULL, NULL);
    cr_assert_eq (wrk_bench_device (&j.job), -1);
    cr_assert_eq (j.job.err.code, RXQ_E_NODEVICE);
    s_job_free (&j);
}

//  A kernel that writes nothing must fail verification, not pass on stale
//  buffer contents.
Test (wrk_bench, copy_that_writes_nothing_fails_check)
{
    char *dir = s_kernel_dir_with ("copy.cl",
        "__kernel void copy_f4 (__global const float4 *src, __global float4 *dst,\n"
        "                       const uint n) { }\n");
    wrk_device_t *dev = s_open ();
    s_job_t j;
    s_job_init (&j, dev, "copy_mb", 1u, "gemm_n", 16u, "reps", 1u, NULL);
    cr_assert_eq (wrk_bench_device (&j.job), -1);
    cr_assert_eq (j.job.err.code, RXQ_E_CHECK, "%d %s", j.job.err.code, j.job.err.msg);
    cr_assert (strstr (j.job.err.msg, "copy: element 0 "), "%s", j.job.err.msg);
    s_job_free (&j);
    wrk_device_destroy (&dev);
    s_kernel_dir_remove (dir, "copy.cl");
}

Test (wrk_bench, sgemm_that_writes_nothing_fails_check)
{
    char *dir = s_kernel_dir_with ("sgemm.cl",
        "__kernel void sgemm (const int M, const int N, const int K, const float alpha,\n"
        "    __global const float *A, const int a_off, const int lda,\n"
        "    __global const float *B, const int b_off, const int ldb, const float beta,\n"
        "    __global float *C, const int c_off, const int ldc) { }\n");
    wrk_device_t *dev = s_open ();
    s_job_t j;
    s_job_init (&j, dev, "copy_mb", 1u, "gemm_n", 16u, "reps", 1u, NULL);
    cr_assert_eq (wrk_bench_device (&j.job), -1);
    cr_assert_eq (j.job.err.code, RXQ_E_CHECK, "%d %s", j.job.err.code, j.job.err.msg);
    cr_assert (strstr (j.job.err.msg, "sgemm n=16: C[0,0]"), "%s", j.job.err.msg);
    s_job_free (&j);
    wrk_device_destroy (&dev);
    s_kernel_dir_remove (dir, "sgemm.cl");
}

//  ---------------------------------------------------------------------------
//  kernels/sgemm.cl against a CPU reference

static void
s_fill (float *x, size_t count, unsigned seed)
{
    srand (seed);
    for (size_t i = 0; i < count; i++)
        x [i] = (float) rand () / (float) RAND_MAX * 2.0f - 1.0f;
}

//  Largest componentwise error of C against alpha A B + beta C0.
static double
s_max_error (size_t M, size_t N, size_t K, float alpha, const float *A, const float *B,
             float beta, const float *C0, const float *C, size_t *wi, size_t *wj)
{
    double worst = 0;
    *wi = *wj = 0;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double ref = 0, mag = 0;
            for (size_t k = 0; k < K; k++) {
                double p = (double) A [i * K + k] * B [k * N + j];
                ref += p;
                mag += fabs (p);
            }
            double c0 = C0 ? C0 [i * N + j] : 0;
            ref = alpha * ref + beta * c0;
            mag = fabs (alpha) * mag + fabs (beta) * fabs (c0);
            double e = fabs ((double) C [i * N + j] - ref) / (mag > 0 ? mag : 1);
            if (!(e <= worst)) {
                worst = isnan (e) ? INFINITY : e;
                *wi = i;
                *wj = j;
            }
        }
    return worst;
}

static void
s_check_shape (wrk_device_t *dev, size_t M, size_t N, size_t K)
{
    float *A = malloc (M * K * sizeof *A);
    float *B = malloc (K * N * sizeof *B);
    float *C = malloc (M * N * sizeof *C);
    cr_assert (A && B && C);
    s_fill (A, M * K, (unsigned) (M * 31 + K));
    s_fill (B, K * N, (unsigned) (N * 17 + K));
    for (size_t i = 0; i < M * N; i++)
        C [i] = 12345.0f;       // must be overwritten, not accumulated into
    uint64_t ns = 0;
    cmn_err_t err = { 0 };
    cr_assert_eq (wrk_bench_sgemm_run (dev, M, N, K, A, B, C, &ns, &err), 0,
                  "%zux%zux%zu: %s", M, N, K, err.msg);
    cr_assert_gt (ns, 0);
    size_t wi, wj;
    double e = s_max_error (M, N, K, 1.0f, A, B, 0.0f, NULL, C, &wi, &wj);
    cr_assert_lt (e, WRK_BENCH_SGEMM_TOL, "%zux%zux%zu: error %g at C[%zu,%zu] = %g",
                  M, N, K, e, wi, wj, (double) C [wi * N + wj]);
    free (A);
    free (B);
    free (C);
}

Test (wrk_bench, sgemm_awkward_shapes)
{
    wrk_device_t *dev = s_open ();
    //  M x N x K: a single element; odd sizes below one tile; sizes just
    //  over tile multiples; exact tiles; thin matrices (N = 1, M = 1).
    static const size_t shapes [][3] = {
        { 1, 1, 1 }, { 17, 33, 65 }, { 128, 96, 257 }, { 64, 64, 16 },
        { 65, 129, 17 }, { 200, 1, 300 }, { 1, 150, 70 }, { 3, 5, 7 },
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes [0]; i++)
        s_check_shape (dev, shapes [i][0], shapes [i][1], shapes [i][2]);
    wrk_device_destroy (&dev);
}

//  The tuning parameters the bench/ tuner will vary: each configuration
//  must give correct results on a shape that has whole interior tiles (the
//  prefetching path of DIRECT=0, float4 local reads when WPTM and WPTN are
//  multiples of 4, with and without padding) and partial tiles in M, N and
//  K. Launched here directly, since wrk_bench_sgemm picks its own.
Test (wrk_bench, sgemm_tuning_configurations)
{
    static const struct { int tsm, tsn, tsk, wptm, wptn, vw, apad; } configs [] = {
        { 64, 64, 16, 4, 4, 1, 1 }, { 32, 32, 8, 2, 4, 2, 1 }, { 16, 64, 16, 2, 8, 8, 1 },
        { 128, 128, 16, 8, 8, 4, 1 }, { 32, 16, 32, 4, 1, 16, 1 }, { 8, 8, 4, 1, 1, 4, 1 },
        { 128, 128, 8, 8, 8, 4, 0 }, { 64, 128, 16, 4, 8, 4, 2 }, { 64, 64, 32, 8, 4, 8, 1 },
        { 96, 64, 16, 6, 8, 2, 1 },
    };
    static float A [150 * 133], B [133 * 140], C [150 * 140];
    const int M = 150, N = 140, K = 133;
    s_fill (A, (size_t) M * K, 11);
    s_fill (B, (size_t) K * N, 12);
    wrk_device_t *dev = s_open ();
    cl_context ctx = wrk_device_context (dev);
    cl_int rc;
    cl_mem a = clCreateBuffer (ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof A, A, &rc);
    cl_mem b = clCreateBuffer (ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof B, B, &rc);
    cl_mem c = clCreateBuffer (ctx, CL_MEM_READ_WRITE, sizeof C, NULL, &rc);
    cr_assert (a && b && c);
    for (size_t i = 0; i < sizeof configs / sizeof configs [0]; i++) {
        char options [160];
        snprintf (options, sizeof options, "-DTSM=%d -DTSN=%d -DTSK=%d -DWPTM=%d -DWPTN=%d "
                  "-DVW=%d -DAPAD=%d", configs [i].tsm, configs [i].tsn, configs [i].tsk,
                  configs [i].wptm, configs [i].wptn, configs [i].vw, configs [i].apad);
        cmn_err_t err = { 0 };
        cl_program p = wrk_device_program (dev, "sgemm.cl", options, &err);
        cr_assert_not_null (p, "%s: %s", options, err.msg);
        cl_kernel k = clCreateKernel (p, "sgemm", &rc);
        cr_assert_not_null (k);
        const float alpha = 1.0f, beta = 0.0f;
        const int zero = 0;
        cl_int set = CL_SUCCESS;
        set |= clSetKernelArg (k, 0, sizeof M, &M);
        set |= clSetKernelArg (k, 1, sizeof N, &N);
        set |= clSetKernelArg (k, 2, sizeof K, &K);
        set |= clSetKernelArg (k, 3, sizeof alpha, &alpha);
        set |= clSetKernelArg (k, 4, sizeof a, &a);
        set |= clSetKernelArg (k, 5, sizeof zero, &zero);
        set |= clSetKernelArg (k, 6, sizeof K, &K);
        set |= clSetKernelArg (k, 7, sizeof b, &b);
        set |= clSetKernelArg (k, 8, sizeof zero, &zero);
        set |= clSetKernelArg (k, 9, sizeof N, &N);
        set |= clSetKernelArg (k, 10, sizeof beta, &beta);
        set |= clSetKernelArg (k, 11, sizeof c, &c);
        set |= clSetKernelArg (k, 12, sizeof zero, &zero);
        set |= clSetKernelArg (k, 13, sizeof N, &N);
        cr_assert_eq (set, CL_SUCCESS);
        size_t local [2] = { (size_t) (configs [i].tsn / configs [i].wptn),
                             (size_t) (configs [i].tsm / configs [i].wptm) };
        size_t global [2] = { (size_t) ((N + configs [i].tsn - 1) / configs [i].tsn) * local [0],
                              (size_t) ((M + configs [i].tsm - 1) / configs [i].tsm) * local [1] };
        const float nan_value = NAN;
        cr_assert_eq (clEnqueueFillBuffer (wrk_device_queue (dev), c, &nan_value, sizeof nan_value,
                                           0, sizeof C, 0, NULL, NULL), CL_SUCCESS);
        cr_assert_eq (clEnqueueNDRangeKernel (wrk_device_queue (dev), k, 2, NULL, global, local,
                                              0, NULL, NULL), CL_SUCCESS, "%s", options);
        cr_assert_eq (clEnqueueReadBuffer (wrk_device_queue (dev), c, CL_TRUE, 0, sizeof C, C,
                                           0, NULL, NULL), CL_SUCCESS);
        size_t wi, wj;
        double e = s_max_error ((size_t) M, (size_t) N, (size_t) K, 1.0f, A, B, 0.0f, NULL, C,
                                &wi, &wj);
        cr_assert_lt (e, WRK_BENCH_SGEMM_TOL, "%s: error %g at C[%zu,%zu]", options, e, wi, wj);
        clReleaseKernel (k);
    }
    clReleaseMemObject (a);
    clReleaseMemObject (b);
    clReleaseMemObject (c);
    wrk_device_destroy (&dev);
}

Test (wrk_bench, sgemm_alpha_beta)
{
    wrk_device_t *dev = s_open ();
    const size_t M = 70, N = 45, K = 33;
    float A [70 * 33], B [33 * 45], C0 [70 * 45], C [70 * 45];
    s_fill (A, M * K, 1);
    s_fill (B, K * N, 2);
    s_fill (C0, M * N, 3);
    memcpy (C, C0, sizeof C);
    cmn_err_t err = { 0 };
    cr_assert_eq (wrk_bench_sgemm (dev, M, N, K, 0.5f, A, B, -2.0f, C, NULL, &err), 0,
                  "%s", err.msg);
    size_t wi, wj;
    double e = s_max_error (M, N, K, 0.5f, A, B, -2.0f, C0, C, &wi, &wj);
    cr_assert_lt (e, WRK_BENCH_SGEMM_TOL, "error %g at C[%zu,%zu]", e, wi, wj);

    //  beta = 0 ignores C, even when it holds NaN.
    for (size_t i = 0; i < M * N; i++)
        C [i] = NAN;
    cr_assert_eq (wrk_bench_sgemm (dev, M, N, K, 2.0f, A, B, 0.0f, C, NULL, &err), 0,
                  "%s", err.msg);
    e = s_max_error (M, N, K, 2.0f, A, B, 0.0f, NULL, C, &wi, &wj);
    cr_assert_lt (e, WRK_BENCH_SGEMM_TOL, "error %g at C[%zu,%zu]", e, wi, wj);
    wrk_device_destroy (&dev);
}

Test (wrk_bench, sgemm_bad_sizes_are_refused)
{
    wrk_device_t *dev = s_open ();
    float x = 1.0f, c = 0.0f;
    cmn_err_t err = { 0 };
    cr_assert_eq (wrk_bench_sgemm_run (dev, 0, 1, 1, &x, &x, &c, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_INVAL);
    //  Sizes are checked before any buffer is touched, so tiny host arrays
    //  are safe here.
    cr_assert_eq (wrk_bench_sgemm_run (dev, 1u << 20, 1u << 12, 1, &x, &x, &c, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_LIMIT, "%d %s", err.code, err.msg);
    wrk_device_destroy (&dev);
}
