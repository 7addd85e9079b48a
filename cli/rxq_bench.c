/*  rxq_bench: see rxq_bench.h. */
#include "rxq_bench.h"
#include "rxq_client.h"
#include "rxq_cmd.h"
#include "rxq_print.h"
#include "rxq_report.h"
#include "cmn_codec.h"
#include "cmn_kind.h"
#include "cmn_proto.h"
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Workers one run may pin jobs to.
#define S_MAX_WORKERS 256
//  Records `rxq bench report` reads at most.
#define S_REPORT_MAX 100000


//  Sends COMMAND with BODY on CLIENT; returns the exit code, FINAL set on 0.
static int
s_request (rxq_args_t *o, rxq_client_t *client, int command, msgpack_sbuffer *body,
           cmn_body_t *final)
{
    cmn_err_t err;
    if (rxq_client_request (client, command, body ? body->data : NULL, body ? body->size : 0,
                            NULL, NULL, o->timeout_ms, final, &err) == 0)
        return RXQ_EXIT_OK;
    return rxq_args_error (rxq_client_error_from_broker (client) ? RXQ_EXIT_BROKER
                                                          : RXQ_EXIT_UNREACHABLE, "%s", err.msg);
}

//  ---------------------------------------------------------------------
//  --since

int
rxq_bench_parse_since (const char *text, uint64_t now_ms, uint64_t *from_ms, cmn_err_t *err)
{
    size_t n = strlen (text);
    char *end = NULL;
    if (n >= 2 && strchr ("smhd", text [n - 1])) {
        errno = 0;
        unsigned long long v = strtoull (text, &end, 10);
        if (text [0] != '-' && text [0] != '+' && end == text + n - 1 && !errno && v <= 100000) {
            uint64_t unit = text [n - 1] == 's' ? 1000 : text [n - 1] == 'm' ? 60000
                          : text [n - 1] == 'h' ? 3600000 : 86400000;
            uint64_t back = (uint64_t) v * unit;
            *from_ms = back < now_ms ? now_ms - back : 1;
            return 0;
        }
    }
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    const char *rest = strptime (text, "%Y-%m-%d", &tm);
    if (rest && (*rest == 0 || ((*rest == 'T' || *rest == ' ')
                                && (rest = strptime (rest + 1, "%H:%M", &tm)) && *rest == 0))) {
        time_t t = timegm (&tm);
        if (t > 0) {
            *from_ms = (uint64_t) t * 1000;
            return 0;
        }
    }
    uint64_t ms;
    if (rxq_args_uint (text, 1, (uint64_t) INT64_MAX, &ms)) {
        *from_ms = ms;
        return 0;
    }
    return cmn_err_set (err, RXQ_E_INVAL, "--since must be a duration (90s, 30m, 12h, 7d), a "
                        "UTC date (2026-12-01 or 2026-12-01T08:30) or Unix milliseconds, not "
                        "'%.64s'", text);
}

//  ---------------------------------------------------------------------
//  Running a kind on every worker, or on one

//  A job submitted for one worker.
typedef struct {
    char worker_id [24];        // the worker it is pinned to
    char worker [128];          // its name
    char device [128];          // its device's name
    char job [RXQ_MAX_ID_LEN + 1];  // job id; "" when the submission failed
    const char *pin;            // worker_id, or worker when no other has that name
} s_run_t;

