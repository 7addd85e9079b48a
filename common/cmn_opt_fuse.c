/*  cmn_opt_fuse: Conv+BatchNorm, MatMul+Add -> Gemm, layer norm pattern.
 *  See cmn_opt_fuse.h.
 */
#include "cmn_opt_fuse.h"
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

//  True when N is the ai.onnx operator OP. The matchers below read the
//  inputs they need only after s_isn says there are that many: a node
//  from the file may have any number.
static bool
s_is (const cmn_onnx_node_t *n, const char *op)
{
    return n && !n->domain [0] && strcmp (n->op_type, op) == 0;
}

//  True when N is OP with at least NIN inputs, the first NIN non-empty.
static bool
s_isn (const cmn_onnx_node_t *n, const char *op, size_t nin)
{
    if (!s_is (n, op) || n->ninputs < nin || n->noutputs < 1 || !n->outputs [0][0])
        return false;
    for (size_t i = 0; i < nin; i++)
        if (!n->inputs [i][0])
            return false;
    return true;
}

static cmn_onnx_node_t *
s_producer (cmn_graph_t *g, const char *name)
{
    ssize_t p = cmn_graph_producer (g, name);
    return p >= 0 ? cmn_graph_onnx (g)->nodes [p] : NULL;
}

//  Reads element K of a FLOAT or DOUBLE tensor.
static double
s_at (const cmn_onnx_tensor_t *t, int64_t k)
{
    if (t->data_type == CMN_ONNX_DOUBLE) {
        double v;
        memcpy (&v, t->raw + 8 * k, 8);
        return v;
    }
    float v;
    memcpy (&v, t->raw + 4 * k, 4);
    return v;
}

static void
s_put (cmn_onnx_tensor_t *t, int64_t k, double v)
{
    if (t->data_type == CMN_ONNX_DOUBLE)
        memcpy (t->raw + 8 * k, &v, 8);
    else {
        float f = (float) v;
        memcpy (t->raw + 4 * k, &f, 4);
    }
}

static bool
s_fp (const cmn_onnx_tensor_t *t)
{
    return t && (t->data_type == CMN_ONNX_FLOAT || t->data_type == CMN_ONNX_DOUBLE);
}

//  Sets output 0 of N to a copy of NAME.
static int
s_set_output (cmn_onnx_node_t *n, const char *name)
{
    char *s = strdup (name);
    if (!s)
        return -1;
    free (n->outputs [0]);
    n->outputs [0] = s;
    return 0;
}

//  ---------------------------------------------------------------------

