/*  cmn_onnx: reader and writer for ONNX models (protobuf wire format).
 *
 *  A small protobuf decoder/encoder of our own for the messages rxq needs,
 *  with the field numbers of onnx.proto (ONNX 1.16): ModelProto,
 *  GraphProto, NodeProto, AttributeProto, TensorProto (inline and external
 *  data), ValueInfoProto, TypeProto (tensor types), OperatorSetIdProto.
 *  Every varint, length and count is checked against the bytes remaining
 *  and the limits; errors name the message and field ("NodeProto.input:
 *  length 300 past the 12 bytes remaining").
 *
 *  Fields rxq does not model (doc strings, metadata_props, training_info,
 *  functions, sparse initializers, non-tensor types...) are kept as their
 *  raw wire bytes in each message's `extra` and written back unchanged, so
 *  operators and features rxq does not know pass through untouched.
 *  Numeric tensor data is normalised to little-endian raw bytes (the
 *  writer emits raw_data); external data is read in at load time relative
 *  to the model's directory and written back inline.
 *
 *  The reader takes a buffer and limits (cmn_onnx_read); cmn_onnx_load
 *  reads a file. The model owns all its memory (plain malloc'd structs, so
 *  the optimizer's passes may edit them in place with the helpers below).
 */
#ifndef CMN_ONNX_H
#define CMN_ONNX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "cmn_error.h"

//  TensorProto.DataType
enum {
    CMN_ONNX_UNDEFINED = 0, CMN_ONNX_FLOAT = 1, CMN_ONNX_UINT8 = 2,
    CMN_ONNX_INT8 = 3, CMN_ONNX_UINT16 = 4, CMN_ONNX_INT16 = 5,
    CMN_ONNX_INT32 = 6, CMN_ONNX_INT64 = 7, CMN_ONNX_STRING = 8,
    CMN_ONNX_BOOL = 9, CMN_ONNX_FLOAT16 = 10, CMN_ONNX_DOUBLE = 11,
    CMN_ONNX_UINT32 = 12, CMN_ONNX_UINT64 = 13, CMN_ONNX_COMPLEX64 = 14,
    CMN_ONNX_COMPLEX128 = 15, CMN_ONNX_BFLOAT16 = 16,
    CMN_ONNX_FLOAT8E4M3FN = 17, CMN_ONNX_FLOAT8E4M3FNUZ = 18,
    CMN_ONNX_FLOAT8E5M2 = 19, CMN_ONNX_FLOAT8E5M2FNUZ = 20,
    CMN_ONNX_UINT4 = 21, CMN_ONNX_INT4 = 22, CMN_ONNX_FLOAT4E2M1 = 23,
    CMN_ONNX_DTYPE_MAX = 23
};

//  AttributeProto.AttributeType
enum {
    CMN_ONNX_ATTR_UNDEFINED = 0, CMN_ONNX_ATTR_FLOAT = 1, CMN_ONNX_ATTR_INT = 2,
    CMN_ONNX_ATTR_STRING = 3, CMN_ONNX_ATTR_TENSOR = 4, CMN_ONNX_ATTR_GRAPH = 5,
    CMN_ONNX_ATTR_FLOATS = 6, CMN_ONNX_ATTR_INTS = 7, CMN_ONNX_ATTR_STRINGS = 8,
    CMN_ONNX_ATTR_TENSORS = 9, CMN_ONNX_ATTR_GRAPHS = 10,
    CMN_ONNX_ATTR_SPARSE_TENSOR = 11, CMN_ONNX_ATTR_SPARSE_TENSORS = 12,
    CMN_ONNX_ATTR_TYPE_PROTO = 13, CMN_ONNX_ATTR_TYPE_PROTOS = 14
};

#define CMN_ONNX_MAX_DIMS 16

typedef struct {
    uint8_t *ptr;           // owned, may be NULL when len is 0
    size_t len;             // bytes
} cmn_onnx_bytes_t;

typedef struct cmn_onnx_graph cmn_onnx_graph_t;

typedef struct {
    char *name;             // owned, "" when absent
    int32_t data_type;      // CMN_ONNX_FLOAT...
    size_t ndims;           // number of dimensions (0: scalar)
    int64_t dims [CMN_ONNX_MAX_DIMS]; // elements per dimension, outermost first
    uint8_t *raw;           // numeric data, little-endian, owned (NULL for STRING)
    size_t raw_size;        // bytes of raw
    cmn_onnx_bytes_t *strings; // STRING tensors: one entry per element, owned
    size_t nstrings;        // entries of strings
    cmn_onnx_bytes_t extra; // unmodelled fields, raw wire bytes
} cmn_onnx_tensor_t;

