/*  rxq_optimize: the `rxq optimize` command.
 *
 *    rxq optimize MODEL.onnx [--local] [-O0|-O1|-O2] [--enable PASS]...
 *                 [--disable PASS]... [--layout nhwc|nchw] [--target DEVICE]
 *                 [--report-json FILE] -o OUT.onnx
 *
 *  With --local, reads the ONNX model, runs the optimizer (cmn_opt) in
 *  this process and writes the optimized model and the report (text on
 *  stderr, JSON with --json on stdout or with --report-json to a file).
 *  Without it, the `optimize` job runs on a worker through the blob store
 *  (docs/store.md): rxq_cmd uploads MODEL (or takes a blob name as it
 *  is), submits the job on the blob and waits, then downloads the
 *  result's output_blob into OUT.
 */
#ifndef RXQ_OPTIMIZE_H
#define RXQ_OPTIMIZE_H
#include <limits.h>
#include <msgpack.h>
#include <stdbool.h>

typedef struct {
    bool local;                 // --local
    bool json;                  // --json (also the global option)
    bool help;                  // --help was given: nothing else to do
    int level;                  // -O
    char model [PATH_MAX];      // MODEL, absolute; or a blob name as given
    char output [PATH_MAX];     // -o, absolute
    char enable [1024];         // comma-separated --enable passes
    char disable [1024];        // comma-separated --disable passes
    const char *report_json;    // --report-json FILE or NULL
    char layout [8];            // --layout: "nhwc", "nchw", or "" (the job decides)
    char target [128];          // --target: worker name or device name part, or ""
} rxq_optimize_args_t;

//  Parses `rxq optimize ...` (ARGV [0] is "optimize") into ARGS; JSON is
//  the global --json. Returns -1 when ARGS are ready (or help was printed:
//  ARGS->help), else the exit code of a usage error (message printed).
int rxq_optimize_parse (bool json, int argc, char **argv, rxq_optimize_args_t *args);

//  Runs the optimizer in this process. Returns the exit code (rxq_cmd.h):
//  0 written; 5 the model could not be read or written, or it is
//  malformed or unsupported (one line on stderr naming the field or node).
int rxq_optimize_local (const rxq_optimize_args_t *args);

//  Packs the `optimize` job's params map for ARGS on the model blob
//  MODEL (64 hex digits) into PK.
void rxq_optimize_pack_params (const rxq_optimize_args_t *args, const char *model,
                               msgpack_packer *pk);

#endif
