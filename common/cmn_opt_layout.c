/*  cmn_opt_layout: NCHW to NHWC with transpose elimination.
 *  See cmn_opt_layout.h.
 *
 *  Every rewrite is followed by a refresh of the view, as in the other
 *  passes: the graphs are small and it keeps producers and uses exact.
 *  Transposes only ever move towards the outputs (a push puts the one it
 *  moves after the node it crossed), and a push must remove a Transpose or
 *  meet inverse ones, so the loop ends; it is also bounded.
 */
#include "cmn_opt_layout.h"
#include "cmn_opt_clean.h"
#include <czmq.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t s_to_nhwc [4] = { 0, 2, 3, 1 };   // NCHW -> NHWC
static const int64_t s_to_nchw [4] = { 0, 3, 1, 2 };   // NHWC -> NCHW

static bool
s_is (const cmn_onnx_node_t *n, const char *op)
{
    return n && !n->domain [0] && strcmp (n->op_type, op) == 0;
}

//  Elementwise ops of one tensor input (the others, if any, are scalars
//  by the operator's definition: Clip's min and max).
static const char *const s_unary [] = {
    "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Neg", "Abs", "Erf",
    "Identity", "LeakyRelu", "Elu", "Selu", "HardSigmoid", "Softplus",
    "Softsign", "Reciprocal", "Floor", "Ceil", "Round", "Sin", "Cos", "Tan",
    "Clip", "Gelu", "HardSwish", "Mish", "Sign", "Not", "ThresholdedRelu",
    "Celu", "Cast", "IsNaN", "IsInf", NULL
};

//  Elementwise ops whose inputs all broadcast together (numpy rules).
static const char *const s_broadcast [] = {
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu",
    "Mod", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
    "And", "Or", "Xor", "Where", NULL
};

static const char *const s_reduce [] = {
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
    "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
    "ReduceSumSquare", NULL
};

static cmn_onnx_node_t *
s_producer (cmn_graph_t *g, const char *name)
{
    ssize_t p = cmn_graph_producer (g, name);
    return p >= 0 ? cmn_graph_onnx (g)->nodes [p] : NULL;
}

//  The perm of Transpose node N (its rank in *R), or NULL when N is not a
//  Transpose with an explicit, valid permutation.
static const int64_t *
s_perm (const cmn_onnx_node_t *n, int *r)
{
    if (!s_is (n, "Transpose") || n->ninputs != 1 || n->noutputs != 1 || !n->inputs [0][0])
        return NULL;
    cmn_onnx_attr_t *p = cmn_onnx_node_attr (n, "perm");
    if (!p || p->type != CMN_ONNX_ATTR_INTS || p->nints == 0 || p->nints > CMN_ONNX_MAX_DIMS)
        return NULL;
    bool seen [CMN_ONNX_MAX_DIMS] = { 0 };
    for (size_t k = 0; k < p->nints; k++) {
        if (p->ints [k] < 0 || (size_t) p->ints [k] >= p->nints || seen [p->ints [k]])
            return NULL;
        seen [p->ints [k]] = true;
    }
    *r = (int) p->nints;
    return p->ints;
}

static bool
s_identity (const int64_t *p, int r)
{
    for (int k = 0; k < r; k++)
        if (p [k] != k)
            return false;
    return true;
}

//  Replaces a string owned by a node (op_type, domain, an output).
static int
s_set_str (char **slot, const char *value)
{
    char *s = strdup (value);
    if (!s)
        return -1;
    free (*slot);
    *slot = s;
    return 0;
}

//  Appends Transpose (IN, PERM) -> OUT to the graph. 0 or -1.
static int
s_add_transpose (cmn_graph_t *g, const char *in, const char *out, const int64_t *perm, int r,
                 cmn_opt_layout_stats_t *st)
{
    char name [512];
    snprintf (name, sizeof name, "%s", cmn_graph_fresh_name (g, "layout_transpose"));
    const char *ins [1] = { in }, *outs [1] = { out };
    cmn_onnx_node_t *t = cmn_onnx_node_new ("Transpose", name, ins, 1, outs, 1);
    if (!t)
        return -1;
    if (cmn_onnx_node_set_ints (t, "perm", perm, (size_t) r)
    ||  cmn_onnx_graph_add_node (cmn_graph_onnx (g), t)) {
        cmn_onnx_node_free (t);
        return -1;
    }
    st->inserted++;
    return 0;
}

