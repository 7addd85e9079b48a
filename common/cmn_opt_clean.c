/*  cmn_opt_clean: dead-code elimination, no-op removal, CSE.
 *  See cmn_opt_clean.h.
 */
#include "cmn_opt_clean.h"
#include <assert.h>
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

static bool
s_is (const cmn_onnx_node_t *n, const char *op)
{
    return !n->domain [0] && strcmp (n->op_type, op) == 0;
}

int
cmn_opt_clean_bypass (cmn_graph_t *g, size_t i, const char *in, const char *out)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    cmn_onnx_node_t *n = og->nodes [i];
    assert (n);
    if (!cmn_graph_is_output (g, out)) {
        if (cmn_graph_replace_uses (g, out, in))
            return -1;
        cmn_onnx_node_free (n);
        og->nodes [i] = NULL;
        return 1;
    }
    //  OUT is a graph output: IN must come from a node, be no graph output
    //  itself, and that node becomes OUT's producer.
    ssize_t p = cmn_graph_producer (g, in);
    if (p < 0 || cmn_graph_is_output (g, in) || !og->nodes [p])
        return 0;
    cmn_onnx_node_t *prod = og->nodes [p];
    char *outc = strdup (out), *inc = strdup (in);
    if (!outc || !inc) {
        free (outc);
        free (inc);
        return -1;
    }
    cmn_onnx_node_free (n);
    og->nodes [i] = NULL;
    int rc = cmn_graph_replace_uses (g, inc, outc);
    for (size_t k = 0; rc == 0 && k < prod->noutputs; k++)
        if (strcmp (prod->outputs [k], inc) == 0) {
            char *s = strdup (outc);
            if (!s)
                rc = -1;
            else {
                free (prod->outputs [k]);
                prod->outputs [k] = s;
            }
        }
    free (outc);
    free (inc);
    return rc ? -1 : 1;
}

//  Drops value_info entries for names that no longer exist.
static void
s_prune_value_info (cmn_graph_t *g)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    size_t w = 0;
    for (size_t i = 0; i < og->nvinfo; i++) {
        if (cmn_graph_producer (g, og->vinfo [i].name) >= 0)
            og->vinfo [w++] = og->vinfo [i];
        else
            cmn_onnx_value_info_clear (&og->vinfo [i]);
    }
    og->nvinfo = w;
}

int
cmn_opt_clean_dce (cmn_graph_t *g, cmn_err_t *err)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    //  Reverse topological order with use counts lowered as nodes go, so a
    //  dead chain goes in one sweep. DEC holds, per name, uses removed.
    zhashx_t *dec = zhashx_new ();
    if (!dec)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    int removed = 0;
    for (size_t i = og->nnodes; i-- > 0;) {
        cmn_onnx_node_t *n = og->nodes [i];
        bool used = false;
        for (size_t k = 0; k < n->noutputs && !used; k++) {
            if (!n->outputs [k][0])
                continue;
            size_t d = (size_t) (uintptr_t) zhashx_lookup (dec, n->outputs [k]);
            used = cmn_graph_uses (g, n->outputs [k]) > d;
        }
        if (used)
            continue;
        //  Lower the counts of what it reads (direct inputs only: a node
        //  with a subgraph may read more, which then stays conservatively).
        for (size_t k = 0; k < n->ninputs; k++) {
            if (!n->inputs [k][0])
                continue;
            size_t d = (size_t) (uintptr_t) zhashx_lookup (dec, n->inputs [k]);
            zhashx_update (dec, n->inputs [k], (void *) (uintptr_t) (d + 1));
        }
        //  The names live in the node: the table keeps its own copies.
        cmn_onnx_node_free (n);
        og->nodes [i] = NULL;
        removed++;
    }
    zhashx_destroy (&dec);
    if (cmn_graph_refresh (g, err))
        return -1;
    //  Initializers nothing reads (and that are not graph inputs).
    size_t w = 0;
    for (size_t i = 0; i < og->ninits; i++) {
        cmn_onnx_tensor_t *t = og->inits [i];
        if (cmn_graph_uses (g, t->name) == 0 && !cmn_graph_is_input (g, t->name)) {
            cmn_onnx_tensor_free (t);
            removed++;
        }
        else
            og->inits [w++] = t;
    }
    og->ninits = w;
    if (cmn_graph_refresh (g, err))
        return -1;
    s_prune_value_info (g);
    return removed;
}

