/*  bench_gemm: kernels/sgemm.cl against CLBlast's SGEMM on one device.
 *
 *  For each size n (square, row-major, C = A * B): both libraries run on
 *  the same context, queue and buffers, with random inputs in [-1, 1);
 *  one warm-up each, then REPS alternating timed runs (wall clock around
 *  enqueue + clFinish, so CLBlast's helper kernels count, and our kernel's
 *  event time is shown beside it). Prints per size the median GFLOPS of
 *  each, the ratio ours / CLBlast, and the error of each against a double
 *  reference on sampled rows (componentwise, WRK_BENCH_SGEMM_TOL) and of
 *  ours against CLBlast (max |ours - clblast| / max |clblast|); then a
 *  summary line. Exit status 1 when a result is wrong or a run fails.
 *
 *  Usage: bench_gemm [--device SEL] [--sizes 1024,2048,3072,4096]
 *                    [--reps 5] [--options "-DTSM=..."] [--tune MS]
 *  --tune runs wrk_tune_search_sgemm (at min(n, 1024)) for MS ms first and
 *  uses its winner; --options forces a configuration. Needs no broker.
 */
#include <clblast_c.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "wrk_bench.h"
#include "wrk_device.h"
#include "wrk_ref.h"
#include "wrk_tune.h"

#define S_MAX_SIZES 16

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double
s_median (double *v, int n)
{
    qsort (v, (size_t) n, sizeof *v, s_cmp_double);
    return n % 2 ? v [n / 2] : (v [n / 2 - 1] + v [n / 2]) / 2;
}

static void
s_usage (void)
{
    fprintf (stderr, "usage: bench_gemm [--device SEL] [--sizes N,N,...] [--reps R] "
             "[--options OPTS] [--tune MS]\n");
}

