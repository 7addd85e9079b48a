/*  rxq_cmd: see rxq_cmd.h. Each command parses its own options (the
 *  global ones are accepted before or after the command name), talks to
 *  the broker through rxq_client, and prints through rxq_print.
 */
#include "rxq_cmd.h"
#include "rxq_args.h"
#include "rxq_bench.h"
#include "rxq_blob.h"
#include "rxq_generate.h"
#include "rxq_optimize.h"
#include "rxq_client.h"
#include "rxq_cluster.h"
#include "rxq_print.h"
#include "cmn_blob.h"
#include "cmn_codec.h"
#include "cmn_xfer.h"
#include "cmn_kind.h"
#include "cmn_log.h"
#include "cmn_proto.h"
#include <czmq.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_BROKER "tcp://127.0.0.1:5555"

typedef rxq_args_t s_opts_t;

typedef int (s_cmd_fn) (s_opts_t *o, int argc, char **argv);

//  Reports a failed request and returns its exit code.
static int
s_request_failed (rxq_client_t *client, const cmn_err_t *err)
{
    if (rxq_client_error_from_broker (client))
        return rxq_args_error (RXQ_EXIT_BROKER, "%s", err->msg);
    return rxq_args_error (RXQ_EXIT_UNREACHABLE, "%s", err->msg);
}

//  Sends COMMAND with BODY (a packed map) and returns the exit code; on
//  success FINAL holds the reply (the caller frees it).
static int
s_call (s_opts_t *o, int command, msgpack_sbuffer *body, rxq_client_partial_fn *on_partial,
        void *arg, cmn_body_t *final)
{
    int code = 0;
    rxq_client_t *client = rxq_args_connect (o, &code);
    if (!client)
        return code;
    cmn_err_t err;
    if (rxq_client_request (client, command, body ? body->data : NULL, body ? body->size : 0,
                            on_partial, arg, o->timeout_ms, final, &err) != 0)
        code = s_request_failed (client, &err);
    rxq_client_destroy (&client);
    return code;
}

//  Prints MAP as JSON without its `req` field (the body of a FINAL that
//  has no named object).
static void
s_print_json_body (const msgpack_object *map)
{
    msgpack_object copy = *map;
    msgpack_object_kv kvs [32];
    uint32_t n = 0;
    for (uint32_t i = 0; i < map->via.map.size && n < 32; i++)
        if (!cmn_codec_str_eq (&map->via.map.ptr [i].key, "req"))
            kvs [n++] = map->via.map.ptr [i];
    copy.via.map.ptr = kvs;
    copy.via.map.size = n;
    cmn_codec_print_json (stdout, &copy);
    fputc ('\n', stdout);
}

//  Prints the FINAL body's object KEY as JSON; returns 0, or 2 when the
//  broker's reply lacks it.
static int
s_print_json_field (const cmn_body_t *final, const char *key)
{
    const msgpack_object *obj = cmn_codec_find (&final->root, key);
    if (!obj)
        return rxq_args_error (RXQ_EXIT_BROKER, "the broker's reply has no '%s' field", key);
    cmn_codec_print_json (stdout, obj);
    fputc ('\n', stdout);
    return RXQ_EXIT_OK;
}

//  Exit code for a finished job's state.
static int
s_state_exit (const msgpack_object *job)
{
    char state [32] = "";
    cmn_codec_get_cstr (job, "state", state, sizeof state, NULL);
    return strcmp (state, "succeeded") == 0 ? RXQ_EXIT_OK : RXQ_EXIT_JOB;
}

//  For a job that did not succeed: one line on stderr saying how it ended.
static void
s_report_unsuccessful (const msgpack_object *job)
{
    char id [80] = "?", state [32] = "?", msg [300] = "";
    cmn_codec_get_cstr (job, "id", id, sizeof id, NULL);
    cmn_codec_get_cstr (job, "state", state, sizeof state, NULL);
    const msgpack_object *error = NULL;
    if (cmn_codec_get_map (job, "error", &error, NULL) == 0)
        cmn_codec_get_cstr (error, "message", msg, sizeof msg, NULL);
    if (strcmp (state, "succeeded") == 0)
        return;
    if (msg [0])
        rxq_args_error (RXQ_EXIT_JOB, "job %s %s: %s", id, state, msg);
    else
        rxq_args_error (RXQ_EXIT_JOB, "job %s %s", id, state);
}

//  Ends a stream (submit --wait, watch, result): prints the job, returns
//  the exit code for its state.
static int
s_finish_job (s_opts_t *o, const cmn_body_t *final, bool print_result)
{
    const msgpack_object *job = NULL;
    if (cmn_codec_get_map (&final->root, "job", &job, NULL) != 0)
        return rxq_args_error (RXQ_EXIT_BROKER, "the broker's reply has no 'job' record");
    if (o->json) {
        cmn_codec_print_json (stdout, job);
        fputc ('\n', stdout);
    }
    else
    if (print_result)
        rxq_print_result (stdout, job);
    s_report_unsuccessful (job);
    return s_state_exit (job);
}

//  Where a stream's events are printed.
typedef struct {
    FILE *out;              // stdout, or stderr when stdout carries the result
    bool accepted;          // an "accepted" event was printed already
} s_events_t;

//  PARTIAL callback: prints the event. SUBMIT with wait announces
//  "accepted" and then replays the stored events, which hold it again:
//  it is printed once.
static void
s_on_event (void *arg, const msgpack_object *body)
{
    s_events_t *events = arg;
    const msgpack_object *event = NULL;
    if (cmn_codec_get_map (body, "event", &event, NULL) == 0
    &&  cmn_codec_str_eq (cmn_codec_find (event, "type"), "accepted")) {
        if (events->accepted)
            return;
        events->accepted = true;
    }
    rxq_print_event (events->out, body);
}

//  Reads the positional job id of status/watch/result/cancel/retry.
static int
s_parse_id_command (s_opts_t *o, int argc, char **argv, const char *help, const char **id)
{
    static const struct option options [] = { RXQ_ARGS_COMMON, { NULL, 0, NULL, 0 } };
    int c;
    while ((c = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        int code = rxq_args_common (o, c, argv, help);
        if (code >= 0)
            return code;
    }
    if (optind != argc - 1)
        return rxq_args_error (RXQ_EXIT_USAGE, "%s needs exactly one job id (see rxq %s --help)",
                        o->cmd, o->cmd);
    *id = argv [optind];
    if (strlen (*id) == 0 || strlen (*id) > RXQ_MAX_ID_LEN)
        return rxq_args_error (RXQ_EXIT_USAGE, "a job id is 1 to %d bytes, not '%.80s'", RXQ_MAX_ID_LEN, *id);
    return -1;
}

//  Packs {id: ID}.
static void
s_pack_id (msgpack_sbuffer *sbuf, const char *id)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_str (&pk, "id", id);
}

//  ---------------------------------------------------------------------
//  rxq up / rxq down

