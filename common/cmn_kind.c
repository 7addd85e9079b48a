/*  cmn_kind: see cmn_kind.h. New job kinds are added to the table here and
 *  to the worker's runner table (worker/wrk_jobs.c). */
#include "cmn_kind.h"
#include "cmn_codec.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const cmn_param_spec_t s_noop_params [] = {
    { "sleep_ms", CMN_PARAM_UINT, false, 0, 3600000,
      "milliseconds to sleep before finishing (default 0)" },
    { "fail", CMN_PARAM_BOOL, false, 0, 1,
      "finish with an error instead of a result (default false)" },
    { "payload", CMN_PARAM_STR, false, 0, 4096,
      "string echoed back in the result" },
    { NULL, 0, false, 0, 0, NULL }
};

static const cmn_param_spec_t s_bench_device_params [] = {
    { "copy_mb", CMN_PARAM_UINT, false, 1, 4096,
      "size of the copy-bandwidth buffer in MiB (default 64)" },
    { "gemm_n", CMN_PARAM_UINT, false, 16, 8192,
      "square SGEMM size M=N=K (default 512)" },
    { "reps", CMN_PARAM_UINT, false, 1, 1000,
      "timed repetitions of each kernel (default 5)" },
    { NULL, 0, false, 0, 0, NULL }
};

static const cmn_param_spec_t s_bench_gemm_params [] = {
    { "n", CMN_PARAM_UINT, false, 16, 8192, "square SGEMM size M=N=K (default 256)" },
    { "reps", CMN_PARAM_UINT, false, 1, 1000, "timed repetitions (default 5)" },
    { "seed", CMN_PARAM_UINT, false, 0, 1.8e19, "seed of the random inputs (default 1)" },
    { "x", CMN_PARAM_STR, false, 0, 4,
      "f32 (default) or i8: x rounded to int8 blocks, integer dot products" },
    { NULL, 0, false, 0, 0, NULL }
};

static const cmn_param_spec_t s_bench_gemv_params [] = {
    { "type", CMN_PARAM_STR, false, 0, 8,
      "weight type: q4_0, q4_1, q8_0, q4_k or q6_k (default q4_0)" },
    { "rows", CMN_PARAM_UINT, false, 1, 65536, "weight rows (default 1024)" },
    { "cols", CMN_PARAM_UINT, false, 1, 65536,
      "weight columns, a multiple of the block (default 1024)" },
    { "reps", CMN_PARAM_UINT, false, 1, 1000, "timed repetitions (default 10)" },
    { "seed", CMN_PARAM_UINT, false, 0, 1.8e19, "seed of the random inputs (default 1)" },
    { NULL, 0, false, 0, 0, NULL }
};

static const cmn_param_spec_t s_bench_kernels_params [] = {
    { "scale", CMN_PARAM_UINT, false, 1, 32,
      "shape scale: hidden size 256 x scale (default 1)" },
    { "reps", CMN_PARAM_UINT, false, 1, 100, "timed repetitions of each kernel (default 3)" },
    { "seed", CMN_PARAM_UINT, false, 0, 1.8e19, "seed of the random inputs (default 1)" },
    { NULL, 0, false, 0, 0, NULL }
};

static const cmn_param_spec_t s_tune_params [] = {
    { "n", CMN_PARAM_UINT, false, 64, 4096, "SGEMM size searched (default 256)" },
    { "type", CMN_PARAM_STR, false, 0, 8, "GEMV weight type searched (default q4_0)" },
    { "rows", CMN_PARAM_UINT, false, 1, 65536, "GEMV rows (default 1024)" },
    { "cols", CMN_PARAM_UINT, false, 256, 65536, "GEMV columns (default 1024)" },
    { "budget_ms", CMN_PARAM_UINT, false, 100, 600000,
      "search time, split between SGEMM and GEMV (default 4000)" },
    { NULL, 0, false, 0, 0, NULL }
};

