/*  rxq_report: the writers of `rxq bench report`, checked on structure
 *  (sections, rows, bars, fields, escaping), not on numbers. */
#include <criterion/criterion.h>
#include "rxq_report.h"
#include "cmn_codec.h"

//  Buffers entries are decoded from; freed after each test.
static msgpack_sbuffer s_bufs [32];
static int s_nbufs;

static void
s_fini (void)
{
    for (int i = 0; i < s_nbufs; i++)
        msgpack_sbuffer_destroy (&s_bufs [i]);
    s_nbufs = 0;
}

TestSuite (rxq_report, .fini = s_fini);

//  A RECORDS entry for JOB: KIND with param n=N on DEVICE, GFLOPS, and
//  NKERNELS per-kernel times. Decoded into BODY (freed by the caller).
static void
s_entry (cmn_body_t *body, const char *job, const char *kind, int n, const char *device,
         double gflops, int nkernels)
{
    cr_assert_lt (s_nbufs, 32);
    msgpack_sbuffer *sb = &s_bufs [s_nbufs++];
    msgpack_sbuffer_init (sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 7);
    cmn_pack_kv_str (&pk, "id", "1700000000000-0");
    cmn_pack_kv_str (&pk, "job", job);
    cmn_pack_kv_str (&pk, "kind", kind);
    cmn_pack_kv_str (&pk, "worker", "w1");
    cmn_pack_kv_str (&pk, "device", device);
    cmn_pack_kv_uint (&pk, "ms", 1700000000000);
    cmn_pack_key (&pk, "record");
    msgpack_pack_map (&pk, 9);
    cmn_pack_kv_uint (&pk, "record_version", 1);
    cmn_pack_kv_str (&pk, "kind", kind);
    cmn_pack_key (&pk, "device");
    msgpack_pack_map (&pk, 4);
    cmn_pack_kv_str (&pk, "name", device);
    cmn_pack_kv_str (&pk, "vendor", "Acme, Inc.");
    cmn_pack_kv_str (&pk, "driver", "1.0");
    cmn_pack_kv_str (&pk, "version", "OpenCL 1.2");
    cmn_pack_kv_str (&pk, "rxq_version", "0.1.0");
    cmn_pack_kv_str (&pk, "kernel_hash", "0123456789abcdef");
    cmn_pack_key (&pk, "params");
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_uint (&pk, "n", (uint64_t) n);
    cmn_pack_kv_uint (&pk, "seed", 1);
    cmn_pack_key (&pk, "figures");
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_double (&pk, "gflops", gflops);
    cmn_pack_kv_double (&pk, "gbps", gflops / 10);
    cmn_pack_kv_double (&pk, "peak_fraction", 0.5);
    cmn_pack_key (&pk, "kernels");
    msgpack_pack_array (&pk, (size_t) nkernels);
    for (int i = 0; i < nkernels; i++) {
        char name [32];
        snprintf (name, sizeof name, "kernel_%d<x>", i);
        msgpack_pack_map (&pk, 3);
        cmn_pack_kv_str (&pk, "name", name);
        cmn_pack_kv_uint (&pk, "ns", 1000 * (uint64_t) (i + 1));
        cmn_pack_kv_uint (&pk, "runs", 3);
    }
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (body, sb->data, sb->size, &cmn_codec_limits_default, &err), 0,
                  "%s", err.msg);
}

//  Adds an entry and frees its body (the report keeps a copy).
static void
s_add (rxq_report_t *r, const char *job, const char *kind, int n, const char *device,
       double gflops, int nkernels)
{
    cmn_body_t body;
    s_entry (&body, job, kind, n, device, gflops, nkernels);
    cmn_err_t err = { 0 };
    cr_assert_eq (rxq_report_add (r, &body.root, &err), 0, "%s", err.msg);
    cmn_body_free (&body);
    msgpack_sbuffer_destroy (&s_bufs [--s_nbufs]);
}

static size_t
s_count (const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr (text, what); p; p = strstr (p + 1, what))
        n++;
    return n;
}

typedef void (s_writer_fn) (rxq_report_t *r, FILE *out);

static char *
s_write (rxq_report_t *r, s_writer_fn *fn)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    cr_assert_not_null (f);
    fn (r, f);
    fclose (f);
    return text;
}

static void
s_html (rxq_report_t *r, FILE *out)
{
    rxq_report_html (r, out, "farm <report>");
}