static const char *s_up_help =
"usage: rxq up [--workers N] [--redis URL] [--redis-port P] [--port P]\n"
"              [--run-dir DIR] [--device SEL | --no-device] [--ready-timeout SEC]\n"
"\n"
"Starts a local cluster: redis-server on 127.0.0.1:P (AOF on, data in\n"
"DIR/redis), rxq-broker on tcp://127.0.0.1:PORT and N rxq-worker processes,\n"
"each in its own session, logging to DIR/<name>.log with its pid in\n"
"DIR/<name>.pid. Waits until Redis answers PING and the broker lists every\n"
"worker; on failure names the component, prints the tail of its log and\n"
"stops what it started.\n"
"\n"
"  --workers N        workers to start (default 2)\n"
"  --redis URL        use this Redis (redis://HOST:PORT[/DB]) instead of starting one\n"
"  --redis-port P     port of the Redis started (default 6390)\n"
"  --port P           broker port on 127.0.0.1 (default 5555)\n"
"  --run-dir DIR      pid files, logs, Redis data (default $RXQ_RUN_DIR, else ./.rxq)\n"
"  --device SEL       worker device selector (\"P:D\" or a name substring)\n"
"  --no-device        workers run without OpenCL (device-free kinds only)\n"
"  --ready-timeout S  seconds to wait for the cluster (default 30)\n"
"\n"
"Exit: 0 ready; 4 already running, port in use, or a component failed; 64 usage.\n";

static int
s_cmd_up (s_opts_t *o, int argc, char **argv)
{
    enum { O_WORKERS = 1, O_REDIS, O_REDIS_PORT, O_PORT, O_RUN_DIR, O_DEVICE, O_NO_DEVICE, O_READY };
    static const struct option options [] = {
        { "workers", required_argument, NULL, O_WORKERS },
        { "redis", required_argument, NULL, O_REDIS },
        { "redis-port", required_argument, NULL, O_REDIS_PORT },
        { "port", required_argument, NULL, O_PORT },
        { "run-dir", required_argument, NULL, O_RUN_DIR },
        { "device", required_argument, NULL, O_DEVICE },
        { "no-device", no_argument, NULL, O_NO_DEVICE },
        { "ready-timeout", required_argument, NULL, O_READY },
        RXQ_ARGS_COMMON, { NULL, 0, NULL, 0 }
    };
    rxq_cluster_opts_t co;
    rxq_cluster_opts_default (&co);
    int c;
    uint64_t v;
    while ((c = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        switch (c) {
            case O_WORKERS:
                if (!rxq_args_uint (optarg, 0, 64, &v))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--workers must be 0 to 64, not '%s'", optarg);
                co.workers = (int) v;
                break;
            case O_REDIS:
                co.redis_url = optarg;
                break;
            case O_REDIS_PORT:
            case O_PORT:
                if (!rxq_args_uint (optarg, 1, 65535, &v))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--%s must be a port 1 to 65535, not '%s'",
                                    c == O_PORT ? "port" : "redis-port", optarg);
                *(c == O_PORT ? &co.port : &co.redis_port) = (int) v;
                break;
            case O_RUN_DIR:
                co.run_dir = optarg;
                break;
            case O_DEVICE:
                co.device = optarg;
                break;
            case O_NO_DEVICE:
                co.no_device = true;
                break;
            case O_READY:
                if (!rxq_args_uint (optarg, 1, 3600, &v))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--ready-timeout must be 1 to 3600 seconds, not '%s'",
                                    optarg);
                co.ready_ms = (int) v * 1000;
                break;
            default: {
                int code = rxq_args_common (o, c, argv, s_up_help);
                if (code >= 0)
                    return code;
            }
        }
    }
    if (optind != argc)
        return rxq_args_error (RXQ_EXIT_USAGE, "unexpected argument '%s' (see rxq up --help)", argv [optind]);
    if (co.device && co.no_device)
        return rxq_args_error (RXQ_EXIT_USAGE, "--device and --no-device exclude each other");
    if (!co.redis_url && co.redis_port == co.port)
        return rxq_args_error (RXQ_EXIT_USAGE, "--port and --redis-port must differ (both %d)", co.port);
    cmn_err_t err;
    if (co.redis_url) {
        char host [256];
        int port, db;
        if (rxq_cluster_parse_redis_url (co.redis_url, host, sizeof host, &port, &db, &err))
            return rxq_args_error (RXQ_EXIT_USAGE, "%s", err.msg);
    }
    char failed [32];
    if (rxq_cluster_up (&co, stdout, failed, sizeof failed, &err) != 0) {
        fflush (stdout);
        if (err.code == RXQ_E_ADDRINUSE)
            return rxq_args_error (RXQ_EXIT_CLUSTER, "%s; choose another with --%s", err.msg,
                            strstr (err.msg, "(redis)") ? "redis-port" : "port");
        if (!failed [0])
            return rxq_args_error (RXQ_EXIT_CLUSTER, "%s", err.msg);
        rxq_args_error (RXQ_EXIT_CLUSTER, "%s; its log follows", err.msg);
        rxq_cluster_print_log_tail (co.run_dir, failed);
        return RXQ_EXIT_CLUSTER;
    }
    return RXQ_EXIT_OK;
}

static const char *s_down_help =
"usage: rxq down [--run-dir DIR]\n"
"\n"
"Stops the local cluster started by rxq up from DIR (default $RXQ_RUN_DIR,\n"
"else ./.rxq): SIGTERM to the workers, then the broker, then Redis, each\n"
"given 10 s before SIGKILL; removes the pid files. Succeeds, saying so, when\n"
"nothing is running.\n"
"\n"
"Exit: 0 stopped or nothing running; 4 a process could not be stopped; 64 usage.\n";

static int
s_cmd_down (s_opts_t *o, int argc, char **argv)
{
    static const struct option options [] = {
        { "run-dir", required_argument, NULL, 1 },
        RXQ_ARGS_COMMON, { NULL, 0, NULL, 0 }
    };
    rxq_cluster_opts_t co;
    rxq_cluster_opts_default (&co);
    int c;
    while ((c = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        if (c == 1)
            co.run_dir = optarg;
        else {
            int code = rxq_args_common (o, c, argv, s_down_help);
            if (code >= 0)
                return code;
        }
    }
    if (optind != argc)
        return rxq_args_error (RXQ_EXIT_USAGE, "unexpected argument '%s' (see rxq down --help)", argv [optind]);
    cmn_err_t err;
    if (rxq_cluster_down (co.run_dir, stdout, &err) != 0)
        return rxq_args_error (RXQ_EXIT_CLUSTER, "%s", err.msg);
    return RXQ_EXIT_OK;
}

//  ---------------------------------------------------------------------
//  rxq submit

//  Requirements given with --require, packed as proto 5.1.2's map.
typedef struct {
    const char *vendor, *type, *opencl_c, *tag, *target;
    uint64_t min_global_mem;
    bool have_mem;
} s_require_t;

static size_t
s_require_count (const s_require_t *r)
{
    return (r->vendor != NULL) + (r->type != NULL) + (r->opencl_c != NULL)
         + (r->tag != NULL) + (r->target != NULL) + r->have_mem;
}

//  Parses one KEY=VALUE of --require into R; returns a usage exit code
//  after printing the error, or -1 when it was fine.
static int
s_require_parse (s_require_t *r, char *arg)
{
    char *eq = strchr (arg, '=');
    if (!eq || eq == arg || !eq [1])
        return rxq_args_error (RXQ_EXIT_USAGE, "--require wants KEY=VALUE, not '%s'", arg);
    *eq = 0;
    const char *key = arg, *value = eq + 1;
    if (strlen (value) > 255)
        return rxq_args_error (RXQ_EXIT_USAGE, "--require %s: value longer than 255 bytes", key);
    if (!strcmp (key, "vendor"))
        r->vendor = value;
    else
    if (!strcmp (key, "tag"))
        r->tag = value;
    else
    if (!strcmp (key, "target"))
        r->target = value;
    else
    if (!strcmp (key, "type")) {
        if (strcmp (value, "gpu") && strcmp (value, "cpu") && strcmp (value, "accelerator"))
            return rxq_args_error (RXQ_EXIT_USAGE,
                            "--require type must be gpu, cpu or accelerator, not '%s'", value);
        r->type = value;
    }
    else
    if (!strcmp (key, "opencl_c")) {
        unsigned major, minor;
        char extra;
        if (sscanf (value, "%u.%u%c", &major, &minor, &extra) != 2 || major > 9 || minor > 9)
            return rxq_args_error (RXQ_EXIT_USAGE,
                            "--require opencl_c must be a version such as 1.2, not '%s'", value);
        r->opencl_c = value;
    }
    else
    if (!strcmp (key, "min_global_mem")) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull (value, &end, 10);
        unsigned shift = 0;
        if (*end == 'K' || *end == 'k') shift = 10, end++;
        else if (*end == 'M' || *end == 'm') shift = 20, end++;
        else if (*end == 'G' || *end == 'g') shift = 30, end++;
        if (errno || end == value || *end || value [0] == '-' || n > (UINT64_MAX >> shift))
            return rxq_args_error (RXQ_EXIT_USAGE,
                            "--require min_global_mem must be bytes (with K, M or G), not '%s'",
                            value);
        r->min_global_mem = (uint64_t) n << shift;
        r->have_mem = true;
    }
    else
        return rxq_args_error (RXQ_EXIT_USAGE, "--require: unknown requirement '%s' (known: vendor, "
                        "type, min_global_mem, opencl_c, tag, target)", key);
    return -1;
}

