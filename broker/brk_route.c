/*  brk_route: see brk_route.h. */
#include "brk_route.h"
#include "cmn_codec.h"
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint32_t
brk_route_clc_version (const char *text, size_t len)
{
    size_t i = 0;
    while (i < len && !isdigit ((unsigned char) text [i]))
        i++;
    unsigned major = 0, minor = 0;
    while (i < len && isdigit ((unsigned char) text [i]) && major < 100)
        major = major * 10 + (unsigned) (text [i++] - '0');
    if (i >= len || text [i] != '.')
        return 0;
    i++;
    if (i >= len || !isdigit ((unsigned char) text [i]))
        return 0;
    minor = (unsigned) (text [i] - '0');
    return major * 10 + minor;
}

int
brk_require_parse (brk_require_t *req, const msgpack_object *map, cmn_err_t *err)
{
    memset (req, 0, sizeof *req);
    if (!map)
        return 0;
    if (map->type != MSGPACK_OBJECT_MAP)
        return cmn_err_set (err, RXQ_E_PARAM, "'require' must be a map");
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr [i].key;
        if (!cmn_codec_str_eq (k, "vendor") && !cmn_codec_str_eq (k, "type")
        &&  !cmn_codec_str_eq (k, "min_global_mem") && !cmn_codec_str_eq (k, "opencl_c")
        &&  !cmn_codec_str_eq (k, "tag") && !cmn_codec_str_eq (k, "worker")
        &&  !cmn_codec_str_eq (k, "target"))
            return cmn_err_set (err, RXQ_E_PARAM, "unknown requirement (known: vendor, type, "
                                "min_global_mem, opencl_c, tag, worker, target)");
    }
    char clc [32] = "";
    if (cmn_codec_get_cstr (map, "vendor", req->vendor, sizeof req->vendor, err) < 0
    ||  cmn_codec_get_cstr (map, "type", req->type, sizeof req->type, err) < 0
    ||  cmn_codec_get_uint (map, "min_global_mem", &req->min_global_mem, err) < 0
    ||  cmn_codec_get_cstr (map, "opencl_c", clc, sizeof clc, err) < 0
    ||  cmn_codec_get_cstr (map, "tag", req->tag, sizeof req->tag, err) < 0
    ||  cmn_codec_get_cstr (map, "worker", req->worker, sizeof req->worker, err) < 0
    ||  cmn_codec_get_cstr (map, "target", req->target, sizeof req->target, err) < 0) {
        if (err)
            err->code = RXQ_E_PARAM;
        return -1;
    }
    if (req->type [0] && strcmp (req->type, "gpu") && strcmp (req->type, "cpu")
    &&  strcmp (req->type, "accelerator"))
        return cmn_err_set (err, RXQ_E_PARAM, "required type must be gpu, cpu or accelerator, "
                            "not '%s'", req->type);
    if (clc [0] && !(req->opencl_c = brk_route_clc_version (clc, strlen (clc))))
        return cmn_err_set (err, RXQ_E_PARAM, "required opencl_c must look like '1.2', not '%s'",
                            clc);
    return 0;
}

bool
brk_require_empty (const brk_require_t *req)
{
    return !req->vendor [0] && !req->type [0] && !req->min_global_mem && !req->opencl_c
        && !req->tag [0] && !req->worker [0] && !req->target [0];
}

void
brk_require_pack (const brk_require_t *req, msgpack_packer *pk)
{
    uint32_t n = (req->vendor [0] != 0) + (req->type [0] != 0) + (req->min_global_mem != 0)
               + (req->opencl_c != 0) + (req->tag [0] != 0) + (req->worker [0] != 0)
               + (req->target [0] != 0);
    msgpack_pack_map (pk, n);
    if (req->vendor [0])
        cmn_pack_kv_str (pk, "vendor", req->vendor);
    if (req->type [0])
        cmn_pack_kv_str (pk, "type", req->type);
    if (req->min_global_mem)
        cmn_pack_kv_uint (pk, "min_global_mem", req->min_global_mem);
    if (req->opencl_c) {
        char v [16];
        snprintf (v, sizeof v, "%u.%u", req->opencl_c / 10, req->opencl_c % 10);
        cmn_pack_kv_str (pk, "opencl_c", v);
    }
    if (req->tag [0])
        cmn_pack_kv_str (pk, "tag", req->tag);
    if (req->worker [0])
        cmn_pack_kv_str (pk, "worker", req->worker);
    if (req->target [0])
        cmn_pack_kv_str (pk, "target", req->target);
}

