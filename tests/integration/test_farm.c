/*  test_farm: the benchmark farm end to end (issue 6), as real processes:
 *  redis-server, rxq-broker and rxq-worker on the default OpenCL device
 *  (PoCL here), driven by the `rxq` CLI.
 *    - rxq bench KIND --all-workers / --worker: one job per worker, each
 *      record appended to the rxq:<cluster>:bench stream;
 *    - rxq bench report: table, --kind, --json, and the HTML, JSON lines
 *      and CSV files;
 *    - bench.llm with the real SmolLM2: its record in the stream and the
 *      report;
 *    - rxq tune: the entry stored per device in rxq:<cluster>:tune, pushed
 *      to the live worker, and sent to a worker that registers later,
 *      which then builds its kernels with it.
 */
#include "itest.h"
#include "cmn_codec.h"
#include "support/tst_llm.h"

static itest_run_t s_run, s_run2;

static void
s_fini (void)
{
    itest_cleanup ();
}

TestSuite (farm, .fini = s_fini, .timeout = 300);


static redisReply *
s_redis (itest_cluster_t *c, const char *fmt, ...)
{
    redisContext *ctx = redisConnect ("127.0.0.1", c->redis_port);
    cr_assert (ctx && !ctx->err);
    va_list ap;
    va_start (ap, fmt);
    redisReply *r = redisvCommand (ctx, fmt, ap);
    va_end (ap);
    redisFree (ctx);
    cr_assert_not_null (r);
    return r;
}

static long long
s_xlen (itest_cluster_t *c)
{
    redisReply *r = s_redis (c, "XLEN rxq:default:bench");
    long long n = r->integer;
    freeReplyObject (r);
    return n;
}

static int
s_count (const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr (text, needle); p; p = strstr (p + 1, needle))
        n++;
    return n;
}

//  Asserts that the msgpack record RECORD [LEN] holds every field of a
//  farm record (worker/wrk_farm.h) and is of KIND.
static void
s_assert_complete (const char *record, size_t len, const char *kind)
{
    cmn_body_t body;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&body, record, len, &cmn_codec_limits_default, &err), 0,
                  "%s", err.msg);
    const char *fields [] = { "record_version", "kind", "device", "rxq_version",
                              "kernel_hash", "params", "seed", "tuning", "figures",
                              "kernels", "measured_peak" };
    for (size_t k = 0; k < sizeof fields / sizeof fields [0]; k++)
        cr_assert_not_null (cmn_codec_find (&body.root, fields [k]), "record lacks %s",
                            fields [k]);
    char text [64];
    cr_assert_eq (cmn_codec_get_cstr (&body.root, "kind", text, sizeof text, &err), 0);
    cr_assert_str_eq (text, kind);
    cmn_body_free (&body);
}

//  The "record" field of stream entry E (XRANGE's [id, fields]).
static const redisReply *
s_entry_record (const redisReply *e)
{
    const redisReply *f = e->element [1];
    for (size_t k = 0; k + 1 < f->elements; k += 2)
        if (!strcmp (f->element [k]->str, "record"))
            return f->element [k + 1];
    cr_assert_fail ("stream entry without a record");
    return NULL;
}

