/*  wrk_llm_weights: see wrk_llm_weights.h. */
#include "wrk_llm_weights.h"
#include "cmn_log.h"
#include "cmn_quant.h"
#include "cmn_quant_blocks.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct _wrk_llm_weights_t {
    int n_layer;                // entries of layers
    wrk_llm_layer_t *layers;    // [n_layer]
    cl_mem output_norm;         // float32 [n_embd]
    wrk_llm_matrix_t output;    // [n_vocab x n_embd]
    uint64_t bytes;             // device bytes allocated
};

static bool
s_kernel_type (int type)
{
    return type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q4_1 || type == GGML_TYPE_Q8_0
        || type == GGML_TYPE_Q4_K || type == GGML_TYPE_Q6_K;
}

//  The type a tensor of TYPE with COLS columns is stored in on the device.
static int
s_device_type (int type)
{
    return s_kernel_type (type) ? type : GGML_TYPE_Q8_0;
}

static uint64_t
s_matrix_bytes (const cmn_gguf_tensor_t *t)
{
    return cmn_quant_row_bytes (s_device_type (t->type), (size_t) t->ne [0]) * (uint64_t) t->ne [1];
}

uint64_t
wrk_llm_weights_need (const cmn_llama_model_t *model)
{
    const cmn_llama_hparams_t *hp = cmn_llama_model_hparams (model);
    uint64_t n = (uint64_t) hp->n_embd * 4 * (1 + 2 * (uint64_t) hp->n_layer);
    n += s_matrix_bytes (cmn_llama_model_output (model));
    for (int i = 0; i < hp->n_layer; i++) {
        const cmn_llama_layer_t *l = cmn_llama_model_layer (model, i);
        n += s_matrix_bytes (l->wq) + s_matrix_bytes (l->wk) + s_matrix_bytes (l->wv)
           + s_matrix_bytes (l->wo) + s_matrix_bytes (l->ffn_gate) + s_matrix_bytes (l->ffn_up)
           + s_matrix_bytes (l->ffn_down);
    }
    return n;
}

static cl_mem
s_buffer (wrk_llm_weights_t *self, wrk_device_t *dev, const void *data, size_t bytes,
          const char *name, cmn_err_t *err)
{
    cl_int rc;
    cl_mem m = clCreateBuffer (wrk_device_context (dev), CL_MEM_READ_ONLY, bytes, NULL, &rc);
    if (!m) {
        wrk_device_cl_error (err, "clCreateBuffer", rc);
        snprintf (err->msg + strlen (err->msg), sizeof err->msg - strlen (err->msg),
                  " (%zu bytes for '%s')", bytes, name);
        return NULL;
    }
    rc = clEnqueueWriteBuffer (wrk_device_queue (dev), m, CL_TRUE, 0, bytes, data, 0, NULL, NULL);
    if (rc != CL_SUCCESS) {
        clReleaseMemObject (m);
        wrk_device_cl_error (err, "clEnqueueWriteBuffer", rc);
        return NULL;
    }
    self->bytes += bytes;
    return m;
}

static int
s_norm (wrk_llm_weights_t *self, wrk_device_t *dev, const cmn_gguf_tensor_t *t, cl_mem *out,
        cmn_err_t *err)
{
    const size_t n = (size_t) t->ne [0];
    float *v = malloc (n * sizeof *v);
    if (!v)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    cmn_llama_model_read_f32 (t, v, n);
    *out = s_buffer (self, dev, v, n * sizeof *v, t->name, err);
    free (v);
    return *out ? 0 : -1;
}

static int
s_matrix (wrk_llm_weights_t *self, wrk_device_t *dev, const cmn_gguf_tensor_t *t,
          wrk_llm_matrix_t *m, cmn_err_t *err)
{
    m->rows = (int) t->ne [1];
    m->cols = (int) t->ne [0];
    m->type = s_device_type (t->type);
    if (m->type == t->type) {
        m->mem = s_buffer (self, dev, t->data, t->size, t->name, err);
        return m->mem ? 0 : -1;
    }
    //  Requantize to Q8_0 row by row: the host copy is the size of the
    //  device's, never the float32 matrix.
    static int warned [64];
    if (t->type >= 0 && t->type < 64 && !warned [t->type]) {
        warned [t->type] = 1;
        cmn_log_warn ("llm: %s weights have no kernel; converted to q8_0 on upload",
                      cmn_quant_type_name (t->type));
    }
    const size_t rin = cmn_quant_row_bytes (t->type, (size_t) m->cols);
    const size_t rout = cmn_quant_row_bytes (m->type, (size_t) m->cols);
    float *row = malloc ((size_t) m->cols * sizeof *row);
    uint8_t *q = malloc (rout * (size_t) m->rows);
    int rc = -1;
    if (!row || !q)
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory converting '%s'", t->name);
    else {
        for (int r = 0; r < m->rows; r++) {
            cmn_quant_dequantize_row (t->type, (const uint8_t *) t->data + rin * (size_t) r, row,
                                      (size_t) m->cols);
            cmn_quant_quantize_row (m->type, row, q + rout * (size_t) r, (size_t) m->cols);
        }
        m->mem = s_buffer (self, dev, q, rout * (size_t) m->rows, t->name, err);
        rc = m->mem ? 0 : -1;
    }
    free (row);
    free (q);
    return rc;
}