void
brk_require_key (const brk_require_t *req, char *out, size_t size)
{
    if (brk_require_empty (req)) {
        if (size)
            out [0] = 0;
        return;
    }
    char vendor [64];
    size_t i;
    for (i = 0; req->vendor [i] && i + 1 < sizeof vendor; i++)
        vendor [i] = (char) tolower ((unsigned char) req->vendor [i]);
    vendor [i] = 0;
    //  target is not folded to lower case: it may name a worker exactly.
    snprintf (out, size, "v=%s;t=%s;m=%" PRIu64 ";c=%u;g=%s;w=%s;d=%s", vendor, req->type,
              req->min_global_mem, req->opencl_c, req->tag, req->worker, req->target);
}

void
brk_require_describe (const brk_require_t *req, char *out, size_t size)
{
    size_t n = 0;
    out [0] = 0;
#define APPEND(...) do { if (n < size) n += (size_t) snprintf (out + n, size - n, __VA_ARGS__); } while (0)
    if (req->vendor [0])
        APPEND ("%svendor~'%s'", n ? ", " : "", req->vendor);
    if (req->type [0])
        APPEND ("%stype=%s", n ? ", " : "", req->type);
    if (req->min_global_mem)
        APPEND ("%smin_global_mem=%.1f GiB", n ? ", " : "",
                (double) req->min_global_mem / (1024.0 * 1024 * 1024));
    if (req->opencl_c)
        APPEND ("%sopencl_c>=%u.%u", n ? ", " : "", req->opencl_c / 10, req->opencl_c % 10);
    if (req->tag [0])
        APPEND ("%stag=%s", n ? ", " : "", req->tag);
    if (req->worker [0])
        APPEND ("%sworker=%s", n ? ", " : "", req->worker);
    if (req->target [0])
        APPEND ("%starget~'%s'", n ? ", " : "", req->target);
#undef APPEND
}

void
brk_caps_parse (brk_caps_t *caps, const msgpack_object *device, const msgpack_object *tags)
{
    memset (caps, 0, sizeof *caps);
    if (device) {
        const char *s;
        size_t n;
        cmn_codec_get_cstr (device, "vendor", caps->vendor, sizeof caps->vendor, NULL);
        cmn_codec_get_cstr (device, "type", caps->type, sizeof caps->type, NULL);
        cmn_codec_get_cstr (device, "name", caps->device, sizeof caps->device, NULL);
        cmn_codec_get_uint (device, "global_mem", &caps->global_mem, NULL);
        if (cmn_codec_get_str (device, "opencl_c", &s, &n, NULL) == 0)
            caps->opencl_c = brk_route_clc_version (s, n);
    }
    if (tags && tags->type == MSGPACK_OBJECT_ARRAY && tags->via.array.size) {
        caps->tags = calloc (tags->via.array.size, sizeof (char *));
        for (uint32_t i = 0; caps->tags && i < tags->via.array.size; i++) {
            const msgpack_object *t = &tags->via.array.ptr [i];
            if (t->type == MSGPACK_OBJECT_STR && t->via.str.size < 64)
                caps->tags [caps->ntags++] = strndup (t->via.str.ptr, t->via.str.size);
        }
    }
}

void
brk_caps_free (brk_caps_t *caps)
{
    for (size_t i = 0; i < caps->ntags; i++)
        free (caps->tags [i]);
    free (caps->tags);
    caps->tags = NULL;
    caps->ntags = 0;
}