static const cmn_param_spec_t s_quantize_params [] = {
    { "model", CMN_PARAM_STR, true, 0, 4096,
      "input model (GGUF or safetensors; F32/F16/BF16 or quantized): a blob hash from "
      "`rxq put` (64 hex digits; the output then goes to the blob store, see docs/store.md) "
      "or a file path on the worker" },
    { "type", CMN_PARAM_STR, true, 0, 16,
      "q4_0 q4_1 q5_0 q5_1 q8_0 q4_k q5_k q6_k int4 int4_g64 int4_g128 f16 bf16 f32 or mixed" },
    { "output", CMN_PARAM_STR, false, 0, 4096,
      "output GGUF path on the worker, for a path model only (default MODEL without "
      "extension + .TYPE.gguf)" },
    { "budget_bytes", CMN_PARAM_UINT, false, 1, 1.8e19,
      "mixed: output file size limit in bytes" },
    { "bpw", CMN_PARAM_FLOAT, false, 1, 64, "mixed: tensor-data bits per weight limit" },
    { "keep", CMN_PARAM_STR, false, 0, 4096,
      "comma-separated tensor-name globs kept at higher precision, each GLOB[:q8_0|f16|f32] "
      "(default q8_0)" },
    { NULL, 0, false, 0, 0, NULL }
};

static const cmn_param_spec_t s_bench_llm_params [] = {
    { "model", CMN_PARAM_STR, true, 0, 4096,
      "Llama-architecture GGUF model: a file path on the worker" },
    { "pp", CMN_PARAM_UINT, false, 1, 8192, "prompt tokens of the pp test (default 512)" },
    { "tg", CMN_PARAM_UINT, false, 1, 8192, "generated tokens of the tg test (default 128)" },
    { "reps", CMN_PARAM_UINT, false, 1, 100, "timed repetitions, best kept (default 2)" },
    { "seed", CMN_PARAM_UINT, false, 0, 1.8e19, "seed of the random token ids (default 1)" },
    { NULL, 0, false, 0, 0, NULL }
};

static const cmn_param_spec_t s_generate_params [] = {
    { "model", CMN_PARAM_STR, true, 0, 4096,
      "Llama-architecture GGUF model: a blob hash from `rxq put` (64 hex digits; the worker "
      "keeps it loaded on the device for the next job, see docs/store.md) or a file path on "
      "the worker" },
    { "prompt", CMN_PARAM_STR, false, 0, 1048576,
      "the prompt (the user message, wrapped in the model's chat template unless raw); "
      "this or prompts is required" },
    { "prompts", CMN_PARAM_STRS, false, 1, 64,
      "several prompts (1..64) generated together as one batch, instead of prompt" },
    { "max_tokens", CMN_PARAM_UINT, false, 1, 65536, "tokens to generate at most (default 128)" },
    { "temp", CMN_PARAM_FLOAT, false, 0, 100, "temperature; 0 is greedy (default 0.8)" },
    { "top_k", CMN_PARAM_UINT, false, 0, 1000000, "keep the K most likely tokens; 0 all (default 40)" },
    { "top_p", CMN_PARAM_FLOAT, false, 0.000001, 1, "nucleus probability mass (default 0.95)" },
    { "repeat_penalty", CMN_PARAM_FLOAT, false, 1, 100,
      "penalty on the last 64 tokens (default 1: none)" },
    { "seed", CMN_PARAM_UINT, false, 0, 1.8e19,
      "random seed (default: from the clock, reported in the result)" },
    { "raw", CMN_PARAM_BOOL, false, 0, 1, "do not apply the chat template (default false)" },
    { "stop", CMN_PARAM_STR, false, 0, 256, "stop when the text contains this string" },
    { "ctx", CMN_PARAM_UINT, false, 2, 1048576,
      "KV cache positions (default prompt + max_tokens, at most the model's context)" },
    { "numerics", CMN_PARAM_STR, false, 0, 8,
      "f32 (default) or ggml: reproduce llama.cpp's CPU backend bit for bit (docs/llm.md)" },
    { NULL, 0, false, 0, 0, NULL }
};