//  Prints the summary line of a finished bench job.
static void
s_print_bench (const s_run_t *run, const msgpack_object *job)
{
    char state [32] = "?";
    cmn_codec_get_cstr (job, "state", state, sizeof state, NULL);
    const msgpack_object *result = NULL, *fig = NULL;
    double gflops = 0, gbps = 0, peak = 0;
    if (cmn_codec_get_map (job, "result", &result, NULL) == 0) {
        if (cmn_codec_get_map (result, "figures", &fig, NULL) == 0) {
            cmn_codec_get_double (fig, "gflops", &gflops, NULL);
            cmn_codec_get_double (fig, "gbps", &gbps, NULL);
            cmn_codec_get_double (fig, "peak_fraction", &peak, NULL);
        }
        else {
            rxq_print_find_number (result, "gflops_median", &gflops);
            rxq_print_find_number (result, "gbps_median", &gbps);
        }
    }
    char peak_s [16] = "-";
    if (peak > 0)
        snprintf (peak_s, sizeof peak_s, "%.0f%%", peak * 100);
    if (strcmp (state, "succeeded") == 0)
        printf ("%-16.16s %-32.32s %-10s %10.2f %10.2f %6s  %s\n", run->worker, run->device,
                state, gflops, gbps, peak_s, run->job);
    else {
        char msg [200] = "";
        const msgpack_object *error = NULL;
        if (cmn_codec_get_map (job, "error", &error, NULL) == 0)
            cmn_codec_get_cstr (error, "message", msg, sizeof msg, NULL);
        printf ("%-16.16s %-32.32s %-10s %10s %10s %6s  %s %s\n", run->worker, run->device,
                state, "-", "-", "-", run->job, msg);
    }
}

//  Prints the summary line of a finished tune job: the entry it found.
static void
s_print_tune (const s_run_t *run, const msgpack_object *job)
{
    char state [32] = "?";
    cmn_codec_get_cstr (job, "state", state, sizeof state, NULL);
    const msgpack_object *result = NULL, *entry = NULL;
    double gflops = 0, gbps = 0;
    if (strcmp (state, "succeeded") != 0
    ||  cmn_codec_get_map (job, "result", &result, NULL) != 0) {
        char msg [200] = "";
        const msgpack_object *error = NULL;
        if (cmn_codec_get_map (job, "error", &error, NULL) == 0)
            cmn_codec_get_cstr (error, "message", msg, sizeof msg, NULL);
        printf ("%-16.16s %-32.32s %-10s %s %s\n", run->worker, run->device, state, run->job, msg);
        return;
    }
    cmn_codec_get_double (result, "gflops", &gflops, NULL);
    cmn_codec_get_double (result, "gbps", &gbps, NULL);
    printf ("%-16.16s %-32.32s %-10s %10.2f %10.2f  %s  ", run->worker, run->device, state,
            gflops, gbps, run->job);
    if (cmn_codec_get_map (result, "entry", &entry, NULL) == 0)
        cmn_codec_print_json (stdout, entry);
    printf ("\n");
}

