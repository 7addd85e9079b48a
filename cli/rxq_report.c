/*  rxq_report: see rxq_report.h. */
#include "rxq_report.h"
#include "rxq_print.h"
#include "cmn_codec.h"
#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

//  One record, with the fields every writer uses pulled out once.
typedef struct {
    char *raw;                  // a private copy of the entry, packed
                                // (body's strings point into it)
    cmn_body_t body;            // raw, decoded
    const msgpack_object *record;   // the record map inside body
    char id [48];               // stream id
    char job [80];              // job id
    char kind [64];             // job kind
    char worker [128];          // worker name
    uint64_t ms;                // finish time, Unix ms
    char device [128];          // device name
    char vendor [128];          // device vendor
    char driver [128];          // driver version
    char version [128];         // OpenCL version of the device
    char rxq_version [64];      // worker's rxq version
    char kernel_hash [40];      // kernel source hash
    char params [256];          // "k=v k=v", as recorded
    char bench [320];           // section key: "kind params"
    uint64_t seed;              // seed of the inputs
    double gflops;              // GFLOPS
    double gbps;                // GB/s
    double peak;                // fraction of the measured peak, 0 unknown
    double copy_gbps;           // measured copy bandwidth
    double fma_gflops;          // measured FMA throughput
    uint64_t kernels_ns;        // sum of the per-kernel times
    uint32_t nkernels;          // per-kernel times recorded
} s_row_t;

struct _rxq_report_t {
    s_row_t **rows;             // records, in the order added
    size_t count;               // rows used
    size_t cap;                 // rows allocated
    bool sorted;                // rows are in section order
    zhashx_t *jobs;             // job id -> its row (not owned), for
                                // de-duplication
};

rxq_report_t *
rxq_report_new (void)
{
    rxq_report_t *self = calloc (1, sizeof *self);
    if (self && !(self->jobs = zhashx_new ())) {
        free (self);
        return NULL;
    }
    return self;
}

void
rxq_report_destroy (rxq_report_t **self_p)
{
    assert (self_p);
    rxq_report_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        cmn_body_free (&self->rows [i]->body);
        free (self->rows [i]->raw);
        free (self->rows [i]);
    }
    free (self->rows);
    zhashx_destroy (&self->jobs);
    free (self);
    *self_p = NULL;
}

size_t
rxq_report_size (rxq_report_t *self)
{
    return self->count;
}

//  Headline figure: GFLOPS for compute-bound kinds, GB/s otherwise.
static bool
s_flops_kind (const char *kind)
{
    return strcmp (kind, "bench.gemm") == 0 || strcmp (kind, "bench.device") == 0;
}

static double
s_headline (const s_row_t *r)
{
    return s_flops_kind (r->kind) ? r->gflops : r->gbps;
}

static const char *
s_unit (const char *kind)
{
    return s_flops_kind (kind) ? "GFLOPS" : "GB/s";
}

//  Appends "key=value" of a scalar to BUF.
static void
s_param_text (char *buf, size_t size, const msgpack_object_kv *kv)
{
    size_t n = strlen (buf);
    if (n + 2 >= size || kv->key.type != MSGPACK_OBJECT_STR)
        return;
    char val [64] = "";
    const msgpack_object *v = &kv->val;
    if (v->type == MSGPACK_OBJECT_STR)
        snprintf (val, sizeof val, "%.*s", (int) (v->via.str.size < 60 ? v->via.str.size : 60),
                  v->via.str.ptr);
    else
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        snprintf (val, sizeof val, "%" PRIu64, v->via.u64);
    else
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        snprintf (val, sizeof val, "%" PRId64, v->via.i64);
    else
    if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64)
        snprintf (val, sizeof val, "%g", v->via.f64);
    else
    if (v->type == MSGPACK_OBJECT_BOOLEAN)
        snprintf (val, sizeof val, "%s", v->via.boolean ? "true" : "false");
    snprintf (buf + n, size - n, "%s%.*s=%s", n ? " " : "",
              (int) (kv->key.via.str.size < 60 ? kv->key.via.str.size : 60),
              kv->key.via.str.ptr, val);
}

