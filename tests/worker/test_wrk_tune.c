/*  test_wrk_tune: the per-device tuning table (lookup on fake device
 *  descriptions), override entries, clamping to device limits, and the
 *  SGEMM / GEMV parameter searches on the test device (PoCL in CI).
 */
#include <criterion/criterion.h>
#include <string.h>
#include "wrk_bench.h"
#include "wrk_device.h"
#include "wrk_kernels.h"
#include "wrk_ref.h"
#include "wrk_tune.h"
#include "cmn_quant_blocks.h"

static wrk_device_info_t
s_info (const char *vendor, const char *name, const char *type, size_t max_wg,
        uint64_t local_mem)
{
    wrk_device_info_t info;
    memset (&info, 0, sizeof info);
    snprintf (info.vendor, sizeof info.vendor, "%s", vendor);
    snprintf (info.name, sizeof info.name, "%s", name);
    snprintf (info.type, sizeof info.type, "%s", type);
    snprintf (info.driver, sizeof info.driver, "1.0");
    info.max_wg = max_wg;
    info.local_mem = local_mem;
    return info;
}

//  A msgpack entry from packed bytes, kept alive in a static zone.
static msgpack_zone s_zone;
static msgpack_object
s_unpack (msgpack_sbuffer *sb)
{
    msgpack_object obj;
    size_t off = 0;
    msgpack_zone_init (&s_zone, 1024);
    cr_assert_eq (msgpack_unpack (sb->data, sb->size, &off, &s_zone, &obj),
                  MSGPACK_UNPACK_SUCCESS);
    return obj;
}

static void
s_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

Test (wrk_tune, lookup_rows)
{
    wrk_tune_t t;
    wrk_device_info_t pocl = s_info ("AuthenticAMD", "pthread-skylake-avx512-AMD EPYC", "cpu",
                                     4096, 1 << 20);
    wrk_tune_lookup (&pocl, &t);
    cr_assert_str_eq (t.row, "cpu");
    cr_assert_eq (wrk_tune_get (&t, WRK_TUNE_SGEMM, "DIRECT"), 1);

    wrk_device_info_t nv = s_info ("NVIDIA Corporation", "NVIDIA H100 80GB HBM3", "gpu",
                                   1024, 48 << 10);
    wrk_tune_lookup (&nv, &t);
    cr_assert_str_eq (t.row, "nvidia");
    cr_assert_eq (wrk_tune_get (&t, WRK_TUNE_SGEMM, "TSM"), 128);
    cr_assert_not (t.clamped);

    wrk_device_info_t amd = s_info ("Advanced Micro Devices, Inc.", "Ellesmere", "gpu",
                                    256, 64 << 10);
    wrk_tune_lookup (&amd, &t);
    cr_assert_str_eq (t.row, "amd-polaris");
    cr_assert_eq (wrk_tune_get (&t, WRK_TUNE_QMATMUL, "QMM_WGS"), 64);
    wrk_device_info_t mesa = s_info ("AMD", "AMD Radeon RX 580 Series (polaris10, LLVM)",
                                     "gpu", 256, 64 << 10);
    wrk_tune_lookup (&mesa, &t);
    cr_assert_str_eq (t.row, "amd-polaris");

    //  An AMD GPU that is not Polaris, and an unknown vendor: default row.
    wrk_device_info_t navi = s_info ("AMD", "gfx1030", "gpu", 1024, 64 << 10);
    wrk_tune_lookup (&navi, &t);
    cr_assert_str_eq (t.row, "default");
    wrk_device_info_t other = s_info ("Acme", "Widget", "gpu", 1024, 64 << 10);
    wrk_tune_lookup (&other, &t);
    cr_assert_str_eq (t.row, "default");
    cr_assert_eq (wrk_tune_get (&t, WRK_TUNE_NORM, "NORM_WGS"), 256);
    cr_assert_eq (wrk_tune_validate (&t, NULL), 0);

    char opts [WRK_TUNE_OPTIONS_MAX];
    wrk_tune_options (&t, WRK_TUNE_TRANSPOSE, opts, sizeof opts);
    cr_assert_str_eq (opts, "-DTR_TILE=32 -DTR_ROWS=8");
}

