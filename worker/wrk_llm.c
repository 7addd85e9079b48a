/*  wrk_llm: see wrk_llm.h. */
#include "wrk_llm.h"
#include "wrk_kernels.h"
#include "wrk_llm_weights.h"
#include "cmn_quant.h"
#include "cmn_quant_blocks.h"
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const wrk_llm_kclass_names [WRK_LLM_K_COUNT] = {
    "matmul", "norm", "rope", "attention", "elementwise", "copy"
};

//  Activations of one chunk; every buffer holds n_batch rows. Buffers only:
//  wrk_llm_destroy releases the struct as an array of cl_mem.
typedef struct {
    cl_mem x;                   // residual stream [B, E]
    cl_mem h;                   // normalised input of a sub-layer [B, E]
    cl_mem q, k, v;             // projections [B, E], [B, KV], [B, KV]
    cl_mem qh, kh;              // rotated, head-major [H, B, D], [Hkv, B, D]
    cl_mem oh;                  // attention output, head-major [H, B, D]
    cl_mem o;                   // attention output, token-major [B, E]
    cl_mem t;                   // a sub-layer's output [B, E]
    cl_mem g, u;                // FFN gate and up [B, F]
    cl_mem pos;                 // int32 positions [B]
    cl_mem last;                // each sequence's last token's x [S, E]
    cl_mem logits;              // [S, V]
    //  ggml and q8 numerics only (wrk_llm_set_numerics allocates them):
    cl_mem xq;                  // ggml: a product's rounded input [max (B, S), max (E, F)]
    cl_mem xq8;                 // its int8 values (ggml: Q8_1; q8: qi8_quant), same shape
    cl_mem xd, xs;              // their scales and sums, one per 32 values
    cl_mem rope_cs;             // cos, sin per token and pair [B, n_rot / 2, 2]
    cl_mem att;                 // attention scores [H, B, n_ctx]
} s_acts_t;

struct _wrk_llm_t {
    wrk_device_t *dev;                  // borrowed
    const cmn_llama_model_t *model;     // borrowed
    cmn_llama_hparams_t hp;             // copy of the model's
    wrk_llm_weights_t *w;               // weights on the device
    bool w_borrowed;                    // w is the caller's (wrk_llm_new_on)
    cl_mem *kc, *vc;                    // per layer [S, Hkv, n_ctx, D]
    s_acts_t a;                         // activations
    int n_ctx;                          // cache rows per head and sequence
    int n_batch;                        // tokens per chunk
    int n_seq;                          // sequences (S)
    int *n_past;                        // rows filled, per sequence
    float *embd;                        // host [B, E] embeddings of a chunk
    float *rope_cs;                     // host [B, n_rot] RoPE table (ggml numerics)
    int numerics;                       // wrk_llm_numerics_t
    bool xq8_of_last;                   // q8: a.xq8, xd, xs hold the last s_matmul's X
    bool profile;                       // collect kernel times
    cl_event *events;                   // pending profiled events
    int *event_class;                   // their classes
    size_t n_events, cap_events;        // entries, capacity
    uint64_t kernel_ns [WRK_LLM_K_COUNT];   // accumulated device time
};

static cl_mem
s_alloc (wrk_llm_t *self, size_t bytes, cmn_err_t *err)
{
    cl_int rc;
    cl_mem m = clCreateBuffer (wrk_device_context (self->dev), CL_MEM_READ_WRITE,
                               bytes ? bytes : 4, NULL, &rc);
    if (!m)
        wrk_device_cl_error (err, "clCreateBuffer", rc);
    return m;
}

static void
s_release (cl_mem *m)
{
    if (*m)
        clReleaseMemObject (*m);
    *m = NULL;
}

//  Device bytes of the cache and activations for the given sizes.
static uint64_t
s_state_bytes (const cmn_llama_hparams_t *hp, int n_ctx, int B, int S)
{
    const uint64_t E = (uint64_t) hp->n_embd, KV = (uint64_t) hp->n_head_kv * hp->head_dim;
    const uint64_t cache = 2ull * hp->n_layer * KV * (uint64_t) n_ctx * (uint64_t) S * 4;
    const uint64_t acts = (uint64_t) B * (6 * E + 3 * KV + 2 * (uint64_t) hp->n_ff + 1) * 4
                        + (uint64_t) S * (E + (uint64_t) hp->n_vocab) * 4;
    return cache + acts;
}

wrk_llm_t *
wrk_llm_new (wrk_device_t *dev, const cmn_llama_model_t *model, int n_ctx, int n_batch,
             cmn_err_t *err)
{
    return wrk_llm_new_seqs (dev, model, n_ctx, n_batch, 1, err);
}

wrk_llm_t *
wrk_llm_new_seqs (wrk_device_t *dev, const cmn_llama_model_t *model, int n_ctx, int n_batch,
                  int n_seq, cmn_err_t *err)
{
    return wrk_llm_new_on (dev, model, NULL, n_ctx, n_batch, n_seq, err);
}