//  Submits KIND with PARAMS (packed map of NPARAMS entries) to every
//  matching worker, waits for every job, prints the summary.
static int
s_run_on_workers (rxq_args_t *o, const cmn_kind_t *kind, const char *params,
                  size_t params_len, uint32_t nparams, const char *only,
                  uint64_t queue_timeout_ms)
{
    int code = 0;
    rxq_client_t *client = rxq_args_connect (o, &code);
    if (!client)
        return code;
    cmn_body_t final;
    if ((code = s_request (o, client, RXQ_CMD_WORKERS, NULL, &final)) != 0) {
        rxq_client_destroy (&client);
        return code;
    }
    //  The workers to run on: live, running the kind, and the named one
    //  when --worker was given (by name or id).
    s_run_t *runs = calloc (S_MAX_WORKERS, sizeof *runs);
    size_t nruns = 0;
    const msgpack_object *workers = NULL;
    cmn_codec_get_array (&final.root, "workers", &workers, NULL);
    for (uint32_t i = 0; runs && workers && i < workers->via.array.size && nruns < S_MAX_WORKERS;
         i++) {
        const msgpack_object *w = &workers->via.array.ptr [i], *kinds = NULL, *dev = NULL;
        s_run_t *r = &runs [nruns];
        memset (r, 0, sizeof *r);
        cmn_codec_get_cstr (w, "id", r->worker_id, sizeof r->worker_id, NULL);
        cmn_codec_get_cstr (w, "name", r->worker, sizeof r->worker, NULL);
        if (cmn_codec_get_map (w, "device", &dev, NULL) == 0)
            cmn_codec_get_cstr (dev, "name", r->device, sizeof r->device, NULL);
        bool runs_kind = false;
        if (cmn_codec_get_array (w, "kinds", &kinds, NULL) == 0)
            for (uint32_t k = 0; k < kinds->via.array.size; k++)
                runs_kind |= cmn_codec_str_eq (&kinds->via.array.ptr [k], kind->name);
        if (!r->worker_id [0] || !runs_kind)
            continue;
        if (only && strcmp (only, r->worker) != 0 && strcmp (only, r->worker_id) != 0)
            continue;
        nruns++;
    }
    //  Pin each job by the worker's name when no other live worker has
    //  it: a worker that loses the broker for a moment reconnects on a new
    //  socket, with a new id, and a job pinned to the old id would wait
    //  for its queue timeout. Names shared by several workers pin by id.
    for (size_t i = 0; runs && i < nruns; i++) {
        size_t same = 0;
        for (uint32_t j = 0; j < workers->via.array.size; j++) {
            char name [128] = "";
            cmn_codec_get_cstr (&workers->via.array.ptr [j], "name", name, sizeof name, NULL);
            same += strcmp (name, runs [i].worker) == 0;
        }
        runs [i].pin = runs [i].worker [0] && same == 1 ? runs [i].worker : runs [i].worker_id;
    }
    cmn_body_free (&final);
    if (!runs) {
        rxq_client_destroy (&client);
        return rxq_args_error (RXQ_EXIT_BROKER, "out of memory");
    }
    if (nruns == 0) {
        free (runs);
        rxq_client_destroy (&client);
        if (only)
            return rxq_args_error (RXQ_EXIT_BROKER, "no live worker named '%s' runs %s (see rxq workers)",
                            only, kind->name);
        return rxq_args_error (RXQ_EXIT_BROKER, "no live worker runs %s (see rxq workers)", kind->name);
    }
    //  Submit all first, so the workers run at the same time.
    size_t failed = 0;
    for (size_t i = 0; i < nruns; i++) {
        msgpack_sbuffer body;
        msgpack_sbuffer_init (&body);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 4);
        cmn_pack_kv_str (&pk, "kind", kind->name);
        cmn_pack_key (&pk, "params");
        msgpack_pack_map (&pk, nparams);
        msgpack_sbuffer_write (&body, params ? params : "", params_len);
        cmn_pack_key (&pk, "require");
        msgpack_pack_map (&pk, 1);
        cmn_pack_kv_str (&pk, "worker", runs [i].pin);
        cmn_pack_kv_uint (&pk, "queue_timeout_ms", queue_timeout_ms);
        int rc = s_request (o, client, RXQ_CMD_SUBMIT, &body, &final);
        msgpack_sbuffer_destroy (&body);
        if (rc != 0) {
            if (rc == RXQ_EXIT_UNREACHABLE) {
                free (runs);
                rxq_client_destroy (&client);
                return rc;
            }
            failed++;
            continue;
        }
        cmn_codec_get_cstr (&final.root, "id", runs [i].job, sizeof runs [i].job, NULL);
        cmn_body_free (&final);
        fprintf (stderr, "%s: %s on %s (%s)\n", runs [i].job, kind->name, runs [i].worker,
                 runs [i].device [0] ? runs [i].device : "no device");
    }
    //  Then wait for each in turn: they run in parallel meanwhile.
    bool tune = strcmp (kind->name, "tune") == 0;
    if (!o->json) {
        if (tune)
            printf ("%-16s %-32s %-10s %10s %10s  %s  %s\n", "WORKER", "DEVICE", "STATE",
                    "GFLOPS", "GB/S", "JOB", "ENTRY (stored for the device)");
        else
            printf ("%-16s %-32s %-10s %10s %10s %6s  %s\n", "WORKER", "DEVICE", "STATE",
                    "GFLOPS", "GB/S", "PEAK", "JOB");
    }
    else
        printf ("[");
    bool first = true;
    for (size_t i = 0; i < nruns; i++) {
        if (!runs [i].job [0])
            continue;
        msgpack_sbuffer body;
        msgpack_sbuffer_init (&body);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 1);
        cmn_pack_kv_str (&pk, "id", runs [i].job);
        int rc = s_request (o, client, RXQ_CMD_WATCH, &body, &final);
        msgpack_sbuffer_destroy (&body);
        if (rc != 0) {
            failed++;
            if (rc == RXQ_EXIT_UNREACHABLE)
                break;
            continue;
        }
        const msgpack_object *job = NULL;
        if (cmn_codec_get_map (&final.root, "job", &job, NULL) == 0) {
            char state [32] = "";
            cmn_codec_get_cstr (job, "state", state, sizeof state, NULL);
            if (strcmp (state, "succeeded") != 0)
                failed++;
            if (o->json) {
                printf ("%s", first ? "" : ",");
                cmn_codec_print_json (stdout, job);
                first = false;
            }
            else
            if (tune)
                s_print_tune (&runs [i], job);
            else
                s_print_bench (&runs [i], job);
        }
        else
            failed++;
        cmn_body_free (&final);
    }
    if (o->json)
        printf ("]\n");
    fflush (stdout);
    free (runs);
    rxq_client_destroy (&client);
    if (failed)
        return rxq_args_error (RXQ_EXIT_JOB, "%zu of %zu job%s did not succeed", failed, nruns,
                        nruns == 1 ? "" : "s");
    return RXQ_EXIT_OK;
}

