/*  cmn_graph: analysis view of an ONNX graph. See cmn_graph.h.
 *
 *  Values live in one array indexed through a czmq zhashx (name -> index
 *  + 1). Everything is recomputed from the graph on each refresh: the
 *  passes edit the cmn_onnx structs directly and refresh between sweeps,
 *  which keeps the view trivially consistent; graphs of 10^4 nodes take
 *  milliseconds.
 */
#include "cmn_graph.h"
#include <assert.h>
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;           // borrowed from the graph
    ssize_t producer;           // node index, -1 for inputs/initializers
    size_t uses;                // node input slots + outputs + subgraph refs
    bool is_output;             // graph output
    bool is_input;              // graph input
    cmn_onnx_tensor_t *init;    // initializer, or NULL
    cmn_graph_shape_t shape;    // inferred shape and type
} s_value_t;

struct _cmn_graph_t {
    cmn_onnx_model_t *model;    // borrowed
    cmn_onnx_graph_t *g;        // model->graph
    int64_t opset;              // ai.onnx opset imported
    zhashx_t *index;            // name -> value index + 1
    s_value_t *values;          // all values
    size_t nvalues;             // entries of values
    size_t cap;                 // allocated entries of values
    unsigned fresh;             // counter for fresh names
    char fresh_buf [512];       // last fresh name
    cmn_graph_shape_t unknown;  // returned for unknown names
};

static s_value_t *
s_value (cmn_graph_t *self, const char *name, bool create)
{
    size_t idx = (size_t) (uintptr_t) zhashx_lookup (self->index, name);
    if (idx)
        return &self->values [idx - 1];
    if (!create)
        return NULL;
    if (self->nvalues == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 64;
        s_value_t *q = realloc (self->values, cap * sizeof *q);
        if (!q)
            return NULL;
        self->values = q;
        self->cap = cap;
    }
    s_value_t *v = &self->values [self->nvalues++];
    memset (v, 0, sizeof *v);
    v->name = name;
    v->producer = -1;
    v->shape.rank = -1;
    if (zhashx_insert (self->index, name, (void *) (uintptr_t) self->nvalues)) {
        self->nvalues--;
        return NULL;
    }
    return v;
}

bool
cmn_graph_node_has_subgraph (const cmn_onnx_node_t *n)
{
    for (size_t i = 0; i < n->nattrs; i++)
        if (n->attrs [i].g || n->attrs [i].ngraphs)
            return true;
    return false;
}

//  Calls FN for every name read anywhere inside graph G (node inputs and
//  outputs of G and nested graphs): a superset of its outer-scope reads.
typedef void (s_name_fn) (void *arg, const char *name);

static void
s_walk_graph_names (const cmn_onnx_graph_t *g, s_name_fn *fn, void *arg)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        const cmn_onnx_node_t *n = g->nodes [i];
        for (size_t k = 0; k < n->ninputs; k++)
            if (n->inputs [k][0])
                fn (arg, n->inputs [k]);
        for (size_t a = 0; a < n->nattrs; a++) {
            if (n->attrs [a].g)
                s_walk_graph_names (n->attrs [a].g, fn, arg);
            for (size_t k = 0; k < n->attrs [a].ngraphs; k++)
                s_walk_graph_names (n->attrs [a].graphs [k], fn, arg);
        }
    }
    for (size_t i = 0; i < g->noutputs; i++)
        fn (arg, g->outputs [i].name);
}

static void
s_walk_node_subgraphs (const cmn_onnx_node_t *n, s_name_fn *fn, void *arg)
{
    for (size_t a = 0; a < n->nattrs; a++) {
        if (n->attrs [a].g)
            s_walk_graph_names (n->attrs [a].g, fn, arg);
        for (size_t k = 0; k < n->attrs [a].ngraphs; k++)
            s_walk_graph_names (n->attrs [a].graphs [k], fn, arg);
    }
}

typedef struct {
    cmn_graph_t *self;
    ssize_t node;       // the node whose subgraph is walked
    size_t *indeg;      // Kahn in-degrees (or NULL)
    size_t **succ;      // per-node successor lists
    size_t *nsucc;
    bool oom;
} s_walk_t;

static void
s_count_use (void *arg, const char *name)
{
    s_walk_t *w = arg;
    s_value_t *v = s_value (w->self, name, false);
    if (v)
        v->uses++;
}

//  ---------------------------------------------------------------------
//  Shape inference

static void
s_set_shape (cmn_graph_t *self, const char *name, const cmn_graph_shape_t *sh)
{
    s_value_t *v = s_value (self, name, false);
    if (!v)
        return;
    //  Keep what is known when the rule could not tell: the element type,
    //  and dimensions a seed (value_info, imported shapes) gave.
    cmn_graph_shape_t old = v->shape;
    if (sh->rank >= 0 || !v->shape.elem_type)
        v->shape = *sh;
    if (!v->shape.elem_type)
        v->shape.elem_type = old.elem_type;
    if (old.rank >= 0 && old.rank == v->shape.rank)
        for (int i = 0; i < old.rank; i++)
            if (v->shape.dims [i] < 0)
                v->shape.dims [i] = old.dims [i];
    if (v->shape.rank < 0 && old.rank >= 0)
        v->shape = old, v->shape.elem_type = v->shape.elem_type ? v->shape.elem_type : sh->elem_type;
}