wrk_llm_weights_t *
wrk_llm_weights_new (wrk_device_t *dev, const cmn_llama_model_t *model, uint64_t extra_bytes,
                     cmn_err_t *err)
{
    assert (dev && model);
    const cmn_llama_hparams_t *hp = cmn_llama_model_hparams (model);
    const wrk_device_info_t *info = wrk_device_info (dev);
    const uint64_t need = wrk_llm_weights_need (model);
    if (need + extra_bytes > info->global_mem) {
        cmn_err_set (err, RXQ_E_LIMIT, "model does not fit the device: it needs %.1f MiB "
                     "(weights %.1f MiB, KV cache and activations %.1f MiB), the device "
                     "has %.1f MiB", (double) (need + extra_bytes) / 1048576.0,
                     (double) need / 1048576.0, (double) extra_bytes / 1048576.0,
                     (double) info->global_mem / 1048576.0);
        return NULL;
    }
    const uint64_t biggest = s_matrix_bytes (cmn_llama_model_output (model));
    if (biggest > info->max_alloc) {
        cmn_err_set (err, RXQ_E_LIMIT, "model does not fit the device: its output matrix "
                     "needs one buffer of %.1f MiB, the device allocates at most %.1f MiB",
                     (double) biggest / 1048576.0, (double) info->max_alloc / 1048576.0);
        return NULL;
    }
    wrk_llm_weights_t *self = calloc (1, sizeof *self);
    if (self)
        self->layers = calloc ((size_t) hp->n_layer, sizeof *self->layers);
    if (!self || !self->layers) {
        free (self);
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    self->n_layer = hp->n_layer;
    if (s_norm (self, dev, cmn_llama_model_output_norm (model), &self->output_norm, err)
    ||  s_matrix (self, dev, cmn_llama_model_output (model), &self->output, err))
        goto fail;
    for (int i = 0; i < hp->n_layer; i++) {
        const cmn_llama_layer_t *src = cmn_llama_model_layer (model, i);
        wrk_llm_layer_t *l = &self->layers [i];
        if (s_norm (self, dev, src->attn_norm, &l->attn_norm, err)
        ||  s_norm (self, dev, src->ffn_norm, &l->ffn_norm, err)
        ||  s_matrix (self, dev, src->wq, &l->wq, err)
        ||  s_matrix (self, dev, src->wk, &l->wk, err)
        ||  s_matrix (self, dev, src->wv, &l->wv, err)
        ||  s_matrix (self, dev, src->wo, &l->wo, err)
        ||  s_matrix (self, dev, src->ffn_gate, &l->gate, err)
        ||  s_matrix (self, dev, src->ffn_up, &l->up, err)
        ||  s_matrix (self, dev, src->ffn_down, &l->down, err))
            goto fail;
    }
    return self;
fail:
    wrk_llm_weights_destroy (&self);
    return NULL;
}

static void
s_release (cl_mem *m)
{
    if (*m)
        clReleaseMemObject (*m);
    *m = NULL;
}

void
wrk_llm_weights_destroy (wrk_llm_weights_t **self_p)
{
    assert (self_p);
    wrk_llm_weights_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->n_layer; i++) {
        wrk_llm_layer_t *l = &self->layers [i];
        s_release (&l->attn_norm);
        s_release (&l->ffn_norm);
        s_release (&l->wq.mem); s_release (&l->wk.mem); s_release (&l->wv.mem);
        s_release (&l->wo.mem); s_release (&l->gate.mem); s_release (&l->up.mem);
        s_release (&l->down.mem);
    }
    s_release (&self->output_norm);
    s_release (&self->output.mem);
    free (self->layers);
    free (self);
    *self_p = NULL;
}

const wrk_llm_layer_t *
wrk_llm_weights_layer (const wrk_llm_weights_t *self, int i)
{
    assert (self && i >= 0 && i < self->n_layer);
    return &self->layers [i];
}

cl_mem wrk_llm_weights_output_norm (const wrk_llm_weights_t *self) { assert (self); return self->output_norm; }
const wrk_llm_matrix_t *wrk_llm_weights_output (const wrk_llm_weights_t *self) { assert (self); return &self->output; }
uint64_t wrk_llm_weights_bytes (const wrk_llm_weights_t *self) { assert (self); return self->bytes; }
