/*  rxq_print: see rxq_print.h. */
#include "rxq_print.h"
#include "cmn_codec.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

//  Longest cell printed in a table; longer values are cut with "...".
#define CELL_MAX 48

//  Copies the string field KEY of MAP into BUF, or DEFLT when absent.
static const char *
s_str (const msgpack_object *map, const char *key, char *buf, size_t size, const char *deflt)
{
    if (cmn_codec_get_cstr (map, key, buf, size, NULL) != 0 || !buf [0])
        snprintf (buf, size, "%s", deflt);
    return buf;
}

static uint64_t
s_uint (const msgpack_object *map, const char *key)
{
    uint64_t v = 0;
    if (cmn_codec_get_uint (map, key, &v, NULL) != 0)
        v = 0;
    return v;
}

static uint64_t
s_now_ms (void)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    return (uint64_t) tv.tv_sec * 1000 + (uint64_t) tv.tv_usec / 1000;
}

void
rxq_print_time (char *buf, size_t size, uint64_t ms)
{
    if (ms == 0) {
        snprintf (buf, size, "-");
        return;
    }
    time_t secs = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    strftime (buf, size, "%Y-%m-%d %H:%M:%SZ", &tm);
}

//  "3.2 s", "4 min", "2 h" for a duration in ms.
static void
s_duration (char *buf, size_t size, uint64_t ms)
{
    if (ms < 60000)
        snprintf (buf, size, "%.1f s", (double) ms / 1000.0);
    else
    if (ms < 3600000)
        snprintf (buf, size, "%.0f min", (double) ms / 60000.0);
    else
        snprintf (buf, size, "%.1f h", (double) ms / 3600000.0);
}

static const char *
s_priority_name (uint64_t p)
{
    return p == 0 ? "low" : p == 1 ? "normal" : p == 2 ? "high" : "?";
}

//  Prints a scalar as text, or a container as JSON.
static void
s_print_value (FILE *out, const msgpack_object *v)
{
    switch (v->type) {
        case MSGPACK_OBJECT_STR:
            fwrite (v->via.str.ptr, 1, v->via.str.size, out);
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            fprintf (out, "%" PRIu64, v->via.u64);
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            fprintf (out, "%" PRId64, v->via.i64);
            break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            fprintf (out, "%.6g", v->via.f64);
            break;
        case MSGPACK_OBJECT_BOOLEAN:
            fputs (v->via.boolean ? "true" : "false", out);
            break;
        default:
            cmn_codec_print_json (out, v);
            break;
    }
}

//  Prints MAP's entries as "PREFIXkey: value" lines, nested maps with
//  dotted keys, so a result of any shape reads as a list.
static void
s_print_flat (FILE *out, const char *indent, const char *prefix, const msgpack_object *map,
              int depth)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr [i];
        char key [256];
        if (kv->key.type == MSGPACK_OBJECT_STR)
            snprintf (key, sizeof key, "%s%.*s", prefix,
                      (int) (kv->key.via.str.size > 128 ? 128 : kv->key.via.str.size),
                      kv->key.via.str.ptr);
        else
            snprintf (key, sizeof key, "%s?", prefix);
        if (kv->val.type == MSGPACK_OBJECT_MAP && kv->val.via.map.size > 0 && depth < 4) {
            char sub [260];
            snprintf (sub, sizeof sub, "%s.", key);
            s_print_flat (out, indent, sub, &kv->val, depth + 1);
            continue;
        }
        fprintf (out, "%s%s: ", indent, key);
        s_print_value (out, &kv->val);
        fputc ('\n', out);
    }
}

