/*  brk_route: the `worker` requirement that pins a job to one worker (the
 *  benchmark farm's --all-workers and --worker), by id or by name. */
#include <criterion/criterion.h>
#include "brk_job.h"
#include "brk_route.h"
#include "cmn_codec.h"

//  Decodes the map {worker: WORKER} into BODY.
static void
s_require_worker (cmn_body_t *body, msgpack_sbuffer *sb, const char *worker)
{
    msgpack_sbuffer_init (sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    cmn_pack_kv_str (&pk, "worker", worker);
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (body, sb->data, sb->size, &cmn_codec_limits_default, &err), 0,
                  "%s", err.msg);
}

Test (brk_route, worker_requirement_matches_id_or_name_only)
{
    brk_caps_t a = { 0 }, b = { 0 };
    snprintf (a.id, sizeof a.id, "00aa11bb22");
    snprintf (a.name, sizeof a.name, "gpu-box-1");
    snprintf (b.id, sizeof b.id, "00cc33dd44");
    snprintf (b.name, sizeof b.name, "gpu-box-2");
    const char *want [] = { "00aa11bb22", "gpu-box-1" };
    for (int i = 0; i < 2; i++) {
        cmn_body_t body;
        msgpack_sbuffer sb;
        s_require_worker (&body, &sb, want [i]);
        brk_require_t req;
        cmn_err_t err = { 0 };
        cr_assert_eq (brk_require_parse (&req, &body.root, &err), 0, "%s", err.msg);
        cr_assert_not (brk_require_empty (&req));
        cr_assert (brk_route_match (&req, &a), "%s must match worker a", want [i]);
        cr_assert_not (brk_route_match (&req, &b), "%s must not match worker b", want [i]);
        char text [128];
        brk_require_describe (&req, text, sizeof text);
        cr_assert (strstr (text, want [i]), "description '%s'", text);
        cmn_body_free (&body);
        msgpack_sbuffer_destroy (&sb);
    }
}

Test (brk_route, jobs_pinned_to_different_workers_get_different_lanes)
{
    brk_require_t x = { 0 }, y = { 0 }, none = { 0 };
    snprintf (x.worker, sizeof x.worker, "w1");
    snprintf (y.worker, sizeof y.worker, "w2");
    char kx [256], ky [256], kn [256];
    brk_require_key (&x, kx, sizeof kx);
    brk_require_key (&y, ky, sizeof ky);
    brk_require_key (&none, kn, sizeof kn);
    cr_assert_str_neq (kx, ky);
    cr_assert_str_neq (kx, kn);
    cr_assert_str_eq (kn, "");
}

Test (brk_route, worker_requirement_round_trips_through_pack)
{
    brk_require_t req = { 0 }, back;
    snprintf (req.worker, sizeof req.worker, "gpu-box-1");
    snprintf (req.type, sizeof req.type, "gpu");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    brk_require_pack (&req, &pk);
    cmn_body_t body;
    cr_assert_eq (cmn_body_decode (&body, sb.data, sb.size, &cmn_codec_limits_default, NULL), 0);
    cmn_err_t err = { 0 };
    cr_assert_eq (brk_require_parse (&back, &body.root, &err), 0, "%s", err.msg);
    cr_assert_str_eq (back.worker, "gpu-box-1");
    cr_assert_str_eq (back.type, "gpu");
    cmn_body_free (&body);
    msgpack_sbuffer_destroy (&sb);
}

Test (brk_route, a_worker_requirement_that_is_not_a_string_is_refused)
{
    cmn_body_t body;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&body, "\x81\xa6" "worker" "\x05", 9, &cmn_codec_limits_default,
                                   &err), 0, "%s", err.msg);
    brk_require_t req;
    cr_assert_eq (brk_require_parse (&req, &body.root, &err), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
    cr_assert (strstr (err.msg, "worker"), "%s", err.msg);
    cmn_body_free (&body);
}

Test (brk_route, the_longest_requirements_keep_distinct_keys)
{
    //  Every string field at its longest, the two differing only in the
    //  last byte of the worker: a key cut short would put them in one
    //  queue lane, and the lane's first requirement would decide for both.
    brk_require_t x = { .min_global_mem = UINT64_MAX, .opencl_c = 30 }, y;
    memset (x.vendor, 'v', sizeof x.vendor - 1);
    snprintf (x.type, sizeof x.type, "accelerator");
    memset (x.tag, 't', sizeof x.tag - 1);
    memset (x.worker, 'w', sizeof x.worker - 1);
    y = x;
    y.worker [sizeof y.worker - 2] = 'z';
    char kx [512], ky [512];
    brk_require_key (&x, kx, sizeof kx);
    brk_require_key (&y, ky, sizeof ky);
    cr_assert_lt (strlen (kx), sizeof kx - 1, "the key fits its buffer");
    cr_assert_str_neq (kx, ky);
}

