/*  wrk_quantize: see wrk_quantize.h.
 *
 *  Order of work: open the input (mapped), plan every tensor's output type
 *  (keep rules, 1-D tensors, fallbacks, the mixed solver on CPU samples),
 *  describe the output to cmn_gguf_writer with a data callback per tensor,
 *  then write: the writer asks each tensor's bytes in order and the
 *  callback fills them one device chunk at a time (s_chunk). The report is
 *  packed only after the file was renamed into place.
 */
#include "wrk_quantize.h"
#include "cmn_codec.h"
#include "cmn_gguf.h"
#include "cmn_gguf_writer.h"
#include "cmn_mixed.h"
#include "cmn_quant.h"
#include "cmn_safetensors.h"
#include "wrk_blobs.h"
#include "wrk_quant.h"
#include "wrk_wcache.h"
#include "cmn_log.h"
#include <assert.h>
#include <inttypes.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_DEFAULT_CHUNK ((size_t) 64 << 20)
//  Sensitivity sample per tensor: rows spread over the tensor, at most
//  this many values in all (and at least one row).
#define S_SAMPLE_VALUES 65536
#define S_SAMPLE_ROWS 16
//  llama.cpp's GGML_QNT_VERSION, stored as general.quantization_version.
#define S_QNT_VERSION 2
#define S_FTYPE_GUESSED 1024

//  One tensor of the job.
typedef struct {
    const char *name;           // borrowed from the reader
    int n_dims;                 // 1 .. 4
    int64_t ne [4];             // GGUF order, ne[0] = row length
    int in_type;                // input type
    const uint8_t *data;        // mapped input bytes (maybe unaligned)
    size_t size;                // input bytes
    uint64_t nel;               // elements
    uint64_t rows;              // nel / ne[0]
    int out_type;               // chosen output type
    bool convert;               // goes through the device (else copied)
    char note [160];            // report note, "" for none
    wrk_quant_stats_t st;       // accumulated error statistics
    struct _s_job *job;         // back pointer for the writer callback
} s_tensor_t;

typedef struct _s_job {
    wrk_device_t *dev;
    wrk_quant_t *q;
    s_tensor_t *t;
    size_t nt;
    size_t chunk_bytes;         // float32 bytes per chunk
    cl_mem raw, x, qb, y;       // device buffers: input rows, floats, quants, round trip
    size_t raw_size, x_size, q_size;    // their sizes
    uint8_t *host;              // quantized bytes of the current chunk
    size_t host_size;           // its capacity
    size_t cur;                 // tensor of the chunk in host (SIZE_MAX: none)
    uint64_t c_off, c_len;      // chunk's byte range within the tensor
    uint64_t in_total;          // input bytes of all tensors
    uint64_t in_done;           // input bytes converted so far
    wrk_quantize_progress_fn *progress;
    void *progress_arg;
    char warnings [8][200];     // first warnings, for the report
    size_t n_warnings;          // warnings in all (the report lists the first 8)
} s_job_t;