//  Parses "[KIND] [key=value...] [--all-workers | --worker NAME]" and runs.
//  KIND_NAME is NULL for bench (the first argument names it), "tune" for
//  tune.
static int
s_run_command (rxq_args_t *o, int argc, char **argv, const char *cmd,
               const char *kind_name, const char *help)
{
    enum { O_ALL = 1, O_WORKER, O_QUEUE_TIMEOUT };
    static const struct option options [] = {
        { "all-workers", no_argument, NULL, O_ALL },
        { "worker", required_argument, NULL, O_WORKER },
        { "queue-timeout", required_argument, NULL, O_QUEUE_TIMEOUT },
        RXQ_ARGS_COMMON, { NULL, 0, NULL, 0 }
    };
    bool all = false;
    const char *only = NULL;
    uint64_t queue_timeout_s = 600;
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        if (c == O_ALL)
            all = true;
        else
        if (c == O_WORKER) {
            if (!*optarg || strlen (optarg) >= 128)
                return rxq_args_error (RXQ_EXIT_USAGE, "--worker needs a worker name or id of 1 to 127 "
                                "bytes");
            only = optarg;
        }
        else
        if (c == O_QUEUE_TIMEOUT) {
            if (!rxq_args_uint (optarg, 1, 86400, &queue_timeout_s))
                return rxq_args_error (RXQ_EXIT_USAGE, "--queue-timeout must be 1 to 86400 seconds, "
                                "not '%s'", optarg);
        }
        else {
            o->cmd = cmd;
            int code = rxq_args_common (o, c, argv, help);
            if (code >= 0)
                return code;
        }
    }
    if (all && only)
        return rxq_args_error (RXQ_EXIT_USAGE, "--all-workers and --worker exclude each other");
    int first = optind;
    if (!kind_name) {
        if (first >= argc)
            return rxq_args_error (RXQ_EXIT_USAGE, "bench needs a kind: bench.gemm, bench.gemv, "
                            "bench.kernels, bench.llm or bench.device, or 'report' (see rxq "
                            "bench --help)");
        kind_name = argv [first++];
        if (strncmp (kind_name, "bench.", 6) != 0 || !cmn_kind_find (kind_name, strlen (kind_name)))
            return rxq_args_error (RXQ_EXIT_USAGE, "'%.64s' is not a benchmark kind (bench.gemm, "
                            "bench.gemv, bench.kernels, bench.llm, bench.device; or bench "
                            "report)",
                            kind_name);
    }
    const cmn_kind_t *kind = cmn_kind_find (kind_name, strlen (kind_name));
    assert (kind);
    //  Parameters are checked here exactly as the broker will.
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    msgpack_packer ppk;
    msgpack_packer_init (&ppk, &params, msgpack_sbuffer_write);
    cmn_err_t err;
    uint32_t nparams = 0;
    for (int i = first; i < argc; i++, nparams++)
        if (cmn_kind_pack_arg (kind, argv [i], &ppk, &err) != 0) {
            msgpack_sbuffer_destroy (&params);
            return rxq_args_error (RXQ_EXIT_USAGE, "%s", err.msg);
        }
    msgpack_sbuffer whole;
    msgpack_sbuffer_init (&whole);
    msgpack_packer wpk;
    msgpack_packer_init (&wpk, &whole, msgpack_sbuffer_write);
    msgpack_pack_map (&wpk, nparams);
    msgpack_sbuffer_write (&whole, params.data ? params.data : "", params.size);
    cmn_body_t check;
    int rc = cmn_body_decode (&check, whole.data, whole.size, &cmn_codec_limits_default, &err);
    if (rc == 0) {
        rc = cmn_kind_validate (kind, &check.root, &err);
        cmn_body_free (&check);
    }
    msgpack_sbuffer_destroy (&whole);
    if (rc != 0) {
        msgpack_sbuffer_destroy (&params);
        return rxq_args_error (RXQ_EXIT_USAGE, "%s", err.msg);
    }
    rc = s_run_on_workers (o, kind, params.data, params.size, nparams, only,
                           queue_timeout_s * 1000);
    msgpack_sbuffer_destroy (&params);
    return rc;
}