Test (farm, bench_on_every_worker_records_and_reports)
{
    itest_cluster_t c;
    itest_cluster_up (&c, 2);
    itest_run_t *r = &s_run;

    //  --timeout 60 everywhere: a loaded sanitizer run is slow.
    itest_rxq (r, 120000, "--broker", c.endpoint, "--timeout", "60", "bench", "bench.gemm", "n=64", "reps=2",
               "--all-workers");
    cr_assert_eq (r->code, 0, "rxq bench: %s\n%s", r->out, r->err);
    cr_assert_eq (s_count (r->out, "succeeded"), 2, "one line per worker:\n%s", r->out);
    cr_assert (strstr (r->out, "w1") && strstr (r->out, "w2"), "%s", r->out);
    cr_assert_eq (s_xlen (&c), 2, "one record per job in the stream");

    //  The stream entries: one job on each worker, the record complete.
    redisReply *x = s_redis (&c, "XRANGE rxq:default:bench - +");
    cr_assert_eq (x->elements, 2);
    bool seen [2] = { false, false };
    for (size_t i = 0; i < 2; i++) {
        redisReply *f = x->element [i]->element [1];
        const char *worker = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            if (!strcmp (f->element [k]->str, "worker"))
                worker = f->element [k + 1]->str;
        cr_assert (worker);
        seen [strcmp (worker, "w1") == 0 ? 0 : 1] = true;
        const redisReply *rec = s_entry_record (x->element [i]);
        s_assert_complete (rec->str, rec->len, "bench.gemm");
    }
    cr_assert (seen [0] && seen [1], "a record from each worker");
    freeReplyObject (x);

    itest_rxq (r, 120000, "--broker", c.endpoint, "--timeout", "60", "bench", "bench.gemv", "type=q8_0", "rows=256",
               "cols=256", "--worker", "w1");
    cr_assert_eq (r->code, 0, "rxq bench --worker: %s\n%s", r->out, r->err);
    cr_assert_eq (s_count (r->out, "succeeded"), 1, "%s", r->out);
    cr_assert_eq (s_xlen (&c), 3);
    //  Regression: jobs were pinned by worker id, which changes when a
    //  worker reconnects after a moment without the broker (seen under a
    //  loaded ASan run): the job then waited for its queue timeout. A
    //  worker whose name is unique is now pinned by name.
    char pinned [80] = "";
    cr_assert_eq (sscanf (r->err, "%79[^:]:", pinned), 1, "%s", r->err);
    itest_rxq (&s_run2, 10000, "--broker", c.endpoint, "--json", "status", pinned);
    cr_assert (strstr (s_run2.out, "\"require\":{\"worker\":\"w1\"}"), "%s", s_run2.out);

    //  A job that fails (the worker refuses the quant type): exit 1, one
    //  line on stderr besides the job's, and no record.
    itest_rxq (r, 60000, "--broker", c.endpoint, "--timeout", "60", "bench", "bench.gemv", "type=q9_9", "--worker",
               "w2");
    if (r->code != 1) {
        //  Seen twice in clean-clone ASan runs (the command ran out its 60
        //  s): a WATCH read in the turn its job ended (fixed, see
        //  spec::s5_4_watch_in_the_turn_its_job_ends_gets_final). Should it
        //  come back, show why.
        for (int i = 0; i < itest.nprocs; i++)
            if (!strcmp (itest.procs [i].name, "broker") || !strcmp (itest.procs [i].name, "w2"))
                fprintf (stderr, "--- %s log:\n%s\n", itest.procs [i].name,
                         itest_log (&itest.procs [i]));
    }
    cr_assert_eq (r->code, 1, "a failed job: %s\n%s", r->out, r->err);
    cr_assert (strstr (r->out, "failed"), "%s\n%s", r->out, r->err);
    cr_assert (strstr (r->err, "rxq: 1 of 1 job did not succeed"), "%s", r->err);
    cr_assert_eq (s_xlen (&c), 3, "no record for a failed job");

    itest_rxq (r, 10000, "--broker", c.endpoint, "--timeout", "60", "bench", "bench.gemm", "--worker", "nosuch");
    cr_assert_eq (r->code, 2, "no such worker: %s", r->err);
    itest_assert_one_error_line (r);
    cr_assert_eq (s_xlen (&c), 3, "nothing was run");

    //  The report: a section per benchmark, a row per run, and the files.
    char html [512], jsonl [512], csv [512];
    snprintf (html, sizeof html, "%s/r.html", itest_tmpdir ());
    snprintf (jsonl, sizeof jsonl, "%s/r.jsonl", itest_tmpdir ());
    snprintf (csv, sizeof csv, "%s/r.csv", itest_tmpdir ());
    itest_rxq (r, 30000, "--broker", c.endpoint, "--timeout", "60", "bench", "report", "--html", html,
               "--jsonl", jsonl, "--csv", csv);
    cr_assert_eq (r->code, 0, "rxq bench report: %s\n%s", r->out, r->err);
    cr_assert (strstr (r->out, "bench.gemm n=64 reps=2 seed=1 (2 runs)"), "%s", r->out);
    cr_assert (strstr (r->out, "bench.gemv type=q8_0 x=f32 rows=256 cols=256"), "%s", r->out);
    static char text [1 << 16];
    itest_read_file (jsonl, text, sizeof text);
    cr_assert_eq (itest_lines (text), 3);
    itest_read_file (csv, text, sizeof text);
    cr_assert_eq (itest_lines (text), 4, "header and three rows:\n%s", text);
    itest_read_file (html, text, sizeof text);
    cr_assert_eq (s_count (text, "<section class=\"bench\">"), 2);
    cr_assert_eq (s_count (text, "<rect class=\"bar\""), 3);

    itest_rxq (r, 30000, "--broker", c.endpoint, "--timeout", "60", "--json", "bench", "report", "--kind",
               "bench.gemv");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert_eq (itest_lines (r->out), 1, "one record of bench.gemv:\n%s", r->out);
    cr_assert (strstr (r->out, "\"kind\":\"bench.gemv\""));

    itest_rxq (r, 30000, "--broker", c.endpoint, "--timeout", "60", "bench", "report", "--since", "1h", "--kind",
               "bench.gemm");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, "(2 runs)"), "%s", r->out);
    //  More records than one RECORDS page holds (1,000), and one written
    //  twice (the stream is at-least-once): all read, the twin dropped.
    x = s_redis (&c, "XRANGE rxq:default:bench - + COUNT 1");
    redisReply *f = x->element [0]->element [1];
    redisReply *rec = f->element [11];
    redisContext *ctx = redisConnect ("127.0.0.1", c.redis_port);
    cr_assert (ctx && !ctx->err);
    for (int i = 0; i < 1500; i++)
        redisAppendCommand (ctx, "XADD rxq:default:bench * job many-%04d kind bench.gemm "
                            "worker w9 device Many ms 1 record %b", i, rec->str, rec->len);
    redisAppendCommand (ctx, "XADD rxq:default:bench * job many-0000 kind bench.gemm "
                        "worker w9 device Many ms 1 record %b", rec->str, rec->len);
    for (int i = 0; i < 1501; i++) {
        void *reply = NULL;
        cr_assert_eq (redisGetReply (ctx, &reply), REDIS_OK);
        freeReplyObject (reply);
    }
    redisFree (ctx);
    freeReplyObject (x);
    itest_rxq (r, 60000, "--broker", c.endpoint, "--timeout", "60", "bench", "report", "--kind", "bench.gemm",
               "--csv", csv);
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->err, "1 duplicate record dropped"), "%s", r->err);
    FILE *file = fopen (csv, "r");
    cr_assert_not_null (file);
    int lines = 0, many = 0;
    char line [8192];
    while (fgets (line, sizeof line, file)) {
        lines++;
        many += strstr (line, ",many-") != NULL;
    }
    fclose (file);
    cr_assert_eq (many, 1500, "every record once");
    cr_assert_eq (lines, 1 + 2 + 1500, "header, the two bench.gemm runs, the 1,500");

    //  bench.device's record is complete too (regression: it lacked
    //  record_version, rxq_version, kernel_hash, params and seed), and
    //  the report files it under its parameters.
    itest_rxq (r, 120000, "--broker", c.endpoint, "--timeout", "60", "bench", "bench.device",
               "copy_mb=4", "gemm_n=64", "reps=2", "--worker", "w2");
    cr_assert_eq (r->code, 0, "rxq bench bench.device: %s\n%s", r->out, r->err);
    x = s_redis (&c, "XREVRANGE rxq:default:bench + - COUNT 1");
    cr_assert_eq (x->elements, 1);
    const redisReply *dev_rec = s_entry_record (x->element [0]);
    s_assert_complete (dev_rec->str, dev_rec->len, "bench.device");
    freeReplyObject (x);
    itest_rxq (r, 30000, "--broker", c.endpoint, "--timeout", "60", "bench", "report", "--kind",
               "bench.device");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, "bench.device copy_mb=4 gemm_n=64 reps=2 (1 run)"), "%s", r->out);
}