Test (wrk_tune, clamp_to_limits)
{
    //  A small device: 64 work-items, 4 KiB of local memory.
    wrk_device_info_t tiny = s_info ("Acme", "Tiny", "gpu", 64, 4096);
    wrk_tune_t t;
    wrk_tune_lookup (&tiny, &t);
    cr_assert (t.clamped);
    cr_assert_eq (wrk_tune_validate (&t, NULL), 0);
    for (int f = 0; f < WRK_TUNE_FAMILIES; f++) {
        cr_assert_leq (wrk_tune_wg_size (&t, f), 64, "%s", wrk_tune_family_name (f));
        cr_assert_leq (wrk_tune_local_bytes (&t, f), 4096, "%s", wrk_tune_family_name (f));
    }
    cr_assert_eq (wrk_tune_get (&t, WRK_TUNE_NORM, "NORM_WGS"), 64);
    int tile = wrk_tune_get (&t, WRK_TUNE_TRANSPOSE, "TR_TILE");
    int rows = wrk_tune_get (&t, WRK_TUNE_TRANSPOSE, "TR_ROWS");
    cr_assert_eq (tile % rows, 0);
}

Test (wrk_tune, override_apply)
{
    wrk_device_info_t nv = s_info ("NVIDIA Corporation", "NVIDIA H100", "gpu", 1024, 48 << 10);
    wrk_tune_t t;
    wrk_tune_lookup (&nv, &t);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    s_str (&pk, "sgemm");
    msgpack_pack_map (&pk, 2);
    s_str (&pk, "TSK");
    msgpack_pack_int (&pk, 8);
    s_str (&pk, "WPTM");
    msgpack_pack_int (&pk, 4);
    s_str (&pk, "norm");
    msgpack_pack_map (&pk, 1);
    s_str (&pk, "NORM_WGS");
    msgpack_pack_int (&pk, 128);
    msgpack_object e = s_unpack (&sb);
    cmn_err_t err = { 0 };
    cr_assert_eq (wrk_tune_apply (&t, &e, &err), 0, "%s", err.msg);
    cr_assert (t.overridden);
    cr_assert_eq (wrk_tune_get (&t, WRK_TUNE_SGEMM, "TSK"), 8);
    cr_assert_eq (wrk_tune_get (&t, WRK_TUNE_SGEMM, "WPTM"), 4);
    cr_assert_eq (wrk_tune_get (&t, WRK_TUNE_SGEMM, "TSM"), 128);     // kept
    cr_assert_eq (wrk_tune_get (&t, WRK_TUNE_NORM, "NORM_WGS"), 128);
    msgpack_zone_destroy (&s_zone);

    //  Invalid entries change nothing and say what is wrong.
    const char *bad [][3] = {
        { "gemm", "TSM", "unknown kernel family" },
        { "sgemm", "TILE", "no parameter" },
        { "norm", "NORM_WGS", "power of two" },     // 100
        { "sgemm", "WPTN", "multiple" },            // 3: TSN % WPTN
    };
    const int values [] = { 64, 64, 100, 3 };
    for (int i = 0; i < 4; i++) {
        wrk_tune_t before = t;
        msgpack_sbuffer_clear (&sb);
        msgpack_pack_map (&pk, 1);
        s_str (&pk, bad [i][0]);
        msgpack_pack_map (&pk, 1);
        s_str (&pk, bad [i][1]);
        msgpack_pack_int (&pk, values [i]);
        e = s_unpack (&sb);
        cmn_err_clear (&err);
        cr_assert_eq (wrk_tune_apply (&t, &e, &err), -1, "case %d", i);
        cr_assert_eq (err.code, RXQ_E_PARAM);
        cr_assert (strstr (err.msg, bad [i][2]), "case %d: %s", i, err.msg);
        cr_assert_eq (memcmp (&before, &t, sizeof t), 0);
        msgpack_zone_destroy (&s_zone);
    }
    msgpack_sbuffer_destroy (&sb);
}