wrk_llm_t *
wrk_llm_new_on (wrk_device_t *dev, const cmn_llama_model_t *model, wrk_llm_weights_t *weights,
                int n_ctx, int n_batch, int n_seq, cmn_err_t *err)
{
    assert (dev && model && n_batch >= 1 && n_seq >= 1 && n_seq <= WRK_LLM_MAX_SEQ);
    const cmn_llama_hparams_t *hp = cmn_llama_model_hparams (model);
    if (n_ctx < 1 || n_ctx > hp->n_ctx_train) {
        cmn_err_set (err, RXQ_E_LIMIT, "context of %d tokens requested; the model's context "
                     "length is %d", n_ctx, hp->n_ctx_train);
        return NULL;
    }
    if (hp->head_dim % 4 != 0 || hp->head_dim > 256) {
        cmn_err_set (err, RXQ_E_UNSUPPORTED, "head size %d: the attention kernel takes "
                     "multiples of 4 up to 256", hp->head_dim);
        return NULL;
    }
    //  A chunk holds at most every sequence's whole context.
    if ((int64_t) n_batch > (int64_t) n_ctx * n_seq)
        n_batch = n_ctx * n_seq;
    wrk_llm_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    self->dev = dev;
    self->model = model;
    self->hp = *hp;
    self->n_ctx = n_ctx;
    self->n_batch = n_batch;
    self->n_seq = n_seq;
    const size_t E = (size_t) hp->n_embd, KV = (size_t) hp->n_head_kv * hp->head_dim;
    const size_t F = (size_t) hp->n_ff, B = (size_t) n_batch, f = sizeof (float);
    const size_t S = (size_t) n_seq;
    const uint64_t state = s_state_bytes (hp, n_ctx, n_batch, n_seq);
    if (weights) {
        //  The weights are on the device already: the same check as
        //  wrk_llm_weights_new makes, with what they take.
        const uint64_t need = wrk_llm_weights_bytes (weights), have
                            = wrk_device_info (dev)->global_mem;
        if (need + state > have)
            cmn_err_set (err, RXQ_E_LIMIT, "model does not fit the device: it needs %.1f MiB "
                         "(weights %.1f MiB, KV cache and activations %.1f MiB), the device "
                         "has %.1f MiB", (double) (need + state) / 1048576.0,
                         (double) need / 1048576.0, (double) state / 1048576.0,
                         (double) have / 1048576.0);
        else {
            self->w = weights;
            self->w_borrowed = true;
        }
    }
    else
        self->w = wrk_llm_weights_new (dev, model, state, err);
    self->kc = calloc ((size_t) hp->n_layer, sizeof *self->kc);
    self->vc = calloc ((size_t) hp->n_layer, sizeof *self->vc);
    self->embd = malloc (B * E * f);
    self->n_past = calloc (S, sizeof *self->n_past);
    if (!self->w)
        goto fail;
    if (!self->kc || !self->vc || !self->embd || !self->n_past) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < hp->n_layer; i++)
        if (!(self->kc [i] = s_alloc (self, S * KV * (size_t) n_ctx * f, err))
        ||  !(self->vc [i] = s_alloc (self, S * KV * (size_t) n_ctx * f, err)))
            goto fail;
    s_acts_t *a = &self->a;
    if (!(a->x = s_alloc (self, B * E * f, err)) || !(a->h = s_alloc (self, B * E * f, err))
    ||  !(a->q = s_alloc (self, B * E * f, err)) || !(a->k = s_alloc (self, B * KV * f, err))
    ||  !(a->v = s_alloc (self, B * KV * f, err)) || !(a->qh = s_alloc (self, B * E * f, err))
    ||  !(a->kh = s_alloc (self, B * KV * f, err)) || !(a->oh = s_alloc (self, B * E * f, err))
    ||  !(a->o = s_alloc (self, B * E * f, err)) || !(a->t = s_alloc (self, B * E * f, err))
    ||  !(a->g = s_alloc (self, B * F * f, err)) || !(a->u = s_alloc (self, B * F * f, err))
    ||  !(a->pos = s_alloc (self, B * sizeof (cl_int), err))
    ||  !(a->last = s_alloc (self, S * E * f, err))
    ||  !(a->logits = s_alloc (self, S * (size_t) hp->n_vocab * f, err)))
        goto fail;
    return self;
fail:
    wrk_llm_destroy (&self);
    return NULL;
}

static void
s_drop_events (wrk_llm_t *self)
{
    for (size_t i = 0; i < self->n_events; i++)
        clReleaseEvent (self->events [i]);
    self->n_events = 0;
}

