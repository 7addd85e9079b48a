/*  wrk_farm: bench.gemm, bench.gemv, bench.kernels and tune (see
 *  wrk_farm.h for the record they produce).
 */
#include "wrk_farm.h"
#include "wrk_bench.h"
#include "wrk_device.h"
#include "wrk_kernels.h"
#include "wrk_ref.h"
#include "wrk_tune.h"
#include "cmn_codec.h"
#include "cmn_quant.h"
#include "cmn_quant_blocks.h"
#include "rxq_kernels.h"
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_PEAK_COPY_MB 16           // copy buffer of measured_peak, MiB
#define S_BENCH_KERNELS 16          // cases of s_kernel_run

//  --------------------------------------------------------------------------
//  Kernel hash

static char s_hash [17];
static pthread_once_t s_hash_once = PTHREAD_ONCE_INIT;

static void
s_hash_init (void)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const rxq_kernel_file_t *k = rxq_kernel_files; k->name; k++) {
        size_t size = 0;
        char *text = rxq_kernels_load (k->name, &size);
        //  The name and its NUL separate one file from the next, so that
        //  moving text between files changes the hash.
        for (const char *p = k->name; ; p++) {
            h = (h ^ (unsigned char) *p) * 0x100000001b3ULL;
            if (!*p)
                break;
        }
        for (size_t i = 0; text && i < size; i++)
            h = (h ^ (unsigned char) text [i]) * 0x100000001b3ULL;
        free (text);
    }
    snprintf (s_hash, sizeof s_hash, "%016llx", (unsigned long long) h);
}

const char *
wrk_farm_kernel_hash (void)
{
    pthread_once (&s_hash_once, s_hash_init);
    return s_hash;
}

//  --------------------------------------------------------------------------
//  Records

void
wrk_farm_record_param (wrk_farm_record_t *r, const char *key, uint64_t value, const char *text)
{
    assert (r->nparams < WRK_FARM_MAX_PARAMS);
    r->params [r->nparams].key = key;
    r->params [r->nparams].value = value;
    r->params [r->nparams].text = text;
    r->nparams++;
}

void
wrk_farm_record_extra (wrk_farm_record_t *r, const char *key, double value)
{
    assert (r->nextra < WRK_FARM_MAX_EXTRA);
    r->extra [r->nextra].key = key;
    r->extra [r->nextra].value = value;
    r->nextra++;
}

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static uint64_t
s_median (uint64_t *ns, size_t count)
{
    qsort (ns, count, sizeof *ns, s_cmp_u64);
    uint64_t m = count % 2 ? ns [count / 2] : (ns [count / 2 - 1] + ns [count / 2]) / 2;
    return m ? m : 1;
}

uint64_t
wrk_farm_record_kernel (wrk_farm_record_t *r, const char *name, uint64_t *ns, size_t count)
{
    assert (r->nkernels < WRK_FARM_MAX_KERNELS);
    uint64_t m = s_median (ns, count);
    snprintf (r->kernels [r->nkernels].name, sizeof r->kernels [0].name, "%s", name);
    r->kernels [r->nkernels].ns = m;
    r->kernels [r->nkernels].runs = count;
    r->nkernels++;
    return m;
}

static void
s_pack_header (wrk_job_t *job, const char *kind)
{
    msgpack_packer *pk = job->result;
    cmn_pack_kv_uint (pk, "record_version", 1);
    cmn_pack_kv_str (pk, "kind", kind);
    cmn_pack_key (pk, "device");
    wrk_device_pack_info (job->device, pk);
    cmn_pack_kv_str (pk, "rxq_version", RXQ_VERSION);
    cmn_pack_kv_str (pk, "kernel_hash", wrk_farm_kernel_hash ());
}

void
wrk_farm_record_start (wrk_farm_record_t *r, wrk_device_t *dev, const char *kind,
                       uint64_t seed, wrk_tune_family_t family)
{
    assert (r && dev && kind);
    r->kind = kind;
    r->seed = seed;
    wrk_tune_t tune;
    wrk_tune_for_device (dev, &tune);
    r->row = tune.row;
    if (family < WRK_TUNE_FAMILIES)
        wrk_tune_options (&tune, family, r->options, sizeof r->options);
}

void
wrk_farm_pack_record (wrk_job_t *job, const wrk_farm_record_t *r)
{
    wrk_farm_pack_record_open (job, r, 0);
}