static int
s_conv_bn_one (cmn_graph_t *g, size_t bi, void *unused)
{
    (void) unused;
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    cmn_onnx_node_t *bn = og->nodes [bi];
    if (!s_isn (bn, "BatchNormalization", 5) || bn->ninputs != 5 || cmn_onnx_node_attr_int (bn, "training_mode", 0))
        return 0;
    for (size_t k = 1; k < bn->noutputs; k++)
        if (bn->outputs [k][0])
            return 0;
    ssize_t ci = cmn_graph_producer (g, bn->inputs [0]);
    cmn_onnx_node_t *conv = ci >= 0 ? og->nodes [ci] : NULL;
    if (!s_isn (conv, "Conv", 2) || cmn_graph_uses (g, conv->outputs [0]) != 1)
        return 0;
    cmn_onnx_tensor_t *w = cmn_graph_const (g, conv->inputs [1]);
    cmn_onnx_tensor_t *b = conv->ninputs > 2 && conv->inputs [2][0] ? cmn_graph_const (g, conv->inputs [2]) : NULL;
    if (!s_fp (w) || w->ndims < 3 || (conv->ninputs > 2 && conv->inputs [2][0] && !s_fp (b)))
        return 0;
    int64_t co = w->dims [0];
    cmn_onnx_tensor_t *p [4];
    for (int k = 0; k < 4; k++) {
        p [k] = cmn_graph_const (g, bn->inputs [1 + k]);
        if (!s_fp (p [k]) || cmn_onnx_tensor_numel (p [k]) != co || p [k]->data_type != w->data_type)
            return 0;
    }
    if (b && (cmn_onnx_tensor_numel (b) != co || b->data_type != w->data_type))
        return 0;
    double eps = cmn_onnx_node_attr_float (bn, "epsilon", 1e-5f);
    //  New tensors: W may be shared with other nodes.
    cmn_onnx_tensor_t *nw = cmn_onnx_tensor_dup (w);
    if (!nw)
        return -1;
    char *wn = strdup (cmn_graph_fresh_name (g, w->name));
    if (!wn) {
        cmn_onnx_tensor_free (nw);
        return -1;
    }
    free (nw->name);
    nw->name = wn;
    int64_t per = cmn_onnx_tensor_numel (w) / (co ? co : 1);
    int64_t one = co;
    cmn_onnx_tensor_t *nb = cmn_onnx_tensor_new (cmn_graph_fresh_name (g, "conv_bias"), w->data_type, &one, 1);
    if (!nb) {
        cmn_onnx_tensor_free (nw);
        return -1;
    }
    for (int64_t o = 0; o < co; o++) {
        double s = s_at (p [0], o) / sqrt (s_at (p [3], o) + eps);
        for (int64_t e = 0; e < per; e++)
            s_put (nw, o * per + e, s_at (w, o * per + e) * s);
        double bias = b ? s_at (b, o) : 0;
        s_put (nb, o, (bias - s_at (p [2], o)) * s + s_at (p [1], o));
    }
    if (cmn_onnx_graph_add_init (og, nw)) {
        cmn_onnx_tensor_free (nw);
        cmn_onnx_tensor_free (nb);
        return -1;
    }
    if (cmn_onnx_graph_add_init (og, nb)) {
        cmn_onnx_tensor_free (nb);
        return -1;
    }
    if (cmn_onnx_node_set_input (conv, 1, nw->name))
        return -1;
    if (conv->ninputs > 2) {
        if (cmn_onnx_node_set_input (conv, 2, nb->name))
            return -1;
    }
    else
    if (cmn_onnx_node_add_input (conv, nb->name))
        return -1;
    if (s_set_output (conv, bn->outputs [0]))
        return -1;
    cmn_onnx_node_free (bn);
    og->nodes [bi] = NULL;
    return 1;
}

int
cmn_opt_fuse_conv_bn (cmn_graph_t *g, cmn_err_t *err)
{
    if (cmn_graph_opset (g) < CMN_GRAPH_OPSET_MIN)
        return 0;
    return cmn_graph_rewrite (g, s_conv_bn_one, NULL, 0, err);
}

//  ---------------------------------------------------------------------

static int
s_gemm_one (cmn_graph_t *g, size_t ai, void *unused)
{
    (void) unused;
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    cmn_onnx_node_t *add = og->nodes [ai];
    if (!s_isn (add, "Add", 2) || add->noutputs != 1)
        return 0;
    for (int side = 0; side < 2; side++) {
        const char *mmv = add->inputs [side], *cv = add->inputs [1 - side];
        cmn_onnx_node_t *mm = s_producer (g, mmv);
        if (!s_isn (mm, "MatMul", 2) || cmn_graph_uses (g, mmv) != 1)
            continue;
        cmn_onnx_tensor_t *b = cmn_graph_const (g, mm->inputs [1]);
        cmn_onnx_tensor_t *c = cmn_graph_const (g, cv);
        const cmn_graph_shape_t *a = cmn_graph_shape (g, mm->inputs [0]);
        const cmn_graph_shape_t *o = cmn_graph_shape (g, add->outputs [0]);
        if (!s_fp (b) || !s_fp (c) || b->ndims != 2 || a->rank != 2 || c->ndims > 2
            || b->data_type != c->data_type || a->elem_type != b->data_type)
            continue;
        //  The Add must not grow the MatMul's [M, N] result.
        const cmn_graph_shape_t *m = cmn_graph_shape (g, mmv);
        if (m->rank != 2 || o->rank != 2 || m->dims [1] != b->dims [1] || o->dims [1] != b->dims [1]
            || o->dims [0] != m->dims [0] || m->dims [0] < 0)
            continue;
        bool ok = true;
        for (size_t k = 0; k < c->ndims; k++) {
            int64_t want = m->dims [2 - c->ndims + k];
            if (c->dims [k] != 1 && c->dims [k] != want)
                ok = false;
        }
        if (!ok)
            continue;
        const char *ins [3] = { mm->inputs [0], mm->inputs [1], cv };
        const char *outs [1] = { add->outputs [0] };
        cmn_onnx_node_t *gemm = cmn_onnx_node_new ("Gemm", mm->name, ins, 3, outs, 1);
        if (!gemm)
            return -1;
        ssize_t mi = cmn_graph_producer (g, mmv);
        cmn_onnx_node_free (add);
        og->nodes [ai] = gemm;
        cmn_onnx_node_free (og->nodes [mi]);
        og->nodes [mi] = NULL;
        return 1;
    }
    return 0;
}

