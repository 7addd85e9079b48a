/*  wrk_farm: the farm's benchmark and tuning job runners (bench.gemm,
 *  bench.gemv, bench.kernels, tune), and the benchmark record they share
 *  with the other bench runners (wrk_bench_llm).
 *
 *  Every bench.* result is one complete, self-describing record: a
 *  msgpack map of
 *    record_version: 1
 *    kind:           str    the job kind
 *    device:         map    wrk_device_pack_info (name, driver, OpenCL
 *                           version, limits)
 *    rxq_version:    str    RXQ_VERSION of the worker
 *    kernel_hash:    str    16 hex digits, FNV-1a 64 over every kernel
 *                           source the worker loads (wrk_farm_kernel_hash)
 *    params:         map    every parameter, defaults filled in
 *    seed:           uint   seed of the random inputs
 *    tuning:         map    {row: str, options: str} the build options used
 *    figures:        map    gflops, gbps, peak_fraction and per-kind extras
 *    kernels:        [ {name: str, ns: uint median, runs: uint} ]
 *    measured_peak:  map    {copy_gbps, fma_gflops}: the device's copy
 *                           bandwidth (kernels/copy.cl) and FMA
 *                           throughput (sgemm.cl's sgemm_peak), measured
 *                           in the same job
 *  peak_fraction is GB/s over copy_gbps for memory-bound work (GEMV,
 *  bench.kernels) and GFLOPS over fma_gflops for SGEMM: both ceilings are
 *  measured on the device rather than derived from clock x lanes x units,
 *  which vendors report inconsistently (docs/tuning.md).
 *
 *  Runners follow wrk_job.h: progress between steps, wrk_job_should_stop
 *  before every enqueue (RXQ_E_CANCELLED / RXQ_E_TIMEOUT), nothing packed
 *  on failure.
 */
#ifndef WRK_FARM_H
#define WRK_FARM_H
#include "wrk_job.h"
#include "wrk_tune.h"

#define WRK_FARM_MAX_KERNELS 32     // entries of a record's kernels list
#define WRK_FARM_MAX_PARAMS 8       // entries of a record's params map
#define WRK_FARM_MAX_EXTRA 12       // per-kind figures besides the three

//  What a runner measured, packed at the end (wrk_farm_pack_record) so
//  that a failure never leaves half a record in job->result. Runners of
//  other files (wrk_bench_llm) fill one the same way: zero it, set kind,
//  seed, row and options, add params, figures and kernels with the
//  helpers below.
typedef struct {
    const char *kind;           // job kind
    struct {
        const char *key;        // parameter name
        uint64_t value;         // unsigned value, when text is NULL
        const char *text;       // string value, or NULL (borrowed)
    } params [WRK_FARM_MAX_PARAMS];
    int nparams;
    uint64_t seed;              // seed of the inputs
    const char *row;            // tuning row name
    char options [2 * WRK_TUNE_OPTIONS_MAX];  // build options used
    double gflops, gbps, peak_fraction;  // headline figures
    struct {
        const char *key;        // extra figure name (static)
        double value;           // its value
    } extra [WRK_FARM_MAX_EXTRA];
    int nextra;
    struct {
        char name [32];         // kernel function name
        uint64_t ns;            // median timed run, ns
        uint64_t runs;          // timed runs
    } kernels [WRK_FARM_MAX_KERNELS];
    int nkernels;
    double copy_gbps;           // measured copy bandwidth, GB/s
    double fma_gflops;          // measured FMA throughput, GFLOPS
} wrk_farm_record_t;

//  Starts R (zeroed by the caller) as a KIND record with SEED, and the
//  device's tuning row; with FAMILY below WRK_TUNE_FAMILIES also that
//  family's build options (bench.gemm and bench.device set the SGEMM
//  options they built with themselves).
void wrk_farm_record_start (wrk_farm_record_t *r, wrk_device_t *dev, const char *kind,
                            uint64_t seed, wrk_tune_family_t family);