Test (wrk_tune, device_override_and_clamp)
{
    cmn_err_t err = { 0 };
    wrk_device_t *dev = wrk_device_new (getenv ("RXQ_TEST_DEVICE"), NULL, &err);
    cr_assert_not_null (dev, "%s", err.msg);
    wrk_tune_t t;
    wrk_tune_for_device (dev, &t);
    cr_assert_not (t.overridden);
    //  A work-group far over the device's limit is clamped on use.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    s_str (&pk, "elementwise");
    msgpack_pack_map (&pk, 1);
    s_str (&pk, "EW_WGS");
    msgpack_pack_int (&pk, 4096);
    msgpack_object e = s_unpack (&sb);
    cr_assert_eq (wrk_tune_set_override (dev, &e, &err), 0, "%s", err.msg);
    msgpack_zone_destroy (&s_zone);
    msgpack_sbuffer_destroy (&sb);
    wrk_tune_for_device (dev, &t);
    cr_assert (t.overridden);
    size_t max_wg = wrk_device_info (dev)->max_wg;
    size_t want = 4096 <= max_wg ? 4096 : max_wg;
    cr_assert_leq ((size_t) wrk_tune_get (&t, WRK_TUNE_ELEMENTWISE, "EW_WGS"), want);
    //  The launcher uses it and still computes the right thing.
    float a [1000], b [1000], y [1000];
    wrk_ref_fill (a, 1000, 1, -1, 1);
    wrk_ref_fill (b, 1000, 2, -1, 1);
    cl_context ctx = wrk_device_context (dev);
    cl_mem da = clCreateBuffer (ctx, CL_MEM_COPY_HOST_PTR, sizeof a, a, NULL);
    cl_mem db = clCreateBuffer (ctx, CL_MEM_COPY_HOST_PTR, sizeof b, b, NULL);
    cl_mem dy = clCreateBuffer (ctx, CL_MEM_READ_WRITE, sizeof y, NULL, NULL);
    cr_assert_eq (wrk_kernels_add (dev, da, db, dy, 1000, 1000, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq (clEnqueueReadBuffer (wrk_device_queue (dev), dy, CL_TRUE, 0, sizeof y, y,
                                       0, NULL, NULL), CL_SUCCESS);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq (y [i], a [i] + b [i]);
    clReleaseMemObject (da);
    clReleaseMemObject (db);
    clReleaseMemObject (dy);
    cr_assert_eq (wrk_tune_set_override (dev, NULL, &err), 0);
    wrk_tune_for_device (dev, &t);
    cr_assert_not (t.overridden);
    wrk_device_destroy (&dev);
}

Test (wrk_tune, options_round_trip)
{
    wrk_tune_t t, u;
    wrk_tune_default (&t);
    wrk_tune_default (&u);
    wrk_tune_put (&t, WRK_TUNE_SGEMM, "TSM", 32);
    char opts [WRK_TUNE_OPTIONS_MAX];
    wrk_tune_options (&t, WRK_TUNE_SGEMM, opts, sizeof opts);
    cr_assert_eq (wrk_tune_parse_options (&u, WRK_TUNE_SGEMM, opts, NULL), 0);
    cr_assert_eq (wrk_tune_get (&u, WRK_TUNE_SGEMM, "TSM"), 32);
    cmn_err_t err = { 0 };
    cr_assert_eq (wrk_tune_parse_options (&u, WRK_TUNE_SGEMM, "-DQMM_WGS=4", &err), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
    cr_assert_eq (wrk_tune_parse_options (&u, WRK_TUNE_SGEMM, "-DTSM=x", &err), -1);
}

Test (wrk_tune, search_sgemm_correct)
{
    cmn_err_t err = { 0 };
    wrk_device_t *dev = wrk_device_new (getenv ("RXQ_TEST_DEVICE"), NULL, &err);
    cr_assert_not_null (dev, "%s", err.msg);
    char opts [WRK_TUNE_OPTIONS_MAX];
    double g = 0;
    cr_assert_eq (wrk_tune_search_sgemm (dev, 96, 1500, opts, sizeof opts, &g, &err), 0,
                  "%s", err.msg);
    cr_assert_gt (g, 0);
    //  The winner computes an awkward size correctly.
    const size_t M = 37, N = 53, K = 29;
    float A [M * K], B [K * N], C [M * N];
    wrk_ref_fill (A, M * K, 3, -1, 1);
    wrk_ref_fill (B, K * N, 4, -1, 1);
    cl_context ctx = wrk_device_context (dev);
    cl_mem a = clCreateBuffer (ctx, CL_MEM_COPY_HOST_PTR, sizeof A, A, NULL);
    cl_mem b = clCreateBuffer (ctx, CL_MEM_COPY_HOST_PTR, sizeof B, B, NULL);
    cl_mem c = clCreateBuffer (ctx, CL_MEM_READ_WRITE, sizeof C, NULL, NULL);
    cl_event ev = NULL;
    cr_assert_eq (wrk_bench_sgemm_enqueue (dev, opts, M, N, K, 1.0f, a, b, 0.0f, c, &ev, &err),
                  0, "%s: %s", opts, err.msg);
    clWaitForEvents (1, &ev);
    clReleaseEvent (ev);
    clEnqueueReadBuffer (wrk_device_queue (dev), c, CL_TRUE, 0, sizeof C, C, 0, NULL, NULL);
    double e;
    cr_assert_eq (wrk_bench_sgemm_max_error (M, N, K, A, B, C, 1, &e), 0);
    cr_assert_leq (e, WRK_BENCH_SGEMM_TOL, "%s: error %g", opts, e);
    clReleaseMemObject (a);
    clReleaseMemObject (b);
    clReleaseMemObject (c);
    cr_assert_eq (wrk_tune_search_sgemm (dev, 8, 10, opts, sizeof opts, &g, &err), -1);
    cr_assert_eq (err.code, RXQ_E_INVAL);
    wrk_device_destroy (&dev);
}

Test (wrk_tune, search_qmatmul_restores_override)
{
    cmn_err_t err = { 0 };
    wrk_device_t *dev = wrk_device_new (getenv ("RXQ_TEST_DEVICE"), NULL, &err);
    cr_assert_not_null (dev, "%s", err.msg);
    wrk_tune_t before, after;
    wrk_tune_for_device (dev, &before);
    char opts [WRK_TUNE_OPTIONS_MAX];
    double g = 0;
    cr_assert_eq (wrk_tune_search_qmatmul (dev, GGML_TYPE_Q4_K, 64, 512, 800, opts,
                                           sizeof opts, &g, &err), 0, "%s", err.msg);
    cr_assert_gt (g, 0);
    cr_assert (strstr (opts, "-DQMM_WGS="));
    wrk_tune_for_device (dev, &after);
    cr_assert_eq (memcmp (before.v, after.v, sizeof before.v), 0);
    cr_assert_not (after.overridden);
    cr_assert_eq (wrk_tune_search_qmatmul (dev, GGML_TYPE_Q4_K, 64, 100, 10, opts,
                                           sizeof opts, &g, &err), -1);
    cr_assert_eq (err.code, RXQ_E_INVAL);
    wrk_device_destroy (&dev);
}

//  sgemm.cl pads the transposed A tile by APAD float4 when WPTM and WPTN
//  are multiples of 4 (its float4 local reads) and by APAD floats
//  otherwise; the clamp must count what the kernel declares.
Test (wrk_tune, sgemm_local_bytes_follow_the_padding_unit)
{
    wrk_tune_t t;
    wrk_tune_default (&t);
    wrk_tune_put (&t, WRK_TUNE_SGEMM, "DIRECT", 0);
    wrk_tune_put (&t, WRK_TUNE_SGEMM, "TSM", 128);
    wrk_tune_put (&t, WRK_TUNE_SGEMM, "TSN", 128);
    wrk_tune_put (&t, WRK_TUNE_SGEMM, "TSK", 16);
    wrk_tune_put (&t, WRK_TUNE_SGEMM, "WPTM", 8);
    wrk_tune_put (&t, WRK_TUNE_SGEMM, "WPTN", 8);
    wrk_tune_put (&t, WRK_TUNE_SGEMM, "APAD", 1);
    cr_assert_eq (wrk_tune_local_bytes (&t, WRK_TUNE_SGEMM), 4 * 16 * (128 + 4 + 128));
    wrk_tune_put (&t, WRK_TUNE_SGEMM, "WPTN", 2);
    cr_assert_eq (wrk_tune_local_bytes (&t, WRK_TUNE_SGEMM), 4 * 16 * (128 + 1 + 128));
    wrk_tune_put (&t, WRK_TUNE_SGEMM, "DIRECT", 1);
    cr_assert_eq (wrk_tune_local_bytes (&t, WRK_TUNE_SGEMM), 0);
}
