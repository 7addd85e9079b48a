/*  rxq-worker: runs jobs from an rxq broker on one OpenCL device.
 *
 *  Parses the command line (with environment fallbacks), opens the device
 *  unless --no-device, and hands both to wrk_agent, which does the work.
 *  Exit codes: 0 after SIGINT/SIGTERM, 1 on a fatal runtime error (the
 *  broker refused our protocol version), 2 when no usable OpenCL device
 *  was found, 64 (EX_USAGE) for bad arguments.
 */
#include "cmn_log.h"
#include "cmn_proto.h"
#include "wrk_agent.h"
#include "wrk_device.h"
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EXIT_NODEVICE 2
#define EXIT_USAGE    64        // EX_USAGE in sysexits.h
#define MAX_TAGS      64        // --tag given more often than this is refused

static void
s_usage (FILE *out)
{
    fprintf (out,
"usage: rxq-worker [OPTION]...\n"
"Runs jobs leased by an rxq broker on one OpenCL device.\n"
"\n"
"  -b, --broker ENDPOINT   broker endpoint (env RXQ_BROKER, default\n"
"                          tcp://127.0.0.1:5555)\n"
"  -d, --device SELECTOR   OpenCL device: P:D (platform and device index) or a\n"
"                          substring of \"platform / device\" (env RXQ_DEVICE;\n"
"                          default: the first GPU, else the first device)\n"
"      --list-devices      list the OpenCL devices found, then exit\n"
"  -n, --name NAME         worker name (default HOSTNAME/PID)\n"
"  -c, --capacity N        jobs held leased at once, 1 to %d (default 1);\n"
"                          they run one at a time, in order of arrival\n"
"  -t, --tag TAG           label shown by `rxq workers`; repeatable\n"
"      --cache-dir DIR     where built OpenCL programs are kept (default\n"
"                          $XDG_CACHE_HOME/rxq or ~/.cache/rxq)\n"
"      --blob-dir DIR      blob cache: models fetched from the broker's store and\n"
"                          outputs (default CACHE-DIR/blobs)\n"
"      --blob-cache-mb N   size cap of the blob cache in MiB, least recently\n"
"                          used out first (default 10240)\n"
"      --weight-cache-mb N device memory for model weights kept between jobs\n"
"                          (quantize outputs, generate's models), in MiB\n"
"                          (default: a quarter of the device's;\n"
"                          0 turns the weight cache off)\n"
"      --heartbeat-ms N    heartbeat interval in ms (default %d); the broker\n"
"                          counts us dead after %d silent intervals\n"
"      --log-level LEVEL   error, warn, info or debug (env RXQ_LOG_LEVEL,\n"
"                          default info)\n"
"      --no-device         run without OpenCL: only kinds that need no device\n"
"                          (noop) are advertised\n"
"  -h, --help              show this help and exit\n"
"  -V, --version           show the version and exit\n"
"\n"
"The worker connects lazily: when the broker is unreachable it keeps\n"
"retrying, and logs a warning each time %d heartbeat intervals pass without\n"
"word from the broker. SIGINT or SIGTERM stops the running job and tells\n"
"the broker, which requeues it.\n"
"\n"
"Exit status: 0 after SIGINT/SIGTERM; 1 when the broker refuses this\n"
"worker's protocol version (%s); 2 when no usable OpenCL device is found;\n"
"64 for bad arguments.\n",
             WRK_AGENT_CAPACITY_MAX, RXQ_HEARTBEAT_MS_DEFAULT, RXQ_LIVENESS_DEFAULT,
             RXQ_LIVENESS_DEFAULT, RXQ_PROTO_WORKER);
}