//  A new initializer: constant T transposed by PERM (rank R; T's rank may
//  be lower: it is first aligned to R by leading 1s, as broadcasting
//  does). Its name goes into NAME (SIZE bytes). 0, 1 when T cannot be
//  permuted (strings, sub-byte types), -1 out of memory.
static int
s_permuted_const (cmn_graph_t *g, const cmn_onnx_tensor_t *t, const int64_t *perm, int r,
                  char *name, size_t size)
{
    size_t es = cmn_onnx_dtype_size (t->data_type);
    if (!t->raw || es == 0 || t->data_type == CMN_ONNX_UINT4 || t->data_type == CMN_ONNX_INT4
    ||  t->data_type == CMN_ONNX_FLOAT4E2M1 || (int) t->ndims > r)
        return 1;
    int64_t in [CMN_ONNX_MAX_DIMS], out [CMN_ONNX_MAX_DIMS], stride [CMN_ONNX_MAX_DIMS];
    int lead = r - (int) t->ndims;
    for (int k = 0; k < r; k++)
        in [k] = k < lead ? 1 : t->dims [k - lead];
    for (int k = 0; k < r; k++)
        out [k] = in [perm [k]];
    stride [r - 1] = 1;
    for (int k = r - 2; k >= 0; k--)
        stride [k] = stride [k + 1] * in [k + 1];
    int64_t n = cmn_onnx_tensor_numel (t);
    if (n < 0 || (size_t) n * es != t->raw_size)
        return 1;
    snprintf (name, size, "%s", cmn_graph_fresh_name (g, t->name));
    cmn_onnx_tensor_t *c = cmn_onnx_tensor_new (name, t->data_type, out, (size_t) r);
    if (!c)
        return -1;
    int64_t idx [CMN_ONNX_MAX_DIMS] = { 0 };
    for (int64_t e = 0; e < n; e++) {
        int64_t src = 0;
        for (int k = 0; k < r; k++)
            src += idx [k] * stride [perm [k]];
        memcpy (c->raw + (size_t) e * es, t->raw + (size_t) src * es, es);
        for (int k = r - 1; k >= 0; k--) {
            if (++idx [k] < out [k])
                break;
            idx [k] = 0;
        }
    }
    if (cmn_onnx_graph_add_init (cmn_graph_onnx (g), c)) {
        cmn_onnx_tensor_free (c);
        return -1;
    }
    return 0;
}

//  Makes sure the model imports the NHWC domain. 0 or -1.
static int
s_import_domain (cmn_graph_t *g)
{
    cmn_onnx_model_t *m = cmn_graph_model (g);
    if (cmn_onnx_opset (m, CMN_GRAPH_NHWC_DOMAIN))
        return 0;
    cmn_onnx_opset_t *q = realloc (m->opsets, (m->nopsets + 1) * sizeof *q);
    if (!q)
        return -1;
    m->opsets = q;
    q [m->nopsets].domain = strdup (CMN_GRAPH_NHWC_DOMAIN);
    q [m->nopsets].version = 1;
    if (!q [m->nopsets].domain)
        return -1;
    m->nopsets++;
    return 0;
}

//  ---------------------------------------------------------------------
//  Conversion

//  Number of ints of attribute NAME, or -1 when absent.
static int
s_attr_len (const cmn_onnx_node_t *n, const char *name)
{
    cmn_onnx_attr_t *a = cmn_onnx_node_attr (n, name);
    return a && a->type == CMN_ONNX_ATTR_INTS ? (int) a->nints : -1;
}

