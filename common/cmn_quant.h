/*  cmn_quant: CPU reference quantization and dequantization, bit-exact with
 *  llama.cpp (ggml-quants.c, the non-SIMD quantize_row_*_ref and
 *  dequantize_row_* functions) for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K
 *  and Q6_K, plus F32/F16/BF16 and rxq's own INT4 (per-group asymmetric
 *  with a zero point; docs/quantization.md). OpenCL kernels are checked
 *  against these.
 *
 *  Bit-exactness relies on IEEE single precision without contraction into
 *  fused multiply-adds: this file is C11 (GCC then does not contract) and
 *  asks clang not to with a pragma.
 */
#ifndef CMN_QUANT_H
#define CMN_QUANT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_quant_blocks.h"

//  Block size in values and bytes of TYPE (F32, F16, BF16 and the integer
//  types have a block of one value). Knows every GGML type with a fixed
//  layout, including those this file cannot convert, and the rxq INT4
//  types; returns 0 for unknown type numbers.
size_t cmn_quant_block_values (int ggml_type);
size_t cmn_quant_block_bytes (int ggml_type);

//  True when cmn_quant_quantize_row and cmn_quant_dequantize_row handle TYPE.
bool cmn_quant_supported (int ggml_type);

//  True for rxq-private type numbers (RXQ_TYPE_INT4_G*), which llama.cpp
//  does not know.
bool cmn_quant_is_private (int ggml_type);

//  Bytes of a row of N values of TYPE; 0 when N is not a whole number of
//  blocks or the type is unknown, or the size would overflow size_t.
size_t cmn_quant_row_bytes (int ggml_type, size_t n);

//  Type name as llama.cpp prints it ("q4_0", "q4_K", "f16"); "rxq_int4_g32"
//  and so on for rxq's types; NULL for an unknown type.
const char *cmn_quant_type_name (int ggml_type);

//  Quantizes N floats (a multiple of the block size) of SRC into DST, which
//  must hold cmn_quant_row_bytes (TYPE, N) bytes. Block pointers must be
//  2-byte aligned (GGUF data is); F16/BF16 data may be unaligned. Returns 0, or -1 for an
//  unsupported type, a bad N, or (block types only) a NaN or infinity in
//  SRC, which llama.cpp's reference does not define a result for. F32, F16
//  and BF16 convert every value, NaN included. DST may be partly written
//  when -1 is returned.
int cmn_quant_quantize_row (int ggml_type, const float *src, void *dst, size_t n);

//  Dequantizes N values of SRC into DST. Returns 0 or -1 (unsupported type
//  or bad N). Any bit pattern of SRC is accepted.
int cmn_quant_dequantize_row (int ggml_type, const void *src, float *dst, size_t n);

//  IEEE binary16 and bfloat16 conversions, round to nearest even. Values
//  too large for binary16 become infinity; a NaN stays a (quiet) NaN with
//  its sign: 0x7e00 for binary16 as ggml does, the top bits of the payload
//  with the quiet bit set for bfloat16. Subnormals are kept.
uint16_t cmn_fp32_to_fp16 (float f);
float cmn_fp16_to_fp32 (uint16_t h);
uint16_t cmn_fp32_to_bf16 (float f);
float cmn_bf16_to_fp32 (uint16_t h);

#endif