static void
s_from_vi (cmn_graph_shape_t *sh, const cmn_onnx_value_info_t *vi)
{
    sh->elem_type = vi->is_tensor ? vi->elem_type : 0;
    sh->rank = vi->is_tensor && vi->has_shape ? (int) vi->ndims : -1;
    for (size_t i = 0; i < vi->ndims && i < CMN_ONNX_MAX_DIMS; i++)
        sh->dims [i] = vi->dims [i] < 0 ? -1 : vi->dims [i];
}

static const cmn_graph_shape_t *
s_in (cmn_graph_t *self, const cmn_onnx_node_t *n, size_t i)
{
    if (i >= n->ninputs || !n->inputs [i][0])
        return &self->unknown;
    return cmn_graph_shape (self, n->inputs [i]);
}

//  Reads a constant int64 (or int32) 1-D tensor into OUT (at most MAX).
static int
s_const_ints (cmn_graph_t *self, const cmn_onnx_node_t *n, size_t i, int64_t *out, size_t max)
{
    if (i >= n->ninputs)
        return -1;
    cmn_onnx_tensor_t *t = cmn_graph_const (self, n->inputs [i]);
    if (!t || t->ndims > 1)
        return -1;
    int64_t cnt = cmn_onnx_tensor_numel (t);
    if (cnt < 0 || (size_t) cnt > max)
        return -1;
    for (int64_t k = 0; k < cnt; k++) {
        if (t->data_type == CMN_ONNX_INT64)
            memcpy (&out [k], t->raw + 8 * k, 8);
        else
        if (t->data_type == CMN_ONNX_INT32) {
            int32_t v;
            memcpy (&v, t->raw + 4 * k, 4);
            out [k] = v;
        }
        else
            return -1;
    }
    return (int) cnt;
}

static bool
s_broadcast (const cmn_graph_shape_t *a, const cmn_graph_shape_t *b, cmn_graph_shape_t *out)
{
    if (a->rank < 0 || b->rank < 0)
        return false;
    int r = a->rank > b->rank ? a->rank : b->rank;
    out->rank = r;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dims [ia] : 1, db = ib >= 0 ? b->dims [ib] : 1;
        if (da == 1)
            out->dims [i] = db;
        else
        if (db == 1)
            out->dims [i] = da;
        else
        if (da == db)
            out->dims [i] = da;
        else
        if (da < 0 || db < 0)
            out->dims [i] = da < 0 ? db : da;
        else
            return false;
    }
    return true;
}

//  A * B for dimensions, -1 (unknown) when either is or the product
//  overflows: shapes come from the file and are not to be trusted.
static int64_t
s_mul (int64_t a, int64_t b)
{
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow (a, b, &r))
        return -1;
    return r;
}

//  Output size of a convolution or pooling window, -1 on overflow or
//  an empty result.
static int64_t
s_conv_out (int64_t in, int64_t p0, int64_t p1, int64_t d, int64_t k, int64_t s)
{
    int64_t span, t;
    if (__builtin_mul_overflow (d, k - 1, &span) || __builtin_add_overflow (in, p0, &t)
        || __builtin_add_overflow (t, p1, &t) || __builtin_add_overflow (span, 1, &span) || __builtin_sub_overflow (t, span, &t) || t < 0)
        return -1;
    return t / s + 1;
}

static bool
s_is (const cmn_onnx_node_t *n, const char *op)
{
    return strcmp (n->op_type, op) == 0;
}

bool
cmn_graph_name_in (const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcmp (name, *list) == 0)
            return true;
    return false;
}

static const char *const s_unary [] = {
    "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Neg", "Abs", "Erf",
    "Identity", "Dropout", "Softmax", "LogSoftmax", "LeakyRelu", "Elu",
    "Selu", "HardSigmoid", "Softplus", "Softsign", "Reciprocal", "Floor",
    "Ceil", "Round", "Sin", "Cos", "Clip", "Gelu", "HardSwish", "Mish",
    "Sign", "Not", "BatchNormalization", "InstanceNormalization",
    "LayerNormalization", "LRN", "PRelu", "ThresholdedRelu", "Celu",
    "CumSum", NULL
};

//  Ops whose output 0 has the element type of input 0 whatever the shapes.
static const char *const s_same_type [] = {
    "MatMul", "Gemm", "Conv", "ConvTranspose", "MaxPool", "AveragePool",
    "Reshape", "Transpose", "Flatten", "Concat", "Squeeze", "Unsqueeze",
    "Gather", "GatherElements", "Slice", "Split", "Expand", "Tile", "Pad",
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "Resize",
    "GlobalAveragePool", "GlobalMaxPool", "DepthToSpace", "SpaceToDepth",
    "Einsum", NULL
};

static const char *const s_binary [] = {
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", NULL
};

static const char *const s_compare [] = {
    "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And",
    "Or", "Xor", NULL
};

