/*  wrk_kernels: launchers for the compute kernels of kernels/.
 *
 *  Each launcher checks the shape, picks the NDRange from the device's
 *  tuning set (s_tuning, from wrk_tune), and hands everything to s_launch, the one place that
 *  builds the program (wrk_device_program caches it per options), checks
 *  buffer sizes, sets arguments and enqueues.
 */
#include "wrk_kernels.h"
#include "cmn_log.h"
#include "cmn_quant_blocks.h"
#include "wrk_tune.h"
#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

//  Head sizes the attention kernel is built for (ATT_MAX_HD): its local
//  query copy and per-work-item accumulators are sized for this.
#define S_ATT_MAX_HD 256

//  Most elements one tensor may have: 2^30, half of what an int indexes.
#define S_MAX_ELEMS ((size_t) 1 << 30)

//  Build options of ggml.cl: x86 divides correctly rounded (the Q8 scales).
#define S_GGML_OPTIONS "-cl-fp32-correctly-rounded-divide-sqrt"

//  The -D parameters of each kernel file, as the launchers use them.
typedef struct {
    size_t qmm_wgs;             // QMM_WGS, work-items per GEMV/GEMM group
    size_t gemv_rows;           // GEMV_ROWS, weight rows per GEMV group
    size_t gemm_rows;           // GEMM_ROWS, weight rows per GEMM group
    size_t gemm_bt;             // GEMM_BT, batch rows per GEMM group
    size_t gemv_unit;           // GEMV_UNIT, GEMV scheme (0 slices, 1 units, 2 teams)
    size_t gemv_i8_rows;        // GEMV_I8_ROWS, weight rows per int8-x GEMV group
    size_t gemv_i8_ku;          // GEMV_I8_KU, K-quant units per int8-x GEMV step
    size_t gemv_i8_krows;       // GEMV_I8_KROWS, GEMV_I8_ROWS for q4_K and q6_K
    size_t norm_wgs;            // NORM_WGS, work-items per row
    size_t softmax_wgs;         // SOFTMAX_WGS, work-items per row
    size_t att_wgs;             // ATT_WGS, work-items per (head, query)
    size_t ew_wgs;              // EW_WGS, work-items per group
    size_t tr_tile;             // TR_TILE, transpose tile side, elements
    size_t tr_rows;             // TR_ROWS, transpose group rows
    size_t conv_wgs;            // CONV_WGS, work-items per group
    size_t conv_oct;            // CONV_OCT, output channels per work-item
} s_tuning_t;

//  DEV's tuning set (wrk_tune: its table row, any installed override,
//  clamped to the device's limits).
static s_tuning_t
s_tuning (wrk_device_t *dev)
{
    wrk_tune_t w;
    wrk_tune_for_device (dev, &w);
    s_tuning_t t = {
        .qmm_wgs = (size_t) wrk_tune_get (&w, WRK_TUNE_QMATMUL, "QMM_WGS"),
        .gemv_rows = (size_t) wrk_tune_get (&w, WRK_TUNE_QMATMUL, "GEMV_ROWS"),
        .gemm_rows = (size_t) wrk_tune_get (&w, WRK_TUNE_QMATMUL, "GEMM_ROWS"),
        .gemm_bt = (size_t) wrk_tune_get (&w, WRK_TUNE_QMATMUL, "GEMM_BT"),
        .gemv_unit = (size_t) wrk_tune_get (&w, WRK_TUNE_QMATMUL, "GEMV_UNIT"),
        .gemv_i8_rows = (size_t) wrk_tune_get (&w, WRK_TUNE_QMATMUL, "GEMV_I8_ROWS"),
        .gemv_i8_ku = (size_t) wrk_tune_get (&w, WRK_TUNE_QMATMUL, "GEMV_I8_KU"),
        .gemv_i8_krows = (size_t) wrk_tune_get (&w, WRK_TUNE_QMATMUL, "GEMV_I8_KROWS"),
        .norm_wgs = (size_t) wrk_tune_get (&w, WRK_TUNE_NORM, "NORM_WGS"),
        .softmax_wgs = (size_t) wrk_tune_get (&w, WRK_TUNE_SOFTMAX, "SOFTMAX_WGS"),
        .att_wgs = (size_t) wrk_tune_get (&w, WRK_TUNE_ATTENTION, "ATT_WGS"),
        .ew_wgs = (size_t) wrk_tune_get (&w, WRK_TUNE_ELEMENTWISE, "EW_WGS"),
        .tr_tile = (size_t) wrk_tune_get (&w, WRK_TUNE_TRANSPOSE, "TR_TILE"),
        .tr_rows = (size_t) wrk_tune_get (&w, WRK_TUNE_TRANSPOSE, "TR_ROWS"),
        .conv_wgs = (size_t) wrk_tune_get (&w, WRK_TUNE_CONV, "CONV_WGS"),
        .conv_oct = (size_t) wrk_tune_get (&w, WRK_TUNE_CONV, "CONV_OCT"),
    };
    return t;
}

static size_t
s_round_up (size_t n, size_t m)
{
    return (n + m - 1) / m * m;
}

static size_t
s_ceil_div (size_t n, size_t m)
{
    return (n + m - 1) / m;
}

//  One kernel argument: a value, or a buffer with the bytes the kernel may
//  touch through it (checked against CL_MEM_SIZE).
typedef struct {
    size_t size;                // bytes at value
    const void *value;          // the value; for buffers a cl_mem *
    const char *buffer;         // buffer arguments: name for messages
    size_t need;                // buffer arguments: bytes needed
    bool optional;              // buffer arguments: NULL allowed
} s_arg_t;

#define S_BUF(mem, bytes)  { sizeof (cl_mem), &(mem), #mem, (bytes), false }
#define S_OPT(mem, bytes)  { sizeof (cl_mem), &(mem), #mem, (bytes), true }
#define S_VAL(v)           { sizeof (v), &(v), NULL, 0, false }
#define S_ARGS(...) \
    (const s_arg_t []) { __VA_ARGS__ }, \
    sizeof ((const s_arg_t []) { __VA_ARGS__ }) / sizeof (s_arg_t)

