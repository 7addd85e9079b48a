/*  cmn_opt_mem: cost estimates over a graph view: FLOPs of one run and a
 *  memory plan for the intermediate tensors (see cmn_opt.h).
 *
 *  The plan walks the nodes in topological order; each node's outputs get
 *  the smallest free buffer at least as large (best fit) or a new one, and
 *  a tensor's buffer is freed after its last reader. Graph inputs,
 *  outputs and initializers are not planned (the caller owns them). Sizes
 *  come from shape inference; tensors of unknown size are skipped and
 *  reported as partial.
 */
#ifndef CMN_OPT_MEM_H
#define CMN_OPT_MEM_H
#include "cmn_graph.h"

typedef struct {
    double flops;           // estimated floating-point operations, one run
    bool flops_partial;     // some nodes' FLOPs unknown (not counted)
    int64_t naive_bytes;    // sum of all intermediate tensors (no reuse)
    int64_t planned_bytes;  // sum of the plan's buffers (with reuse)
    int64_t peak_live_bytes;// largest sum of tensors live at one time
    size_t buffers;         // buffers in the plan
    size_t tensors;         // intermediate tensors planned
    bool mem_partial;       // some tensor sizes unknown (not counted)
    int64_t weight_bytes;   // bytes of initializers
} cmn_opt_mem_t;

//  Estimates G's costs into OUT. Returns 0, or -1 with ERR (RXQ_E_NOMEM).
int cmn_opt_mem_estimate (cmn_graph_t *g, cmn_opt_mem_t *out, cmn_err_t *err);

#endif