static double
s_num (const msgpack_object *map, const char *key)
{
    double v = 0;
    if (map && cmn_codec_get_double (map, key, &v, NULL) == 0 && isfinite (v))
        return v;
    return 0;
}

//  Fills R's fields from its record. A v1 record (worker/wrk_farm.h) has
//  figures, params and measured_peak; a bench.device result (no
//  record_version) carries copy and sgemm maps instead.
static void
s_extract (s_row_t *r)
{
    const msgpack_object *rec = r->record, *dev = NULL, *fig = NULL, *peak = NULL;
    const msgpack_object *params = NULL, *kernels = NULL;
    if (cmn_codec_get_map (rec, "device", &dev, NULL) == 0) {
        if (!r->device [0])
            cmn_codec_get_cstr (dev, "name", r->device, sizeof r->device, NULL);
        cmn_codec_get_cstr (dev, "vendor", r->vendor, sizeof r->vendor, NULL);
        cmn_codec_get_cstr (dev, "driver", r->driver, sizeof r->driver, NULL);
        cmn_codec_get_cstr (dev, "version", r->version, sizeof r->version, NULL);
    }
    cmn_codec_get_cstr (rec, "rxq_version", r->rxq_version, sizeof r->rxq_version, NULL);
    cmn_codec_get_cstr (rec, "kernel_hash", r->kernel_hash, sizeof r->kernel_hash, NULL);
    cmn_codec_get_uint (rec, "seed", &r->seed, NULL);
    if (cmn_codec_get_map (rec, "params", &params, NULL) == 0)
        for (uint32_t i = 0; i < params->via.map.size; i++)
            s_param_text (r->params, sizeof r->params, &params->via.map.ptr [i]);
    if (cmn_codec_get_map (rec, "figures", &fig, NULL) == 0) {
        r->gflops = s_num (fig, "gflops");
        r->gbps = s_num (fig, "gbps");
        r->peak = s_num (fig, "peak_fraction");
    }
    if (cmn_codec_get_map (rec, "measured_peak", &peak, NULL) == 0) {
        r->copy_gbps = s_num (peak, "copy_gbps");
        r->fma_gflops = s_num (peak, "fma_gflops");
    }
    if (!fig) {
        //  bench.device: its copy is the bandwidth ceiling itself.
        const msgpack_object *copy = NULL, *sgemm = NULL;
        if (cmn_codec_get_map (rec, "copy", &copy, NULL) == 0) {
            r->gbps = r->copy_gbps = s_num (copy, "gbps_median");
            uint64_t bytes = 0;
            if (cmn_codec_get_uint (copy, "requested_bytes", &bytes, NULL) == 0)
                snprintf (r->params, sizeof r->params, "bytes=%" PRIu64, bytes);
        }
        if (cmn_codec_get_map (rec, "sgemm", &sgemm, NULL) == 0) {
            r->gflops = s_num (sgemm, "gflops_median");
            uint64_t n = 0;
            if (cmn_codec_get_uint (sgemm, "n", &n, NULL) == 0) {
                size_t len = strlen (r->params);
                snprintf (r->params + len, sizeof r->params - len, "%sn=%" PRIu64,
                          len ? " " : "", n);
            }
        }
    }
    if (cmn_codec_get_array (rec, "kernels", &kernels, NULL) == 0)
        for (uint32_t i = 0; i < kernels->via.array.size; i++) {
            uint64_t ns = 0;
            if (cmn_codec_get_uint (&kernels->via.array.ptr [i], "ns", &ns, NULL) == 0) {
                r->kernels_ns += ns;
                r->nkernels++;
            }
        }
    snprintf (r->bench, sizeof r->bench, "%s%s%s", r->kind, r->params [0] ? " " : "", r->params);
}