static const cmn_param_spec_t s_optimize_params [] = {
    { "model", CMN_PARAM_STR, true, 0, 4096,
      "input ONNX model: a blob hash from `rxq put` (64 hex digits; the output then goes to "
      "the blob store, see docs/store.md) or a file path on the worker" },
    { "output", CMN_PARAM_STR, false, 0, 4096,
      "output path on the worker, for a path model only (default MODEL without .onnx + "
      ".opt.onnx)" },
    { "level", CMN_PARAM_UINT, false, 0, 2,
      "0 read/validate/write only, 1 clean-ups and folding, 2 also fusions (default 1)" },
    { "enable", CMN_PARAM_STR, false, 0, 1024, "comma-separated passes to run whatever the level" },
    { "disable", CMN_PARAM_STR, false, 0, 1024, "comma-separated passes never to run" },
    { "layout", CMN_PARAM_STR, false, 4, 4,
      "nhwc: convert 2-D Conv and pooling to rxq's NHWC operators, eliminating transposes; "
      "nchw: never (default: nchw, or the worker device's preference when target is given)" },
    { "target", CMN_PARAM_STR, false, 1, 127,
      "the device the model is for: a worker name or part of a device name (routing is by "
      "the job's require.target; see docs/optimize.md)" },
    { NULL, 0, false, 0, 0, NULL }
};

//  generate takes one prompt or a batch of them, never both or neither.
static const char *const s_generate_one_of [] = { "prompt", "prompts", NULL };

const cmn_kind_t cmn_kinds [] = {
    { "noop", "does nothing on the device; for broker benchmarks and tests",
      false, s_noop_params, NULL },
    { "bench.device", "measures copy bandwidth (GB/s) and SGEMM throughput (GFLOPS)",
      true, s_bench_device_params, NULL },
    { "bench.gemm", "times kernels/sgemm.cl; a complete benchmark record",
      true, s_bench_gemm_params, NULL },
    { "bench.gemv", "times a quantized GEMV against the copy bandwidth; a benchmark record",
      true, s_bench_gemv_params, NULL },
    { "bench.kernels", "times every model kernel at model-like shapes; a benchmark record",
      true, s_bench_kernels_params, NULL },
    { "bench.llm", "times a Llama model's prompt (ppN) and generation (tgN); a benchmark record",
      true, s_bench_llm_params, NULL },
    { "tune", "searches SGEMM and GEMV tuning parameters; returns a tuning entry",
      true, s_tune_params, NULL },
    { "quantize", "quantizes a GGUF/safetensors model into a GGUF file on the device",
      true, s_quantize_params, NULL },
    { "generate", "generates text with a Llama GGUF model, streaming tokens",
      true, s_generate_params, s_generate_one_of },
    { "optimize", "optimizes an ONNX model (docs/optimize.md); CPU only",
      false, s_optimize_params, NULL },
    { NULL, NULL, false, NULL, NULL }
};

const cmn_kind_t *
cmn_kind_find (const char *name, size_t len)
{
    for (const cmn_kind_t *k = cmn_kinds; k->name; k++)
        if (strlen (k->name) == len && memcmp (k->name, name, len) == 0)
            return k;
    return NULL;
}

static const cmn_param_spec_t *
s_spec (const cmn_kind_t *kind, const char *name, size_t len)
{
    for (const cmn_param_spec_t *p = kind->params; p->name; p++)
        if (strlen (p->name) == len && memcmp (p->name, name, len) == 0)
            return p;
    return NULL;
}

static const char *
s_type_name (cmn_param_type_t t)
{
    switch (t) {
        case CMN_PARAM_UINT:  return "an unsigned integer";
        case CMN_PARAM_INT:   return "an integer";
        case CMN_PARAM_FLOAT: return "a number";
        case CMN_PARAM_BOOL:  return "a boolean";
        case CMN_PARAM_STRS:  return "an array of strings";
        default:              return "a string";
    }
}