//  True when NODE's constant input I is all zeros (int64 pads).
static bool
s_const_all_zero (cmn_graph_t *g, const cmn_onnx_node_t *n, size_t i)
{
    if (i >= n->ninputs || !n->inputs [i][0])
        return true;
    cmn_onnx_tensor_t *t = cmn_graph_const (g, n->inputs [i]);
    if (!t || !t->raw)
        return false;
    for (size_t k = 0; k < t->raw_size; k++)
        if (t->raw [k])
            return false;
    return true;
}

static bool
s_same_shape (const cmn_graph_shape_t *a, const cmn_graph_shape_t *b)
{
    if (!cmn_graph_shape_static (a) || !cmn_graph_shape_static (b) || a->rank != b->rank)
        return false;
    if (a->elem_type != b->elem_type || !a->elem_type)
        return false;
    return memcmp (a->dims, b->dims, (size_t) a->rank * sizeof (int64_t)) == 0;
}

//  True when node N is a no-op: its output 0 equals its input 0.
static bool
s_is_noop (cmn_graph_t *g, const cmn_onnx_node_t *n)
{
    if (n->domain [0] || n->ninputs < 1 || !n->inputs [0][0] || n->noutputs < 1 || !n->outputs [0][0])
        return false;
    for (size_t k = 1; k < n->noutputs; k++)
        if (n->outputs [k][0] && cmn_graph_uses (g, n->outputs [k]))
            return false;
    if (s_is (n, "Identity"))
        return true;
    int64_t opset = cmn_graph_opset (g);
    if (opset < CMN_GRAPH_OPSET_MIN)
        return false;
    const cmn_graph_shape_t *in = cmn_graph_shape (g, n->inputs [0]);
    const cmn_graph_shape_t *out = cmn_graph_shape (g, n->outputs [0]);
    if (s_is (n, "Dropout")) {
        if (n->ninputs >= 3 && n->inputs [2][0]) {
            cmn_onnx_tensor_t *t = cmn_graph_const (g, n->inputs [2]);
            if (!t || t->data_type != CMN_ONNX_BOOL || t->raw_size != 1 || t->raw [0])
                return false;
        }
        return true;
    }
    if (s_is (n, "Cast"))
        return in->elem_type && in->elem_type == cmn_onnx_node_attr_int (n, "to", -1);
    if (s_is (n, "Transpose")) {
        cmn_onnx_attr_t *p = cmn_onnx_node_attr (n, "perm");
        if (!p || (in->rank >= 0 && p->nints != (size_t) in->rank))
            return in->rank >= 0 && in->rank <= 1;
        for (size_t k = 0; k < p->nints; k++)
            if (p->ints [k] != (int64_t) k)
                return false;
        return true;
    }
    if (s_is (n, "Reshape") || s_is (n, "Expand") || s_is (n, "Squeeze") || s_is (n, "Unsqueeze")
        || s_is (n, "Flatten"))
        return s_same_shape (in, out);
    if (s_is (n, "Concat") || s_is (n, "Sum") || s_is (n, "Max") || s_is (n, "Min") || s_is (n, "Mean"))
        return n->ninputs == 1;
    if (s_is (n, "Pad")) {
        cmn_onnx_attr_t *p = cmn_onnx_node_attr (n, "pads");
        if (p) {
            for (size_t k = 0; k < p->nints; k++)
                if (p->ints [k])
                    return false;
            return true;
        }
        return n->ninputs >= 2 && s_const_all_zero (g, n, 1);
    }
    return false;
}

int
cmn_opt_clean_noop (cmn_graph_t *g, cmn_err_t *err)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    int count = 0;
    //  One removal per refresh keeps the value table true for the next
    //  decision; cheap for the sizes that matter, and simplest to trust.
    bool again = true;
    while (again) {
        again = false;
        for (size_t i = 0; i < og->nnodes; i++) {
            cmn_onnx_node_t *n = og->nodes [i];
            if (!s_is_noop (g, n))
                continue;
            int rc = cmn_opt_clean_bypass (g, i, n->inputs [0], n->outputs [0]);
            if (rc < 0)
                return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
            if (rc == 0)
                continue;
            count++;
            again = true;
            if (cmn_graph_refresh (g, err))
                return -1;
            break;
        }
    }
    return count;
}