static void
s_warn (s_job_t *j, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_warn (s_job_t *j, const char *fmt, ...)
{
    if (j->n_warnings < 8) {
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (j->warnings [j->n_warnings], sizeof j->warnings [0], fmt, ap);
        va_end (ap);
    }
    j->n_warnings++;
}

int
wrk_quantize_parse_type (const char *name, int *type, cmn_err_t *err)
{
    static const struct {
        const char *name;
        int type;
    } names [] = {
        { "q4_0", GGML_TYPE_Q4_0 }, { "q4_1", GGML_TYPE_Q4_1 }, { "q5_0", GGML_TYPE_Q5_0 },
        { "q5_1", GGML_TYPE_Q5_1 }, { "q8_0", GGML_TYPE_Q8_0 }, { "q4_k", GGML_TYPE_Q4_K },
        { "q5_k", GGML_TYPE_Q5_K }, { "q6_k", GGML_TYPE_Q6_K }, { "f32", GGML_TYPE_F32 },
        { "f16", GGML_TYPE_F16 }, { "bf16", GGML_TYPE_BF16 }, { "int4", RXQ_TYPE_INT4_G32 },
        { "int4_g32", RXQ_TYPE_INT4_G32 }, { "int4_g64", RXQ_TYPE_INT4_G64 },
        { "int4_g128", RXQ_TYPE_INT4_G128 }, { "mixed", WRK_QUANTIZE_MIXED },
    };
    for (size_t i = 0; name && i < sizeof names / sizeof names [0]; i++)
        if (strcasecmp (name, names [i].name) == 0) {
            *type = names [i].type;
            return 0;
        }
    return cmn_err_set (err, RXQ_E_PARAM, "unknown quantization type '%.32s' (known: q4_0 "
                        "q4_1 q5_0 q5_1 q8_0 q4_k q5_k q6_k int4 int4_g64 int4_g128 f16 bf16 "
                        "f32 mixed)", name ? name : "");
}

//  llama.cpp's LLAMA_FTYPE for a file whose weights are mostly TYPE.
static int
s_ftype (int type)
{
    switch (type) {
        case GGML_TYPE_F32:  return 0;
        case GGML_TYPE_F16:  return 1;
        case GGML_TYPE_Q4_0: return 2;
        case GGML_TYPE_Q4_1: return 3;
        case GGML_TYPE_Q8_0: return 7;
        case GGML_TYPE_Q5_0: return 8;
        case GGML_TYPE_Q5_1: return 9;
        case GGML_TYPE_Q4_K: return 14;     // Q4_K_S: every weight at q4_K
        case GGML_TYPE_Q5_K: return 16;     // Q5_K_S
        case GGML_TYPE_Q6_K: return 18;
        case GGML_TYPE_BF16: return 32;
        default:             return S_FTYPE_GUESSED;
    }
}

//  Type for tensor rows of NE0 values when TYPE's block does not divide
//  them: llama.cpp's fallbacks (q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0),
//  smaller INT4 groups, then f16.
static int
s_fallback (int type, uint64_t ne0)
{
    while (ne0 % cmn_quant_block_values (type)) {
        switch (type) {
            case GGML_TYPE_Q4_K: type = GGML_TYPE_Q5_0; break;
            case GGML_TYPE_Q5_K: type = GGML_TYPE_Q5_1; break;
            case GGML_TYPE_Q6_K: type = GGML_TYPE_Q8_0; break;
            case RXQ_TYPE_INT4_G128: type = RXQ_TYPE_INT4_G64; break;
            case RXQ_TYPE_INT4_G64: type = RXQ_TYPE_INT4_G32; break;
            default: type = GGML_TYPE_F16; break;
        }
    }
    return type;
}

//  Looks NAME up in the keep list ("glob[:type],..."). Returns 1 and the
//  kept type when a glob matches, 0 when none does, -1 with ERR for a bad
//  list.
static int
s_keep (const char *list, const char *name, int *type, cmn_err_t *err)
{
    if (!list || !*list)
        return 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr (p, ',');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        char item [256];
        if (len >= sizeof item)
            return cmn_err_set (err, RXQ_E_PARAM, "keep: entry longer than 255 bytes");
        memcpy (item, p, len);
        item [len] = 0;
        p += len + (end ? 1 : 0);
        if (!*item)
            continue;
        int kt = GGML_TYPE_Q8_0;
        char *colon = strrchr (item, ':');
        if (colon) {
            *colon = 0;
            const char *tn = colon + 1;
            if (!strcasecmp (tn, "q8_0")) kt = GGML_TYPE_Q8_0;
            else if (!strcasecmp (tn, "f16")) kt = GGML_TYPE_F16;
            else if (!strcasecmp (tn, "f32")) kt = GGML_TYPE_F32;
            else
                return cmn_err_set (err, RXQ_E_PARAM, "keep: type '%s' for '%s' must be "
                                    "q8_0, f16 or f32", tn, item);
        }
        if (fnmatch (item, name, 0) == 0) {
            *type = kt;
            return 1;
        }
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Input

typedef struct {
    cmn_gguf_t *gguf;
    cmn_safetensors_t *st;
    uint64_t file_bytes;
} s_input_t;

static int
s_open_input (const char *path, s_input_t *in, cmn_err_t *err)
{
    memset (in, 0, sizeof *in);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cmn_err_set (err, RXQ_E_IO, "cannot open model '%s': %s", path, strerror (errno));
    uint8_t magic [4] = { 0 };
    struct stat sb;
    ssize_t got = read (fd, magic, sizeof magic);
    int rc = fstat (fd, &sb);
    close (fd);
    if (got < 0 || rc < 0)
        return cmn_err_set (err, RXQ_E_IO, "cannot read model '%s': %s", path, strerror (errno));
    in->file_bytes = (uint64_t) sb.st_size;
    if (got == 4 && memcmp (magic, "GGUF", 4) == 0)
        in->gguf = cmn_gguf_open_file (path, NULL, err);
    else
        in->st = cmn_safetensors_open_file (path, NULL, err);
    if (!in->gguf && !in->st) {
        char msg [sizeof err->msg];
        snprintf (msg, sizeof msg, "%s", err->msg);
        return cmn_err_set (err, err->code, "model '%s': %s", path, msg);
    }
    return 0;
}

static void
s_close_input (s_input_t *in)
{
    cmn_gguf_destroy (&in->gguf);
    cmn_safetensors_destroy (&in->st);
}

static int
s_list_tensors (s_input_t *in, s_job_t *j, cmn_err_t *err)
{
    j->nt = in->gguf ? cmn_gguf_tensor_count (in->gguf) : cmn_safetensors_tensor_count (in->st);
    j->t = calloc (j->nt + 1, sizeof *j->t);
    if (!j->t)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < j->nt; i++) {
        s_tensor_t *t = &j->t [i];
        t->job = j;
        for (int d = 0; d < 4; d++)
            t->ne [d] = 1;
        if (in->gguf) {
            const cmn_gguf_tensor_t *g = cmn_gguf_tensor (in->gguf, i);
            t->name = g->name;
            t->n_dims = g->n_dims < 1 ? 1 : g->n_dims;
            memcpy (t->ne, g->ne, sizeof t->ne);
            t->in_type = g->type;
            t->data = g->data;
            t->size = g->size;
        }
        else {
            const cmn_safetensors_tensor_t *s = cmn_safetensors_tensor (in->st, i);
            if (s->n_dims > 4)
                return cmn_err_set (err, RXQ_E_UNSUPPORTED, "tensor '%s' has %d dimensions; "
                                    "GGUF holds at most 4", s->name, s->n_dims);
            t->name = s->name;
            t->n_dims = s->n_dims < 1 ? 1 : s->n_dims;
            for (int d = 0; d < s->n_dims; d++)
                t->ne [d] = (int64_t) s->shape [s->n_dims - 1 - d];
            t->in_type = s->type;
            t->data = s->data;
            t->size = s->size;
        }
        t->nel = (uint64_t) t->ne [0] * (uint64_t) t->ne [1] * (uint64_t) t->ne [2]
               * (uint64_t) t->ne [3];
        t->rows = t->ne [0] ? t->nel / (uint64_t) t->ne [0] : 0;
        j->in_total += t->size;
    }
    return 0;
}

//  Reads row R of T as floats into DST (CPU; for sensitivity samples).
static int
s_cpu_row (const s_tensor_t *t, uint64_t r, float *dst)
{
    const size_t rb = cmn_quant_row_bytes (t->in_type, (size_t) t->ne [0]);
    return cmn_quant_dequantize_row (t->in_type, t->data + r * rb, dst, (size_t) t->ne [0]);
}

//  --------------------------------------------------------------------------
//  Planning

//  True when T is a matrix (2-D or more, more than one row).
static bool
s_is_matrix (const s_tensor_t *t)
{
    return t->n_dims >= 2 && t->rows > 1;
}

static int
s_plan_fixed (s_job_t *j, const wrk_quantize_opts_t *opts, bool *open_p, cmn_err_t *err)
{
    for (size_t i = 0; i < j->nt; i++) {
        s_tensor_t *t = &j->t [i];
        open_p [i] = false;
        t->convert = true;
        if (t->in_type < 0 || !cmn_quant_supported (t->in_type) || t->nel == 0) {
            t->out_type = t->in_type;
            t->convert = false;
            if (t->nel) {
                snprintf (t->note, sizeof t->note, "%s: rxq does not convert this type; "
                          "copied unchanged", cmn_quant_type_name (t->in_type)
                          ? cmn_quant_type_name (t->in_type) : "unknown type");
                s_warn (j, "tensor '%s' copied unchanged (%s)", t->name, t->note);
            }
            continue;
        }
        const bool quantized_in = cmn_quant_block_values (t->in_type) > 1;
        if (quantized_in)
            s_warn (j, "tensor '%s' is already %s: dequantized before quantizing again "
                    "(errors compound)", t->name, cmn_quant_type_name (t->in_type));
        if (!s_is_matrix (t)) {
            //  Norms, biases: llama.cpp leaves them as they are; quantized
            //  input becomes f32.
            t->out_type = quantized_in ? GGML_TYPE_F32 : t->in_type;
            snprintf (t->note, sizeof t->note, "1-D: kept %s", cmn_quant_type_name (t->out_type));
            continue;
        }
        int kt = GGML_TYPE_Q8_0;
        int k = s_keep (opts->keep, t->name, &kt, err);
        if (k < 0)
            return -1;
        if (k) {
            t->out_type = s_fallback (kt, (uint64_t) t->ne [0]);
            snprintf (t->note, sizeof t->note, "kept at %s (keep)", cmn_quant_type_name (t->out_type));
            continue;
        }
        if (opts->type == WRK_QUANTIZE_MIXED) {
            open_p [i] = true;
            continue;
        }
        t->out_type = s_fallback (opts->type, (uint64_t) t->ne [0]);
        if (t->out_type != opts->type)
            snprintf (t->note, sizeof t->note, "row length %lld is not a multiple of %zu: "
                      "%s instead of %s", (long long) t->ne [0],
                      cmn_quant_block_values (opts->type), cmn_quant_type_name (t->out_type),
                      cmn_quant_type_name (opts->type));
    }
    return 0;
}

//  Header bytes of the output as cmn_gguf_writer lays it out, from the
//  input's metadata and tensor infos, plus room for the keys this file
//  adds and each tensor's padding: what the budget must leave room for.
static uint64_t
s_value_bytes (const cmn_gguf_value_t *v)
{
    if (v->type == CMN_GGUF_STRING)
        return 8 + v->v.str.len;
    if (v->type != CMN_GGUF_ARRAY)
        return cmn_gguf_type_size (v->type);
    uint64_t b = 4 + 8;
    if (v->v.arr.elem == CMN_GGUF_STRING || v->v.arr.elem == CMN_GGUF_ARRAY)
        for (size_t i = 0; i < v->v.arr.n; i++)
            b += s_value_bytes (&v->v.arr.items [i]);
    else
        b += (uint64_t) v->v.arr.n * cmn_gguf_type_size (v->v.arr.elem);
    return b;
}

static uint64_t
s_overhead (const s_input_t *in, const s_job_t *j, size_t align)
{
    uint64_t b = 4 + 4 + 8 + 8 + 256;   // header, and our own keys
    if (in->gguf)
        for (size_t i = 0; i < cmn_gguf_kv_count (in->gguf); i++)
            b += 8 + strlen (cmn_gguf_kv_key (in->gguf, i)) + 4
               + s_value_bytes (cmn_gguf_kv_value (in->gguf, i));
    else
        for (size_t i = 0; i < cmn_safetensors_metadata_count (in->st); i++)
            b += 8 + 12 + strlen (cmn_safetensors_metadata_key (in->st, i)) + 4 + 8
               + strlen (cmn_safetensors_metadata_value (in->st, i));
    for (size_t i = 0; i < j->nt; i++)
        b += 8 + strlen (j->t [i].name) + 4 + 8 * 4 + 4 + 8 + (align - 1);
    return b + align;
}

static int
s_plan_mixed (s_job_t *j, const s_input_t *in, const wrk_quantize_opts_t *opts,
              const bool *open, size_t align, cmn_err_t *err)
{
    if ((opts->budget_bytes > 0) == (opts->bpw > 0))
        return cmn_err_set (err, RXQ_E_PARAM, "type mixed needs exactly one of budget_bytes "
                            "and bpw");
    cmn_mixed_tensor_t *mt = calloc (j->nt + 1, sizeof *mt);
    int *choice = calloc (j->nt + 1, sizeof *choice);
    float *sample = malloc ((S_SAMPLE_VALUES + 1) * sizeof *sample);
    float *rowbuf = NULL;
    int rc = -1;
    if (!mt || !choice || !sample) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        goto done;
    }
    uint64_t total_nel = 0;
    for (size_t i = 0; i < j->nt; i++) {
        s_tensor_t *t = &j->t [i];
        total_nel += t->nel;
        mt [i].name = t->name;
        if (!open [i]) {
            mt [i].n_choices = 1;
            mt [i].type [0] = t->out_type;
            mt [i].bytes [0] = t->convert ? cmn_quant_row_bytes (t->out_type, (size_t) t->ne [0])
                                            * t->rows : t->size;
            continue;
        }
        //  Sensitivity sample: rows spread evenly over the tensor.
        const size_t cols = (size_t) t->ne [0];
        size_t nr = S_SAMPLE_VALUES / cols;
        if (nr < 1)
            nr = 1;
        if (nr > S_SAMPLE_ROWS)
            nr = S_SAMPLE_ROWS;
        if (nr > t->rows)
            nr = (size_t) t->rows;
        const float *x = sample;
        if ((uint64_t) nr * cols > S_SAMPLE_VALUES) {
            free (rowbuf);
            rowbuf = malloc (cols * sizeof *rowbuf);
            if (!rowbuf) {
                cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
                goto done;
            }
            x = rowbuf;
        }
        for (size_t r = 0; r < nr; r++)
            s_cpu_row (t, t->rows * r / nr, (float *) x + r * cols);
        const double imp = cmn_mixed_importance (t->name);
        int types [CMN_MIXED_MAX_CHOICES];
        mt [i].n_choices = cmn_mixed_candidates ((uint64_t) cols, types);
        for (int c = 0; c < mt [i].n_choices; c++) {
            double rel;
            if (cmn_mixed_rel_error (types [c], x, nr, cols, &rel, err)) {
                char msg [sizeof err->msg];
                snprintf (msg, sizeof msg, "%s", err->msg);
                cmn_err_set (err, RXQ_E_INVAL, "tensor '%s': %s", t->name, msg);
                goto done;
            }
            mt [i].type [c] = types [c];
            mt [i].bytes [c] = cmn_quant_row_bytes (types [c], cols) * t->rows;
            mt [i].error [c] = imp * rel;
        }
    }
    uint64_t budget, overhead;
    if (opts->bpw > 0) {
        budget = (uint64_t) floor (opts->bpw * (double) total_nel / 8.0);
        overhead = 0;
    }
    else {
        budget = opts->budget_bytes;
        overhead = s_overhead (in, j, align);
    }
    if (cmn_mixed_solve (mt, j->nt, budget, overhead, choice, NULL, NULL, err)) {
        if (opts->bpw > 0 && err->code == RXQ_E_PARAM) {
            uint64_t min = 0;
            for (size_t i = 0; i < j->nt; i++) {
                uint64_t m = mt [i].bytes [0];
                for (int c = 1; c < mt [i].n_choices; c++)
                    if (mt [i].bytes [c] < m)
                        m = mt [i].bytes [c];
                min += m;
            }
            cmn_err_set (err, RXQ_E_PARAM, "bpw %.3f is below the smallest possible %.3f bits "
                         "per weight (every tensor at its smallest candidate type, kept ones "
                         "as kept)", opts->bpw, total_nel ? 8.0 * (double) min / (double) total_nel : 0);
        }
        goto done;
    }
    for (size_t i = 0; i < j->nt; i++)
        if (open [i]) {
            j->t [i].out_type = mt [i].type [choice [i]];
            snprintf (j->t [i].note, sizeof j->t [i].note, "mixed: chosen for the budget "
                      "(relative error %.3g x importance %.1f)",
                      mt [i].error [choice [i]] / cmn_mixed_importance (j->t [i].name),
                      cmn_mixed_importance (j->t [i].name));
        }
    rc = 0;
done:
    free (mt);
    free (choice);
    free (sample);
    free (rowbuf);
    return rc;
}