void
wrk_farm_pack_record_open (wrk_job_t *job, const wrk_farm_record_t *r, size_t more)
{
    msgpack_packer *pk = job->result;
    msgpack_pack_map (pk, 11 + more);
    s_pack_header (job, r->kind);
    cmn_pack_key (pk, "params");
    msgpack_pack_map (pk, (size_t) r->nparams);
    for (int i = 0; i < r->nparams; i++)
        if (r->params [i].text)
            cmn_pack_kv_str (pk, r->params [i].key, r->params [i].text);
        else
            cmn_pack_kv_uint (pk, r->params [i].key, r->params [i].value);
    cmn_pack_kv_uint (pk, "seed", r->seed);
    cmn_pack_key (pk, "tuning");
    msgpack_pack_map (pk, 2);
    cmn_pack_kv_str (pk, "row", r->row ? r->row : "");
    cmn_pack_kv_str (pk, "options", r->options);
    cmn_pack_key (pk, "figures");
    msgpack_pack_map (pk, 3 + (size_t) r->nextra);
    cmn_pack_kv_double (pk, "gflops", r->gflops);
    cmn_pack_kv_double (pk, "gbps", r->gbps);
    cmn_pack_kv_double (pk, "peak_fraction", r->peak_fraction);
    for (int i = 0; i < r->nextra; i++)
        cmn_pack_kv_double (pk, r->extra [i].key, r->extra [i].value);
    cmn_pack_key (pk, "kernels");
    msgpack_pack_array (pk, (size_t) r->nkernels);
    for (int i = 0; i < r->nkernels; i++) {
        msgpack_pack_map (pk, 3);
        cmn_pack_kv_str (pk, "name", r->kernels [i].name);
        cmn_pack_kv_uint (pk, "ns", r->kernels [i].ns);
        cmn_pack_kv_uint (pk, "runs", r->kernels [i].runs);
    }
    cmn_pack_key (pk, "measured_peak");
    msgpack_pack_map (pk, 2);
    cmn_pack_kv_double (pk, "copy_gbps", r->copy_gbps);
    cmn_pack_kv_double (pk, "fma_gflops", r->fma_gflops);
}

//  --------------------------------------------------------------------------
//  Parameters and helpers

