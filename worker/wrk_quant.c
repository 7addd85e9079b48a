/*  wrk_quant: see wrk_quant.h. Kernels are created once per name and kept;
 *  every launch checks buffer sizes against the shape before enqueueing,
 *  as wrk_kernels does.
 */
#include "wrk_quant.h"
#include "cmn_quant.h"
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Build options: -cl-fp32-correctly-rounded-divide-sqrt makes / and sqrt
//  match the CPU's IEEE results (OpenCL allows 2.5 and 3 ulp otherwise).
#define S_OPTIONS "-cl-fp32-correctly-rounded-divide-sqrt"

//  Work-items per group of quant_stats (QS_WGS) and the most groups, so the
//  partials buffer stays small and the host sum cheap.
#define S_STATS_WGS 64
#define S_STATS_GROUPS 256

//  Types with kernels, and their kernel-name suffixes.
static const struct {
    int type;
    const char *suffix;
} s_kinds [] = {
    { GGML_TYPE_F32, "f32" },   { GGML_TYPE_F16, "f16" },   { GGML_TYPE_BF16, "bf16" },
    { GGML_TYPE_Q4_0, "q4_0" }, { GGML_TYPE_Q4_1, "q4_1" }, { GGML_TYPE_Q5_0, "q5_0" },
    { GGML_TYPE_Q5_1, "q5_1" }, { GGML_TYPE_Q8_0, "q8_0" }, { GGML_TYPE_Q4_K, "q4_K" },
    { GGML_TYPE_Q5_K, "q5_K" }, { GGML_TYPE_Q6_K, "q6_K" },
    { RXQ_TYPE_INT4_G32, "int4_g32" }, { RXQ_TYPE_INT4_G64, "int4_g64" },
    { RXQ_TYPE_INT4_G128, "int4_g128" },
};
#define S_NKINDS (sizeof s_kinds / sizeof s_kinds [0])

struct _wrk_quant_t {
    wrk_device_t *dev;                  // borrowed
    cl_program program;                 // owned by the device's cache
    cl_kernel quantize [S_NKINDS];      // created on first use
    cl_kernel dequantize [S_NKINDS];    // created on first use
    cl_kernel stats;                    // quant_stats
    cl_kernel absmax;                   // quant_absmax
    cl_mem bad;                         // one int: smallest non-finite block
    cl_mem part;                        // 5 floats per stats group
    cl_int bad_init;                    // INT_MAX, the source of the reset write
    bool bad_pending;                   // a quantize ran since the last finish
    cl_event *events;                   // kernels enqueued since the last finish
    size_t nevents, events_max;
    uint64_t kernel_ns;                 // device time of finished kernels
};

static void s_collect (wrk_quant_t *self);

static int
s_index (int type)
{
    for (size_t i = 0; i < S_NKINDS; i++)
        if (s_kinds [i].type == type)
            return (int) i;
    return -1;
}

bool
wrk_quant_type_supported (int type)
{
    return s_index (type) >= 0;
}