//  Output shape of Conv (CONV) or MaxPool/AveragePool N in NCHW terms:
//  input A, weight B (OIHW, Conv only). O keeps rank -1 when unknown.
static void
s_infer_window (const cmn_onnx_node_t *n, bool conv, const cmn_graph_shape_t *a,
                const cmn_graph_shape_t *b, cmn_graph_shape_t *o)
{
    int sp = a->rank - 2;
    cmn_onnx_attr_t *ks = cmn_onnx_node_attr (n, "kernel_shape");
    int64_t k [CMN_ONNX_MAX_DIMS];
    bool ok = true;
    for (int i = 0; i < sp; i++) {
        if (ks && ks->nints == (size_t) sp)
            k [i] = ks->ints [i];
        else
        if (conv && b->rank == a->rank)
            k [i] = b->dims [2 + i];
        else
            ok = false;
    }
    cmn_onnx_attr_t *pads = cmn_onnx_node_attr (n, "pads"), *st = cmn_onnx_node_attr (n, "strides"),
                    *dl = cmn_onnx_node_attr (n, "dilations"), *ap = cmn_onnx_node_attr (n, "auto_pad");
    if (ap && !(ap->s.len == 0 || (ap->s.len == 6 && memcmp (ap->s.ptr, "NOTSET", 6) == 0)))
        ok = false;
    if (cmn_onnx_node_attr_int (n, "ceil_mode", 0))
        ok = false;
    if (!ok)
        return;
    o->rank = a->rank;
    o->dims [0] = a->dims [0];
    o->dims [1] = conv ? (b->rank >= 1 ? b->dims [0] : -1) : a->dims [1];
    for (int i = 0; i < sp; i++) {
        int64_t p0 = pads && pads->nints == (size_t) (2 * sp) ? pads->ints [i] : 0;
        int64_t p1 = pads && pads->nints == (size_t) (2 * sp) ? pads->ints [i + sp] : 0;
        int64_t s = st && st->nints == (size_t) sp ? st->ints [i] : 1;
        int64_t d = dl && dl->nints == (size_t) sp ? dl->ints [i] : 1;
        int64_t in = a->dims [2 + i];
        o->dims [2 + i] = in < 0 || k [i] < 1 || s <= 0 || d < 1 ? -1
                        : s_conv_out (in, p0, p1, d, k [i], s);
    }
}

//  Permutes the dimensions of a rank-4 shape: OUT[k] = IN[PERM[k]]. A
//  shape of unknown rank stays unknown.
static void
s_permute4 (const cmn_graph_shape_t *in, const int *perm, cmn_graph_shape_t *out)
{
    *out = *in;
    if (in->rank != 4) {
        out->rank = -1;
        return;
    }
    for (int k = 0; k < 4; k++)
        out->dims [k] = in->dims [perm [k]];
}

//  The NHWC operators of the layout pass (cmn_opt_layout.h): the NCHW
//  rule on transposed shapes. NhwcConv's weight is OHWI.
static void
s_infer_nhwc (cmn_graph_t *self, const cmn_onnx_node_t *n)
{
    static const int to_nchw [4] = { 0, 3, 1, 2 }, to_nhwc [4] = { 0, 2, 3, 1 };
    if (n->noutputs < 1 || !n->outputs [0][0] || strncmp (n->op_type, "Nhwc", 4))
        return;
    const char *op = n->op_type + 4;
    cmn_graph_shape_t a, b, o, y;
    s_permute4 (s_in (self, n, 0), to_nchw, &a);
    s_permute4 (s_in (self, n, 1), to_nchw, &b);
    memset (&o, 0, sizeof o);
    o.rank = -1;
    o.elem_type = a.elem_type;
    if ((!strcmp (op, "Conv") || !strcmp (op, "MaxPool") || !strcmp (op, "AveragePool")) && a.rank == 4)
        s_infer_window (n, !strcmp (op, "Conv"), &a, &b, &o);
    else
    if ((!strcmp (op, "GlobalAveragePool") || !strcmp (op, "GlobalMaxPool")) && a.rank == 4) {
        o = a;
        o.dims [2] = o.dims [3] = 1;
    }
    else
    if (strcmp (op, "Conv") && strcmp (op, "MaxPool") && strcmp (op, "AveragePool")
        && strcmp (op, "GlobalAveragePool") && strcmp (op, "GlobalMaxPool"))
        return;
    s_permute4 (&o, to_nhwc, &y);
    if (o.rank < 0)
        y.rank = -1;
    s_set_shape (self, n->outputs [0], &y);
}