static int
s_usage_error (const char *fmt, ...)
{
    char text [512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (text, sizeof text, fmt, ap);
    va_end (ap);
    fprintf (stderr, "rxq-worker: %s (try --help)\n", text);
    return EXIT_USAGE;
}

//  Parses a decimal number within [MIN, MAX]; -1 when TEXT is not one.
static int
s_parse_uint (const char *text, unsigned long min, unsigned long max, uint32_t *out)
{
    if (!text || !*text || *text == '-' || *text == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long value = strtoul (text, &end, 10);
    if (errno || *end || value < min || value > max)
        return -1;
    *out = (uint32_t) value;
    return 0;
}

//  The default program cache: $XDG_CACHE_HOME/rxq, else $HOME/.cache/rxq,
//  creating the parent when it is missing. NULL (no cache) without a home.
static char *
s_default_cache_dir (void)
{
    const char *xdg = getenv ("XDG_CACHE_HOME");
    if (xdg && *xdg)
        return zsys_sprintf ("%s/rxq", xdg);
    const char *home = getenv ("HOME");
    if (!home || !*home)
        return NULL;
    char *parent = zsys_sprintf ("%s/.cache", home);
    if (parent)
        mkdir (parent, 0755);       //  failure shows when the device tries rxq/
    free (parent);
    return zsys_sprintf ("%s/.cache/rxq", home);
}

int
main (int argc, char *argv [])
{
    enum { OPT_LIST = 256, OPT_CACHE, OPT_HEARTBEAT, OPT_LOG, OPT_NODEVICE, OPT_BLOB_DIR,
           OPT_BLOB_MB, OPT_WEIGHT_MB };
    static const struct option options [] = {
        { "broker",       required_argument, NULL, 'b' },
        { "device",       required_argument, NULL, 'd' },
        { "list-devices", no_argument,       NULL, OPT_LIST },
        { "name",         required_argument, NULL, 'n' },
        { "capacity",     required_argument, NULL, 'c' },
        { "tag",          required_argument, NULL, 't' },
        { "cache-dir",    required_argument, NULL, OPT_CACHE },
        { "heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT },
        { "log-level",    required_argument, NULL, OPT_LOG },
        { "no-device",    no_argument,       NULL, OPT_NODEVICE },
        { "blob-dir",     required_argument, NULL, OPT_BLOB_DIR },
        { "blob-cache-mb", required_argument, NULL, OPT_BLOB_MB },
        { "weight-cache-mb", required_argument, NULL, OPT_WEIGHT_MB },
        { "help",         no_argument,       NULL, 'h' },
        { "version",      no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    const char *broker = getenv ("RXQ_BROKER");
    const char *selector = getenv ("RXQ_DEVICE");
    const char *log_level = getenv ("RXQ_LOG_LEVEL");
    const char *log_source = "RXQ_LOG_LEVEL";
    const char *cache_dir = NULL;
    const char *blob_dir = NULL;
    uint32_t blob_mb = (uint32_t) (WRK_BLOBS_CAP_DEFAULT >> 20);
    uint32_t weight_mb = 0;
    bool weight_mb_set = false;
    const char *tags [MAX_TAGS];
    wrk_agent_config_t cfg = { 0 };
    bool list_devices = false;
    bool no_device = false;

    opterr = 0;                     //  our own one-line messages
    int opt;
    while ((opt = getopt_long (argc, argv, ":b:d:n:c:t:hV", options, NULL)) != -1) {
        switch (opt) {
            case 'b': broker = optarg; break;
            case 'd': selector = optarg; break;
            case 'n': cfg.name = optarg; break;
            case OPT_LIST: list_devices = true; break;
            case OPT_CACHE: cache_dir = optarg; break;
            case OPT_NODEVICE: no_device = true; break;
            case OPT_BLOB_DIR: blob_dir = optarg; break;
            case OPT_WEIGHT_MB:
                if (s_parse_uint (optarg, 0, UINT32_MAX, &weight_mb))
                    return s_usage_error ("--weight-cache-mb must be a number of MiB, not '%s'",
                                          optarg);
                weight_mb_set = true;
                break;
            case OPT_BLOB_MB:
                if (s_parse_uint (optarg, 1, UINT32_MAX, &blob_mb))
                    return s_usage_error ("--blob-cache-mb must be a number of MiB from 1, "
                                          "not '%s'", optarg);
                break;
            case OPT_LOG: log_level = optarg; log_source = "--log-level"; break;
            case 'c':
                if (s_parse_uint (optarg, 1, WRK_AGENT_CAPACITY_MAX, &cfg.capacity))
                    return s_usage_error ("--capacity must be a number from 1 to %d, not '%s'",
                                          WRK_AGENT_CAPACITY_MAX, optarg);
                break;
            case OPT_HEARTBEAT:
                if (s_parse_uint (optarg, 10, 3600000, &cfg.heartbeat_ms))
                    return s_usage_error ("--heartbeat-ms must be a number from 10 to 3600000,"
                                          " not '%s'", optarg);
                break;
            case 't':
                if (cfg.tag_count == MAX_TAGS)
                    return s_usage_error ("at most %d --tag options", MAX_TAGS);
                if (!*optarg || strlen (optarg) > WRK_AGENT_NAME_MAX)
                    return s_usage_error ("--tag must be 1 to %d bytes", WRK_AGENT_NAME_MAX);
                tags [cfg.tag_count++] = optarg;
                break;
            case 'h':
                s_usage (stdout);
                return 0;
            case 'V':
                printf ("rxq-worker %s (protocol %s)\n", RXQ_VERSION, RXQ_PROTO_WORKER);
                return 0;
            case ':':
                return s_usage_error ("option '%s' needs a value", argv [optind - 1]);
            default:
                return s_usage_error ("unknown option '%s'", argv [optind - 1]);
        }
    }
    if (optind < argc)
        return s_usage_error ("unexpected argument '%s'", argv [optind]);
    int level = CMN_LOG_INFO;
    if (log_level && *log_level && (level = cmn_log_level_parse (log_level)) < 0)
        return s_usage_error ("%s must be error, warn, info or debug, not '%s'",
                              log_source, log_level);
    if (cfg.name && (!*cfg.name || strlen (cfg.name) > WRK_AGENT_NAME_MAX))
        return s_usage_error ("--name must be 1 to %d bytes", WRK_AGENT_NAME_MAX);
    cmn_log_init ("worker", (cmn_log_level_t) level);

    if (list_devices) {
        if (wrk_device_list (stdout) > 0)
            return 0;
        fprintf (stderr, "rxq-worker: no OpenCL device found\n");
        return EXIT_NODEVICE;
    }
    cfg.endpoint = broker && *broker ? broker : "tcp://127.0.0.1:5555";
    cfg.tags = tags;

    wrk_device_t *device = NULL;
    if (!no_device) {
        char *default_cache = cache_dir ? NULL : s_default_cache_dir ();
        cmn_err_t err;
        cmn_err_clear (&err);
        device = wrk_device_new (selector && *selector ? selector : NULL,
                                 cache_dir ? cache_dir : default_cache, &err);
        free (default_cache);
        if (!device) {
            fprintf (stderr, "rxq-worker: no usable OpenCL device: %s"
                     " (use --no-device to run only device-less kinds)\n", err.msg);
            return EXIT_NODEVICE;
        }
        const wrk_device_info_t *info = wrk_device_info (device);
        cmn_log_info ("device: %s / %s (%s, %" PRIu32 " compute units)", info->platform,
                      info->name, info->type, info->compute_units);
    }
    cmn_err_t err;
    cmn_err_clear (&err);
    //  The blob cache: where jobs on blobs fetch models (docs/store.md).
    wrk_blobs_t *blobs = NULL;
    {
        char *default_cache = cache_dir || blob_dir ? NULL : s_default_cache_dir ();
        const char *base = cache_dir ? cache_dir : default_cache;
        char *dir = blob_dir ? strdup (blob_dir) : base ? zsys_sprintf ("%s/blobs", base) : NULL;
        free (default_cache);
        if (dir) {
            blobs = wrk_blobs_new (dir, (uint64_t) blob_mb << 20, cfg.endpoint, &err);
            if (!blobs)
                cmn_log_warn ("no blob cache (%s): jobs on blobs will fail", err.msg);
        }
        else
            cmn_log_warn ("no blob cache: no --blob-dir, --cache-dir or HOME");
        free (dir);
        cfg.blobs = blobs;
    }
    //  The weight cache: model weights kept on the device (docs/store.md).
    wrk_wcache_t *wcache = NULL;
    if (device) {
        uint64_t budget = weight_mb_set ? (uint64_t) weight_mb << 20
                        : wrk_device_info (device)->global_mem / WRK_WCACHE_BUDGET_DIVISOR;
        if (budget > 0)
            wcache = wrk_wcache_new (device, budget);
        cfg.wcache = wcache;
    }
    wrk_agent_t *agent = wrk_agent_new (&cfg, device, &err);
    if (!agent) {
        wrk_wcache_destroy (&wcache);
        wrk_blobs_destroy (&blobs);
        wrk_device_destroy (&device);
        if (err.code == RXQ_E_INVAL)
            return s_usage_error ("%s", err.msg);
        fprintf (stderr, "rxq-worker: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    int status = wrk_agent_run (agent);
    wrk_agent_destroy (&agent);
    wrk_wcache_destroy (&wcache);
    wrk_blobs_destroy (&blobs);
    wrk_device_destroy (&device);
    return status;
}