static int
s_check_value (const cmn_kind_t *kind, const cmn_param_spec_t *p,
               const msgpack_object *v, cmn_err_t *err)
{
    double x = 0;
    bool ok = false;
    switch (p->type) {
        case CMN_PARAM_UINT:
            ok = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
            x = ok ? (double) v->via.u64 : 0;
            break;
        case CMN_PARAM_INT:
            ok = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER
              || v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
            x = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (double) v->via.u64
                                                           : (double) v->via.i64;
            break;
        case CMN_PARAM_FLOAT:
            ok = v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64
              || v->type == MSGPACK_OBJECT_POSITIVE_INTEGER
              || v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
            x = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (double) v->via.u64
              : v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (double) v->via.i64
              : v->via.f64;
            ok = ok && isfinite (x);
            break;
        case CMN_PARAM_BOOL:
            return v->type == MSGPACK_OBJECT_BOOLEAN ? 0
                 : cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' must be a boolean",
                                kind->name, p->name);
        case CMN_PARAM_STR:
            if (v->type != MSGPACK_OBJECT_STR)
                return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' must be a string",
                                    kind->name, p->name);
            if (v->via.str.size > p->max)
                return cmn_err_set (err, RXQ_E_PARAM,
                                    "%s: parameter '%s' is longer than %.0f bytes",
                                    kind->name, p->name, p->max);
            return 0;
        case CMN_PARAM_STRS:
            if (v->type != MSGPACK_OBJECT_ARRAY)
                return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' must be an array "
                                    "of strings", kind->name, p->name);
            if (v->via.array.size < p->min || v->via.array.size > p->max)
                return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' must hold %.0f to "
                                    "%.0f strings, not %u", kind->name, p->name, p->min, p->max,
                                    (unsigned) v->via.array.size);
            for (uint32_t i = 0; i < v->via.array.size; i++) {
                const msgpack_object *e = &v->via.array.ptr [i];
                if (e->type != MSGPACK_OBJECT_STR)
                    return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' entry %u must "
                                        "be a string", kind->name, p->name, (unsigned) i);
                if (e->via.str.size > CMN_PARAM_STRS_ITEM_MAX)
                    return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' entry %u is "
                                        "longer than %d bytes", kind->name, p->name,
                                        (unsigned) i, CMN_PARAM_STRS_ITEM_MAX);
            }
            return 0;
    }
    if (!ok)
        return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' must be %s",
                            kind->name, p->name, s_type_name (p->type));
    if (x < p->min || x > p->max)
        return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' must be between %g and %g",
                            kind->name, p->name, p->min, p->max);
    return 0;
}

int
cmn_kind_validate (const cmn_kind_t *kind, const msgpack_object *params, cmn_err_t *err)
{
    if (params && params->type != MSGPACK_OBJECT_MAP)
        return cmn_err_set (err, RXQ_E_PARAM, "%s: parameters must be a map", kind->name);
    uint32_t n = params ? params->via.map.size : 0;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object_kv *kv = &params->via.map.ptr [i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter names must be strings",
                                kind->name);
        const cmn_param_spec_t *p = s_spec (kind, kv->key.via.str.ptr, kv->key.via.str.size);
        if (!p)
            return cmn_err_set (err, RXQ_E_PARAM, "%s: unknown parameter '%.*s'", kind->name,
                                (int) (kv->key.via.str.size > 64 ? 64 : kv->key.via.str.size),
                                kv->key.via.str.ptr);
        for (uint32_t j = 0; j < i; j++)
            if (cmn_codec_str_eq (&params->via.map.ptr [j].key, p->name))
                return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' given twice",
                                    kind->name, p->name);
        if (s_check_value (kind, p, &kv->val, err))
            return -1;
    }
    for (const cmn_param_spec_t *p = kind->params; p->name; p++)
        if (p->required && !cmn_codec_find (params, p->name))
            return cmn_err_set (err, RXQ_E_PARAM, "%s: missing required parameter '%s'",
                                kind->name, p->name);
    if (kind->one_of) {
        size_t given = 0;
        for (const char *const *name = kind->one_of; *name; name++)
            given += cmn_codec_find (params, *name) != NULL;
        if (given != 1) {
            char names [256] = "";
            for (const char *const *name = kind->one_of; *name; name++)
                snprintf (names + strlen (names), sizeof names - strlen (names), "%s'%s'",
                          name == kind->one_of ? "" : ", ", *name);
            return cmn_err_set (err, RXQ_E_PARAM, "%s: give exactly one of %s (%s given)",
                                kind->name, names, given ? "several" : "none");
        }
    }
    return 0;
}