int
cmn_opt_fuse_gemm (cmn_graph_t *g, cmn_err_t *err)
{
    if (cmn_graph_opset (g) < CMN_GRAPH_OPSET_MIN)
        return 0;
    return cmn_graph_rewrite (g, s_gemm_one, NULL, 0, err);
}

//  ---------------------------------------------------------------------

//  True when reduction node N reduces exactly the last axis of a rank R
//  input (R -1 when unknown: then only axes [-1] qualifies), keeping dims.
static bool
s_reduces_last (cmn_graph_t *g, const cmn_onnx_node_t *n, int r)
{
    if (!s_isn (n, "ReduceMean", 1) || !cmn_onnx_node_attr_int (n, "keepdims", 1))
        return false;
    int64_t ax;
    cmn_onnx_attr_t *a = cmn_onnx_node_attr (n, "axes");
    if (a) {
        if (a->nints != 1)
            return false;
        ax = a->ints [0];
    }
    else {
        if (n->ninputs < 2)
            return false;
        cmn_onnx_tensor_t *t = cmn_graph_const (g, n->inputs [1]);
        if (!t || t->data_type != CMN_ONNX_INT64 || cmn_onnx_tensor_numel (t) != 1)
            return false;
        memcpy (&ax, t->raw, 8);
    }
    return ax == -1 || (r >= 1 && ax == r - 1);
}

//  The only node reading NAME (which is no graph output), or NULL.
static cmn_onnx_node_t *
s_consumer (cmn_graph_t *g, const char *name)
{
    if (cmn_graph_uses (g, name) != 1 || cmn_graph_is_output (g, name))
        return NULL;
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    for (size_t i = 0; i < og->nnodes; i++) {
        cmn_onnx_node_t *n = og->nodes [i];
        for (size_t k = 0; n && k < n->ninputs; k++)
            if (!strcmp (n->inputs [k], name))
                return cmn_graph_node_has_subgraph (n) ? NULL : n;
    }
    return NULL;
}

//  Constant scalar value of NAME (FLOAT), or NAN.
static double
s_scalar (cmn_graph_t *g, const char *name)
{
    cmn_onnx_tensor_t *t = cmn_graph_const (g, name);
    if (!s_fp (t) || cmn_onnx_tensor_numel (t) != 1)
        return NAN;
    return s_at (t, 0);
}