void
rxq_print_job (FILE *out, const msgpack_object *job)
{
    char buf [256], t [64];
    fprintf (out, "id:           %s\n", s_str (job, "id", buf, sizeof buf, "?"));
    fprintf (out, "kind:         %s\n", s_str (job, "kind", buf, sizeof buf, "?"));
    fprintf (out, "state:        %s\n", s_str (job, "state", buf, sizeof buf, "?"));
    fprintf (out, "priority:     %s\n", s_priority_name (s_uint (job, "priority")));
    fprintf (out, "attempt:      %" PRIu64 "\n", s_uint (job, "attempt"));
    fprintf (out, "failures:     %" PRIu64 " of %" PRIu64 " allowed\n", s_uint (job, "failures"),
             s_uint (job, "max_attempts"));
    fprintf (out, "worker:       %s\n", s_str (job, "worker", buf, sizeof buf, "-"));
    uint64_t created = s_uint (job, "created_ms");
    uint64_t started = s_uint (job, "started_ms");
    uint64_t finished = s_uint (job, "finished_ms");
    rxq_print_time (t, sizeof t, created);
    fprintf (out, "created:      %s\n", t);
    rxq_print_time (t, sizeof t, started);
    fprintf (out, "started:      %s\n", t);
    rxq_print_time (t, sizeof t, finished);
    fprintf (out, "finished:     %s\n", t);
    if (started && finished >= started) {
        s_duration (t, sizeof t, finished - started);
        fprintf (out, "ran for:      %s\n", t);
    }
    const msgpack_object *params = NULL;
    if (cmn_codec_get_map (job, "params", &params, NULL) == 0) {
        fputs ("params:       ", out);
        cmn_codec_print_json (out, params);
        fputc ('\n', out);
    }
    if (cmn_codec_get_cstr (job, "reason", buf, sizeof buf, NULL) == 0 && buf [0])
        fprintf (out, "reason:       %s\n", buf);
    const msgpack_object *error = NULL;
    if (cmn_codec_get_map (job, "error", &error, NULL) == 0) {
        char name [64], msg [256];
        fprintf (out, "error:        %s: %s\n", s_str (error, "name", name, sizeof name, "error"),
                 s_str (error, "message", msg, sizeof msg, "(no message)"));
    }
    const msgpack_object *result = NULL;
    if (cmn_codec_get_map (job, "result", &result, NULL) == 0) {
        fputs ("result:\n", out);
        s_print_flat (out, "  ", "", result, 0);
    }
}

//  Copies a cell value, cut to CELL_MAX characters.
static void
s_cell (char *buf, size_t size, const char *text)
{
    size_t n = strlen (text);
    if (n > CELL_MAX && size > CELL_MAX)
        snprintf (buf, size, "%.*s...", CELL_MAX - 3, text);
    else
        snprintf (buf, size, "%s", text);
}

//  A table of up to 8 columns, widths computed before printing.
#define TABLE_COLS 8
typedef struct {
    int cols;                       // number of columns
    int rows;                       // rows filled, header included
    char (*cells) [TABLE_COLS][CELL_MAX + 4];   // rows x cols, malloc'd
} s_table_t;

static void
s_table_print (FILE *out, s_table_t *t)
{
    int width [TABLE_COLS] = { 0 };
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->cols; c++) {
            int n = (int) strlen (t->cells [r][c]);
            if (n > width [c])
                width [c] = n;
        }
    for (int r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->cols; c++) {
            if (c == t->cols - 1)
                fputs (t->cells [r][c], out);
            else
                fprintf (out, "%-*s  ", width [c], t->cells [r][c]);
        }
        fputc ('\n', out);
    }
}

void
rxq_print_jobs (FILE *out, const msgpack_object *jobs)
{
    if (!jobs || jobs->type != MSGPACK_OBJECT_ARRAY || jobs->via.array.size == 0) {
        fputs ("no jobs\n", out);
        return;
    }
    static const char *header [] = { "ID", "KIND", "STATE", "PRI", "FAILS", "WORKER", "AGE" };
    s_table_t t = { 7, 0, NULL };
    t.cells = calloc (jobs->via.array.size + 1, sizeof *t.cells);
    if (!t.cells)
        return;
    for (int c = 0; c < t.cols; c++)
        s_cell (t.cells [0][c], sizeof t.cells [0][c], header [c]);
    t.rows = 1;
    uint64_t now = s_now_ms ();
    for (uint32_t i = 0; i < jobs->via.array.size; i++) {
        const msgpack_object *job = &jobs->via.array.ptr [i];
        if (job->type != MSGPACK_OBJECT_MAP)
            continue;
        char buf [256];
        char (*row) [CELL_MAX + 4] = t.cells [t.rows++];
        s_cell (row [0], sizeof row [0], s_str (job, "id", buf, sizeof buf, "?"));
        s_cell (row [1], sizeof row [1], s_str (job, "kind", buf, sizeof buf, "?"));
        s_cell (row [2], sizeof row [2], s_str (job, "state", buf, sizeof buf, "?"));
        s_cell (row [3], sizeof row [3], s_priority_name (s_uint (job, "priority")));
        snprintf (buf, sizeof buf, "%" PRIu64 "/%" PRIu64, s_uint (job, "failures"),
                  s_uint (job, "max_attempts"));
        s_cell (row [4], sizeof row [4], buf);
        s_cell (row [5], sizeof row [5], s_str (job, "worker", buf, sizeof buf, "-"));
        uint64_t created = s_uint (job, "created_ms");
        if (created && now >= created)
            s_duration (buf, sizeof buf, now - created);
        else
            snprintf (buf, sizeof buf, "-");
        s_cell (row [6], sizeof row [6], buf);
    }
    s_table_print (out, &t);
    free (t.cells);
}

