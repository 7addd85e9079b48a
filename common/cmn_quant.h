/*  cmn_quant: CPU reference quantization and dequantization, bit-exact with
 *  llama.cpp (ggml-quants.c) for the GGML block types of
 *  cmn_quant_blocks.h, plus rxq's own INT4 (per-group asymmetric with a zero
 *  point; docs/quantization.md). OpenCL kernels are checked against these.
 */
#ifndef CMN_QUANT_H
#define CMN_QUANT_H
#include <stddef.h>
#include <stdint.h>
#include "cmn_quant_blocks.h"

//  Block size in values and bytes for a GGML type (F32, F16 and BF16 have
//  a block of one value). Returns 0 for types this code does not handle.
size_t cmn_quant_block_values (int ggml_type);
size_t cmn_quant_block_bytes (int ggml_type);

//  Bytes of a row of N values of TYPE; 0 when N is not a whole number of
//  blocks or the type is unknown.
size_t cmn_quant_row_bytes (int ggml_type, size_t n);

//  Type name as llama.cpp prints it ("q4_0", "q4_K", "f16").
const char *cmn_quant_type_name (int ggml_type);

//  Quantizes N floats (a multiple of the block size) of SRC into DST.
//  Returns 0, or -1 for an unsupported type or a bad N.
int cmn_quant_quantize_row (int ggml_type, const float *src, void *dst, size_t n);

//  Dequantizes N values of SRC into DST. Returns 0 or -1 as above.
int cmn_quant_dequantize_row (int ggml_type, const void *src, float *dst, size_t n);

//  IEEE binary16 and bfloat16 conversions (round to nearest even).
uint16_t cmn_fp32_to_fp16 (float f);
float cmn_fp16_to_fp32 (uint16_t h);
uint16_t cmn_fp32_to_bf16 (float f);
float cmn_bf16_to_fp32 (uint16_t h);

#endif