//  Builds (or finds) FILE with OPTIONS, checks the buffer arguments, sets
//  all ARGS of KERNEL, and enqueues it over DIMS dimensions. GLOBAL must be
//  a multiple of LOCAL in each dimension.
static int
s_launch (wrk_device_t *dev, const char *file, const char *options,
          const char *kernel, cl_uint dims, const size_t *global,
          const size_t *local, const s_arg_t *args, size_t nargs,
          cl_event *event, cmn_err_t *err)
{
    for (size_t i = 0; i < nargs; i++) {
        if (!args [i].buffer)
            continue;
        cl_mem mem = *(const cl_mem *) args [i].value;
        assert (mem || args [i].optional);
        if (!mem)
            continue;
        size_t have = 0;
        cl_int rc = clGetMemObjectInfo (mem, CL_MEM_SIZE, sizeof have, &have, NULL);
        if (rc != CL_SUCCESS)
            return wrk_device_cl_error (err, "clGetMemObjectInfo", rc);
        if (have < args [i].need)
            return cmn_err_set (err, RXQ_E_INVAL,
                                "%s: buffer %s holds %zu bytes, the shape needs %zu",
                                kernel, args [i].buffer, have, args [i].need);
    }
    cl_program program = wrk_device_program (dev, file, options, err);
    if (!program)
        return -1;
    cl_int rc;
    cl_kernel k = clCreateKernel (program, kernel, &rc);
    if (!k)
        return wrk_device_cl_error (err, "clCreateKernel", rc);
    for (size_t i = 0; i < nargs && rc == CL_SUCCESS; i++) {
        //  A NULL optional buffer is passed as a NULL pointer (the kernel
        //  tests for it), which clSetKernelArg does for a NULL value.
        const bool null_buf = args [i].buffer && !*(const cl_mem *) args [i].value;
        rc = clSetKernelArg (k, (cl_uint) i, args [i].size,
                             null_buf ? NULL : args [i].value);
    }
    if (rc != CL_SUCCESS) {
        clReleaseKernel (k);
        return wrk_device_cl_error (err, "clSetKernelArg", rc);
    }
    rc = clEnqueueNDRangeKernel (wrk_device_queue (dev), k, dims, NULL,
                                 global, local, 0, NULL, event);
    //  The queue keeps the kernel alive until it has run.
    clReleaseKernel (k);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueNDRangeKernel", rc);
    return 0;
}

//  Checks that every one of N ints at V is >= 1.
static int
s_positive (cmn_err_t *err, const char *what, const int *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v [i] < 1)
            return cmn_err_set (err, RXQ_E_INVAL, "%s: sizes must be >= 1, got %d",
                                what, v [i]);
    return 0;
}

//  Checks that the element count A * B * C (each >= 0) fits the kernels'
//  int indices with room to spare: global sizes are rounded up to whole
//  work-groups, and a work-item id past INT_MAX would turn negative.
static int
s_fits (cmn_err_t *err, const char *what, size_t a, size_t b, size_t c)
{
    if (b && c && a > S_MAX_ELEMS / b / c)
        return cmn_err_set (err, RXQ_E_LIMIT, "%s: %zu x %zu x %zu elements "
                            "exceed 2^30", what, a, b, c);
    return 0;
}

static void
s_null_event (cl_event *event)
{
    if (event)
        *event = NULL;
}


//  --------------------------------------------------------------------------
//  qmatmul.cl

//  Kernel-name suffix and block geometry of the types qmatmul.cl handles;
//  NULL name for the others.
static const char *
s_qtype (int type, size_t *block_values, size_t *block_bytes)
{
    switch (type) {
        case GGML_TYPE_Q4_0:
            *block_values = QK4_0; *block_bytes = sizeof (block_q4_0); return "q4_0";
        case GGML_TYPE_Q4_1:
            *block_values = QK4_1; *block_bytes = sizeof (block_q4_1); return "q4_1";
        case GGML_TYPE_Q8_0:
            *block_values = QK8_0; *block_bytes = sizeof (block_q8_0); return "q8_0";
        case GGML_TYPE_Q4_K:
            *block_values = QK_K; *block_bytes = sizeof (block_q4_K); return "q4_K";
        case GGML_TYPE_Q6_K:
            *block_values = QK_K; *block_bytes = sizeof (block_q6_K); return "q6_K";
        default:
            return NULL;
    }
}

//  qmatmul.cl's build options for tuning set T.
typedef struct {
    char text [160];
} s_opts_t;

static s_opts_t
s_qmm_options (s_tuning_t t)
{
    s_opts_t o;
    snprintf (o.text, sizeof o.text, "-DQMM_WGS=%zu -DGEMV_ROWS=%zu -DGEMM_ROWS=%zu "
              "-DGEMM_BT=%zu -DGEMV_UNIT=%zu -DGEMV_I8_ROWS=%zu -DGEMV_I8_KU=%zu "
              "-DGEMV_I8_KROWS=%zu", t.qmm_wgs, t.gemv_rows, t.gemm_rows, t.gemm_bt,
              t.gemv_unit, t.gemv_i8_rows, t.gemv_i8_ku, t.gemv_i8_krows);
    return o;
}

static int
s_qmm (wrk_device_t *dev, bool gemv, int type, cl_mem W, cl_mem X, cl_mem Y,
       int rows, int cols, int batch, cl_event *event, cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    const char *what = gemv ? "qgemv" : "qgemm";
    size_t bv = 0, bb = 0;
    const char *tname = s_qtype (type, &bv, &bb);
    if (!tname)
        return cmn_err_set (err, RXQ_E_UNSUPPORTED, "%s: quant type %d is not "
                            "one of q4_0, q4_1, q8_0, q4_K, q6_K", what, type);
    if (s_positive (err, what, (int []) { rows, cols, batch }, 3)
    ||  s_fits (err, what, (size_t) rows, (size_t) cols, 1)
    ||  s_fits (err, what, (size_t) batch, (size_t) cols, 1)
    ||  s_fits (err, what, (size_t) batch, (size_t) rows, 1))
        return -1;
    if (cols % bv)
        return cmn_err_set (err, RXQ_E_INVAL, "%s: cols %d is not a multiple "
                            "of the %s block size %zu", what, cols, tname, bv);
    const s_tuning_t t = s_tuning (dev);
    const s_opts_t options = s_qmm_options (t);
    char kernel [32];
    snprintf (kernel, sizeof kernel, "%s_%s", what, tname);
    const size_t w_bytes = (size_t) rows * ((size_t) cols / bv) * bb;
    const size_t x_bytes = (size_t) batch * cols * sizeof (float);
    const size_t y_bytes = (size_t) batch * rows * sizeof (float);
    if (gemv) {
        const size_t global [1] = { s_ceil_div (rows, t.gemv_rows) * t.qmm_wgs };
        const size_t local [1] = { t.qmm_wgs };
        return s_launch (dev, "qmatmul.cl", options.text, kernel, 1, global, local,
                         S_ARGS (S_BUF (W, w_bytes), S_BUF (X, x_bytes),
                                 S_BUF (Y, y_bytes), S_VAL (rows), S_VAL (cols)),
                         event, err);
    }
    const size_t global [2] = { s_ceil_div (rows, t.gemm_rows) * t.qmm_wgs,
                                s_ceil_div (batch, t.gemm_bt) };
    const size_t local [2] = { t.qmm_wgs, 1 };
    return s_launch (dev, "qmatmul.cl", options.text, kernel, 2, global, local,
                     S_ARGS (S_BUF (W, w_bytes), S_BUF (X, x_bytes),
                             S_BUF (Y, y_bytes), S_VAL (rows), S_VAL (cols),
                             S_VAL (batch)),
                     event, err);
}

int
wrk_kernels_gemv_q (wrk_device_t *dev, int type, cl_mem W, cl_mem x,
                    cl_mem y, int rows, int cols, cl_event *event,
                    cmn_err_t *err)
{
    return s_qmm (dev, true, type, W, x, y, rows, cols, 1, event, err);
}

