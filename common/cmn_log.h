/*  cmn_log: levelled logging to stderr (or a file), one line per record:
 *
 *      2026-11-25T10:51:58.123Z I broker: worker w1 ready (pocl, 2 CUs)
 *
 *  The level is set once at start-up from --log-level or RXQ_LOG_LEVEL
 *  (error, warn, info, debug). Records below the level cost one comparison.
 *  Safe to call from several threads: each record is written with a single
 *  fprintf call on an unbuffered stream.
 */
#ifndef CMN_LOG_H
#define CMN_LOG_H
#include <stdio.h>

typedef enum {
    CMN_LOG_ERROR = 0,
    CMN_LOG_WARN  = 1,
    CMN_LOG_INFO  = 2,
    CMN_LOG_DEBUG = 3
} cmn_log_level_t;

//  Sets the process-wide log level and the tag printed on each line
//  ("broker", "worker", "rxq"). TAG is copied.
void cmn_log_init (const char *tag, cmn_log_level_t level);

//  Parses "error", "warn", "info" or "debug"; returns -1 for anything else.
int cmn_log_level_parse (const char *text);

//  Current level, so callers can skip expensive formatting.
cmn_log_level_t cmn_log_level (void);

void cmn_log (cmn_log_level_t level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

#define cmn_log_error(...) cmn_log (CMN_LOG_ERROR, __VA_ARGS__)
#define cmn_log_warn(...)  cmn_log (CMN_LOG_WARN,  __VA_ARGS__)
#define cmn_log_info(...)  cmn_log (CMN_LOG_INFO,  __VA_ARGS__)
#define cmn_log_debug(...) do { if (cmn_log_level () >= CMN_LOG_DEBUG) \
                                 cmn_log (CMN_LOG_DEBUG, __VA_ARGS__); } while (0)
#endif