//  "name (type)" from a worker's device map, or "-".
static void
s_device (char *buf, size_t size, const msgpack_object *worker)
{
    const msgpack_object *dev = NULL;
    char name [128], type [32];
    if (cmn_codec_get_map (worker, "device", &dev, NULL) != 0 || dev->via.map.size == 0) {
        snprintf (buf, size, "-");
        return;
    }
    s_str (dev, "name", name, sizeof name, "?");
    if (cmn_codec_get_cstr (dev, "type", type, sizeof type, NULL) == 0 && type [0])
        snprintf (buf, size, "%s (%s)", name, type);
    else
        snprintf (buf, size, "%s", name);
}

//  Joins an array of strings with commas into BUF; "-" when empty.
static void
s_join (char *buf, size_t size, const msgpack_object *map, const char *key)
{
    const msgpack_object *arr = NULL;
    buf [0] = 0;
    size_t used = 0;
    if (cmn_codec_get_array (map, key, &arr, NULL) == 0)
        for (uint32_t i = 0; i < arr->via.array.size && used + 1 < size; i++) {
            const msgpack_object *s = &arr->via.array.ptr [i];
            if (s->type != MSGPACK_OBJECT_STR)
                continue;
            int n = snprintf (buf + used, size - used, "%s%.*s", used ? "," : "",
                              (int) s->via.str.size, s->via.str.ptr);
            if (n < 0)
                break;
            used += (size_t) n;
        }
    if (!buf [0])
        snprintf (buf, size, "-");
}

void
rxq_print_workers (FILE *out, const msgpack_object *workers)
{
    if (!workers || workers->type != MSGPACK_OBJECT_ARRAY || workers->via.array.size == 0) {
        fputs ("no workers\n", out);
        return;
    }
    static const char *header [] = { "NAME", "STATE", "JOBS", "DEVICE", "KINDS", "LAST SEEN" };
    s_table_t t = { 6, 0, NULL };
    t.cells = calloc (workers->via.array.size + 1, sizeof *t.cells);
    if (!t.cells)
        return;
    for (int c = 0; c < t.cols; c++)
        s_cell (t.cells [0][c], sizeof t.cells [0][c], header [c]);
    t.rows = 1;
    uint64_t now = s_now_ms ();
    for (uint32_t i = 0; i < workers->via.array.size; i++) {
        const msgpack_object *w = &workers->via.array.ptr [i];
        if (w->type != MSGPACK_OBJECT_MAP)
            continue;
        char buf [256];
        char (*row) [CELL_MAX + 4] = t.cells [t.rows++];
        s_cell (row [0], sizeof row [0], s_str (w, "name", buf, sizeof buf, "?"));
        s_cell (row [1], sizeof row [1], s_str (w, "state", buf, sizeof buf, "?"));
        s_join (buf, sizeof buf, w, "jobs");
        s_cell (row [2], sizeof row [2], buf);
        s_device (buf, sizeof buf, w);
        s_cell (row [3], sizeof row [3], buf);
        s_join (buf, sizeof buf, w, "kinds");
        s_cell (row [4], sizeof row [4], buf);
        uint64_t seen = s_uint (w, "last_seen_ms");
        if (seen && now >= seen) {
            s_duration (buf, sizeof buf, now - seen);
            strncat (buf, " ago", sizeof buf - strlen (buf) - 1);
        }
        else
            snprintf (buf, sizeof buf, "-");
        s_cell (row [5], sizeof row [5], buf);
    }
    s_table_print (out, &t);
    free (t.cells);
}

void
rxq_print_event (FILE *out, const msgpack_object *body)
{
    const msgpack_object *ev = NULL;
    if (cmn_codec_get_map (body, "event", &ev, NULL) != 0)
        return;
    char id [80], type [32], buf [256], t [32];
    s_str (body, "id", id, sizeof id, "?");
    s_str (ev, "type", type, sizeof type, "?");
    //  Event ids order events but carry no time: print when it arrived.
    uint64_t ms = s_now_ms ();
    time_t secs = (time_t) (ms / 1000);
    struct tm tm;
    localtime_r (&secs, &tm);
    strftime (t, sizeof t, "%H:%M:%S", &tm);
    fprintf (out, "%s.%03u %s ", t, (unsigned) (ms % 1000), id);
    if (strcmp (type, "leased") == 0)
        fprintf (out, "leased by %s (attempt %" PRIu64 ")",
                 s_str (ev, "worker", buf, sizeof buf, "?"), s_uint (ev, "attempt"));
    else
    if (strcmp (type, "progress") == 0) {
        double fraction = 0;
        cmn_codec_get_double (ev, "fraction", &fraction, NULL);
        fprintf (out, "progress %3.0f%% %s", fraction * 100.0,
                 s_str (ev, "message", buf, sizeof buf, ""));
    }
    else
    if (strcmp (type, "requeued") == 0)
        fprintf (out, "requeued: %s", s_str (ev, "reason", buf, sizeof buf, "no reason given"));
    else
    if (strcmp (type, "failed") == 0 || strcmp (type, "dead") == 0) {
        const msgpack_object *error = NULL;
        fputs (type, out);
        if (cmn_codec_get_map (ev, "error", &error, NULL) == 0)
            fprintf (out, ": %s", s_str (error, "message", buf, sizeof buf, "no message"));
    }
    else
        fputs (type, out);
    fputc ('\n', out);
    fflush (out);
}

