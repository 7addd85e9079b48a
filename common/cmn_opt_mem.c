/*  cmn_opt_mem: FLOPs and memory plan. See cmn_opt_mem.h.
 *
 *  FLOPs count a multiply-add as 2: Conv 2*out*(Cin/group)*kernel, MatMul
 *  and Gemm 2*M*N*K (+ M*N for Gemm's C), pooling out*kernel, elementwise
 *  and activations one per output element, normalisations and Softmax a
 *  few per element. Shape-only ops (Reshape, Transpose, Shape...) count 0.
 */
#include "cmn_opt_mem.h"
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

static double
s_numel (const cmn_graph_shape_t *s)
{
    if (!cmn_graph_shape_static (s))
        return -1;
    double n = 1;
    for (int k = 0; k < s->rank; k++)
        n *= (double) s->dims [k];
    return n;
}

static const char *const s_free_ops [] = {
    "Reshape", "Transpose", "Shape", "Size", "Flatten", "Squeeze", "Unsqueeze",
    "Identity", "Dropout", "Concat", "Split", "Slice", "Gather", "Constant",
    "ConstantOfShape", "Cast", "Expand", "Tile", "Pad", NULL
};

//  FLOPs of node N, or -1 when unknown.
static double
s_node_flops (cmn_graph_t *g, const cmn_onnx_node_t *n)
{
    if (n->noutputs == 0 || !n->outputs [0][0])
        return 0;
    for (const char *const *f = s_free_ops; *f; f++)
        if (!strcmp (n->op_type, *f))
            return 0;
    const cmn_graph_shape_t *o = cmn_graph_shape (g, n->outputs [0]);
    double out = s_numel (o);
    if (out < 0)
        return -1;
    const char *op = n->op_type;
    //  The layout pass's NHWC forms cost what their NCHW ops do (NhwcConv's
    //  OHWI weight also has Cout first).
    if (!strcmp (n->domain, CMN_GRAPH_NHWC_DOMAIN) && !strncmp (op, "Nhwc", 4))
        op += 4;
    if (!strcmp (op, "Conv")) {
        if (n->ninputs < 2)
            return -1;
        const cmn_graph_shape_t *w = cmn_graph_shape (g, n->inputs [1]);
        double wk = s_numel (w);
        if (wk < 0 || w->dims [0] <= 0)
            return -1;
        //  Per output element: (Cin/group) * kernel MACs = numel(W) / Cout.
        return 2 * out * wk / (double) w->dims [0] + (n->ninputs > 2 ? out : 0);
    }
    if ((!strcmp (op, "MatMul") || !strcmp (op, "Gemm")) && n->ninputs >= 2) {
        const cmn_graph_shape_t *a = cmn_graph_shape (g, n->inputs [0]);
        if (a->rank < 1 || a->dims [a->rank - 1] < 0)
            return -1;
        int64_t k = a->dims [a->rank - 1];
        if (!strcmp (op, "Gemm") && cmn_onnx_node_attr_int (n, "transA", 0) && a->rank == 2)
            k = a->dims [0];
        return 2 * out * (double) k + (!strcmp (op, "Gemm") && n->ninputs > 2 ? out : 0);
    }
    if (!strcmp (op, "MaxPool") || !strcmp (op, "AveragePool")) {
        cmn_onnx_attr_t *ks = cmn_onnx_node_attr (n, "kernel_shape");
        double k = 1;
        for (size_t i = 0; ks && i < ks->nints; i++)
            k *= (double) ks->ints [i];
        return out * k;
    }
    if (!strcmp (op, "GlobalAveragePool") || !strcmp (op, "GlobalMaxPool")
        || !strncmp (op, "Reduce", 6)) {
        if (n->ninputs < 1)
            return -1;
        double in = s_numel (cmn_graph_shape (g, n->inputs [0]));
        return in < 0 ? -1 : in;
    }
    if (!strcmp (op, "BatchNormalization") || !strcmp (op, "InstanceNormalization"))
        return 2 * out;
    if (!strcmp (op, "LayerNormalization") || !strcmp (op, "Softmax") || !strcmp (op, "LogSoftmax"))
        return 5 * out;
    return out;
}

typedef struct {
    int64_t size;           // bytes
    bool busy;              // holds a live tensor
} s_buf_t;