//  Two benchmarks: gemm n=64 on three devices, gemv n=128 on one.
static rxq_report_t *
s_farm (void)
{
    rxq_report_t *r = rxq_report_new ();
    cr_assert_not_null (r);
    s_add (r, "j1", "bench.gemm", 64, "GPU \"A\", <fast> & co", 100, 3);
    s_add (r, "j2", "bench.gemm", 64, "GPU B", 50, 3);
    s_add (r, "j3", "bench.gemv", 128, "GPU B", 7, 1);
    s_add (r, "j4", "bench.gemm", 64, "CPU", 25, 3);
    return r;
}

Test (rxq_report, records_are_deduplicated_by_job_and_checked)
{
    rxq_report_t *r = s_farm ();
    cr_assert_eq (rxq_report_size (r), 4);
    cmn_body_t body;
    s_entry (&body, "j2", "bench.gemm", 64, "GPU B", 50, 3);
    cmn_err_t err = { 0 };
    cr_assert_eq (rxq_report_add (r, &body.root, &err), 1, "a second record of j2 is a duplicate");
    cmn_body_free (&body);
    cr_assert_eq (rxq_report_size (r), 4);
    //  Not a record entry: no job, or a record that is not a map.
    cmn_body_t bad;
    cr_assert_eq (cmn_body_decode (&bad, "\x81\xa4" "kind" "\xa3" "x.y", 10,
                                   &cmn_codec_limits_default, &err), 0, "%s", err.msg);
    cr_assert_eq (rxq_report_add (r, &bad.root, &err), -1);
    cr_assert_eq (err.code, RXQ_E_PROTO);
    cmn_body_free (&bad);
    cr_assert_eq (cmn_body_decode (&bad, "\x83\xa3" "job" "\xa1" "z" "\xa4" "kind" "\xa1" "k"
                                   "\xa6" "record" "\x01", 22, &cmn_codec_limits_default, &err),
                  0, "%s", err.msg);
    cr_assert_eq (rxq_report_add (r, &bad.root, &err), -1);
    cmn_body_free (&bad);
    rxq_report_destroy (&r);
    rxq_report_destroy (&r);
}

Test (rxq_report, table_has_a_section_per_benchmark_and_a_row_per_run)
{
    rxq_report_t *r = s_farm ();
    char *text = s_write (r, rxq_report_table);
    cr_assert (strstr (text, "bench.gemm n=64 (3 runs)"), "%s", text);
    cr_assert (strstr (text, "bench.gemv n=128 (1 run)"), "%s", text);
    cr_assert_eq (s_count (text, "  DEVICE "), 2, "one header per section");
    cr_assert_eq (s_count (text, "  j"), 4, "one row per run");
    cr_assert_eq (s_count (text, "GPU B"), 2);
    cr_assert_eq (s_count (text, "headline: GFLOPS"), 1);
    cr_assert_eq (s_count (text, "headline: GB/s"), 1);
    //  The best run of a section is 1.00 of the best; each section has one.
    cr_assert_eq (s_count (text, "   1.00 "), 2, "%s", text);
    free (text);
    rxq_report_destroy (&r);
    r = rxq_report_new ();
    text = s_write (r, rxq_report_table);
    cr_assert_str_eq (text, "no benchmark records\n");
    free (text);
    rxq_report_destroy (&r);
}

Test (rxq_report, html_is_self_contained_with_a_chart_per_benchmark)
{
    rxq_report_t *r = s_farm ();
    char *html = s_write (r, s_html);
    cr_assert_eq (strncmp (html, "<!DOCTYPE html>", 15), 0);
    cr_assert (strstr (html, "</html>\n"));
    cr_assert_eq (s_count (html, "<section class=\"bench\">"), 2);
    cr_assert_eq (s_count (html, "<svg class=\"chart headline\""), 2);
    cr_assert_eq (s_count (html, "<svg "), s_count (html, "</svg>"));
    cr_assert_eq (s_count (html, "<rect class=\"bar\""), 4, "one bar per run");
    cr_assert_eq (s_count (html, "<tr class=\"run\">"), 4, "one table row per run");
    //  Per-kernel chart only for the benchmark whose records have several
    //  kernels: 3 kernels x 3 runs bars.
    cr_assert_eq (s_count (html, "<svg class=\"chart kernels\""), 1);
    cr_assert_eq (s_count (html, "<rect class=\"kbar\""), 9);
    //  The best run's bar spans the whole bar area; bars never exceed it.
    cr_assert_eq (s_count (html, "width=\"420\" height=\"18\""), 2, "%s", html);
    cr_assert_eq (s_count (html, "width=\"421\""), 0);
    //  Nothing from outside, and nothing that runs.
    cr_assert_null (strstr (html, "<script"));
    cr_assert_null (strstr (html, " src="));
    cr_assert_null (strstr (html, "href="));
    cr_assert_null (strstr (html, "<link"));
    //  Text from records and the title is escaped.
    cr_assert_null (strstr (html, "<fast>"));
    cr_assert_null (strstr (html, "<x>"));
    cr_assert_null (strstr (html, "<report>"));
    cr_assert (strstr (html, "GPU &quot;A&quot;, &lt;fast&gt; &amp; co"));
    cr_assert (strstr (html, "farm &lt;report&gt;"));
    free (html);
    rxq_report_destroy (&r);
}