int
wrk_kernels_gemm_q (wrk_device_t *dev, int type, cl_mem W, cl_mem X,
                    cl_mem Y, int rows, int cols, int batch, cl_event *event,
                    cmn_err_t *err)
{
    return s_qmm (dev, false, type, W, X, Y, rows, cols, batch, event, err);
}


//  The GEMV on int8 x (qmatmul.cl, "GEMV on int8 x").

//  C + the four byte products of W and X (X's bytes signed; W's signed
//  when W_SIGNED): what qi8_dot_u and qi8_dot_s compute.
static int
s_dot4 (uint32_t w, uint32_t x, int c, bool w_signed)
{
    for (int i = 0; i < 32; i += 8) {
        const int wb = w_signed ? (int8_t) (w >> i) : (int) ((w >> i) & 0xFF);
        c += wb * (int8_t) (x >> i);
    }
    return c;
}

//  Runs qi8_selftest from PROGRAM and compares with s_dot4. Returns 1 when
//  every sum is right, 0 when one is wrong, -1 when it could not run.
static int
s_i8_selftest (wrk_device_t *dev, cl_program program)
{
    const uint32_t a = 0x80FF7F01u, b = 0xFE7F8002u, c = 0x0F0E0D0Cu;
    const int want [4] = { s_dot4 (a, b, -7, false), s_dot4 (a, b, 11, true),
                           s_dot4 (c, a, 0, false), s_dot4 (b, b, -1, true) };
    int got [4] = { 0 };
    cl_int rc;
    cl_mem out = clCreateBuffer (wrk_device_context (dev), CL_MEM_WRITE_ONLY, sizeof got, NULL,
                                 &rc);
    if (!out)
        return -1;
    cl_kernel k = clCreateKernel (program, "qi8_selftest", &rc);
    const size_t one = 1;
    if (k)
        rc = clSetKernelArg (k, 0, sizeof out, &out);
    if (k && rc == CL_SUCCESS)
        rc = clEnqueueNDRangeKernel (wrk_device_queue (dev), k, 1, NULL, &one, &one, 0, NULL,
                                     NULL);
    if (k && rc == CL_SUCCESS)
        rc = clEnqueueReadBuffer (wrk_device_queue (dev), out, CL_TRUE, 0, sizeof got, got, 0,
                                  NULL, NULL);
    if (k)
        clReleaseKernel (k);
    clReleaseMemObject (out);
    if (!k || rc != CL_SUCCESS)
        return -1;
    return memcmp (got, want, sizeof got) == 0;
}

//  Whether DEV's int8 GEMV uses the int8 dot product: decided once per
//  device. Only NVIDIA's compiler is asked for the inline-PTX build
//  (another Clang-based compiler may accept the asm statement and emit
//  something else: PoCL does for __asm__), and its answer is used only
//  when qi8_selftest gives the right sums.
static bool
s_i8_dot (wrk_device_t *dev, const char *options)
{
    int *slot = wrk_device_i8_dot_slot (dev);
    if (*slot >= 0)
        return *slot == 1;
    *slot = 0;
    const wrk_device_info_t *info = wrk_device_info (dev);
    if (!strstr (info->platform, "NVIDIA"))
        return false;
    char opts [224];
    snprintf (opts, sizeof opts, "%s -DQI8_DP4A", options);
    cmn_err_t e = { 0 };
    cl_program p = wrk_device_program (dev, "qmatmul.cl", opts, &e);
    const int ok = p ? s_i8_selftest (dev, p) : -1;
    if (ok == 1)
        *slot = 1;
    else
        cmn_log_warn ("int8 GEMV: the dp4a build %s on %s; using mad24",
                      !p ? "does not compile" : ok < 0 ? "cannot run" : "gives wrong sums",
                      info->name);
    return *slot == 1;
}

bool
wrk_kernels_i8_dot (wrk_device_t *dev)
{
    assert (dev);
    return s_i8_dot (dev, s_qmm_options (s_tuning (dev)).text);
}

int
wrk_kernels_quant_i8 (wrk_device_t *dev, cl_mem x, cl_mem xq, cl_mem xd, cl_mem xs, int cols,
                      cl_event *event, cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    if (s_positive (err, "qi8_quant", &cols, 1) || s_fits (err, "qi8_quant", (size_t) cols, 1, 1))
        return -1;
    if (cols % 32)
        return cmn_err_set (err, RXQ_E_INVAL, "qi8_quant: cols %d is not a multiple of 32",
                            cols);
    const int nb = cols / 32;
    const size_t local [1] = { 64 };                         // qi8_quant's reqd size
    const size_t global [1] = { s_round_up ((size_t) nb * 8, 64) };
    return s_launch (dev, "qmatmul.cl", s_qmm_options (s_tuning (dev)).text, "qi8_quant", 1,
                     global, local,
                     S_ARGS (S_BUF (x, (size_t) cols * sizeof (float)), S_BUF (xq, (size_t) cols),
                             S_BUF (xd, (size_t) nb * sizeof (float)),
                             S_BUF (xs, (size_t) nb * sizeof (int32_t)), S_VAL (nb)),
                     event, err);
}

int
wrk_kernels_gemv_q_i8 (wrk_device_t *dev, int type, cl_mem W, cl_mem xq, cl_mem xd, cl_mem xs,
                       cl_mem y, int rows, int cols, cl_event *event, cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    size_t bv = 0, bb = 0;
    const char *tname = s_qtype (type, &bv, &bb);
    if (!tname)
        return cmn_err_set (err, RXQ_E_UNSUPPORTED, "qgemv_i8: quant type %d is not one of "
                            "q4_0, q4_1, q8_0, q4_K, q6_K", type);
    if (!wrk_device_info (dev)->little_endian)
        return cmn_err_set (err, RXQ_E_UNSUPPORTED, "qgemv_i8: needs a little-endian device");
    if (s_positive (err, "qgemv_i8", (int []) { rows, cols }, 2)
    ||  s_fits (err, "qgemv_i8", (size_t) rows, (size_t) cols, 1))
        return -1;
    if (cols % (int) bv)
        return cmn_err_set (err, RXQ_E_INVAL, "qgemv_i8: cols %d is not a multiple of the %s "
                            "block size %zu", cols, tname, bv);
    const s_tuning_t t = s_tuning (dev);
    char options [224], kernel [32];
    const char *base = s_qmm_options (t).text;
    snprintf (options, sizeof options, "%s%s", base, s_i8_dot (dev, base) ? " -DQI8_DP4A" : "");
    snprintf (kernel, sizeof kernel, "qgemv_i8_%s", tname);
    const size_t nb = (size_t) cols / bv, nx = (size_t) cols / 32;
    const bool kq = type == GGML_TYPE_Q4_K || type == GGML_TYPE_Q6_K;
    const size_t global [1] = { s_ceil_div (rows, kq ? t.gemv_i8_krows : t.gemv_i8_rows)
                                * t.qmm_wgs };
    const size_t local [1] = { t.qmm_wgs };
    return s_launch (dev, "qmatmul.cl", options, kernel, 1, global, local,
                     S_ARGS (S_BUF (W, (size_t) rows * nb * bb), S_BUF (xq, (size_t) cols),
                             S_BUF (xd, nx * sizeof (float)), S_BUF (xs, nx * sizeof (int32_t)),
                             S_BUF (y, (size_t) rows * sizeof (float)), S_VAL (rows),
                             S_VAL (cols)),
                     event, err);
}