void
wrk_llm_destroy (wrk_llm_t **self_p)
{
    assert (self_p);
    wrk_llm_t *self = *self_p;
    if (!self)
        return;
    if (self->dev)
        clFinish (wrk_device_queue (self->dev));
    s_drop_events (self);
    free (self->events);
    free (self->event_class);
    for (int i = 0; self->kc && i < self->hp.n_layer; i++)
        s_release (&self->kc [i]);
    for (int i = 0; self->vc && i < self->hp.n_layer; i++)
        s_release (&self->vc [i]);
    free (self->kc);
    free (self->vc);
    cl_mem *m = (cl_mem *) &self->a;
    for (size_t i = 0; i < sizeof self->a / sizeof (cl_mem); i++)
        s_release (&m [i]);
    if (!self->w_borrowed)
        wrk_llm_weights_destroy (&self->w);
    free (self->embd);
    free (self->rope_cs);
    free (self->n_past);
    free (self);
    *self_p = NULL;
}

int wrk_llm_n_past (const wrk_llm_t *self) { assert (self); return self->n_past [0]; }
int wrk_llm_n_ctx (const wrk_llm_t *self) { assert (self); return self->n_ctx; }
int wrk_llm_n_seq (const wrk_llm_t *self) { assert (self); return self->n_seq; }

int
wrk_llm_seq_past (const wrk_llm_t *self, int seq)
{
    assert (self && seq >= 0 && seq < self->n_seq);
    return self->n_past [seq];
}

void
wrk_llm_reset (wrk_llm_t *self)
{
    assert (self);
    memset (self->n_past, 0, (size_t) self->n_seq * sizeof *self->n_past);
}

int
wrk_llm_numerics_from_name (const char *name)
{
    assert (name);
    return !strcmp (name, "f32") ? WRK_LLM_NUMERICS_F32
         : !strcmp (name, "ggml") ? WRK_LLM_NUMERICS_GGML
         : !strcmp (name, "q8") ? WRK_LLM_NUMERICS_Q8 : -1;
}

//  Releases the ggml and q8 numerics' buffers.
static void
s_drop_ggml (wrk_llm_t *self)
{
    s_release (&self->a.xq);
    s_release (&self->a.xq8);
    s_release (&self->a.xd);
    s_release (&self->a.xs);
    s_release (&self->a.rope_cs);
    s_release (&self->a.att);
    free (self->rope_cs);
    self->rope_cs = NULL;
}

//  Bytes of the numerics' scratch buffers SELF holds now.
static uint64_t
s_scratch_bytes (wrk_llm_t *self)
{
    const cl_mem m [6] = { self->a.xq, self->a.xq8, self->a.xd, self->a.xs, self->a.rope_cs,
                           self->a.att };
    uint64_t total = 0;
    for (int i = 0; i < 6; i++) {
        size_t n = 0;
        if (m [i] && clGetMemObjectInfo (m [i], CL_MEM_SIZE, sizeof n, &n, NULL) == CL_SUCCESS)
            total += n;
    }
    return total;
}

int
wrk_llm_set_numerics (wrk_llm_t *self, int numerics, cmn_err_t *err)
{
    assert (self);
    assert (numerics == WRK_LLM_NUMERICS_F32 || numerics == WRK_LLM_NUMERICS_GGML
         || numerics == WRK_LLM_NUMERICS_Q8);
    //  The widest input of a product is an FFN row (F) or a model row
    //  (E), over a chunk (B rows) or the output's gathered rows (S).
    const size_t B = (size_t) self->n_batch;
    const size_t rows = (size_t) (self->n_batch > self->n_seq ? self->n_batch : self->n_seq);
    const size_t cols = (size_t) (self->hp.n_ff > self->hp.n_embd ? self->hp.n_ff
                                                                    : self->hp.n_embd);
    const size_t f = sizeof (float), nb = rows * (cols / 32 + 1);
    s_acts_t *a = &self->a;
    //  The scratch these numerics add, checked as wrk_llm_new checks the
    //  model: in total against the device's memory (drivers that allocate
    //  lazily would otherwise fail in the middle of a generation) and the
    //  attention scores against the largest buffer.
    const uint64_t att = (uint64_t) self->hp.n_head * B * (uint64_t) self->n_ctx * f;
    uint64_t scratch = 0;
    if (numerics != WRK_LLM_NUMERICS_F32 && !a->xq8)
        scratch += rows * cols + 2 * nb * f;
    if (numerics == WRK_LLM_NUMERICS_GGML && !a->xq)
        scratch += rows * cols * f + 2 * B * (uint64_t) self->hp.n_rot * f + att;
    if (scratch) {
        const wrk_device_info_t *info = wrk_device_info (self->dev);
        const uint64_t held = wrk_llm_weights_bytes (self->w)
                            + s_state_bytes (&self->hp, self->n_ctx, self->n_batch, self->n_seq)
                            + s_scratch_bytes (self);
        if (numerics == WRK_LLM_NUMERICS_GGML && !a->xq && att > info->max_alloc)
            return cmn_err_set (err, RXQ_E_LIMIT, "numerics ggml: the attention scores of "
                                "%d tokens by %d of context take %.1f MiB, over the device's "
                                "largest buffer (%.1f MiB); use a smaller batch or context",
                                self->n_batch, self->n_ctx, (double) att / 1048576.0,
                                (double) info->max_alloc / 1048576.0);
        if (held + scratch > info->global_mem)
            return cmn_err_set (err, RXQ_E_LIMIT, "numerics %s needs %.1f MiB of scratch; with "
                                "the model and its state (%.1f MiB) that is over the device's "
                                "%.1f MiB", numerics == WRK_LLM_NUMERICS_GGML ? "ggml" : "q8",
                                (double) scratch / 1048576.0, (double) held / 1048576.0,
                                (double) info->global_mem / 1048576.0);
    }
    if (numerics != WRK_LLM_NUMERICS_F32 && !a->xq8) {
        //  int8 activations, their scales and sums (both numerics).
        if (!(a->xq8 = s_alloc (self, rows * cols, err))
        ||  !(a->xd = s_alloc (self, nb * f, err)) || !(a->xs = s_alloc (self, nb * f, err))) {
            s_drop_ggml (self);
            return -1;
        }
    }
    if (numerics == WRK_LLM_NUMERICS_GGML && !a->xq) {
        if (!(self->rope_cs = malloc (B * (size_t) self->hp.n_rot * f))) {
            cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
            s_drop_ggml (self);
            return -1;
        }
        if (!(a->xq = s_alloc (self, rows * cols * f, err))
        ||  !(a->rope_cs = s_alloc (self, B * (size_t) self->hp.n_rot * f, err))
        ||  !(a->att = s_alloc (self, (size_t) self->hp.n_head * B * (size_t) self->n_ctx * f,
                                err))) {
            s_drop_ggml (self);
            return -1;
        }
    }
    self->numerics = numerics;
    return 0;
}

