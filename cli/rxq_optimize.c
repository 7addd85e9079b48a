/*  rxq_optimize: `rxq optimize`. See rxq_optimize.h and docs/optimize.md. */
#include "rxq_optimize.h"
#include "rxq_cmd.h"
#include "cmn_blob.h"
#include "cmn_codec.h"
#include "cmn_onnx.h"
#include "cmn_opt.h"
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_help (FILE *out)
{
    fputs ("usage: rxq optimize MODEL.onnx [--local] [-O0|-O1|-O2] [--enable PASS]...\n"
           "                    [--disable PASS]... [--layout nhwc|nchw] [--target DEVICE]\n"
           "                    [--report-json FILE] -o OUT.onnx\n"
           "\n"
           "Optimizes an ONNX model and writes it to OUT.onnx with a report of what\n"
           "changed: node counts by type, FLOPs and activation memory before and\n"
           "after, the passes with their rewrites, the time.\n"
           "Without --local the `optimize` job runs on a worker: MODEL goes to the\n"
           "broker's blob store (nothing is sent when the store has it; MODEL may\n"
           "also be the name of a blob there, 64 hex digits), the worker uploads\n"
           "the optimized model to the store, and it is downloaded into OUT.onnx.\n"
           "  --local            run the optimizer in this process\n"
           "  -O0, -O1, -O2      level: 0 read, validate and write; 1 clean-ups and\n"
           "                     folding (default); 2 also fusions\n"
           "  --enable PASS      run PASS whatever the level (repeatable)\n"
           "  --disable PASS     never run PASS (repeatable)\n"
           "  --report-json FILE with --local: write the report as JSON to FILE\n"
           "  --json             print the report (or the job) as JSON on stdout\n"
           "  --layout nhwc      convert 2-D Conv and pooling to rxq's NHWC operators\n"
           "                     (com.rxq Nhwc*) and eliminate the transposes; nchw:\n"
           "                     never (docs/optimize.md \"Layout\")\n"
           "  --target DEVICE    run on a worker whose name is DEVICE or whose device\n"
           "                     name contains it (any case); without --layout the\n"
           "                     worker's device decides the layout\n"
           "  -o OUT.onnx        where the optimized model goes\n"
           "\n"
           "Passes:\n", out);
    for (int p = 0; p < CMN_OPT_NPASSES; p++)
        fprintf (out, "  %-15s %s\n", cmn_opt_pass_name ((cmn_opt_pass_t) p),
                 cmn_opt_pass_help ((cmn_opt_pass_t) p));
}

static int
s_fail (int code, const char *what, const char *detail)
{
    fprintf (stderr, "rxq: optimize: %s%s\n", what, detail ? detail : "");
    return code;
}

//  Appends NAME to the comma list LIST (SIZE bytes). 0 or -1 (too long).
static int
s_list_add (char *list, size_t size, const char *name)
{
    size_t n = strlen (list);
    int w = snprintf (list + n, size - n, "%s%s", n ? "," : "", name);
    return w < 0 || (size_t) w >= size - n ? -1 : 0;
}

//  Absolute form of PATH, which need not exist (its directory must).
static int
s_absolute (const char *path, char out [PATH_MAX])
{
    if (realpath (path, out))
        return 0;
    char tmp [PATH_MAX], dir [PATH_MAX];
    snprintf (tmp, sizeof tmp, "%s", path);
    char *base = basename (tmp);
    char tmp2 [PATH_MAX];
    snprintf (tmp2, sizeof tmp2, "%s", path);
    if (!realpath (dirname (tmp2), dir))
        return -1;
    return snprintf (out, PATH_MAX, "%s/%s", dir, base) >= PATH_MAX ? -1 : 0;
}

