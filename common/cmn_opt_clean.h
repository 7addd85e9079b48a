/*  cmn_opt_clean: the optimizer's clean-up passes (see cmn_opt.h).
 *
 *  Each pass edits the graph behind G, refreshes G, and returns the number
 *  of rewrites it made (0: nothing to do), or -1 with ERR set.
 *  - dce: removes nodes none of whose outputs is used (not a graph output,
 *    not read by a node or subgraph) and initializers nothing reads that
 *    are not graph inputs.
 *  - noop: removes Identity; Dropout in inference (no mask used, training
 *    mode absent or constant false); Cast to the type it already has;
 *    Transpose with the identity permutation; Reshape, Expand, Squeeze,
 *    Unsqueeze and Flatten whose input and output shapes are static and
 *    equal; Concat, Sum, Max, Min, Mean of one input; Pad with all-zero pads.
 *    Uses of the output are redirected to the input; when the output is a
 *    graph output the producer of the input is renamed instead, if that is
 *    safe, else the node stays.
 *  - cse: merges nodes with the same op, domain, inputs and attributes
 *    (never random-number ops or nodes with subgraphs).
 */
#ifndef CMN_OPT_CLEAN_H
#define CMN_OPT_CLEAN_H
#include "cmn_graph.h"

int cmn_opt_clean_dce (cmn_graph_t *g, cmn_err_t *err);
int cmn_opt_clean_noop (cmn_graph_t *g, cmn_err_t *err);
int cmn_opt_clean_cse (cmn_graph_t *g, cmn_err_t *err);

//  Removes node index I of G, whose output OUT equals its input IN:
//  redirects uses of OUT to IN, or renames IN's producer output when OUT
//  is a graph output. Does not refresh. Returns 1 when removed, 0 when it
//  is not safe (the node stays), -1 on allocation failure.
int cmn_opt_clean_bypass (cmn_graph_t *g, size_t i, const char *in, const char *out);

#endif