//  ---------------------------------------------------------------------
//  rxq bench report

static const char *s_report_help =
"usage: rxq bench report [--kind K] [--since T] [--limit N] [--html FILE]\n"
"                        [--jsonl FILE] [--csv FILE]\n"
"\n"
"Reads the farm's benchmark records through the broker and prints them side\n"
"by side: one section per benchmark (kind and parameters), one row per device\n"
"and run, each run's headline figure (GFLOPS for bench.gemm and bench.device,\n"
"GB/s otherwise) also relative to the best run of its section. With --json\n"
"the records go to stdout as JSON lines instead of the table.\n"
"\n"
"  --kind K       only records of kind K (bench.gemm, bench.gemv, ...)\n"
"  --since T      only records finished since T: a duration back from now\n"
"                 (90s, 30m, 12h, 7d), a UTC date (2026-12-01, 2026-12-01T08:30)\n"
"                 or Unix milliseconds\n"
"  --limit N      at most N records, oldest first (default and most 100000)\n"
"  --html FILE    also write a self-contained HTML report with SVG plots\n"
"  --jsonl FILE   also write the records as JSON lines\n"
"  --csv FILE     also write one CSV row per record\n"
"\n"
"Exit: 0 done; 2 the broker refused; 3 broker unreachable; 64 usage, or a\n"
"file could not be written.\n";

//  Writes FILE with WRITER; returns the exit code.
static int
s_write_file (const char *file, rxq_report_t *report, int what)
{
    FILE *f = fopen (file, "w");
    if (!f)
        return rxq_args_error (RXQ_EXIT_USAGE, "cannot write %s: %s", file, strerror (errno));
    if (what == 0)
        rxq_report_html (report, f, "rxq benchmark report");
    else
    if (what == 1)
        rxq_report_jsonl (report, f);
    else
        rxq_report_csv (report, f);
    if (fclose (f) != 0)
        return rxq_args_error (RXQ_EXIT_USAGE, "cannot write %s: %s", file, strerror (errno));
    fprintf (stderr, "wrote %s (%zu record%s)\n", file, rxq_report_size (report),
             rxq_report_size (report) == 1 ? "" : "s");
    return RXQ_EXIT_OK;
}

