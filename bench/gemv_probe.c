/*  gemv_probe: what bounds the Q4_0 GEMV? (docs/kernels.md, "GEMV speed")
 *
 *  Times kernels/qmatmul.cl's qgemv_q4_0 next to the probe kernels of
 *  bench/gemv_probe.cl (other layouts and decodes, and the bare weight
 *  reads of the slice scheme) on one device, each as a fraction of the
 *  copy bandwidth measured in the same run (2 * bytes / time of a float4
 *  copy over 1 GiB). Weights rotate through --rotate-mb of copies so they
 *  come from DRAM, as in bench_gemv. Every kernel that computes y is
 *  checked against a double-precision reference within the GEMV's error
 *  bound, (cols + 1) u sum |w x| (the int8 kernel against the reference
 *  with x quantized the same way); a failure makes the exit status 1.
 *
 *  Standalone (raw OpenCL, no rxq library), so that it measures only the
 *  kernels; reads its sources at run time from --src (the repository
 *  root, where common/cmn_quant_blocks.h, kernels/qmatmul.cl and
 *  bench/gemv_probe.cl are).
 *
 *  Usage: gemv_probe [--device SUBSTRING] [--src DIR] [--reps N]
 *                    [--shapes RxC,...] [--rotate-mb MB]
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RXQ_SOURCE_DIR
#define RXQ_SOURCE_DIR "."
#endif
#define MAX_REPS 1000
#define MAX_COPIES 64

static cl_context s_ctx;
static cl_command_queue s_queue;
static cl_device_id s_dev;

static void
s_check (cl_int rc, const char *what)
{
    if (rc != CL_SUCCESS) {
        fprintf (stderr, "gemv_probe: %s failed: OpenCL error %d\n", what, rc);
        exit (2);
    }
}

static void *
s_alloc (size_t n)
{
    void *p = malloc (n ? n : 1);
    if (!p) {
        fprintf (stderr, "gemv_probe: out of memory (%zu bytes)\n", n);
        exit (2);
    }
    return p;
}

static char *
s_slurp (const char *dir, const char *name)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen (path, "rb");
    if (!f) {
        fprintf (stderr, "gemv_probe: cannot open %s (see --src)\n", path);
        exit (2);
    }
    fseek (f, 0, SEEK_END);
    long n = ftell (f);
    fseek (f, 0, SEEK_SET);
    char *buf = s_alloc ((size_t) n + 1);
    if (n < 0 || fread (buf, 1, (size_t) n, f) != (size_t) n) {
        fprintf (stderr, "gemv_probe: cannot read %s\n", path);
        exit (2);
    }
    buf [n] = 0;
    fclose (f);
    return buf;
}

//  NULL (with the build log printed) when the program does not build.
static cl_program
s_build (const char *src, const char *opts)
{
    cl_int rc;
    cl_program p = clCreateProgramWithSource (s_ctx, 1, &src, NULL, &rc);
    s_check (rc, "clCreateProgramWithSource");
    if (clBuildProgram (p, 1, &s_dev, opts, NULL, NULL) != CL_SUCCESS) {
        char log [16384] = "";
        clGetProgramBuildInfo (p, s_dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        fprintf (stderr, "gemv_probe: build failed (%s):\n%s\n", opts, log);
        clReleaseProgram (p);
        return NULL;
    }
    return p;
}

static float
s_half (uint16_t h)
{
    const int e = (h >> 10) & 31, m = h & 1023;
    const float v = e ? ldexpf ((float) (m | 1024), e - 25) : ldexpf ((float) m, -24);
    return (h & 0x8000) ? -v : v;
}

static int
s_cmp (const void *a, const void *b)
{
    const double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

//  Device time of EV in microseconds; releases EV.
static double
s_event_us (cl_event ev)
{
    cl_ulong t0 = 0, t1 = 0;
    s_check (clWaitForEvents (1, &ev), "clWaitForEvents");
    clGetEventProfilingInfo (ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
    clGetEventProfilingInfo (ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
    clReleaseEvent (ev);
    return (double) (t1 - t0) / 1e3;
}

//  Median device time of REPS launches of K over GLOBAL x LOCAL.
static double
s_time (cl_kernel k, size_t global, size_t local, int reps)
{
    double t [MAX_REPS];
    for (int i = 0; i < reps; i++) {
        cl_event ev;
        s_check (clEnqueueNDRangeKernel (s_queue, k, 1, NULL, &global, &local, 0, NULL, &ev),
                 "clEnqueueNDRangeKernel");
        t [i] = s_event_us (ev);
    }
    qsort (t, (size_t) reps, sizeof *t, s_cmp);
    return t [reps / 2];
}

static cl_mem
s_buffer (size_t bytes, const void *init)
{
    cl_int rc;
    cl_mem m = clCreateBuffer (s_ctx, init ? CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR
                                           : CL_MEM_READ_WRITE, bytes, (void *) init, &rc);
    s_check (rc, "clCreateBuffer");
    return m;
}

static bool
s_pick_device (const char *sel)
{
    cl_platform_id plats [16];
    cl_uint np = 0;
    if (clGetPlatformIDs (16, plats, &np) != CL_SUCCESS)
        return false;
    for (cl_uint i = 0; i < np; i++) {
        cl_device_id devs [16];
        cl_uint nd = 0;
        if (clGetDeviceIDs (plats [i], CL_DEVICE_TYPE_ALL, 16, devs, &nd) != CL_SUCCESS)
            continue;
        for (cl_uint j = 0; j < nd; j++) {
            char pname [256] = "", dname [256] = "", full [520];
            clGetPlatformInfo (plats [i], CL_PLATFORM_NAME, sizeof pname, pname, NULL);
            clGetDeviceInfo (devs [j], CL_DEVICE_NAME, sizeof dname, dname, NULL);
            snprintf (full, sizeof full, "%s / %s", pname, dname);
            if (strstr (full, sel)) {
                s_dev = devs [j];
                printf ("device: %s\n", full);
                return true;
            }
            fprintf (stderr, "  not selected: %s\n", full);
        }
    }
    return false;
}

//  The variants. LAYOUT says which buffers a kernel takes.
typedef enum { L_AOS, L_SOA16, L_SOA4, L_ILV, L_I8, L_I8_AOS } s_layout_t;
typedef struct {
    const char *label;          // what it isolates
    const char *kernel;
    const char *mode;           // extra options
    s_layout_t layout;
    bool checked;               // computes y (false: bare reads)
    bool optional;              // a vendor path: a failed build skips it
} s_variant_t;

static const s_variant_t s_variants [] = {
    { "qmatmul slices (shipped)", "qgemv_q4_0", "", L_AOS, true, false },
    { "bare reads, 4 B/item", "read4", "", L_SOA4, false, false },
    { "bare reads, 16 B/item", "read16", "", L_SOA16, false, false },
    { "SoA block/item, magic", "soa_f", "-DMODE=0", L_SOA16, true, false },
    { "SoA block/item, convert", "soa_f", "-DMODE=1", L_SOA16, true, false },
    { "SoA block/item, -8 sum x", "soa_f", "-DMODE=2", L_SOA16, true, false },
    { "SoA slices, magic", "soa_sf", "", L_SOA4, true, false },
    { "interleaved slices", "ilv_sf", "", L_ILV, true, false },
    { "int8 x, mad24", "soa_si8", "", L_I8, true, false },
    { "int8 x, dp4a (PTX asm)", "soa_si8", "-DDP4A=1", L_I8, true, true },
    { "int8 x, GGUF blocks, mad24", "aos_si8", "", L_I8_AOS, true, false },
    { "int8 x, GGUF blocks, dp4a", "aos_si8", "-DDP4A=1", L_I8_AOS, true, true },
    { "int8 x, block words, mad24", "aos_bi8", "", L_I8_AOS, true, false },
    { "int8 x, block words, dp4a", "aos_bi8", "-DDP4A=1", L_I8_AOS, true, true },
};
static const int s_configs [][2] = { { 64, 2 }, { 128, 2 }, { 128, 4 }, { 64, 8 }, { 256, 2 }, { 64, 4 } };

int
main (int argc, char **argv)
{
    const char *sel = "", *src = RXQ_SOURCE_DIR;
    const char *shapes_arg = "4096x4096,11008x4096,16384x16384";
    int reps = 30;
    long rotate_mb = 1024;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i], *v = i + 1 < argc ? argv [i + 1] : NULL;
        if (!v) {
            fprintf (stderr, "gemv_probe: %s needs a value (see the header of bench/gemv_probe.c)\n", a);
            return 2;
        }
        if (!strcmp (a, "--device")) sel = v;
        else if (!strcmp (a, "--src")) src = v;
        else if (!strcmp (a, "--shapes")) shapes_arg = v;
        else if (!strcmp (a, "--reps")) reps = atoi (v);
        else if (!strcmp (a, "--rotate-mb")) rotate_mb = atol (v);
        else {
            fprintf (stderr, "gemv_probe: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (reps < 1 || reps > MAX_REPS || rotate_mb < 1 || rotate_mb > 65536) {
        fprintf (stderr, "gemv_probe: --reps (1..%d) or --rotate-mb (1..65536) out of range\n",
                 MAX_REPS);
        return 2;
    }
    if (!s_pick_device (sel)) {
        fprintf (stderr, "gemv_probe: no OpenCL device matches '%s'\n", sel);
        return 2;
    }
    cl_int rc;
    s_ctx = clCreateContext (NULL, 1, &s_dev, NULL, NULL, &rc);
    s_check (rc, "clCreateContext");
    s_queue = clCreateCommandQueue (s_ctx, s_dev, CL_QUEUE_PROFILING_ENABLE, &rc);
    s_check (rc, "clCreateCommandQueue");
    static char ext [65536];
    clGetDeviceInfo (s_dev, CL_DEVICE_EXTENSIONS, sizeof ext - 1, ext, NULL);
    printf ("cl_khr_integer_dot_product: %s, cl_khr_fp16: %s\n",
            strstr (ext, "cl_khr_integer_dot_product") ? "yes" : "no",
            strstr (ext, "cl_khr_fp16") ? "yes" : "no");

    char *hdr = s_slurp (src, "common/cmn_quant_blocks.h");
    char *qmm = s_slurp (src, "kernels/qmatmul.cl");
    char *probe = s_slurp (src, "bench/gemv_probe.cl");
    char *shipped = s_alloc (strlen (hdr) + strlen (qmm) + 2);
    sprintf (shipped, "%s\n%s", hdr, qmm);

    //  The yardstick: a float4 copy over 1 GiB.
    const size_t cbytes = (size_t) 1 << 30;
    cl_mem c0 = s_buffer (cbytes, NULL), c1 = s_buffer (cbytes, NULL);
    const float zero = 0.0f;
    s_check (clEnqueueFillBuffer (s_queue, c0, &zero, sizeof zero, 0, cbytes, 0, NULL, NULL),
             "clEnqueueFillBuffer");
    cl_program cp = s_build (probe, "");
    if (!cp)
        return 2;
    cl_kernel ck = clCreateKernel (cp, "copy_f4", &rc);
    s_check (rc, "clCreateKernel copy_f4");
    const cl_uint n4 = (cl_uint) (cbytes / 16);
    clSetKernelArg (ck, 0, sizeof c0, &c0);
    clSetKernelArg (ck, 1, sizeof c1, &c1);
    clSetKernelArg (ck, 2, sizeof n4, &n4);
    const double copy_gbps = 2.0 * (double) cbytes / (s_time (ck, n4, 256, reps) * 1e3);
    printf ("copy: %.1f GB/s (median of %d)\n", copy_gbps, reps);
    clReleaseMemObject (c0);
    clReleaseMemObject (c1);

    int failures = 0;
    char shapes [1024];
    snprintf (shapes, sizeof shapes, "%s", shapes_arg);
    for (char *tok = strtok (shapes, ","); tok; tok = strtok (NULL, ",")) {
        int rows = 0, cols = 0;
        if (sscanf (tok, "%dx%d", &rows, &cols) != 2 || rows < 1 || cols < 32 || cols % 32
        ||  rows > (1 << 20) || cols > (1 << 20)) {
            fprintf (stderr, "gemv_probe: bad shape '%s' (ROWSxCOLS, COLS a multiple of 32)\n", tok);
            return 2;
        }
        const size_t nb = (size_t) cols / 32, nblk = (size_t) rows * nb;
        const size_t aos_bytes = nblk * 18, ns = (size_t) cols / 8;
        size_t copies = (size_t) rotate_mb * (1u << 20) / aos_bytes + 1;
        if (copies > MAX_COPIES)
            copies = MAX_COPIES;

        //  Random blocks (scales around 2^-8) and x in [-1, 1].
        uint8_t *aos = s_alloc (aos_bytes), *qs = s_alloc (nblk * 16);
        uint16_t *d = s_alloc (nblk * 2);
        uint32_t *ilv = s_alloc (nblk * 16);
        float *x = s_alloc ((size_t) cols * 4), *xq = s_alloc ((size_t) cols * 4);
        float *y = s_alloc ((size_t) rows * 4);
        double *ref = s_alloc ((size_t) rows * 8), *refq = s_alloc ((size_t) rows * 8);
        double *mag = s_alloc ((size_t) rows * 8);
        srand (42);
        for (size_t b = 0; b < nblk; b++) {
            d [b] = (uint16_t) (0x1c00 + (rand () & 0x3ff));
            memcpy (aos + 18 * b, &d [b], 2);
            for (int k = 0; k < 16; k++)
                aos [18 * b + 2 + k] = qs [16 * b + k] = (uint8_t) rand ();
        }
        for (int i = 0; i < cols; i++)
            x [i] = (float) rand () / (float) RAND_MAX * 2.0f - 1.0f;
        //  x as quant_x2 rounds it: d = amax / 127, q = rint (x / d).
        for (size_t b = 0; b < nb; b++) {
            float amax = 0.0f;
            for (int i = 0; i < 32; i++)
                amax = fmaxf (amax, fabsf (x [32 * b + i]));
            const float xd = amax / 127.0f, id = xd != 0.0f ? 1.0f / xd : 0.0f;
            for (int i = 0; i < 32; i++)
                xq [32 * b + i] = xd * rintf (x [32 * b + i] * id);
        }
        for (int r = 0; r < rows; r++) {
            double s = 0, sq = 0, sa = 0;
            for (size_t b = 0; b < nb; b++) {
                const size_t blk = (size_t) r * nb + b;
                const double dd = s_half (d [blk]);
                for (int j = 0; j < 16; j++) {
                    const double w0 = dd * ((qs [16 * blk + j] & 15) - 8);
                    const double w1 = dd * ((qs [16 * blk + j] >> 4) - 8);
                    s += w0 * x [32 * b + j] + w1 * x [32 * b + 16 + j];
                    sq += w0 * xq [32 * b + j] + w1 * xq [32 * b + 16 + j];
                    sa += fabs (w0 * x [32 * b + j]) + fabs (w1 * x [32 * b + 16 + j]);
                }
            }
            ref [r] = s;
            refq [r] = sq;
            mag [r] = sa;
        }
        cl_mem WA [MAX_COPIES], WQ [MAX_COPIES], WD [MAX_COPIES], WI [MAX_COPIES];
        for (size_t c = 0; c < copies; c++) {
            WA [c] = s_buffer (aos_bytes + 4, NULL);     // + 4: aos_bi8 reads past the end
            s_check (clEnqueueWriteBuffer (s_queue, WA [c], CL_TRUE, 0, aos_bytes, aos, 0, NULL, NULL), "write");
            WQ [c] = s_buffer (nblk * 16, qs);
            WD [c] = s_buffer (nblk * 2, d);
            WI [c] = NULL;
        }
        cl_mem X = s_buffer ((size_t) cols * 4, x), Y = s_buffer ((size_t) rows * 4, NULL);
        cl_mem XQ = s_buffer ((size_t) cols, NULL), XD = s_buffer (nb * 4, NULL);
        cl_mem XS = s_buffer (nb * 8, NULL);
        printf ("\nshape %dx%d: %.1f MB of Q4_0, %zu copies\n", rows, cols, aos_bytes / 1e6, copies);

        //  x to int8 once (its time is printed; the int8 row excludes it).
        cl_kernel qk = clCreateKernel (cp, "quant_x2", &rc);
        s_check (rc, "clCreateKernel quant_x2");
        clSetKernelArg (qk, 0, sizeof X, &X);
        clSetKernelArg (qk, 1, sizeof XQ, &XQ);
        clSetKernelArg (qk, 2, sizeof XD, &XD);
        clSetKernelArg (qk, 3, sizeof XS, &XS);
        clSetKernelArg (qk, 4, sizeof cols, &cols);
        printf ("quantize x to int8: %.1f us\n", s_time (qk, (nb + 63) / 64 * 64, 64, reps));
        clReleaseKernel (qk);
        printf ("%-28s %8s %10s %9s %8s  %s\n", "variant", "WGSxR", "us", "GB/s", "vs_copy",
                "err/bound");

        int ilv_wgs = 0;
        for (size_t vi = 0; vi < sizeof s_variants / sizeof *s_variants; vi++)
        for (size_t ci = 0; ci < sizeof s_configs / sizeof *s_configs; ci++) {
            const s_variant_t *v = &s_variants [vi];
            const int wgs = s_configs [ci][0], R = s_configs [ci][1];
            char opts [256];
            if (v->layout == L_AOS)
                snprintf (opts, sizeof opts, "-DQMM_WGS=%d -DGEMV_ROWS=%d -DGEMV_UNIT=0 %s", wgs, R,
                          v->mode);
            else
                snprintf (opts, sizeof opts, "-DWGS=%d -DR=%d %s", wgs, R, v->mode);
            if (v->layout == L_ILV && ns % (size_t) (4 * wgs)) {
                printf ("%-28s %5dx%-2d  skipped: cols/8 not a multiple of 4 WGS\n", v->label, wgs, R);
                continue;
            }
            if (v->layout == L_ILV && ilv_wgs != wgs) {
                for (int r = 0; r < rows; r++)
                    for (size_t c = 0; c < ns / (size_t) (4 * wgs); c++)
                        for (int l = 0; l < wgs; l++)
                            for (int j = 0; j < 4; j++) {
                                const size_t s = c * 4 * wgs + (size_t) j * wgs + l;
                                memcpy (&ilv [(size_t) r * ns + (c * wgs + l) * 4 + j],
                                        qs + ((size_t) r * ns + s) * 4, 4);
                            }
                for (size_t c = 0; c < copies; c++) {
                    if (WI [c])
                        clReleaseMemObject (WI [c]);
                    WI [c] = s_buffer (nblk * 16, ilv);
                }
                ilv_wgs = wgs;
            }
            cl_program p = s_build (v->layout == L_AOS ? shipped : probe, opts);
            if (!p && v->optional) {
                printf ("%-28s %5dx%-2d  skipped: this device's compiler refuses it\n", v->label,
                        wgs, R);
                continue;
            }
            if (!p) {
                failures++;
                continue;
            }
            cl_kernel k = clCreateKernel (p, v->kernel, &rc);
            s_check (rc, v->kernel);
            const size_t global = (size_t) ((rows + R - 1) / R) * (size_t) wgs, local = (size_t) wgs;
            double t [MAX_REPS];
            for (int rep = -1; rep < reps; rep++) {
                const size_t c = (size_t) (rep + 1) % copies;
                cl_uint a = 0;
                if (v->layout == L_AOS || v->layout == L_I8_AOS)
                    clSetKernelArg (k, a++, sizeof (cl_mem), &WA [c]);
                else
                    clSetKernelArg (k, a++, sizeof (cl_mem), v->layout == L_ILV ? &WI [c] : &WQ [c]);
                if (v->layout != L_AOS)
                    clSetKernelArg (k, a++, sizeof (cl_mem), &WD [c]);
                if (v->layout == L_I8 || v->layout == L_I8_AOS) {
                    clSetKernelArg (k, a++, sizeof XQ, &XQ);
                    clSetKernelArg (k, a++, sizeof XD, &XD);
                    clSetKernelArg (k, a++, sizeof XS, &XS);
                }
                else
                    clSetKernelArg (k, a++, sizeof X, &X);
                clSetKernelArg (k, a++, sizeof Y, &Y);
                clSetKernelArg (k, a++, sizeof rows, &rows);
                clSetKernelArg (k, a++, sizeof cols, &cols);
                cl_event ev;
                s_check (clEnqueueNDRangeKernel (s_queue, k, 1, NULL, &global, &local, 0, NULL, &ev),
                         v->kernel);
                const double us = s_event_us (ev);
                if (rep >= 0)
                    t [rep] = us;
            }
            s_check (clEnqueueReadBuffer (s_queue, Y, CL_TRUE, 0, (size_t) rows * 4, y, 0, NULL, NULL),
                     "clEnqueueReadBuffer");
            double worst = 0;
            if (v->checked)
                for (int r = 0; r < rows; r++) {
                    const bool i8 = v->layout == L_I8 || v->layout == L_I8_AOS;
                    const double want = i8 ? refq [r] : ref [r];
                    const double bound = (cols + 1) * 0x1p-24 * mag [r] + 1e-30;
                    if (fabs (y [r] - want) / bound > worst)
                        worst = fabs (y [r] - want) / bound;
                }
            qsort (t, (size_t) reps, sizeof *t, s_cmp);
            const double gbps = (double) aos_bytes / (t [reps / 2] * 1e3);
            printf ("%-28s %5dx%-2d %10.1f %9.1f %8.3f  %s%.3g%s\n", v->label, wgs, R, t [reps / 2],
                    gbps, gbps / copy_gbps, v->checked ? "" : "(not checked) ", worst,
                    worst > 1 ? "  FAIL" : "");
            fflush (stdout);
            failures += worst > 1;
            clReleaseKernel (k);
            clReleaseProgram (p);
        }
        for (size_t c = 0; c < copies; c++) {
            clReleaseMemObject (WA [c]);
            clReleaseMemObject (WQ [c]);
            clReleaseMemObject (WD [c]);
            if (WI [c])
                clReleaseMemObject (WI [c]);
        }
        clReleaseMemObject (X);
        clReleaseMemObject (Y);
        clReleaseMemObject (XQ);
        clReleaseMemObject (XD);
        clReleaseMemObject (XS);
        free (aos); free (qs); free (d); free (ilv); free (x); free (xq); free (y);
        free (ref); free (refq); free (mag);
    }
    printf ("\n%d failures\n", failures);
    clReleaseKernel (ck);
    clReleaseProgram (cp);
    clReleaseCommandQueue (s_queue);
    clReleaseContext (s_ctx);
    free (hdr); free (qmm); free (probe); free (shipped);
    return failures ? 1 : 0;
}