//  bench.llm (issue 7): a run with the real SmolLM2 through the cluster
//  lands in the bench stream as a complete record and shows in the
//  report, its figures holding pp/tg tokens per second and the kernel
//  classes' shares.
Test (farm, bench_llm_records_and_reports, .timeout = 600)
{
    TST_LLM_REQUIRE (model);
    itest_cluster_t c;
    itest_cluster_up (&c, 1);
    itest_run_t *r = &s_run;
    char arg [4200];
    snprintf (arg, sizeof arg, "model=%s", model);
    itest_rxq (r, 300000, "--broker", c.endpoint, "--timeout", "60", "bench", "bench.llm", arg, "pp=32", "tg=8",
               "reps=1", "--all-workers");
    cr_assert_eq (r->code, 0, "rxq bench: %s\n%s", r->out, r->err);
    cr_assert_eq (s_count (r->out, "succeeded"), 1, "%s", r->out);
    cr_assert_eq (s_xlen (&c), 1, "the record is in the stream");
    redisReply *x = s_redis (&c, "XRANGE rxq:default:bench - +");
    cr_assert_eq (x->elements, 1);
    redisReply *f = x->element [0]->element [1];
    const char *record = NULL;
    size_t record_len = 0;
    for (size_t k = 0; k + 1 < f->elements; k += 2)
        if (!strcmp (f->element [k]->str, "record")) {
            record = f->element [k + 1]->str;
            record_len = f->element [k + 1]->len;
        }
    cr_assert_not_null (record);
    cmn_body_t body;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&body, record, record_len, &cmn_codec_limits_default, &err),
                  0, "%s", err.msg);
    const char *fields [] = { "record_version", "kind", "device", "rxq_version", "kernel_hash",
                              "params", "seed", "tuning", "figures", "kernels",
                              "measured_peak" };
    for (size_t k = 0; k < sizeof fields / sizeof fields [0]; k++)
        cr_assert_not_null (cmn_codec_find (&body.root, fields [k]), "record lacks %s",
                            fields [k]);
    const msgpack_object *fig = NULL;
    cr_assert_eq (cmn_codec_get_map (&body.root, "figures", &fig, &err), 0);
    double pp = 0, tg = 0, share = 0;
    cr_assert_eq (cmn_codec_get_double (fig, "pp_tps", &pp, &err), 0);
    cr_assert_eq (cmn_codec_get_double (fig, "tg_tps", &tg, &err), 0);
    cr_assert_eq (cmn_codec_get_double (fig, "share_matmul", &share, &err), 0);
    cr_assert (pp > 0 && tg > 0 && share > 0 && share <= 1, "pp %g tg %g share %g", pp, tg,
               share);
    cmn_body_free (&body);
    freeReplyObject (x);

    itest_rxq (r, 30000, "--broker", c.endpoint, "--timeout", "60", "bench", "report", "--kind", "bench.llm");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, "bench.llm model=") && strstr (r->out, "pp=32 tg=8 reps=1")
               && strstr (r->out, "(1 run)"), "%s", r->out);
    itest_rxq (r, 30000, "--broker", c.endpoint, "--timeout", "60", "--json", "bench", "report", "--kind",
               "bench.llm");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, "\"pp_tps\":") && strstr (r->out, "\"share_attention\":"),
               "%s", r->out);
}

