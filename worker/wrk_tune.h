/*  wrk_tune: per-device tuning parameters of the kernels, as data.
 *
 *  Every kernel file of kernels/ takes its tuning parameters as
 *  `#ifndef P / #define P default` overridden by -D options. This class
 *  holds the table that chooses those options per device, in CLBlast's
 *  manner: shipped rows matched on (vendor, device name, device type),
 *  first match wins, a default row last. A tuned entry (a msgpack map
 *  {family: {PARAM: int}}, which the broker delivers from Redis after a
 *  `tune` job) can be installed for a device; its values replace the
 *  shipped row's. Whatever the source, the set is clamped to the device's
 *  work-group and local-memory limits before use. docs/tuning.md gives
 *  the rows and the reasoning behind each.
 *
 *  The search functions (wrk_tune_search_*) time candidate configurations
 *  on a device, check each one's output, and return the fastest correct
 *  one; the `tune` job kind runs them.
 *
 *  Thread safety: the table of installed overrides is guarded by a mutex;
 *  everything else works on the caller's values.
 */
#ifndef WRK_TUNE_H
#define WRK_TUNE_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include "cmn_error.h"
#include "wrk_device.h"

//  Kernel families: one per kernel file with tuning parameters.
typedef enum {
    WRK_TUNE_SGEMM,             // sgemm.cl
    WRK_TUNE_QMATMUL,           // qmatmul.cl (GEMV and GEMM)
    WRK_TUNE_NORM,              // norm.cl
    WRK_TUNE_SOFTMAX,           // softmax.cl
    WRK_TUNE_ATTENTION,         // attention.cl
    WRK_TUNE_ELEMENTWISE,       // elementwise.cl
    WRK_TUNE_TRANSPOSE,         // transpose.cl
    WRK_TUNE_CONV,              // conv.cl
    WRK_TUNE_FAMILIES           // count
} wrk_tune_family_t;

//  Most parameters one family has.
#define WRK_TUNE_MAX_PARAMS 8

//  Longest options string wrk_tune_options writes, with its NUL.
#define WRK_TUNE_OPTIONS_MAX 192

//  One complete parameter set for a device: a value for every parameter of
//  every family, in the order wrk_tune_param_name gives.
typedef struct {
    int v [WRK_TUNE_FAMILIES][WRK_TUNE_MAX_PARAMS];  // parameter values
    const char *row;            // name of the shipped row it started from
                                // (static string)
    bool overridden;            // a tuned entry replaced some values
    bool clamped;               // the device's limits changed some values
} wrk_tune_t;

//  Family name ("sgemm", "qmatmul", ...), as used in override maps.
const char *wrk_tune_family_name (wrk_tune_family_t family);

//  Family whose name is the LEN bytes at NAME, or -1.
int wrk_tune_family_find (const char *name, size_t len);

//  Number of parameters of FAMILY, and the name of parameter I (the -D
//  macro, "TSM"), or NULL when I is out of range.
int wrk_tune_param_count (wrk_tune_family_t family);
const char *wrk_tune_param_name (wrk_tune_family_t family, int i);

//  Value of parameter NAME of FAMILY in T; asserts that the name exists.
int wrk_tune_get (const wrk_tune_t *t, wrk_tune_family_t family, const char *name);

//  Sets parameter NAME of FAMILY; asserts that the name exists. No check:
//  wrk_tune_validate or wrk_tune_clamp afterwards.
void wrk_tune_put (wrk_tune_t *t, wrk_tune_family_t family, const char *name, int value);

//  Fills T with the default row, unclamped: the values of every kernel
//  file's #ifndef defaults.
void wrk_tune_default (wrk_tune_t *t);

//  Fills T with the first shipped row that matches INFO (the default row
//  when none does) and clamps it to INFO's limits. Never fails.
void wrk_tune_lookup (const wrk_device_info_t *info, wrk_tune_t *t);

//  Replaces values of T with those of ENTRY, a msgpack map {family:
//  {PARAM: int}}; families and parameters it does not name keep their
//  values. Nothing is changed unless the whole entry is valid. Returns 0,
//  or -1 with RXQ_E_PARAM naming the first unknown family, unknown
//  parameter, non-integer or out-of-range value.
int wrk_tune_apply (wrk_tune_t *t, const msgpack_object *entry, cmn_err_t *err);

//  Checks the constraints of every family (ranges, powers of two, tile
//  divisibility). Returns 0, or -1 with RXQ_E_PARAM naming the first
//  violation.
int wrk_tune_validate (const wrk_tune_t *t, cmn_err_t *err);