//  Infers the outputs of node N from its inputs; unknown stays unknown.
static void
s_infer_node (cmn_graph_t *self, const cmn_onnx_node_t *n)
{
    if (n->noutputs && !strcmp (n->domain, CMN_GRAPH_NHWC_DOMAIN)) {
        s_infer_nhwc (self, n);
        return;
    }
    if (n->domain [0] || n->noutputs == 0)
        return;
    cmn_graph_shape_t o;
    memset (&o, 0, sizeof o);
    o.rank = -1;
    const cmn_graph_shape_t *a = s_in (self, n, 0), *b = s_in (self, n, 1);
    const char *op = n->op_type;
    o.elem_type = a->elem_type;

    if (cmn_graph_name_in (op, s_unary)) {
        o = *a;
    }
    else
    if (cmn_graph_name_in (op, s_binary) || cmn_graph_name_in (op, s_compare) || s_is (n, "Where")) {
        const cmn_graph_shape_t *x = a, *y = b;
        if (s_is (n, "Where")) {
            x = b;
            y = s_in (self, n, 2);
        }
        o.elem_type = cmn_graph_name_in (op, s_compare) ? CMN_ONNX_BOOL : x->elem_type;
        cmn_graph_shape_t t;
        memset (&t, 0, sizeof t);
        if (s_broadcast (x, y, &t)) {
            o.rank = t.rank;
            memcpy (o.dims, t.dims, sizeof o.dims);
            for (size_t k = 2; k < n->ninputs && (s_is (n, "Sum") || s_is (n, "Max")
                                                   || s_is (n, "Min") || s_is (n, "Mean")); k++) {
                cmn_graph_shape_t u = o;
                if (!s_broadcast (&u, s_in (self, n, k), &o))
                    o.rank = -1;
            }
            if (s_is (n, "Where")) {
                cmn_graph_shape_t u = o;
                if (!s_broadcast (&u, a, &o))
                    o.rank = -1;
            }
        }
    }
    else
    if (s_is (n, "Cast")) {
        o = *a;
        o.elem_type = (int32_t) cmn_onnx_node_attr_int (n, "to", 0);
    }
    else
    if (s_is (n, "MatMul") && a->rank >= 1 && b->rank >= 1) {
        //  numpy matmul: batch dims broadcast; 1-D operands promote.
        cmn_graph_shape_t ab = *a, bb = *b;
        if (a->rank == 1) {
            ab.rank = 2; ab.dims [0] = 1; ab.dims [1] = a->dims [0];
        }
        if (b->rank == 1) {
            bb.rank = 2; bb.dims [0] = b->dims [0]; bb.dims [1] = 1;
        }
        cmn_graph_shape_t ba = ab, bbb = bb, t;
        ba.rank -= 2;
        bbb.rank -= 2;
        if (s_broadcast (&ba, &bbb, &t)) {
            o.rank = t.rank;
            memcpy (o.dims, t.dims, sizeof o.dims);
            if (a->rank > 1)
                o.dims [o.rank++] = ab.dims [ab.rank - 2];
            if (b->rank > 1)
                o.dims [o.rank++] = bb.dims [bb.rank - 1];
        }
    }
    else
    if (s_is (n, "Gemm") && a->rank == 2 && b->rank == 2) {
        bool ta = cmn_onnx_node_attr_int (n, "transA", 0), tb = cmn_onnx_node_attr_int (n, "transB", 0);
        o.rank = 2;
        o.dims [0] = ta ? a->dims [1] : a->dims [0];
        o.dims [1] = tb ? b->dims [0] : b->dims [1];
    }
    else
    if ((s_is (n, "Conv") || s_is (n, "MaxPool") || s_is (n, "AveragePool")) && a->rank >= 3)
        s_infer_window (n, s_is (n, "Conv"), a, b, &o);
    else
    if ((s_is (n, "GlobalAveragePool") || s_is (n, "GlobalMaxPool")) && a->rank >= 3) {
        o = *a;
        for (int i = 2; i < a->rank; i++)
            o.dims [i] = 1;
    }
    else
    if (s_is (n, "Transpose") && a->rank >= 0) {
        cmn_onnx_attr_t *perm = cmn_onnx_node_attr (n, "perm");
        o.rank = a->rank;
        for (int i = 0; i < a->rank; i++) {
            int64_t p = perm && perm->nints == (size_t) a->rank ? perm->ints [i] : a->rank - 1 - i;
            o.dims [i] = p >= 0 && p < a->rank ? a->dims [p] : -1;
        }
    }
    else
    if (s_is (n, "Reshape")) {
        int64_t sh [CMN_ONNX_MAX_DIMS];
        int r = s_const_ints (self, n, 1, sh, CMN_ONNX_MAX_DIMS);
        if (r >= 0 && !cmn_onnx_node_attr_int (n, "allowzero", 0)) {
            o.rank = r;
            int64_t known = 1, in = 1;
            int neg = -1;
            bool in_static = cmn_graph_shape_static (a);
            for (int i = 0; in_static && i < a->rank; i++)
                in = s_mul (in, a->dims [i]);
            for (int i = 0; i < r; i++) {
                o.dims [i] = sh [i] == 0 ? (i < a->rank ? a->dims [i] : -1) : sh [i];
                if (sh [i] == -1)
                    neg = i;
                else
                if (o.dims [i] >= 0)
                    known = s_mul (known, o.dims [i]);
                else
                    in_static = false;
            }
            if (neg >= 0)
                o.dims [neg] = in_static && in >= 0 && known > 0 ? in / known : -1;
        }
    }
    else
    if (s_is (n, "Flatten") && cmn_graph_shape_static (a)) {
        int64_t ax = cmn_onnx_node_attr_int (n, "axis", 1);
        if (ax < 0)
            ax += a->rank;
        o.rank = 2;
        o.dims [0] = o.dims [1] = 1;
        for (int i = 0; i < a->rank; i++)
            o.dims [i < ax ? 0 : 1] = s_mul (o.dims [i < ax ? 0 : 1], a->dims [i]);
    }
    else
    if (s_is (n, "Shape") && a->rank >= 0 && n->ninputs == 1 && !cmn_onnx_node_attr (n, "start")
        && !cmn_onnx_node_attr (n, "end")) {
        o.elem_type = CMN_ONNX_INT64;
        o.rank = 1;
        o.dims [0] = a->rank;
    }
    else
    if (s_is (n, "Concat") && a->rank >= 0) {
        int64_t ax = cmn_onnx_node_attr_int (n, "axis", 0);
        if (ax < 0)
            ax += a->rank;
        o = *a;
        for (size_t i = 1; i < n->ninputs && ax >= 0 && ax < a->rank; i++) {
            const cmn_graph_shape_t *x = s_in (self, n, i);
            if (x->rank != a->rank || o.dims [ax] < 0 || x->dims [ax] < 0)
                o.dims [ax] = -1;
            else
                o.dims [ax] = x->dims [ax] > INT64_MAX - o.dims [ax] ? -1 : o.dims [ax] + x->dims [ax];
        }
    }
    else
    if ((s_is (n, "Unsqueeze") || s_is (n, "Squeeze")) && a->rank >= 0) {
        int64_t ax [CMN_ONNX_MAX_DIMS];
        int na = -1;
        cmn_onnx_attr_t *at = cmn_onnx_node_attr (n, "axes");
        if (at && at->nints <= CMN_ONNX_MAX_DIMS) {
            na = (int) at->nints;
            if (at->nints)
                memcpy (ax, at->ints, at->nints * sizeof *ax);
        }
        else
        if (n->ninputs > 1)
            na = s_const_ints (self, n, 1, ax, CMN_ONNX_MAX_DIMS);
        if (s_is (n, "Unsqueeze") && na >= 0 && a->rank + na <= CMN_ONNX_MAX_DIMS) {
            int r = a->rank + na;
            bool mark [CMN_ONNX_MAX_DIMS] = { 0 };
            bool ok = true;
            for (int i = 0; i < na; i++) {
                int64_t x = ax [i] < 0 ? ax [i] + r : ax [i];
                if (x < 0 || x >= r || mark [x])
                    ok = false;
                else
                    mark [x] = true;
            }
            if (ok) {
                o.rank = r;
                for (int i = 0, j = 0; i < r; i++)
                    o.dims [i] = mark [i] ? 1 : a->dims [j++];
            }
        }
        else
        if (s_is (n, "Squeeze") && na > 0) {
            bool mark [CMN_ONNX_MAX_DIMS] = { 0 };
            bool ok = true;
            for (int i = 0; i < na; i++) {
                int64_t x = ax [i] < 0 ? ax [i] + a->rank : ax [i];
                if (x < 0 || x >= a->rank)
                    ok = false;
                else
                    mark [x] = true;
            }
            if (ok) {
                o.rank = 0;
                for (int i = 0; i < a->rank; i++)
                    if (!mark [i])
                        o.dims [o.rank++] = a->dims [i];
            }
        }
    }
    else
    if (s_is (n, "Constant")) {
        cmn_onnx_attr_t *v = cmn_onnx_node_attr (n, "value");
        if (v && v->t) {
            o.elem_type = v->t->data_type;
            o.rank = (int) v->t->ndims;
            memcpy (o.dims, v->t->dims, v->t->ndims * sizeof (int64_t));
        }
    }
    else
    if ((s_is (n, "ReduceMean") || s_is (n, "ReduceSum") || s_is (n, "ReduceMax")
         || s_is (n, "ReduceMin")) && a->rank >= 0) {
        int64_t ax [CMN_ONNX_MAX_DIMS];
        int na = -1;
        cmn_onnx_attr_t *at = cmn_onnx_node_attr (n, "axes");
        if (at && at->nints <= CMN_ONNX_MAX_DIMS) {
            na = (int) at->nints;
            if (at->nints)
                memcpy (ax, at->ints, at->nints * sizeof *ax);
        }
        else
        if (n->ninputs > 1)
            na = s_const_ints (self, n, 1, ax, CMN_ONNX_MAX_DIMS);
        bool keep = cmn_onnx_node_attr_int (n, "keepdims", 1);
        if (na > 0) {
            bool mark [CMN_ONNX_MAX_DIMS] = { 0 };
            for (int i = 0; i < na; i++) {
                int64_t x = ax [i] < 0 ? ax [i] + a->rank : ax [i];
                if (x >= 0 && x < a->rank)
                    mark [x] = true;
            }
            o.rank = 0;
            for (int i = 0; i < a->rank; i++)
                if (!mark [i])
                    o.dims [o.rank++] = a->dims [i];
                else
                if (keep)
                    o.dims [o.rank++] = 1;
        }
    }
    else
    if (s_is (n, "Gather") && a->rank >= 1 && b->rank >= 0 && a->rank - 1 + b->rank <= CMN_ONNX_MAX_DIMS) {
        int64_t ax = cmn_onnx_node_attr_int (n, "axis", 0);
        if (ax < 0)
            ax += a->rank;
        if (ax >= 0 && ax < a->rank) {
            o.rank = 0;
            for (int i = 0; i < ax; i++)
                o.dims [o.rank++] = a->dims [i];
            for (int i = 0; i < b->rank; i++)
                o.dims [o.rank++] = b->dims [i];
            for (int i = (int) ax + 1; i < a->rank; i++)
                o.dims [o.rank++] = a->dims [i];
        }
    }
    else
    if (s_is (n, "Range")) {
        o.rank = 1;
        o.dims [0] = -1;
    }
    else
    if (s_is (n, "ConstantOfShape")) {
        cmn_onnx_attr_t *v = cmn_onnx_node_attr (n, "value");
        o.elem_type = v && v->t ? v->t->data_type : CMN_ONNX_FLOAT;
        o.rank = a->rank == 1 && a->dims [0] >= 0 && a->dims [0] <= CMN_ONNX_MAX_DIMS ? (int) a->dims [0] : -1;
        for (int i = 0; i < o.rank; i++)
            o.dims [i] = -1;
    }
    else
    if ((s_is (n, "Slice") || s_is (n, "Expand") || s_is (n, "Tile") || s_is (n, "Pad")) && a->rank >= 0) {
        //  Same rank; sizes unknown unless a later rule knows better.
        o.rank = a->rank;
        for (int i = 0; i < a->rank; i++)
            o.dims [i] = -1;
        if (s_is (n, "Expand"))
            o.rank = -1;        // Expand may add leading dimensions
    }
    else
    if (cmn_graph_name_in (op, s_same_type))
        o.rank = -1;            // type only: output 0 has input 0's type
    else
        return;
    //  Only the first output follows these rules (Dropout's mask, the
    //  normalisations' extra outputs are left unknown).
    if (o.rank > CMN_ONNX_MAX_DIMS)
        return;
    if (n->outputs [0][0])
        s_set_shape (self, n->outputs [0], &o);
}