int
rxq_optimize_parse (bool json, int argc, char **argv, rxq_optimize_args_t *a)
{
    enum { OPT_LOCAL = 256, OPT_ENABLE, OPT_DISABLE, OPT_REPORT, OPT_HELP, OPT_JSON, OPT_LAYOUT,
           OPT_TARGET };
    static const struct option options [] = {
        { "local", no_argument, NULL, OPT_LOCAL },
        { "enable", required_argument, NULL, OPT_ENABLE },
        { "disable", required_argument, NULL, OPT_DISABLE },
        { "report-json", required_argument, NULL, OPT_REPORT },
        { "help", no_argument, NULL, OPT_HELP },
        { "json", no_argument, NULL, OPT_JSON },
        { "layout", required_argument, NULL, OPT_LAYOUT },
        { "target", required_argument, NULL, OPT_TARGET },
        { NULL, 0, NULL, 0 }
    };
    memset (a, 0, sizeof *a);
    a->json = json;
    a->level = 1;
    const char *out = NULL;
    opterr = 0;
    optind = 0;     // GNU: 0 re-initialises getopt (argv [0] is skipped)
    int c;
    while ((c = getopt_long (argc, argv, ":O:o:", options, NULL)) != -1) {
        cmn_opt_pass_t p;
        switch (c) {
            case 'O':
                if (strlen (optarg) != 1 || optarg [0] < '0' || optarg [0] > '2')
                    return s_fail (RXQ_EXIT_USAGE, "the level must be -O0, -O1 or -O2, not -O", optarg);
                a->level = optarg [0] - '0';
                break;
            case 'o': out = optarg; break;
            case OPT_LOCAL: a->local = true; break;
            case OPT_ENABLE:
            case OPT_DISABLE:
                if (cmn_opt_pass_parse (optarg, &p))
                    return s_fail (RXQ_EXIT_USAGE, "unknown pass (see rxq optimize --help): ", optarg);
                if (s_list_add (c == OPT_ENABLE ? a->enable : a->disable, sizeof a->enable, optarg))
                    return s_fail (RXQ_EXIT_USAGE, "too many passes listed", NULL);
                break;
            case OPT_REPORT: a->report_json = optarg; break;
            case OPT_JSON: a->json = true; break;
            case OPT_LAYOUT:
                if (strcmp (optarg, "nhwc") && strcmp (optarg, "nchw"))
                    return s_fail (RXQ_EXIT_USAGE, "--layout must be nhwc or nchw, not ", optarg);
                snprintf (a->layout, sizeof a->layout, "%s", optarg);
                break;
            case OPT_TARGET:
                if (!optarg [0] || strlen (optarg) >= sizeof a->target)
                    return s_fail (RXQ_EXIT_USAGE, "--target wants a worker or device name of 1 to 127 "
                                   "bytes, not: ", optarg);
                snprintf (a->target, sizeof a->target, "%s", optarg);
                break;
            case OPT_HELP:
                s_help (stdout);
                a->help = true;
                return -1;
            case ':':
                return s_fail (RXQ_EXIT_USAGE, "this option needs a value: ", argv [optind - 1]);
            default:
                return s_fail (RXQ_EXIT_USAGE, "unknown option: ", argv [optind - 1]);
        }
    }
    if (optind != argc - 1)
        return s_fail (RXQ_EXIT_USAGE, "give exactly one MODEL.onnx (see rxq optimize --help)", NULL);
    if (!out || !*out)
        return s_fail (RXQ_EXIT_USAGE, "-o OUT.onnx is required", NULL);
    if (a->target [0] && a->local)
        return s_fail (RXQ_EXIT_USAGE, "--target picks the worker that runs the job: not with --local "
                       "(use --layout)", NULL);
    if (a->report_json && !a->local)
        return s_fail (RXQ_EXIT_USAGE, "--report-json goes with --local (the job's result is the report)",
                       NULL);
    //  A blob name is kept as it is (the job's model); a file goes to the
    //  store, or is read here with --local.
    if (!a->local && cmn_blob_name_valid (argv [optind], strlen (argv [optind])))
        snprintf (a->model, sizeof a->model, "%s", argv [optind]);
    else
    if (s_absolute (argv [optind], a->model))
        return s_fail (RXQ_EXIT_IO, "cannot resolve the model's path: ", argv [optind]);
    if (s_absolute (out, a->output))
        return s_fail (RXQ_EXIT_IO, "the output's directory does not exist: ", out);
    return -1;
}

int
rxq_optimize_local (const rxq_optimize_args_t *a)
{
    cmn_opt_opts_t opts = cmn_opt_opts_default;
    opts.level = a->level;
    if (a->layout [0])
        opts.force [CMN_OPT_LAYOUT] = strcmp (a->layout, "nhwc") ? -1 : 1;
    for (int k = 0; k < 2; k++) {
        char list [1024];
        snprintf (list, sizeof list, "%s", k ? a->disable : a->enable);
        for (char *tok = strtok (list, ","); tok; tok = strtok (NULL, ",")) {
            cmn_opt_pass_t p;
            if (cmn_opt_pass_parse (tok, &p) == 0)
                opts.force [p] = k ? -1 : 1;
        }
    }
    cmn_err_t err;
    cmn_onnx_model_t *model = cmn_onnx_load (a->model, NULL, &err);
    if (!model) {
        fprintf (stderr, "rxq: %s: %s\n", a->model, err.msg);
        return RXQ_EXIT_IO;
    }
    cmn_opt_report_t report;
    if (cmn_opt_run (model, &opts, &report, &err)) {
        cmn_onnx_destroy (&model);
        fprintf (stderr, "rxq: %s: %s\n", a->model, err.msg);
        return RXQ_EXIT_IO;
    }
    if (cmn_onnx_save (model, a->output, &err)) {
        cmn_onnx_destroy (&model);
        fprintf (stderr, "rxq: %s\n", err.msg);
        return RXQ_EXIT_IO;
    }
    cmn_onnx_destroy (&model);
    char *js = cmn_opt_report_json (&report);
    int code = RXQ_EXIT_OK;
    if (a->report_json) {
        FILE *f = fopen (a->report_json, "w");
        bool ok = f && js && fprintf (f, "%s\n", js) >= 0;
        if (f && fclose (f))
            ok = false;
        if (!ok)
            code = s_fail (RXQ_EXIT_IO, "cannot write the report to ", a->report_json);
    }
    if (a->json && js)
        printf ("%s\n", js);
    else
        cmn_opt_report_print (&report, stderr);
    free (js);
    return code;
}

void
rxq_optimize_pack_params (const rxq_optimize_args_t *a, const char *model, msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2 + (a->enable [0] != 0) + (a->disable [0] != 0) + (a->layout [0] != 0)
                          + (a->target [0] != 0));
    cmn_pack_kv_str (pk, "model", model);
    cmn_pack_kv_uint (pk, "level", (uint64_t) a->level);
    if (a->enable [0])
        cmn_pack_kv_str (pk, "enable", a->enable);
    if (a->disable [0])
        cmn_pack_kv_str (pk, "disable", a->disable);
    if (a->layout [0])
        cmn_pack_kv_str (pk, "layout", a->layout);
    if (a->target [0])
        cmn_pack_kv_str (pk, "target", a->target);
}