//  --------------------------------------------------------------------------
//  norm.cl, softmax.cl

static int
s_check_act (cmn_err_t *err, const char *what, int act)
{
    if (act != WRK_ACT_NONE && act != WRK_ACT_GELU && act != WRK_ACT_RELU)
        return cmn_err_set (err, RXQ_E_INVAL, "%s: unknown activation %d", what, act);
    return 0;
}

static int
s_norm (wrk_device_t *dev, bool layer, cl_mem x, cl_mem w, cl_mem b, cl_mem y,
        int rows, int n, float eps, int act, cl_event *event, cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    const char *what = layer ? "layer_norm" : "rms_norm";
    if (s_positive (err, what, (int []) { rows, n }, 2)
    ||  s_fits (err, what, (size_t) rows, (size_t) n, 1)
    ||  s_check_act (err, what, act))
        return -1;
    const s_tuning_t t = s_tuning (dev);
    char options [64];
    snprintf (options, sizeof options, "-DNORM_WGS=%zu", t.norm_wgs);
    const size_t global [1] = { (size_t) rows * t.norm_wgs };
    const size_t local [1] = { t.norm_wgs };
    const size_t xy_bytes = (size_t) rows * n * sizeof (float);
    const size_t v_bytes = (size_t) n * sizeof (float);
    if (layer)
        return s_launch (dev, "norm.cl", options, what, 1, global, local,
                         S_ARGS (S_BUF (x, xy_bytes), S_OPT (w, v_bytes),
                                 S_OPT (b, v_bytes), S_BUF (y, xy_bytes),
                                 S_VAL (n), S_VAL (eps), S_VAL (act)),
                         event, err);
    return s_launch (dev, "norm.cl", options, what, 1, global, local,
                     S_ARGS (S_BUF (x, xy_bytes), S_OPT (w, v_bytes),
                             S_BUF (y, xy_bytes), S_VAL (n), S_VAL (eps),
                             S_VAL (act)),
                     event, err);
}

int
wrk_kernels_rms_norm (wrk_device_t *dev, cl_mem x, cl_mem w, cl_mem y,
                      int rows, int n, float eps, int act, cl_event *event,
                      cmn_err_t *err)
{
    return s_norm (dev, false, x, w, NULL, y, rows, n, eps, act, event, err);
}

int
wrk_kernels_layer_norm (wrk_device_t *dev, cl_mem x, cl_mem w, cl_mem b,
                        cl_mem y, int rows, int n, float eps, int act,
                        cl_event *event, cmn_err_t *err)
{
    return s_norm (dev, true, x, w, b, y, rows, n, eps, act, event, err);
}

int
wrk_kernels_softmax (wrk_device_t *dev, cl_mem x, cl_mem y, int rows, int n,
                     float scale, int q_len, int n_past, cl_event *event,
                     cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    if (s_positive (err, "softmax", (int []) { rows, n }, 2)
    ||  s_fits (err, "softmax", (size_t) rows, (size_t) n, 1))
        return -1;
    if (q_len < 0 || n_past < 0)
        return cmn_err_set (err, RXQ_E_INVAL, "softmax: q_len %d and n_past %d "
                            "must be >= 0", q_len, n_past);
    const s_tuning_t t = s_tuning (dev);
    char options [64];
    snprintf (options, sizeof options, "-DSOFTMAX_WGS=%zu", t.softmax_wgs);
    const size_t global [1] = { (size_t) rows * t.softmax_wgs };
    const size_t local [1] = { t.softmax_wgs };
    const size_t bytes = (size_t) rows * n * sizeof (float);
    return s_launch (dev, "softmax.cl", options, "softmax_rows", 1, global, local,
                     S_ARGS (S_BUF (x, bytes), S_BUF (y, bytes), S_VAL (n),
                             S_VAL (scale), S_VAL (q_len), S_VAL (n_past)),
                     event, err);
}


//  --------------------------------------------------------------------------
//  rope.cl, attention.cl

//  Bytes spanned by elements (t, h, d) with strides TS, HS.
static size_t
s_span (const wrk_rope_t *r, int ts, int hs)
{
    return ((size_t) (r->n_tokens - 1) * ts + (size_t) (r->n_heads - 1) * hs
            + r->head_dim) * sizeof (float);
}

int
wrk_kernels_rope (wrk_device_t *dev, cl_mem x, cl_mem y, cl_mem pos,
                  const wrk_rope_t *r, cl_event *event, cmn_err_t *err)
{
    assert (dev && r);
    s_null_event (event);
    if (s_positive (err, "rope", (int []) { r->n_tokens, r->n_heads, r->head_dim,
                                             r->n_dims }, 4))
        return -1;
    if (r->head_dim % 2 || r->n_dims % 2 || r->n_dims > r->head_dim)
        return cmn_err_set (err, RXQ_E_INVAL, "rope: head_dim %d and n_dims %d "
                            "must be even with n_dims <= head_dim",
                            r->head_dim, r->n_dims);
    if (r->mode != WRK_ROPE_NORMAL && r->mode != WRK_ROPE_NEOX)
        return cmn_err_set (err, RXQ_E_INVAL, "rope: unknown mode %d", r->mode);
    if (r->xs_tok < 0 || r->xs_head < 0 || r->ys_tok < 0 || r->ys_head < 0)
        return cmn_err_set (err, RXQ_E_INVAL, "rope: strides must be >= 0");
    if (s_span (r, r->xs_tok, r->xs_head) / sizeof (float) > S_MAX_ELEMS
    ||  s_span (r, r->ys_tok, r->ys_head) / sizeof (float) > S_MAX_ELEMS)
        return cmn_err_set (err, RXQ_E_LIMIT, "rope: tensor spans more than 2^30 floats");
    const size_t global [3] = { (size_t) r->head_dim / 2, (size_t) r->n_heads,
                                (size_t) r->n_tokens };
    return s_launch (dev, "rope.cl", NULL, "rope_f32", 3, global, NULL,
                     S_ARGS (S_BUF (x, s_span (r, r->xs_tok, r->xs_head)),
                             S_VAL (r->xs_tok), S_VAL (r->xs_head),
                             S_BUF (y, s_span (r, r->ys_tok, r->ys_head)),
                             S_VAL (r->ys_tok), S_VAL (r->ys_head),
                             S_BUF (pos, (size_t) r->n_tokens * sizeof (cl_int)),
                             S_VAL (r->head_dim), S_VAL (r->n_dims),
                             S_VAL (r->freq_base), S_VAL (r->mode)),
                     event, err);
}