int wrk_llm_numerics (const wrk_llm_t *self) { assert (self); return self->numerics; }

void wrk_llm_set_profile (wrk_llm_t *self, bool on) { assert (self); self->profile = on; }
const uint64_t *wrk_llm_kernel_ns (const wrk_llm_t *self) { assert (self); return self->kernel_ns; }

void
wrk_llm_clear_times (wrk_llm_t *self)
{
    assert (self);
    memset (self->kernel_ns, 0, sizeof self->kernel_ns);
}

//  Where a launcher puts its event: a pending slot when profiling, else
//  nowhere. Called right before each launch; s_keep files the event.
static cl_event *
s_ev (wrk_llm_t *self, int cls)
{
    if (!self->profile)
        return NULL;
    if (self->n_events == self->cap_events) {
        size_t cap = self->cap_events ? self->cap_events * 2 : 1024;
        cl_event *e = realloc (self->events, cap * sizeof *e);
        if (e)
            self->events = e;
        int *c = realloc (self->event_class, cap * sizeof *c);
        if (c)
            self->event_class = c;
        if (!e || !c)
            return NULL;        // profiling degrades, the pass goes on
        self->cap_events = cap;
    }
    self->event_class [self->n_events] = cls;
    self->events [self->n_events] = NULL;
    return &self->events [self->n_events];
}

//  Counts the event s_ev handed out, if the launch produced one.
static void
s_keep (wrk_llm_t *self)
{
    if (self->profile && self->n_events < self->cap_events && self->events [self->n_events])
        self->n_events++;
}

//  Waits for the queue and adds the pending events' times.
static int
s_finish (wrk_llm_t *self, cmn_err_t *err)
{
    cl_int rc = clFinish (wrk_device_queue (self->dev));
    if (rc == CL_SUCCESS)
        for (size_t i = 0; i < self->n_events; i++)
            self->kernel_ns [self->event_class [i]] += wrk_device_event_ns (self->events [i]);
    s_drop_events (self);
    return rc == CL_SUCCESS ? 0 : wrk_device_cl_error (err, "clFinish", rc);
}

#define RUN(cls, call) do { \
        cl_event *ev_ = s_ev (self, cls); \
        (void) ev_; \
        if ((call) < 0) \
            return -1; \
        s_keep (self); \
    } while (0)