static int
s_layernorm_one (cmn_graph_t *g, size_t di, void *unused)
{
    (void) unused;
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    cmn_onnx_node_t *div = og->nodes [di];
    if (!s_isn (div, "Div", 2))
        return 0;
    const char *d = div->inputs [0];
    cmn_onnx_node_t *sub = s_producer (g, d), *sq = s_producer (g, div->inputs [1]);
    if (!s_isn (sub, "Sub", 2) || !s_isn (sq, "Sqrt", 1) || cmn_graph_uses (g, d) != 2
        || cmn_graph_uses (g, div->inputs [1]) != 1)
        return 0;
    const char *x = sub->inputs [0];
    const cmn_graph_shape_t *xs = cmn_graph_shape (g, x);
    //  The normalised size: the last dimension when known, else the size
    //  of gamma (which the graph's Mul broadcast against it).
    int64_t dim = xs->rank >= 1 ? xs->dims [xs->rank - 1] : -1;
    cmn_onnx_node_t *m = s_producer (g, sub->inputs [1]);
    if (!s_reduces_last (g, m, xs->rank) || strcmp (m->inputs [0], x) || cmn_graph_uses (g, sub->inputs [1]) != 1)
        return 0;
    cmn_onnx_node_t *eadd = s_producer (g, sq->inputs [0]);
    if (!s_isn (eadd, "Add", 2) || cmn_graph_uses (g, sq->inputs [0]) != 1)
        return 0;
    int vs = isnan (s_scalar (g, eadd->inputs [1])) ? 1 : 0;
    double eps = s_scalar (g, eadd->inputs [1 - vs]);
    cmn_onnx_node_t *v = s_producer (g, eadd->inputs [vs]);
    if (isnan (eps) || !s_reduces_last (g, v, xs->rank) || cmn_graph_uses (g, eadd->inputs [vs]) != 1)
        return 0;
    cmn_onnx_node_t *pw = s_producer (g, v->inputs [0]);
    if (!s_isn (pw, "Pow", 2) || strcmp (pw->inputs [0], d) || s_scalar (g, pw->inputs [1]) != 2.0
        || cmn_graph_uses (g, v->inputs [0]) != 1)
        return 0;
    //  Optional scale and bias, constant vectors of the last dimension.
    const char *out = div->outputs [0];
    const char *gamma = NULL, *beta = NULL;
    cmn_onnx_node_t *last = div;
    cmn_onnx_node_t *c = s_consumer (g, out);
    if (s_isn (c, "Mul", 2)) {
        int s = !strcmp (c->inputs [0], out) ? 1 : 0;
        cmn_onnx_tensor_t *t = cmn_graph_const (g, c->inputs [s]);
        if (t && t->data_type == CMN_ONNX_FLOAT && t->ndims == 1 && (dim < 0 || t->dims [0] == dim)) {
            dim = t->dims [0];
            gamma = c->inputs [s];
            last = c;
        }
    }
    c = gamma ? s_consumer (g, last->outputs [0]) : NULL;
    if (s_isn (c, "Add", 2)) {
        int s = !strcmp (c->inputs [0], last->outputs [0]) ? 1 : 0;
        cmn_onnx_tensor_t *t = cmn_graph_const (g, c->inputs [s]);
        if (t && t->data_type == CMN_ONNX_FLOAT && t->ndims == 1 && t->dims [0] == dim) {
            beta = c->inputs [s];
            last = c;
        }
    }
    //  A pattern whose result nothing reads is left over from an earlier
    //  fusion: DCE removes it.
    if (cmn_graph_uses (g, last->outputs [0]) == 0)
        return 0;
    //  Without gamma, rxq makes a FLOAT scale of the (known) last dimension
    //  (which comes from the file: bounded before it sizes an allocation).
    if (!gamma && (dim < 1 || dim > (1 << 24) || xs->elem_type != CMN_ONNX_FLOAT))
        return 0;
    char *gname = NULL;
    if (!gamma) {
        cmn_onnx_tensor_t *ones = cmn_onnx_tensor_new (cmn_graph_fresh_name (g, "ln_scale"), CMN_ONNX_FLOAT,
                                                       &dim, 1);
        if (!ones)
            return -1;
        for (int64_t k = 0; k < dim; k++)
            s_put (ones, k, 1.0);
        if (cmn_onnx_graph_add_init (og, ones)) {
            cmn_onnx_tensor_free (ones);
            return -1;
        }
        gname = ones->name;
    }
    const char *ins [3] = { x, gamma ? gamma : gname, beta };
    const char *outs [1] = { last->outputs [0] };
    cmn_onnx_node_t *ln = cmn_onnx_node_new ("LayerNormalization", div->name, ins, beta ? 3 : 2, outs, 1);
    if (!ln || cmn_onnx_node_set_int (ln, "axis", -1) || cmn_onnx_node_set_float (ln, "epsilon", (float) eps)) {
        cmn_onnx_node_free (ln);
        return -1;
    }
    //  LAST goes; the rest of the pattern is dead and DCE takes it.
    for (size_t i = 0; i < og->nnodes; i++)
        if (og->nodes [i] == last) {
            cmn_onnx_node_free (last);
            og->nodes [i] = ln;
            break;
        }
    return 1;
}

int
cmn_opt_fuse_layernorm (cmn_graph_t *g, cmn_err_t *err)
{
    if (cmn_graph_opset (g) < 17)
        return 0;
    return cmn_graph_rewrite (g, s_layernorm_one, NULL, 0, err);
}

//  ---------------------------------------------------------------------