typedef struct {
    char *name;             // owned
    int32_t type;           // CMN_ONNX_ATTR_*
    float f;                // FLOAT
    int64_t i;              // INT
    cmn_onnx_bytes_t s;     // STRING
    cmn_onnx_tensor_t *t;   // TENSOR, owned
    cmn_onnx_graph_t *g;    // GRAPH, owned
    float *floats;          // FLOATS, owned
    size_t nfloats;         // entries of floats
    int64_t *ints;          // INTS, owned
    size_t nints;           // entries of ints
    cmn_onnx_bytes_t *strings; // STRINGS, owned
    size_t nstrings;        // entries of strings
    cmn_onnx_tensor_t **tensors; // TENSORS, owned
    size_t ntensors;        // entries of tensors
    cmn_onnx_graph_t **graphs; // GRAPHS, owned
    size_t ngraphs;         // entries of graphs
    char *ref_attr_name;    // function attribute reference, or NULL
    cmn_onnx_bytes_t extra; // unmodelled fields (doc_string, sparse, type protos)
} cmn_onnx_attr_t;

typedef struct {
    char *name;             // owned, "" when absent
    char *op_type;          // owned
    char *domain;           // owned, "" for the default ONNX domain
    char **inputs;          // owned; "" marks an omitted optional input
    size_t ninputs;         // entries of inputs
    char **outputs;         // owned; "" marks an omitted optional output
    size_t noutputs;        // entries of outputs
    cmn_onnx_attr_t *attrs; // owned
    size_t nattrs;          // entries of attrs
    cmn_onnx_bytes_t extra; // unmodelled fields (doc_string, overload...)
} cmn_onnx_node_t;

typedef struct {
    char *name;             // owned
    bool is_tensor;         // TypeProto is a tensor_type (the fields below apply)
    int32_t elem_type;      // tensor element type, 0 if unknown
    bool has_shape;         // a shape is given (possibly rank 0)
    size_t ndims;           // rank when has_shape
    int64_t dims [CMN_ONNX_MAX_DIMS]; // dim_value, -1 when symbolic or unknown
    char *dim_params [CMN_ONNX_MAX_DIMS]; // dim_param (owned) or NULL
    cmn_onnx_bytes_t type_raw; // TypeProto bytes when not a tensor type
    bool has_type;          // a TypeProto was present
    cmn_onnx_bytes_t extra; // unmodelled fields (doc_string...)
} cmn_onnx_value_info_t;

struct cmn_onnx_graph {
    char *name;             // owned
    cmn_onnx_node_t **nodes; // owned, in file order
    size_t nnodes;          // entries of nodes
    size_t cap_nodes;       // allocated entries of nodes
    cmn_onnx_tensor_t **inits; // initializers, owned
    size_t ninits;          // entries of inits
    size_t cap_inits;       // allocated entries of inits
    cmn_onnx_value_info_t *inputs;  // graph inputs, owned
    size_t ninputs;         // entries of inputs
    cmn_onnx_value_info_t *outputs; // graph outputs, owned
    size_t noutputs;        // entries of outputs
    cmn_onnx_value_info_t *vinfo;   // value_info, owned
    size_t nvinfo;          // entries of vinfo
    cmn_onnx_bytes_t extra; // unmodelled fields (doc_string, sparse_initializer...)
};

typedef struct {
    char *domain;           // owned, "" (or "ai.onnx") for the default domain
    int64_t version;        // opset version
} cmn_onnx_opset_t;

typedef struct {
    int64_t ir_version;     // IR version
    char *producer_name;    // owned or NULL
    char *producer_version; // owned or NULL
    char *domain;           // owned or NULL
    int64_t model_version;  // model version
    bool has_model_version; // model_version was present
    cmn_onnx_graph_t *graph;  // owned
    cmn_onnx_opset_t *opsets; // owned
    size_t nopsets;         // entries of opsets
    cmn_onnx_bytes_t extra; // unmodelled fields (doc_string, functions...)
} cmn_onnx_model_t;

typedef struct {
    size_t max_size;        // bytes of the model file
    size_t max_count;       // entries of any repeated field
    int max_depth;          // nesting of graphs in attributes
    size_t max_external;    // bytes of external data in all
} cmn_onnx_limits_t;

//  2 GiB (protobuf's own limit), 16M entries, depth 16, 16 GiB external.
extern const cmn_onnx_limits_t cmn_onnx_limits_default;

//  Decodes the ModelProto in BUF (LEN bytes, copied from). DIR is the
//  directory external data paths are relative to, or NULL to refuse
//  external data. Returns a new model, or NULL with ERR set:
//  RXQ_E_FORMAT_TRUNC (a varint or length past the end), RXQ_E_FORMAT
//  (wrong wire type or bad value, naming message.field), RXQ_E_FORMAT_TYPE
//  (unknown data type), RXQ_E_FORMAT_SHAPE (data size does not match dims),
//  RXQ_E_FORMAT_BOUNDS (external data offset/length), RXQ_E_IO (external
//  file), RXQ_E_LIMIT, RXQ_E_NOMEM.
cmn_onnx_model_t *cmn_onnx_read (const void *buf, size_t len, const char *dir,
                                 const cmn_onnx_limits_t *limits, cmn_err_t *err);