//  Shrinks work-group sizes and tiles of T until each family fits INFO's
//  max work-group size and local memory, keeping each kernel's
//  constraints (powers of two stay powers of two). Sets t->clamped when a
//  value changed.
void wrk_tune_clamp (wrk_tune_t *t, const wrk_device_info_t *info);

//  Work-items per group and local-memory bytes a FAMILY launch uses with T.
size_t wrk_tune_wg_size (const wrk_tune_t *t, wrk_tune_family_t family);
size_t wrk_tune_local_bytes (const wrk_tune_t *t, wrk_tune_family_t family);

//  Writes FAMILY's build options ("-DTSM=64 -DTSN=64 ...") into BUF of
//  SIZE bytes (WRK_TUNE_OPTIONS_MAX is always enough).
void wrk_tune_options (const wrk_tune_t *t, wrk_tune_family_t family, char *buf,
                       size_t size);

//  Reads "-DNAME=value" options of FAMILY from OPTIONS into T (other
//  words are ignored). Returns 0, or -1 with RXQ_E_PARAM for a name that
//  is not FAMILY's or a value that is not an integer.
int wrk_tune_parse_options (wrk_tune_t *t, wrk_tune_family_t family, const char *options,
                            cmn_err_t *err);

//  Packs FAMILY's parameters as a map {PARAM: int}.
void wrk_tune_pack_family (const wrk_tune_t *t, wrk_tune_family_t family,
                           msgpack_packer *pk);

//  Key under which tuned entries for INFO are stored: "vendor|name|driver",
//  truncated to SIZE - 1 bytes.
void wrk_tune_device_key (const wrk_device_info_t *info, char *buf, size_t size);

//  Installs ENTRY (as for wrk_tune_apply; NULL removes any) as DEV's
//  override: later wrk_tune_for_device calls for the same OpenCL device
//  start from the shipped row with ENTRY applied. The entry is copied.
//  Returns 0, or -1 with RXQ_E_PARAM (invalid entry: the previous override
//  stays) or RXQ_E_LIMIT (more than 16 devices hold overrides).
int wrk_tune_set_override (wrk_device_t *dev, const msgpack_object *entry, cmn_err_t *err);

//  Installs FAMILY's parameters from T (and nothing else) as DEV's
//  override, as wrk_tune_set_override does with {family: {...}}.
int wrk_tune_override_family (wrk_device_t *dev, const wrk_tune_t *t, wrk_tune_family_t family,
                              cmn_err_t *err);

//  The set to use on DEV: its shipped row, its override if any, clamped.
void wrk_tune_for_device (wrk_device_t *dev, wrk_tune_t *t);

//  FAMILY's build options for DEV (wrk_tune_for_device, then
//  wrk_tune_options).
void wrk_tune_device_options (wrk_device_t *dev, wrk_tune_family_t family, char *buf,
                              size_t size);

//  Times SGEMM candidate configurations at M = N = K = N_ on DEV (its
//  current set first, then the built-in candidates that fit the device),
//  each checked against a double-precision reference on sampled rows
//  (WRK_BENCH_SGEMM_TOL), for about BUDGET_MS of wall time (at least the
//  current set is always timed). Writes the fastest correct
//  configuration's build options into OPTIONS (SIZE bytes) and its GFLOPS
//  (median of the timed runs) into *GFLOPS. Returns 0, or -1 with ERR:
//  RXQ_E_INVAL for N_ outside [16, 8192], RXQ_E_CHECK when no candidate
//  was correct, RXQ_E_OPENCL* / RXQ_E_NOMEM / RXQ_E_LIMIT otherwise.
int wrk_tune_search_sgemm (wrk_device_t *dev, int n, int budget_ms, char *options,
                           size_t size, double *gflops, cmn_err_t *err);

//  Times qmatmul GEMV candidates (QMM_WGS, GEMV_ROWS, GEMV_UNIT) for
//  quant TYPE (GGML_TYPE_*) at ROWS x COLS on DEV, each checked against the CPU
//  reference (dequantize, then a double dot product; the bound of
//  docs/kernels.md), for about BUDGET_MS. The device's override is
//  restored afterwards. Writes the best options into OPTIONS and its GB/s
//  (weight + x + y bytes over the median time) into *GBPS. Errors as for
//  wrk_tune_search_sgemm (RXQ_E_INVAL for a bad shape or type).
int wrk_tune_search_qmatmul (wrk_device_t *dev, int type, int rows, int cols,
                             int budget_ms, char *options, size_t size, double *gbps,
                             cmn_err_t *err);

#endif