//  True when NAME is a constant FLOAT scalar within 1e-6 relative of V.
static bool
s_is_scalar (cmn_graph_t *g, const char *name, double v)
{
    double x = s_scalar (g, name);
    return !isnan (x) && fabs (x - v) <= 1e-6 * fabs (v);
}

//  If NAME is Mul(a, c) or Mul(c, a) with c the constant scalar V, and its
//  value has one use, returns a (else NULL).
static const char *
s_mul_by (cmn_graph_t *g, const char *name, double v)
{
    cmn_onnx_node_t *m = s_producer (g, name);
    if (!s_isn (m, "Mul", 2) || cmn_graph_uses (g, name) != 1)
        return NULL;
    for (int s = 0; s < 2; s++)
        if (s_is_scalar (g, m->inputs [s], v))
            return m->inputs [1 - s];
    return NULL;
}

//  The exact GELU exporters write, x * 0.5 * (1 + erf(x / sqrt 2)), in its
//  two groupings, into Gelu (opset 20). Node I is the last Mul.
static int
s_gelu_one (cmn_graph_t *g, size_t i, void *unused)
{
    (void) unused;
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    cmn_onnx_node_t *top = og->nodes [i];
    if (!s_isn (top, "Mul", 2) || top->noutputs != 1)
        return 0;
    const char *x = NULL, *b = NULL;
    for (int s = 0; s < 2 && !x; s++) {
        const char *p = top->inputs [s], *q = top->inputs [1 - s];
        const char *hx;
        if (s_is_scalar (g, q, 0.5)) {
            //  Mul (Mul (x, B), 0.5)
            cmn_onnx_node_t *m = s_producer (g, p);
            if (!s_isn (m, "Mul", 2) || cmn_graph_uses (g, p) != 1)
                continue;
            for (int t = 0; t < 2 && !x; t++) {
                x = m->inputs [t];
                b = m->inputs [1 - t];
                cmn_onnx_node_t *add = s_producer (g, b);
                if (!s_isn (add, "Add", 2))
                    x = NULL;
            }
        }
        else
        if ((hx = s_mul_by (g, p, 0.5))) {
            //  Mul (Mul (x, 0.5), B)
            x = hx;
            b = q;
        }
    }
    if (!x || !b || cmn_graph_uses (g, b) != 1)
        return 0;
    cmn_onnx_node_t *add = s_producer (g, b);
    if (!s_isn (add, "Add", 2))
        return 0;
    int es = s_is_scalar (g, add->inputs [0], 1.0) ? 1 : s_is_scalar (g, add->inputs [1], 1.0) ? 0 : -1;
    if (es < 0 || cmn_graph_uses (g, add->inputs [es]) != 1)
        return 0;
    cmn_onnx_node_t *erf = s_producer (g, add->inputs [es]);
    if (!s_isn (erf, "Erf", 1) || cmn_graph_uses (g, erf->inputs [0]) != 1)
        return 0;
    cmn_onnx_node_t *d = s_producer (g, erf->inputs [0]);
    if (!d || d->domain [0] || d->ninputs != 2 || !d->inputs [1][0] || strcmp (d->inputs [0], x))
        return 0;
    if (!(s_is (d, "Div") && s_is_scalar (g, d->inputs [1], 1.4142135623730951))
        && !(s_is (d, "Mul") && s_is_scalar (g, d->inputs [1], 0.7071067811865476)))
        return 0;
    //  The FLOAT scalars the pattern multiplies x with make x FLOAT (or
    //  DOUBLE), both types Gelu takes.
    const char *ins [1] = { x };
    const char *outs [1] = { top->outputs [0] };
    cmn_onnx_node_t *gelu = cmn_onnx_node_new ("Gelu", top->name, ins, 1, outs, 1);
    if (!gelu)
        return -1;
    //  TOP goes; the rest of the pattern is dead and DCE takes it.
    cmn_onnx_node_free (top);
    og->nodes [i] = gelu;
    return 1;
}

int
cmn_opt_fuse_gelu (cmn_graph_t *g, cmn_err_t *err)
{
    if (cmn_graph_opset (g) < 20)
        return 0;
    return cmn_graph_rewrite (g, s_gelu_one, NULL, 0, err);
}