//  ---------------------------------------------------------------------
//  Building

static void
s_add_dep (void *arg, const char *name)
{
    zlistx_add_end ((zlistx_t *) arg, (void *) name);
}

static int
s_build (cmn_graph_t *self, cmn_err_t *err)
{
    cmn_onnx_graph_t *g = self->g;
    zhashx_purge (self->index);
    self->nvalues = 0;

    //  Drop removed nodes.
    size_t w = 0;
    for (size_t i = 0; i < g->nnodes; i++)
        if (g->nodes [i])
            g->nodes [w++] = g->nodes [i];
    g->nnodes = w;

    for (size_t i = 0; i < g->ninputs; i++) {
        s_value_t *v = s_value (self, g->inputs [i].name, true);
        if (!v)
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        v->is_input = true;
        s_from_vi (&v->shape, &g->inputs [i]);
    }
    for (size_t i = 0; i < g->ninits; i++) {
        s_value_t *v = s_value (self, g->inits [i]->name, true);
        if (!v)
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        v->init = g->inits [i];
        v->shape.elem_type = g->inits [i]->data_type;
        v->shape.rank = (int) g->inits [i]->ndims;
        memcpy (v->shape.dims, g->inits [i]->dims, g->inits [i]->ndims * sizeof (int64_t));
    }
    for (size_t i = 0; i < g->nnodes; i++) {
        cmn_onnx_node_t *n = g->nodes [i];
        for (size_t k = 0; k < n->noutputs; k++) {
            if (!n->outputs [k][0])
                continue;
            s_value_t *v = s_value (self, n->outputs [k], true);
            if (!v)
                return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
            if (v->producer >= 0 || v->is_input || v->init)
                return cmn_err_set (err, RXQ_E_FORMAT, "node '%s' (%s): output '%s' is already defined elsewhere",
                                    n->name, n->op_type, n->outputs [k]);
            v->producer = (ssize_t) i;
        }
    }
    //  value_info seeds shapes of intermediate values that rules don't cover.
    for (size_t i = 0; i < g->nvinfo; i++) {
        s_value_t *v = s_value (self, g->vinfo [i].name, false);
        if (v)
            s_from_vi (&v->shape, &g->vinfo [i]);
    }
    for (size_t i = 0; i < g->noutputs; i++) {
        s_value_t *v = s_value (self, g->outputs [i].name, false);
        if (!v)
            return cmn_err_set (err, RXQ_E_FORMAT, "graph output '%s' is not produced by any node, input or initializer",
                                g->outputs [i].name);
        v->is_output = true;
        v->uses++;
        if (v->shape.rank < 0)
            s_from_vi (&v->shape, &g->outputs [i]);
    }
    //  Uses and validation of inputs and domains.
    s_walk_t walk = { self, -1, NULL, NULL, NULL, false };
    for (size_t i = 0; i < g->nnodes; i++) {
        cmn_onnx_node_t *n = g->nodes [i];
        for (size_t k = 0; k < n->ninputs; k++) {
            if (!n->inputs [k][0])
                continue;
            s_value_t *v = s_value (self, n->inputs [k], false);
            if (!v)
                return cmn_err_set (err, RXQ_E_FORMAT,
                                    "node '%s' (%s): input '%s' is not produced by any node, graph input or initializer",
                                    n->name, n->op_type, n->inputs [k]);
            v->uses++;
        }
        s_walk_node_subgraphs (n, s_count_use, &walk);
        const char *dom = n->domain;
        if (cmn_onnx_opset (self->model, dom) == 0)
            return cmn_err_set (err, RXQ_E_UNSUPPORTED, "node '%s' (%s): domain '%s' is not in the model's opset_import",
                                n->name, n->op_type, dom [0] ? dom : "ai.onnx");
    }
    //  Topological order (Kahn), cycle detection. A node depends on the
    //  producers of its inputs and of the outer names its subgraphs read.
    size_t nn = g->nnodes;
    size_t *indeg = calloc (nn + 1, sizeof *indeg);
    size_t *order = calloc (nn + 1, sizeof *order);
    size_t *head = malloc ((nn + 1) * sizeof *head);    // per node: first edge
    size_t nedges = 0, capedges = 64;
    size_t *edge_to = malloc (capedges * sizeof *edge_to), *edge_next = malloc (capedges * sizeof *edge_next);
    int rc = 0;
    if (!indeg || !order || !head || !edge_to || !edge_next)
        rc = cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < nn; i++)
        head [i] = SIZE_MAX;
    for (size_t i = 0; rc == 0 && i < nn; i++) {
        cmn_onnx_node_t *n = g->nodes [i];
        //  Collect the names this node depends on.
        zlistx_t *deps = zlistx_new ();
        if (!deps) {
            rc = cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
            break;
        }
        for (size_t k = 0; k < n->ninputs; k++)
            if (n->inputs [k][0])
                zlistx_add_end (deps, n->inputs [k]);
        if (cmn_graph_node_has_subgraph (n))
            s_walk_node_subgraphs (n, s_add_dep, deps);
        for (const char *name = zlistx_first (deps); name && rc == 0; name = zlistx_next (deps)) {
            s_value_t *v = s_value (self, name, false);
            if (!v || v->producer < 0)
                continue;
            if (v->producer == (ssize_t) i) {
                rc = cmn_err_set (err, RXQ_E_FORMAT, "node '%s' (%s): reads its own output '%s' (a cycle)",
                                  n->name, n->op_type, name);
                break;
            }
            if (nedges == capedges) {
                capedges *= 2;
                size_t *q1 = realloc (edge_to, capedges * sizeof *q1);
                if (q1)
                    edge_to = q1;
                size_t *q2 = realloc (edge_next, capedges * sizeof *q2);
                if (q2)
                    edge_next = q2;
                if (!q1 || !q2) {
                    rc = cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
                    break;
                }
            }
            size_t p = (size_t) v->producer;
            edge_to [nedges] = i;
            edge_next [nedges] = head [p];
            head [p] = nedges++;
            indeg [i]++;
        }
        zlistx_destroy (&deps);
    }
    if (rc == 0) {
        //  Stable: among ready nodes, keep file order (a queue seeded in order).
        size_t qh = 0, qt = 0;
        for (size_t i = 0; i < nn; i++)
            if (indeg [i] == 0)
                order [qt++] = i;
        while (qh < qt) {
            size_t u = order [qh++];
            for (size_t e = head [u]; e != SIZE_MAX; e = edge_next [e])
                if (--indeg [edge_to [e]] == 0)
                    order [qt++] = edge_to [e];
        }
        if (qt < nn) {
            for (size_t i = 0; i < nn; i++)
                if (indeg [i]) {
                    rc = cmn_err_set (err, RXQ_E_FORMAT, "node '%s' (%s) is on a cycle", g->nodes [i]->name,
                                      g->nodes [i]->op_type);
                    break;
                }
        }
        else {
            cmn_onnx_node_t **sorted = malloc ((nn + 1) * sizeof *sorted);
            if (!sorted)
                rc = cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
            else {
                for (size_t i = 0; i < nn; i++)
                    sorted [i] = g->nodes [order [i]];
                if (nn)
                    memcpy (g->nodes, sorted, nn * sizeof *sorted);
                free (sorted);
                for (size_t i = 0; i < nn; i++)
                    for (size_t k = 0; k < g->nodes [i]->noutputs; k++) {
                        s_value_t *v = g->nodes [i]->outputs [k][0]
                                     ? s_value (self, g->nodes [i]->outputs [k], false) : NULL;
                        if (v)
                            v->producer = (ssize_t) i;
                    }
            }
        }
    }
    free (indeg);
    free (order);
    free (head);
    free (edge_to);
    free (edge_next);
    if (rc)
        return rc;
    for (size_t i = 0; i < g->nnodes; i++)
        s_infer_node (self, g->nodes [i]);
    return 0;
}