static void
s_require_pack (const s_require_t *r, msgpack_packer *pk)
{
    msgpack_pack_map (pk, s_require_count (r));
    if (r->vendor)   cmn_pack_kv_str (pk, "vendor", r->vendor);
    if (r->type)     cmn_pack_kv_str (pk, "type", r->type);
    if (r->have_mem) cmn_pack_kv_uint (pk, "min_global_mem", r->min_global_mem);
    if (r->opencl_c) cmn_pack_kv_str (pk, "opencl_c", r->opencl_c);
    if (r->tag)      cmn_pack_kv_str (pk, "tag", r->tag);
    if (r->target)   cmn_pack_kv_str (pk, "target", r->target);
}

static void
s_submit_help (FILE *out)
{
    fputs ("usage: rxq submit KIND [key=value...] [--priority low|normal|high|0|1|2]\n"
           "                  [--max-attempts N] [--timeout-ms N] [--queue-timeout-ms N]\n"
           "                  [--require KEY=VALUE...] [--key K] [--wait]\n"
           "\n"
           "Validates KIND and its parameters locally, submits the job and prints its\n"
           "id. With --wait, streams the job's events to stderr and prints its result\n"
           "(with --json: the job record) once it ends.\n"
           "\n"
           "  --priority P       low (0), normal (1, default) or high (2)\n"
           "  --max-attempts N   failed attempts before the job is dead (1 to 100, default 3)\n"
           "  --timeout-ms N     deadline of one attempt in ms (0: none, the default)\n"
           "  --queue-timeout-ms N  fail the job if it has not started N ms after\n"
           "                     submission (0: none, the default)\n"
           "  --require KEY=VALUE  run only on a worker that offers it; repeatable:\n"
           "                     vendor=TEXT (substring, any case), type=gpu|cpu|accelerator,\n"
           "                     min_global_mem=BYTES (K, M, G suffixes: 1024s),\n"
           "                     opencl_c=X.Y (at least), tag=TAG, target=WORKER or\n"
           "                     part of a device name (any case)\n"
           "  --key K            idempotency key: resubmitting with K returns the same job\n"
           "  --wait             wait for the job to end; exit 0 only if it succeeded\n"
           "\n", out);
    cmn_kind_print_help (out);
    fputs ("\nExit: 0 submitted (with --wait: succeeded); 1 the job failed, was cancelled or\n"
           "is dead; 2 the broker refused it; 3 broker unreachable; 64 usage.\n", out);
}