//  True when node N is one the pass converts (2-D, see the header).
static bool
s_convertible (cmn_graph_t *g, const cmn_onnx_node_t *n)
{
    if (n->domain [0] || n->noutputs < 1 || !n->outputs [0][0] || n->ninputs < 1 || !n->inputs [0][0])
        return false;
    for (size_t k = 1; k < n->noutputs; k++)
        if (n->outputs [k][0])
            return false;       // MaxPool's Indices are in NCHW terms
    const cmn_graph_shape_t *x = cmn_graph_shape (g, n->inputs [0]);
    if (x->rank >= 0 && x->rank != 4)
        return false;
    if (s_is (n, "Conv")) {
        if (n->ninputs < 2 || n->ninputs > 3 || !n->inputs [1][0])
            return false;
        cmn_onnx_tensor_t *w = cmn_graph_const (g, n->inputs [1]);
        size_t es = w ? cmn_onnx_dtype_size (w->data_type) : 0;
        return w && w->ndims == 4 && es >= 1 && w->raw && w->data_type != CMN_ONNX_UINT4
            && w->data_type != CMN_ONNX_INT4 && w->data_type != CMN_ONNX_FLOAT4E2M1;
    }
    if (s_is (n, "MaxPool") || s_is (n, "AveragePool"))
        return n->ninputs == 1 && s_attr_len (n, "kernel_shape") == 2;
    if (s_is (n, "GlobalAveragePool") || s_is (n, "GlobalMaxPool"))
        return n->ninputs == 1 && x->rank == 4;
    return false;
}

//  Rewrites node I into Transpose -> NhwcOp -> Transpose. 1, or -1.
static int
s_convert (cmn_graph_t *g, size_t i, cmn_opt_layout_stats_t *st)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    cmn_onnx_node_t *n = og->nodes [i];
    char xt [512], yt [512], op [80], wn [512];
    snprintf (xt, sizeof xt, "%s", cmn_graph_fresh_name (g, "nhwc_in"));
    snprintf (yt, sizeof yt, "%s", cmn_graph_fresh_name (g, "nhwc_out"));
    snprintf (op, sizeof op, "Nhwc%.70s", n->op_type);
    if (s_is (n, "Conv")) {
        cmn_onnx_tensor_t *w = cmn_graph_const (g, n->inputs [1]);
        //  OIHW -> OHWI; a new initializer (W may be shared).
        int rc = s_permuted_const (g, w, s_to_nhwc, 4, wn, sizeof wn);
        if (rc)
            return rc < 0 ? -1 : 0;
        if (cmn_onnx_node_set_input (n, 1, wn))
            return -1;
    }
    if (s_add_transpose (g, n->inputs [0], xt, s_to_nhwc, 4, st)
    ||  s_add_transpose (g, yt, n->outputs [0], s_to_nchw, 4, st)
    ||  cmn_onnx_node_set_input (n, 0, xt)
    ||  s_set_str (&n->outputs [0], yt)
    ||  s_set_str (&n->op_type, op)
    ||  s_set_str (&n->domain, CMN_GRAPH_NHWC_DOMAIN)
    ||  s_import_domain (g))
        return -1;
    //  MaxPool's omitted Indices slot goes: the NHWC form has one output.
    for (size_t k = 1; k < n->noutputs; k++)
        free (n->outputs [k]);
    n->noutputs = 1;
    st->converted++;
    return 1;
}

//  ---------------------------------------------------------------------
//  Pushing a Transpose down through node C

//  Slots of C whose values the layout applies to: all inputs of the
//  broadcasting ops and Concat, input 0 otherwise. How the axes change is
//  decided by the caller.
static size_t
s_layout_inputs (const cmn_onnx_node_t *c)
{
    if (cmn_graph_name_in (c->op_type, s_broadcast) || s_is (c, "Concat"))
        return c->ninputs;
    return c->ninputs ? 1 : 0;
}

//  Number of C's input slots that read NAME.
static size_t
s_reads (const cmn_onnx_node_t *c, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < c->ninputs; i++)
        k += strcmp (c->inputs [i], name) == 0;
    return k;
}

