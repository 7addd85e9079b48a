/*  kernel_test: helpers shared by the kernel tests (tests/kernels/test_*.c).
 *
 *  Opens the test device (RXQ_TEST_DEVICE, a wrk_device selector, default
 *  "Portable": PoCL), makes output buffers poisoned with a NaN pattern and
 *  followed by a guard zone, reads them back checking the guard, and
 *  compares results with a per-element bound written so that NaN never
 *  passes (!(diff <= bound)). An element the kernel forgot to write stays
 *  NaN and fails; a write past the end changes the guard and fails.
 *
 *  Header-only (static inline functions): each test file is its own executable.
 */
#ifndef KERNEL_TEST_H
#define KERNEL_TEST_H
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "wrk_device.h"
#include "wrk_kernels.h"
#include "wrk_ref.h"

#define KT_GUARD 64                     // floats of guard after each output
#define KT_POISON 0x7fc0deadu           // quiet NaN bit pattern
#define KT_U (1.0 / 16777216.0)         // unit roundoff of float32, 2^-24

static wrk_device_t *kt_dev;

static inline void
kt_open (void)
{
    cmn_err_t err = { 0 };
    const char *sel = getenv ("RXQ_TEST_DEVICE");
    if (!sel || !*sel)
        sel = "Portable";
    kt_dev = wrk_device_new (sel, NULL, &err);
    cr_assert_not_null (kt_dev, "no OpenCL device '%s': %s", sel, err.msg);
}

static inline void
kt_close (void)
{
    wrk_device_destroy (&kt_dev);
}

static inline void *
kt_alloc (size_t bytes)
{
    void *p = calloc (1, bytes ? bytes : 1);
    cr_assert_not_null (p);
    return p;
}

//  Device buffer holding a copy of BYTES at DATA.
static inline cl_mem
kt_in (const void *data, size_t bytes)
{
    cl_int rc;
    cl_mem m = clCreateBuffer (wrk_device_context (kt_dev),
                               CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                               bytes, (void *) data, &rc);
    cr_assert_eq (rc, CL_SUCCESS, "clCreateBuffer: %d", rc);
    return m;
}

//  Device buffer of N floats plus the guard, all poisoned.
static inline cl_mem
kt_out (size_t n)
{
    uint32_t *poison = kt_alloc ((n + KT_GUARD) * sizeof *poison);
    for (size_t i = 0; i < n + KT_GUARD; i++)
        poison [i] = KT_POISON;
    cl_mem m = kt_in (poison, (n + KT_GUARD) * sizeof *poison);
    free (poison);
    return m;
}

//  Waits for the queue, copies N floats of M to DST and checks that the
//  guard after them is intact.
static inline void
kt_read (cl_mem m, float *dst, size_t n)
{
    uint32_t *all = kt_alloc ((n + KT_GUARD) * sizeof *all);
    cl_int rc = clEnqueueReadBuffer (wrk_device_queue (kt_dev), m, CL_TRUE, 0,
                                     (n + KT_GUARD) * sizeof *all, all, 0, NULL, NULL);
    cr_assert_eq (rc, CL_SUCCESS, "clEnqueueReadBuffer: %d", rc);
    for (size_t i = n; i < n + KT_GUARD; i++)
        cr_assert_eq (all [i], KT_POISON, "write past the end: element %zu", i);
    memcpy (dst, all, n * sizeof *dst);
    free (all);
}

//  Reads N floats back (kt_read) into a new array.
static inline float *
kt_result (cl_mem m, size_t n)
{
    float *got = kt_alloc (n * sizeof *got);
    kt_read (m, got, n);
    return got;
}

//  Asserts |got[i] - ref[i]| <= bound[i] for every i; NaN fails.
static inline void
kt_check (const char *what, const float *got, const float *ref,
          const double *bound, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const double diff = fabs ((double) got [i] - ref [i]);
        cr_assert (diff <= bound [i], "%s: element %zu is %.9g, reference %.9g, "
                   "error %.3g > bound %.3g", what, i, got [i], ref [i], diff, bound [i]);
    }
}

//  Asserts that GOT and REF hold the same bits (exact operations).
static inline void
kt_check_exact (const char *what, const float *got, const float *ref, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_assert (memcmp (&got [i], &ref [i], sizeof (float)) == 0 && !isnan (got [i]),
                   "%s: element %zu is %.9g, expected exactly %.9g", what, i,
                   got [i], ref [i]);
}

//  Asserts a launcher's return code, printing its error.
#define KT_OK(call) do { \
    cmn_err_t kt_err_ = { 0 }; \
    cmn_err_t *err = &kt_err_; \
    int kt_rc_ = (call); \
    cr_assert_eq (kt_rc_, 0, "%s: %s", #call, err->msg); \
} while (0)

//  Asserts that a launcher fails with error code WANT.
#define KT_FAILS(want, call) do { \
    cmn_err_t kt_err_ = { 0 }; \
    cmn_err_t *err = &kt_err_; \
    int kt_rc_ = (call); \
    cr_assert_eq (kt_rc_, -1, "%s should fail", #call); \
    cr_assert_eq (kt_err_.code, (want), "%s: code %d (%s), wanted %d", #call, \
                  kt_err_.code, kt_err_.msg, (want)); \
} while (0)

#endif