//  Adds a parameter: an unsigned VALUE, or TEXT when not NULL (borrowed
//  until the record is packed). Asserts on more than WRK_FARM_MAX_PARAMS.
void wrk_farm_record_param (wrk_farm_record_t *r, const char *key, uint64_t value,
                            const char *text);

//  Adds a per-kind figure. Asserts on more than WRK_FARM_MAX_EXTRA.
void wrk_farm_record_extra (wrk_farm_record_t *r, const char *key, double value);

//  Adds a kernel entry with the median of NS [COUNT] (which it sorts);
//  returns that median (at least 1).
uint64_t wrk_farm_record_kernel (wrk_farm_record_t *r, const char *name, uint64_t *ns,
                                 size_t count);

//  Measures the device's copy bandwidth (kernels/copy.cl) and FMA
//  throughput (sgemm_peak) into R's measured peak, adding their kernel
//  entries. Returns 0, or -1 with job->err set (also on a stop).
int wrk_farm_measure_peak (wrk_job_t *job, wrk_farm_record_t *r);

//  The FMA half of wrk_farm_measure_peak alone, for runners that measure
//  the copy bandwidth themselves (bench.device).
int wrk_farm_measure_fma (wrk_job_t *job, wrk_farm_record_t *r);

//  Reads the unsigned parameter KEY of the job into *VALUE: DEF when
//  absent; -1 with RXQ_E_PARAM when it is not an unsigned integer or lies
//  outside [LO, HI] (the message names it).
int wrk_farm_get_uint (wrk_job_t *job, const char *key, uint64_t lo, uint64_t hi,
                       uint64_t def, uint64_t *value);

//  Packs R into job->result as the complete record above (11 fields).
void wrk_farm_pack_record (wrk_job_t *job, const wrk_farm_record_t *r);

//  The same as a map of 11 + MORE fields, whose MORE key/value pairs the
//  caller packs next (bench.device keeps its older copy and sgemm maps).
void wrk_farm_pack_record_open (wrk_job_t *job, const wrk_farm_record_t *r, size_t more);

//  bench.gemm: kernels/sgemm.cl at M = N = K = n with the device's tuning.
//  Params: n (16..8192, default 256), reps (1..1000, default 5), seed
//  (default 1). Fails with RXQ_E_PARAM, RXQ_E_CHECK (result over
//  WRK_BENCH_SGEMM_TOL), RXQ_E_OPENCL*, or the stop reason.
int wrk_farm_bench_gemm (wrk_job_t *job);

//  bench.gemv: quantized GEMV (qmatmul.cl). Params: type (q4_0, q4_1,
//  q8_0, q4_k, q6_k; default q4_0), rows (1..65536, default 1024), cols
//  (multiple of the block, up to 65536, default 1024), reps (1..1000,
//  default 10), seed (default 1). Checked against the CPU reference.
int wrk_farm_bench_gemv (wrk_job_t *job);

//  bench.kernels: every launcher of wrk_kernels once to warm up and reps
//  times, at model-like shapes scaled by `scale` (1..32, default 1: hidden
//  size 256 x scale, 8 tokens, head size 64). Params: scale, reps (1..100,
//  default 3), seed.
int wrk_farm_bench_kernels (wrk_job_t *job);

//  tune: wrk_tune_search_sgemm and wrk_tune_search_qmatmul on the job's
//  device. Params: n (SGEMM size, 64..4096, default 256), type, rows, cols
//  (GEMV shape, defaults q4_0, 1024, 1024), budget_ms (100..600000, default
//  4000, split between the two searches). Result: {record_version,
//  kind, device, rxq_version, kernel_hash, device_key, row, entry:
//  {sgemm: {PARAM: int}, qmatmul: {PARAM: int}}, gflops, gbps}; the
//  entry is what wrk_tune_set_override takes.
int wrk_farm_tune (wrk_job_t *job);

//  FNV-1a 64 over the name and text of every kernel source (as
//  rxq_kernels_load returns them, so RXQ_KERNEL_DIR counts), computed once
//  per process, as 16 lowercase hex digits.
const char *wrk_farm_kernel_hash (void);

#endif
