/*  bench_llm: Llama forward-pass speed (worker/wrk_llm) in llama-bench's
 *  convention, against the device's memory-bandwidth floor, on random-
 *  weight models with real architectures' shapes.
 *
 *  Unless --model is given, it first writes a random-weight GGUF with the
 *  chosen shape (--shape: llama2-7b, llama2-13b, llama3-8b, smollm2-135m,
 *  tiny) and weight type (--type q4_0, q4_1 or q8_0) to --write PATH (or
 *  a temporary file it deletes): every hyper-parameter, tensor name and
 *  shape is the real model's, the weights are random blocks with a small
 *  scale, the vocabulary is generated tokens ("t0", "t1", ...). Such a file loads through
 *  the same cmn_llama_model / wrk_llm_weights path as a real one.
 *
 *  Then, on --device SEL (default: the first GPU, else any device):
 *    pp: one prompt of --pp tokens (default 512) from an empty cache;
 *    tg: --tg tokens (default 128) one at a time after it;
 *  each --reps times (default 3, best kept), plus one profiled run for the
 *  kernel classes' shares of device time. The floor: a generated token
 *  must read every weight once (plus its KV cache rows), so tg can be no
 *  faster than copy bandwidth / bytes per token; the copy bandwidth is
 *  measured here with clEnqueueCopyBuffer (bytes read + written / time).
 *
 *  --numerics N (f32, ggml, q8) sets wrk_llm's numerics for both; q8
 *  makes tg's products GEMVs on int8 activations.
 *
 *  Output: readable lines and one JSON line starting "json ".
 *  Usage: bench_llm [--shape S] [--type T] [--model PATH | --write PATH]
 *                   [--device SEL] [--pp N] [--tg N] [--reps N] [--copy-mb N]
 *                   [--numerics N]
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cmn_gguf_writer.h"
#include "cmn_llama_model.h"
#include "cmn_log.h"
#include "cmn_quant.h"
#include "cmn_quant_blocks.h"
#include "wrk_device.h"
#include "wrk_llm.h"
#include "wrk_llm_weights.h"

typedef struct {
    const char *name;
    int n_layer, n_embd, n_ff, n_head, n_head_kv, n_vocab, n_ctx;
    float rope_base;
} s_shape_t;

static const s_shape_t s_shapes [] = {
    { "llama2-7b", 32, 4096, 11008, 32, 32, 32000, 4096, 10000.0f },
    { "llama2-13b", 40, 5120, 13824, 40, 40, 32000, 4096, 10000.0f },
    { "llama3-8b", 32, 4096, 14336, 32, 8, 128256, 8192, 500000.0f },
    { "smollm2-135m", 30, 576, 1536, 9, 3, 49152, 8192, 100000.0f },
    { "tiny", 2, 256, 512, 4, 2, 1024, 1024, 10000.0f },
    { NULL, 0, 0, 0, 0, 0, 0, 0, 0 }
};

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static uint64_t
s_mix (uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

//  Data of one tensor: random blocks with fixed small scales, or ones.
typedef struct {
    int type;                   // GGML type
    uint64_t seed;              // per tensor
} s_fill_t;

static int
s_fill (void *arg, void *buf, uint64_t offset, size_t len, cmn_err_t *err)
{
    (void) err;
    const s_fill_t *f = arg;
    uint8_t *b = buf;
    if (f->type == GGML_TYPE_F32) {
        const float one = 1.0f;
        for (size_t i = 0; i < len; i++)
            b [i] = ((const uint8_t *) &one) [(offset + i) % 4];
        return 0;
    }
    const size_t bb = cmn_quant_block_bytes (f->type);
    const uint16_t d = cmn_fp32_to_fp16 (0.01f), m = cmn_fp32_to_fp16 (-0.075f);
    const size_t head = f->type == GGML_TYPE_Q4_1 ? 4 : 2;
    for (size_t i = 0; i < len; i++) {
        const uint64_t p = offset + i;
        const size_t in_block = (size_t) (p % bb);
        if (in_block < head) {
            const uint16_t v = in_block < 2 ? d : m;
            b [i] = (uint8_t) (in_block % 2 ? v >> 8 : v & 0xff);
        }
        else
            b [i] = (uint8_t) (s_mix (f->seed ^ (p >> 3)) >> (8 * (p & 7)));
    }
    return 0;
}

static int
s_write_model (const s_shape_t *sh, int type, const char *path)
{
    cmn_err_t err = { 0 };
    cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
    const int V = sh->n_vocab;
    char **tokens = calloc ((size_t) V, sizeof *tokens);
    float *scores = calloc ((size_t) V, sizeof *scores);
    int32_t *types = calloc ((size_t) V, sizeof *types);
    s_fill_t *fills = calloc ((size_t) (9 * sh->n_layer + 3), sizeof *fills);
    int rc = -1;
    if (!w || !tokens || !scores || !types || !fills)
        goto done;
    for (int i = 0; i < V; i++) {
        char t [24];
        snprintf (t, sizeof t, i == 0 ? "<unk>" : i == 1 ? "<s>" : i == 2 ? "</s>" : "t%d", i);
        tokens [i] = strdup (t);
        types [i] = i == 0 ? 2 : i < 3 ? 3 : 1;
        if (!tokens [i])
            goto done;
    }
    if (cmn_gguf_writer_set_str (w, "general.architecture", "llama", &err)
    ||  cmn_gguf_writer_set_str (w, "general.name", sh->name, &err)
    ||  cmn_gguf_writer_set_u32 (w, "llama.block_count", (uint32_t) sh->n_layer, &err)
    ||  cmn_gguf_writer_set_u32 (w, "llama.context_length", (uint32_t) sh->n_ctx, &err)
    ||  cmn_gguf_writer_set_u32 (w, "llama.embedding_length", (uint32_t) sh->n_embd, &err)
    ||  cmn_gguf_writer_set_u32 (w, "llama.feed_forward_length", (uint32_t) sh->n_ff, &err)
    ||  cmn_gguf_writer_set_u32 (w, "llama.attention.head_count", (uint32_t) sh->n_head, &err)
    ||  cmn_gguf_writer_set_u32 (w, "llama.attention.head_count_kv", (uint32_t) sh->n_head_kv, &err)
    ||  cmn_gguf_writer_set_f32 (w, "llama.rope.freq_base", sh->rope_base, &err)
    ||  cmn_gguf_writer_set_f32 (w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &err)
    ||  cmn_gguf_writer_set_str (w, "tokenizer.ggml.model", "llama", &err)
    ||  cmn_gguf_writer_set_str_array (w, "tokenizer.ggml.tokens", (const char *const *) tokens,
                                       (size_t) V, &err)
    ||  cmn_gguf_writer_set_array (w, "tokenizer.ggml.scores", CMN_GGUF_FLOAT32, scores,
                                   (size_t) V, &err)
    ||  cmn_gguf_writer_set_array (w, "tokenizer.ggml.token_type", CMN_GGUF_INT32, types,
                                   (size_t) V, &err))
        goto done;
    const int64_t E = sh->n_embd, KV = (int64_t) sh->n_head_kv * (sh->n_embd / sh->n_head);
    int nf = 0;
#define ADD(nm, ty, nd, ne0, ne1) do { \
        fills [nf] = (s_fill_t) { ty, s_mix ((uint64_t) nf + 1) }; \
        const int64_t ne_ [2] = { ne0, ne1 }; \
        if (cmn_gguf_writer_add_tensor (w, nm, ty, nd, ne_, NULL, s_fill, &fills [nf], &err)) \
            goto done; \
        nf++; \
    } while (0)
    ADD ("token_embd.weight", type, 2, E, V);
    ADD ("output_norm.weight", GGML_TYPE_F32, 1, E, 1);
    ADD ("output.weight", type, 2, E, V);
    for (int l = 0; l < sh->n_layer; l++) {
        char n [9][64];
        const char *sfx [9] = { "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                "ffn_norm", "ffn_gate", "ffn_up", "ffn_down" };
        for (int k = 0; k < 9; k++)
            snprintf (n [k], sizeof n [k], "blk.%d.%s.weight", l, sfx [k]);
        ADD (n [0], GGML_TYPE_F32, 1, E, 1);
        ADD (n [1], type, 2, E, E);
        ADD (n [2], type, 2, E, KV);
        ADD (n [3], type, 2, E, KV);
        ADD (n [4], type, 2, E, E);
        ADD (n [5], GGML_TYPE_F32, 1, E, 1);
        ADD (n [6], type, 2, E, sh->n_ff);
        ADD (n [7], type, 2, E, sh->n_ff);
        ADD (n [8], type, 2, sh->n_ff, E);
    }
#undef ADD
    rc = cmn_gguf_writer_write_file (w, path, &err);
done:
    if (rc)
        fprintf (stderr, "bench_llm: writing %s: %s\n", path, err.msg [0] ? err.msg : "out of memory");
    for (int i = 0; tokens && i < V; i++)
        free (tokens [i]);
    free (tokens);
    free (scores);
    free (types);
    free (fills);
    cmn_gguf_writer_destroy (&w);
    return rc;
}

//  Best copy bandwidth of MB-MiB buffers, GB/s of bytes read + written.
static double
s_copy_gbps (wrk_device_t *dev, size_t mb)
{
    cl_int rc;
    const size_t bytes = mb << 20;
    cl_mem a = clCreateBuffer (wrk_device_context (dev), CL_MEM_READ_WRITE, bytes, NULL, &rc);
    cl_mem b = clCreateBuffer (wrk_device_context (dev), CL_MEM_READ_WRITE, bytes, NULL, &rc);
    double best = 0;
    if (a && b) {
        const float zero = 0;
        clEnqueueFillBuffer (wrk_device_queue (dev), a, &zero, sizeof zero, 0, bytes, 0, NULL, NULL);
        for (int r = 0; r < 6; r++) {
            cl_event ev = NULL;
            if (clEnqueueCopyBuffer (wrk_device_queue (dev), a, b, 0, 0, bytes, 0, NULL, &ev))
                break;
            clWaitForEvents (1, &ev);
            const uint64_t ns = wrk_device_event_ns (ev);
            clReleaseEvent (ev);
            if (r > 0 && ns)
                best = fmax (best, 2.0 * (double) bytes / (double) ns);
        }
    }
    if (a) clReleaseMemObject (a);
    if (b) clReleaseMemObject (b);
    return best;
}

int
main (int argc, char **argv)
{
    const char *shape_name = "llama2-7b", *type_name = "q4_0", *model_path = NULL;
    const char *write_path = NULL, *sel = NULL, *numerics_name = "f32";
    int pp = 512, tg = 128, reps = 3, copy_mb = 512;
    static const struct option opts [] = {
        { "shape", required_argument, NULL, 's' }, { "type", required_argument, NULL, 't' },
        { "model", required_argument, NULL, 'm' }, { "write", required_argument, NULL, 'w' },
        { "device", required_argument, NULL, 'd' }, { "pp", required_argument, NULL, 'p' },
        { "tg", required_argument, NULL, 'g' }, { "reps", required_argument, NULL, 'r' },
        { "copy-mb", required_argument, NULL, 'c' },
        { "numerics", required_argument, NULL, 'n' }, { NULL, 0, NULL, 0 }
    };
    int c;
    while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
            case 's': shape_name = optarg; break;
            case 't': type_name = optarg; break;
            case 'm': model_path = optarg; break;
            case 'w': write_path = optarg; break;
            case 'd': sel = optarg; break;
            case 'p': pp = atoi (optarg); break;
            case 'g': tg = atoi (optarg); break;
            case 'r': reps = atoi (optarg); break;
            case 'c': copy_mb = atoi (optarg); break;
            case 'n': numerics_name = optarg; break;
            default:
                fprintf (stderr, "usage: bench_llm [--shape S] [--type q4_0|q4_1|q8_0] [--model PATH"
                         " | --write PATH] [--device SEL] [--pp N] [--tg N] [--reps N] [--copy-mb N]"
                         " [--numerics f32|ggml|q8]\n");
                return 64;
        }
    }
    if (pp < 1 || tg < 1 || reps < 1 || copy_mb < 1) {
        fprintf (stderr, "bench_llm: --pp, --tg, --reps and --copy-mb must be >= 1\n");
        return 64;
    }
    const int numerics = wrk_llm_numerics_from_name (numerics_name);
    if (numerics < 0) {
        fprintf (stderr, "bench_llm: --numerics must be f32, ggml or q8\n");
        return 64;
    }
    cmn_log_init ("bench_llm", CMN_LOG_WARN);
    char tmp [256] = "";
    if (!model_path) {
        const s_shape_t *sh = s_shapes;
        while (sh->name && strcmp (sh->name, shape_name) != 0)
            sh++;
        const int type = strcmp (type_name, "q4_0") == 0 ? GGML_TYPE_Q4_0
                       : strcmp (type_name, "q4_1") == 0 ? GGML_TYPE_Q4_1
                       : strcmp (type_name, "q8_0") == 0 ? GGML_TYPE_Q8_0 : -1;
        if (!sh->name || type < 0) {
            fprintf (stderr, "bench_llm: unknown shape '%s' or type '%s' (shapes: llama2-7b "
                     "llama2-13b llama3-8b smollm2-135m tiny; types: q4_0 q4_1 q8_0)\n",
                     shape_name, type_name);
            return 64;
        }
        if (!write_path) {
            snprintf (tmp, sizeof tmp, "%s/rxq-bench-llm-%d.gguf",
                      getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp", (int) getpid ());
            write_path = tmp;
        }
        const double t0 = s_now ();
        if (s_write_model (sh, type, write_path))
            return 1;
        printf ("wrote %s (%s, %s, random weights) in %.1f s\n", write_path, sh->name, type_name,
                s_now () - t0);
        model_path = write_path;
    }
    cmn_err_t err = { 0 };
    int status = 1;
    cmn_llama_model_t *model = cmn_llama_model_open (model_path, &err);
    wrk_device_t *dev = model ? wrk_device_new (sel, NULL, &err) : NULL;
    wrk_llm_t *llm = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    if (!model || !dev) {
        fprintf (stderr, "bench_llm: %s\n", err.msg);
        goto done;
    }
    const cmn_llama_hparams_t *hp = cmn_llama_model_hparams (model);
    const wrk_device_info_t *info = wrk_device_info (dev);
    printf ("device: %s / %s (%s), %.1f GiB\n", info->platform, info->name, info->driver,
            (double) info->global_mem / 1073741824.0);
    const double copy = s_copy_gbps (dev, (size_t) copy_mb);
    const double t_up = s_now ();
    llm = wrk_llm_new (dev, model, pp + tg, pp, &err);
    if (!llm) {
        fprintf (stderr, "bench_llm: %s\n", err.msg);
        goto done;
    }
    if (wrk_llm_set_numerics (llm, numerics, &err) < 0) {
        fprintf (stderr, "bench_llm: %s\n", err.msg);
        goto done;
    }
    printf ("uploaded %.2f GB of weights in %.1f s; copy bandwidth %.1f GB/s\n",
            (double) wrk_llm_weights_need (model) / 1e9, s_now () - t_up, copy);
    ids = malloc ((size_t) (pp + tg) * sizeof *ids);
    logits = malloc ((size_t) hp->n_vocab * sizeof *logits);
    for (int i = 0; i < pp + tg; i++)
        ids [i] = 3 + (int32_t) (s_mix ((uint64_t) i) % (uint64_t) (hp->n_vocab - 3));
    //  Warm-up: builds every kernel variant (batch and single token).
    if (wrk_llm_eval (llm, ids, 8, logits, NULL, NULL, &err)
    ||  wrk_llm_eval (llm, ids + 8, 1, logits, NULL, NULL, &err)) {
        fprintf (stderr, "bench_llm: %s\n", err.msg);
        goto done;
    }
    double best_pp = 0, best_tg = 0;
    for (int r = 0; r <= reps; r++) {
        const bool profiled = r == reps;
        wrk_llm_reset (llm);
        wrk_llm_set_profile (llm, profiled);
        wrk_llm_clear_times (llm);
        const double t0 = s_now ();
        if (wrk_llm_eval (llm, ids, pp, logits, NULL, NULL, &err))
            break;
        const double t1 = s_now ();
        for (int i = 0; i < tg; i++)
            if (wrk_llm_eval (llm, ids + pp + i, 1, logits, NULL, NULL, &err))
                goto fail;
        const double t2 = s_now ();
        if (!profiled) {
            best_pp = fmax (best_pp, pp / (t1 - t0));
            best_tg = fmax (best_tg, tg / (t2 - t1));
            printf ("run %d: pp%d %.1f tok/s, tg%d %.2f tok/s\n", r + 1, pp, pp / (t1 - t0), tg,
                    tg / (t2 - t1));
        }
    }
    if (err.code) {
fail:
        fprintf (stderr, "bench_llm: %s\n", err.msg);
        goto done;
    }
    const uint64_t *ns = wrk_llm_kernel_ns (llm);
    uint64_t total = 0;
    for (int k = 0; k < WRK_LLM_K_COUNT; k++)
        total += ns [k];
    //  Bytes a generated token reads: every weight, and the KV rows of the
    //  positions before it (average position pp + tg / 2).
    const double kv_row = 2.0 * hp->n_layer * (double) hp->n_head_kv * hp->head_dim * 4;
    const double per_tok = (double) wrk_llm_weights_need (model) + kv_row * (pp + tg / 2.0);
    const double floor_tps = copy > 0 ? copy * 1e9 / per_tok : 0;
    printf ("pp%d %.1f tok/s; tg%d %.2f tok/s; floor %.2f tok/s (%.2f GB per token at %.1f GB/s): "
            "%.0f%% of the floor\n", pp, best_pp, tg, best_tg, floor_tps, per_tok / 1e9, copy,
            floor_tps > 0 ? 100.0 * best_tg / floor_tps : 0);
    printf ("kernel shares (profiled run):");
    for (int k = 0; k < WRK_LLM_K_COUNT; k++)
        printf (" %s %.1f%%", wrk_llm_kclass_names [k], total ? 100.0 * ns [k] / total : 0);
    printf ("\njson {\"model\":\"%s\",\"device\":\"%s\",\"numerics\":\"%s\",\"pp\":%d,"
            "\"pp_tps\":%.2f,\"tg\":%d,\"tg_tps\":%.3f,\"copy_gbps\":%.1f,"
            "\"bytes_per_token\":%.0f,\"floor_tps\":%.3f}\n", model_path, info->name,
            numerics_name, pp, best_pp, tg, best_tg, copy, per_tok, floor_tps);
    status = 0;
done:
    free (ids);
    free (logits);
    wrk_llm_destroy (&llm);
    wrk_device_destroy (&dev);
    cmn_llama_model_destroy (&model);
    if (tmp [0])
        unlink (tmp);
    return status;
}