int
wrk_kernels_attention (wrk_device_t *dev, cl_mem Q, cl_mem K, cl_mem V,
                       cl_mem O, const wrk_attn_t *a, cl_event *event,
                       cmn_err_t *err)
{
    assert (dev && a);
    s_null_event (event);
    if (s_positive (err, "attention", (int []) { a->n_q_heads, a->n_kv_heads,
                    a->n_tokens, a->head_dim, a->ctx }, 5))
        return -1;
    if (a->n_q_heads % a->n_kv_heads)
        return cmn_err_set (err, RXQ_E_INVAL, "attention: n_q_heads %d is not a "
                            "multiple of n_kv_heads %d", a->n_q_heads, a->n_kv_heads);
    if (a->head_dim % 4 || a->head_dim > S_ATT_MAX_HD)
        return cmn_err_set (err, RXQ_E_INVAL, "attention: head_dim %d must be a "
                            "multiple of 4 and at most %d", a->head_dim, S_ATT_MAX_HD);
    if (a->n_past < 0 || a->n_past > a->ctx - a->n_tokens)
        return cmn_err_set (err, RXQ_E_INVAL, "attention: n_past %d + n_tokens %d "
                            "do not fit the cache of %d rows", a->n_past,
                            a->n_tokens, a->ctx);
    if (s_fits (err, "attention", (size_t) a->n_q_heads, (size_t) a->n_tokens,
                (size_t) a->head_dim)
    ||  s_fits (err, "attention", (size_t) a->n_kv_heads, (size_t) a->ctx,
                (size_t) a->head_dim))
        return -1;
    const s_tuning_t t = s_tuning (dev);
    char options [64];
    snprintf (options, sizeof options, "-DATT_WGS=%zu -DATT_MAX_HD=%d",
              t.att_wgs, S_ATT_MAX_HD);
    const size_t global [2] = { (size_t) a->n_tokens * t.att_wgs, (size_t) a->n_q_heads };
    const size_t local [2] = { t.att_wgs, 1 };
    const int q_rows = a->q_rows ? a->q_rows : a->n_tokens;
    if (q_rows < a->n_tokens)
        return cmn_err_set (err, RXQ_E_INVAL, "attention: q_rows %d is below n_tokens %d",
                            q_rows, a->n_tokens);
    if (s_fits (err, "attention", (size_t) a->n_q_heads, (size_t) q_rows,
                (size_t) a->head_dim))
        return -1;
    //  The last head's window ends n_tokens rows into its q_rows.
    const size_t q_bytes = (a->q_off + ((size_t) (a->n_q_heads - 1) * q_rows + a->n_tokens)
                            * a->head_dim) * sizeof (float);
    const size_t kv_bytes = (a->kv_off + (size_t) a->n_kv_heads * a->ctx * a->head_dim)
                          * sizeof (float);
    const int group = a->n_q_heads / a->n_kv_heads;
    const cl_ulong q_off = a->q_off, kv_off = a->kv_off;
    return s_launch (dev, "attention.cl", options, "attention_f32", 2, global, local,
                     S_ARGS (S_BUF (Q, q_bytes), S_BUF (K, kv_bytes),
                             S_BUF (V, kv_bytes), S_BUF (O, q_bytes),
                             S_VAL (a->n_tokens), S_VAL (a->head_dim),
                             S_VAL (a->ctx), S_VAL (a->n_past), S_VAL (group),
                             S_VAL (a->scale), S_VAL (q_rows), S_VAL (q_off),
                             S_VAL (kv_off)),
                     event, err);
}


//  --------------------------------------------------------------------------
//  ggml.cl: llama.cpp's CPU backend, bit for bit

int
wrk_kernels_ggml_round_act (wrk_device_t *dev, int type, cl_mem x, cl_mem y,
                            int rows, int cols, cl_event *event, cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    size_t qk;
    const char *kernel;
    switch (type) {
        case GGML_TYPE_Q4_0: case GGML_TYPE_Q8_0: case GGML_TYPE_Q4_1:
            qk = 32; kernel = "ggml_round_q8"; break;
        case GGML_TYPE_Q4_K: case GGML_TYPE_Q6_K:
            qk = QK_K; kernel = "ggml_round_q8_k"; break;
        default:
            return cmn_err_set (err, RXQ_E_UNSUPPORTED, "ggml_round: quant type %d is not "
                                "one of q4_0, q4_1, q8_0, q4_K, q6_K", type);
    }
    if (s_positive (err, "ggml_round", (int []) { rows, cols }, 2)
    ||  s_fits (err, "ggml_round", (size_t) rows, (size_t) cols, 1))
        return -1;
    if (cols % qk)
        return cmn_err_set (err, RXQ_E_INVAL, "ggml_round: cols %d is not a multiple of %zu",
                            cols, qk);
    const cl_uint nb = (cl_uint) ((size_t) rows * cols / qk);
    const size_t bytes = (size_t) rows * cols * sizeof (float);
    const size_t global [1] = { s_round_up (nb, 64) };
    return s_launch (dev, "ggml.cl", S_GGML_OPTIONS, kernel, 1, global, NULL,
                     S_ARGS (S_BUF (x, bytes), S_BUF (y, bytes), S_VAL (nb)), event, err);
}

int
wrk_kernels_ggml_round_f16 (wrk_device_t *dev, cl_mem x, size_t n, cl_event *event,
                            cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    if (n < 1 || n > S_MAX_ELEMS)
        return cmn_err_set (err, n ? RXQ_E_LIMIT : RXQ_E_INVAL, "ggml_round_f16: n %zu must "
                            "be 1 .. 2^30", n);
    const cl_uint un = (cl_uint) n;
    const size_t global [1] = { s_round_up (n, 256) };
    return s_launch (dev, "ggml.cl", S_GGML_OPTIONS, "ggml_round_f16", 1, global, NULL,
                     S_ARGS (S_BUF (x, n * sizeof (float)), S_VAL (un)), event, err);
}

int
wrk_kernels_ggml_quant_q8_1 (wrk_device_t *dev, cl_mem x, cl_mem qs, cl_mem d, cl_mem s,
                             int rows, int cols, cl_event *event, cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    if (s_positive (err, "ggml_quant_q8_1", (int []) { rows, cols }, 2)
    ||  s_fits (err, "ggml_quant_q8_1", (size_t) rows, (size_t) cols, 1))
        return -1;
    if (cols % 32)
        return cmn_err_set (err, RXQ_E_INVAL, "ggml_quant_q8_1: cols %d is not a multiple "
                            "of 32", cols);
    const cl_uint nb = (cl_uint) ((size_t) rows * cols / 32);
    const size_t global [1] = { s_round_up (nb, 64) };
    return s_launch (dev, "ggml.cl", S_GGML_OPTIONS, "ggml_quant_q8_1", 1, global, NULL,
                     S_ARGS (S_BUF (x, (size_t) rows * cols * sizeof (float)),
                             S_BUF (qs, (size_t) rows * cols),
                             S_BUF (d, (size_t) nb * sizeof (float)),
                             S_BUF (s, (size_t) nb * sizeof (float)), S_VAL (nb)),
                     event, err);
}

