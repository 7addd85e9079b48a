/*  wrk_optimize: the `optimize` job. See wrk_optimize.h. */
#include "wrk_optimize.h"
#include "wrk_blobs.h"
#include "cmn_blob.h"
#include "cmn_codec.h"
#include "cmn_onnx.h"
#include "cmn_opt.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Applies a comma-separated list of pass names to OPTS as VALUE (1 on,
//  -1 off).
static int
s_passes (const char *list, size_t len, int8_t value, cmn_opt_opts_t *opts, cmn_err_t *err)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && list [j] != ',')
            j++;
        char name [64];
        if (j - i == 0 || j - i >= sizeof name)
            return cmn_err_set (err, RXQ_E_PARAM, "bad pass list '%.*s'", (int) len, list);
        memcpy (name, list + i, j - i);
        name [j - i] = 0;
        cmn_opt_pass_t p;
        if (cmn_opt_pass_parse (name, &p))
            return cmn_err_set (err, RXQ_E_PARAM, "unknown pass '%s' (see docs/optimize.md)", name);
        opts->force [p] = value;
        i = j + 1;
    }
    return 0;
}

static void
s_pack_pair (msgpack_packer *pk, const char *key, double a, double b)
{
    msgpack_pack_str (pk, strlen (key));
    msgpack_pack_str_body (pk, key, strlen (key));
    msgpack_pack_array (pk, 2);
    msgpack_pack_double (pk, a);
    msgpack_pack_double (pk, b);
}

//  Packs the report as a map that leaves room for EXTRA more entries (the
//  caller packs them), the output named by OUT_KEY: "output" (a path) or
//  "output_blob".
static void
s_pack_report (msgpack_packer *pk, const char *out_key, const char *out, int level,
               const cmn_opt_report_t *r, uint32_t extra)
{
    msgpack_pack_map (pk, 10 + extra);
    cmn_pack_kv_str (pk, out_key, out);
    cmn_pack_kv_uint (pk, "level", (uint64_t) level);
    s_pack_pair (pk, "nodes", (double) r->nodes_before, (double) r->nodes_after);
    msgpack_pack_str (pk, 3);
    msgpack_pack_str_body (pk, "ops", 3);
    msgpack_pack_map (pk, (uint32_t) r->nops);
    for (size_t i = 0; i < r->nops; i++)
        s_pack_pair (pk, r->ops [i].op, (double) r->ops [i].before, (double) r->ops [i].after);
    uint32_t npass = 0;
    for (int p = 0; p < CMN_OPT_NPASSES; p++)
        npass += r->enabled [p];
    msgpack_pack_str (pk, 6);
    msgpack_pack_str_body (pk, "passes", 6);
    msgpack_pack_map (pk, npass);
    for (int p = 0; p < CMN_OPT_NPASSES; p++)
        if (r->enabled [p])
            cmn_pack_kv_uint (pk, cmn_opt_pass_name ((cmn_opt_pass_t) p), r->applied [p]);
    s_pack_pair (pk, "flops", r->flops_before, r->flops_after);
    msgpack_pack_str (pk, 6);
    msgpack_pack_str_body (pk, "memory", 6);
    msgpack_pack_map (pk, 7);
    cmn_pack_kv_int (pk, "naive_before", r->mem_naive_before);
    cmn_pack_kv_int (pk, "naive_after", r->mem_naive_after);
    cmn_pack_kv_int (pk, "planned_before", r->mem_peak_before);
    cmn_pack_kv_int (pk, "planned_after", r->mem_peak_after);
    cmn_pack_kv_uint (pk, "buffers", r->buffers_after);
    cmn_pack_kv_uint (pk, "tensors", r->tensors_after);
    cmn_pack_kv_bool (pk, "partial", r->mem_partial);
    s_pack_pair (pk, "weights_bytes", (double) r->weights_before, (double) r->weights_after);
    msgpack_pack_str (pk, 6);
    msgpack_pack_str_body (pk, "layout", 6);
    msgpack_pack_map (pk, 5);
    cmn_pack_kv_str (pk, "layout", r->enabled [CMN_OPT_LAYOUT] ? "nhwc" : "nchw");
    cmn_pack_kv_uint (pk, "converted", r->layout_converted);
    cmn_pack_kv_uint (pk, "transposes_inserted", r->layout_inserted);
    cmn_pack_kv_uint (pk, "transposes_cancelled", r->layout_removed);
    cmn_pack_kv_uint (pk, "transposes_left", r->transposes_after);
    cmn_pack_kv_double (pk, "seconds", r->seconds);
}

const char *
wrk_optimize_layout_for (const char *device_name)
{
    //  rxq's convolution kernels (kernels/conv.cl: conv2d_nhwc with folded
    //  batch norm and fused ReLU, im2col_nhwc) are NHWC on every OpenCL
    //  device; a worker without one runs no conv kernels.
    return device_name && device_name [0] ? "nhwc" : "nchw";
}

