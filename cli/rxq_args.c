/*  rxq_args: the `rxq` commands' shared command-line handling. */
#include "rxq_args.h"
#include "rxq_cmd.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int
rxq_args_error (int code, const char *fmt, ...)
{
    char line [1024];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (line, sizeof line, fmt, ap);
    va_end (ap);
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf (stderr, "rxq: %s\n", line);
    return code;
}

bool
rxq_args_uint (const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!text || !*text || *text == '-' || *text == '+')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int
rxq_args_common (rxq_args_t *self, int c, char **argv, const char *help)
{
    switch (c) {
        case RXQ_OPT_BROKER:
            self->broker = optarg;
            return -1;
        case RXQ_OPT_JSON:
            self->json = true;
            return -1;
        case RXQ_OPT_TIMEOUT: {
            char *end = NULL;
            double secs = strtod (optarg, &end);
            if (end == optarg || *end || !isfinite (secs) || secs <= 0 || secs > 86400)
                return rxq_args_error (RXQ_EXIT_USAGE,
                                       "--timeout must be a number of seconds above 0, not '%s'",
                                       optarg);
            self->timeout_ms = (int) ceil (secs * 1000.0);
            self->timeout_set = true;
            return -1;
        }
        case RXQ_OPT_HELP:
            fputs (help, stdout);
            return RXQ_EXIT_OK;
        case ':':
            return rxq_args_error (RXQ_EXIT_USAGE, "option '%s' needs a value (see rxq %s --help)",
                                   argv [optind - 1], self->cmd);
        default:
            return rxq_args_error (RXQ_EXIT_USAGE, "unknown option '%s' for %s (see rxq %s --help)",
                                   argv [optind - 1], self->cmd, self->cmd);
    }
}

rxq_client_t *
rxq_args_connect (rxq_args_t *self, int *code)
{
    cmn_err_t err;
    rxq_client_t *client = rxq_client_new (self->broker, &err);
    if (!client)
        *code = rxq_args_error (err.code == RXQ_E_INVAL ? RXQ_EXIT_USAGE : RXQ_EXIT_UNREACHABLE,
                                "%s", err.msg);
    else
    if (self->timeout_set)
        rxq_client_set_stream_timeout (client, self->timeout_ms);
    return client;
}