//  --------------------------------------------------------------------------
//  Device streaming

static void
s_release (cl_mem *m)
{
    if (*m)
        clReleaseMemObject (*m);
    *m = NULL;
}

static int
s_alloc (s_job_t *j, cl_mem *m, size_t bytes, cmn_err_t *err)
{
    cl_int rc;
    *m = clCreateBuffer (wrk_device_context (j->dev), CL_MEM_READ_WRITE, bytes ? bytes : 4,
                         NULL, &rc);
    return *m ? 0 : wrk_device_cl_error (err, "clCreateBuffer", rc);
}

//  Rows of T per chunk: as many as fit chunk_bytes of floats, at least one.
static uint64_t
s_chunk_rows (const s_job_t *j, const s_tensor_t *t)
{
    uint64_t r = j->chunk_bytes / ((uint64_t) t->ne [0] * sizeof (float));
    if (r < 1)
        r = 1;
    //  One launch indexes at most 2^31 - 1 blocks and 2^32 - 1 values.
    while (r > 1 && (uint64_t) t->ne [0] * r > 0x7fffffffull)
        r /= 2;
    return r < t->rows ? r : t->rows;
}

//  Sizes the device and host buffers for the largest chunk of any tensor.
static int
s_buffers (s_job_t *j, cmn_err_t *err)
{
    size_t raw = 0, x = 0, qb = 0;
    for (size_t i = 0; i < j->nt; i++) {
        const s_tensor_t *t = &j->t [i];
        if (!t->convert)
            continue;
        const uint64_t r = s_chunk_rows (j, t);
        const size_t cols = (size_t) t->ne [0];
        const size_t rin = cmn_quant_row_bytes (t->in_type, cols) * r;
        const size_t rx = cols * sizeof (float) * r;
        const size_t rq = cmn_quant_row_bytes (t->out_type, cols) * r;
        if (t->in_type != GGML_TYPE_F32 && rin > raw) raw = rin;
        if (rx > x) x = rx;
        if (rq > qb) qb = rq;
    }
    j->host = malloc (qb ? qb : 1);
    j->host_size = qb;
    if (!j->host)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory for a %zu-byte chunk", qb);
    if (x == 0)
        return 0;
    if (s_alloc (j, &j->x, x, err) || s_alloc (j, &j->y, x, err) || s_alloc (j, &j->qb, qb, err)
    ||  (raw && s_alloc (j, &j->raw, raw, err)))
        return -1;
    j->raw_size = raw;
    j->x_size = x;
    j->q_size = qb;
    return 0;
}