cmn_graph_t *
cmn_graph_new (cmn_onnx_model_t *model, cmn_err_t *err)
{
    assert (model && model->graph);
    cmn_err_clear (err);
    int64_t opset = cmn_onnx_opset (model, "");
    if (opset > CMN_GRAPH_OPSET_MAX || opset < 0) {
        cmn_err_set (err, RXQ_E_UNSUPPORTED, "ai.onnx opset %lld is not supported (1..%d)",
                     (long long) opset, CMN_GRAPH_OPSET_MAX);
        //  Name the first node using it, so the error points somewhere.
        for (size_t i = 0; i < model->graph->nnodes; i++)
            if (!model->graph->nodes [i]->domain [0]) {
                cmn_err_set (err, RXQ_E_UNSUPPORTED, "node '%s' (%s): ai.onnx opset %lld is not supported (1..%d)",
                             model->graph->nodes [i]->name, model->graph->nodes [i]->op_type,
                             (long long) opset, CMN_GRAPH_OPSET_MAX);
                break;
            }
        return NULL;
    }
    cmn_graph_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    self->model = model;
    self->g = model->graph;
    self->opset = opset;
    self->unknown.rank = -1;
    self->index = zhashx_new ();
    if (!self->index) {
        free (self);
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    if (s_build (self, err)) {
        cmn_graph_destroy (&self);
        return NULL;
    }
    return self;
}

void
cmn_graph_destroy (cmn_graph_t **self_p)
{
    assert (self_p);
    cmn_graph_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->index);
    free (self->values);
    free (self);
    *self_p = NULL;
}

