/*  wrk_device: the one OpenCL device a worker owns.
 *
 *  Discovers platforms and devices, picks one (a selector string, else the
 *  first GPU, else the first device of any type), creates a context and an
 *  in-order command queue with profiling enabled, describes the device for
 *  the READY message, and builds programs from the embedded kernel sources
 *  (rxq_kernels_load) with common/cmn_quant_blocks.h prepended. Built
 *  programs are kept in memory per (source name, options) and on disk per
 *  (platform, device, driver version, source text, options) under the
 *  cache directory, so a restarted worker does not recompile.
 *
 *  Every OpenCL failure is reported as RXQ_E_OPENCL (or OPENCL_BUILD with
 *  the build log) and a message naming the call and the cl_int, e.g.
 *  "clCreateBuffer: CL_MEM_OBJECT_ALLOCATION_FAILURE (-4)".
 *
 *  A wrk_device_t is used by one thread at a time (the worker's device
 *  thread); it does no locking of its own.
 */
#ifndef WRK_DEVICE_H
#define WRK_DEVICE_H
#include <CL/cl.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "cmn_error.h"
#include "wrk_job.h"

//  What the worker advertises and benchmark records store.
typedef struct {
    char platform [128];        // platform name
    char name [128];            // device name
    char vendor [128];          // device vendor
    char driver [128];          // driver version
    char version [128];         // CL_DEVICE_VERSION
    char opencl_c [128];        // CL_DEVICE_OPENCL_C_VERSION
    char type [16];             // "gpu", "cpu", "accelerator", "other"
    uint32_t compute_units;     // CL_DEVICE_MAX_COMPUTE_UNITS
    uint64_t global_mem;        // bytes
    uint64_t local_mem;         // bytes
    uint64_t max_alloc;         // bytes, largest single buffer
    uint32_t max_clock_mhz;     // MHz
    size_t max_wg;              // max work-group size, work-items
    bool fp16;                  // cl_khr_fp16 present
    bool fp64;                  // cl_khr_fp64 present
    bool little_endian;         // CL_DEVICE_ENDIAN_LITTLE (not advertised)
} wrk_device_info_t;

//  Counters of the program cache, for tests and telemetry.
typedef struct {
    uint64_t builds;            // programs compiled from source
    uint64_t cache_hits;        // programs loaded from an on-disk binary
    uint64_t cache_rejects;     // cache files present but unusable (bad
                                // header, or the driver refused the binary)
    uint64_t cache_writes;      // binaries written to the cache directory
} wrk_device_stats_t;

//  Opens a device. SELECTOR may be NULL or "" (first GPU, else first device),
//  "P:D" (platform index P, device index D), or a case-insensitive
//  substring of "platform name / device name". CACHE_DIR, when not NULL,
//  holds built program binaries; it is created (one level) if missing, and
//  a directory that cannot be used only disables the disk cache. Returns
//  NULL with ERR set (RXQ_E_NODEVICE when nothing matches, listing what
//  exists; RXQ_E_OPENCL otherwise).
wrk_device_t *wrk_device_new (const char *selector, const char *cache_dir,
                              cmn_err_t *err);

//  Releases the queue, programs and context. Idempotent; nulls *self_p.
void wrk_device_destroy (wrk_device_t **self_p);

//  Accessors; the device keeps ownership of what they return.
const wrk_device_info_t *wrk_device_info (wrk_device_t *self);
cl_context wrk_device_context (wrk_device_t *self);
cl_command_queue wrk_device_queue (wrk_device_t *self);
cl_device_id wrk_device_id (wrk_device_t *self);
const wrk_device_stats_t *wrk_device_stats (wrk_device_t *self);

//  Where wrk_kernels keeps, per device, whether the int8 GEMV uses the
//  device's int8 dot product: -1 until its self-test has run, then 0 or 1.
int *wrk_device_i8_dot_slot (wrk_device_t *self);

//  Returns the built program for kernel source file NAME ("sgemm.cl") with
//  build OPTIONS (may be NULL), building it on first use. "-cl-std=CL1.2"
//  is added unless OPTIONS already name a -cl-std. The device keeps
//  ownership: do not release the program. Returns NULL with ERR set:
//  RXQ_E_NOTFOUND when no source NAME exists, RXQ_E_OPENCL_BUILD when it
//  does not compile (the message holds the start of the build log; the
//  whole log goes to the log at warn level), RXQ_E_OPENCL otherwise.
cl_program wrk_device_program (wrk_device_t *self, const char *name,
                               const char *options, cmn_err_t *err);

//  Packs the device description as a msgpack map of 15 entries (READY,
//  bench records): platform, name, vendor, driver, version, opencl_c, type
//  (strings); compute_units, global_mem, local_mem, max_alloc,
//  max_clock_mhz, max_wg (unsigned); fp16, fp64 (booleans).
void wrk_device_pack_info (wrk_device_t *self, msgpack_packer *pk);

//  Writes one line per platform/device found to OUT ("0:0 Portable
//  Computing Language / pthread-... (cpu)"); returns the number listed,
//  0 when there is no OpenCL platform (a line saying so is written).
int wrk_device_list (FILE *out);

//  Sets ERR from an OpenCL status: RXQ_E_OPENCL, "WHAT: CL_NAME (n)".
//  Returns -1.
int wrk_device_cl_error (cmn_err_t *err, const char *what, cl_int status);

//  Elapsed device time of a finished, profiled event, in nanoseconds, or
//  0 when the driver gives none.
uint64_t wrk_device_event_ns (cl_event event);

#endif