static int
s_cmd_submit (s_opts_t *o, int argc, char **argv)
{
    enum { O_PRIORITY = 1, O_MAX_ATTEMPTS, O_TIMEOUT_MS, O_KEY, O_WAIT, O_QUEUE_TIMEOUT,
           O_REQUIRE };
    static const struct option options [] = {
        { "priority", required_argument, NULL, O_PRIORITY },
        { "max-attempts", required_argument, NULL, O_MAX_ATTEMPTS },
        { "timeout-ms", required_argument, NULL, O_TIMEOUT_MS },
        { "key", required_argument, NULL, O_KEY },
        { "wait", no_argument, NULL, O_WAIT },
        { "queue-timeout-ms", required_argument, NULL, O_QUEUE_TIMEOUT },
        { "require", required_argument, NULL, O_REQUIRE },
        RXQ_ARGS_COMMON, { NULL, 0, NULL, 0 }
    };
    int priority = -1;
    uint64_t max_attempts = 0, timeout_ms = 0, queue_timeout_ms = 0;
    bool have_max = false, have_timeout = false, have_queue_timeout = false, wait = false;
    s_require_t require = { 0 };
    const char *key = NULL;
    int c;
    while ((c = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        switch (c) {
            case O_PRIORITY:
                if (!strcasecmp (optarg, "low") || !strcmp (optarg, "0"))
                    priority = RXQ_PRIORITY_LOW;
                else
                if (!strcasecmp (optarg, "normal") || !strcmp (optarg, "1"))
                    priority = RXQ_PRIORITY_NORMAL;
                else
                if (!strcasecmp (optarg, "high") || !strcmp (optarg, "2"))
                    priority = RXQ_PRIORITY_HIGH;
                else
                    return rxq_args_error (RXQ_EXIT_USAGE,
                                    "--priority must be low, normal, high, 0, 1 or 2, not '%s'", optarg);
                break;
            case O_MAX_ATTEMPTS:
                if (!rxq_args_uint (optarg, 1, 100, &max_attempts))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--max-attempts must be 1 to 100, not '%s'", optarg);
                have_max = true;
                break;
            case O_TIMEOUT_MS:
                if (!rxq_args_uint (optarg, 0, UINT32_MAX, &timeout_ms))
                    return rxq_args_error (RXQ_EXIT_USAGE,
                                    "--timeout-ms must be a number of milliseconds, not '%s'", optarg);
                have_timeout = true;
                break;
            case O_KEY:
                if (strlen (optarg) == 0 || strlen (optarg) > RXQ_MAX_KEY_LEN)
                    return rxq_args_error (RXQ_EXIT_USAGE, "--key must be 1 to %d bytes", RXQ_MAX_KEY_LEN);
                key = optarg;
                break;
            case O_WAIT:
                wait = true;
                break;
            case O_QUEUE_TIMEOUT:
                if (!rxq_args_uint (optarg, 0, UINT32_MAX, &queue_timeout_ms))
                    return rxq_args_error (RXQ_EXIT_USAGE,
                                    "--queue-timeout-ms must be a number of milliseconds, not '%s'",
                                    optarg);
                have_queue_timeout = true;
                break;
            case O_REQUIRE: {
                int code = s_require_parse (&require, optarg);
                if (code >= 0)
                    return code;
                break;
            }
            case RXQ_OPT_HELP:
                s_submit_help (stdout);
                return RXQ_EXIT_OK;
            default: {
                int code = rxq_args_common (o, c, argv, "");
                if (code >= 0)
                    return code;
            }
        }
    }
    if (optind >= argc)
        return rxq_args_error (RXQ_EXIT_USAGE, "submit needs a job kind (see rxq submit --help)");
    const char *kind_name = argv [optind];
    const cmn_kind_t *kind = cmn_kind_find (kind_name, strlen (kind_name));
    if (!kind) {
        char known [256] = "";
        for (const cmn_kind_t *k = cmn_kinds; k->name; k++)
            snprintf (known + strlen (known), sizeof known - strlen (known), "%s%s",
                      known [0] ? ", " : "", k->name);
        return rxq_args_error (RXQ_EXIT_USAGE, "unknown job kind '%.64s' (known: %s)", kind_name, known);
    }

    //  Parameters: typed by the kind's table, then checked as a whole
    //  (required, duplicates) exactly as the broker will.
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    msgpack_packer ppk;
    msgpack_packer_init (&ppk, &params, msgpack_sbuffer_write);
    int nparams = argc - optind - 1;
    cmn_err_t err;
    for (int i = optind + 1; i < argc; i++)
        if (cmn_kind_pack_arg (kind, argv [i], &ppk, &err) != 0) {
            msgpack_sbuffer_destroy (&params);
            return rxq_args_error (RXQ_EXIT_USAGE, "%s", err.msg);
        }
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    bool have_require = s_require_count (&require) > 0;
    msgpack_pack_map (&pk, 2 + (priority >= 0) + have_max + have_timeout + have_queue_timeout
                           + have_require + (key != NULL) + wait);
    cmn_pack_kv_str (&pk, "kind", kind->name);
    cmn_pack_key (&pk, "params");
    msgpack_pack_map (&pk, (size_t) nparams);
    msgpack_sbuffer_write (&body, params.data, params.size);
    msgpack_sbuffer_destroy (&params);
    if (priority >= 0)
        cmn_pack_kv_uint (&pk, "priority", (uint64_t) priority);
    if (have_max)
        cmn_pack_kv_uint (&pk, "max_attempts", max_attempts);
    if (have_timeout)
        cmn_pack_kv_uint (&pk, "timeout_ms", timeout_ms);
    if (have_queue_timeout)
        cmn_pack_kv_uint (&pk, "queue_timeout_ms", queue_timeout_ms);
    if (have_require) {
        cmn_pack_key (&pk, "require");
        s_require_pack (&require, &pk);
    }
    if (key)
        cmn_pack_kv_str (&pk, "key", key);
    if (wait)
        cmn_pack_kv_bool (&pk, "wait", true);

    cmn_body_t check;
    if (cmn_body_decode (&check, body.data, body.size, &cmn_codec_limits_default, &err) != 0) {
        msgpack_sbuffer_destroy (&body);
        return rxq_args_error (RXQ_EXIT_USAGE, "job too large: %s", err.msg);
    }
    int rc = cmn_kind_validate (kind, cmn_codec_find (&check.root, "params"), &err);
    cmn_body_free (&check);
    if (rc != 0) {
        msgpack_sbuffer_destroy (&body);
        return rxq_args_error (RXQ_EXIT_USAGE, "%s", err.msg);
    }

    cmn_body_t final;
    s_events_t events = { stderr, false };
    int code = s_call (o, RXQ_CMD_SUBMIT, &body, s_on_event, &events, &final);
    msgpack_sbuffer_destroy (&body);
    if (code != 0)
        return code;
    if (wait)
        code = s_finish_job (o, &final, true);
    else
    if (o->json)
        s_print_json_body (&final.root);
    else {
        char id [RXQ_MAX_ID_LEN + 1];
        if (cmn_codec_get_cstr (&final.root, "id", id, sizeof id, NULL) == 0)
            printf ("%s\n", id);
        else
            code = rxq_args_error (RXQ_EXIT_BROKER, "the broker's reply has no job id");
    }
    cmn_body_free (&final);
    return code;
}

//  ---------------------------------------------------------------------
//  rxq status / watch / result / cancel / retry

static const char *s_status_help =
"usage: rxq status ID\n"
"\n"
"Prints the job record: state, attempts, worker, times, parameters, and\n"
"its result or error once it has ended (--json: the record as JSON).\n"
"\n"
"Exit: 0 found (whatever its state); 2 no such job; 3 broker unreachable; 64 usage.\n";

static int
s_cmd_status (s_opts_t *o, int argc, char **argv)
{
    const char *id;
    int code = s_parse_id_command (o, argc, argv, s_status_help, &id);
    if (code >= 0)
        return code;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    s_pack_id (&body, id);
    cmn_body_t final;
    code = s_call (o, RXQ_CMD_STATUS, &body, NULL, NULL, &final);
    msgpack_sbuffer_destroy (&body);
    if (code != 0)
        return code;
    const msgpack_object *job = NULL;
    if (o->json)
        code = s_print_json_field (&final, "job");
    else
    if (cmn_codec_get_map (&final.root, "job", &job, NULL) == 0)
        rxq_print_job (stdout, job);
    else
        code = rxq_args_error (RXQ_EXIT_BROKER, "the broker's reply has no 'job' record");
    cmn_body_free (&final);
    return code;
}

static const char *s_watch_help =
"usage: rxq watch ID\n"
"\n"
"Streams the job's events (accepted, leased, progress, requeued, ...) one\n"
"line each until the job ends, then prints its result. With --json the\n"
"events go to stderr and the final job record to stdout. A silent broker\n"
"is asked again every 3 s from the last event seen; without --timeout the\n"
"watch waits for ever once the broker has answered.\n"
"\n"
"Exit: 0 the job succeeded; 1 it failed, was cancelled or is dead; 2 no such\n"
"job; 3 broker unreachable; 64 usage.\n";

static int
s_cmd_watch (s_opts_t *o, int argc, char **argv)
{
    const char *id;
    int code = s_parse_id_command (o, argc, argv, s_watch_help, &id);
    if (code >= 0)
        return code;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    s_pack_id (&body, id);
    cmn_body_t final;
    s_events_t events = { o->json ? stderr : stdout, false };
    code = s_call (o, RXQ_CMD_WATCH, &body, s_on_event, &events, &final);
    msgpack_sbuffer_destroy (&body);
    if (code != 0)
        return code;
    code = s_finish_job (o, &final, true);
    cmn_body_free (&final);
    return code;
}

static const char *s_result_help =
"usage: rxq result ID\n"
"\n"
"Prints the result of a job that has ended: for bench.device a summary in\n"
"GB/s and GFLOPS, then every field (--json: the job record).\n"
"\n"
"Exit: 0 the job succeeded; 1 it failed, was cancelled or is dead; 2 no such\n"
"job, or it has not ended yet; 3 broker unreachable; 64 usage.\n";

static int
s_cmd_result (s_opts_t *o, int argc, char **argv)
{
    const char *id;
    int code = s_parse_id_command (o, argc, argv, s_result_help, &id);
    if (code >= 0)
        return code;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    s_pack_id (&body, id);
    cmn_body_t final;
    code = s_call (o, RXQ_CMD_RESULT, &body, NULL, NULL, &final);
    msgpack_sbuffer_destroy (&body);
    if (code != 0)
        return code;
    code = s_finish_job (o, &final, true);
    cmn_body_free (&final);
    return code;
}

//  cancel and retry: {id} in, {id, state} out.
static int
s_id_state_command (s_opts_t *o, int argc, char **argv, const char *help, int command)
{
    const char *id;
    int code = s_parse_id_command (o, argc, argv, help, &id);
    if (code >= 0)
        return code;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    s_pack_id (&body, id);
    cmn_body_t final;
    code = s_call (o, command, &body, NULL, NULL, &final);
    msgpack_sbuffer_destroy (&body);
    if (code != 0)
        return code;
    if (o->json)
        s_print_json_body (&final.root);
    else {
        char state [32] = "?";
        cmn_codec_get_cstr (&final.root, "state", state, sizeof state, NULL);
        if (command == RXQ_CMD_CANCEL && strcmp (state, "cancelled") != 0)
            printf ("%s: cancel requested (job is %s; it stops at its next kernel boundary)\n",
                    id, state);
        else
            printf ("%s: %s\n", id, state);
    }
    cmn_body_free (&final);
    return RXQ_EXIT_OK;
}

static const char *s_cancel_help =
"usage: rxq cancel ID\n"
"\n"
"Cancels a job: a queued job is cancelled at once; a leased one is told to\n"
"stop and becomes cancelled when its worker confirms. Prints the job's state\n"
"after the request.\n"
"\n"
"Exit: 0 cancelled or cancel requested; 2 no such job, or it has already\n"
"ended; 3 broker unreachable; 64 usage.\n";

static int
s_cmd_cancel (s_opts_t *o, int argc, char **argv)
{
    return s_id_state_command (o, argc, argv, s_cancel_help, RXQ_CMD_CANCEL);
}

static const char *s_retry_help =
"usage: rxq retry ID\n"
"\n"
"Puts a failed, cancelled or dead job back in the queue with its failure\n"
"count reset to zero.\n"
"\n"
"Exit: 0 queued again; 2 no such job, or it is not failed/cancelled/dead;\n"
"3 broker unreachable; 64 usage.\n";

static int
s_cmd_retry (s_opts_t *o, int argc, char **argv)
{
    return s_id_state_command (o, argc, argv, s_retry_help, RXQ_CMD_RETRY);
}

//  ---------------------------------------------------------------------
//  rxq jobs / workers

static const char *s_jobs_help =
"usage: rxq jobs [--state S] [--limit N]\n"
"\n"
"Lists jobs, newest first, as a table (--json: the array of job records).\n"
"\n"
"  --state S   only jobs in state S: queued, leased, succeeded, failed,\n"
"              cancelled or dead\n"
"  --limit N   at most N jobs (1 to 10000, default 100)\n"
"\n"
"Exit: 0 listed; 2 the broker refused; 3 broker unreachable; 64 usage.\n";

static int
s_cmd_jobs (s_opts_t *o, int argc, char **argv)
{
    static const struct option options [] = {
        { "state", required_argument, NULL, 1 },
        { "limit", required_argument, NULL, 2 },
        RXQ_ARGS_COMMON, { NULL, 0, NULL, 0 }
    };
    static const char *states [] = { "queued", "leased", "succeeded", "failed",
                                     "cancelled", "dead", NULL };
    const char *state = NULL;
    uint64_t limit = 0;
    int c;
    while ((c = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        if (c == 1) {
            state = NULL;
            for (int i = 0; states [i]; i++)
                if (strcmp (optarg, states [i]) == 0)
                    state = states [i];
            if (!state)
                return rxq_args_error (RXQ_EXIT_USAGE, "--state must be queued, leased, succeeded, failed, "
                                "cancelled or dead, not '%s'", optarg);
        }
        else
        if (c == 2) {
            if (!rxq_args_uint (optarg, 1, 10000, &limit))
                return rxq_args_error (RXQ_EXIT_USAGE, "--limit must be 1 to 10000, not '%s'", optarg);
        }
        else {
            int code = rxq_args_common (o, c, argv, s_jobs_help);
            if (code >= 0)
                return code;
        }
    }
    if (optind != argc)
        return rxq_args_error (RXQ_EXIT_USAGE, "unexpected argument '%s' (see rxq jobs --help)", argv [optind]);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, (state != NULL) + (limit > 0));
    if (state)
        cmn_pack_kv_str (&pk, "state", state);
    if (limit)
        cmn_pack_kv_uint (&pk, "limit", limit);
    cmn_body_t final;
    int code = s_call (o, RXQ_CMD_LIST, &body, NULL, NULL, &final);
    msgpack_sbuffer_destroy (&body);
    if (code != 0)
        return code;
    if (o->json)
        code = s_print_json_field (&final, "jobs");
    else {
        const msgpack_object *jobs = NULL;
        cmn_codec_get_array (&final.root, "jobs", &jobs, NULL);
        rxq_print_jobs (stdout, jobs);
    }
    cmn_body_free (&final);
    return code;
}

static const char *s_workers_help =
"usage: rxq workers\n"
"\n"
"Lists the workers registered with the broker: name, idle/busy, the jobs\n"
"they hold, their device, the kinds they run and when they were last heard\n"
"(--json: the array of worker records).\n"
"\n"
"Exit: 0 listed; 3 broker unreachable; 64 usage.\n";

static int
s_cmd_workers (s_opts_t *o, int argc, char **argv)
{
    static const struct option options [] = { RXQ_ARGS_COMMON, { NULL, 0, NULL, 0 } };
    int c;
    while ((c = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        int code = rxq_args_common (o, c, argv, s_workers_help);
        if (code >= 0)
            return code;
    }
    if (optind != argc)
        return rxq_args_error (RXQ_EXIT_USAGE, "unexpected argument '%s' (see rxq workers --help)",
                        argv [optind]);
    cmn_body_t final;
    int code = s_call (o, RXQ_CMD_WORKERS, NULL, NULL, NULL, &final);
    if (code != 0)
        return code;
    if (o->json)
        code = s_print_json_field (&final, "workers");
    else {
        const msgpack_object *workers = NULL;
        cmn_codec_get_array (&final.root, "workers", &workers, NULL);
        rxq_print_workers (stdout, workers);
    }
    cmn_body_free (&final);
    return code;
}

//  ---------------------------------------------------------------------
//  rxq put / rxq get: the blob store (proto section 9, docs/store.md)

static const char *s_put_help =
"usage: rxq put FILE\n"
"\n"
"Uploads FILE to the broker's blob store and prints its name, the SHA-256\n"
"of its bytes (64 hex digits), on stdout. The file is hashed first; when\n"
"the store already has that blob nothing is sent. Chunks of 1 MiB go with\n"
"credit-based flow control, so files of any size stream through. With\n"
"--json: {\"hash\", \"size\", \"uploaded\"}.\n"
"\n"
"Exit: 0 stored; 2 the broker refused (no blob store, hash mismatch because\n"
"FILE changed while it was sent); 3 broker unreachable; 5 FILE unreadable;\n"
"64 usage.\n";

static int
s_cmd_put (s_opts_t *o, int argc, char **argv)
{
    static const struct option options [] = { RXQ_ARGS_COMMON, { NULL, 0, NULL, 0 } };
    int c;
    while ((c = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        int code = rxq_args_common (o, c, argv, s_put_help);
        if (code >= 0)
            return code;
    }
    if (optind != argc - 1)
        return rxq_args_error (RXQ_EXIT_USAGE, "put needs exactly one FILE (see rxq put --help)");
    const char *path = argv [optind];
    int code = 0;
    cmn_xfer_t *xfer = rxq_blob_connect (o, &code);
    if (!xfer)
        return code;
    char hash [CMN_BLOB_HEX_LEN + 1];
    uint64_t size = 0;
    bool sent = false;
    cmn_err_t err;
    int64_t t0 = zclock_mono ();
    if (cmn_xfer_put (xfer, path, hash, &size, &sent, &err))
        code = cmn_xfer_error_from_broker (xfer) && err.code == RXQ_E_IO_HASH
             ? rxq_args_error (RXQ_EXIT_BROKER, "%s", err.msg) : rxq_blob_failed (xfer, &err);
    else {
        double secs = (double) (zclock_mono () - t0) / 1000.0;
        if (o->json)
            printf ("{\"hash\": \"%s\", \"size\": %" PRIu64 ", \"uploaded\": %s}\n", hash, size,
                    sent ? "true" : "false");
        else
            printf ("%s\n", hash);
        fprintf (stderr, "%s: %" PRIu64 " bytes %s (%.2f s)\n", path, size,
                 sent ? "uploaded" : "already in the store, not sent", secs);
    }
    cmn_xfer_destroy (&xfer);
    return code;
}

static const char *s_get_help =
"usage: rxq get HASH|JOB -o FILE\n"
"\n"
"Downloads a blob from the broker's store into FILE: the blob named HASH\n"
"(64 hex digits), or the output blob of job JOB (its result's\n"
"`output_blob`, e.g. the GGUF of a quantize job). The bytes go to a\n"
"temporary file beside FILE, are checked against the name, and only then\n"
"renamed to FILE.\n"
"\n"
"Exit: 0 written; 1 the job did not succeed; 2 no such blob or job, or the\n"
"job has no output blob; 3 broker unreachable; 5 FILE cannot be written or\n"
"the bytes received do not match the hash; 64 usage.\n";

//  Finds the output blob of job ID into HASH via STATUS.
static int
s_job_output_blob (s_opts_t *o, const char *id, char hash [CMN_BLOB_HEX_LEN + 1])
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    s_pack_id (&body, id);
    cmn_body_t final;
    int code = s_call (o, RXQ_CMD_STATUS, &body, NULL, NULL, &final);
    msgpack_sbuffer_destroy (&body);
    if (code != 0)
        return code;
    const msgpack_object *job = NULL, *result = NULL;
    char state [32] = "";
    if (cmn_codec_get_map (&final.root, "job", &job, NULL) != 0)
        code = rxq_args_error (RXQ_EXIT_BROKER, "the broker's reply has no 'job' record");
    else {
        cmn_codec_get_cstr (job, "state", state, sizeof state, NULL);
        if (strcmp (state, "succeeded") != 0)
            code = rxq_args_error (strcmp (state, "failed") == 0 || strcmp (state, "dead") == 0
                            || strcmp (state, "cancelled") == 0 ? RXQ_EXIT_JOB : RXQ_EXIT_BROKER,
                            "job %s is %s: it has no output yet", id, state);
        else
        if (cmn_codec_get_map (job, "result", &result, NULL) != 0
        ||  cmn_codec_get_cstr (result, "output_blob", hash, CMN_BLOB_HEX_LEN + 1, NULL) != 0
        ||  !cmn_blob_name_valid (hash, strlen (hash)))
            code = rxq_args_error (RXQ_EXIT_BROKER, "job %s has no output blob in its result", id);
    }
    cmn_body_free (&final);
    return code;
}

static int
s_cmd_get (s_opts_t *o, int argc, char **argv)
{
    static const struct option options [] = {
        RXQ_ARGS_COMMON, { "output", required_argument, NULL, 'o' }, { NULL, 0, NULL, 0 }
    };
    const char *out = NULL;
    int c;
    while ((c = getopt_long (argc, argv, ":o:", options, NULL)) != -1) {
        if (c == 'o') {
            out = optarg;
            continue;
        }
        int code = rxq_args_common (o, c, argv, s_get_help);
        if (code >= 0)
            return code;
    }
    if (optind != argc - 1)
        return rxq_args_error (RXQ_EXIT_USAGE, "get needs exactly one HASH or JOB id (see rxq get --help)");
    if (!out || !*out)
        return rxq_args_error (RXQ_EXIT_USAGE, "get needs -o FILE (see rxq get --help)");
    const char *what = argv [optind];
    char hash [CMN_BLOB_HEX_LEN + 1];
    int code = 0;
    if (cmn_blob_name_valid (what, strlen (what)))
        snprintf (hash, sizeof hash, "%s", what);
    else
    if (strlen (what) == 0 || strlen (what) > RXQ_MAX_ID_LEN)
        return rxq_args_error (RXQ_EXIT_USAGE, "'%.80s' is neither a blob hash (64 hex digits) nor a "
                        "job id", what);
    else
    if ((code = s_job_output_blob (o, what, hash)) != 0)
        return code;
    cmn_xfer_t *xfer = rxq_blob_connect (o, &code);
    if (!xfer)
        return code;
    uint64_t size = 0;
    cmn_err_t err;
    int64_t t0 = zclock_mono ();
    if (cmn_xfer_get (xfer, hash, out, &size, &err))
        code = rxq_blob_failed (xfer, &err);
    else {
        double secs = (double) (zclock_mono () - t0) / 1000.0;
        if (o->json)
            printf ("{\"hash\": \"%s\", \"size\": %" PRIu64 ", \"file\": \"%s\"}\n", hash, size,
                    out);
        fprintf (stderr, "%s: %" PRIu64 " bytes of blob %.16s... written (%.2f s)\n", out, size,
                 hash, secs);
    }
    cmn_xfer_destroy (&xfer);
    return code;
}

//  ---------------------------------------------------------------------
//  rxq bench / tune (rxq_bench.c)

static int
s_cmd_bench (s_opts_t *o, int argc, char **argv)
{
    return rxq_bench_cmd (o, argc, argv);
}

static int
s_cmd_tune (s_opts_t *o, int argc, char **argv)
{
    return rxq_bench_tune_cmd (o, argc, argv);
}

//  ---------------------------------------------------------------------
//  rxq generate (rxq_generate.c)

static int
s_cmd_generate (s_opts_t *o, int argc, char **argv)
{
    return rxq_generate_cmd (o, argc, argv);
}

//  ---------------------------------------------------------------------
//  rxq quantize: put, submit --wait, get (docs/store.md)

static const char *s_quantize_help =
"usage: rxq quantize MODEL --type T [--budget B | --bpw X] [--keep GLOBS] -o OUT.gguf\n"
"\n"
"Quantizes the local model file MODEL (GGUF or safetensors; F32, F16, BF16\n"
"or quantized) on a worker and writes the GGUF to OUT.gguf:\n"
"  1. uploads MODEL to the broker's blob store (nothing is sent when the\n"
"     store already has it: a second quantize of a model starts at once);\n"
"  2. submits a quantize job on that blob and streams its progress, tensor\n"
"     by tensor, to stderr;\n"
"  3. downloads the output blob to OUT.gguf (checked against its hash) and\n"
"     prints the report (with --json: the job record).\n"
"\n"
"  --type T        q4_0 q4_1 q5_0 q5_1 q8_0 q4_k q5_k q6_k int4 int4_g64\n"
"                  int4_g128 f16 bf16 f32, or mixed (needs --budget or --bpw)\n"
"  --budget B      mixed: output file size limit: bytes, or with a unit\n"
"                  (KB MB GB TB: powers of 1000; KiB MiB GiB TiB: of 1024)\n"
"  --bpw X         mixed: limit on tensor-data bits per weight\n"
"  --keep GLOBS    tensors kept at higher precision: GLOB[:q8_0|f16|f32],...\n"
"  -o, --output F  where the quantized GGUF goes (required)\n"
"  --timeout-ms N  deadline of one attempt on the worker (0: none)\n"
"\n"
"Exit: 0 written; 1 the job failed (bad model, budget no assignment meets);\n"
"2 the broker refused; 3 broker unreachable; 5 MODEL unreadable or OUT not\n"
"writable; 64 usage.\n";

//  Parses "3.5GB", "4GiB", "1000000" into bytes; false when malformed.
static bool
s_parse_bytes (const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod (text, &end);
    if (errno || end == text || !isfinite (v) || v <= 0 || text [0] == '-')
        return false;
    static const struct { const char *unit; double mul; } units [] = {
        { "", 1 }, { "B", 1 }, { "KB", 1e3 }, { "MB", 1e6 }, { "GB", 1e9 }, { "TB", 1e12 },
        { "KiB", 1024.0 }, { "MiB", 1048576.0 }, { "GiB", 1073741824.0 },
        { "TiB", 1099511627776.0 }, { NULL, 0 }
    };
    for (int i = 0; units [i].unit; i++)
        if (strcasecmp (end, units [i].unit) == 0 && (units [i].mul != 1 || !strchr (text, '.'))) {
            double bytes = v * units [i].mul;
            if (bytes < 1 || bytes > 1.8e19)
                return false;
            *out = (uint64_t) bytes;
            return true;
        }
    return false;
}

//  Packs a blob job's `params` map for the model blob HASH (ARG: the
//  command's options).
typedef void (s_pack_params_fn) (msgpack_packer *pk, const char *hash, void *arg);

//  A job on a model file through the blob store (docs/store.md), as rxq
//  quantize and rxq optimize run it:
//    1. MODEL into the store (rxq_blob_model: nothing is sent when the
//       store has it; a blob name is taken as it is);
//    2. the job of KIND, with the params PACK gives for the blob, `wait`
//       and TIMEOUT_MS (0: none), and `require: {target: TARGET}` when
//       TARGET is not NULL or "" (rxq optimize --target), checked here as
//       the broker will, its progress streamed to stderr;
//    3. its output blob downloaded into OUT, then the result printed (the
//       job record as JSON with --json).
//  Returns the exit code.
static int
s_blob_job (s_opts_t *o, const char *kind_name, const char *model, s_pack_params_fn *pack,
            void *arg, uint64_t timeout_ms, const char *target, const char *out)
{
    int code = 0;
    cmn_xfer_t *xfer = NULL;
    char hash [CMN_BLOB_HEX_LEN + 1];
    if ((code = rxq_blob_model (o, &xfer, model, false, hash)) != 0) {
        cmn_xfer_destroy (&xfer);
        return code;
    }
    const cmn_kind_t *kind = cmn_kind_find (kind_name, strlen (kind_name));
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3 + (timeout_ms > 0) + (target && target [0]));
    cmn_pack_kv_str (&pk, "kind", kind_name);
    cmn_pack_key (&pk, "params");
    pack (&pk, hash, arg);
    cmn_pack_kv_bool (&pk, "wait", true);
    if (timeout_ms)
        cmn_pack_kv_uint (&pk, "timeout_ms", timeout_ms);
    if (target && target [0]) {
        cmn_pack_key (&pk, "require");
        msgpack_pack_map (&pk, 1);
        cmn_pack_kv_str (&pk, "target", target);
    }
    cmn_err_t err;
    cmn_body_t check;
    if (!kind || cmn_body_decode (&check, body.data, body.size, &cmn_codec_limits_default,
                                  &err) != 0) {
        msgpack_sbuffer_destroy (&body);
        cmn_xfer_destroy (&xfer);
        return rxq_args_error (RXQ_EXIT_USAGE, "job too large: %s", kind ? err.msg : "no such kind");
    }
    int rc = cmn_kind_validate (kind, cmn_codec_find (&check.root, "params"), &err);
    cmn_body_free (&check);
    if (rc) {
        msgpack_sbuffer_destroy (&body);
        cmn_xfer_destroy (&xfer);
        return rxq_args_error (RXQ_EXIT_USAGE, "%s", err.msg);
    }
    cmn_body_t final;
    s_events_t events = { stderr, false };
    code = s_call (o, RXQ_CMD_SUBMIT, &body, s_on_event, &events, &final);
    msgpack_sbuffer_destroy (&body);
    if (code != 0) {
        cmn_xfer_destroy (&xfer);
        return code;
    }
    const msgpack_object *job = NULL;
    if (cmn_codec_get_map (&final.root, "job", &job, NULL) != 0)
        code = rxq_args_error (RXQ_EXIT_BROKER, "the broker's reply has no 'job' record");
    else
    if ((code = s_state_exit (job)) != 0)
        s_report_unsuccessful (job);
    else
    if (!xfer && !(xfer = rxq_blob_connect (o, &code)))
        ;
    else
    if ((code = rxq_blob_output (xfer, job, out)) == 0) {
        if (o->json) {
            cmn_codec_print_json (stdout, job);
            fputc ('\n', stdout);
        }
        else
            rxq_print_result (stdout, job);
    }
    cmn_body_free (&final);
    cmn_xfer_destroy (&xfer);
    return code;
}

//  rxq quantize's options, packed as the job's params.
typedef struct {
    const char *type, *keep;    // --type, --keep (NULL: none)
    uint64_t budget;            // --budget, 0 none
    double bpw;                 // --bpw, 0 none
} s_quantize_t;

static void
s_quantize_pack (msgpack_packer *pk, const char *hash, void *arg)
{
    const s_quantize_t *q = arg;
    msgpack_pack_map (pk, 2 + (q->budget > 0) + (q->bpw > 0) + (q->keep != NULL));
    cmn_pack_kv_str (pk, "model", hash);
    cmn_pack_kv_str (pk, "type", q->type);
    if (q->budget)
        cmn_pack_kv_uint (pk, "budget_bytes", q->budget);
    if (q->bpw > 0)
        cmn_pack_kv_double (pk, "bpw", q->bpw);
    if (q->keep)
        cmn_pack_kv_str (pk, "keep", q->keep);
}

static int
s_cmd_quantize (s_opts_t *o, int argc, char **argv)
{
    enum { O_TYPE = 1, O_BUDGET, O_BPW, O_KEEP, O_TIMEOUT_MS };
    static const struct option options [] = {
        { "type", required_argument, NULL, O_TYPE },
        { "budget", required_argument, NULL, O_BUDGET },
        { "bpw", required_argument, NULL, O_BPW },
        { "keep", required_argument, NULL, O_KEEP },
        { "output", required_argument, NULL, 'o' },
        { "timeout-ms", required_argument, NULL, O_TIMEOUT_MS },
        RXQ_ARGS_COMMON, { NULL, 0, NULL, 0 }
    };
    const char *type = NULL, *keep = NULL, *out = NULL;
    uint64_t budget = 0, timeout_ms = 0;
    double bpw = 0;
    int c;
    while ((c = getopt_long (argc, argv, ":o:", options, NULL)) != -1) {
        switch (c) {
            case O_TYPE: type = optarg; break;
            case O_KEEP: keep = optarg; break;
            case 'o': out = optarg; break;
            case O_BUDGET:
                if (!s_parse_bytes (optarg, &budget))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--budget must be a size such as 3.5GB, "
                                    "4GiB or 1000000 (bytes), not '%s'", optarg);
                break;
            case O_BPW: {
                char *end = NULL;
                bpw = strtod (optarg, &end);
                if (end == optarg || *end || !isfinite (bpw) || bpw < 1 || bpw > 64)
                    return rxq_args_error (RXQ_EXIT_USAGE, "--bpw must be a number of bits per weight "
                                    "from 1 to 64, not '%s'", optarg);
                break;
            }
            case O_TIMEOUT_MS:
                if (!rxq_args_uint (optarg, 0, UINT32_MAX, &timeout_ms))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--timeout-ms must be a number of "
                                    "milliseconds, not '%s'", optarg);
                break;
            default: {
                int code = rxq_args_common (o, c, argv, s_quantize_help);
                if (code >= 0)
                    return code;
            }
        }
    }
    if (optind != argc - 1)
        return rxq_args_error (RXQ_EXIT_USAGE, "quantize needs exactly one MODEL file (see rxq quantize "
                        "--help)");
    if (!type)
        return rxq_args_error (RXQ_EXIT_USAGE, "quantize needs --type (see rxq quantize --help)");
    if (!out || !*out)
        return rxq_args_error (RXQ_EXIT_USAGE, "quantize needs -o OUT.gguf (see rxq quantize --help)");
    if (budget && bpw > 0)
        return rxq_args_error (RXQ_EXIT_USAGE, "give --budget or --bpw, not both");

    s_quantize_t q = { type, keep, budget, bpw };
    return s_blob_job (o, "quantize", argv [optind], s_quantize_pack, &q, timeout_ms, NULL, out);
}