//  Y [T, rows] = X [T, cols] M^T, by GEMV when T is 1. With q8 numerics a
//  GEMV (any of qmatmul's five types) rounds X to int8 blocks first
//  (wrk_kernels_gemv_q_i8), unless SAME_X says that X is the previous
//  call's X, unchanged since, and that call left it rounded (the Q, K, V
//  projections and the FFN's gate and up share theirs). With ggml numerics
//  a Q4_1 product is llama.cpp's, bit for bit (X to Q8_1 blocks, then
//  ggml_vec_dot_q4_1_q8_1's order); other types get X rounded as ggml
//  rounds it (into xq; X is left alone, since several products read it)
//  and the float32 product.
static int
s_matmul (wrk_llm_t *self, const wrk_llm_matrix_t *m, cl_mem X, cl_mem Y, int T, bool same_x,
          cmn_err_t *err)
{
    const bool ggml = self->numerics == WRK_LLM_NUMERICS_GGML;
    s_acts_t *a = &self->a;
    const bool rounded = same_x && self->xq8_of_last;
    self->xq8_of_last = false;
    if (ggml && m->type == GGML_TYPE_Q4_1) {
        //  ggml_vec_dot_q4_1_q8_1 on Q8_1 blocks, in its order.
        RUN (WRK_LLM_K_MATMUL, wrk_kernels_ggml_quant_q8_1 (self->dev, X, a->xq8, a->xd, a->xs,
                                                            T, m->cols, ev_, err));
        RUN (WRK_LLM_K_MATMUL, wrk_kernels_ggml_mm_q4_1 (self->dev, m->mem, a->xq8, a->xd,
                                                         a->xs, Y, m->rows, m->cols, T, ev_,
                                                         err));
        return 0;
    }
    if (self->numerics == WRK_LLM_NUMERICS_Q8 && T == 1
    &&  (m->type == GGML_TYPE_Q4_0 || m->type == GGML_TYPE_Q4_1 || m->type == GGML_TYPE_Q8_0
    ||   m->type == GGML_TYPE_Q4_K || m->type == GGML_TYPE_Q6_K)) {
        //  One token: x to int8 blocks, then integer dot products.
        if (!rounded)
            RUN (WRK_LLM_K_MATMUL, wrk_kernels_quant_i8 (self->dev, X, a->xq8, a->xd, a->xs,
                                                         m->cols, ev_, err));
        self->xq8_of_last = true;
        RUN (WRK_LLM_K_MATMUL, wrk_kernels_gemv_q_i8 (self->dev, m->type, m->mem, a->xq8, a->xd,
                                                      a->xs, Y, m->rows, m->cols, ev_, err));
        return 0;
    }
    if (ggml) {
        //  Other types: the activations rounded as ggml rounds them, the
        //  product in float32 in this library's order.
        RUN (WRK_LLM_K_MATMUL, wrk_kernels_ggml_round_act (self->dev, m->type, X, a->xq, T,
                                                           m->cols, ev_, err));
        X = a->xq;
    }
    if (T == 1)
        RUN (WRK_LLM_K_MATMUL, wrk_kernels_gemv_q (self->dev, m->type, m->mem, X, Y, m->rows,
                                                   m->cols, ev_, err));
    else
        RUN (WRK_LLM_K_MATMUL, wrk_kernels_gemm_q (self->dev, m->type, m->mem, X, Y, m->rows,
                                                   m->cols, T, ev_, err));
    return 0;
}

static int
s_copy (wrk_llm_t *self, cl_mem src, cl_mem dst, size_t src_off, size_t dst_off, size_t bytes,
        cmn_err_t *err)
{
    cl_event *ev = s_ev (self, WRK_LLM_K_COPY);
    cl_int rc = clEnqueueCopyBuffer (wrk_device_queue (self->dev), src, dst, src_off, dst_off,
                                     bytes, 0, NULL, ev);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueCopyBuffer", rc);
    s_keep (self);
    return 0;
}

//  Copies ROWS rows of WIDTH bytes between pitched layouts.
static int
s_copy_rect (wrk_llm_t *self, cl_mem src, cl_mem dst, size_t src_off, size_t src_pitch,
             size_t dst_off, size_t dst_pitch, size_t width, size_t rows, cmn_err_t *err)
{
    const size_t so [3] = { src_off, 0, 0 }, dso [3] = { dst_off, 0, 0 };
    const size_t region [3] = { width, rows, 1 };
    cl_event *ev = s_ev (self, WRK_LLM_K_COPY);
    cl_int rc = clEnqueueCopyBufferRect (wrk_device_queue (self->dev), src, dst, so, dso, region,
                                         src_pitch, 0, dst_pitch, 0, 0, NULL, ev);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueCopyBufferRect", rc);
    s_keep (self);
    return 0;
}

//  A run of one sequence's tokens inside a chunk.
typedef struct {
    int seq;                    // the sequence
    int t0, n;                  // first row in the chunk, tokens
    int p0;                     // position of the first token
    int out;                    // row of the caller's logits, or -1
} s_seg_t;

//  Y [ROWS, E] = rms_norm (X) * W, as the numerics say.
static int
s_norm (wrk_llm_t *self, cl_mem X, cl_mem W, cl_mem Y, int rows, cmn_err_t *err)
{
    const cmn_llama_hparams_t *hp = &self->hp;
    if (self->numerics == WRK_LLM_NUMERICS_GGML)
        RUN (WRK_LLM_K_NORM, wrk_kernels_ggml_rms_norm (self->dev, X, W, Y, rows, hp->n_embd,
                                                        hp->norm_eps, ev_, err));
    else
        RUN (WRK_LLM_K_NORM, wrk_kernels_rms_norm (self->dev, X, W, Y, rows, hp->n_embd,
                                                   hp->norm_eps, WRK_ACT_NONE, ev_, err));
    return 0;
}