wrk_quant_t *
wrk_quant_new (wrk_device_t *dev, cmn_err_t *err)
{
    assert (dev);
    cl_device_fp_config fp = 0;
    cl_int rc = clGetDeviceInfo (wrk_device_id (dev), CL_DEVICE_SINGLE_FP_CONFIG,
                                 sizeof fp, &fp, NULL);
    if (rc != CL_SUCCESS) {
        wrk_device_cl_error (err, "clGetDeviceInfo (CL_DEVICE_SINGLE_FP_CONFIG)", rc);
        return NULL;
    }
    if (!(fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) || !(fp & CL_FP_DENORM)) {
        cmn_err_set (err, RXQ_E_UNSUPPORTED,
                     "device '%s' lacks %s: its quantization could not be bit-identical "
                     "with the CPU reference", wrk_device_info (dev)->name,
                     !(fp & CL_FP_DENORM) ? "single-precision subnormals (CL_FP_DENORM)"
                     : "correctly rounded divide/sqrt (CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT)");
        return NULL;
    }
    wrk_quant_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "wrk_quant_new: out of memory");
        return NULL;
    }
    self->dev = dev;
    self->bad_init = INT_MAX;
    self->program = wrk_device_program (dev, "quant.cl", S_OPTIONS, err);
    if (!self->program)
        goto fail;
    self->stats = clCreateKernel (self->program, "quant_stats", &rc);
    if (!self->stats) {
        wrk_device_cl_error (err, "clCreateKernel (quant_stats)", rc);
        goto fail;
    }
    self->absmax = clCreateKernel (self->program, "quant_absmax", &rc);
    if (!self->absmax) {
        wrk_device_cl_error (err, "clCreateKernel (quant_absmax)", rc);
        goto fail;
    }
    self->bad = clCreateBuffer (wrk_device_context (dev), CL_MEM_READ_WRITE,
                                sizeof (cl_int), NULL, &rc);
    if (!self->bad) {
        wrk_device_cl_error (err, "clCreateBuffer", rc);
        goto fail;
    }
    self->part = clCreateBuffer (wrk_device_context (dev), CL_MEM_READ_WRITE,
                                 5 * sizeof (float) * S_STATS_GROUPS, NULL, &rc);
    if (!self->part) {
        wrk_device_cl_error (err, "clCreateBuffer", rc);
        goto fail;
    }
    return self;
fail:
    wrk_quant_destroy (&self);
    return NULL;
}

void
wrk_quant_destroy (wrk_quant_t **self_p)
{
    assert (self_p);
    wrk_quant_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < S_NKINDS; i++) {
        if (self->quantize [i])
            clReleaseKernel (self->quantize [i]);
        if (self->dequantize [i])
            clReleaseKernel (self->dequantize [i]);
    }
    if (self->stats)
        clReleaseKernel (self->stats);
    if (self->absmax)
        clReleaseKernel (self->absmax);
    if (self->bad)
        clReleaseMemObject (self->bad);
    if (self->part)
        clReleaseMemObject (self->part);
    if (self->nevents)
        clFinish (wrk_device_queue (self->dev));
    s_collect (self);
    free (self->events);
    free (self);
    *self_p = NULL;
}

//  Bytes of MEM, or 0 with ERR set.
static int
s_mem_size (cl_mem mem, size_t *size, cmn_err_t *err)
{
    cl_int rc = clGetMemObjectInfo (mem, CL_MEM_SIZE, sizeof *size, size, NULL);
    return rc == CL_SUCCESS ? 0 : wrk_device_cl_error (err, "clGetMemObjectInfo", rc);
}

static int
s_need (const char *what, const char *buffer, cl_mem mem, size_t need, cmn_err_t *err)
{
    assert (mem);
    size_t have = 0;
    if (s_mem_size (mem, &have, err))
        return -1;
    if (have < need)
        return cmn_err_set (err, RXQ_E_INVAL, "%s: buffer %s holds %zu bytes, the shape needs %zu",
                            what, buffer, have, need);
    return 0;
}

//  Checks TYPE and N for a launch and returns the kernel slot, the number
//  of work-items (blocks, or values for the float formats) and the bytes
//  of N values of TYPE.
static int
s_shape (const char *what, int type, size_t n, int *slot, size_t *items, size_t *bytes,
         cmn_err_t *err)
{
    *slot = s_index (type);
    if (*slot < 0)
        return cmn_err_set (err, RXQ_E_INVAL, "%s: type %d (%s) has no kernel", what, type,
                            cmn_quant_type_name (type) ? cmn_quant_type_name (type) : "unknown");
    const size_t qk = cmn_quant_block_values (type);
    if (n == 0 || n % qk)
        return cmn_err_set (err, RXQ_E_INVAL, "%s: %zu values is not a positive multiple of "
                            "the %s block (%zu)", what, n, cmn_quant_type_name (type), qk);
    *items = n / qk;
    if (*items > WRK_QUANT_MAX_BLOCKS || *items > UINT_MAX)
        return cmn_err_set (err, RXQ_E_LIMIT, "%s: %zu blocks in one launch exceed 2^31 - 1",
                            what, *items);
    *bytes = cmn_quant_row_bytes (type, n);
    return 0;
}

