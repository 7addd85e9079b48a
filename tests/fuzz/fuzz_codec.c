/*  fuzz_codec: libFuzzer target for the msgpack body codec: cmn_codec_check
 *  and cmn_body_decode (cmn_codec.h) with the protocol's limits. A body
 *  that decodes is also printed as JSON to exercise the accessors' walk.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "cmn_codec.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    cmn_err_t err;
    (void) cmn_codec_check (data, size, &cmn_codec_limits_default, &err);
    cmn_body_t body;
    if (cmn_body_decode (&body, data, size, &cmn_codec_limits_default, &err) == 0) {
        char *json = cmn_codec_to_json (&body.root);
        free (json);
        uint64_t u;
        const char *s;
        size_t len;
        (void) cmn_codec_get_uint (&body.root, "priority", &u, &err);
        (void) cmn_codec_get_str (&body.root, "kind", &s, &len, &err);
        cmn_body_free (&body);
    }
    return 0;
}