//  ---------------------------------------------------------------------
//  rxq optimize (rxq_optimize.c)

static void
s_optimize_pack (msgpack_packer *pk, const char *hash, void *arg)
{
    rxq_optimize_pack_params (arg, hash, pk);
}

//  --local runs here; otherwise the job runs on a worker through the blob
//  store, as rxq quantize does (s_blob_job).
static int
s_cmd_optimize (s_opts_t *o, int argc, char **argv)
{
    rxq_optimize_args_t a;
    int code = rxq_optimize_parse (o->json, argc, argv, &a);
    if (code >= 0 || a.help)
        return code >= 0 ? code : RXQ_EXIT_OK;
    if (a.local)
        return rxq_optimize_local (&a);
    o->json = a.json;
    return s_blob_job (o, "optimize", a.model, s_optimize_pack, &a, 0, a.target, a.output);
}

//  ---------------------------------------------------------------------
//  Top level

static const struct {
    const char *name;
    s_cmd_fn *fn;
    const char *summary;
} s_commands [] = {
    { "up",      s_cmd_up,      "start a local cluster (redis, broker, workers)" },
    { "down",    s_cmd_down,    "stop the local cluster" },
    { "submit",  s_cmd_submit,  "submit a job; --wait for its result" },
    { "status",  s_cmd_status,  "show a job's record" },
    { "watch",   s_cmd_watch,   "stream a job's events until it ends" },
    { "result",  s_cmd_result,  "show a finished job's result" },
    { "cancel",  s_cmd_cancel,  "cancel a job" },
    { "jobs",    s_cmd_jobs,    "list jobs" },
    { "workers", s_cmd_workers, "list workers" },
    { "retry",   s_cmd_retry,   "requeue a failed, cancelled or dead job" },
    { "bench",   s_cmd_bench,   "run a benchmark on every worker; bench report: compare records" },
    { "tune",    s_cmd_tune,    "tune kernels on every worker; store the entry per device" },
    { "put",     s_cmd_put,     "upload a file to the blob store; prints its hash" },
    { "get",     s_cmd_get,     "download a blob (by hash, or a job's output) to a file" },
    { "optimize", s_cmd_optimize, "optimize an ONNX model on a worker (or --local)" },
    { "quantize", s_cmd_quantize, "quantize a local model on a worker: put, run, get" },
    { "generate", s_cmd_generate, "generate text with a Llama GGUF model, streaming it" },
    { NULL, NULL, NULL }
};