bool
brk_route_match (const brk_require_t *req, const brk_caps_t *caps)
{
    if (req->vendor [0] && !strcasestr (caps->vendor, req->vendor))
        return false;
    if (req->type [0] && strcmp (req->type, caps->type) != 0)
        return false;
    if (req->min_global_mem && caps->global_mem < req->min_global_mem)
        return false;
    if (req->opencl_c && caps->opencl_c < req->opencl_c)
        return false;
    if (req->tag [0]) {
        bool found = false;
        for (size_t i = 0; i < caps->ntags && !found; i++)
            found = strcmp (caps->tags [i], req->tag) == 0;
        if (!found)
            return false;
    }
    if (req->worker [0] && strcmp (req->worker, caps->id) != 0
    &&  strcmp (req->worker, caps->name) != 0)
        return false;
    //  A target is a worker (exactly) or a device (by part of its name).
    if (req->target [0] && strcmp (req->target, caps->id) != 0
    &&  strcmp (req->target, caps->name) != 0
    &&  !(caps->device [0] && strcasestr (caps->device, req->target)))
        return false;
    return true;
}

//  ---------------------------------------------------------------------
//  Weights and affinity (proto 6.10)

static bool
s_hex64 (const char *s, size_t n)
{
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s [i] >= '0' && s [i] <= '9') || (s [i] >= 'a' && s [i] <= 'f')))
            return false;
    return true;
}

int
brk_weights_parse (brk_weights_t *w, const msgpack_object *array, cmn_err_t *err)
{
    w->n = 0;
    w->bytes = 0;
    if (!array || array->type != MSGPACK_OBJECT_ARRAY)
        return cmn_err_set (err, RXQ_E_PROTO, "field 'weights' must be an array");
    for (uint32_t i = 0; i < array->via.array.size; i++) {
        const msgpack_object *e = &array->via.array.ptr [i];
        const char *model = NULL;
        size_t len = 0;
        uint64_t bytes = 0;
        if (e->type != MSGPACK_OBJECT_MAP
        ||  cmn_codec_get_str (e, "model", &model, &len, NULL) != 0 || !s_hex64 (model, len))
            continue;
        cmn_codec_get_uint (e, "bytes", &bytes, NULL);
        w->bytes += bytes;
        char name [65];
        memcpy (name, model, 64);
        name [64] = 0;
        if (brk_weights_holds (w, name) || w->n == BRK_WEIGHTS_MAX)
            continue;
        memcpy (w->model [w->n++], name, 65);
    }
    return 0;
}

bool
brk_weights_holds (const brk_weights_t *w, const char *model)
{
    for (size_t i = 0; i < w->n; i++)
        if (memcmp (w->model [i], model, 64) == 0)
            return true;
    return false;
}

uint64_t
brk_route_score (const char *model, const brk_caps_t *caps, const brk_weights_t *weights,
                 size_t leased)
{
    //  Bit 63: holds the model. Bits 1..62: free device memory in KiB
    //  (capped). Bit 0: idle.
    uint64_t score = 0;
    if (model && weights && brk_weights_holds (weights, model))
        score |= 1ull << 63;
    uint64_t held = weights ? weights->bytes : 0;
    uint64_t free_kib = caps->global_mem > held ? (caps->global_mem - held) >> 10 : 0;
    if (free_kib > (1ull << 61))
        free_kib = 1ull << 61;
    score |= free_kib << 1;
    score |= leased == 0;
    return score;
}

bool
brk_route_job_model (const char *params, size_t len, char model [65])
{
    if (!params || len == 0)
        return false;
    cmn_body_t body;
    if (cmn_body_decode (&body, params, len, &cmn_codec_limits_default, NULL) != 0)
        return false;
    const msgpack_object *m = cmn_codec_find (&body.root, "model");
    bool found = m && m->type == MSGPACK_OBJECT_STR && s_hex64 (m->via.str.ptr, m->via.str.size);
    if (found) {
        memcpy (model, m->via.str.ptr, 64);
        model [64] = 0;
    }
    cmn_body_free (&body);
    return found;
}