//  Converts rows [R0, R0 + NR) of T on the device into j->host and adds
//  their error statistics to T.
static int
s_convert_rows (s_job_t *j, s_tensor_t *t, uint64_t r0, uint64_t nr, cmn_err_t *err)
{
    const size_t cols = (size_t) t->ne [0];
    const size_t n = cols * (size_t) nr;
    const size_t rin = cmn_quant_row_bytes (t->in_type, cols);
    const size_t rout = cmn_quant_row_bytes (t->out_type, cols);
    cl_command_queue queue = wrk_device_queue (j->dev);
    cl_mem src = t->in_type == GGML_TYPE_F32 ? j->x : j->raw;
    cl_int rc = clEnqueueWriteBuffer (queue, src, CL_TRUE, 0, rin * nr, t->data + r0 * rin,
                                      0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueWriteBuffer", rc);
    if (t->in_type != GGML_TYPE_F32
    &&  wrk_quant_dequantize (j->q, t->in_type, j->raw, j->x, n, err))
        return -1;
    size_t bad = 0;
    if (wrk_quant_quantize (j->q, t->out_type, j->x, j->qb, n, err))
        return -1;
    if (wrk_quant_finish (j->q, &bad, err)) {
        if (err->code == RXQ_E_INVAL) {
            const size_t qk = cmn_quant_block_values (t->out_type);
            return cmn_err_set (err, RXQ_E_INVAL, "tensor '%s': row %llu holds a NaN or "
                                "infinity, which %s cannot represent", t->name,
                                (unsigned long long) (r0 + bad * qk / cols),
                                cmn_quant_type_name (t->out_type));
        }
        return -1;
    }
    if (wrk_quant_dequantize (j->q, t->out_type, j->qb, j->y, n, err)
    ||  wrk_quant_stats (j->q, j->x, j->y, n, &t->st, err))
        return -1;
    rc = clEnqueueReadBuffer (queue, j->qb, CL_TRUE, 0, rout * nr, j->host, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueReadBuffer", rc);
    return 0;
}

//  cmn_gguf_writer's data callback: bytes [OFFSET, OFFSET + LEN) of the
//  output tensor ARG. The writer asks in order, so each device chunk is
//  converted once; a request outside the current chunk converts the chunk
//  that holds it.
static int
s_data (void *arg, void *buf, uint64_t offset, size_t len, cmn_err_t *err)
{
    s_tensor_t *t = arg;
    s_job_t *j = t->job;
    const size_t idx = (size_t) (t - j->t);
    if (!t->convert) {
        if (offset + len > t->size)
            return cmn_err_set (err, RXQ_E_INTERNAL, "tensor '%s': read past its data", t->name);
        memcpy (buf, t->data + offset, len);
        j->in_done += len;
        return 0;
    }
    const size_t cols = (size_t) t->ne [0];
    const uint64_t rout = cmn_quant_row_bytes (t->out_type, cols);
    const uint64_t rin = cmn_quant_row_bytes (t->in_type, cols);
    uint8_t *out = buf;
    while (len > 0) {
        if (j->cur != idx || offset < j->c_off || offset >= j->c_off + j->c_len) {
            const uint64_t per = s_chunk_rows (j, t);
            const uint64_t r0 = offset / rout / per * per;
            const uint64_t nr = r0 + per <= t->rows ? per : t->rows - r0;
            if (j->progress) {
                char msg [200];
                snprintf (msg, sizeof msg, "%s -> %s, rows %llu..%llu of %llu", t->name,
                          cmn_quant_type_name (t->out_type), (unsigned long long) r0,
                          (unsigned long long) (r0 + nr), (unsigned long long) t->rows);
                if (j->progress (j->progress_arg, j->in_total ? (double) j->in_done
                                 / (double) j->in_total : 0, msg, err))
                    return -1;
            }
            j->cur = SIZE_MAX;
            if (s_convert_rows (j, t, r0, nr, err))
                return -1;
            j->cur = idx;
            j->c_off = r0 * rout;
            j->c_len = nr * rout;
            j->in_done += nr * rin;
        }
        const uint64_t in_chunk = offset - j->c_off;
        size_t take = (size_t) (j->c_len - in_chunk);
        if (take > len)
            take = len;
        memcpy (out, j->host + in_chunk, take);
        out += take;
        offset += take;
        len -= take;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Output and report

static bool
s_skip_key (const char *key)
{
    return !strcmp (key, "general.alignment") || !strcmp (key, "general.file_type")
        || !strcmp (key, "general.quantization_version") || !strcmp (key, "rxq.private");
}

static int
s_describe (s_job_t *j, const s_input_t *in, cmn_gguf_writer_t *w, int *ftype_p,
            cmn_err_t *err)
{
    if (in->gguf && cmn_gguf_alignment (in->gguf) != CMN_GGUF_DEFAULT_ALIGNMENT
    &&  cmn_gguf_writer_set_alignment (w, (uint32_t) cmn_gguf_alignment (in->gguf), err))
        return -1;
    if (in->gguf) {
        for (size_t i = 0; i < cmn_gguf_kv_count (in->gguf); i++) {
            const char *key = cmn_gguf_kv_key (in->gguf, i);
            if (!s_skip_key (key)
            &&  cmn_gguf_writer_set (w, key, cmn_gguf_kv_value (in->gguf, i), err))
                return -1;
        }
    }
    else {
        for (size_t i = 0; i < cmn_safetensors_metadata_count (in->st); i++) {
            char key [300];
            snprintf (key, sizeof key, "safetensors.%s", cmn_safetensors_metadata_key (in->st, i));
            if (cmn_gguf_writer_set_str (w, key, cmn_safetensors_metadata_value (in->st, i), err))
                return -1;
        }
    }
    //  general.file_type: llama.cpp's LLAMA_FTYPE of the type that holds
    //  most matrix weights.
    uint64_t by_type [64] = { 0 };
    bool quantized = false, private_ = false;
    for (size_t i = 0; i < j->nt; i++) {
        const s_tensor_t *t = &j->t [i];
        if (cmn_quant_block_values (t->out_type) > 1)
            quantized = true;
        if (cmn_quant_is_private (t->out_type))
            private_ = true;
        if (s_is_matrix (t) && t->out_type >= 0 && t->out_type < 64)
            by_type [t->out_type] += t->nel;
    }
    int best = GGML_TYPE_F32;
    for (int ty = 0; ty < 64; ty++)
        if (by_type [ty] > by_type [best])
            best = ty;
    const int ftype = private_ ? S_FTYPE_GUESSED : s_ftype (best);
    *ftype_p = ftype;
    if (cmn_gguf_writer_set_u32 (w, "general.file_type", (uint32_t) ftype, err))
        return -1;
    if (quantized && cmn_gguf_writer_set_u32 (w, "general.quantization_version",
                                              S_QNT_VERSION, err))
        return -1;
    for (size_t i = 0; i < j->nt; i++) {
        s_tensor_t *t = &j->t [i];
        if (cmn_gguf_writer_add_tensor (w, t->name, t->out_type, t->n_dims, t->ne, NULL,
                                        s_data, t, err))
            return -1;
    }
    return 0;
}

static void
s_pack_sqnr (msgpack_packer *pk, double ssq, double sse)
{
    cmn_pack_key (pk, "sqnr_db");
    if (sse > 0 && ssq > 0)
        msgpack_pack_double (pk, 10.0 * log10 (ssq / sse));
    else
        msgpack_pack_nil (pk);
}

static void
s_pack_report (s_job_t *j, const char *out_path, uint64_t out_bytes, uint64_t in_bytes,
               double seconds, const char *type_name, msgpack_packer *pk)
{
    msgpack_pack_map (pk, 11);
    cmn_pack_kv_str (pk, "output", out_path);
    cmn_pack_kv_uint (pk, "output_bytes", out_bytes);
    cmn_pack_kv_uint (pk, "input_bytes", in_bytes);
    cmn_pack_kv_double (pk, "seconds", seconds);
    cmn_pack_kv_double (pk, "gbps", seconds > 0 ? (double) in_bytes / seconds / 1e9 : 0);
    //  The device's share: quantize, dequantize and error kernels.
    const double kernel_s = (double) wrk_quant_kernel_ns (j->q) / 1e9;
    cmn_pack_kv_double (pk, "kernel_seconds", kernel_s);
    cmn_pack_kv_double (pk, "kernel_gbps", kernel_s > 0 ? (double) in_bytes / kernel_s / 1e9 : 0);
    cmn_pack_kv_str (pk, "type", type_name);
    cmn_pack_key (pk, "tensors");
    msgpack_pack_array (pk, (uint32_t) j->nt);
    double sse = 0, ssq = 0, bits = 0, nel = 0;
    uint64_t n = 0;
    for (size_t i = 0; i < j->nt; i++) {
        const s_tensor_t *t = &j->t [i];
        const uint64_t bytes = t->convert ? cmn_quant_row_bytes (t->out_type, (size_t) t->ne [0])
                                            * t->rows : t->size;
        msgpack_pack_map (pk, t->note [0] ? 7 : 6);
        cmn_pack_kv_str (pk, "name", t->name);
        cmn_pack_kv_str (pk, "type", cmn_quant_type_name (t->out_type)
                         ? cmn_quant_type_name (t->out_type) : "unknown");
        cmn_pack_kv_double (pk, "rmse", t->st.n ? sqrt (t->st.sse / (double) t->st.n) : 0);
        cmn_pack_kv_double (pk, "max_abs", t->st.max_abs);
        s_pack_sqnr (pk, t->st.ssq, t->st.sse);
        cmn_pack_kv_double (pk, "bpw", t->nel ? 8.0 * (double) bytes / (double) t->nel : 0);
        if (t->note [0])
            cmn_pack_kv_str (pk, "note", t->note);
        sse += t->st.sse;
        ssq += t->st.ssq;
        n += t->st.n;
        bits += 8.0 * (double) bytes;
        nel += (double) t->nel;
    }
    cmn_pack_key (pk, "totals");
    msgpack_pack_map (pk, 3);
    cmn_pack_kv_double (pk, "bpw", nel > 0 ? bits / nel : 0);
    cmn_pack_kv_double (pk, "rmse", n ? sqrt (sse / (double) n) : 0);
    s_pack_sqnr (pk, ssq, sse);
    cmn_pack_key (pk, "warnings");
    const size_t nw = j->n_warnings < 8 ? j->n_warnings : 8;
    msgpack_pack_array (pk, (uint32_t) (nw + (j->n_warnings > 8)));
    for (size_t i = 0; i < nw; i++)
        cmn_pack_cstr (pk, j->warnings [i]);
    if (j->n_warnings > 8) {
        char more [64];
        snprintf (more, sizeof more, "... and %zu more warnings", j->n_warnings - 8);
        cmn_pack_cstr (pk, more);
    }
}

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

int
wrk_quantize_file (wrk_device_t *dev, const char *in_path, const char *out_path,
                   const wrk_quantize_opts_t *opts, wrk_quantize_progress_fn *progress,
                   void *progress_arg, msgpack_packer *report, cmn_err_t *err)
{
    assert (dev && in_path && out_path && opts);
    if (opts->type != WRK_QUANTIZE_MIXED && !wrk_quant_type_supported (opts->type))
        return cmn_err_set (err, RXQ_E_PARAM, "type %d is not a quantization target", opts->type);
    if (opts->type != WRK_QUANTIZE_MIXED && (opts->budget_bytes || opts->bpw > 0))
        return cmn_err_set (err, RXQ_E_PARAM, "budget_bytes and bpw apply to type mixed only");
    if (!(opts->bpw >= 0) || opts->bpw > 64)
        return cmn_err_set (err, RXQ_E_PARAM, "bpw must be between 0 and 64");
    const double t0 = s_now ();
    s_input_t in;
    if (s_open_input (in_path, &in, err))
        return -1;
    s_job_t job = { .dev = dev, .cur = SIZE_MAX, .progress = progress,
                    .progress_arg = progress_arg };
    job.chunk_bytes = opts->chunk_bytes ? opts->chunk_bytes : S_DEFAULT_CHUNK;
    const uint64_t max_alloc = wrk_device_info (dev)->max_alloc;
    if (max_alloc && job.chunk_bytes > max_alloc)
        job.chunk_bytes = (size_t) max_alloc;
    cmn_gguf_writer_t *w = NULL;
    bool *open = NULL;
    int rc = -1;
    if (s_list_tensors (&in, &job, err))
        goto done;
    open = calloc (job.nt + 1, sizeof *open);
    if (!open) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        goto done;
    }
    if (s_plan_fixed (&job, opts, open, err))
        goto done;
    const size_t align = in.gguf ? cmn_gguf_alignment (in.gguf) : CMN_GGUF_DEFAULT_ALIGNMENT;
    if (opts->type == WRK_QUANTIZE_MIXED && s_plan_mixed (&job, &in, opts, open, align, err))
        goto done;
    job.q = wrk_quant_new (dev, err);
    if (!job.q || s_buffers (&job, err))
        goto done;
    w = cmn_gguf_writer_new ();
    if (!w) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        goto done;
    }
    int ftype;
    if (s_describe (&job, &in, w, &ftype, err))
        goto done;
    if (cmn_gguf_writer_write_file (w, out_path, err))
        goto done;
    struct stat sb;
    const uint64_t out_bytes = stat (out_path, &sb) == 0 ? (uint64_t) sb.st_size : 0;
    if (opts->type == WRK_QUANTIZE_MIXED && opts->budget_bytes && out_bytes > opts->budget_bytes) {
        //  s_overhead is an upper bound of the header, so this is a bug.
        unlink (out_path);
        cmn_err_set (err, RXQ_E_INTERNAL, "output of %llu bytes exceeds the budget of %llu",
                     (unsigned long long) out_bytes, (unsigned long long) opts->budget_bytes);
        goto done;
    }
    //  The file is complete: a stop request that arrives now changes nothing.
    if (progress) {
        cmn_err_t late = { 0 };
        (void) progress (progress_arg, 1.0, "done", &late);
    }
    if (report) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        const char *tn = opts->type == WRK_QUANTIZE_MIXED ? "mixed"
                       : cmn_quant_type_name (opts->type);
        s_pack_report (&job, out_path, out_bytes, in.file_bytes, s_now () - t0, tn, &pk);
        report->callback (report->data, sbuf.data, sbuf.size);
        msgpack_sbuffer_destroy (&sbuf);
    }
    rc = 0;
done:
    cmn_gguf_writer_destroy (&w);
    s_release (&job.raw);
    s_release (&job.x);
    s_release (&job.qb);
    s_release (&job.y);
    wrk_quant_destroy (&job.q);
    free (job.host);
    free (job.t);
    free (open);
    s_close_input (&in);
    return rc;
}

//  --------------------------------------------------------------------------
//  Job runner

static int
s_job_progress (void *arg, double fraction, const char *message, cmn_err_t *err)
{
    wrk_job_t *job = arg;
    if (wrk_job_should_stop (job)) {
        *err = job->err;
        return -1;
    }
    wrk_job_progress (job, fraction, "%s", message);
    return 0;
}

//  Writes raw msgpack bytes to PK (a value packed elsewhere).
static void
s_pack_raw (msgpack_packer *pk, const char *data, size_t len)
{
    pk->callback (pk->data, data, len);
}

//  Packs MAP (a result map) into PK with `weights_cached` set to CACHED.
static void
s_pack_result (msgpack_packer *pk, const msgpack_object_map *map, bool cached)
{
    uint32_t keep = 0;
    for (uint32_t i = 0; i < map->size; i++)
        keep += !cmn_codec_str_eq (&map->ptr [i].key, "weights_cached");
    msgpack_pack_map (pk, keep + 1);
    for (uint32_t i = 0; i < map->size; i++)
        if (!cmn_codec_str_eq (&map->ptr [i].key, "weights_cached")) {
            msgpack_pack_object (pk, map->ptr [i].key);
            msgpack_pack_object (pk, map->ptr [i].val);
        }
    cmn_pack_kv_bool (pk, "weights_cached", cached);
}

//  A repeat of a job the weight cache remembers: same model, type and
//  options. The quantized tensors are on the device and the output is a
//  blob; the job's result is the one computed then (quantization is
//  deterministic: the same input and options give the same bytes), once
//  the broker is known to hold the output (it is uploaded again from the
//  worker's blob cache if not). Returns 0 when it answered the job, 1
//  when the cache cannot (the job then runs in full).
static int
s_quantize_cached (wrk_job_t *job, const char *model, const char *type_s, const char *sig)
{
    const void *extra = NULL;
    size_t len = 0;
    uint64_t bytes = 0;
    if (!job->wcache || !job->blobs
    ||  !wrk_wcache_lookup (job->wcache, model, type_s, &extra, &len, &bytes) || !extra)
        return 1;
    cmn_body_t entry;
    if (cmn_body_decode (&entry, extra, len, &cmn_codec_limits_default, NULL))
        return 1;
    char esig [4200] = "";
    char out [CMN_BLOB_HEX_LEN + 1] = "";
    const msgpack_object *result = NULL;
    int rc = 1;
    cmn_err_t err = { 0 };
    if (cmn_codec_get_cstr (&entry.root, "sig", esig, sizeof esig, NULL) == 0
    &&  strcmp (esig, sig) == 0
    &&  cmn_codec_get_cstr (&entry.root, "output_blob", out, sizeof out, NULL) == 0
    &&  cmn_codec_get_map (&entry.root, "result", &result, NULL) == 0) {
        if (wrk_blobs_push (job->blobs, out, &err) == 0) {
            wrk_job_progress (job, 1.0, "served from the weight cache: %.16s... at %s is on "
                              "the device (%.1f MB), output %.16s...", model, type_s,
                              (double) bytes / 1e6, out);
            s_pack_result (job->result, &result->via.map, true);
            rc = 0;
        }
        else
            wrk_job_progress (job, 0.0, "weight cache entry for %.16s... at %s not usable (%s);"
                              " quantizing again", model, type_s, err.msg);
    }
    cmn_body_free (&entry);
    return rc;
}

//  quantize on blobs (docs/store.md): fetches blob MODEL into the worker's
//  cache (a hit costs nothing), quantizes it into the cache's tmp
//  directory, uploads the output to the broker's store and keeps it in
//  the cache, then loads its tensors into the weight cache on the device.
//  The result is the report with `output` replaced by `output_blob` (its
//  SHA-256), plus `model_blob`, `model_cached` and `weights_cached`.
static int
s_quantize_blob (wrk_job_t *job, const char *model, const char *type_s,
                 const wrk_quantize_opts_t *opts)
{
    //  What makes two jobs give the same output: the model and these.
    char sig [4200];
    snprintf (sig, sizeof sig, "type=%s budget=%" PRIu64 " bpw=%.17g keep=%s", type_s,
              opts->budget_bytes, opts->bpw, opts->keep ? opts->keep : "");
    if (s_quantize_cached (job, model, type_s, sig) == 0)
        return 0;
    char in [4096], out [4096];
    bool hit = false;
    if (wrk_job_fetch_blob (job, "model", model, in, sizeof in, &hit))
        return -1;
    if (wrk_blobs_tmp_path (job->blobs, ".gguf", out, sizeof out))
        return cmn_err_set (&job->err, RXQ_E_INVAL, "quantize: blob cache path too long");
    msgpack_sbuffer report;
    msgpack_sbuffer_init (&report);
    msgpack_packer rpk;
    msgpack_packer_init (&rpk, &report, msgpack_sbuffer_write);
    if (wrk_quantize_file (job->device, in, out, opts, s_job_progress, job, &rpk, &job->err)) {
        msgpack_sbuffer_destroy (&report);
        return -1;
    }
    char hash [CMN_BLOB_HEX_LEN + 1];
    if (wrk_job_put_blob (job, out, hash)) {
        msgpack_sbuffer_destroy (&report);
        return -1;
    }
    //  The result: the report with `output` (a path in our tmp directory,
    //  gone now) replaced by the blob's name.
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    size_t off = 0;
    msgpack_sbuffer res;
    msgpack_sbuffer_init (&res);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &res, msgpack_sbuffer_write);
    int rc = 0;
    if (msgpack_unpack_next (&u, report.data, report.size, &off) != MSGPACK_UNPACK_SUCCESS
    ||  u.data.type != MSGPACK_OBJECT_MAP)
        rc = cmn_err_set (&job->err, RXQ_E_INTERNAL, "quantize: report is not a map");
    else {
        const msgpack_object_map *m = &u.data.via.map;
        uint32_t keep = 0;
        for (uint32_t i = 0; i < m->size; i++)
            keep += !cmn_codec_str_eq (&m->ptr [i].key, "output");
        msgpack_pack_map (&pk, keep + 4);
        for (uint32_t i = 0; i < m->size; i++)
            if (!cmn_codec_str_eq (&m->ptr [i].key, "output")) {
                msgpack_pack_object (&pk, m->ptr [i].key);
                msgpack_pack_object (&pk, m->ptr [i].val);
            }
        cmn_pack_kv_str (&pk, "output_blob", hash);
        cmn_pack_kv_str (&pk, "model_blob", model);
        cmn_pack_kv_bool (&pk, "model_cached", hit);
        cmn_pack_kv_bool (&pk, "weights_cached", false);
        s_pack_raw (job->result, res.data, res.size);
    }
    msgpack_unpacked_destroy (&u);
    msgpack_sbuffer_destroy (&report);
    //  Keep the quantized tensors on the device for the next job on this
    //  model; a failure here costs the cache, not the job.
    char path [4096];
    if (rc == 0 && job->wcache
    &&  wrk_blobs_fetch (job->blobs, hash, path, sizeof path, NULL, NULL, NULL, &job->err) == 0) {
        msgpack_sbuffer extra;
        msgpack_sbuffer_init (&extra);
        msgpack_packer epk;
        msgpack_packer_init (&epk, &extra, msgpack_sbuffer_write);
        msgpack_pack_map (&epk, 3);
        cmn_pack_kv_str (&epk, "sig", sig);
        cmn_pack_kv_str (&epk, "output_blob", hash);
        cmn_pack_key (&epk, "result");
        msgpack_sbuffer_write (&extra, res.data, res.size);
        cmn_err_t werr = { 0 };
        if (wrk_wcache_load_gguf (job->wcache, model, type_s, path, extra.data, extra.size,
                                  &werr))
            cmn_log_warn ("quantize: output not kept on the device: %s", werr.msg);
        msgpack_sbuffer_destroy (&extra);
    }
    if (rc == 0)
        cmn_err_clear (&job->err);
    msgpack_sbuffer_destroy (&res);
    return rc;
}