//  ---------------------------------------------------------------------
//  CSE

static const char *const s_random [] = {
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
    "Multinomial", "Bernoulli", "Dropout", NULL
};

static void
s_key_put (zchunk_t *k, const void *p, size_t n)
{
    uint64_t len = n;
    zchunk_extend (k, &len, sizeof len);
    if (n)
        zchunk_extend (k, p, n);
}

//  A byte string equal for two nodes exactly when they compute the same
//  thing: op, domain, inputs and attributes. NULL when N is not a candidate.
static zchunk_t *
s_key (const cmn_onnx_node_t *n)
{
    if (n->domain [0] || cmn_graph_node_has_subgraph (n) || n->noutputs == 0)
        return NULL;
    for (const char *const *r = s_random; *r; r++)
        if (strcmp (n->op_type, *r) == 0)
            return NULL;
    zchunk_t *k = zchunk_new (NULL, 256);
    if (!k)
        return NULL;
    s_key_put (k, n->op_type, strlen (n->op_type));
    for (size_t i = 0; i < n->ninputs; i++)
        s_key_put (k, n->inputs [i], strlen (n->inputs [i]));
    s_key_put (k, "|", 1);
    for (size_t i = 0; i < n->noutputs; i++)
        s_key_put (k, n->outputs [i][0] ? "o" : "", n->outputs [i][0] ? 1 : 0);
    for (size_t i = 0; i < n->nattrs; i++) {
        const cmn_onnx_attr_t *a = &n->attrs [i];
        s_key_put (k, a->name, strlen (a->name));
        s_key_put (k, &a->type, sizeof a->type);
        s_key_put (k, &a->i, sizeof a->i);
        s_key_put (k, &a->f, sizeof a->f);
        s_key_put (k, a->s.ptr, a->s.len);
        s_key_put (k, a->ints, a->nints * sizeof *a->ints);
        s_key_put (k, a->floats, a->nfloats * sizeof *a->floats);
        for (size_t j = 0; j < a->nstrings; j++)
            s_key_put (k, a->strings [j].ptr, a->strings [j].len);
        const cmn_onnx_tensor_t *t = a->t;
        if (t) {
            s_key_put (k, &t->data_type, sizeof t->data_type);
            s_key_put (k, t->dims, t->ndims * sizeof *t->dims);
            s_key_put (k, t->raw, t->raw_size);
            for (size_t j = 0; j < t->nstrings; j++)
                s_key_put (k, t->strings [j].ptr, t->strings [j].len);
        }
        if (a->ntensors || a->ref_attr_name || a->extra.len) {
            zchunk_destroy (&k);
            return NULL;
        }
    }
    return k;
}

int
cmn_opt_clean_cse (cmn_graph_t *g, cmn_err_t *err)
{
    cmn_onnx_graph_t *og = cmn_graph_onnx (g);
    zhashx_t *seen = zhashx_new ();
    if (!seen)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    //  Keys are binary: hex them for zhashx's string keys.
    int count = 0;
    for (size_t i = 0; i < og->nnodes; i++) {
        cmn_onnx_node_t *n = og->nodes [i];
        zchunk_t *k = s_key (n);
        if (!k)
            continue;
        char *hex = zchunk_strhex (k);
        zchunk_destroy (&k);
        if (!hex) {
            zhashx_destroy (&seen);
            return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        }
        cmn_onnx_node_t *first = zhashx_lookup (seen, hex);
        bool merged = false;
        if (first) {
            bool ok = true;
            for (size_t o = 0; o < n->noutputs; o++)
                if (n->outputs [o][0] && cmn_graph_is_output (g, n->outputs [o]))
                    ok = false;
            for (size_t o = 0; ok && o < n->noutputs; o++)
                if (n->outputs [o][0] && cmn_graph_replace_uses (g, n->outputs [o], first->outputs [o])) {
                    free (hex);
                    zhashx_destroy (&seen);
                    return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
                }
            if (ok) {
                cmn_onnx_node_free (n);
                og->nodes [i] = NULL;
                count++;
                merged = true;
            }
        }
        if (!merged && !first)
            zhashx_insert (seen, hex, n);
        free (hex);
    }
    zhashx_destroy (&seen);
    if (cmn_graph_refresh (g, err))
        return -1;
    return count;
}