//  RoPE of X into Y, as the numerics say.
static int
s_rope (wrk_llm_t *self, cl_mem X, cl_mem Y, const wrk_rope_t *r, cmn_err_t *err)
{
    if (self->numerics == WRK_LLM_NUMERICS_GGML)
        RUN (WRK_LLM_K_ROPE, wrk_kernels_ggml_rope (self->dev, X, Y, self->a.rope_cs, r,
                                                    ev_, err));
    else
        RUN (WRK_LLM_K_ROPE, wrk_kernels_rope (self->dev, X, Y, self->a.pos, r, ev_, err));
    return 0;
}

//  One block on a chunk of T tokens made of N_SEGS segments.
static int
s_block (wrk_llm_t *self, int il, int T, const s_seg_t *segs, int n_segs, cmn_err_t *err)
{
    const cmn_llama_hparams_t *hp = &self->hp;
    const wrk_llm_layer_t *L = wrk_llm_weights_layer (self->w, il);
    s_acts_t *a = &self->a;
    const int E = hp->n_embd, D = hp->head_dim, H = hp->n_head, Hkv = hp->n_head_kv;
    const int KV = Hkv * D;
    const size_t f = sizeof (float);

    if (s_norm (self, a->x, L->attn_norm, a->h, T, err))
        return -1;
    if (s_matmul (self, &L->wq, a->h, a->q, T, false, err)
    ||  s_matmul (self, &L->wk, a->h, a->k, T, true, err)
    ||  s_matmul (self, &L->wv, a->h, a->v, T, true, err))
        return -1;
    //  Rotate q into head-major order for the attention kernel, and k into
    //  head-major order so each head's rows go to the cache in one copy.
    wrk_rope_t rq = { .n_tokens = T, .n_heads = H, .head_dim = D, .n_dims = hp->n_rot,
                      .mode = WRK_ROPE_NORMAL, .freq_base = hp->rope_freq_base,
                      .xs_tok = E, .xs_head = D, .ys_tok = D, .ys_head = T * D };
    wrk_rope_t rk = rq;
    rk.n_heads = Hkv;
    rk.xs_tok = KV;
    if (s_rope (self, a->q, a->qh, &rq, err) || s_rope (self, a->k, a->kh, &rk, err))
        return -1;
    const bool ggml = self->numerics == WRK_LLM_NUMERICS_GGML;
    if (ggml) {
        //  llama.cpp's cache is F16: K (rotated) and V are rounded on entry.
        RUN (WRK_LLM_K_ELEMENTWISE, wrk_kernels_ggml_round_f16 (self->dev, a->kh,
                                                                (size_t) T * KV, ev_, err));
        RUN (WRK_LLM_K_ELEMENTWISE, wrk_kernels_ggml_round_f16 (self->dev, a->v,
                                                                (size_t) T * KV, ev_, err));
    }
    //  Each command costs the driver microseconds, and a 7B model has 32
    //  KV heads: one rectangle per cache and segment, not one copy per
    //  head, wherever the layouts allow. k: head h's rows t0 .. t0+n-1 are
    //  contiguous in kh and go to rows p0.. of head h in the sequence's
    //  cache. v: for one token, head h's D values sit at h * D in v; for
    //  several the heads are interleaved with the tokens, which one
    //  rectangle cannot express.
    const size_t head_rows = (size_t) self->n_ctx * D * f;
    for (int i = 0; i < n_segs; i++) {
        const s_seg_t *sg = &segs [i];
        const size_t seq0 = (size_t) sg->seq * Hkv * head_rows;
        const size_t row0 = seq0 + (size_t) sg->p0 * D * f;
        if (s_copy_rect (self, a->kh, self->kc [il], (size_t) sg->t0 * D * f, (size_t) T * D * f,
                         row0, head_rows, (size_t) sg->n * D * f, (size_t) Hkv, err))
            return -1;
        if (sg->n == 1) {
            if (s_copy_rect (self, a->v, self->vc [il], (size_t) sg->t0 * KV * f, (size_t) D * f,
                             row0, head_rows, (size_t) D * f, (size_t) Hkv, err))
                return -1;
        }
        else
            for (int h = 0; h < Hkv; h++)
                if (s_copy_rect (self, a->v, self->vc [il],
                                 ((size_t) sg->t0 * KV + (size_t) h * D) * f, (size_t) KV * f,
                                 (size_t) h * head_rows + row0, (size_t) D * f, (size_t) D * f,
                                 (size_t) sg->n, err))
                    return -1;
        //  Each segment attends to its own sequence's cache; its queries
        //  are rows t0 .. of each head of qh, and so are its outputs in oh.
        const wrk_attn_t at = { .n_q_heads = H, .n_kv_heads = Hkv, .n_tokens = sg->n,
                                .head_dim = D, .ctx = self->n_ctx, .n_past = sg->p0,
                                .scale = 1.0f / sqrtf ((float) D), .q_rows = T,
                                .q_off = (size_t) sg->t0 * D,
                                .kv_off = (size_t) sg->seq * Hkv * self->n_ctx * D };
        //  llama.cpp's products take ggml_vec_dot_f16 for a batch of one
        //  token and tinyBLAS for more: T is that batch here.
        if (ggml)
            RUN (WRK_LLM_K_ATTENTION, wrk_kernels_attention_ggml (self->dev, a->qh,
                                                                  self->kc [il], self->vc [il],
                                                                  a->oh, a->att, &at, T == 1,
                                                                  ev_, err));
        else
            RUN (WRK_LLM_K_ATTENTION, wrk_kernels_attention (self->dev, a->qh, self->kc [il],
                                                             self->vc [il], a->oh, &at, ev_,
                                                             err));
    }
    //  Back to token-major [T, H * D]; for one token the layouts coincide.
    cl_mem o = a->oh;
    if (T > 1) {
        for (int h = 0; h < H; h++)
            if (s_copy_rect (self, a->oh, a->o, (size_t) h * T * D * f, (size_t) D * f,
                             (size_t) h * D * f, (size_t) E * f, (size_t) D * f, (size_t) T, err))
                return -1;
        o = a->o;
    }
    if (s_matmul (self, &L->wo, o, a->t, T, false, err))
        return -1;
    RUN (WRK_LLM_K_ELEMENTWISE, wrk_kernels_add (self->dev, a->x, a->t, a->x, (size_t) T * E,
                                                 (size_t) T * E, ev_, err));
    if (s_norm (self, a->x, L->ffn_norm, a->h, T, err))
        return -1;
    if (s_matmul (self, &L->gate, a->h, a->g, T, false, err)
    ||  s_matmul (self, &L->up, a->h, a->u, T, true, err))
        return -1;
    if (ggml)
        RUN (WRK_LLM_K_ELEMENTWISE, wrk_kernels_ggml_swiglu (self->dev, a->g, a->u, a->g,
                                                             (size_t) T * hp->n_ff, ev_, err));
    else
        RUN (WRK_LLM_K_ELEMENTWISE, wrk_kernels_swiglu (self->dev, a->g, a->u, a->g,
                                                        (size_t) T * hp->n_ff, ev_, err));
    if (s_matmul (self, &L->down, a->g, a->t, T, false, err))
        return -1;
    RUN (WRK_LLM_K_ELEMENTWISE, wrk_kernels_add (self->dev, a->x, a->t, a->x, (size_t) T * E,
                                                 (size_t) T * E, ev_, err));
    return 0;
}