//  Reads axis list of a Reduce node into AX: the `axes` attribute, or a
//  constant second input. Returns the count, or -1.
static int
s_reduce_axes (cmn_graph_t *g, const cmn_onnx_node_t *c, int64_t *ax, bool *from_input)
{
    cmn_onnx_attr_t *a = cmn_onnx_node_attr (c, "axes");
    *from_input = false;
    if (a && a->type == CMN_ONNX_ATTR_INTS && a->nints > 0 && a->nints <= CMN_ONNX_MAX_DIMS) {
        memcpy (ax, a->ints, a->nints * sizeof *ax);
        return (int) a->nints;
    }
    if (a || c->ninputs < 2 || !c->inputs [1][0])
        return -1;
    cmn_onnx_tensor_t *t = cmn_graph_const (g, c->inputs [1]);
    if (!t || t->data_type != CMN_ONNX_INT64 || t->ndims != 1 || t->dims [0] < 1
    ||  t->dims [0] > CMN_ONNX_MAX_DIMS)
        return -1;
    memcpy (ax, t->raw, (size_t) t->dims [0] * 8);
    *from_input = true;
    return (int) t->dims [0];
}

enum { KEEP, UNWRAP, PERMUTE, REUSE };

//  The output of a Transpose node that reads V and undoes PERM (rank R):
//  V already exists in the other layout. NULL when there is none.
static const char *
s_inverse_copy (cmn_graph_t *g, const char *v, const int64_t *perm, int r)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    for (size_t i = 0; i < og->nnodes; i++) {
        const cmn_onnx_node_t *u = og->nodes [i];
        int ur;
        const int64_t *q = u ? s_perm (u, &ur) : NULL;
        if (!q || ur != r || strcmp (u->inputs [0], v) || !u->outputs [0][0])
            continue;
        bool inverse = true;
        for (int k = 0; k < r && inverse; k++)
            inverse = q [perm [k]] == k;
        if (inverse)
            return u->outputs [0];
    }
    return NULL;
}

//  Decides whether node C could take its layout inputs from under a
//  Transpose: each one must be a Transpose by the same permutation
//  (UNWRAP), a constant to permute (PERMUTE), a scalar (KEEP), or a value
//  that a Transpose already puts in the other layout (REUSE). When
//  ASSUME is not NULL, the value of that name counts as a Transpose by
//  PERM (rank R) whatever produces it: a look-ahead for s_push. Otherwise
//  the permutation is that of C's first transposed input, returned in
//  PERM / *R. HOW gets one entry per layout input; *REMOVES says whether
//  an unwrapped Transpose would be left unread. True when C can be pushed.
static bool
s_classify (cmn_graph_t *g, const cmn_onnx_node_t *c, const char *assume, int64_t *perm, int *r,
            int *how, bool *removes)
{
    *removes = false;
    if (c->domain [0] || c->noutputs != 1 || !c->outputs [0][0] || cmn_graph_node_has_subgraph (c))
        return false;
    const char *op = c->op_type;
    bool concat = s_is (c, "Concat"), reduce = cmn_graph_name_in (op, s_reduce);
    bool softmax = (s_is (c, "Softmax") || s_is (c, "LogSoftmax")) && cmn_graph_opset (g) >= 13;
    if (!cmn_graph_name_in (op, s_unary) && !cmn_graph_name_in (op, s_broadcast) && !concat
    &&  !reduce && !softmax)
        return false;
    size_t nin = s_layout_inputs (c);
    if (nin == 0 || nin > 64)
        return false;
    if (!assume) {
        const int64_t *fp = NULL;
        for (size_t k = 0; k < nin && !fp; k++)
            if (c->inputs [k][0])
                fp = s_perm (s_producer (g, c->inputs [k]), r);
        if (!fp)
            return false;
        memcpy (perm, fp, (size_t) *r * sizeof *perm);
    }
    for (size_t k = 0; k < nin; k++) {
        const char *v = c->inputs [k];
        how [k] = KEEP;
        if (!v [0])
            continue;
        if (assume && !strcmp (v, assume)) {
            how [k] = UNWRAP;
            continue;
        }
        cmn_onnx_node_t *t = s_producer (g, v);
        int tr;
        const int64_t *tp = s_perm (t, &tr);
        if (tp && tr == *r && memcmp (tp, perm, (size_t) *r * sizeof *perm) == 0) {
            how [k] = UNWRAP;
            if (!cmn_graph_is_output (g, v) && cmn_graph_uses (g, v) == s_reads (c, v))
                *removes = true;
            continue;
        }
        cmn_onnx_tensor_t *cst = cmn_graph_const (g, v);
        const cmn_graph_shape_t *sh = cmn_graph_shape (g, v);
        int64_t numel = 1;
        for (int d = 0; d < sh->rank; d++)
            numel = sh->dims [d] < 0 ? -1 : numel * sh->dims [d];
        if (sh->rank >= 0 && sh->rank <= *r && numel == 1 && !concat)
            continue;           // a scalar broadcasts the same in any layout
        size_t es = cst ? cmn_onnx_dtype_size (cst->data_type) : 0;
        if (cst && cst->raw && es && cst->data_type != CMN_ONNX_UINT4 && cst->data_type != CMN_ONNX_INT4
        &&  cst->data_type != CMN_ONNX_FLOAT4E2M1 && (int) cst->ndims <= *r
        &&  (!concat || (int) cst->ndims == *r)) {
            how [k] = PERMUTE;
            continue;
        }
        if (sh->rank == *r && s_inverse_copy (g, v, perm, *r)) {
            how [k] = REUSE;
            continue;
        }
        return false;           // blocked: a tensor in the other layout
    }
    return true;
}