int
rxq_report_add (rxq_report_t *self, const msgpack_object *entry, cmn_err_t *err)
{
    assert (self && entry);
    char job [80] = "";
    const msgpack_object *record = NULL;
    if (entry->type != MSGPACK_OBJECT_MAP
    ||  cmn_codec_get_cstr (entry, "job", job, sizeof job, NULL) != 0 || !job [0]
    ||  !cmn_codec_find (entry, "kind")
    ||  cmn_codec_get_map (entry, "record", &record, NULL) != 0)
        return cmn_err_set (err, RXQ_E_PROTO, "a benchmark record needs 'job', 'kind' and a "
                            "'record' map");
    if (zhashx_lookup (self->jobs, job))
        return 1;
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        s_row_t **rows = realloc (self->rows, cap * sizeof *rows);
        if (!rows)
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        self->rows = rows;
        self->cap = cap;
    }
    s_row_t *r = calloc (1, sizeof *r);
    if (!r)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    //  A private copy: pack the entry and decode it into the row's zone.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object (&pk, *entry);
    cmn_codec_limits_t limits = cmn_codec_limits_default;
    limits.max_bytes = sb.size;
    //  The decoded strings point into the buffer: the row keeps it.
    r->raw = sb.data;
    if (cmn_body_decode (&r->body, r->raw, sb.size, &limits, err)) {
        free (r->raw);
        free (r);
        return -1;
    }
    cmn_codec_get_map (&r->body.root, "record", &r->record, NULL);
    snprintf (r->job, sizeof r->job, "%s", job);
    cmn_codec_get_cstr (entry, "id", r->id, sizeof r->id, NULL);
    cmn_codec_get_cstr (entry, "kind", r->kind, sizeof r->kind, NULL);
    cmn_codec_get_cstr (entry, "worker", r->worker, sizeof r->worker, NULL);
    cmn_codec_get_cstr (entry, "device", r->device, sizeof r->device, NULL);
    cmn_codec_get_uint (entry, "ms", &r->ms, NULL);
    s_extract (r);
    if (zhashx_insert (self->jobs, r->job, r) != 0) {
        cmn_body_free (&r->body);
        free (r->raw);
        free (r);
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    }
    self->rows [self->count++] = r;
    self->sorted = false;
    return 0;
}

//  Section order: benchmark, then device, then time.
static int
s_row_cmp (const void *a, const void *b)
{
    const s_row_t *x = *(s_row_t * const *) a, *y = *(s_row_t * const *) b;
    int c = strcmp (x->bench, y->bench);
    if (!c)
        c = strcmp (x->device, y->device);
    if (!c)
        c = x->ms < y->ms ? -1 : x->ms > y->ms;
    return c;
}

static void
s_sort (rxq_report_t *self)
{
    if (!self->sorted && self->count)
        qsort (self->rows, self->count, sizeof *self->rows, s_row_cmp);
    self->sorted = true;
}

//  The section starting at row I ends before the returned index.
static size_t
s_section_end (rxq_report_t *self, size_t i)
{
    size_t j = i + 1;
    while (j < self->count && strcmp (self->rows [j]->bench, self->rows [i]->bench) == 0)
        j++;
    return j;
}

static double
s_section_best (rxq_report_t *self, size_t i, size_t end)
{
    double best = 0;
    for (size_t k = i; k < end; k++)
        if (s_headline (self->rows [k]) > best)
            best = s_headline (self->rows [k]);
    return best;
}

//  ---------------------------------------------------------------------
//  Table

void
rxq_report_table (rxq_report_t *self, FILE *out)
{
    assert (self && out);
    if (!self->count) {
        fprintf (out, "no benchmark records\n");
        return;
    }
    s_sort (self);
    for (size_t i = 0; i < self->count; ) {
        size_t end = s_section_end (self, i);
        double best = s_section_best (self, i, end);
        const char *unit = s_unit (self->rows [i]->kind);
        fprintf (out, "%s%s (%zu run%s)\n", i ? "\n" : "", self->rows [i]->bench, end - i,
                 end - i == 1 ? "" : "s");
        fprintf (out, "  %-32s %-16s %-20s %10s %10s %6s %7s %11s  %s\n", "DEVICE", "WORKER",
                 "FINISHED", "GFLOPS", "GB/S", "PEAK", "VS BEST", "KERNEL MS", "JOB");
        for (size_t k = i; k < end; k++) {
            const s_row_t *r = self->rows [k];
            char t [32], peak [16] = "-", rel [16] = "-";
            rxq_print_time (t, sizeof t, r->ms);
            if (r->peak > 0)
                snprintf (peak, sizeof peak, "%.0f%%", r->peak * 100);
            if (best > 0)
                snprintf (rel, sizeof rel, "%.2f", s_headline (r) / best);
            fprintf (out, "  %-32.32s %-16.16s %-20s %10.2f %10.2f %6s %7s %11.3f  %s\n",
                     r->device [0] ? r->device : "?", r->worker, t, r->gflops, r->gbps, peak,
                     rel, (double) r->kernels_ns / 1e6, r->job);
        }
        fprintf (out, "  headline: %s; VS BEST is against the best run of this benchmark\n", unit);
        i = end;
    }
}

