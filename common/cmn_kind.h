/*  cmn_kind: the registry of job kinds and their typed parameters.
 *
 *  The broker validates every SUBMIT against this table, so an unknown kind
 *  or an ill-typed parameter is refused before anything is persisted; the
 *  CLI uses the same table to turn `key=value` arguments into typed msgpack
 *  values and to print `rxq submit --help`. Workers advertise which of
 *  these kinds they run.
 */
#ifndef CMN_KIND_H
#define CMN_KIND_H
#include <msgpack.h>
#include <stdbool.h>
#include "cmn_error.h"

typedef enum {
    CMN_PARAM_UINT,     // unsigned integer within [min, max]
    CMN_PARAM_INT,      // signed integer within [min, max]
    CMN_PARAM_FLOAT,    // number within [min, max]
    CMN_PARAM_BOOL,     // true/false (CLI: true, false, 1, 0, yes, no)
    CMN_PARAM_STR,      // UTF-8 string of at most max bytes
    CMN_PARAM_STRS      // array of min .. max strings, each at most
                        // CMN_PARAM_STRS_ITEM_MAX bytes (CLI: one entry)
} cmn_param_type_t;

//  Longest entry of a CMN_PARAM_STRS array, in bytes.
#define CMN_PARAM_STRS_ITEM_MAX 1048576

typedef struct {
    const char *name;       // parameter name
    cmn_param_type_t type;  // value type
    bool required;          // must be present
    double min, max;        // inclusive range; for STR, max is the length;
                            // for STRS, the number of entries
    const char *help;       // one line for --help, with the default
} cmn_param_spec_t;

typedef struct {
    const char *name;               // "bench.device"
    const char *help;               // one line for --help
    bool needs_device;              // runs OpenCL kernels
    const cmn_param_spec_t *params; // terminated by an entry with name NULL
    const char *const *one_of;      // exactly one of these parameters must
                                    // be given (NULL-terminated), or NULL
} cmn_kind_t;

//  The table, terminated by an entry whose name is NULL.
extern const cmn_kind_t cmn_kinds [];

//  Looks a kind up by name (LEN bytes, not NUL-terminated). NULL if unknown.
const cmn_kind_t *cmn_kind_find (const char *name, size_t len);

//  Checks PARAMS (a msgpack map, or NULL for none) against KIND: unknown
//  keys, missing required keys, wrong types and out-of-range values, and
//  none or several of a kind's one_of group, are refused with RXQ_E_PARAM
//  and a message naming the parameter(s).
int cmn_kind_validate (const cmn_kind_t *kind, const msgpack_object *params,
                       cmn_err_t *err);

//  Parses the CLI argument TEXT ("key=value") for KIND and packs the pair
//  (key, typed value) into PK. Returns -1 with RXQ_E_PARAM on bad input;
//  PK may then hold a partial entry, and the caller discards its buffer.
int cmn_kind_pack_arg (const cmn_kind_t *kind, const char *text,
                       msgpack_packer *pk, cmn_err_t *err);

//  Prints the kinds and their parameters, for --help.
void cmn_kind_print_help (FILE *out);

#endif