Test (brk_route, target_requirement_matches_worker_or_device_name_part)
{
    //  rxq optimize --target: a worker's id or name exactly, or part of
    //  its device's name in any case.
    brk_caps_t a = { 0 }, b = { 0 };
    snprintf (a.id, sizeof a.id, "00aa11bb22");
    snprintf (a.name, sizeof a.name, "box-1");
    snprintf (a.device, sizeof a.device, "NVIDIA H200");
    snprintf (b.id, sizeof b.id, "00cc33dd44");
    snprintf (b.name, sizeof b.name, "box-2");
    snprintf (b.device, sizeof b.device, "pthread-Intel(R) Xeon(R)");
    const struct { const char *target; bool a, b; } cases [] = {
        { "h200", true, false }, { "NVIDIA", true, false }, { "xeon", false, true },
        { "box-2", false, true }, { "00aa11bb22", true, false }, { "box", false, false },
        { "radeon", false, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 1);
        cmn_pack_kv_str (&pk, "target", cases [i].target);
        cmn_body_t body;
        cmn_err_t err = { 0 };
        cr_assert_eq (cmn_body_decode (&body, sb.data, sb.size, &cmn_codec_limits_default, &err), 0);
        brk_require_t req;
        cr_assert_eq (brk_require_parse (&req, &body.root, &err), 0, "%s", err.msg);
        cr_assert_not (brk_require_empty (&req));
        cr_assert_eq (brk_route_match (&req, &a), cases [i].a, "%s vs a", cases [i].target);
        cr_assert_eq (brk_route_match (&req, &b), cases [i].b, "%s vs b", cases [i].target);
        cmn_body_free (&body);
        msgpack_sbuffer_destroy (&sb);
    }
    //  The device name comes from READY's device map.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    cmn_pack_kv_str (&pk, "name", "gfx1100");
    cmn_pack_kv_str (&pk, "vendor", "AMD");
    cmn_body_t body;
    cr_assert_eq (cmn_body_decode (&body, sb.data, sb.size, &cmn_codec_limits_default, NULL), 0);
    brk_caps_t c;
    brk_caps_parse (&c, &body.root, NULL);
    cr_assert_str_eq (c.device, "gfx1100");
    brk_caps_free (&c);
    cmn_body_free (&body);
    msgpack_sbuffer_destroy (&sb);
}

Test (brk_route, targets_differing_in_case_get_different_lanes)
{
    //  A target may be a worker name, matched exactly: its lane key keeps
    //  the case, and the longest one still fits the key.
    brk_require_t x = { 0 }, y = { 0 };
    snprintf (x.target, sizeof x.target, "Box");
    snprintf (y.target, sizeof y.target, "box");
    char kx [512], ky [512];
    brk_require_key (&x, kx, sizeof kx);
    brk_require_key (&y, ky, sizeof ky);
    cr_assert_str_neq (kx, ky);
    memset (x.vendor, 'v', sizeof x.vendor - 1);
    snprintf (x.type, sizeof x.type, "accelerator");
    memset (x.tag, 't', sizeof x.tag - 1);
    memset (x.worker, 'w', sizeof x.worker - 1);
    memset (x.target, 'd', sizeof x.target - 1);
    x.min_global_mem = UINT64_MAX;
    y = x;
    y.target [sizeof y.target - 2] = 'z';
    brk_require_key (&x, kx, sizeof kx);
    brk_require_key (&y, ky, sizeof ky);
    cr_assert_lt (strlen (kx), sizeof kx - 1, "the key fits its buffer");
    cr_assert_str_neq (kx, ky);
}

Test (brk_route, target_requirement_survives_a_broker_restart)
{
    //  The job record in Redis keeps the target like the other
    //  requirements: a recovered job is still routed by it.
    brk_job_t *job = brk_job_new ();
    cr_assert_not_null (job);
    snprintf (job->id, sizeof job->id, "j1");
    snprintf (job->kind, sizeof job->kind, "optimize");
    job->state = BRK_QUEUED;
    snprintf (job->require.target, sizeof job->require.target, "gpu-box-1");
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    brk_job_pack_record (job, &b.pk);
    brk_job_t *back = brk_job_new ();
    cr_assert_not_null (back);
    cr_assert_eq (brk_job_load (back, b.sb.data, b.sb.size), 0);
    cr_assert_str_eq (back->require.target, "gpu-box-1");
    msgpack_sbuffer_destroy (&b.sb);
    brk_job_destroy (&back);
    brk_job_destroy (&job);
}