int
cmn_kind_pack_arg (const cmn_kind_t *kind, const char *text, msgpack_packer *pk,
                   cmn_err_t *err)
{
    const char *eq = strchr (text, '=');
    if (!eq || eq == text)
        return cmn_err_set (err, RXQ_E_PARAM, "parameter '%s' must be written key=value", text);
    size_t klen = (size_t) (eq - text);
    const cmn_param_spec_t *p = s_spec (kind, text, klen);
    if (!p)
        return cmn_err_set (err, RXQ_E_PARAM, "%s: unknown parameter '%.*s' (see rxq submit --help)",
                            kind->name, (int) klen, text);
    const char *val = eq + 1;
    char *end = NULL;
    errno = 0;
    cmn_pack_cstr (pk, p->name);
    switch (p->type) {
        case CMN_PARAM_UINT: {
            if (*val == '-' || !*val)
                break;
            unsigned long long u = strtoull (val, &end, 10);
            if (errno || *end || u < p->min || u > p->max)
                break;
            msgpack_pack_uint64 (pk, u);
            return 0;
        }
        case CMN_PARAM_INT: {
            long long i = strtoll (val, &end, 10);
            if (!*val || errno || *end || i < p->min || i > p->max)
                break;
            msgpack_pack_int64 (pk, i);
            return 0;
        }
        case CMN_PARAM_FLOAT: {
            double d = strtod (val, &end);
            if (!*val || errno || *end || !isfinite (d) || d < p->min || d > p->max)
                break;
            msgpack_pack_double (pk, d);
            return 0;
        }
        case CMN_PARAM_BOOL:
            if (!strcasecmp (val, "true") || !strcmp (val, "1") || !strcasecmp (val, "yes")) {
                msgpack_pack_true (pk);
                return 0;
            }
            if (!strcasecmp (val, "false") || !strcmp (val, "0") || !strcasecmp (val, "no")) {
                msgpack_pack_false (pk);
                return 0;
            }
            break;
        case CMN_PARAM_STR:
            if (strlen (val) > p->max)
                break;
            cmn_pack_cstr (pk, val);
            return 0;
        case CMN_PARAM_STRS:
            //  One entry from the command line; the API takes several.
            if (strlen (val) > CMN_PARAM_STRS_ITEM_MAX)
                return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' is longer than "
                                    "%d bytes", kind->name, p->name, CMN_PARAM_STRS_ITEM_MAX);
            msgpack_pack_array (pk, 1);
            cmn_pack_cstr (pk, val);
            return 0;
    }
    if (p->type == CMN_PARAM_STR)
        return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' is longer than %.0f bytes",
                            kind->name, p->name, p->max);
    if (p->type == CMN_PARAM_BOOL)
        return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' must be true or false, not '%s'",
                            kind->name, p->name, val);
    return cmn_err_set (err, RXQ_E_PARAM, "%s: parameter '%s' must be %s between %g and %g, not '%s'",
                        kind->name, p->name, s_type_name (p->type), p->min, p->max, val);
}

void
cmn_kind_print_help (FILE *out)
{
    fprintf (out, "Job kinds and their parameters:\n");
    for (const cmn_kind_t *k = cmn_kinds; k->name; k++) {
        fprintf (out, "  %-14s %s\n", k->name, k->help);
        for (const cmn_param_spec_t *p = k->params; p->name; p++)
            fprintf (out, "      %-12s %s%s\n", p->name, p->help, p->required ? " [required]" : "");
    }
}