int
wrk_farm_get_uint (wrk_job_t *job, const char *key, uint64_t lo, uint64_t hi, uint64_t def,
                   uint64_t *value)
{
    *value = def;
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

static const struct {
    const char *name;           // parameter spelling
    int type;                   // GGML_TYPE_*
} s_qtypes [] = {
    { "q4_0", GGML_TYPE_Q4_0 }, { "q4_1", GGML_TYPE_Q4_1 }, { "q8_0", GGML_TYPE_Q8_0 },
    { "q4_k", GGML_TYPE_Q4_K }, { "q6_k", GGML_TYPE_Q6_K },
};

//  Reads the optional `type` parameter; *NAME receives the canonical
//  spelling (static).
static int
s_qtype (wrk_job_t *job, int *type, const char **name)
{
    char text [16] = "q4_0";
    if (cmn_codec_find (job->params, "type")
    &&  cmn_codec_get_cstr (job->params, "type", text, sizeof text, &job->err) < 0) {
        job->err.code = RXQ_E_PARAM;
        return -1;
    }
    for (size_t i = 0; i < sizeof s_qtypes / sizeof s_qtypes [0]; i++)
        if (strcasecmp (text, s_qtypes [i].name) == 0) {
            *type = s_qtypes [i].type;
            *name = s_qtypes [i].name;
            return 0;
        }
    return cmn_err_set (&job->err, RXQ_E_PARAM, "parameter 'type' is '%s', must be one of "
                        "q4_0, q4_1, q8_0, q4_k, q6_k", text);
}

static int
s_need_device (wrk_job_t *job, const char *kind)
{
    if (!job->device)
        return cmn_err_set (&job->err, RXQ_E_NODEVICE, "%s needs an OpenCL device and this "
                            "worker has none", kind);
    return 0;
}

static cl_mem
s_buffer (wrk_job_t *job, size_t bytes, const void *host)
{
    cl_int rc;
    cl_mem mem = clCreateBuffer (wrk_device_context (job->device),
                                 CL_MEM_READ_WRITE | (host ? CL_MEM_COPY_HOST_PTR : 0),
                                 bytes, (void *) host, &rc);
    if (!mem)
        wrk_device_cl_error (&job->err, "clCreateBuffer", rc);
    return mem;
}

//  Waits for EV and releases it; returns its device time (>= 1 ns) or 0
//  with job->err set.
static uint64_t
s_wait (wrk_job_t *job, cl_event ev)
{
    cl_int rc = clWaitForEvents (1, &ev);
    uint64_t t = rc == CL_SUCCESS ? wrk_device_event_ns (ev) : 0;
    clReleaseEvent (ev);
    if (rc != CL_SUCCESS) {
        wrk_device_cl_error (&job->err, "clWaitForEvents", rc);
        return 0;
    }
    return t ? t : 1;
}

int
wrk_farm_measure_peak (wrk_job_t *job, wrk_farm_record_t *r)
{
    uint64_t ns [3], bytes = (uint64_t) S_PEAK_COPY_MB << 20;
    if (wrk_bench_copy (job->device, NULL, &bytes, 3, ns, &job->err))
        return -1;
    r->copy_gbps = 2.0 * (double) bytes / (double) wrk_farm_record_kernel (r, "copy_f4", ns, 3);
    if (wrk_job_should_stop (job))
        return -1;
    return wrk_farm_measure_fma (job, r);
}

int
wrk_farm_measure_fma (wrk_job_t *job, wrk_farm_record_t *r)
{
    const wrk_device_info_t *info = wrk_device_info (job->device);
    const bool gpu = strcmp (info->type, "gpu") == 0;
    const int iters = gpu ? 1024 : 128;
    const size_t local = 64 <= info->max_wg ? 64 : info->max_wg;
    const size_t global = (size_t) (info->compute_units ? info->compute_units : 1) * 16 * local;
    cl_program program = wrk_device_program (job->device, "sgemm.cl", NULL, &job->err);
    if (!program)
        return -1;
    cl_int rc;
    cl_kernel k = clCreateKernel (program, "sgemm_peak", &rc);
    if (!k)
        return wrk_device_cl_error (&job->err, "clCreateKernel (sgemm_peak)", rc);
    cl_mem out = s_buffer (job, global * sizeof (float), NULL);
    int status = -1;
    const float seed = 0.5f;
    if (!out)
        goto done;
    rc = clSetKernelArg (k, 0, sizeof out, &out);
    rc |= clSetKernelArg (k, 1, sizeof iters, &iters);
    rc |= clSetKernelArg (k, 2, sizeof seed, &seed);
    if (rc != CL_SUCCESS) {
        cmn_err_set (&job->err, RXQ_E_OPENCL, "clSetKernelArg (sgemm_peak) failed");
        goto done;
    }
    uint64_t pns [3];
    for (int i = 0; i < 4; i++) {
        if (wrk_job_should_stop (job))
            goto done;
        cl_event ev;
        rc = clEnqueueNDRangeKernel (wrk_device_queue (job->device), k, 1, NULL, &global,
                                     &local, 0, NULL, &ev);
        if (rc != CL_SUCCESS) {
            wrk_device_cl_error (&job->err, "clEnqueueNDRangeKernel (sgemm_peak)", rc);
            goto done;
        }
        uint64_t t = s_wait (job, ev);
        if (!t)
            goto done;
        if (i > 0)
            pns [i - 1] = t;
    }
    r->fma_gflops = (double) global * iters * 8 * 16 * 2
                  / (double) wrk_farm_record_kernel (r, "sgemm_peak", pns, 3);
    status = 0;
done:
    if (out)
        clReleaseMemObject (out);
    clReleaseKernel (k);
    return status;
}

//  --------------------------------------------------------------------------
//  bench.gemm

int
wrk_farm_bench_gemm (wrk_job_t *job)
{
    assert (job);
    uint64_t n, reps, seed;
    if (s_need_device (job, "bench.gemm")
    ||  wrk_farm_get_uint (job, "n", 16, 8192, 256, &n)
    ||  wrk_farm_get_uint (job, "reps", 1, 1000, 5, &reps)
    ||  wrk_farm_get_uint (job, "seed", 0, UINT64_MAX, 1, &seed))
        return -1;
    wrk_device_t *dev = job->device;
    wrk_farm_record_t *r = calloc (1, sizeof *r);
    const size_t nn = (size_t) n * (size_t) n, bytes = nn * sizeof (float);
    float *A = malloc (bytes), *B = malloc (bytes), *C = malloc (bytes);
    uint64_t *ns = calloc ((size_t) reps, sizeof *ns);
    cl_mem a = NULL, b = NULL, c = NULL;
    int rc = -1;
    if (!r || !A || !B || !C || !ns) {
        cmn_err_set (&job->err, RXQ_E_NOMEM, "bench.gemm: out of memory");
        goto done;
    }
    wrk_farm_record_start (r, dev, "bench.gemm", seed, WRK_TUNE_FAMILIES);
    wrk_farm_record_param (r, "n", n, NULL);
    wrk_farm_record_param (r, "reps", reps, NULL);
    wrk_farm_record_param (r, "seed", seed, NULL);
    wrk_bench_sgemm_options (dev, r->options, sizeof r->options);
    wrk_job_progress (job, 0.02, "bench.gemm: measuring the device's peaks");
    if (wrk_farm_measure_peak (job, r))
        goto done;
    wrk_ref_fill (A, nn, seed * 2 + 1, -1.0f, 1.0f);
    wrk_ref_fill (B, nn, seed * 2 + 2, -1.0f, 1.0f);
    if (!(a = s_buffer (job, bytes, A)) || !(b = s_buffer (job, bytes, B))
    ||  !(c = s_buffer (job, bytes, NULL)))
        goto done;
    const double flop = 2.0 * (double) n * (double) n * (double) n;
    for (uint64_t i = 0; i <= reps; i++) {
        if (wrk_job_should_stop (job))
            goto done;
        cl_event ev;
        if (wrk_bench_sgemm_enqueue (dev, r->options, n, n, n, 1.0f, a, b, 0.0f, c, &ev,
                                     &job->err))
            goto done;
        uint64_t t = s_wait (job, ev);
        if (!t)
            goto done;
        if (i > 0) {
            ns [i - 1] = t;
            wrk_job_progress (job, 0.2 + 0.6 * (double) i / (double) reps,
                              "sgemm n=%llu: run %llu of %llu, %.1f GFLOPS",
                              (unsigned long long) n, (unsigned long long) i,
                              (unsigned long long) reps, flop / (double) t);
        }
    }
    cl_int cl = clEnqueueReadBuffer (wrk_device_queue (dev), c, CL_TRUE, 0, bytes, C, 0, NULL,
                                     NULL);
    if (cl != CL_SUCCESS) {
        wrk_device_cl_error (&job->err, "clEnqueueReadBuffer", cl);
        goto done;
    }
    double max_err;
    size_t step = n <= 512 ? 1 : (size_t) n / 32;
    if (wrk_bench_sgemm_max_error (n, n, n, A, B, C, step, &max_err)) {
        cmn_err_set (&job->err, RXQ_E_NOMEM, "bench.gemm: out of memory for the reference");
        goto done;
    }
    if (!(max_err <= WRK_BENCH_SGEMM_TOL)) {
        cmn_err_set (&job->err, RXQ_E_CHECK, "bench.gemm n=%llu: error %.3g over the bound "
                     "%.0e", (unsigned long long) n, max_err, WRK_BENCH_SGEMM_TOL);
        goto done;
    }
    uint64_t best = ns [0];
    for (uint64_t i = 1; i < reps; i++)
        best = ns [i] < best ? ns [i] : best;
    uint64_t med = wrk_farm_record_kernel (r, "sgemm", ns, (size_t) reps);
    r->gflops = flop / (double) med;
    r->gbps = 3.0 * (double) bytes / (double) med;
    r->peak_fraction = r->gflops / r->fma_gflops;
    wrk_farm_record_extra (r, "gflops_best", flop / (double) best);
    wrk_farm_record_extra (r, "ms_median", (double) med / 1e6);
    wrk_farm_record_extra (r, "max_rel_err", max_err);
    wrk_farm_record_extra (r, "tolerance", WRK_BENCH_SGEMM_TOL);
    wrk_farm_pack_record (job, r);
    wrk_job_progress (job, 1.0, "done");
    rc = 0;
done:
    if (c)
        clReleaseMemObject (c);
    if (b)
        clReleaseMemObject (b);
    if (a)
        clReleaseMemObject (a);
    free (A);
    free (B);
    free (C);
    free (ns);
    free (r);
    return rc;
}

//  --------------------------------------------------------------------------
//  bench.gemv

int
wrk_farm_bench_gemv (wrk_job_t *job)
{
    assert (job);
    uint64_t rows, cols, reps, seed;
    int type = 0;
    const char *tname = NULL;
    char xname [8] = "f32";
    if (cmn_codec_find (job->params, "x")
    &&  cmn_codec_get_cstr (job->params, "x", xname, sizeof xname, &job->err) < 0) {
        job->err.code = RXQ_E_PARAM;
        return -1;
    }
    const bool i8 = strcmp (xname, "i8") == 0;
    if (!i8 && strcmp (xname, "f32") != 0)
        return cmn_err_set (&job->err, RXQ_E_PARAM, "parameter 'x' is '%s', must be f32 or i8",
                            xname);
    if (s_need_device (job, "bench.gemv")
    ||  s_qtype (job, &type, &tname)
    ||  wrk_farm_get_uint (job, "rows", 1, 65536, 1024, &rows)
    ||  wrk_farm_get_uint (job, "cols", 1, 65536, 1024, &cols)
    ||  wrk_farm_get_uint (job, "reps", 1, 1000, 10, &reps)
    ||  wrk_farm_get_uint (job, "seed", 0, UINT64_MAX, 1, &seed))
        return -1;
    const size_t rb = cmn_quant_row_bytes (type, (size_t) cols);
    if (rb == 0)
        return cmn_err_set (&job->err, RXQ_E_PARAM, "bench.gemv: cols %llu is not a multiple "
                            "of the %s block (%zu values)", (unsigned long long) cols, tname,
                            cmn_quant_block_values (type));
    wrk_device_t *dev = job->device;
    const size_t w_bytes = (size_t) rows * rb;
    wrk_farm_record_t *r = calloc (1, sizeof *r);
    float *wf = malloc ((size_t) cols * sizeof *wf);
    uint8_t *wq = malloc (w_bytes);
    float *x = malloc ((size_t) cols * sizeof *x);
    float *y = malloc ((size_t) rows * sizeof *y);
    float *ref = malloc ((size_t) rows * sizeof *ref);
    double *absdot = malloc ((size_t) rows * sizeof *absdot);
    uint64_t *ns = calloc ((size_t) reps, sizeof *ns), *qns = calloc ((size_t) reps, sizeof *qns);
    double *slack = calloc ((size_t) rows, sizeof *slack);
    cl_mem dw = NULL, dx = NULL, dy = NULL, xq = NULL, xd = NULL, xs = NULL;
    const size_t nx = (size_t) cols / 32;
    int rc = -1;
    if (!r || !wf || !wq || !x || !y || !ref || !absdot || !ns || !qns || !slack) {
        cmn_err_set (&job->err, RXQ_E_NOMEM, "bench.gemv: out of memory");
        goto done;
    }
    wrk_farm_record_start (r, dev, "bench.gemv", seed, WRK_TUNE_QMATMUL);
    wrk_farm_record_param (r, "type", 0, tname);
    wrk_farm_record_param (r, "x", 0, i8 ? "i8" : "f32");
    wrk_farm_record_param (r, "rows", rows, NULL);
    wrk_farm_record_param (r, "cols", cols, NULL);
    wrk_farm_record_param (r, "reps", reps, NULL);
    wrk_farm_record_param (r, "seed", seed, NULL);
    wrk_job_progress (job, 0.02, "bench.gemv: measuring the device's peaks");
    if (wrk_farm_measure_peak (job, r))
        goto done;
    wrk_job_progress (job, 0.2, "bench.gemv: quantizing %llu x %llu %s",
                      (unsigned long long) rows, (unsigned long long) cols, tname);
    for (uint64_t i = 0; i < rows; i++) {
        wrk_ref_fill (wf, (size_t) cols, seed * 1000003 + i, -1.0f, 1.0f);
        cmn_quant_quantize_row (type, wf, wq + i * rb, (size_t) cols);
    }
    wrk_ref_fill (x, (size_t) cols, seed ^ 0x5eed, -1.0f, 1.0f);
    if (wrk_ref_gemm_q (type, wq, x, ref, (int) rows, (int) cols, 1, absdot)) {
        cmn_err_set (&job->err, RXQ_E_NOMEM, "bench.gemv: reference failed");
        goto done;
    }
    if (i8 && wrk_ref_i8_slack (type, wq, x, (int) rows, (int) cols, slack)) {
        cmn_err_set (&job->err, RXQ_E_NOMEM, "bench.gemv: reference failed");
        goto done;
    }
    if (!(dw = s_buffer (job, w_bytes, wq)) || !(dx = s_buffer (job, cols * sizeof (float), x))
    ||  !(dy = s_buffer (job, rows * sizeof (float), NULL)))
        goto done;
    if (i8 && (!(xq = s_buffer (job, cols, NULL)) || !(xd = s_buffer (job, nx * 4, NULL))
           ||  !(xs = s_buffer (job, nx * 4, NULL))))
        goto done;
    const double moved = (double) w_bytes + (i8 ? (double) cols + 8.0 * (double) nx
                                                : 4.0 * (double) cols) + 4.0 * (double) rows;
    for (uint64_t i = 0; i <= reps; i++) {
        if (wrk_job_should_stop (job))
            goto done;
        cl_event ev, qev = NULL;
        if (i8 && wrk_kernels_quant_i8 (dev, dx, xq, xd, xs, (int) cols, &qev, &job->err))
            goto done;
        if (i8 ? wrk_kernels_gemv_q_i8 (dev, type, dw, xq, xd, xs, dy, (int) rows, (int) cols,
                                        &ev, &job->err)
               : wrk_kernels_gemv_q (dev, type, dw, dx, dy, (int) rows, (int) cols, &ev,
                                     &job->err)) {
            if (qev)
                clReleaseEvent (qev);
            goto done;
        }
        const uint64_t qt = qev ? s_wait (job, qev) : 0;
        if (qev && !qt) {
            clReleaseEvent (ev);
            goto done;
        }
        uint64_t t = s_wait (job, ev);
        if (!t)
            goto done;
        if (i > 0) {
            ns [i - 1] = t;
            qns [i - 1] = qt;
            wrk_job_progress (job, 0.4 + 0.5 * (double) i / (double) reps,
                              "gemv %s: run %llu of %llu, %.1f GB/s", tname,
                              (unsigned long long) i, (unsigned long long) reps,
                              moved / (double) t);
        }
    }
    cl_int cl = clEnqueueReadBuffer (wrk_device_queue (dev), dy, CL_TRUE, 0,
                                     rows * sizeof (float), y, 0, NULL, NULL);
    if (cl != CL_SUCCESS) {
        wrk_device_cl_error (&job->err, "clEnqueueReadBuffer", cl);
        goto done;
    }
    //  The bound of docs/kernels.md: only the order of the float sums
    //  differs from the reference (and, for int8 x, x's rounding).
    const double gamma = ((double) cols + 1) * 0x1p-24 / (1 - (double) cols * 0x1p-24);
    double worst = 0;
    for (uint64_t i = 0; i < rows; i++) {
        double d = fabs ((double) y [i] - (double) ref [i]);
        double e = absdot [i] > 0 ? d / absdot [i] : d;
        if (!(d <= gamma * absdot [i] + slack [i])) {
            cmn_err_set (&job->err, RXQ_E_CHECK, "bench.gemv %s: y[%llu] is %.9g, reference "
                         "%.9g", tname, (unsigned long long) i, (double) y [i],
                         (double) ref [i]);
            goto done;
        }
        worst = e > worst ? e : worst;
    }
    uint64_t med = wrk_farm_record_kernel (r, i8 ? "qgemv_i8" : "qgemv", ns, (size_t) reps);
    if (i8) {
        const uint64_t qmed = wrk_farm_record_kernel (r, "qi8_quant", qns, (size_t) reps);
        wrk_farm_record_extra (r, "x_us_median", (double) qmed / 1e3);
        wrk_farm_record_extra (r, "i8_dot", wrk_kernels_i8_dot (dev) ? 1 : 0);
    }
    r->gbps = moved / (double) med;
    r->gflops = 2.0 * (double) rows * (double) cols / (double) med;
    r->peak_fraction = r->gbps / r->copy_gbps;
    wrk_farm_record_extra (r, "bytes", moved);
    wrk_farm_record_extra (r, "us_median", (double) med / 1e3);
    wrk_farm_record_extra (r, "max_rel_err", worst);
    wrk_farm_pack_record (job, r);
    wrk_job_progress (job, 1.0, "done");
    rc = 0;
done:
    if (xq)
        clReleaseMemObject (xq);
    if (xd)
        clReleaseMemObject (xd);
    if (xs)
        clReleaseMemObject (xs);
    free (qns);
    free (slack);
    if (dy)
        clReleaseMemObject (dy);
    if (dx)
        clReleaseMemObject (dx);
    if (dw)
        clReleaseMemObject (dw);
    free (wf);
    free (wq);
    free (x);
    free (y);
    free (ref);
    free (absdot);
    free (ns);
    free (r);
    return rc;
}

//  --------------------------------------------------------------------------
//  bench.kernels

//  Shapes of one bench.kernels run and the buffers they use.
typedef struct {
    int d;                      // hidden size
    int t;                      // tokens
    int hd;                     // head size
    int heads;                  // heads (d / hd)
    int ctx;                    // KV cache rows
    wrk_conv_t cv;              // convolution geometry
    cl_mem wq;                  // Q4_0 weights [d, d]
    cl_mem x, w, y, z;          // float buffers of s_floats each
    cl_mem pos;                 // int32 positions [t]
} s_shapes_t;

//  Runs kernel I of the bench.kernels list on S; returns its name, or NULL
//  past the end. *BYTES receives the bytes it reads and writes.
static const char *
s_kernel_run (wrk_device_t *dev, int i, s_shapes_t *s, double *bytes, cl_event *ev,
              cmn_err_t *err, int *rc)
{
    const size_t td = (size_t) s->t * s->d;
    const wrk_rope_t rope = { s->t, s->heads, s->hd, s->hd, WRK_ROPE_NEOX, 10000.0f,
                              s->d, s->hd, s->d, s->hd };
    const wrk_attn_t attn = { s->heads, s->heads, s->t, s->hd, s->ctx, s->ctx - s->t,
                              1.0f / sqrtf ((float) s->hd), 0, 0, 0 };
    const double qw = (double) s->d * (s->d / 32) * sizeof (block_q4_0);
    const double f = sizeof (float);
    switch (i) {
        case 0:
            *bytes = qw + f * 2 * s->d;
            *rc = wrk_kernels_gemv_q (dev, GGML_TYPE_Q4_0, s->wq, s->x, s->y, s->d, s->d, ev, err);
            return "qgemv_q4_0";
        case 1:
            *bytes = qw + f * 2 * (double) td;
            *rc = wrk_kernels_gemm_q (dev, GGML_TYPE_Q4_0, s->wq, s->x, s->y, s->d, s->d, s->t,
                                      ev, err);
            return "qgemm_q4_0";
        case 2:
            *bytes = f * (2 * (double) td + s->d);
            *rc = wrk_kernels_rms_norm (dev, s->x, s->w, s->y, s->t, s->d, 1e-5f, 0, ev, err);
            return "rms_norm";
        case 3:
            *bytes = f * (2 * (double) td + 2 * s->d);
            *rc = wrk_kernels_layer_norm (dev, s->x, s->w, s->w, s->y, s->t, s->d, 1e-5f,
                                          WRK_ACT_GELU, ev, err);
            return "layer_norm";
        case 4:
            *bytes = f * 2 * (double) s->heads * s->t * s->ctx;
            *rc = wrk_kernels_softmax (dev, s->x, s->y, s->heads * s->t, s->ctx, 0.125f, s->t,
                                       s->ctx - s->t, ev, err);
            return "softmax_rows";
        case 5:
            *bytes = f * 2 * (double) td;
            *rc = wrk_kernels_rope (dev, s->x, s->y, s->pos, &rope, ev, err);
            return "rope_f32";
        case 6:
            *bytes = f * (2 * (double) td + 2.0 * s->heads * s->ctx * s->hd);
            *rc = wrk_kernels_attention (dev, s->x, s->w, s->z, s->y, &attn, ev, err);
            return "attention_f32";
        case 7:
            *bytes = f * 3 * (double) td;
            *rc = wrk_kernels_add (dev, s->x, s->w, s->y, td, td, ev, err);
            return "ew_add";
        case 8:
            *bytes = f * 3 * (double) td;
            *rc = wrk_kernels_mul (dev, s->x, s->w, s->y, td, (size_t) s->d, ev, err);
            return "ew_mul";
        case 9:
            *bytes = f * 2 * (double) td;
            *rc = wrk_kernels_scale (dev, s->x, s->y, td, 0.5f, ev, err);
            return "ew_scale";
        case 10:
            *bytes = f * 2 * (double) td;
            *rc = wrk_kernels_silu (dev, s->x, s->y, td, ev, err);
            return "ew_silu";
        case 11:
            *bytes = f * 2 * (double) td;
            *rc = wrk_kernels_gelu (dev, s->x, s->y, td, ev, err);
            return "ew_gelu";
        case 12:
            *bytes = f * 3 * (double) td;
            *rc = wrk_kernels_swiglu (dev, s->x, s->w, s->y, td, ev, err);
            return "ew_swiglu";
        case 13:
            *bytes = f * 2 * (double) s->d * s->d;
            *rc = wrk_kernels_transpose (dev, s->x, s->y, s->d, s->d, ev, err);
            return "transpose_f32";
        case 14: {
            int oh, ow;
            wrk_kernels_conv_out (&s->cv, &oh, &ow);
            *bytes = f * ((double) s->cv.n * s->cv.c * s->cv.h * s->cv.w
                          + (double) s->cv.n * oh * ow * s->cv.c * s->cv.kh * s->cv.kw);
            *rc = wrk_kernels_im2col (dev, WRK_LAYOUT_NHWC, s->x, s->y, &s->cv, ev, err);
            return "im2col_nhwc";
        }
        case 15: {
            int oh, ow;
            wrk_kernels_conv_out (&s->cv, &oh, &ow);
            *bytes = f * ((double) s->cv.n * s->cv.c * s->cv.h * s->cv.w
                          + (double) s->cv.oc * s->cv.c * s->cv.kh * s->cv.kw
                          + (double) s->cv.n * oh * ow * s->cv.oc);
            *rc = wrk_kernels_conv2d_nhwc (dev, s->x, s->w, NULL, NULL, s->y, &s->cv, true, ev,
                                           err);
            return "conv2d_nhwc";
        }
        default:
            return NULL;
    }
}

int
wrk_farm_bench_kernels (wrk_job_t *job)
{
    assert (job);
    uint64_t scale, reps, seed;
    if (s_need_device (job, "bench.kernels")
    ||  wrk_farm_get_uint (job, "scale", 1, 32, 1, &scale)
    ||  wrk_farm_get_uint (job, "reps", 1, 100, 3, &reps)
    ||  wrk_farm_get_uint (job, "seed", 0, UINT64_MAX, 1, &seed))
        return -1;
    wrk_device_t *dev = job->device;
    s_shapes_t s = { .d = 256 * (int) scale, .t = 8, .hd = 64, .ctx = 128 };
    s.heads = s.d / s.hd;
    s.cv = (wrk_conv_t) { .n = 1, .c = 16 * (int) scale, .h = 32, .w = 32, .oc = 32,
                          .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1,
                          .pad_w = 1, .dil_h = 1, .dil_w = 1 };
    //  Every float buffer is large enough for the largest user: the d x d
    //  transpose, the KV cache, and the im2col matrix.
    size_t floats = (size_t) s.d * s.d;
    size_t kv = (size_t) s.heads * s.ctx * s.hd;
    size_t col = (size_t) s.cv.h * s.cv.w * s.cv.c * 9;
    floats = floats > kv ? floats : kv;
    floats = floats > col ? floats : col;
    const size_t rb = cmn_quant_row_bytes (GGML_TYPE_Q4_0, (size_t) s.d);
    wrk_farm_record_t *r = calloc (1, sizeof *r);
    float *host = malloc (floats * sizeof *host);
    uint8_t *wq = malloc ((size_t) s.d * rb);
    int32_t pos [8];
    uint64_t *ns = calloc ((size_t) reps, sizeof *ns);
    int rc = -1;
    if (!r || !host || !wq || !ns) {
        cmn_err_set (&job->err, RXQ_E_NOMEM, "bench.kernels: out of memory");
        goto done;
    }
    wrk_farm_record_start (r, dev, "bench.kernels", seed, WRK_TUNE_QMATMUL);
    wrk_farm_record_param (r, "scale", scale, NULL);
    wrk_farm_record_param (r, "reps", reps, NULL);
    wrk_farm_record_param (r, "seed", seed, NULL);
    wrk_job_progress (job, 0.02, "bench.kernels: measuring the device's peaks");
    if (wrk_farm_measure_peak (job, r))
        goto done;
    wrk_ref_fill (host, (size_t) s.d, seed, -1.0f, 1.0f);
    for (int i = 0; i < s.d; i++)
        cmn_quant_quantize_row (GGML_TYPE_Q4_0, host, wq + (size_t) i * rb, (size_t) s.d);
    wrk_ref_fill (host, floats, seed + 1, -1.0f, 1.0f);
    for (int i = 0; i < s.t; i++)
        pos [i] = s.ctx - s.t + i;
    if (!(s.wq = s_buffer (job, (size_t) s.d * rb, wq))
    ||  !(s.x = s_buffer (job, floats * sizeof (float), host))
    ||  !(s.w = s_buffer (job, floats * sizeof (float), host))
    ||  !(s.z = s_buffer (job, floats * sizeof (float), host))
    ||  !(s.y = s_buffer (job, floats * sizeof (float), NULL))
    ||  !(s.pos = s_buffer (job, sizeof pos, pos)))
        goto done;
    double total_bytes = 0, total_ns = 0;
    const int count = S_BENCH_KERNELS;
    for (int k = 0; k < count; k++) {
        const char *name = NULL;
        double bytes = 0;
        for (uint64_t i = 0; i <= reps; i++) {
            if (wrk_job_should_stop (job))
                goto done;
            cl_event ev = NULL;
            int krc = 0;
            name = s_kernel_run (dev, k, &s, &bytes, &ev, &job->err, &krc);
            if (krc)
                goto done;
            uint64_t t = s_wait (job, ev);
            if (!t)
                goto done;
            if (i > 0)
                ns [i - 1] = t;
        }
        uint64_t med = wrk_farm_record_kernel (r, name, ns, (size_t) reps);
        total_bytes += bytes;
        total_ns += (double) med;
        wrk_job_progress (job, 0.2 + 0.75 * (double) (k + 1) / count, "%s: %.1f us, %.1f GB/s",
                          name, (double) med / 1e3, bytes / (double) med);
    }
    r->gbps = total_bytes / total_ns;
    r->gflops = 2.0 * (double) s.d * s.d * (1 + s.t) / total_ns;
    r->peak_fraction = r->gbps / r->copy_gbps;
    wrk_farm_record_extra (r, "total_us", total_ns / 1e3);
    wrk_farm_record_extra (r, "hidden", s.d);
    wrk_farm_record_extra (r, "tokens", s.t);
    wrk_farm_pack_record (job, r);
    wrk_job_progress (job, 1.0, "done");
    rc = 0;
done:
    {
        cl_mem mems [] = { s.wq, s.x, s.w, s.z, s.y, s.pos };
        for (size_t i = 0; i < sizeof mems / sizeof mems [0]; i++)
            if (mems [i])
                clReleaseMemObject (mems [i]);
    }
    free (host);
    free (wq);
    free (ns);
    free (r);
    return rc;
}

//  --------------------------------------------------------------------------
//  tune

int
wrk_farm_tune (wrk_job_t *job)
{
    assert (job);
    uint64_t n, rows, cols, budget;
    int type = 0;
    const char *tname = NULL;
    if (s_need_device (job, "tune")
    ||  wrk_farm_get_uint (job, "n", 64, 4096, 256, &n)
    ||  s_qtype (job, &type, &tname)
    ||  wrk_farm_get_uint (job, "rows", 1, 65536, 1024, &rows)
    ||  wrk_farm_get_uint (job, "cols", 256, 65536, 1024, &cols)
    ||  wrk_farm_get_uint (job, "budget_ms", 100, 600000, 4000, &budget))
        return -1;
    wrk_device_t *dev = job->device;
    wrk_tune_t base, best;
    wrk_tune_for_device (dev, &base);
    best = base;
    char opts [WRK_TUNE_OPTIONS_MAX];
    double gflops = 0, gbps = 0;
    wrk_job_progress (job, 0.05, "tune: sgemm n=%llu for %llu ms", (unsigned long long) n,
                      (unsigned long long) budget / 2);
    if (wrk_job_should_stop (job))
        return -1;
    if (wrk_tune_search_sgemm (dev, (int) n, (int) budget / 2, opts, sizeof opts, &gflops,
                               &job->err)
    ||  wrk_tune_parse_options (&best, WRK_TUNE_SGEMM, opts, &job->err))
        return -1;
    wrk_job_progress (job, 0.5, "tune: sgemm %.1f GFLOPS; qmatmul %s %llux%llu", gflops, tname,
                      (unsigned long long) rows, (unsigned long long) cols);
    if (wrk_job_should_stop (job))
        return -1;
    if (wrk_tune_search_qmatmul (dev, type, (int) rows, (int) cols, (int) budget / 2, opts,
                                 sizeof opts, &gbps, &job->err)
    ||  wrk_tune_parse_options (&best, WRK_TUNE_QMATMUL, opts, &job->err))
        return -1;
    char key [512];
    wrk_tune_device_key (wrk_device_info (dev), key, sizeof key);
    msgpack_packer *pk = job->result;
    msgpack_pack_map (pk, 10);
    s_pack_header (job, "tune");
    cmn_pack_kv_str (pk, "device_key", key);
    cmn_pack_kv_str (pk, "row", base.row);
    cmn_pack_key (pk, "entry");
    msgpack_pack_map (pk, 2);
    cmn_pack_key (pk, "sgemm");
    wrk_tune_pack_family (&best, WRK_TUNE_SGEMM, pk);
    cmn_pack_key (pk, "qmatmul");
    wrk_tune_pack_family (&best, WRK_TUNE_QMATMUL, pk);
    cmn_pack_kv_double (pk, "gflops", gflops);
    cmn_pack_kv_double (pk, "gbps", gbps);
    wrk_job_progress (job, 1.0, "done");
    return 0;
}
