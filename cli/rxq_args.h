/*  rxq_args: what every `rxq` command shares on its command line: the
 *  global options (--broker, --json, --timeout, --help), their getopt
 *  table, one-line errors, number parsing and connecting to the broker.
 *  rxq_cmd, rxq_bench and rxq_generate parse their own options with it.
 */
#ifndef RXQ_ARGS_H
#define RXQ_ARGS_H
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include "rxq_client.h"

//  Options every command accepts.
typedef struct {
    const char *broker;     // endpoint: --broker, else $RXQ_BROKER, else the default
    bool json;              // --json: print the FINAL body's object as JSON
    int timeout_ms;         // --timeout: silence before the broker is unreachable
    bool timeout_set;       // --timeout was given (streams then time out too)
    const char *cmd;        // the command's name, for messages
} rxq_args_t;

//  The global options' getopt entries: long names only, so they cannot
//  clash with a command's own letters. Use as
//  { RXQ_ARGS_COMMON, ..., { NULL, 0, NULL, 0 } }.
enum { RXQ_OPT_BROKER = 1000, RXQ_OPT_JSON, RXQ_OPT_TIMEOUT, RXQ_OPT_HELP };
#define RXQ_ARGS_COMMON \
    { "broker", required_argument, NULL, RXQ_OPT_BROKER }, \
    { "json", no_argument, NULL, RXQ_OPT_JSON }, \
    { "timeout", required_argument, NULL, RXQ_OPT_TIMEOUT }, \
    { "help", no_argument, NULL, RXQ_OPT_HELP }

//  Prints one line "rxq: <message>" on stderr, newlines folded, and
//  returns CODE.
int rxq_args_error (int code, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

//  Parses TEXT as a decimal integer in MIN..MAX (no sign, nothing after).
bool rxq_args_uint (const char *text, uint64_t min, uint64_t max, uint64_t *out);

//  Handles getopt's answer C when it is a global option or an error.
//  Returns -1 when the option was consumed, else the exit code to return
//  (0 after --help, which prints HELP; 64 for a bad or unknown option).
int rxq_args_common (rxq_args_t *self, int c, char **argv, const char *help);

//  Connects to the broker of SELF, applying --timeout to streams. NULL
//  with *CODE set (and the error printed) when the endpoint is invalid.
rxq_client_t *rxq_args_connect (rxq_args_t *self, int *code);

#endif