int
cmn_opt_mem_estimate (cmn_graph_t *g, cmn_opt_mem_t *m, cmn_err_t *err)
{
    memset (m, 0, sizeof *m);
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    for (size_t i = 0; i < og->ninits; i++)
        m->weight_bytes += (int64_t) og->inits [i]->raw_size;
    //  Last reader (node index) of each value.
    zhashx_t *last = zhashx_new ();     // name -> last reader index + 1
    zhashx_t *where = zhashx_new ();    // name -> buffer index + 1
    s_buf_t *bufs = calloc (og->nnodes * 4 + 4, sizeof *bufs);
    size_t nbufs = 0, capbufs = og->nnodes * 4 + 4;
    if (!last || !where || !bufs) {
        zhashx_destroy (&last);
        zhashx_destroy (&where);
        free (bufs);
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < og->nnodes; i++) {
        const cmn_onnx_node_t *n = og->nodes [i];
        for (size_t k = 0; k < n->ninputs; k++)
            if (n->inputs [k][0])
                zhashx_update (last, n->inputs [k], (void *) (uintptr_t) (i + 1));
        double f = s_node_flops (g, n);
        if (f < 0)
            m->flops_partial = true;
        else
            m->flops += f;
    }
    int64_t live = 0;
    for (size_t i = 0; i < og->nnodes; i++) {
        const cmn_onnx_node_t *n = og->nodes [i];
        for (size_t k = 0; k < n->noutputs; k++) {
            const char *name = n->outputs [k];
            if (!name [0] || cmn_graph_is_output (g, name))
                continue;
            int64_t bytes = cmn_graph_shape_bytes (cmn_graph_shape (g, name));
            if (bytes < 0) {
                m->mem_partial = true;
                continue;
            }
            m->tensors++;
            m->naive_bytes += bytes;
            //  An output nobody reads is freed at once (after this node).
            if (!zhashx_lookup (last, name))
                zhashx_update (last, name, (void *) (uintptr_t) (i + 1));
            size_t best = SIZE_MAX;
            for (size_t b = 0; b < nbufs; b++)
                if (!bufs [b].busy && bufs [b].size >= bytes
                    && (best == SIZE_MAX || bufs [b].size < bufs [best].size))
                    best = b;
            if (best == SIZE_MAX) {
                //  No free buffer is big enough: grow the largest free one
                //  if any (arena-style), else add a buffer.
                for (size_t b = 0; b < nbufs; b++)
                    if (!bufs [b].busy && (best == SIZE_MAX || bufs [b].size > bufs [best].size))
                        best = b;
                if (best == SIZE_MAX) {
                    if (nbufs == capbufs) {
                        s_buf_t *q = realloc (bufs, 2 * capbufs * sizeof *q);
                        if (!q) {
                            zhashx_destroy (&last);
                            zhashx_destroy (&where);
                            free (bufs);
                            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
                        }
                        bufs = q;
                        capbufs *= 2;
                    }
                    best = nbufs++;
                    bufs [best].size = 0;
                }
                bufs [best].size = bytes;
            }
            bufs [best].busy = true;
            zhashx_update (where, name, (void *) (uintptr_t) (best + 1));
            live += bytes;
        }
        if (live > m->peak_live_bytes)
            m->peak_live_bytes = live;
        //  Free what this node was the last to read (and its unread outputs).
        for (int pass = 0; pass < 2; pass++) {
            size_t cnt = pass ? n->noutputs : n->ninputs;
            for (size_t k = 0; k < cnt; k++) {
                const char *name = pass ? n->outputs [k] : n->inputs [k];
                if (!name [0] || (size_t) (uintptr_t) zhashx_lookup (last, name) != i + 1)
                    continue;
                size_t b = (size_t) (uintptr_t) zhashx_lookup (where, name);
                if (!b)
                    continue;
                bufs [b - 1].busy = false;
                live -= cmn_graph_shape_bytes (cmn_graph_shape (g, name));
                zhashx_delete (where, name);
            }
        }
    }
    m->buffers = nbufs;
    for (size_t b = 0; b < nbufs; b++)
        m->planned_bytes += bufs [b].size;
    zhashx_destroy (&last);
    zhashx_destroy (&where);
    free (bufs);
    return 0;
}