//  ---------------------------------------------------------------------
//  HTML with inline SVG

//  Writes TEXT escaped for HTML/XML text and attribute values.
static void
s_xml (FILE *out, const char *text)
{
    for (const char *p = text; *p; p++)
        switch (*p) {
            case '<': fputs ("&lt;", out); break;
            case '>': fputs ("&gt;", out); break;
            case '&': fputs ("&amp;", out); break;
            case '"': fputs ("&quot;", out); break;
            case '\'': fputs ("&#39;", out); break;
            default:
                if ((unsigned char) *p >= 0x20 || *p == '\t')
                    fputc (*p, out);
        }
}

//  Copies TEXT into BUF, cut to at most MAX bytes with "..." when longer,
//  never inside a UTF-8 sequence.
static void
s_cut (char *buf, size_t size, const char *text, size_t max)
{
    size_t n = strlen (text);
    if (n <= max) {
        snprintf (buf, size, "%s", text);
        return;
    }
    size_t keep = max - 3;
    while (keep > 0 && ((unsigned char) text [keep] & 0xc0) == 0x80)
        keep--;
    snprintf (buf, size, "%.*s...", (int) keep, text);
}

//  Colours of the runs in a chart, cycled.
static const char *s_colors [] = {
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f"
};
#define S_NCOLORS (sizeof s_colors / sizeof s_colors [0])

//  Chart geometry, in SVG user units.
#define S_LABEL_W 300           // room for the bar labels
#define S_BAR_W   420           // longest bar
#define S_VALUE_W 110           // room for the value after a bar
#define S_BAR_H   18            // one bar
#define S_GAP     6             // between bars

//  Label of row R in the charts: device, worker, date, cut to fit the
//  label column (the table below the chart has them in full).
static void
s_run_label (const s_row_t *r, char *buf, size_t size)
{
    char t [32], device [40], worker [24];
    rxq_print_time (t, sizeof t, r->ms);
    s_cut (device, sizeof device, r->device [0] ? r->device : "?", 26);
    s_cut (worker, sizeof worker, r->worker, 12);
    snprintf (buf, size, "%s \xc2\xb7 %s \xc2\xb7 %.10s", device, worker, t);
}

//  One horizontal bar chart of the headline figure of the N ROWS.
static void
s_svg_headline (s_row_t **rows, size_t n, FILE *out)
{
    double best = 0;
    for (size_t k = 0; k < n; k++)
        if (s_headline (rows [k]) > best)
            best = s_headline (rows [k]);
    const char *unit = s_unit (rows [0]->kind);
    int height = (int) n * (S_BAR_H + S_GAP) + 30;
    fprintf (out, "<svg class=\"chart headline\" xmlns=\"http://www.w3.org/2000/svg\" "
             "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
             S_LABEL_W + S_BAR_W + S_VALUE_W, height, S_LABEL_W + S_BAR_W + S_VALUE_W, height);
    fprintf (out, "<title>%s per run</title>\n", unit);
    for (size_t k = 0; k < n; k++) {
        const s_row_t *r = rows [k];
        int y = (int) k * (S_BAR_H + S_GAP) + 4;
        double v = s_headline (r);
        int w = best > 0 ? (int) lround (v / best * S_BAR_W) : 0;
        char label [400];
        s_run_label (r, label, sizeof label);
        fprintf (out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", S_LABEL_W - 6,
                 y + S_BAR_H - 5);
        s_xml (out, label);
        fprintf (out, "</text>\n<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                 "fill=\"%s\"><title>", S_LABEL_W, y, w, S_BAR_H, s_colors [0]);
        s_xml (out, r->job);
        fprintf (out, ": %.2f %s</title></rect>\n", v, unit);
        fprintf (out, "<text x=\"%d\" y=\"%d\">%.2f %s", S_LABEL_W + w + 4, y + S_BAR_H - 5,
                 v, unit);
        if (r->peak > 0)
            fprintf (out, " (%.0f%%)", r->peak * 100);
        fprintf (out, "</text>\n");
    }
    int axis_y = (int) n * (S_BAR_H + S_GAP) + 6;
    fprintf (out, "<line x1=\"%d\" y1=\"2\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n",
             S_LABEL_W, S_LABEL_W, axis_y);
    fprintf (out, "<text x=\"%d\" y=\"%d\" class=\"axis\">0</text>"
             "<text x=\"%d\" y=\"%d\" class=\"axis\" text-anchor=\"end\">%.2f %s</text>\n",
             S_LABEL_W, axis_y + 16, S_LABEL_W + S_BAR_W, axis_y + 16, best, unit);
    fprintf (out, "</svg>\n");
}