int
wrk_optimize_job (wrk_job_t *job)
{
    const char *model = NULL, *output = NULL, *enable = NULL, *disable = NULL, *layout = NULL,
               *target = NULL;
    size_t model_len = 0, output_len = 0, enable_len = 0, disable_len = 0, layout_len = 0,
           target_len = 0;
    uint64_t level = 1;
    if (cmn_codec_get_str (job->params, "model", &model, &model_len, &job->err) < 0
    ||  cmn_codec_get_str (job->params, "output", &output, &output_len, &job->err) < 0
    ||  cmn_codec_get_str (job->params, "enable", &enable, &enable_len, &job->err) < 0
    ||  cmn_codec_get_str (job->params, "disable", &disable, &disable_len, &job->err) < 0
    ||  cmn_codec_get_str (job->params, "layout", &layout, &layout_len, &job->err) < 0
    ||  cmn_codec_get_str (job->params, "target", &target, &target_len, &job->err) < 0
    ||  cmn_codec_get_uint (job->params, "level", &level, &job->err) < 0)
        return -1;
    if (!model || model_len == 0)
        return cmn_err_set (&job->err, RXQ_E_PARAM, "model: a blob name (64 hex digits) or a "
                            "path to an .onnx file on the worker is required");
    if (level > 2)
        return cmn_err_set (&job->err, RXQ_E_PARAM, "level: %llu is not 0, 1 or 2", (unsigned long long) level);
    cmn_opt_opts_t opts = cmn_opt_opts_default;
    opts.level = (int) level;
    if ((enable && s_passes (enable, enable_len, 1, &opts, &job->err))
    ||  (disable && s_passes (disable, disable_len, -1, &opts, &job->err)))
        return -1;
    //  layout= overrides the pass switches; without it, a job for a target
    //  takes this worker's preference (it was routed here for its device).
    if (layout && !(layout_len == 4 && (!memcmp (layout, "nhwc", 4) || !memcmp (layout, "nchw", 4))))
        return cmn_err_set (&job->err, RXQ_E_PARAM, "layout: '%.*s' is not nhwc or nchw",
                            (int) (layout_len > 32 ? 32 : layout_len), layout);
    if (!layout && target && target_len)
        layout = wrk_optimize_layout_for (job->device_name), layout_len = 4;
    if (layout)
        opts.force [CMN_OPT_LAYOUT] = memcmp (layout, "nhwc", 4) ? -1 : 1;
    char in [4096], out [4096], hash [CMN_BLOB_HEX_LEN + 1] = "";
    const bool blob = cmn_blob_name_valid (model, model_len);
    bool model_cached = false;
    if (blob) {
        //  docs/store.md: the model comes from the store, the output goes
        //  back to it.
        if (output && output_len)
            return cmn_err_set (&job->err, RXQ_E_PARAM, "optimize: 'output' is a path on the "
                                "worker and cannot be used with a blob model; the output goes "
                                "to the blob store (its hash is the result's output_blob)");
        snprintf (hash, sizeof hash, "%.*s", (int) model_len, model);
        if (wrk_job_fetch_blob (job, "model", hash, in, sizeof in, &model_cached))
            return -1;
        if (wrk_blobs_tmp_path (job->blobs, ".onnx", out, sizeof out))
            return cmn_err_set (&job->err, RXQ_E_INVAL, "optimize: blob cache path too long");
    }
    else
    if (snprintf (in, sizeof in, "%.*s", (int) model_len, model) >= (int) sizeof in)
        return cmn_err_set (&job->err, RXQ_E_PARAM, "optimize: model path too long");
    else
    if (output && output_len)
        snprintf (out, sizeof out, "%.*s", (int) output_len, output);
    else {
        size_t n = model_len;
        if (n > 5 && memcmp (in + n - 5, ".onnx", 5) == 0)
            n -= 5;
        snprintf (out, sizeof out, "%.*s.opt.onnx", (int) n, in);
    }
    if (wrk_job_should_stop (job))
        return -1;
    wrk_job_progress (job, 0.0, "reading %s", blob ? "the model" : in);
    cmn_onnx_model_t *m = cmn_onnx_load (in, NULL, &job->err);
    if (!m)
        return -1;
    if (wrk_job_should_stop (job)) {
        cmn_onnx_destroy (&m);
        return -1;
    }
    wrk_job_progress (job, 0.3, "optimizing at -O%d", opts.level);
    cmn_opt_report_t report;
    if (cmn_opt_run (m, &opts, &report, &job->err)) {
        cmn_onnx_destroy (&m);
        return -1;
    }
    wrk_job_progress (job, 0.8, "writing %s", blob ? "the optimized model" : out);
    int rc = cmn_onnx_save (m, out, &job->err);
    cmn_onnx_destroy (&m);
    if (rc) {
        if (blob)
            unlink (out);
        return -1;
    }
    if (!blob) {
        s_pack_report (job->result, "output", out, opts.level, &report, 0);
        return 0;
    }
    char out_hash [CMN_BLOB_HEX_LEN + 1];
    if (wrk_job_put_blob (job, out, out_hash))
        return -1;
    s_pack_report (job->result, "output_blob", out_hash, opts.level, &report, 2);
    cmn_pack_kv_str (job->result, "model_blob", hash);
    cmn_pack_kv_bool (job->result, "model_cached", model_cached);
    return 0;
}
