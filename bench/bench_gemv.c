/*  bench_gemv: quantized GEMV (kernels/qmatmul.cl) against the device's
 *  copy bandwidth, measured in the same run with kernels/copy.cl
 *  (wrk_bench_copy).
 *
 *  For each type (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K) and shape ROWSxCOLS: 64
 *  distinct random rows are quantized with cmn_quant and tiled over the
 *  matrix; enough copies of the matrix are allocated to cover --rotate-mb
 *  (default 256 MiB), and the timed runs cycle through them, so that the
 *  weights come from DRAM and not from a last-level cache larger than one
 *  matrix (the H100's L2 holds 50 MB). One warm-up per copy, then REPS
 *  timed runs (event profiling); the output of the last is checked against
 *  the CPU reference with the bound of docs/kernels.md. GB/s counts the
 *  weight bytes + x read + y written over the median kernel time; the
 *  ratio is GB/s over the copy GB/s (2 * bytes / time).
 *
 *  The types NAME.i8 (q4_0.i8 ... q6_k.i8) run the GEMV on int8 x
 *  (wrk_kernels_quant_i8 once, then wrk_kernels_gemv_q_i8): "us" and
 *  GB/s are the GEMV kernel's (its bytes count x as int8 with its scales
 *  and sums); the x_us column is the quantization of x, which a model
 *  pays once per input vector, not per matrix. The check then allows x's
 *  rounding too: |y - ref| <= gamma * sum |w x| + sum_b (dx_b / 2) sum |w|
 *  over block b. "i8dot" says whether the device's int8 dot product ran.
 *
 *  Usage: bench_gemv [--device SEL] [--shapes 4096x4096,11008x4096]
 *                    [--types q4_0,q4_1,q8_0,q4_k,q6_k,q4_0.i8,...] [--reps 20]
 *                    [--copy-mb 256] [--rotate-mb 256] [--options OPTS]
 *  --options ("-DQMM_WGS=128 -DGEMV_ROWS=4") installs those qmatmul
 *  parameters as the device's override for this run, as a tuned entry
 *  would be. Exit status 1 when a result is wrong or a run fails.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cmn_quant.h"
#include "cmn_quant_blocks.h"
#include "wrk_bench.h"
#include "wrk_device.h"
#include "wrk_kernels.h"
#include "wrk_ref.h"
#include "wrk_tune.h"

#define S_MAX_SHAPES 8
#define S_DISTINCT_ROWS 64
#define S_MAX_COPIES 64

static const struct {
    const char *name;           // flag spelling
    int type;                   // GGML_TYPE_*
    bool i8;                    // the GEMV on int8 x (wrk_kernels_gemv_q_i8)
} s_types [] = {
    { "q4_0", GGML_TYPE_Q4_0, false }, { "q4_1", GGML_TYPE_Q4_1, false },
    { "q8_0", GGML_TYPE_Q8_0, false }, { "q4_k", GGML_TYPE_Q4_K, false },
    { "q6_k", GGML_TYPE_Q6_K, false }, { "q4_0.i8", GGML_TYPE_Q4_0, true },
    { "q4_1.i8", GGML_TYPE_Q4_1, true }, { "q8_0.i8", GGML_TYPE_Q8_0, true },
    { "q4_k.i8", GGML_TYPE_Q4_K, true }, { "q6_k.i8", GGML_TYPE_Q6_K, true },
};
#define S_NTYPES (int) (sizeof s_types / sizeof s_types [0])

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static double
s_median (uint64_t *v, size_t n)
{
    qsort (v, n, sizeof *v, s_cmp_u64);
    return n % 2 ? (double) v [n / 2] : ((double) v [n / 2 - 1] + (double) v [n / 2]) / 2;
}

//  Runs one type and shape; returns 0, or -1 after printing why.
static int
s_run (wrk_device_t *dev, int type, bool i8, const char *tname, int rows, int cols, int reps,
       uint64_t rotate_bytes, double copy_gbps, double *ratio_out)
{
    cl_context ctx = wrk_device_context (dev);
    cl_command_queue q = wrk_device_queue (dev);
    const size_t rb = cmn_quant_row_bytes (type, (size_t) cols);
    if (rb == 0) {
        fprintf (stderr, "bench_gemv: %s: cols %d is not a multiple of the block\n", tname, cols);
        return -1;
    }
    const size_t w_bytes = (size_t) rows * rb;
    size_t copies = (size_t) (rotate_bytes / w_bytes) + 1;
    if (copies > S_MAX_COPIES)
        copies = S_MAX_COPIES;
    const uint64_t max_alloc = wrk_device_info (dev)->max_alloc;
    if (w_bytes > max_alloc) {
        fprintf (stderr, "bench_gemv: %s %dx%d needs %zu bytes, over the device's largest "
                 "buffer\n", tname, rows, cols, w_bytes);
        return -1;
    }
    const int distinct = rows < S_DISTINCT_ROWS ? rows : S_DISTINCT_ROWS;
    int rc = -1;
    float *wf = malloc ((size_t) cols * sizeof *wf);
    uint8_t *wq = malloc (w_bytes);
    float *x = malloc ((size_t) cols * sizeof *x);
    float *y = malloc ((size_t) rows * sizeof *y);
    float *ref = malloc ((size_t) distinct * sizeof *ref);
    double *absdot = malloc ((size_t) distinct * sizeof *absdot);
    uint64_t *ns = calloc ((size_t) reps, sizeof *ns), *qns = calloc ((size_t) reps, sizeof *qns);
    double *slack = calloc ((size_t) distinct, sizeof *slack);
    cl_mem w [S_MAX_COPIES] = { 0 }, dx = NULL, dy = NULL, xq = NULL, xd = NULL, xs = NULL;
    size_t made = 0;
    const size_t nb = (size_t) cols / 32;
    if (!wf || !wq || !x || !y || !ref || !absdot || !ns || !qns || !slack) {
        fprintf (stderr, "bench_gemv: out of host memory\n");
        goto done;
    }
    for (int r = 0; r < distinct; r++) {
        wrk_ref_fill (wf, (size_t) cols, 77 + (uint64_t) r, -1.0f, 1.0f);
        cmn_quant_quantize_row (type, wf, wq + (size_t) r * rb, (size_t) cols);
    }
    for (int r = distinct; r < rows; r++)
        memcpy (wq + (size_t) r * rb, wq + (size_t) (r % distinct) * rb, rb);
    wrk_ref_fill (x, (size_t) cols, 78, -1.0f, 1.0f);
    wrk_ref_gemm_q (type, wq, x, ref, distinct, cols, 1, absdot);
    if (i8 && wrk_ref_i8_slack (type, wq, x, distinct, cols, slack)) {
        fprintf (stderr, "bench_gemv: out of host memory\n");
        goto done;
    }
    cl_int cl;
    for (made = 0; made < copies; made++) {
        w [made] = clCreateBuffer (ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, w_bytes, wq,
                                   &cl);
        if (!w [made]) {
            if (made == 0) {
                fprintf (stderr, "bench_gemv: clCreateBuffer: %s\n", cmn_cl_strerror (cl));
                goto done;
            }
            break;              // fewer copies than asked: still a valid run
        }
    }
    dx = clCreateBuffer (ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                         (size_t) cols * sizeof (float), x, &cl);
    dy = dx ? clCreateBuffer (ctx, CL_MEM_READ_WRITE, (size_t) rows * sizeof (float), NULL, &cl)
            : NULL;
    if (dy && i8) {
        xq = clCreateBuffer (ctx, CL_MEM_READ_WRITE, (size_t) cols, NULL, &cl);
        xd = xq ? clCreateBuffer (ctx, CL_MEM_READ_WRITE, nb * 4, NULL, &cl) : NULL;
        xs = xd ? clCreateBuffer (ctx, CL_MEM_READ_WRITE, nb * 4, NULL, &cl) : NULL;
    }
    if (!dy || (i8 && !xs)) {
        fprintf (stderr, "bench_gemv: clCreateBuffer: %s\n", cmn_cl_strerror (cl));
        goto done;
    }
    cmn_err_t err = { 0 };
    //  Warm-up: every copy once (builds the program, touches the pages).
    for (size_t i = 0; i < made + (size_t) reps; i++) {
        cl_event ev = NULL, qev = NULL;
        if (i8 ? wrk_kernels_quant_i8 (dev, dx, xq, xd, xs, cols, &qev, &err)
              || wrk_kernels_gemv_q_i8 (dev, type, w [i % made], xq, xd, xs, dy, rows, cols,
                                        &ev, &err)
           : wrk_kernels_gemv_q (dev, type, w [i % made], dx, dy, rows, cols, &ev, &err)) {
            fprintf (stderr, "bench_gemv: %s: %s\n", tname, err.msg);
            if (qev)
                clReleaseEvent (qev);
            goto done;
        }
        clWaitForEvents (1, &ev);
        if (i >= made) {
            ns [i - made] = wrk_device_event_ns (ev);
            qns [i - made] = qev ? wrk_device_event_ns (qev) : 0;
        }
        clReleaseEvent (ev);
        if (qev)
            clReleaseEvent (qev);
    }
    clEnqueueReadBuffer (q, dy, CL_TRUE, 0, (size_t) rows * sizeof (float), y, 0, NULL, NULL);
    const double gamma = (cols + 1) * 0x1p-24 / (1 - cols * 0x1p-24);
    for (int r = 0; r < rows; r++)
        if (!(fabs ((double) y [r] - (double) ref [r % distinct])
              <= gamma * absdot [r % distinct] + slack [r % distinct])) {
            fprintf (stderr, "bench_gemv: %s %dx%d: y[%d] = %.9g, reference %.9g\n", tname,
                     rows, cols, r, (double) y [r], (double) ref [r % distinct]);
            goto done;
        }
    double t = s_median (ns, (size_t) reps);
    double moved = (double) w_bytes + (i8 ? cols + 8.0 * nb : 4.0 * cols) + 4.0 * rows;
    double gbps = moved / t;
    *ratio_out = gbps / copy_gbps;
    printf ("%-7s %6d %6d %10.1f %10.3f %9.1f %8.3f %7zu", tname, rows, cols, t / 1e3,
            moved / 1e6, gbps, gbps / copy_gbps, made);
    if (i8)
        printf (" %8.1f %5s", s_median (qns, (size_t) reps) / 1e3,
                wrk_kernels_i8_dot (dev) ? "yes" : "no");
    printf ("\n");
    fflush (stdout);
    rc = 0;
done:
    for (size_t i = 0; i < made; i++)
        clReleaseMemObject (w [i]);
    if (dy)
        clReleaseMemObject (dy);
    if (dx)
        clReleaseMemObject (dx);
    if (xq)
        clReleaseMemObject (xq);
    if (xd)
        clReleaseMemObject (xd);
    if (xs)
        clReleaseMemObject (xs);
    free (qns);
    free (slack);
    free (wf);
    free (wq);
    free (x);
    free (y);
    free (ref);
    free (absdot);
    free (ns);
    return rc;
}

//  Installs the qmatmul parameters named in OPTIONS ("-DNAME=v ...") as
//  DEV's tuning override. Returns 0, or -1 with RXQ_E_PARAM in ERR.
static int
s_install_options (wrk_device_t *dev, const char *options, cmn_err_t *err)
{
    wrk_tune_t t;
    wrk_tune_for_device (dev, &t);
    if (wrk_tune_parse_options (&t, WRK_TUNE_QMATMUL, options, err)
    ||  wrk_tune_validate (&t, err))
        return -1;
    return wrk_tune_override_family (dev, &t, WRK_TUNE_QMATMUL, err);
}

int
main (int argc, char **argv)
{
    const char *selector = NULL, *options = NULL;
    const char *types = "q4_0,q4_1,q8_0,q4_k,q6_k,q4_0.i8,q4_1.i8,q8_0.i8,q4_k.i8,q6_k.i8";
    int shapes [S_MAX_SHAPES][2] = { { 4096, 4096 }, { 11008, 4096 } }, nshapes = 2, reps = 20;
    uint64_t copy_mb = 256, rotate_mb = 256;
    for (int i = 1; i + 1 < argc + 1; i++) {
        const char *arg = argv [i], *val = i + 1 < argc ? argv [i + 1] : NULL;
        if (!val) {
            fprintf (stderr, "bench_gemv: %s needs a value\n", arg);
            return 2;
        }
        if (!strcmp (arg, "--device"))
            selector = val;
        else
        if (!strcmp (arg, "--types"))
            types = val;
        else
        if (!strcmp (arg, "--options"))
            options = val;
        else
        if (!strcmp (arg, "--reps"))
            reps = atoi (val);
        else
        if (!strcmp (arg, "--copy-mb"))
            copy_mb = strtoull (val, NULL, 10);
        else
        if (!strcmp (arg, "--rotate-mb"))
            rotate_mb = strtoull (val, NULL, 10);
        else
        if (!strcmp (arg, "--shapes")) {
            nshapes = 0;
            for (const char *p = val; *p && nshapes < S_MAX_SHAPES; ) {
                if (sscanf (p, "%dx%d", &shapes [nshapes][0], &shapes [nshapes][1]) != 2) {
                    fprintf (stderr, "bench_gemv: shapes are ROWSxCOLS,...\n");
                    return 2;
                }
                nshapes++;
                p += strcspn (p, ",");
                p += *p == ',';
            }
        }
        else {
            fprintf (stderr, "usage: bench_gemv [--device SEL] [--shapes RxC,...] "
                     "[--types q4_0,...] [--reps R] [--copy-mb MB] [--rotate-mb MB] "
                     "[--options OPTS]\n");
            return 2;
        }
        i++;
    }
    if (reps < 1 || reps > 10000 || copy_mb < 1 || copy_mb > 4096 || rotate_mb > 65536) {
        fprintf (stderr, "bench_gemv: --reps, --copy-mb or --rotate-mb out of range\n");
        return 2;
    }
    for (int s = 0; s < nshapes; s++)
        if (shapes [s][0] < 1 || shapes [s][1] < 1 || shapes [s][0] > (1 << 20)
        ||  shapes [s][1] > (1 << 20)) {
            fprintf (stderr, "bench_gemv: shape out of range\n");
            return 2;
        }
    cmn_err_t err = { 0 };
    wrk_device_t *dev = wrk_device_new (selector, NULL, &err);
    if (!dev) {
        fprintf (stderr, "bench_gemv: %s\n", err.msg);
        return 1;
    }
    if (options && s_install_options (dev, options, &err)) {
        fprintf (stderr, "bench_gemv: --options: %s\n", err.msg);
        wrk_device_destroy (&dev);
        return 2;
    }
    const wrk_device_info_t *info = wrk_device_info (dev);
    char qopts [WRK_TUNE_OPTIONS_MAX];
    wrk_tune_device_options (dev, WRK_TUNE_QMATMUL, qopts, sizeof qopts);
    printf ("device: %s / %s (%s), driver %s, %s\n", info->platform, info->name, info->type,
            info->driver, info->version);
    printf ("rxq %s, qmatmul %s\n", RXQ_VERSION, qopts);

    uint64_t bytes = copy_mb << 20;
    uint64_t *cns = calloc ((size_t) reps, sizeof *cns);
    if (!cns || wrk_bench_copy (dev, NULL, &bytes, (size_t) reps, cns, &err)) {
        fprintf (stderr, "bench_gemv: copy: %s\n", cns ? err.msg : "out of memory");
        free (cns);
        wrk_device_destroy (&dev);
        return 1;
    }
    double copy_gbps = 2.0 * (double) bytes / s_median (cns, (size_t) reps);
    free (cns);
    printf ("copy: %llu bytes, %.1f GB/s (median of %d)\n", (unsigned long long) bytes,
            copy_gbps, reps);
    printf ("%-7s %6s %6s %10s %10s %9s %8s %7s %8s %5s\n", "type", "rows", "cols", "us", "MB",
            "GB/s", "vs_copy", "copies", "x_us", "i8dot");
    int status = 0, counted [2] = { 0, 0 };
    double rmin [2] = { INFINITY, INFINITY };       // f32 x, int8 x
    for (int t = 0; t < S_NTYPES; t++) {
        //  Only the types named in --types (case-insensitive, comma list).
        bool want = false;
        for (const char *p = types; *p; ) {
            size_t len = strcspn (p, ",");
            if (len == strlen (s_types [t].name) && !strncasecmp (p, s_types [t].name, len))
                want = true;
            p += len;
            p += *p == ',';
        }
        if (!want)
            continue;
        for (int s = 0; s < nshapes; s++) {
            double ratio = 0;
            if (s_run (dev, s_types [t].type, s_types [t].i8, s_types [t].name, shapes [s][0],
                       shapes [s][1],
                       reps, rotate_mb << 20, copy_gbps, &ratio))
                status = 1;
            else {
                const int f = s_types [t].i8;
                counted [f]++;
                rmin [f] = ratio < rmin [f] ? ratio : rmin [f];
            }
        }
    }
    for (int f = 0; f < 2; f++)
        if (counted [f])
            printf ("summary: %s x, %d runs, GEMV GB/s over copy GB/s: min %.3f (target 0.80: "
                    "%s)\n", f ? "int8" : "f32", counted [f], rmin [f],
                    rmin [f] >= 0.8 ? "met" : "not met");
    wrk_device_destroy (&dev);
    return status;
}