int
cmn_graph_refresh (cmn_graph_t *self, cmn_err_t *err)
{
    //  Free the nodes the passes dropped (NULL slots are skipped by s_build).
    return s_build (self, err);
}

int
cmn_graph_rewrite (cmn_graph_t *self, cmn_graph_step_fn *step, void *arg, size_t max_changes,
                   cmn_err_t *err)
{
    int count = 0;
    bool again = true;
    while (again && (max_changes == 0 || (size_t) count < max_changes)) {
        again = false;
        for (size_t i = 0; i < self->g->nnodes && !again; i++) {
            if (!self->g->nodes [i])
                continue;
            int rc = step (self, i, arg);
            if (rc < 0)
                return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
            if (rc > 0) {
                count++;
                again = true;
                if (cmn_graph_refresh (self, err))
                    return -1;
            }
        }
    }
    return count;
}

cmn_onnx_model_t *cmn_graph_model (cmn_graph_t *self) { return self->model; }
cmn_onnx_graph_t *cmn_graph_onnx (cmn_graph_t *self) { return self->g; }
int64_t cmn_graph_opset (cmn_graph_t *self) { return self->opset; }

ssize_t
cmn_graph_producer (cmn_graph_t *self, const char *name)
{
    s_value_t *v = s_value (self, name, false);
    return v ? v->producer : -1;
}

