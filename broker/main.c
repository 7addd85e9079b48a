/*  rxq-broker: the cluster's broker process. See brk_broker.h. */
#include "brk_broker.h"
#include "cmn_config.h"
#include "cmn_log.h"
#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: rxq-broker [options]\n"
        "\n"
        "Takes jobs from rxq clients, persists them in Redis and leases them to\n"
        "rxq-worker processes (proto/rxq-protocol.md).\n"
        "\n"
        "  --bind ENDPOINT      ZeroMQ endpoint to bind (env RXQ_BIND; default tcp://*:5555)\n"
        "  --redis URL          redis://[:password@]host[:port][/db] (env RXQ_REDIS;\n"
        "                       default redis://127.0.0.1:6379)\n"
        "  --cluster NAME       Redis key namespace rxq:NAME: (env RXQ_CLUSTER; default 'default')\n"
        "  --heartbeat-ms N     heartbeat interval (default 1000)\n"
        "  --liveness N         intervals of silence before a worker is dead (default 3)\n"
        "  --max-attempts N     default attempts per job (default 3)\n"
        "  --hang-ms N          a worker whose device thread shows no life for N ms while\n"
        "                       running a job is hung: its jobs are requeued and it gets\n"
        "                       no new ones until it recovers (default 120000)\n"
        "  --data-dir DIR       keep the blob store (rxq put/get, model files) under\n"
        "                       DIR/blobs (env RXQ_DATA_DIR; default: no blob store)\n"
        "  --keep-ended S       keep an ended job (record, events, idempotency key) in\n"
        "                       Redis S seconds after it ends; 0 for ever (env\n"
        "                       RXQ_KEEP_ENDED; default 604800, a week)\n"
        "  --log-level LEVEL    error, warn, info or debug (env RXQ_LOG_LEVEL; default info)\n"
        "  --help, --version\n"
        "\n"
        "Exit status: 0 after SIGINT/SIGTERM, 2 when it cannot start (Redis unreachable,\n"
        "endpoint in use), 64 for bad arguments.\n");
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "bind", required_argument, 0, 'b' },
        { "redis", required_argument, 0, 'r' },
        { "cluster", required_argument, 0, 'c' },
        { "heartbeat-ms", required_argument, 0, 'H' },
        { "liveness", required_argument, 0, 'L' },
        { "max-attempts", required_argument, 0, 'm' },
        { "hang-ms", required_argument, 0, 'g' },
        { "log-level", required_argument, 0, 'l' },
        { "data-dir", required_argument, 0, 'D' },
        { "keep-ended", required_argument, 0, 'k' },
        { "help", no_argument, 0, 'h' },
        { "version", no_argument, 0, 'V' },
        { 0, 0, 0, 0 }
    };
    const char *bind = NULL, *redis = NULL, *cluster = NULL, *level = NULL;
    const char *hb = NULL, *liveness = NULL, *attempts = NULL, *hang = NULL;
    const char *data_dir = NULL, *keep = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (c) {
            case 'b': bind = optarg; break;
            case 'r': redis = optarg; break;
            case 'c': cluster = optarg; break;
            case 'H': hb = optarg; break;
            case 'L': liveness = optarg; break;
            case 'm': attempts = optarg; break;
            case 'g': hang = optarg; break;
            case 'l': level = optarg; break;
            case 'D': data_dir = optarg; break;
            case 'k': keep = optarg; break;
            case 'h': s_usage (stdout); return 0;
            case 'V': printf ("rxq-broker %s\n", RXQ_VERSION); return 0;
            default:
                fprintf (stderr, "rxq-broker: unknown or incomplete option '%s' (see --help)\n",
                         argv [optind - 1]);
                return 64;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "rxq-broker: unexpected argument '%s' (see --help)\n", argv [optind]);
        return 64;
    }
    brk_config_t cfg;
    brk_config_defaults (&cfg);
    cfg.bind = cmn_config_str (bind, "RXQ_BIND", cfg.bind);
    cfg.redis_url = cmn_config_str (redis, "RXQ_REDIS", cfg.redis_url);
    cfg.cluster = cmn_config_str (cluster, "RXQ_CLUSTER", cfg.cluster);
    cfg.data_dir = cmn_config_str (data_dir, "RXQ_DATA_DIR", NULL);
    keep = cmn_config_str (keep, "RXQ_KEEP_ENDED", NULL);
    level = cmn_config_str (level, "RXQ_LOG_LEVEL", "info");
    int lv = cmn_log_level_parse (level);
    cmn_err_t err = { 0 };
    long v;
    if (lv < 0) {
        fprintf (stderr, "rxq-broker: --log-level must be error, warn, info or debug, not '%s'\n",
                 level);
        return 64;
    }
    if (hb) {
        if (cmn_config_long (hb, 10, 60000, &v, "--heartbeat-ms", &err))
            goto usage;
        cfg.heartbeat_ms = (int) v;
    }
    if (liveness) {
        if (cmn_config_long (liveness, 1, 100, &v, "--liveness", &err))
            goto usage;
        cfg.liveness = (int) v;
    }
    if (attempts) {
        if (cmn_config_long (attempts, 1, 100, &v, "--max-attempts", &err))
            goto usage;
        cfg.max_attempts = (uint64_t) v;
    }
    if (hang) {
        if (cmn_config_long (hang, 100, 86400000, &v, "--hang-ms", &err))
            goto usage;
        cfg.hang_ms = (int) v;
    }
    if (keep) {
        //  At most ten years: Redis takes EXPIRE seconds as a signed 64-bit
        //  count, and a decade is for ever for a job record.
        if (cmn_config_long (keep, 0, 10L * 366 * 86400, &v, "--keep-ended", &err))
            goto usage;
        cfg.keep_ended_s = (uint64_t) v;
    }
    cmn_log_init ("broker", (cmn_log_level_t) lv);
    zsys_init ();
    zsys_handler_set (NULL);
    zsys_catch_interrupts ();
    brk_broker_t *broker = brk_broker_new (&cfg, &err);
    if (!broker) {
        fprintf (stderr, "rxq-broker: %s\n", err.msg);
        return 2;
    }
    int rc = brk_broker_run (broker);
    brk_broker_destroy (&broker);
    return rc;
usage:
    fprintf (stderr, "rxq-broker: %s\n", err.msg);
    return 64;
}