int
wrk_kernels_ggml_mm_q4_1 (wrk_device_t *dev, cl_mem W, cl_mem qs, cl_mem d, cl_mem s,
                          cl_mem y, int rows, int cols, int batch, cl_event *event,
                          cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    if (s_positive (err, "ggml_mm_q4_1", (int []) { rows, cols, batch }, 3)
    ||  s_fits (err, "ggml_mm_q4_1", (size_t) rows, (size_t) cols, 1)
    ||  s_fits (err, "ggml_mm_q4_1", (size_t) batch, (size_t) cols, 1)
    ||  s_fits (err, "ggml_mm_q4_1", (size_t) batch, (size_t) rows, 1))
        return -1;
    if (cols % QK4_1)
        return cmn_err_set (err, RXQ_E_INVAL, "ggml_mm_q4_1: cols %d is not a multiple of %d",
                            cols, QK4_1);
    const int nb = cols / QK4_1;
    const size_t global [2] = { s_round_up ((size_t) rows, 64), (size_t) batch };
    return s_launch (dev, "ggml.cl", S_GGML_OPTIONS, "ggml_mm_q4_1", 2, global, NULL,
                     S_ARGS (S_BUF (W, (size_t) rows * nb * sizeof (block_q4_1)),
                             S_BUF (qs, (size_t) batch * cols),
                             S_BUF (d, (size_t) batch * nb * sizeof (float)),
                             S_BUF (s, (size_t) batch * nb * sizeof (float)),
                             S_BUF (y, (size_t) batch * rows * sizeof (float)),
                             S_VAL (rows), S_VAL (nb), S_VAL (batch)),
                     event, err);
}

int
wrk_kernels_ggml_rms_norm (wrk_device_t *dev, cl_mem x, cl_mem w, cl_mem y, int rows, int n,
                           float eps, cl_event *event, cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    if (s_positive (err, "ggml_rms_norm", (int []) { rows, n }, 2)
    ||  s_fits (err, "ggml_rms_norm", (size_t) rows, (size_t) n, 1))
        return -1;
    const size_t bytes = (size_t) rows * n * sizeof (float);
    const size_t global [1] = { s_round_up ((size_t) rows, 16) };
    return s_launch (dev, "ggml.cl", S_GGML_OPTIONS, "ggml_rms_norm", 1, global, NULL,
                     S_ARGS (S_BUF (x, bytes), S_BUF (w, (size_t) n * sizeof (float)),
                             S_BUF (y, bytes), S_VAL (rows), S_VAL (n), S_VAL (eps)),
                     event, err);
}

int
wrk_kernels_ggml_swiglu (wrk_device_t *dev, cl_mem g, cl_mem u, cl_mem y, size_t n,
                         cl_event *event, cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    if (n < 1 || n > S_MAX_ELEMS)
        return cmn_err_set (err, n ? RXQ_E_LIMIT : RXQ_E_INVAL, "ggml_swiglu: n %zu must "
                            "be 1 .. 2^30", n);
    const cl_uint un = (cl_uint) n;
    const size_t global [1] = { s_round_up (n, 256) };
    return s_launch (dev, "ggml.cl", S_GGML_OPTIONS, "ggml_swiglu", 1, global, NULL,
                     S_ARGS (S_BUF (g, n * sizeof (float)), S_BUF (u, n * sizeof (float)),
                             S_BUF (y, n * sizeof (float)), S_VAL (un)),
                     event, err);
}

int
wrk_kernels_ggml_rope (wrk_device_t *dev, cl_mem x, cl_mem y, cl_mem cs, const wrk_rope_t *r,
                       cl_event *event, cmn_err_t *err)
{
    assert (dev && r);
    s_null_event (event);
    if (s_positive (err, "ggml_rope", (int []) { r->n_tokens, r->n_heads, r->head_dim,
                                                  r->n_dims }, 4))
        return -1;
    if (r->head_dim % 2 || r->n_dims % 2 || r->n_dims > r->head_dim)
        return cmn_err_set (err, RXQ_E_INVAL, "ggml_rope: head_dim %d and n_dims %d "
                            "must be even with n_dims <= head_dim", r->head_dim, r->n_dims);
    if (r->mode != WRK_ROPE_NORMAL && r->mode != WRK_ROPE_NEOX)
        return cmn_err_set (err, RXQ_E_INVAL, "ggml_rope: unknown mode %d", r->mode);
    if (r->xs_tok < 0 || r->xs_head < 0 || r->ys_tok < 0 || r->ys_head < 0)
        return cmn_err_set (err, RXQ_E_INVAL, "ggml_rope: strides must be >= 0");
    if (s_span (r, r->xs_tok, r->xs_head) / sizeof (float) > S_MAX_ELEMS
    ||  s_span (r, r->ys_tok, r->ys_head) / sizeof (float) > S_MAX_ELEMS)
        return cmn_err_set (err, RXQ_E_LIMIT, "ggml_rope: tensor spans more than 2^30 floats");
    const size_t global [3] = { (size_t) r->head_dim / 2, (size_t) r->n_heads,
                                (size_t) r->n_tokens };
    return s_launch (dev, "ggml.cl", S_GGML_OPTIONS, "ggml_rope", 3, global, NULL,
                     S_ARGS (S_BUF (x, s_span (r, r->xs_tok, r->xs_head)),
                             S_VAL (r->xs_tok), S_VAL (r->xs_head),
                             S_BUF (y, s_span (r, r->ys_tok, r->ys_head)),
                             S_VAL (r->ys_tok), S_VAL (r->ys_head),
                             S_BUF (cs, (size_t) r->n_tokens * r->n_dims * sizeof (float)),
                             S_VAL (r->head_dim), S_VAL (r->n_dims), S_VAL (r->mode)),
                     event, err);
}