Test (rxq_report, jsonl_has_one_complete_object_per_record)
{
    rxq_report_t *r = s_farm ();
    char *text = s_write (r, rxq_report_jsonl);
    cr_assert (strstr (text, "\\\"A\\\""), "quotes in strings are escaped");
    size_t lines = 0;
    for (char *line = text, *nl; (nl = strchr (line, '\n')); line = nl + 1) {
        *nl = 0;
        lines++;
        cr_assert_eq (line [0], '{');
        cr_assert_eq (line [strlen (line) - 1], '}');
        cr_assert_eq (s_count (line, "{"), s_count (line, "}"), "%s", line);
        cr_assert (strstr (line, "\"record\":{\"record_version\":1"), "%s", line);
        cr_assert (strstr (line, "\"kernel_hash\":\"0123456789abcdef\""), "%s", line);
    }
    cr_assert_eq (lines, 4);
    free (text);
    rxq_report_destroy (&r);
}

//  Splits one CSV line (RFC 4180) and returns its field count; FIELD6 gets
//  the sixth field, unquoted.
static int
s_csv_fields (const char *line, char *field6, size_t size)
{
    int n = 0;
    const char *p = line;
    for (;;) {
        char field [512];
        size_t len = 0;
        if (*p == '"') {
            p++;
            while (*p && !(*p == '"' && p [1] != '"')) {
                if (*p == '"')
                    p++;
                if (len + 1 < sizeof field)
                    field [len++] = *p;
                p++;
            }
            cr_assert_eq (*p, '"', "unterminated quoted field in %s", line);
            p++;
        }
        else
            while (*p && *p != ',' && *p != '\r')
                if (len + 1 < sizeof field)
                    field [len++] = *p++;
                else
                    p++;
        field [len] = 0;
        if (++n == 6)
            snprintf (field6, size, "%.255s", field);
        if (*p != ',')
            break;
        p++;
    }
    return n;
}

Test (rxq_report, csv_has_a_header_and_a_row_of_equal_width_per_record)
{
    rxq_report_t *r = s_farm ();
    char *text = s_write (r, rxq_report_csv);
    char *save = NULL, device [256];
    int lines = 0, width = 0;
    bool quoted_device = false;
    for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
        cr_assert_eq (line [strlen (line) - 1], '\r', "RFC 4180 lines end in CRLF");
        int n = s_csv_fields (line, device, sizeof device);
        if (lines == 0) {
            width = n;
            cr_assert_eq (strncmp (line, "stream_id,job,kind,", 19), 0);
            cr_assert_str_eq (device, "device");
        }
        else
            cr_assert_eq (n, width, "row %d has %d fields, header %d: %s", lines, n, width, line);
        if (strcmp (device, "GPU \"A\", <fast> & co") == 0)
            quoted_device = true;
        lines++;
    }
    cr_assert_eq (lines, 5);
    cr_assert_geq (width, 15);
    cr_assert (quoted_device, "a field with a comma and quotes reads back whole");
    free (text);
    rxq_report_destroy (&r);
}

Test (rxq_report, a_section_of_many_runs_plots_the_best_run_per_device)
{
    rxq_report_t *r = rxq_report_new ();
    const char *devices [] = { "GPU A", "GPU B", "CPU" };
    char job [16];
    for (int i = 0; i < 45; i++) {
        snprintf (job, sizeof job, "j%02d", i);
        s_add (r, job, "bench.gemm", 64, devices [i % 3], 10 + i, 1);
    }
    char *html = s_write (r, s_html);
    cr_assert_eq (s_count (html, "<rect class=\"bar\""), 3, "one bar per device");
    cr_assert_eq (s_count (html, "<tr class=\"run\">"), 45, "the table lists every run");
    cr_assert (strstr (html, "45 runs: the charts show the best run of each of 3 devices"));
    cr_assert_eq (s_count (html, "width=\"420\" height=\"18\""), 1, "the best bar spans the area");
    free (html);
    rxq_report_destroy (&r);
}