static int
s_report (rxq_args_t *o, int argc, char **argv)
{
    enum { O_KIND = 1, O_SINCE, O_LIMIT, O_HTML, O_JSONL, O_CSV };
    static const struct option options [] = {
        { "kind", required_argument, NULL, O_KIND },
        { "since", required_argument, NULL, O_SINCE },
        { "limit", required_argument, NULL, O_LIMIT },
        { "html", required_argument, NULL, O_HTML },
        { "jsonl", required_argument, NULL, O_JSONL },
        { "csv", required_argument, NULL, O_CSV },
        RXQ_ARGS_COMMON, { NULL, 0, NULL, 0 }
    };
    const char *kind = NULL, *files [3] = { NULL, NULL, NULL };
    uint64_t from_ms = 0, limit = S_REPORT_MAX;
    cmn_err_t err;
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        switch (c) {
            case O_KIND:
                if (strncmp (optarg, "bench.", 6) != 0 || !cmn_kind_find (optarg, strlen (optarg)))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--kind must be a benchmark kind (bench.gemm, "
                                    "bench.gemv, bench.kernels, bench.llm, bench.device), not '%.64s'",
                                    optarg);
                kind = optarg;
                break;
            case O_SINCE:
                if (rxq_bench_parse_since (optarg, (uint64_t) zclock_time (), &from_ms, &err))
                    return rxq_args_error (RXQ_EXIT_USAGE, "%s", err.msg);
                break;
            case O_LIMIT:
                if (!rxq_args_uint (optarg, 1, S_REPORT_MAX, &limit))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--limit must be 1 to %d, not '%s'",
                                    S_REPORT_MAX, optarg);
                break;
            case O_HTML:
            case O_JSONL:
            case O_CSV:
                if (!*optarg)
                    return rxq_args_error (RXQ_EXIT_USAGE, "--%s needs a file name",
                                    options [c - 1].name);
                files [c - O_HTML] = optarg;
                break;
            default: {
                o->cmd = "bench report";
                int code = rxq_args_common (o, c, argv, s_report_help);
                if (code >= 0)
                    return code;
            }
        }
    }
    if (optind != argc)
        return rxq_args_error (RXQ_EXIT_USAGE, "unexpected argument '%s' (see rxq bench report --help)",
                        argv [optind]);
    int code = 0;
    rxq_client_t *client = rxq_args_connect (o, &code);
    if (!client)
        return code;
    rxq_report_t *report = rxq_report_new ();
    char after [48] = "";
    bool more = true;
    uint64_t dups = 0, skipped = 0;
    while (more && report && rxq_report_size (report) < limit) {
        msgpack_sbuffer body;
        msgpack_sbuffer_init (&body);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 1 + (kind != NULL) + (after [0] ? 1 : from_ms > 0));
        cmn_pack_kv_uint (&pk, "limit", 1000);
        if (kind)
            cmn_pack_kv_str (&pk, "kind", kind);
        if (after [0])
            cmn_pack_kv_str (&pk, "after", after);
        else
        if (from_ms)
            cmn_pack_kv_uint (&pk, "from_ms", from_ms);
        cmn_body_t final;
        code = s_request (o, client, RXQ_CMD_RECORDS, &body, &final);
        msgpack_sbuffer_destroy (&body);
        if (code != 0)
            break;
        const msgpack_object *records = NULL;
        uint64_t sk = 0;
        more = false;
        cmn_codec_get_bool (&final.root, "more", &more, NULL);
        cmn_codec_get_uint (&final.root, "skipped", &sk, NULL);
        skipped += sk;
        char last [48] = "";
        cmn_codec_get_cstr (&final.root, "last", last, sizeof last, NULL);
        if (cmn_codec_get_array (&final.root, "records", &records, NULL) == 0)
            for (uint32_t i = 0; i < records->via.array.size && rxq_report_size (report) < limit;
                 i++) {
                int rc = rxq_report_add (report, &records->via.array.ptr [i], &err);
                if (rc == 1)
                    dups++;
                else
                if (rc < 0)
                    skipped++;
            }
        cmn_body_free (&final);
        //  A page that did not move the cursor would loop for ever.
        if (!last [0] || strcmp (last, after) == 0)
            more = false;
        snprintf (after, sizeof after, "%s", last);
    }
    rxq_client_destroy (&client);
    if (!report)
        return rxq_args_error (RXQ_EXIT_BROKER, "out of memory");
    if (code == 0) {
        if (dups || skipped)
            fprintf (stderr, "%" PRIu64 " duplicate record%s dropped, %" PRIu64 " malformed "
                     "skipped\n", dups, dups == 1 ? "" : "s", skipped);
        if (o->json)
            rxq_report_jsonl (report, stdout);
        else
            rxq_report_table (report, stdout);
        fflush (stdout);
        for (int i = 0; i < 3 && code == 0; i++)
            if (files [i])
                code = s_write_file (files [i], report, i);
    }
    rxq_report_destroy (&report);
    return code;
}

//  ---------------------------------------------------------------------
//  Entry points