static void
s_main_help (FILE *out)
{
    fputs ("usage: rxq [--broker ENDPOINT] [--json] [--timeout SEC] COMMAND [ARGS...]\n"
           "\n"
           "Client of an rxq cluster (distributed job queue for OpenCL devices).\n"
           "\n"
           "Commands (rxq COMMAND --help for each):\n", out);
    for (int i = 0; s_commands [i].name; i++)
        fprintf (out, "  %-9s %s\n", s_commands [i].name, s_commands [i].summary);
    fputs ("\n"
           "Options (also accepted after the command):\n"
           "  --broker ENDPOINT  broker to talk to (default $RXQ_BROKER, else " DEFAULT_BROKER ")\n"
           "  --json             print the reply's job, jobs or workers as one JSON document\n"
           "  --timeout SEC      silence after which the broker counts as unreachable\n"
           "                     (default 5; watch and submit --wait wait for ever once\n"
           "                     answered unless --timeout is given)\n"
           "  --help, --version\n"
           "\n"
           "Environment: RXQ_BROKER (endpoint), RXQ_RUN_DIR (rxq up/down run dir,\n"
           "default ./.rxq), RXQ_BIN_DIR (where rxq up finds rxq-broker and rxq-worker),\n"
           "RXQ_LOG_LEVEL (error, warn, info, debug).\n"
           "\n"
           "Exit codes:\n"
           "  0   success (submit --wait, watch, result: the job succeeded)\n"
           "  1   the job ended failed, dead or cancelled\n"
           "  2   the broker answered with an error (no such job, wrong state, refused)\n"
           "  3   the broker is unreachable or did not answer in time\n"
           "  4   rxq up / rxq down could not start or stop the local cluster\n"
           "  5   a local file could not be read or written, or a download did not\n"
           "      match its hash\n"
           "  64  usage error: bad option, unknown command or kind, bad parameter\n"
           "Errors are one line on stderr: \"rxq: <message>\".\n", out);
}