//  Reads the model file PATH (external data relative to its directory).
cmn_onnx_model_t *cmn_onnx_load (const char *path, const cmn_onnx_limits_t *limits,
                                 cmn_err_t *err);

//  Encodes MODEL as a ModelProto into a new malloc'd buffer (*OUT, *OUT_LEN
//  bytes; the caller frees it). Returns 0, or -1 with ERR set (RXQ_E_NOMEM,
//  RXQ_E_LIMIT past 2 GiB).
int cmn_onnx_write (const cmn_onnx_model_t *model, uint8_t **out, size_t *out_len,
                    cmn_err_t *err);

//  Writes MODEL to PATH. RXQ_E_IO when the file cannot be written.
int cmn_onnx_save (const cmn_onnx_model_t *model, const char *path, cmn_err_t *err);

//  Frees *SELF_P and everything it owns; sets it to NULL. Safe on NULL.
void cmn_onnx_destroy (cmn_onnx_model_t **self_p);

//  Frees a graph, node, tensor (and everything each owns).
void cmn_onnx_graph_free (cmn_onnx_graph_t *graph);
void cmn_onnx_node_free (cmn_onnx_node_t *node);
void cmn_onnx_tensor_free (cmn_onnx_tensor_t *tensor);
void cmn_onnx_value_info_clear (cmn_onnx_value_info_t *vi);

//  Bytes per element of DATA_TYPE (1 for the 4-bit types, which pack two
//  elements a byte), 0 for STRING and unknown types.
size_t cmn_onnx_dtype_size (int32_t data_type);

//  Name of DATA_TYPE ("FLOAT"), or "?".
const char *cmn_onnx_dtype_name (int32_t data_type);

//  Number of elements of TENSOR (product of dims; 1 for a scalar).
int64_t cmn_onnx_tensor_numel (const cmn_onnx_tensor_t *tensor);

//  Opset version MODEL imports for DOMAIN ("" and "ai.onnx" are the same),
//  or 0 if none.
int64_t cmn_onnx_opset (const cmn_onnx_model_t *model, const char *domain);

//  Returns the attribute NAME of NODE, or NULL.
cmn_onnx_attr_t *cmn_onnx_node_attr (const cmn_onnx_node_t *node, const char *name);

//  Integer attribute NAME of NODE, or DEF when absent.
int64_t cmn_onnx_node_attr_int (const cmn_onnx_node_t *node, const char *name, int64_t def);

//  Float attribute NAME of NODE, or DEF when absent.
float cmn_onnx_node_attr_float (const cmn_onnx_node_t *node, const char *name, float def);

//  Constructors for the optimizer's rewrites: a new node with copies of
//  the given strings and no attributes; NULL on allocation failure.
cmn_onnx_node_t *cmn_onnx_node_new (const char *op_type, const char *name,
                                    const char *const *inputs, size_t ninputs,
                                    const char *const *outputs, size_t noutputs);

//  Appends a copy of attribute ATTR to NODE (deep copy). Returns 0 or -1.
int cmn_onnx_node_add_attr (cmn_onnx_node_t *node, const cmn_onnx_attr_t *attr);

//  Adds an INT / FLOAT / INTS attribute to NODE. Returns 0 or -1 (NOMEM).
int cmn_onnx_node_set_int (cmn_onnx_node_t *node, const char *name, int64_t v);
int cmn_onnx_node_set_float (cmn_onnx_node_t *node, const char *name, float v);
int cmn_onnx_node_set_ints (cmn_onnx_node_t *node, const char *name,
                            const int64_t *v, size_t n);

//  Replaces NODE's input I with a copy of NAME. Returns 0 or -1.
int cmn_onnx_node_set_input (cmn_onnx_node_t *node, size_t i, const char *name);

//  Appends an input (copy of NAME) to NODE. Returns 0 or -1.
int cmn_onnx_node_add_input (cmn_onnx_node_t *node, const char *name);

//  A new tensor NAME of DATA_TYPE and DIMS (NDIMS of them), its raw data
//  allocated and zeroed for the caller to fill (numeric types only), or
//  NULL when out of memory.
cmn_onnx_tensor_t *cmn_onnx_tensor_new (const char *name, int32_t data_type,
                                        const int64_t *dims, size_t ndims);

//  Deep copy of TENSOR, or NULL.
cmn_onnx_tensor_t *cmn_onnx_tensor_dup (const cmn_onnx_tensor_t *tensor);

//  Appends NODE / TENSOR to GRAPH, which takes ownership. 0 or -1.
int cmn_onnx_graph_add_node (cmn_onnx_graph_t *graph, cmn_onnx_node_t *node);
int cmn_onnx_graph_add_init (cmn_onnx_graph_t *graph, cmn_onnx_tensor_t *tensor);

//  Index of the initializer NAME in GRAPH, or -1.
ssize_t cmn_onnx_graph_find_init (const cmn_onnx_graph_t *graph, const char *name);

#endif