//  True when pushing the Transpose through the node producing NAME pays:
//  every reader of NAME is an inverse Transpose (they cancel), but for at
//  most one node that could then be pushed too (it takes the new
//  Transpose, which is then removed). Two such readers would each keep
//  the new Transpose alive for the other: no gain, so no push.
static bool
s_readers_follow (cmn_graph_t *g, const char *name, const int64_t *perm, int r)
{
    if (cmn_graph_is_output (g, name) || cmn_graph_uses (g, name) == 0)
        return false;
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    size_t found = 0, followers = 0;
    for (size_t i = 0; i < og->nnodes; i++) {
        const cmn_onnx_node_t *u = og->nodes [i];
        size_t k = s_reads (u, name);
        if (!k)
            continue;
        int ur;
        const int64_t *up = s_perm (u, &ur);
        bool inverse = up && ur == r;
        for (int d = 0; inverse && d < r; d++)
            inverse = perm [up [d]] == d;
        if (!inverse) {
            if (followers++)
                return false;
            int64_t p2 [CMN_ONNX_MAX_DIMS];
            int r2 = r, how [64];
            bool removes;
            memcpy (p2, perm, (size_t) r * sizeof *p2);
            if (!s_classify (g, u, name, p2, &r2, how, &removes))
                return false;
        }
        found += k;
    }
    return found == cmn_graph_uses (g, name);
}