int
rxq_cmd_main (int argc, char **argv)
{
    //  Ctrl-C must end the CLI at once, not set czmq's interrupted flag.
    zsys_handler_set (NULL);
    const char *level = getenv ("RXQ_LOG_LEVEL");
    int lvl = cmn_log_level_parse (level);
    cmn_log_init ("rxq", lvl >= 0 ? (cmn_log_level_t) lvl : CMN_LOG_WARN);

    s_opts_t o;
    memset (&o, 0, sizeof o);
    const char *env = getenv ("RXQ_BROKER");
    o.broker = env && *env ? env : DEFAULT_BROKER;
    o.timeout_ms = RXQ_CLIENT_TIMEOUT_MS_DEFAULT;
    o.cmd = "rxq";

    static const struct option options [] = {
        RXQ_ARGS_COMMON, { "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 }
    };
    opterr = 0;
    optind = 0;
    int c;
    while ((c = getopt_long (argc, argv, "+:", options, NULL)) != -1) {
        if (c == 'V') {
            printf ("rxq %s\n", RXQ_VERSION);
            return RXQ_EXIT_OK;
        }
        if (c == RXQ_OPT_HELP) {
            s_main_help (stdout);
            return RXQ_EXIT_OK;
        }
        int code = rxq_args_common (&o, c, argv, "");
        if (code >= 0)
            return code;
    }
    if (optind >= argc)
        return rxq_args_error (RXQ_EXIT_USAGE, "no command given (see rxq --help)");
    const char *name = argv [optind];
    if (strcmp (name, "help") == 0) {
        s_main_help (stdout);
        return RXQ_EXIT_OK;
    }
    for (int i = 0; s_commands [i].name; i++)
        if (strcmp (name, s_commands [i].name) == 0) {
            o.cmd = s_commands [i].name;
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            optind = 0;
            int code = s_commands [i].fn (&o, sub_argc, sub_argv);
            fflush (stdout);
            return code;
        }
    return rxq_args_error (RXQ_EXIT_USAGE, "unknown command '%.64s' (see rxq --help)", name);
}