int
main (int argc, char **argv)
{
    const char *selector = NULL, *options = NULL;
    int sizes [S_MAX_SIZES] = { 1024, 2048, 3072, 4096 }, nsizes = 4, reps = 5, tune_ms = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i], *val = i + 1 < argc ? argv [i + 1] : NULL;
        if (!strcmp (arg, "--device") && val)
            selector = val;
        else
        if (!strcmp (arg, "--options") && val)
            options = val;
        else
        if (!strcmp (arg, "--reps") && val)
            reps = atoi (val);
        else
        if (!strcmp (arg, "--tune") && val)
            tune_ms = atoi (val);
        else
        if (!strcmp (arg, "--sizes") && val) {
            nsizes = 0;
            for (const char *p = val; *p && nsizes < S_MAX_SIZES; ) {
                sizes [nsizes++] = atoi (p);
                p += strcspn (p, ",");
                p += *p == ',';
            }
        }
        else {
            s_usage ();
            return 2;
        }
        i++;
    }
    if (reps < 1 || reps > 1000) {
        fprintf (stderr, "bench_gemm: --reps must be in [1, 1000]\n");
        return 2;
    }
    for (int i = 0; i < nsizes; i++)
        if (sizes [i] < 1 || sizes [i] > 16384) {
            fprintf (stderr, "bench_gemm: size %d is not in [1, 16384]\n", sizes [i]);
            return 2;
        }
    cmn_err_t err = { 0 };
    wrk_device_t *dev = wrk_device_new (selector, NULL, &err);
    if (!dev) {
        fprintf (stderr, "bench_gemm: %s\n", err.msg);
        return 1;
    }
    const wrk_device_info_t *info = wrk_device_info (dev);
    wrk_tune_t tune;
    wrk_tune_for_device (dev, &tune);
    printf ("device: %s / %s (%s), driver %s, %s\n", info->platform, info->name, info->type,
            info->driver, info->version);
    printf ("rxq %s, tuning row '%s'\n", RXQ_VERSION, tune.row);

    char opts [WRK_TUNE_OPTIONS_MAX];
    if (options)
        snprintf (opts, sizeof opts, "%s", options);
    else
        wrk_bench_sgemm_options (dev, opts, sizeof opts);
    if (tune_ms > 0) {
        int tn = 1024;
        for (int i = 0; i < nsizes; i++)
            if (sizes [i] < tn)
                tn = sizes [i] < 64 ? 64 : sizes [i];
        double g = 0;
        double t0 = s_now ();
        if (wrk_tune_search_sgemm (dev, tn, tune_ms, opts, sizeof opts, &g, &err)) {
            fprintf (stderr, "bench_gemm: tuning failed: %s\n", err.msg);
            wrk_device_destroy (&dev);
            return 1;
        }
        printf ("tuned at n=%d in %.1f s: %.1f GFLOPS with %s\n", tn, s_now () - t0, g, opts);
    }
    printf ("ours: %s\n", opts);
    printf ("%6s %12s %12s %12s %8s %10s %10s %10s\n", "n", "ours_GFLOPS", "ours_kern",
            "clblast", "ratio", "err_ours", "err_clb", "ours~clb");

    cl_context ctx = wrk_device_context (dev);
    cl_command_queue queue = wrk_device_queue (dev);
    int status = 0;
    double ratio_min = INFINITY, ratio_sum = 0;
    int counted = 0;
    for (int s = 0; s < nsizes; s++) {
        const size_t n = (size_t) sizes [s], nn = n * n, bytes = nn * sizeof (float);
        float *A = malloc (bytes), *B = malloc (bytes), *C1 = malloc (bytes),
              *C2 = malloc (bytes);
        double *t_ours = calloc ((size_t) reps, sizeof (double));
        double *t_kern = calloc ((size_t) reps, sizeof (double));
        double *t_clb = calloc ((size_t) reps, sizeof (double));
        cl_mem a = NULL, b = NULL, c1 = NULL, c2 = NULL;
        cl_int cl = CL_SUCCESS;
        bool ok = A && B && C1 && C2 && t_ours && t_kern && t_clb;
        if (ok) {
            wrk_ref_fill (A, nn, 1000 + n, -1.0f, 1.0f);
            wrk_ref_fill (B, nn, 2000 + n, -1.0f, 1.0f);
            a = clCreateBuffer (ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, A, &cl);
            b = a ? clCreateBuffer (ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, B, &cl)
                  : NULL;
            c1 = b ? clCreateBuffer (ctx, CL_MEM_READ_WRITE, bytes, NULL, &cl) : NULL;
            c2 = c1 ? clCreateBuffer (ctx, CL_MEM_READ_WRITE, bytes, NULL, &cl) : NULL;
            ok = c2 != NULL;
            if (!ok)
                fprintf (stderr, "bench_gemm: n=%zu: clCreateBuffer: %s\n", n,
                         cmn_cl_strerror (cl));
        }
        else
            fprintf (stderr, "bench_gemm: n=%zu: out of host memory\n", n);
        for (int r = -1; ok && r < reps; r++) {
            cl_event ev = NULL;
            clFinish (queue);
            double t0 = s_now ();
            if (wrk_bench_sgemm_enqueue (dev, opts, n, n, n, 1.0f, a, b, 0.0f, c1, &ev, &err)) {
                fprintf (stderr, "bench_gemm: ours n=%zu: %s\n", n, err.msg);
                ok = false;
                break;
            }
            clFinish (queue);
            double t1 = s_now ();
            if (r >= 0) {
                t_ours [r] = t1 - t0;
                t_kern [r] = (double) wrk_device_event_ns (ev) * 1e-9;
            }
            clReleaseEvent (ev);
            ev = NULL;
            t0 = s_now ();
            CLBlastStatusCode st = CLBlastSgemm (CLBlastLayoutRowMajor, CLBlastTransposeNo,
                                                 CLBlastTransposeNo, n, n, n, 1.0f, a, 0, n,
                                                 b, 0, n, 0.0f, c2, 0, n, &queue, &ev);
            if (st != CLBlastSuccess) {
                fprintf (stderr, "bench_gemm: CLBlastSgemm n=%zu: status %d\n", n, (int) st);
                ok = false;
                break;
            }
            clFinish (queue);
            t1 = s_now ();
            if (ev)
                clReleaseEvent (ev);
            if (r >= 0)
                t_clb [r] = t1 - t0;
        }
        if (ok) {
            cl = clEnqueueReadBuffer (queue, c1, CL_TRUE, 0, bytes, C1, 0, NULL, NULL);
            if (cl == CL_SUCCESS)
                cl = clEnqueueReadBuffer (queue, c2, CL_TRUE, 0, bytes, C2, 0, NULL, NULL);
            ok = cl == CL_SUCCESS;
        }
        if (ok) {
            double e1 = 0, e2 = 0, dmax = 0, cmax = 0;
            size_t step = n <= 256 ? 1 : n / 16;
            wrk_bench_sgemm_max_error (n, n, n, A, B, C1, step, &e1);
            wrk_bench_sgemm_max_error (n, n, n, A, B, C2, step, &e2);
            for (size_t i = 0; i < nn; i++) {
                double d = fabs ((double) C1 [i] - (double) C2 [i]);
                if (!(d <= dmax))
                    dmax = d;
                if (fabs ((double) C2 [i]) > cmax)
                    cmax = fabs ((double) C2 [i]);
            }
            double flop = 2.0 * (double) n * (double) n * (double) n;
            double g1 = flop / s_median (t_ours, reps) * 1e-9;
            double gk = flop / s_median (t_kern, reps) * 1e-9;
            double g2 = flop / s_median (t_clb, reps) * 1e-9;
            double rel = cmax > 0 ? dmax / cmax : dmax;
            printf ("%6zu %12.1f %12.1f %12.1f %8.3f %10.2e %10.2e %10.2e\n", n, g1, gk, g2,
                    g1 / g2, e1, e2, rel);
            fflush (stdout);
            if (!(e1 <= WRK_BENCH_SGEMM_TOL)) {
                fprintf (stderr, "bench_gemm: n=%zu: our result is wrong (error %.3g)\n", n, e1);
                status = 1;
            }
            ratio_min = g1 / g2 < ratio_min ? g1 / g2 : ratio_min;
            ratio_sum += g1 / g2;
            counted++;
        }
        else
            status = 1;
        if (c2)
            clReleaseMemObject (c2);
        if (c1)
            clReleaseMemObject (c1);
        if (b)
            clReleaseMemObject (b);
        if (a)
            clReleaseMemObject (a);
        free (A);
        free (B);
        free (C1);
        free (C2);
        free (t_ours);
        free (t_kern);
        free (t_clb);
    }
    if (counted)
        printf ("summary: %d sizes, ours/CLBlast ratio min %.3f mean %.3f (%s)\n", counted,
                ratio_min, ratio_sum / counted,
                ratio_min >= 1.0 ? "at least as fast everywhere" : "slower somewhere");
    wrk_device_destroy (&dev);
    return status;
}