static bool
s_key_contains (const msgpack_object *key, const char *name)
{
    size_t n = strlen (name);
    if (key->type != MSGPACK_OBJECT_STR || key->via.str.size < n)
        return false;
    for (size_t i = 0; i + n <= key->via.str.size; i++)
        if (memcmp (key->via.str.ptr + i, name, n) == 0)
            return true;
    return false;
}

bool
rxq_print_find_number (const msgpack_object *obj, const char *name, double *out)
{
    if (!obj || obj->type != MSGPACK_OBJECT_MAP)
        return false;
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object_kv *kv = &obj->via.map.ptr [i];
        if (!s_key_contains (&kv->key, name))
            continue;
        const msgpack_object *v = &kv->val;
        if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64) {
            *out = v->via.f64;
            return true;
        }
        if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            *out = (double) v->via.u64;
            return true;
        }
    }
    for (uint32_t i = 0; i < obj->via.map.size; i++)
        if (rxq_print_find_number (&obj->via.map.ptr [i].val, name, out))
            return true;
    return false;
}

//  Prints the headline figures of a bench.device result: best and median
//  copy bandwidth and SGEMM throughput, and the SGEMM check.
static void
s_print_bench (FILE *out, const msgpack_object *result)
{
    double best, median, x;
    bool have_best = rxq_print_find_number (result, "gbps_best", &best)
                  || rxq_print_find_number (result, "gbps", &best);
    if (have_best) {
        fprintf (out, "  copy bandwidth:   %10.2f GB/s", best);
        if (rxq_print_find_number (result, "gbps_median", &median))
            fprintf (out, " best, %.2f median", median);
        if (rxq_print_find_number (cmn_codec_find (result, "copy"), "bytes", &x))
            fprintf (out, " (%.0f MiB buffer)", x / (1024.0 * 1024.0));
        fputc ('\n', out);
    }
    have_best = rxq_print_find_number (result, "gflops_best", &best)
             || rxq_print_find_number (result, "gflops", &best);
    if (have_best) {
        fprintf (out, "  SGEMM throughput: %10.2f GFLOPS", best);
        if (rxq_print_find_number (result, "gflops_median", &median))
            fprintf (out, " best, %.2f median", median);
        const msgpack_object *sgemm = cmn_codec_find (result, "sgemm");
        uint64_t n = 0;
        if (sgemm && cmn_codec_get_uint (sgemm, "n", &n, NULL) == 0)
            fprintf (out, " (M=N=K=%" PRIu64 ")", n);
        fputc ('\n', out);
    }
    if (rxq_print_find_number (result, "rel_err", &x)) {
        fprintf (out, "  SGEMM max rel. error: %.3g", x);
        if (rxq_print_find_number (result, "tolerance", &best))
            fprintf (out, " (tolerance %.3g)", best);
        fputc ('\n', out);
    }
}

void
rxq_print_result (FILE *out, const msgpack_object *job)
{
    char state [32], kind [80], id [80], worker [128];
    s_str (job, "state", state, sizeof state, "?");
    s_str (job, "kind", kind, sizeof kind, "?");
    s_str (job, "id", id, sizeof id, "?");
    s_str (job, "worker", worker, sizeof worker, "-");
    const msgpack_object *result = NULL;
    if (strcmp (state, "succeeded") != 0 || cmn_codec_get_map (job, "result", &result, NULL) != 0) {
        fprintf (out, "job %s %s\n", id, state);
        const msgpack_object *error = NULL;
        if (cmn_codec_get_map (job, "error", &error, NULL) == 0) {
            char name [64], msg [256];
            fprintf (out, "error: %s: %s\n", s_str (error, "name", name, sizeof name, "error"),
                     s_str (error, "message", msg, sizeof msg, "(no message)"));
        }
        return;
    }
    if (strcmp (kind, "bench.device") == 0) {
        char device [128];
        const msgpack_object *dev = cmn_codec_find (result, "device");
        s_str (dev, "name", device, sizeof device, "?");
        fprintf (out, "bench.device on %s, device %s (job %s)\n", worker, device, id);
        s_print_bench (out, result);
        fputs ("details:\n", out);
        s_print_flat (out, "  ", "", result, 0);
        return;
    }
    s_print_flat (out, "", "", result, 0);
}