static cl_kernel
s_kernel (wrk_quant_t *self, bool quantize, int slot, cmn_err_t *err)
{
    cl_kernel *k = quantize ? &self->quantize [slot] : &self->dequantize [slot];
    if (*k)
        return *k;
    char name [64];
    snprintf (name, sizeof name, "%s_%s", quantize ? "quantize" : "dequantize",
              s_kinds [slot].suffix);
    cl_int rc;
    *k = clCreateKernel (self->program, name, &rc);
    if (!*k)
        wrk_device_cl_error (err, "clCreateKernel", rc);
    return *k;
}

//  Adds the device time of the kernels enqueued so far (they must have
//  finished) to kernel_ns and releases their events.
static void
s_collect (wrk_quant_t *self)
{
    for (size_t i = 0; i < self->nevents; i++) {
        self->kernel_ns += wrk_device_event_ns (self->events [i]);
        clReleaseEvent (self->events [i]);
    }
    self->nevents = 0;
}

//  Enqueues K, keeping its event for kernel_ns when there is room to (a
//  kernel whose event cannot be kept still runs; only its time is lost).
static int
s_enqueue (wrk_quant_t *self, cl_kernel k, size_t global, const size_t *local, cmn_err_t *err)
{
    if (self->nevents == self->events_max) {
        size_t max = self->events_max ? 2 * self->events_max : 64;
        cl_event *grown = realloc (self->events, max * sizeof *grown);
        if (grown) {
            self->events = grown;
            self->events_max = max;
        }
    }
    cl_event *ev = self->nevents < self->events_max ? &self->events [self->nevents] : NULL;
    cl_int rc = clEnqueueNDRangeKernel (wrk_device_queue (self->dev), k, 1, NULL, &global,
                                        local, 0, NULL, ev);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueNDRangeKernel", rc);
    if (ev)
        self->nevents++;
    return 0;
}

uint64_t
wrk_quant_kernel_ns (wrk_quant_t *self)
{
    assert (self);
    return self->kernel_ns;
}

int
wrk_quant_quantize (wrk_quant_t *self, int type, cl_mem src, cl_mem dst, size_t n,
                    cmn_err_t *err)
{
    assert (self);
    int slot;
    size_t items, bytes;
    if (s_shape ("quantize", type, n, &slot, &items, &bytes, err)
    ||  s_need ("quantize", "src", src, n * sizeof (float), err)
    ||  s_need ("quantize", "dst", dst, bytes, err))
        return -1;
    cl_kernel k = s_kernel (self, true, slot, err);
    if (!k)
        return -1;
    if (!self->bad_pending) {
        cl_int rc = clEnqueueWriteBuffer (wrk_device_queue (self->dev), self->bad, CL_FALSE, 0,
                                          sizeof self->bad_init, &self->bad_init, 0, NULL, NULL);
        if (rc != CL_SUCCESS)
            return wrk_device_cl_error (err, "clEnqueueWriteBuffer", rc);
        self->bad_pending = true;
    }
    cl_uint nb = (cl_uint) items;
    cl_int rc = clSetKernelArg (k, 0, sizeof src, &src);
    if (rc == CL_SUCCESS) rc = clSetKernelArg (k, 1, sizeof dst, &dst);
    if (rc == CL_SUCCESS) rc = clSetKernelArg (k, 2, sizeof nb, &nb);
    if (rc == CL_SUCCESS) rc = clSetKernelArg (k, 3, sizeof self->bad, &self->bad);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clSetKernelArg", rc);
    return s_enqueue (self, k, items, NULL, err);
}