int
wrk_kernels_attention_ggml (wrk_device_t *dev, cl_mem Q, cl_mem K, cl_mem V, cl_mem O,
                            cl_mem scratch, const wrk_attn_t *a, int gen,
                            cl_event *event, cmn_err_t *err)
{
    assert (dev && a);
    s_null_event (event);
    if (s_positive (err, "attention_ggml", (int []) { a->n_q_heads, a->n_kv_heads,
                    a->n_tokens, a->head_dim, a->ctx }, 5))
        return -1;
    if (a->n_q_heads % a->n_kv_heads)
        return cmn_err_set (err, RXQ_E_INVAL, "attention_ggml: n_q_heads %d is not a "
                            "multiple of n_kv_heads %d", a->n_q_heads, a->n_kv_heads);
    if (a->head_dim > 256)
        return cmn_err_set (err, RXQ_E_INVAL, "attention_ggml: head_dim %d is above 256",
                            a->head_dim);
    if (a->n_past < 0 || a->n_past > a->ctx - a->n_tokens)
        return cmn_err_set (err, RXQ_E_INVAL, "attention_ggml: n_past %d + n_tokens %d "
                            "do not fit the cache of %d rows", a->n_past, a->n_tokens, a->ctx);
    const int q_rows = a->q_rows ? a->q_rows : a->n_tokens;
    if (q_rows < a->n_tokens)
        return cmn_err_set (err, RXQ_E_INVAL, "attention_ggml: q_rows %d is below n_tokens "
                            "%d", q_rows, a->n_tokens);
    if (s_fits (err, "attention_ggml", (size_t) a->n_q_heads, (size_t) q_rows,
                (size_t) a->head_dim)
    ||  s_fits (err, "attention_ggml", (size_t) a->n_kv_heads, (size_t) a->ctx,
                (size_t) a->head_dim)
    ||  s_fits (err, "attention_ggml", (size_t) a->n_q_heads, (size_t) a->n_tokens,
                (size_t) a->ctx))
        return -1;
    const size_t q_bytes = (a->q_off + ((size_t) (a->n_q_heads - 1) * q_rows + a->n_tokens)
                            * a->head_dim) * sizeof (float);
    const size_t kv_bytes = (a->kv_off + (size_t) a->n_kv_heads * a->ctx * a->head_dim)
                          * sizeof (float);
    const size_t sc_bytes = (size_t) a->n_q_heads * a->n_tokens * a->ctx * sizeof (float);
    const int group = a->n_q_heads / a->n_kv_heads;
    const cl_ulong q_off = a->q_off, kv_off = a->kv_off;
    const size_t global [2] = { (size_t) a->n_tokens, (size_t) a->n_q_heads };
    return s_launch (dev, "ggml.cl", S_GGML_OPTIONS, "attention_ggml", 2, global, NULL,
                     S_ARGS (S_BUF (Q, q_bytes), S_BUF (K, kv_bytes),
                             S_BUF (V, kv_bytes), S_BUF (O, q_bytes),
                             S_VAL (a->n_tokens), S_VAL (a->head_dim),
                             S_VAL (a->ctx), S_VAL (a->n_past), S_VAL (group),
                             S_VAL (a->scale), S_VAL (q_rows), S_VAL (q_off),
                             S_VAL (kv_off), S_VAL (gen), S_BUF (scratch, sc_bytes)),
                     event, err);
}

//  --------------------------------------------------------------------------
//  elementwise.cl

//  Argument shapes of the elementwise kernels.
typedef enum {
    S_EW_BROADCAST,             // (a, b, y, n, bn): add, mul
    S_EW_BINARY,                // (a, b, y, n): swiglu
    S_EW_UNARY,                 // (a, y, n): silu, gelu
    S_EW_SCALAR                 // (a, y, n, s): scale
} s_ew_shape_t;

//  Launches ew_<OP> over N elements; BN is b's length for S_EW_BROADCAST
//  (N otherwise), S the scalar of S_EW_SCALAR.
static int
s_elementwise (wrk_device_t *dev, const char *op, s_ew_shape_t shape,
               cl_mem a, cl_mem b, cl_mem y, size_t n, size_t bn, float s,
               cl_event *event, cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    if (n < 1 || bn < 1 || n % bn)
        return cmn_err_set (err, RXQ_E_INVAL, "%s: n %zu must be >= 1 and a "
                            "multiple of the broadcast length %zu", op, n, bn);
    if (n > S_MAX_ELEMS)
        return cmn_err_set (err, RXQ_E_LIMIT, "%s: %zu elements exceed 2^30", op, n);
    const s_tuning_t t = s_tuning (dev);
    char options [64], kernel [32];
    snprintf (options, sizeof options, "-DEW_WGS=%zu", t.ew_wgs);
    snprintf (kernel, sizeof kernel, "ew_%s", op);
    const size_t global [1] = { s_round_up (n, t.ew_wgs) };
    const size_t local [1] = { t.ew_wgs };
    const cl_uint n32 = (cl_uint) n, bn32 = (cl_uint) bn;
    const size_t bytes = n * sizeof (float), b_bytes = bn * sizeof (float);
    switch (shape) {
        case S_EW_BROADCAST:
            return s_launch (dev, "elementwise.cl", options, kernel, 1, global, local,
                             S_ARGS (S_BUF (a, bytes), S_BUF (b, b_bytes),
                                     S_BUF (y, bytes), S_VAL (n32), S_VAL (bn32)),
                             event, err);
        case S_EW_BINARY:
            return s_launch (dev, "elementwise.cl", options, kernel, 1, global, local,
                             S_ARGS (S_BUF (a, bytes), S_BUF (b, bytes),
                                     S_BUF (y, bytes), S_VAL (n32)),
                             event, err);
        case S_EW_SCALAR:
            return s_launch (dev, "elementwise.cl", options, kernel, 1, global, local,
                             S_ARGS (S_BUF (a, bytes), S_BUF (y, bytes),
                                     S_VAL (n32), S_VAL (s)),
                             event, err);
        default:
            return s_launch (dev, "elementwise.cl", options, kernel, 1, global, local,
                             S_ARGS (S_BUF (a, bytes), S_BUF (y, bytes), S_VAL (n32)),
                             event, err);
    }
}

int
wrk_kernels_add (wrk_device_t *dev, cl_mem a, cl_mem b, cl_mem y, size_t n,
                 size_t bn, cl_event *event, cmn_err_t *err)
{
    return s_elementwise (dev, "add", S_EW_BROADCAST, a, b, y, n, bn, 0, event, err);
}

int
wrk_kernels_mul (wrk_device_t *dev, cl_mem a, cl_mem b, cl_mem y, size_t n,
                 size_t bn, cl_event *event, cmn_err_t *err)
{
    return s_elementwise (dev, "mul", S_EW_BROADCAST, a, b, y, n, bn, 0, event, err);
}

int
wrk_kernels_scale (wrk_device_t *dev, cl_mem a, cl_mem y, size_t n, float s,
                   cl_event *event, cmn_err_t *err)
{
    return s_elementwise (dev, "scale", S_EW_SCALAR, a, NULL, y, n, n, s, event, err);
}

int
wrk_kernels_silu (wrk_device_t *dev, cl_mem a, cl_mem y, size_t n,
                  cl_event *event, cmn_err_t *err)
{
    return s_elementwise (dev, "silu", S_EW_UNARY, a, NULL, y, n, n, 0, event, err);
}

int
wrk_kernels_gelu (wrk_device_t *dev, cl_mem a, cl_mem y, size_t n,
                  cl_event *event, cmn_err_t *err)
{
    return s_elementwise (dev, "gelu", S_EW_UNARY, a, NULL, y, n, n, 0, event, err);
}

int
wrk_kernels_swiglu (wrk_device_t *dev, cl_mem a, cl_mem b, cl_mem y, size_t n,
                    cl_event *event, cmn_err_t *err)
{
    return s_elementwise (dev, "swiglu", S_EW_BINARY, a, b, y, n, n, 0, event, err);
}


//  --------------------------------------------------------------------------
//  transpose.cl