Test (farm, tune_stores_the_entry_and_later_workers_use_it)
{
    itest_cluster_t c;
    itest_cluster_up (&c, 1);
    itest_run_t *r = &s_run;

    itest_rxq (r, 240000, "--broker", c.endpoint, "--timeout", "60", "--json", "tune", "n=64", "rows=256",
               "cols=256", "budget_ms=200", "--worker", "w1");
    cr_assert_eq (r->code, 0, "rxq tune: %s\n%s", r->out, r->err);
    char job [64], key [512];
    cr_assert (itest_json_string (r->out, "id", job, sizeof job), "%s", r->out);
    cr_assert (itest_json_string (r->out, "device_key", key, sizeof key), "%s", r->out);
    double tsm = 0, tsn = 0, qwgs = 0, qrows = 0;
    cr_assert (itest_json_number (r->out, "TSM", &tsm) && itest_json_number (r->out, "TSN", &tsn)
               && itest_json_number (r->out, "QMM_WGS", &qwgs)
               && itest_json_number (r->out, "GEMV_ROWS", &qrows), "%s", r->out);

    //  Stored under the device's key, from that job.
    redisReply *h = s_redis (&c, "HGET rxq:default:tune %s", key);
    cr_assert_eq (h->type, REDIS_REPLY_STRING, "no entry stored for '%s'", key);
    cmn_body_t stored;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&stored, h->str, h->len, &cmn_codec_limits_default, &err), 0,
                  "%s", err.msg);
    cr_assert (cmn_codec_str_eq (cmn_codec_find (&stored.root, "job"), job));
    cmn_body_free (&stored);
    freeReplyObject (h);

    //  The live worker got it at once: its next SGEMM build uses it.
    char want [64];
    snprintf (want, sizeof want, "-DTSM=%d -DTSN=%d", (int) tsm, (int) tsn);
    itest_rxq (r, 120000, "--broker", c.endpoint, "--timeout", "60", "--json", "bench", "bench.gemm", "n=64",
               "reps=1", "--worker", "w1");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_assert (strstr (r->out, want), "w1 builds SGEMM with %s:\n%.3000s", want, r->out);

    //  An entry that neither the shipped row (QMM_WGS 8, GEMV_ROWS 4 on a
    //  CPU) nor this search picked, so a worker can only have it from
    //  Redis: stored by hand, as a later tune would, then a worker
    //  registers.
    int wgs = (int) qwgs == 16 && (int) qrows == 2 ? 32 : 16;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_str (&pk, "device_key", key);
    cmn_pack_kv_str (&pk, "job", "by-hand");
    cmn_pack_key (&pk, "entry");
    msgpack_pack_map (&pk, 1);
    cmn_pack_key (&pk, "qmatmul");
    msgpack_pack_map (&pk, 2);
    cmn_pack_kv_uint (&pk, "QMM_WGS", (uint64_t) wgs);
    cmn_pack_kv_uint (&pk, "GEMV_ROWS", 2);
    freeReplyObject (s_redis (&c, "HSET rxq:default:tune %s %b", key, sb.data, sb.size));
    msgpack_sbuffer_destroy (&sb);

    itest_start_worker ("w2", c.port, NULL, NULL);
    cr_assert_eq (itest_wait_workers (c.port, 2, 45000), 2);
    itest_rxq (r, 120000, "--broker", c.endpoint, "--timeout", "60", "--json", "bench", "bench.gemv", "rows=256",
               "cols=256", "reps=1", "--worker", "w2");
    cr_assert_eq (r->code, 0, "%s", r->err);
    snprintf (want, sizeof want, "-DQMM_WGS=%d -DGEMV_ROWS=2 ", wgs);
    cr_assert (strstr (r->out, want), "w2 builds qmatmul with the stored %s:\n%.3000s", want,
               r->out);
}
