/*  fuzz_gguf: libFuzzer target for the GGUF reader (cmn_gguf). Every input
 *  must parse or fail with an error; on success every tensor's data range
 *  and every metadata value are touched, so out-of-bounds pointers show up
 *  under ASan.
 */
#include <stddef.h>
#include <stdint.h>
#include "cmn_gguf.h"
#include "cmn_quant.h"

static volatile uint8_t s_sink;

static void
s_touch_value (const cmn_gguf_value_t *v)
{
    if (v->type == CMN_GGUF_STRING && v->v.str.len)
        s_sink ^= (uint8_t) v->v.str.ptr [v->v.str.len - 1];
    else
    if (v->type == CMN_GGUF_ARRAY) {
        if (v->v.arr.items)
            for (size_t i = 0; i < v->v.arr.n; i++)
                s_touch_value (&v->v.arr.items [i]);
        else
        if (v->v.arr.n) {
            cmn_gguf_value_t last;
            cmn_gguf_array_get (v, v->v.arr.n - 1, &last);
            s_sink ^= (uint8_t) last.v.u;
        }
    }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    cmn_err_t err;
    cmn_gguf_limits_t limits = cmn_gguf_limits_default;
    limits.max_array = 1u << 16;
    cmn_gguf_t *g = cmn_gguf_new_from_buffer (data, size, &limits, &err);
    if (!g)
        return 0;
    for (size_t i = 0; i < cmn_gguf_kv_count (g); i++)
        s_touch_value (cmn_gguf_kv_value (g, i));
    for (size_t i = 0; i < cmn_gguf_tensor_count (g); i++) {
        const cmn_gguf_tensor_t *t = cmn_gguf_tensor (g, i);
        if (t->size)
            s_sink ^= ((const uint8_t *) t->data) [0] ^ ((const uint8_t *) t->data) [t->size - 1];
        if (cmn_gguf_find_tensor (g, t->name) == NULL)
            __builtin_trap ();
        //  The size the reader computed must be the true one, worked out
        //  here in 128-bit arithmetic that cannot wrap.
        unsigned __int128 bytes = (unsigned __int128) ((uint64_t) t->ne [0]
                                  / cmn_quant_block_values (t->type))
                                * cmn_quant_block_bytes (t->type);
        for (int d = 1; d < CMN_GGUF_MAX_DIMS; d++)
            bytes *= (uint64_t) t->ne [d];
        if (bytes != t->size)
            __builtin_trap ();
    }
    cmn_gguf_destroy (&g);
    return 0;
}
