/*  fuzz_safetensors: libFuzzer target for the safetensors reader. On
 *  success each tensor's data range and each metadata string is touched.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "cmn_safetensors.h"

static volatile uint8_t s_sink;

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    cmn_err_t err;
    cmn_safetensors_limits_t limits = cmn_safetensors_limits_default;
    limits.allow_unsupported = (size & 1) != 0;     // cover both paths
    cmn_safetensors_t *st = cmn_safetensors_new_from_buffer (data, size, &limits, &err);
    if (!st)
        return 0;
    for (size_t i = 0; i < cmn_safetensors_tensor_count (st); i++) {
        const cmn_safetensors_tensor_t *t = cmn_safetensors_tensor (st, i);
        if (t->size)
            s_sink ^= ((const uint8_t *) t->data) [0] ^ ((const uint8_t *) t->data) [t->size - 1];
        s_sink ^= (uint8_t) strlen (t->name);
    }
    for (size_t i = 0; i < cmn_safetensors_metadata_count (st); i++)
        s_sink ^= (uint8_t) (strlen (cmn_safetensors_metadata_key (st, i))
                             + strlen (cmn_safetensors_metadata_value (st, i)));
    cmn_safetensors_destroy (&st);
    return 0;
}
