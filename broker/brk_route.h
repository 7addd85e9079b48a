/*  brk_route: routing jobs by capability (issue: routing by capability).
 *
 *  A job may require things of the worker that runs it: a device vendor,
 *  a device type, a minimum of global memory, a minimum OpenCL C version,
 *  a worker tag, or one particular worker (by id or name: the benchmark
 *  farm pins a job to each worker this way), or a target: a worker's id or
 *  name, or part of its device's name (rxq optimize --target). A worker advertises what it has in READY (its device map
 *  and tags). The scheduler leases a job only to a worker whose
 *  capabilities satisfy its requirement; a job no live worker can run waits
 *  in `queued` with the reason shown by STATUS.
 */
#ifndef BRK_ROUTE_H
#define BRK_ROUTE_H
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_error.h"

typedef struct {
    char vendor [64];           // case-insensitive substring of the vendor; "" any
    char type [16];             // "gpu", "cpu" or "accelerator"; "" any
    uint64_t min_global_mem;    // bytes of global memory at least; 0 any
    uint32_t opencl_c;          // OpenCL C version at least, major*10+minor; 0 any
    char tag [64];              // tag the worker must carry; "" any
    char worker [128];          // id (hex) or name of the one worker that
                                // may run it; "" any
    char target [128];          // a worker id or name, or a case-insensitive
                                // substring of the device name; "" any
} brk_require_t;

typedef struct {
    char vendor [128];          // device vendor
    char type [16];             // device type
    uint64_t global_mem;        // bytes
    uint32_t opencl_c;          // major*10+minor, 0 unknown
    char device [128];          // device name
    char **tags;                // worker tags (owned)
    size_t ntags;               // number of tags
    char id [24];               // worker id (hex of its routing identity);
                                // set by the broker, not by brk_caps_parse
    char name [128];            // worker name; likewise
} brk_caps_t;

//  Parses a SUBMIT's `require` map into REQ (zeroed first). Returns 0, or
//  -1 with ERR set (RXQ_E_PARAM) naming the bad field.
int brk_require_parse (brk_require_t *req, const msgpack_object *map, cmn_err_t *err);

//  True when REQ asks for nothing.
bool brk_require_empty (const brk_require_t *req);

//  Packs REQ as a map of the fields it sets.
void brk_require_pack (const brk_require_t *req, msgpack_packer *pk);

//  Writes a canonical text of REQ ("" for none) into OUT: equal
//  requirements give equal text, so it can key a queue lane. 512 bytes
//  always hold it; a shorter OUT could make two requirements look equal.
void brk_require_key (const brk_require_t *req, char *out, size_t size);

//  Writes REQ for people ("vendor~AMD, min_global_mem=8 GiB").
void brk_require_describe (const brk_require_t *req, char *out, size_t size);

//  Fills CAPS from a READY's device map and tags array (either may be NULL).
void brk_caps_parse (brk_caps_t *caps, const msgpack_object *device,
                     const msgpack_object *tags);

//  Frees what brk_caps_parse allocated.
void brk_caps_free (brk_caps_t *caps);

//  True when CAPS satisfy REQ.
bool brk_route_match (const brk_require_t *req, const brk_caps_t *caps);

//  What a worker holds in its weight cache (proto 6.10): the models of its
//  `weights` list, each named by its blob hash, and their device bytes.
#define BRK_WEIGHTS_MAX 64          // entries kept per worker
typedef struct {
    char model [BRK_WEIGHTS_MAX][65];   // blob names, most recently used first
    size_t n;                   // entries used
    uint64_t bytes;             // device bytes they take
} brk_weights_t;

//  Fills W from a `weights` array of {model: str, type: str, bytes: uint}
//  (entries that are not maps with a 64-hex `model` are skipped; a model
//  listed at several types counts once, its bytes summed). Returns 0, or
//  -1 with ERR set (RXQ_E_PROTO) when ARRAY is not an array.
int brk_weights_parse (brk_weights_t *w, const msgpack_object *array, cmn_err_t *err);

//  True when W holds MODEL (at any type).
bool brk_weights_holds (const brk_weights_t *w, const char *model);

//  How much a job on MODEL (NULL: a job that names no model) wants a
//  worker with CAPS, WEIGHTS and LEASED jobs in hand: holding the model
//  first, then free device memory (global memory less what its weight
//  cache holds), then idleness. Larger is better; only the order means
//  anything (proto 6.10).
uint64_t brk_route_score (const char *model, const brk_caps_t *caps,
                          const brk_weights_t *weights, size_t leased);

//  Finds the `model` parameter of a job's packed PARAMS (LEN bytes) when
//  it names a blob; writes it into MODEL and returns true.
bool brk_route_job_model (const char *params, size_t len, char model [65]);

//  Parses "OpenCL C 1.2 ..." or "1.2" into 12; 0 when unreadable.
uint32_t brk_route_clc_version (const char *text, size_t len);

#endif