//  Tries to push a Transpose through node CI. 1 done, 0 not, -1 OOM.
static int
s_push (cmn_graph_t *g, size_t ci, cmn_opt_layout_stats_t *st)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    cmn_onnx_node_t *c = og->nodes [ci];
    int64_t p [CMN_ONNX_MAX_DIMS], inv [CMN_ONNX_MAX_DIMS];
    int r = 0, how [64];
    bool removes;
    if (!s_classify (g, c, NULL, p, &r, how, &removes))
        return 0;
    if (!removes && !s_readers_follow (g, c->outputs [0], p, r))
        return 0;
    for (int k = 0; k < r; k++)
        inv [p [k]] = k;
    const char *op = c->op_type;
    bool concat = s_is (c, "Concat"), reduce = cmn_graph_name_in (op, s_reduce);
    bool softmax = s_is (c, "Softmax") || s_is (c, "LogSoftmax");
    size_t nin = s_layout_inputs (c);
    //  The axes, in the unwrapped layout: axis a of the transposed view is
    //  axis p[a] of its input.
    int64_t ax [CMN_ONNX_MAX_DIMS];
    int nax = 0;
    bool ax_input = false, keep = true;
    int64_t out_perm [CMN_ONNX_MAX_DIMS];
    int out_r = r;
    memcpy (out_perm, p, sizeof out_perm);
    if (concat || softmax) {
        int64_t a = cmn_onnx_node_attr_int (c, "axis", softmax ? -1 : 0);
        if (a < -r || a >= r || (concat && !cmn_onnx_node_attr (c, "axis")))
            return 0;
        ax [0] = p [a < 0 ? a + r : a];
        nax = 1;
    }
    if (reduce) {
        nax = s_reduce_axes (g, c, ax, &ax_input);
        if (nax < 0)
            return 0;
        keep = cmn_onnx_node_attr_int (c, "keepdims", 1) != 0;
        bool red_t [CMN_ONNX_MAX_DIMS] = { 0 }, red_x [CMN_ONNX_MAX_DIMS] = { 0 };
        for (int k = 0; k < nax; k++) {
            if (ax [k] < -r || ax [k] >= r)
                return 0;
            int64_t a = ax [k] < 0 ? ax [k] + r : ax [k];
            red_t [a] = true;
            ax [k] = p [a];
            red_x [ax [k]] = true;
        }
        if (!keep) {
            //  Output axis i is the i-th kept axis of the view, which is
            //  axis p[.] of the input: its place among the kept input axes.
            int pos_x [CMN_ONNX_MAX_DIMS], j = 0;
            for (int d = 0; d < r; d++)
                pos_x [d] = red_x [d] ? -1 : j++;
            out_r = 0;
            for (int d = 0; d < r; d++)
                if (!red_t [d])
                    out_perm [out_r++] = pos_x [p [d]];
        }
    }
    //  Edit: inputs, axes, output through a new Transpose.
    for (size_t k = 0; k < nin; k++) {
        if (how [k] == UNWRAP) {
            cmn_onnx_node_t *t = s_producer (g, c->inputs [k]);
            if (cmn_onnx_node_set_input (c, k, t->inputs [0]))
                return -1;
        }
        else
        if (how [k] == PERMUTE) {
            char name [512];
            int rc = s_permuted_const (g, cmn_graph_const (g, c->inputs [k]), inv, r, name, sizeof name);
            if (rc < 0 || (rc == 0 && cmn_onnx_node_set_input (c, k, name)))
                return -1;
            //  rc 1 (not permutable) was ruled out: PERMUTE needs raw data.
            assert (rc == 0);
        }
        else
        if (how [k] == REUSE) {
            char name [512];
            snprintf (name, sizeof name, "%s", s_inverse_copy (g, c->inputs [k], p, r));
            if (cmn_onnx_node_set_input (c, k, name))
                return -1;
        }
    }
    if (concat || softmax) {
        cmn_onnx_attr_t *a = cmn_onnx_node_attr (c, "axis");
        if (a)
            a->i = ax [0];
        else
        if (cmn_onnx_node_set_int (c, "axis", ax [0]))
            return -1;
    }
    if (reduce) {
        if (ax_input) {
            char name [512];
            snprintf (name, sizeof name, "%s", cmn_graph_fresh_name (g, "axes"));
            int64_t d = nax;
            cmn_onnx_tensor_t *t = cmn_onnx_tensor_new (name, CMN_ONNX_INT64, &d, 1);
            if (!t)
                return -1;
            memcpy (t->raw, ax, (size_t) nax * 8);
            if (cmn_onnx_graph_add_init (og, t)) {
                cmn_onnx_tensor_free (t);
                return -1;
            }
            if (cmn_onnx_node_set_input (c, 1, name))
                return -1;
        }
        else
            memcpy (cmn_onnx_node_attr (c, "axes")->ints, ax, (size_t) nax * sizeof *ax);
    }
    if (out_r == 0 || s_identity (out_perm, out_r))
        return 1;               // the output is the same in both layouts
    char y [512], yt [512];
    snprintf (y, sizeof y, "%s", c->outputs [0]);
    snprintf (yt, sizeof yt, "%s", cmn_graph_fresh_name (g, "nhwc"));
    if (s_set_str (&c->outputs [0], yt) || s_add_transpose (g, yt, y, out_perm, out_r, st))
        return -1;
    return 1;
}