int
wrk_quantize_job (wrk_job_t *job)
{
    char model [4097] = "", type_s [32] = "", output [4097] = "", keep [4097] = "";
    uint64_t budget = 0;
    double bpw = 0;
    if (cmn_codec_get_cstr (job->params, "model", model, sizeof model, &job->err) < 0
    ||  cmn_codec_get_cstr (job->params, "type", type_s, sizeof type_s, &job->err) < 0
    ||  cmn_codec_get_cstr (job->params, "output", output, sizeof output, &job->err) < 0
    ||  cmn_codec_get_cstr (job->params, "keep", keep, sizeof keep, &job->err) < 0
    ||  cmn_codec_get_uint (job->params, "budget_bytes", &budget, &job->err) < 0
    ||  cmn_codec_get_double (job->params, "bpw", &bpw, &job->err) < 0)
        return -1;
    if (!*model)
        return cmn_err_set (&job->err, RXQ_E_PARAM, "quantize: parameter 'model' is required");
    if (!job->device)
        return cmn_err_set (&job->err, RXQ_E_NODEVICE, "quantize needs an OpenCL device");
    wrk_quantize_opts_t opts = { .budget_bytes = budget, .bpw = bpw, .keep = keep };
    if (wrk_quantize_parse_type (type_s, &opts.type, &job->err))
        return -1;
    if (cmn_blob_name_valid (model, strlen (model))) {
        if (*output)
            return cmn_err_set (&job->err, RXQ_E_PARAM, "quantize: 'output' is a path on the "
                                "worker and cannot be used with a blob model; the output goes "
                                "to the blob store (its hash is the result's output_blob)");
        return s_quantize_blob (job, model, type_s, &opts);
    }
    if (!*output) {
        //  MODEL without its extension, then ".TYPE.gguf".
        const char *slash = strrchr (model, '/');
        const char *dot = strrchr (model, '.');
        int stem = (int) (dot && (!slash || dot > slash) ? dot - model : (int) strlen (model));
        if (snprintf (output, sizeof output, "%.*s.%s.gguf", stem, model, type_s)
            >= (int) sizeof output)
            return cmn_err_set (&job->err, RXQ_E_PARAM, "quantize: output path too long");
    }
    return wrk_quantize_file (job->device, model, output, &opts, s_job_progress, job,
                              job->result, &job->err);
}
