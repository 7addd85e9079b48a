/*  test_wrk_optimize: the `optimize` job runner (worker/wrk_optimize.c):
 *  its parameters validate against the kind table, it writes the
 *  optimized model and packs the report, and it fails with the model's
 *  error naming the node (cycle), a bad pass name, and cancellation.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmn_codec.h"
#include "cmn_kind.h"
#include "cmn_onnx.h"
#include "wrk_job.h"

static void
s_sink (void *arg, const char *data, size_t size)
{
    (void) arg; (void) data; (void) size;
}

static char *
s_fixture (const char *name)
{
    const char *dir = getenv ("RXQ_FIXTURES");
    char *p = malloc (1024);
    snprintf (p, 1024, "%s/onnx/%s", dir ? dir : RXQ_SOURCE_DIR "/tests/fixtures", name);
    return p;
}

//  Runs the job with params (key, value) pairs, LEVEL (or -1 to omit).
//  Returns the runner's status; *RESULT gets the result buffer.
static int
s_run (const char *model, const char *output, int level, const char *disable, atomic_int stop,
       msgpack_sbuffer *rb, cmn_err_t *err)
{
    msgpack_sbuffer pb;
    msgpack_sbuffer_init (&pb);
    msgpack_packer pp;
    msgpack_packer_init (&pp, &pb, msgpack_sbuffer_write);
    msgpack_pack_map (&pp, 2 + (level >= 0) + (disable != NULL));
    cmn_pack_kv_str (&pp, "model", model);
    cmn_pack_kv_str (&pp, "output", output);
    if (level >= 0)
        cmn_pack_kv_uint (&pp, "level", (uint64_t) level);
    if (disable)
        cmn_pack_kv_str (&pp, "disable", disable);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    cr_assert_eq (msgpack_unpack_next (&up, pb.data, pb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    const cmn_kind_t *kind = cmn_kind_find ("optimize", 8);
    cr_assert_not_null (kind);
    cr_assert_eq (cmn_kind_validate (kind, &up.data, err), 0, "%s", err->msg);
    wrk_job_fn *fn = wrk_jobs_find ("optimize");
    cr_assert_not_null (fn);
    msgpack_packer rp;
    msgpack_packer_init (&rp, rb, msgpack_sbuffer_write);
    atomic_int st = stop;
    wrk_job_t job = { .params = &up.data, .stop = &st, .result = &rp, .sink = s_sink };
    int rc = fn (&job);
    *err = job.err;
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&pb);
    return rc;
}

Test (optimize_job, result_and_output)
{
    char *in = s_fixture ("pass_matmul_add.onnx");
    char out [] = "/tmp/rxq_test_optimize_XXXXXX";
    int fd = mkstemp (out);
    cr_assert_geq (fd, 0);
    close (fd);
    msgpack_sbuffer rb;
    msgpack_sbuffer_init (&rb);
    cmn_err_t err;
    cr_assert_eq (s_run (in, out, 2, NULL, 0, &rb, &err), 0, "%s", err.msg);
    msgpack_unpacked ur;
    msgpack_unpacked_init (&ur);
    cr_assert_eq (msgpack_unpack_next (&ur, rb.data, rb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    char path [256];
    cr_assert_eq (cmn_codec_get_cstr (&ur.data, "output", path, sizeof path, &err), 0);
    cr_assert_str_eq (path, out);
    const msgpack_object *passes;
    cr_assert_eq (cmn_codec_get_map (&ur.data, "passes", &passes, &err), 0, "%s", err.msg);
    uint64_t gemm;
    cr_assert_eq (cmn_codec_get_uint (passes, "fuse-gemm", &gemm, &err), 0, "%s", err.msg);
    cr_assert_eq (gemm, 2);
    cr_assert_eq (ur.data.via.map.size, 10);
    //  The file on disk is the optimized model.
    cmn_onnx_model_t *m = cmn_onnx_load (out, NULL, &err);
    cr_assert_not_null (m, "%s", err.msg);
    size_t gemms = 0;
    for (size_t i = 0; i < m->graph->nnodes; i++)
        gemms += !strcmp (m->graph->nodes [i]->op_type, "Gemm");
    cr_assert_eq (gemms, 2);
    cmn_onnx_destroy (&m);
    msgpack_unpacked_destroy (&ur);
    msgpack_sbuffer_destroy (&rb);
    unlink (out);
    free (in);
}

Test (optimize_job, errors)
{
    msgpack_sbuffer rb;
    msgpack_sbuffer_init (&rb);
    cmn_err_t err;
    char *cyc = s_fixture ("cycle.onnx");
    cr_assert_eq (s_run (cyc, "/tmp/rxq_test_optimize_never.onnx", -1, NULL, 0, &rb, &err), -1);
    cr_assert_eq (err.code, RXQ_E_FORMAT);
    cr_assert (strstr (err.msg, "node 'n_a' (Add) is on a cycle"), "%s", err.msg);
    cr_assert_eq (rb.size, 0, "nothing packed on failure");
    cr_assert_eq (access ("/tmp/rxq_test_optimize_never.onnx", F_OK), -1);
    char *ok = s_fixture ("pass_cse.onnx");
    cr_assert_eq (s_run (ok, "/tmp/rxq_test_optimize_never.onnx", 1, "cse,nope", 0, &rb, &err), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
    cr_assert (strstr (err.msg, "unknown pass 'nope'"), "%s", err.msg);
    cr_assert_eq (s_run (ok, "/tmp/rxq_test_optimize_never.onnx", 1, NULL, RXQ_E_CANCELLED, &rb, &err), -1);
    cr_assert_eq (err.code, RXQ_E_CANCELLED);
    cr_assert_eq (access ("/tmp/rxq_test_optimize_never.onnx", F_OK), -1);
    cr_assert_eq (s_run ("/nonexistent/model.onnx", "/tmp/x.onnx", 1, NULL, 0, &rb, &err), -1);
    cr_assert_eq (err.code, RXQ_E_IO);
    free (cyc);
    free (ok);
    msgpack_sbuffer_destroy (&rb);
}

//  Runs the job on pass_conv_bn_relu.onnx at -O2 with LAYOUT and TARGET
//  (NULL: absent) on a worker whose device is DEVICE (NULL: none); puts
//  the result's layout.layout into GOT and layout.converted into *CONV.
static int
s_run_layout (const char *layout, const char *target, const char *device, char got [8],
              uint64_t *conv, cmn_err_t *err)
{
    char *in = s_fixture ("pass_conv_bn_relu.onnx");
    msgpack_sbuffer pb;
    msgpack_sbuffer_init (&pb);
    msgpack_packer pp;
    msgpack_packer_init (&pp, &pb, msgpack_sbuffer_write);
    msgpack_pack_map (&pp, 3 + (layout != NULL) + (target != NULL));
    cmn_pack_kv_str (&pp, "model", in);
    cmn_pack_kv_str (&pp, "output", "/tmp/rxq_test_optimize_layout.onnx");
    cmn_pack_kv_uint (&pp, "level", 2);
    if (layout)
        cmn_pack_kv_str (&pp, "layout", layout);
    if (target)
        cmn_pack_kv_str (&pp, "target", target);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    cr_assert_eq (msgpack_unpack_next (&up, pb.data, pb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq (cmn_kind_validate (cmn_kind_find ("optimize", 8), &up.data, err), 0, "%s", err->msg);
    msgpack_sbuffer rb;
    msgpack_sbuffer_init (&rb);
    msgpack_packer rp;
    msgpack_packer_init (&rp, &rb, msgpack_sbuffer_write);
    atomic_int st = 0;
    wrk_job_t job = { .params = &up.data, .stop = &st, .result = &rp, .sink = s_sink,
                      .device_name = device };
    int rc = wrk_jobs_find ("optimize") (&job);
    *err = job.err;
    if (rc == 0) {
        msgpack_unpacked ur;
        msgpack_unpacked_init (&ur);
        cr_assert_eq (msgpack_unpack_next (&ur, rb.data, rb.size, NULL), MSGPACK_UNPACK_SUCCESS);
        const msgpack_object *lm;
        cr_assert_eq (cmn_codec_get_map (&ur.data, "layout", &lm, err), 0, "%s", err->msg);
        cr_assert_eq (cmn_codec_get_cstr (lm, "layout", got, 8, err), 0, "%s", err->msg);
        cr_assert_eq (cmn_codec_get_uint (lm, "converted", conv, err), 0, "%s", err->msg);
        msgpack_unpacked_destroy (&ur);
    }
    unlink ("/tmp/rxq_test_optimize_layout.onnx");
    msgpack_sbuffer_destroy (&rb);
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&pb);
    free (in);
    return rc;
}

Test (optimize_job, layout_param_and_target_default)
{
    char got [8];
    uint64_t conv = 99;
    cmn_err_t err;
    //  A layout that is neither nhwc nor nchw is refused.
    cr_assert_eq (s_run_layout ("nhwx", NULL, NULL, got, &conv, &err), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
    cr_assert (strstr (err.msg, "layout: 'nhwx' is not nhwc or nchw"), "%s", err.msg);
    //  layout=nhwc converts the Convs.
    cr_assert_eq (s_run_layout ("nhwc", NULL, NULL, got, &conv, &err), 0, "%s", err.msg);
    cr_assert_str_eq (got, "nhwc");
    cr_assert_eq (conv, 2);     // the fixture has two convs
    //  No layout, no target: NCHW, whatever the worker's device.
    cr_assert_eq (s_run_layout (NULL, NULL, "Some GPU", got, &conv, &err), 0, "%s", err.msg);
    cr_assert_str_eq (got, "nchw");
    cr_assert_eq (conv, 0);
    //  A target and no layout: the worker's preference (a device: NHWC;
    //  none: NCHW).
    cr_assert_eq (s_run_layout (NULL, "gpu", "Some GPU", got, &conv, &err), 0, "%s", err.msg);
    cr_assert_str_eq (got, "nhwc");
    cr_assert_eq (conv, 2);     // the fixture has two convs
    cr_assert_eq (s_run_layout (NULL, "box-1", NULL, got, &conv, &err), 0, "%s", err.msg);
    cr_assert_str_eq (got, "nchw");
    cr_assert_eq (conv, 0);
    //  An explicit layout wins over the target's.
    cr_assert_eq (s_run_layout ("nchw", "gpu", "Some GPU", got, &conv, &err), 0, "%s", err.msg);
    cr_assert_str_eq (got, "nchw");
    cr_assert_eq (conv, 0);
}