//  Per-kernel times of the N ROWS: one group of bars per kernel name
//  (in the order of the first record that has it), one bar per run, in
//  microseconds on a scale shared by the chart. Drawn only when the
//  records carry more than one kernel.
static void
s_svg_kernels (s_row_t **rows, size_t n, FILE *out)
{
    enum { MAX_NAMES = 64 };
    const char *names [MAX_NAMES];
    size_t lens [MAX_NAMES];
    int nnames = 0;
    uint64_t most = 0;
    for (size_t k = 0; k < n; k++) {
        const msgpack_object *ks = NULL;
        if (cmn_codec_get_array (rows [k]->record, "kernels", &ks, NULL) != 0)
            continue;
        for (uint32_t j = 0; j < ks->via.array.size; j++) {
            const char *s;
            size_t n;
            uint64_t ns = 0;
            if (cmn_codec_get_str (&ks->via.array.ptr [j], "name", &s, &n, NULL) != 0)
                continue;
            cmn_codec_get_uint (&ks->via.array.ptr [j], "ns", &ns, NULL);
            if (ns > most)
                most = ns;
            int f = 0;
            while (f < nnames && !(lens [f] == n && memcmp (names [f], s, n) == 0))
                f++;
            if (f == nnames && nnames < MAX_NAMES) {
                names [nnames] = s;
                lens [nnames++] = n;
            }
        }
    }
    if (nnames < 2 || most == 0)
        return;
    size_t runs = n;
    int group_h = (int) runs * (S_BAR_H / 2 + 2) + S_GAP * 2;
    int height = nnames * group_h + 30 + (int) runs * 16;
    fprintf (out, "<svg class=\"chart kernels\" xmlns=\"http://www.w3.org/2000/svg\" "
             "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
             S_LABEL_W + S_BAR_W + S_VALUE_W, height, S_LABEL_W + S_BAR_W + S_VALUE_W, height);
    fprintf (out, "<title>per-kernel time (\xc2\xb5s) per run</title>\n");
    for (int f = 0; f < nnames; f++) {
        int y0 = f * group_h + 4;
        char name [64];
        snprintf (name, sizeof name, "%.*s", (int) (lens [f] < 40 ? lens [f] : 40), names [f]);
        fprintf (out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", S_LABEL_W - 6, y0 + 12);
        s_xml (out, name);
        fprintf (out, "</text>\n");
        for (size_t k = 0; k < n; k++) {
            const msgpack_object *ks = NULL;
            uint64_t ns = 0;
            bool found = false;
            if (cmn_codec_get_array (rows [k]->record, "kernels", &ks, NULL) == 0)
                for (uint32_t j = 0; j < ks->via.array.size && !found; j++) {
                    const char *s;
                    size_t n;
                    if (cmn_codec_get_str (&ks->via.array.ptr [j], "name", &s, &n, NULL) == 0
                    &&  n == lens [f] && memcmp (s, names [f], n) == 0) {
                        cmn_codec_get_uint (&ks->via.array.ptr [j], "ns", &ns, NULL);
                        found = true;
                    }
                }
            if (!found)
                continue;
            int y = y0 + (int) k * (S_BAR_H / 2 + 2);
            int w = (int) lround ((double) ns / (double) most * S_BAR_W);
            fprintf (out, "<rect class=\"kbar\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                     "fill=\"%s\"><title>%.1f \xc2\xb5s</title></rect>"
                     "<text class=\"small\" x=\"%d\" y=\"%d\">%.1f</text>\n",
                     S_LABEL_W, y, w, S_BAR_H / 2, s_colors [k % S_NCOLORS],
                     (double) ns / 1e3, S_LABEL_W + w + 4, y + S_BAR_H / 2, (double) ns / 1e3);
        }
    }
    //  Legend: which colour is which run.
    int ly = nnames * group_h + 12;
    for (size_t k = 0; k < n; k++) {
        char label [400];
        s_run_label (rows [k], label, sizeof label);
        int y = ly + (int) k * 16;
        fprintf (out, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                 "<text class=\"small\" x=\"%d\" y=\"%d\">", S_LABEL_W, y,
                 s_colors [k % S_NCOLORS], S_LABEL_W + 14, y + 9);
        s_xml (out, label);
        fprintf (out, "</text>\n");
    }
    fprintf (out, "</svg>\n");
}

//  Runs a chart shows at most: more bars than this say nothing.
#define S_PLOT_MAX 40

//  Picks the rows of section [I, END) to plot into PLOT (S_PLOT_MAX room):
//  all when they fit, else the best run of each device (rows are sorted
//  by device within a section), the first S_PLOT_MAX devices. Returns how
//  many.
static size_t
s_plot_rows (rxq_report_t *self, size_t i, size_t end, s_row_t **plot)
{
    size_t n = 0;
    if (end - i <= S_PLOT_MAX) {
        for (size_t k = i; k < end; k++)
            plot [n++] = self->rows [k];
        return n;
    }
    for (size_t k = i; k < end && n < S_PLOT_MAX; ) {
        size_t best = k, j = k + 1;
        while (j < end && strcmp (self->rows [j]->device, self->rows [k]->device) == 0) {
            if (s_headline (self->rows [j]) > s_headline (self->rows [best]))
                best = j;
            j++;
        }
        plot [n++] = self->rows [best];
        k = j;
    }
    return n;
}

void
rxq_report_html (rxq_report_t *self, FILE *out, const char *title)
{
    assert (self && out && title);
    s_sort (self);
    s_row_t *plot [S_PLOT_MAX];
    fprintf (out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             "<title>");
    s_xml (out, title);
    fprintf (out, "</title>\n<style>\n"
             "body{font-family:sans-serif;margin:2em;color:#222}\n"
             "table{border-collapse:collapse;margin:1em 0}\n"
             "th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}\n"
             "td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
             "svg text{font-size:12px}svg text.small{font-size:10px}"
             "svg text.axis{font-size:10px;fill:#555}\n"
             "</style>\n</head>\n<body>\n<h1>");
    s_xml (out, title);
    fprintf (out, "</h1>\n<p class=\"summary\">%zu record%s.</p>\n", self->count,
             self->count == 1 ? "" : "s");
    for (size_t i = 0; i < self->count; ) {
        size_t end = s_section_end (self, i);
        double best = s_section_best (self, i, end);
        fprintf (out, "<section class=\"bench\">\n<h2>");
        s_xml (out, self->rows [i]->bench);
        fprintf (out, "</h2>\n");
        size_t n = s_plot_rows (self, i, end, plot);
        if (n < end - i)
            fprintf (out, "<p class=\"note\">%zu runs: the charts show the best run of each "
                     "of %zu device%s; the table lists every run.</p>\n", end - i, n,
                     n == 1 ? "" : "s");
        s_svg_headline (plot, n, out);
        s_svg_kernels (plot, n, out);
        fprintf (out, "<table>\n<tr><th>device</th><th>vendor</th><th>driver</th>"
                 "<th>OpenCL</th><th>worker</th><th>finished</th><th>GFLOPS</th><th>GB/s</th>"
                 "<th>peak</th><th>vs best</th><th>kernel ms</th><th>rxq</th>"
                 "<th>kernel hash</th><th>seed</th><th>job</th></tr>\n");
        for (size_t k = i; k < end; k++) {
            const s_row_t *r = self->rows [k];
            char t [32];
            rxq_print_time (t, sizeof t, r->ms);
            const char *text [] = { r->device, r->vendor, r->driver, r->version, r->worker, t };
            fprintf (out, "<tr class=\"run\">");
            for (size_t c = 0; c < sizeof text / sizeof text [0]; c++) {
                fprintf (out, "<td>");
                s_xml (out, text [c]);
                fprintf (out, "</td>");
            }
            fprintf (out, "<td class=\"num\">%.2f</td><td class=\"num\">%.2f</td>", r->gflops,
                     r->gbps);
            if (r->peak > 0)
                fprintf (out, "<td class=\"num\">%.1f%%</td>", r->peak * 100);
            else
                fprintf (out, "<td class=\"num\">-</td>");
            fprintf (out, "<td class=\"num\">%.2f</td><td class=\"num\">%.3f</td><td>",
                     best > 0 ? s_headline (r) / best : 0, (double) r->kernels_ns / 1e6);
            s_xml (out, r->rxq_version);
            fprintf (out, "</td><td>");
            s_xml (out, r->kernel_hash);
            fprintf (out, "</td><td class=\"num\">%" PRIu64 "</td><td>", r->seed);
            s_xml (out, r->job);
            fprintf (out, "</td></tr>\n");
        }
        fprintf (out, "</table>\n</section>\n");
        i = end;
    }
    if (!self->count)
        fprintf (out, "<p>No benchmark records.</p>\n");
    fprintf (out, "</body>\n</html>\n");
}

//  ---------------------------------------------------------------------
//  JSON lines and CSV

void
rxq_report_jsonl (rxq_report_t *self, FILE *out)
{
    assert (self && out);
    s_sort (self);
    for (size_t i = 0; i < self->count; i++) {
        cmn_codec_print_json (out, &self->rows [i]->body.root);
        fputc ('\n', out);
    }
}

//  Writes TEXT as one CSV field, quoted when it holds a comma, quote,
//  newline or leading/trailing space (RFC 4180).
static void
s_csv (FILE *out, const char *text, bool last)
{
    bool quote = strpbrk (text, ",\"\r\n") != NULL
              || (text [0] && (text [0] == ' ' || text [strlen (text) - 1] == ' '));
    if (quote) {
        fputc ('"', out);
        for (const char *p = text; *p; p++) {
            if (*p == '"')
                fputc ('"', out);
            fputc (*p, out);
        }
        fputc ('"', out);
    }
    else
        fputs (text, out);
    fputs (last ? "\r\n" : ",", out);
}

void
rxq_report_csv (rxq_report_t *self, FILE *out)
{
    assert (self && out);
    s_sort (self);
    static const char *header [] = {
        "stream_id", "job", "kind", "worker", "finished_ms", "device", "vendor", "driver",
        "opencl_version", "rxq_version", "kernel_hash", "params", "seed", "gflops", "gbps",
        "peak_fraction", "copy_gbps", "fma_gflops", "kernels", "kernels_ms"
    };
    size_t ncols = sizeof header / sizeof header [0];
    for (size_t c = 0; c < ncols; c++)
        s_csv (out, header [c], c + 1 == ncols);
    for (size_t i = 0; i < self->count; i++) {
        const s_row_t *r = self->rows [i];
        char ms [24], seed [24], g [32], b [32], p [32], cg [32], fg [32], nk [16], km [32];
        snprintf (ms, sizeof ms, "%" PRIu64, r->ms);
        snprintf (seed, sizeof seed, "%" PRIu64, r->seed);
        snprintf (g, sizeof g, "%.6g", r->gflops);
        snprintf (b, sizeof b, "%.6g", r->gbps);
        snprintf (p, sizeof p, "%.6g", r->peak);
        snprintf (cg, sizeof cg, "%.6g", r->copy_gbps);
        snprintf (fg, sizeof fg, "%.6g", r->fma_gflops);
        snprintf (nk, sizeof nk, "%u", r->nkernels);
        snprintf (km, sizeof km, "%.6g", (double) r->kernels_ns / 1e6);
        const char *cols [] = {
            r->id, r->job, r->kind, r->worker, ms, r->device, r->vendor, r->driver, r->version,
            r->rxq_version, r->kernel_hash, r->params, seed, g, b, p, cg, fg, nk, km
        };
        for (size_t c = 0; c < ncols; c++)
            s_csv (out, cols [c], c + 1 == ncols);
    }
}