static void
s_bench_help (FILE *out)
{
    fputs ("usage: rxq bench KIND [key=value...] [--all-workers | --worker NAME]\n"
           "                 [--queue-timeout SEC]\n"
           "       rxq bench report --help\n"
           "\n"
           "Runs one benchmark job of KIND on every live worker that runs it (the\n"
           "default, or --all-workers), or on the worker named by --worker (name or\n"
           "id). Each job is pinned to its worker (requirement `worker`), all run at\n"
           "once, and a summary prints when all have ended: worker, device, state,\n"
           "GFLOPS, GB/s, fraction of the device's measured peak, job id (--json: the\n"
           "array of job records). The broker appends each record to the farm's\n"
           "stream; rxq bench report reads them back.\n"
           "\n"
           "  --all-workers        every live worker that runs KIND (default)\n"
           "  --worker NAME        only this worker (its name or id)\n"
           "  --queue-timeout SEC  a job not started by then fails (default 600)\n"
           "\n"
           "Kinds and their parameters:\n", out);
    for (const cmn_kind_t *k = cmn_kinds; k->name; k++)
        if (strncmp (k->name, "bench.", 6) == 0) {
            fprintf (out, "  %-14s %s\n", k->name, k->help);
            for (const cmn_param_spec_t *p = k->params; p && p->name; p++)
                fprintf (out, "      %-8s %s\n", p->name, p->help ? p->help : "");
        }
    fputs ("\nExit: 0 every job succeeded; 1 some did not; 2 the broker refused, or no live\n"
           "worker runs KIND; 3 broker unreachable; 64 usage.\n", out);
}

static const char *s_tune_help =
"usage: rxq tune [key=value...] [--all-workers | --worker NAME] [--queue-timeout SEC]\n"
"\n"
"Runs the `tune` job on every live worker (the default, or --all-workers) or on\n"
"the one named by --worker: each searches SGEMM and quantized GEMV tuning\n"
"parameters on its device and returns the fastest correct entry. The broker\n"
"stores each entry for its device (Redis hash rxq:<cluster>:tune, field\n"
"\"vendor|name|driver\"), replacing any earlier one, and sends it to every live\n"
"worker with that device; workers started later get it when they register.\n"
"Prints, per worker, the SGEMM GFLOPS and GEMV GB/s of the entry and the\n"
"entry itself (--json: the array of job records).\n"
"\n"
"  n=N            SGEMM size searched (64 to 4096, default 256)\n"
"  type=T         GEMV quant type (q4_0, q4_1, q8_0, q4_k, q6_k; default q4_0)\n"
"  rows=R cols=C  GEMV shape (default 1024 x 1024)\n"
"  budget_ms=B    search time, split between the two (100 to 600000, default 4000)\n"
"  --all-workers, --worker NAME, --queue-timeout SEC   as for rxq bench\n"
"\n"
"Exit: 0 every job succeeded; 1 some did not; 2 the broker refused, or no live\n"
"worker runs tune; 3 broker unreachable; 64 usage.\n";

int
rxq_bench_cmd (rxq_args_t *o, int argc, char **argv)
{
    assert (o && argc >= 1);
    //  The first word that is not an option (nor an option's value) says
    //  which: `rxq bench --json report` is a report too.
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i];
        if (a [0] != '-') {
            if (strcmp (a, "report") == 0) {
                //  Drop the word; what comes before it are options.
                char *word = argv [i];
                memmove (argv + 2, argv + 1, (size_t) (i - 1) * sizeof *argv);
                argv [1] = word;
                return s_report (o, argc - 1, argv + 1);
            }
            break;
        }
        if (!strchr (a, '=') && (!strcmp (a, "--broker") || !strcmp (a, "--timeout")
                              || !strcmp (a, "--worker") || !strcmp (a, "--queue-timeout")))
            i++;
    }
    for (int i = 1; i < argc; i++)
        if (strcmp (argv [i], "--help") == 0) {
            s_bench_help (stdout);
            return RXQ_EXIT_OK;
        }
    return s_run_command (o, argc, argv, "bench", NULL, "");
}

int
rxq_bench_tune_cmd (rxq_args_t *o, int argc, char **argv)
{
    assert (o && argc >= 1);
    return s_run_command (o, argc, argv, "tune", "tune", s_tune_help);
}
