/*  cmn_error: the project's one table of error codes and messages.
 *
 *  Codes follow SQLite's scheme: a primary code in the low 8 bits, and
 *  extended codes built on it (RXQ_E_FORMAT_MAGIC = RXQ_E_FORMAT | 1<<8), so
 *  callers can test the class with cmn_error_primary (). Code 0 is success.
 *  The table below generates the enum, the names and the default messages,
 *  so they cannot drift apart. The numbers are part of the wire protocol
 *  (ERROR replies carry them): never renumber, only append.
 *
 *  OpenCL failures travel as RXQ_E_OPENCL with the cl_int in the message
 *  (cmn_cl_strerror names it); Redis failures as RXQ_E_REDIS with hiredis'
 *  errstr or the server's reply text.
 */
#ifndef CMN_ERROR_H
#define CMN_ERROR_H

#define CMN_ERROR_TABLE(X) \
    X (OK,            0,          "success") \
    X (INTERNAL,      1,          "internal error") \
    X (NOMEM,         2,          "out of memory") \
    X (INVAL,         3,          "invalid argument") \
    X (PROTO,         4,          "malformed or unexpected message") \
    X (VERSION,       5,          "unsupported protocol version") \
    X (LIMIT,         6,          "a size or count limit was exceeded") \
    X (NOTFOUND,      7,          "no such object") \
    X (STATE,         8,          "not allowed in the object's current state") \
    X (KIND,          9,          "unknown job kind") \
    X (PARAM,         10,         "missing or ill-typed job parameter") \
    X (REDIS,         11,         "Redis error") \
    X (UNREACHABLE,   12,         "peer could not be reached") \
    X (ADDRINUSE,     13,         "address already in use") \
    X (TIMEOUT,       14,         "timed out") \
    X (CANCELLED,     15,         "cancelled") \
    X (OPENCL,        16,         "OpenCL error") \
    X (NODEVICE,      17,         "no usable OpenCL device") \
    X (IO,            18,         "I/O error") \
    X (FORMAT,        19,         "malformed file") \
    X (CHECK,         20,         "result failed verification") \
    X (STALE,         21,         "stale lease") \
    X (UNAVAILABLE,   22,         "service temporarily unavailable") \
    X (UNSUPPORTED,   23,         "not supported") \
    X (REDIS_CONNECT, 11 | 1<<8,  "cannot connect to Redis") \
    X (REDIS_REPLY,   11 | 2<<8,  "unexpected reply from Redis") \
    X (FORMAT_MAGIC,  19 | 1<<8,  "invalid magic number") \
    X (FORMAT_TRUNC,  19 | 2<<8,  "file is truncated") \
    X (FORMAT_BOUNDS, 19 | 3<<8,  "offset or size out of bounds") \
    X (FORMAT_TYPE,   19 | 4<<8,  "unknown or unsupported type") \
    X (FORMAT_VERSION,19 | 5<<8,  "unsupported format version") \
    X (OPENCL_BUILD,  16 | 1<<8,  "OpenCL program failed to build") \
    X (IO_HASH,       18 | 1<<8,  "content hash mismatch") \
    X (FORMAT_ALIGN,  19 | 6<<8,  "invalid alignment or misaligned data") \
    X (FORMAT_DUP,    19 | 7<<8,  "duplicate name") \
    X (FORMAT_SHAPE,  19 | 8<<8,  "invalid tensor shape") \
    X (FORMAT_SYNTAX, 19 | 9<<8,  "malformed header syntax")

typedef enum {
#define CMN_ERROR_ENUM(name, value, msg) RXQ_E_##name = (value),
    CMN_ERROR_TABLE (CMN_ERROR_ENUM)
#undef CMN_ERROR_ENUM
} cmn_error_t;

//  Returns the symbolic name of CODE ("RXQ_E_PARAM"), or "RXQ_E_UNKNOWN".
const char *cmn_error_name (int code);

//  Returns the default message for CODE, or "unknown error".
const char *cmn_error_message (int code);

//  Returns the primary code of an extended code (its low 8 bits).
static inline int cmn_error_primary (int code) { return code & 0xff; }

//  Returns true when CODE names an entry of the table (a peer may send
//  any integer: use this before trusting it).
int cmn_error_known (int code);

//  Returns "CL_OUT_OF_RESOURCES" and so on for an OpenCL status code, or
//  "CL_UNKNOWN_ERROR" for values the headers do not define.
const char *cmn_cl_strerror (int cl_status);

//  An error value carried by long-lived objects and returned to callers,
//  in hiredis' manner: a code and a message that says what was wrong.
typedef struct {
    int code;           // cmn_error_t, 0 when there is no error
    char msg [256];     // human-readable detail, NUL-terminated
} cmn_err_t;

//  Sets ERR (when not NULL) to CODE and a printf-style message; returns -1
//  so callers can write `return cmn_err_set (err, ...)`.
int cmn_err_set (cmn_err_t *err, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Clears ERR to success.
void cmn_err_clear (cmn_err_t *err);

#endif