int
wrk_kernels_transpose (wrk_device_t *dev, cl_mem a, cl_mem b, int rows,
                       int cols, cl_event *event, cmn_err_t *err)
{
    assert (dev);
    s_null_event (event);
    if (s_positive (err, "transpose", (int []) { rows, cols }, 2)
    ||  s_fits (err, "transpose", (size_t) rows, (size_t) cols, 1))
        return -1;
    const s_tuning_t t = s_tuning (dev);
    char options [64];
    snprintf (options, sizeof options, "-DTR_TILE=%zu -DTR_ROWS=%zu",
              t.tr_tile, t.tr_rows);
    const size_t global [2] = { s_ceil_div (cols, t.tr_tile) * t.tr_tile,
                                s_ceil_div (rows, t.tr_tile) * t.tr_rows };
    const size_t local [2] = { t.tr_tile, t.tr_rows };
    const size_t bytes = (size_t) rows * cols * sizeof (float);
    return s_launch (dev, "transpose.cl", options, "transpose_f32", 2, global, local,
                     S_ARGS (S_BUF (a, bytes), S_BUF (b, bytes), S_VAL (rows),
                             S_VAL (cols)),
                     event, err);
}


//  --------------------------------------------------------------------------
//  conv.cl

int
wrk_kernels_conv_out (const wrk_conv_t *cv, int *oh, int *ow)
{
    assert (cv && oh && ow);
    if (cv->n < 1 || cv->c < 1 || cv->h < 1 || cv->w < 1 || cv->kh < 1
    ||  cv->kw < 1 || cv->stride_h < 1 || cv->stride_w < 1 || cv->pad_h < 0
    ||  cv->pad_w < 0 || cv->dil_h < 1 || cv->dil_w < 1)
        return -1;
    //  In 64 bits: a pad or dilation near INT_MAX must not wrap.
    const int64_t eh = (int64_t) cv->h + 2 * (int64_t) cv->pad_h
                     - (int64_t) cv->dil_h * (cv->kh - 1) - 1;
    const int64_t ew = (int64_t) cv->w + 2 * (int64_t) cv->pad_w
                     - (int64_t) cv->dil_w * (cv->kw - 1) - 1;
    if (eh < 0 || ew < 0)
        return -1;
    const int64_t h = eh / cv->stride_h + 1, w = ew / cv->stride_w + 1;
    if (h > INT_MAX || w > INT_MAX)
        return -1;
    *oh = (int) h;
    *ow = (int) w;
    return 0;
}

//  Validates CV for WHAT and packs it into the kernels' int16 geometry.
static int
s_conv_geometry (const wrk_conv_t *cv, bool need_oc, const char *what,
                 cl_int16 *g, cmn_err_t *err)
{
    int oh, ow;
    if (wrk_kernels_conv_out (cv, &oh, &ow) || (need_oc && cv->oc < 1))
        return cmn_err_set (err, RXQ_E_INVAL, "%s: invalid geometry (n %d, c %d, "
                            "%dx%d image, %dx%d kernel, stride %d,%d, pad %d,%d, "
                            "dilation %d,%d, oc %d)", what, cv->n, cv->c, cv->h,
                            cv->w, cv->kh, cv->kw, cv->stride_h, cv->stride_w,
                            cv->pad_h, cv->pad_w, cv->dil_h, cv->dil_w, cv->oc);
    const size_t pixels = (size_t) cv->n * oh * ow;
    if (s_fits (err, what, (size_t) cv->n * cv->c, (size_t) cv->h, (size_t) cv->w)
    ||  s_fits (err, what, pixels, (size_t) cv->c * cv->kh, (size_t) cv->kw)
    ||  (need_oc && s_fits (err, what, pixels, (size_t) cv->oc, 1))
    ||  (need_oc && s_fits (err, what, (size_t) cv->oc * cv->kh, (size_t) cv->kw,
                            (size_t) cv->c)))
        return -1;
    const int v [16] = { cv->n, cv->c, cv->h, cv->w, cv->oc, cv->kh, cv->kw,
                         cv->stride_h, cv->stride_w, cv->pad_h, cv->pad_w,
                         cv->dil_h, cv->dil_w, oh, ow, 0 };
    for (int i = 0; i < 16; i++)
        g->s [i] = v [i];
    return 0;
}

int
wrk_kernels_im2col (wrk_device_t *dev, int layout, cl_mem in, cl_mem col,
                    const wrk_conv_t *cv, cl_event *event, cmn_err_t *err)
{
    assert (dev && cv);
    assert (layout == WRK_LAYOUT_NCHW || layout == WRK_LAYOUT_NHWC);
    s_null_event (event);
    cl_int16 g;
    if (s_conv_geometry (cv, false, "im2col", &g, err))
        return -1;
    const s_tuning_t t = s_tuning (dev);
    char options [64];
    snprintf (options, sizeof options, "-DCONV_WGS=%zu -DCONV_OCT=%zu",
              t.conv_wgs, t.conv_oct);
    const size_t in_bytes = (size_t) cv->n * cv->c * cv->h * cv->w * sizeof (float);
    const size_t cols = (size_t) g.s [0] * g.s [13] * g.s [14] * cv->c * cv->kh * cv->kw;
    const size_t global [1] = { s_round_up (cols, t.conv_wgs) };
    const size_t local [1] = { t.conv_wgs };
    return s_launch (dev, "conv.cl", options,
                     layout == WRK_LAYOUT_NCHW ? "im2col_nchw" : "im2col_nhwc",
                     1, global, local,
                     S_ARGS (S_BUF (in, in_bytes), S_BUF (col, cols * sizeof (float)),
                             S_VAL (g)),
                     event, err);
}

int
wrk_kernels_conv2d_nhwc (wrk_device_t *dev, cl_mem in, cl_mem w, cl_mem scale,
                         cl_mem bias, cl_mem y, const wrk_conv_t *cv, bool relu,
                         cl_event *event, cmn_err_t *err)
{
    assert (dev && cv);
    s_null_event (event);
    cl_int16 g;
    if (s_conv_geometry (cv, true, "conv2d", &g, err))
        return -1;
    const s_tuning_t t = s_tuning (dev);
    char options [64];
    snprintf (options, sizeof options, "-DCONV_WGS=%zu -DCONV_OCT=%zu",
              t.conv_wgs, t.conv_oct);
    const size_t pixels = (size_t) g.s [0] * g.s [13] * g.s [14];
    const size_t in_bytes = (size_t) cv->n * cv->c * cv->h * cv->w * sizeof (float);
    const size_t w_bytes = (size_t) cv->oc * cv->kh * cv->kw * cv->c * sizeof (float);
    const size_t oc_bytes = (size_t) cv->oc * sizeof (float);
    const size_t global [1] = { s_round_up (pixels * s_ceil_div (cv->oc, t.conv_oct),
                                            t.conv_wgs) };
    const size_t local [1] = { t.conv_wgs };
    const cl_int relu_i = relu;
    return s_launch (dev, "conv.cl", options, "conv2d_nhwc", 1, global, local,
                     S_ARGS (S_BUF (in, in_bytes), S_BUF (w, w_bytes),
                             S_OPT (scale, oc_bytes), S_OPT (bias, oc_bytes),
                             S_BUF (y, pixels * oc_bytes), S_VAL (g),
                             S_VAL (relu_i)),
                     event, err);
}
