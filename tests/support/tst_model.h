/*  tst_model: small random models for the quantization tests, written as
 *  GGUF (with cmn_gguf_writer) or safetensors (by hand), in F32, F16, BF16
 *  or any type cmn_quant can quantize to.
 *
 *  The tensors are a miniature llama block: embeddings, a norm (1-D),
 *  attention and FFN matrices with rows of 256 and 512 values, one matrix
 *  whose rows (96 values) fit no K-quant block, and the output matrix;
 *  values are Gaussian-like with standard deviation 0.02 and a few
 *  outliers. About 360k weights (1.4 MB in F32).
 *
 *  Header-only (static functions): each test file is its own executable.
 */
#ifndef TST_MODEL_H
#define TST_MODEL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmn_gguf_writer.h"
#include "cmn_quant.h"

typedef struct {
    const char *name;           // tensor name
    int n_dims;                 // 1 or 2
    int64_t ne0, ne1;           // row length, rows
} tst_tensor_t;

static const tst_tensor_t tst_model_tensors [] = {
    { "token_embd.weight", 2, 256, 32 },
    { "blk.0.attn_norm.weight", 1, 256, 1 },
    { "blk.0.attn_q.weight", 2, 256, 256 },
    { "blk.0.attn_v.weight", 2, 256, 64 },
    { "blk.0.ffn_up.weight", 2, 256, 512 },
    { "blk.0.ffn_down.weight", 2, 512, 256 },
    { "blk.0.odd.weight", 2, 96, 16 },
    { "output.weight", 2, 256, 32 },
};
#define TST_MODEL_N (sizeof tst_model_tensors / sizeof tst_model_tensors [0])

static inline uint64_t
tst_model_next (uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

//  The float values of tensor I (caller frees), the same for a given SEED.
static inline float *
tst_model_values (size_t i, uint64_t seed)
{
    const tst_tensor_t *t = &tst_model_tensors [i];
    const size_t n = (size_t) (t->ne0 * t->ne1);
    float *x = malloc (n * sizeof *x);
    uint64_t s = seed * 1000 + i;
    for (size_t k = 0; k < n; k++) {
        double g = 0;   // sum of 4 uniforms: a cheap bell curve
        for (int u = 0; u < 4; u++)
            g += (double) (tst_model_next (&s) >> 11) / 9007199254740992.0 - 0.5;
        x [k] = (float) (g * 0.035);
        if (tst_model_next (&s) % 997 == 0)
            x [k] *= 20;
        if (t->n_dims == 1)
            x [k] = 1.0f + x [k];
    }
    return x;
}

//  Tensor I's data in TYPE (caller frees); *BYTES receives the size.
static inline void *
tst_model_data (size_t i, int type, uint64_t seed, size_t *bytes)
{
    const tst_tensor_t *t = &tst_model_tensors [i];
    float *x = tst_model_values (i, seed);
    const size_t rb = cmn_quant_row_bytes (type, (size_t) t->ne0);
    uint8_t *q = malloc (rb * (size_t) t->ne1);
    for (int64_t r = 0; r < t->ne1; r++)
        cmn_quant_quantize_row (type, x + r * t->ne0, q + rb * (size_t) r, (size_t) t->ne0);
    free (x);
    *bytes = rb * (size_t) t->ne1;
    return q;
}

//  Writes the model to PATH as GGUF with its matrices in TYPE (1-D tensors
//  in F32, as converters do). Returns 0 or -1.
static inline int
tst_model_write_gguf (const char *path, int type, uint64_t seed)
{
    cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
    void *data [TST_MODEL_N] = { 0 };
    int rc = -1;
    const char *tokens [] = { "<s>", "</s>", "hello" };
    if (cmn_gguf_writer_set_str (w, "general.architecture", "llama", NULL)
    ||  cmn_gguf_writer_set_str (w, "general.name", "tst-model", NULL)
    ||  cmn_gguf_writer_set_u32 (w, "general.file_type", 0, NULL)
    ||  cmn_gguf_writer_set_u32 (w, "llama.block_count", 1, NULL)
    ||  cmn_gguf_writer_set_str_array (w, "tokenizer.ggml.tokens", tokens, 3, NULL))
        goto done;
    for (size_t i = 0; i < TST_MODEL_N; i++) {
        const tst_tensor_t *t = &tst_model_tensors [i];
        const int ty = t->n_dims == 1 ? GGML_TYPE_F32 : type;
        size_t bytes;
        data [i] = tst_model_data (i, ty, seed, &bytes);
        const int64_t ne [2] = { t->ne0, t->ne1 };
        if (cmn_gguf_writer_add_tensor (w, t->name, ty, t->n_dims, ne, data [i], NULL, NULL, NULL))
            goto done;
    }
    rc = cmn_gguf_writer_write_file (w, path, NULL);
done:
    cmn_gguf_writer_destroy (&w);
    for (size_t i = 0; i < TST_MODEL_N; i++)
        free (data [i]);
    return rc;
}

//  Writes the model to PATH as safetensors, every tensor in TYPE (F32, F16
//  or BF16), shapes outermost first. Returns 0 or -1.
static inline int
tst_model_write_safetensors (const char *path, int type, uint64_t seed)
{
    const char *dtype = type == GGML_TYPE_F32 ? "F32" : type == GGML_TYPE_F16 ? "F16" : "BF16";
    char header [4096];
    size_t hl = (size_t) snprintf (header, sizeof header, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (size_t i = 0; i < TST_MODEL_N; i++) {
        const tst_tensor_t *t = &tst_model_tensors [i];
        const uint64_t bytes = cmn_quant_row_bytes (type, (size_t) t->ne0) * (uint64_t) t->ne1;
        if (t->n_dims == 1)
            hl += (size_t) snprintf (header + hl, sizeof header - hl, ",\"%s\":{\"dtype\":\"%s\","
                                     "\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}", t->name,
                                     dtype, (long long) t->ne0, (unsigned long long) off,
                                     (unsigned long long) (off + bytes));
        else
            hl += (size_t) snprintf (header + hl, sizeof header - hl, ",\"%s\":{\"dtype\":\"%s\","
                                     "\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}",
                                     t->name, dtype, (long long) t->ne1, (long long) t->ne0,
                                     (unsigned long long) off, (unsigned long long) (off + bytes));
        off += bytes;
    }
    hl += (size_t) snprintf (header + hl, sizeof header - hl, "}");
    while (hl % 8)
        header [hl++] = ' ';
    FILE *f = fopen (path, "wb");
    if (!f)
        return -1;
    uint64_t n = hl;
    fwrite (&n, 8, 1, f);
    fwrite (header, 1, hl, f);
    for (size_t i = 0; i < TST_MODEL_N; i++) {
        size_t bytes;
        void *d = tst_model_data (i, type, seed, &bytes);
        fwrite (d, 1, bytes, f);
        free (d);
    }
    return fclose (f) == 0 ? 0 : -1;
}

#endif