size_t
cmn_graph_uses (cmn_graph_t *self, const char *name)
{
    s_value_t *v = s_value (self, name, false);
    return v ? v->uses : 0;
}

bool
cmn_graph_is_output (cmn_graph_t *self, const char *name)
{
    s_value_t *v = s_value (self, name, false);
    return v && v->is_output;
}

bool
cmn_graph_is_input (cmn_graph_t *self, const char *name)
{
    s_value_t *v = s_value (self, name, false);
    return v && v->is_input;
}

cmn_onnx_tensor_t *
cmn_graph_const (cmn_graph_t *self, const char *name)
{
    s_value_t *v = s_value (self, name, false);
    return v && v->init && !v->is_input ? v->init : NULL;
}

const cmn_graph_shape_t *
cmn_graph_shape (cmn_graph_t *self, const char *name)
{
    s_value_t *v = s_value (self, name, false);
    return v ? &v->shape : &self->unknown;
}

bool
cmn_graph_shape_static (const cmn_graph_shape_t *s)
{
    if (s->rank < 0)
        return false;
    for (int i = 0; i < s->rank; i++)
        if (s->dims [i] < 0)
            return false;
    return true;
}

int64_t
cmn_graph_shape_bytes (const cmn_graph_shape_t *s)
{
    size_t sz = cmn_onnx_dtype_size (s->elem_type);
    if (!cmn_graph_shape_static (s) || !sz)
        return -1;
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims [i] && n > INT64_MAX / 16 / s->dims [i])
            return -1;
        n *= s->dims [i];
    }
    return n * (int64_t) sz;
}

static int
s_rename_in_graph (cmn_onnx_graph_t *g, const char *from, const char *to)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        cmn_onnx_node_t *n = g->nodes [i];
        if (!n)
            continue;
        for (size_t k = 0; k < n->ninputs; k++)
            if (strcmp (n->inputs [k], from) == 0 && cmn_onnx_node_set_input (n, k, to))
                return -1;
        for (size_t a = 0; a < n->nattrs; a++) {
            if (n->attrs [a].g && s_rename_in_graph (n->attrs [a].g, from, to))
                return -1;
            for (size_t k = 0; k < n->attrs [a].ngraphs; k++)
                if (s_rename_in_graph (n->attrs [a].graphs [k], from, to))
                    return -1;
        }
    }
    return 0;
}

int
cmn_graph_replace_uses (cmn_graph_t *self, const char *from, const char *to)
{
    //  FROM may point into a node we are about to edit: copy it first.
    char *f = strdup (from);
    if (!f)
        return -1;
    int rc = s_rename_in_graph (self->g, f, to);
    //  Subgraph outputs that name FROM are outer-scope reads: rename too.
    free (f);
    return rc;
}

void
cmn_graph_import_shapes (cmn_graph_t *self, cmn_graph_t *from)
{
    for (size_t i = 0; i < from->nvalues; i++) {
        const s_value_t *f = &from->values [i];
        if (f->shape.rank >= 0 || f->shape.elem_type)
            s_set_shape (self, f->name, &f->shape);
    }
    //  Propagate what the imported shapes make known.
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < self->g->nnodes; i++)
            s_infer_node (self, self->g->nodes [i]);
}

const char *
cmn_graph_fresh_name (cmn_graph_t *self, const char *base)
{
    do
        snprintf (self->fresh_buf, sizeof self->fresh_buf, "%.400s_rxq%u", base, self->fresh++);
    while (s_value (self, self->fresh_buf, false));
    return self->fresh_buf;
}