//  Runs one chunk of T tokens (T <= n_batch): N_SEGS segments, each at
//  its sequence's next positions, whose tokens are TOKENS [seg.t0 ..].
//  Segments with out >= 0 write their last token's logits to LOGITS row
//  out.
static int
s_chunk (wrk_llm_t *self, const int32_t *const *tokens, const s_seg_t *segs, int n_segs,
         int T, float *logits, wrk_llm_stop_fn *stop, void *arg, cmn_err_t *err)
{
    const cmn_llama_hparams_t *hp = &self->hp;
    const cmn_gguf_tensor_t *embd = cmn_llama_model_tok_embd (self->model);
    const size_t E = (size_t) hp->n_embd, V = (size_t) hp->n_vocab, f = sizeof (float);
    const size_t rb = cmn_quant_row_bytes (embd->type, E);
    cl_int pos [T];
    for (int i = 0; i < n_segs; i++)
        for (int j = 0; j < segs [i].n; j++) {
            const int t = segs [i].t0 + j;
            cmn_quant_dequantize_row (embd->type,
                                      (const uint8_t *) embd->data + rb * (size_t) tokens [i][j],
                                      self->embd + (size_t) t * E, E);
            pos [t] = segs [i].p0 + j;
        }
    cl_command_queue q = wrk_device_queue (self->dev);
    cl_int rc = CL_SUCCESS;
    if (self->numerics == WRK_LLM_NUMERICS_GGML) {
        //  ggml's RoPE table (ggml_rope_cache_init): theta starts at the
        //  position and is multiplied by theta_scale pair after pair; cosf
        //  and sinf of the C library, as llama.cpp calls them.
        const int half = hp->n_rot / 2;
        const float theta_scale = powf (hp->rope_freq_base, -2.0f / (float) hp->n_rot);
        for (int t = 0; t < T; t++) {
            float theta = (float) pos [t];
            for (int i = 0; i < half; i++) {
                self->rope_cs [((size_t) t * half + i) * 2] = cosf (theta);
                self->rope_cs [((size_t) t * half + i) * 2 + 1] = sinf (theta);
                theta *= theta_scale;
            }
        }
        rc = clEnqueueWriteBuffer (q, self->a.rope_cs, CL_FALSE, 0, (size_t) T * hp->n_rot * f,
                                   self->rope_cs, 0, NULL, NULL);
    }
    if (rc == CL_SUCCESS)
        rc = clEnqueueWriteBuffer (q, self->a.x, CL_FALSE, 0, (size_t) T * E * f, self->embd,
                                   0, NULL, NULL);
    if (rc == CL_SUCCESS)
        rc = clEnqueueWriteBuffer (q, self->a.pos, CL_TRUE, 0, (size_t) T * sizeof (cl_int), pos,
                                   0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return wrk_device_cl_error (err, "clEnqueueWriteBuffer", rc);
    for (int il = 0; il < hp->n_layer; il++) {
        if (stop) {
            const int why = stop (arg);
            if (why) {
                s_finish (self, NULL);
                return cmn_err_set (err, why, "stopped at block %d of %d", il, hp->n_layer);
            }
        }
        if (s_block (self, il, T, segs, n_segs, err) < 0) {
            s_finish (self, NULL);
            return -1;
        }
    }
    for (int i = 0; i < n_segs; i++)
        self->n_past [segs [i].seq] += segs [i].n;
    //  The last token of each segment that wants logits, gathered into
    //  rows of `last`, then normed and projected together.
    s_acts_t *a = &self->a;
    int n_out = 0;
    for (int i = 0; i < n_segs; i++)
        if (segs [i].out >= 0) {
            if (s_copy (self, a->x, a->last, (size_t) (segs [i].t0 + segs [i].n - 1) * E * f,
                        (size_t) n_out * E * f, E * f, err) < 0)
                return -1;
            n_out++;
        }
    if (n_out) {
        const wrk_llm_matrix_t *out = wrk_llm_weights_output (self->w);
        if (s_norm (self, a->last, wrk_llm_weights_output_norm (self->w), a->last, n_out,
                    err) < 0)
            return -1;
        if (s_matmul (self, out, a->last, a->logits, n_out, false, err) < 0)
            return -1;
        for (int i = 0, r = 0; i < n_segs; i++)
            if (segs [i].out >= 0) {
                rc = clEnqueueReadBuffer (q, a->logits, CL_FALSE, (size_t) r++ * V * f, V * f,
                                          logits + (size_t) segs [i].out * V, 0, NULL, NULL);
                if (rc != CL_SUCCESS)
                    return wrk_device_cl_error (err, "clEnqueueReadBuffer", rc);
            }
    }
    return s_finish (self, err);
}

int
wrk_llm_eval (wrk_llm_t *self, const int32_t *tokens, int n, float *logits,
              wrk_llm_stop_fn *stop, void *arg, cmn_err_t *err)
{
    assert (self && tokens && n >= 1);
    const wrk_llm_batch_t b = { .seq = 0, .tokens = tokens, .n = n };
    return wrk_llm_eval_batch (self, &b, 1, logits, stop, arg, err);
}

int
wrk_llm_eval_batch (wrk_llm_t *self, const wrk_llm_batch_t *batch, int n, float *logits,
                    wrk_llm_stop_fn *stop, void *arg, cmn_err_t *err)
{
    assert (self && batch && n >= 1 && n <= self->n_seq);
    for (int i = 0; i < n; i++) {
        const wrk_llm_batch_t *b = &batch [i];
        assert (b->seq >= 0 && b->seq < self->n_seq && b->tokens && b->n >= 1);
        for (int j = 0; j < i; j++)
            assert (batch [j].seq != b->seq);   // one entry per sequence
        if (b->n > self->n_ctx - self->n_past [b->seq])
            return cmn_err_set (err, RXQ_E_LIMIT, "%d tokens do not fit the context: %d of %d "
                                "positions are used", b->n, self->n_past [b->seq], self->n_ctx);
        for (int j = 0; j < b->n; j++)
            if (b->tokens [j] < 0 || b->tokens [j] >= self->hp.n_vocab)
                return cmn_err_set (err, RXQ_E_INVAL, "token id %d is outside the vocabulary "
                                    "of %d", b->tokens [j], self->hp.n_vocab);
    }
    //  Fill chunks of up to n_batch rows with the entries' tokens in
    //  order; an entry may span chunks, and its logits come from the chunk
    //  that holds its last token.
    s_seg_t segs [WRK_LLM_MAX_SEQ];
    const int32_t *toks [WRK_LLM_MAX_SEQ];
    int entry = 0, done = 0;            // next entry, its tokens already run
    while (entry < n) {
        int T = 0, n_segs = 0;
        while (entry < n && T < self->n_batch) {
            const wrk_llm_batch_t *b = &batch [entry];
            const int take = b->n - done < self->n_batch - T ? b->n - done : self->n_batch - T;
            segs [n_segs] = (s_seg_t) { .seq = b->seq, .t0 = T, .n = take,
                                        .p0 = self->n_past [b->seq],
                                        .out = done + take == b->n && logits ? entry : -1 };
            toks [n_segs++] = b->tokens + done;
            T += take;
            done += take;
            if (done == b->n) {
                entry++;
                done = 0;
            }
        }
        if (s_chunk (self, toks, segs, n_segs, T, logits, stop, arg, err) < 0)
            return -1;
    }
    return 0;
}
