/*  cmn_graph: an analysis view of an ONNX graph for the optimizer.
 *
 *  Built over a cmn_onnx_model_t's main graph (borrowed, edited in place by
 *  the passes): which node produces each value, how many times each value
 *  is used, which values are constant (initializers that are not also graph
 *  inputs), a topological order with cycle detection, and shape/type
 *  inference for the operators rxq knows. Values used inside a node's
 *  subgraphs (If, Loop, Scan) count as uses of that node, so no pass
 *  removes something a subgraph reads.
 *
 *  cmn_graph_new validates the model and names the node at fault:
 *  an input no node, graph input or initializer provides; a cycle; a
 *  domain the model does not import; an ai.onnx opset outside 1..21.
 *  After editing nodes, call cmn_graph_refresh: it drops nodes set to
 *  NULL in graph->nodes, re-sorts and re-infers.
 */
#ifndef CMN_GRAPH_H
#define CMN_GRAPH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_error.h"
#include "cmn_onnx.h"

//  Highest ai.onnx opset rxq accepts; the passes that rely on operator
//  semantics run only from CMN_GRAPH_OPSET_MIN up.
#define CMN_GRAPH_OPSET_MAX 21
#define CMN_GRAPH_OPSET_MIN 11

//  rxq's operator domain for the NHWC forms of Conv and the pools that the
//  layout pass writes (cmn_opt_layout.h defines them); shape inference
//  knows them.
#define CMN_GRAPH_NHWC_DOMAIN "com.rxq"

typedef struct {
    int32_t elem_type;      // CMN_ONNX_FLOAT..., 0 when unknown
    int rank;               // number of dimensions, -1 when unknown
    int64_t dims [CMN_ONNX_MAX_DIMS]; // elements per dimension, -1 when unknown
} cmn_graph_shape_t;

typedef struct _cmn_graph_t cmn_graph_t;

//  Builds the view of MODEL's graph (borrowed; it must outlive the view).
//  Returns NULL with ERR set: RXQ_E_FORMAT (missing input, naming node and
//  value; cycle, naming a node on it; duplicate producer), RXQ_E_UNSUPPORTED
//  (domain not imported, opset out of range, naming the node), RXQ_E_NOMEM.
cmn_graph_t *cmn_graph_new (cmn_onnx_model_t *model, cmn_err_t *err);

//  Frees the view (not the model); nulls *SELF_P. Safe on NULL.
void cmn_graph_destroy (cmn_graph_t **self_p);

//  Recomputes everything after the graph was edited (nodes removed by
//  setting their slot to NULL are freed and dropped); reorders
//  graph->nodes topologically. Returns 0, or -1 with ERR set as for new.
int cmn_graph_refresh (cmn_graph_t *self, cmn_err_t *err);

//  One rewrite of a pass at node NODE: > 0 when it changed the graph, 0
//  when it did not apply, < 0 when out of memory.
typedef int (cmn_graph_step_fn) (cmn_graph_t *self, size_t node, void *arg);

//  Applies STEP (with ARG) to nodes 0, 1, ... in order; after a step that
//  changed the graph, refreshes it and starts again from node 0, until a
//  whole scan changes nothing or MAX_CHANGES steps have (0: no bound).
//  Returns the number of changes, or -1 with ERR set: RXQ_E_NOMEM when a
//  step ran out of memory, or the refresh's error.
int cmn_graph_rewrite (cmn_graph_t *self, cmn_graph_step_fn *step, void *arg,
                       size_t max_changes, cmn_err_t *err);

//  The model and its main graph.
cmn_onnx_model_t *cmn_graph_model (cmn_graph_t *self);
cmn_onnx_graph_t *cmn_graph_onnx (cmn_graph_t *self);

//  The ai.onnx opset the model imports.
int64_t cmn_graph_opset (cmn_graph_t *self);

//  Index in graph->nodes of the node producing NAME, or -1 (graph input,
//  initializer, or unknown).
ssize_t cmn_graph_producer (cmn_graph_t *self, const char *name);

//  Number of uses of NAME: node input slots, graph outputs and subgraph
//  references.
size_t cmn_graph_uses (cmn_graph_t *self, const char *name);

//  True when NAME is a graph output.
bool cmn_graph_is_output (cmn_graph_t *self, const char *name);

//  True when NAME is a graph input (an initializer also listed as an input
//  counts: a caller may override its value).
bool cmn_graph_is_input (cmn_graph_t *self, const char *name);

//  The constant value of NAME: an initializer that is not a graph input,
//  or NULL.
cmn_onnx_tensor_t *cmn_graph_const (cmn_graph_t *self, const char *name);

//  Inferred shape and type of NAME (rank -1, elem_type 0 when unknown).
const cmn_graph_shape_t *cmn_graph_shape (cmn_graph_t *self, const char *name);

//  True when SHAPE has a known rank and every dimension known.
bool cmn_graph_shape_static (const cmn_graph_shape_t *shape);

//  Bytes a tensor of SHAPE takes, or -1 when not static or not numeric.
int64_t cmn_graph_shape_bytes (const cmn_graph_shape_t *shape);

//  Replaces every use of value FROM with value TO: node inputs in the
//  graph and in all subgraphs. Graph outputs are not renamed. 0 or -1.
int cmn_graph_replace_uses (cmn_graph_t *self, const char *from, const char *to);

//  True when NODE has a graph attribute (If, Loop, Scan bodies).
bool cmn_graph_node_has_subgraph (const cmn_onnx_node_t *node);

//  True when NAME is one of LIST's strings (LIST ends with NULL): the
//  passes' test of an op type against a table of op types.
bool cmn_graph_name_in (const char *name, const char *const *list);

//  Merges into SELF the shapes FROM knows for values of the same name
//  (dimensions SELF does not know), then re-runs inference. Used to
//  estimate a graph's costs with the shapes a folded copy of it resolved.
//  Lasts until the next refresh.
void cmn_graph_import_shapes (cmn_graph_t *self, cmn_graph_t *from);

//  Returns a name not used by any value in the graph, "<BASE>_rxq<N>",
//  in a buffer owned by the view valid until the next call.
const char *cmn_graph_fresh_name (cmn_graph_t *self, const char *base);

#endif