int
wrk_quant_finish (wrk_quant_t *self, size_t *bad_block, cmn_err_t *err)
{
    assert (self);
    cl_int rc = clFinish (wrk_device_queue (self->dev));
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clFinish", rc);
    s_collect (self);
    if (!self->bad_pending)
        return 0;
    cl_int bad = INT_MAX;
    rc = clEnqueueReadBuffer (wrk_device_queue (self->dev), self->bad, CL_TRUE, 0,
                              sizeof bad, &bad, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueReadBuffer", rc);
    self->bad_pending = false;
    if (bad == INT_MAX)
        return 0;
    if (bad_block)
        *bad_block = (size_t) bad;
    return cmn_err_set (err, RXQ_E_INVAL, "non-finite value (NaN or infinity) in block %d",
                        (int) bad);
}

int
wrk_quant_dequantize (wrk_quant_t *self, int type, cl_mem src, cl_mem dst, size_t n,
                      cmn_err_t *err)
{
    assert (self);
    int slot;
    size_t items, bytes;
    if (s_shape ("dequantize", type, n, &slot, &items, &bytes, err)
    ||  s_need ("dequantize", "src", src, bytes, err)
    ||  s_need ("dequantize", "dst", dst, n * sizeof (float), err))
        return -1;
    cl_kernel k = s_kernel (self, false, slot, err);
    if (!k)
        return -1;
    cl_uint nb = (cl_uint) items;
    cl_int rc = clSetKernelArg (k, 0, sizeof src, &src);
    if (rc == CL_SUCCESS) rc = clSetKernelArg (k, 1, sizeof dst, &dst);
    if (rc == CL_SUCCESS) rc = clSetKernelArg (k, 2, sizeof nb, &nb);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clSetKernelArg", rc);
    return s_enqueue (self, k, items, NULL, err);
}

int
wrk_quant_stats (wrk_quant_t *self, cl_mem x, cl_mem y, size_t n, wrk_quant_stats_t *stats,
                 cmn_err_t *err)
{
    assert (self && stats);
    if (n == 0)
        return 0;
    if (n > UINT_MAX)
        return cmn_err_set (err, RXQ_E_LIMIT, "stats: %zu values in one launch exceed 2^32 - 1", n);
    if (s_need ("stats", "x", x, n * sizeof (float), err)
    ||  s_need ("stats", "y", y, n * sizeof (float), err))
        return -1;
    size_t groups = (n + S_STATS_WGS - 1) / S_STATS_WGS;
    if (groups > S_STATS_GROUPS)
        groups = S_STATS_GROUPS;
    cl_uint nn = (cl_uint) n;
    const size_t local = S_STATS_WGS;
    float part [5 * S_STATS_GROUPS];
    //  Pass 1: max |x|, for the power-of-two scale of pass 2.
    cl_int rc = clSetKernelArg (self->absmax, 0, sizeof x, &x);
    if (rc == CL_SUCCESS) rc = clSetKernelArg (self->absmax, 1, sizeof nn, &nn);
    if (rc == CL_SUCCESS) rc = clSetKernelArg (self->absmax, 2, sizeof self->part, &self->part);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clSetKernelArg", rc);
    if (s_enqueue (self, self->absmax, groups * S_STATS_WGS, &local, err))
        return -1;
    rc = clEnqueueReadBuffer (wrk_device_queue (self->dev), self->part, CL_TRUE, 0,
                              sizeof (float) * groups, part, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueReadBuffer", rc);
    float xmax = 0;
    for (size_t g = 0; g < groups; g++)
        if (part [g] > xmax)
            xmax = part [g];
    //  2^k * xmax in [0.5, 1): n squares then sum to at most n, and the
    //  scaled values of a tensor are normal floats whatever its magnitude.
    cl_int k = 0;
    if (xmax > 0 && isfinite (xmax))
        k = -ilogbf (xmax) - 1;
    //  Pass 2: the sums.
    rc = clSetKernelArg (self->stats, 0, sizeof x, &x);
    if (rc == CL_SUCCESS) rc = clSetKernelArg (self->stats, 1, sizeof y, &y);
    if (rc == CL_SUCCESS) rc = clSetKernelArg (self->stats, 2, sizeof nn, &nn);
    if (rc == CL_SUCCESS) rc = clSetKernelArg (self->stats, 3, sizeof k, &k);
    if (rc == CL_SUCCESS) rc = clSetKernelArg (self->stats, 4, sizeof self->part, &self->part);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clSetKernelArg", rc);
    if (s_enqueue (self, self->stats, groups * S_STATS_WGS, &local, err))
        return -1;
    rc = clEnqueueReadBuffer (wrk_device_queue (self->dev), self->part, CL_TRUE, 0,
                              5 * sizeof (float) * groups, part, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueReadBuffer", rc);
    s_collect (self);         // a blocking read: every kernel before it is done
    for (size_t g = 0; g < groups; g++) {
        const float *p = part + 5 * g;
        stats->sse += ldexp ((double) p [0] + (double) p [1], -2 * k);
        if (p [2] > stats->max_abs || isnan (p [2]))
            stats->max_abs = p [2];
        stats->ssq += ldexp ((double) p [3] + (double) p [4], -2 * k);
    }
    stats->n += n;
    return 0;
}

//  Device buffer of BYTES (at least 1), filled from DATA when not NULL.
static cl_mem
s_buffer (wrk_quant_t *self, const void *data, size_t bytes, cmn_err_t *err)
{
    cl_int rc;
    cl_mem m = clCreateBuffer (wrk_device_context (self->dev),
                               CL_MEM_READ_WRITE | (data ? CL_MEM_COPY_HOST_PTR : 0),
                               bytes ? bytes : 1, (void *) data, &rc);
    if (!m)
        wrk_device_cl_error (err, "clCreateBuffer", rc);
    return m;
}

static int
s_read (wrk_quant_t *self, cl_mem m, void *dst, size_t bytes, cmn_err_t *err)
{
    cl_int rc = clEnqueueReadBuffer (wrk_device_queue (self->dev), m, CL_TRUE, 0, bytes, dst,
                                     0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueReadBuffer", rc);
    s_collect (self);
    return 0;
}

int
wrk_quant_row (wrk_quant_t *self, int type, const float *src, void *dst, size_t n,
               cmn_err_t *err)
{
    assert (self && src && dst);
    const size_t bytes = cmn_quant_row_bytes (type, n);
    if (!bytes || !wrk_quant_type_supported (type))
        return cmn_err_set (err, RXQ_E_INVAL, "quantize: bad type %d or length %zu", type, n);
    cl_mem s = s_buffer (self, src, n * sizeof (float), err);
    cl_mem d = s ? s_buffer (self, NULL, bytes, err) : NULL;
    int rc = -1;
    if (d && wrk_quant_quantize (self, type, s, d, n, err) == 0
    &&  wrk_quant_finish (self, NULL, err) == 0)
        rc = s_read (self, d, dst, bytes, err);
    if (s)
        clReleaseMemObject (s);
    if (d)
        clReleaseMemObject (d);
    return rc;
}

int
wrk_quant_dequant_row (wrk_quant_t *self, int type, const void *src, float *dst, size_t n,
                       cmn_err_t *err)
{
    assert (self && src && dst);
    const size_t bytes = cmn_quant_row_bytes (type, n);
    if (!bytes || !wrk_quant_type_supported (type))
        return cmn_err_set (err, RXQ_E_INVAL, "dequantize: bad type %d or length %zu", type, n);
    cl_mem s = s_buffer (self, src, bytes, err);
    cl_mem d = s ? s_buffer (self, NULL, n * sizeof (float), err) : NULL;
    int rc = -1;
    if (d && wrk_quant_dequantize (self, type, s, d, n, err) == 0)
        rc = s_read (self, d, dst, n * sizeof (float), err);
    if (s)
        clReleaseMemObject (s);
    if (d)
        clReleaseMemObject (d);
    return rc;
}
