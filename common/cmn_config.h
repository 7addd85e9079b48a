/*  cmn_config: configuration from flags and environment.
 *
 *  Every program takes its settings from command-line flags first, then
 *  from RXQ_* environment variables, then from built-in defaults; these
 *  helpers keep that order and the number checks in one place.
 */
#ifndef CMN_CONFIG_H
#define CMN_CONFIG_H
#include "cmn_error.h"

//  Returns FLAG when not NULL, else the environment variable ENV when set
//  and non-empty, else DEF.
const char *cmn_config_str (const char *flag, const char *env, const char *def);

//  Parses TEXT as a base-10 integer in [MIN, MAX] into *OUT. Returns 0, or
//  -1 with ERR set (RXQ_E_INVAL) naming WHAT ("--heartbeat-ms").
int cmn_config_long (const char *text, long min, long max, long *out,
                     const char *what, cmn_err_t *err);

#endif