//  Cancels Transpose node I against the Transpose it reads when the two
//  compose to the identity. 1 done, 0 not, -1 OOM.
static int
s_cancel (cmn_graph_t *g, size_t i, cmn_opt_layout_stats_t *st)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    cmn_onnx_node_t *t2 = og->nodes [i];
    int r2, r1;
    const int64_t *p2 = s_perm (t2, &r2);
    if (!p2)
        return 0;
    cmn_onnx_node_t *t1 = s_producer (g, t2->inputs [0]);
    const int64_t *p1 = s_perm (t1, &r1);
    if (!p1 || r1 != r2)
        return 0;
    for (int k = 0; k < r2; k++)
        if (p1 [p2 [k]] != k)
            return 0;
    char x [512], y [512];
    snprintf (x, sizeof x, "%s", t1->inputs [0]);
    snprintf (y, sizeof y, "%s", t2->outputs [0]);
    int rc = cmn_opt_clean_bypass (g, i, x, y);
    if (rc > 0)
        st->removed++;
    return rc;
}

//  Removes Transposes nothing reads. Returns how many.
static size_t
s_drop_dead (cmn_graph_t *g)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    size_t n = 0;
    for (size_t i = 0; i < og->nnodes; i++) {
        cmn_onnx_node_t *t = og->nodes [i];
        int r;
        if (t && s_perm (t, &r) && cmn_graph_uses (g, t->outputs [0]) == 0
        &&  !cmn_graph_is_output (g, t->outputs [0])) {
            cmn_onnx_node_free (t);
            og->nodes [i] = NULL;
            n++;
        }
    }
    return n;
}

//  cmn_graph_step_fn of the conversion: ARG is the stats.
static int
s_convert_step (cmn_graph_t *g, size_t i, void *arg)
{
    return s_convertible (g, cmn_graph_onnx (g)->nodes [i]) ? s_convert (g, i, arg) : 0;
}

//  The pass's three steps; returns the rewrites made, or -1.
static int
s_layout_steps (cmn_graph_t *g, cmn_opt_layout_stats_t *st, cmn_err_t *err)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    //  1. Conversion. A converted node is in the NHWC domain: not again.
    int count = cmn_graph_rewrite (g, s_convert_step, st, 0, err);
    if (count < 0)
        return -1;
    //  2, 3. Pushes and cancellations until none applies (bounded anyway).
    size_t budget = 8 * og->nnodes + 64;
    bool again = true;
    while (again && budget--) {
        again = false;
        for (size_t i = 0; i < og->nnodes && !again; i++) {
            int rc = s_cancel (g, i, st);
            if (rc == 0)
                rc = s_push (g, i, st);
            if (rc < 0)
                return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
            if (rc > 0) {
                count++;
                again = true;
                if (cmn_graph_refresh (g, err))
                    return -1;
                size_t dead = s_drop_dead (g);
                st->removed += dead;
                if (dead && cmn_graph_refresh (g, err))
                    return -1;
            }
        }
    }
    return count;
}

int
cmn_opt_layout_nhwc (cmn_graph_t *g, cmn_opt_layout_stats_t *st, cmn_err_t *err)
{
    assert (st);
    if (cmn_graph_opset (g) < CMN_GRAPH_OPSET_MIN)
        return 0;
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    //  The initializers in use now: those the pass leaves unused (a Conv's
    //  OIHW weights, constants it permuted) go at the end, even at -O0
    //  where no dead-code pass follows.
    zhashx_t *used = zhashx_new ();
    if (!used)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < og->ninits; i++)
        if (cmn_graph_uses (g, og->inits [i]->name) > 0)
            zhashx_insert (used, og->inits [i]->name, (void *) 1);
    int count = s_layout_steps (g, st, err);
    if (count > 0 && cmn_graph_refresh (g, err) == 0) {
        size_t w = 0;
        for (size_t i = 0; i < og->ninits; i++) {
            cmn_onnx_tensor_t *t = og->inits [i];
            if (zhashx_lookup (used, t->name) && cmn_graph_uses (g, t->name) == 0
            &&  !cmn_graph_is_input (g, t->name))
                cmn_onnx_tensor_free (t);
            else
                og->inits [w++] = t;
        }
        og->ninits = w;
        if (cmn_graph_refresh (g, err))
            count = -1;
    }
    else
    if (count > 0)
        count = -1;
    zhashx_destroy (&used);
    return count;
}
