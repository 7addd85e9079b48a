/*  test_wrk_device: device selection, description, program builds and the
 *  on-disk program cache, on whatever OpenCL device the machine has (PoCL's
 *  CPU device in CI). Each Criterion test runs in its own process, so
 *  setenv (RXQ_KERNEL_DIR) in one test does not leak into another.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "wrk_device.h"
#include "cmn_codec.h"

static wrk_device_t *
s_open (const char *selector, const char *cache_dir)
{
    cmn_err_t err = { 0 };
    wrk_device_t *dev = wrk_device_new (selector, cache_dir, &err);
    cr_assert_not_null (dev, "wrk_device_new (%s): %s", selector ? selector : "NULL", err.msg);
    cr_assert_eq (err.code, 0);
    return dev;
}

static char *
s_tempdir (void)
{
    char *dir = strdup ("/tmp/rxq-test-dev-XXXXXX");
    cr_assert_not_null (mkdtemp (dir));
    return dir;
}

static void
s_rmtree (const char *dir)
{
    DIR *d = opendir (dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir (d)) != NULL) {
        if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
            continue;
        char path [4096];
        snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
        unlink (path);
    }
    closedir (d);
    rmdir (dir);
}

//  Counts files in DIR (not dot files) whose name ends with SUFFIX ("" for
//  any); stores the last one's path in PATH.
static int
s_count_files (const char *dir, const char *suffix, char *path, size_t size)
{
    DIR *d = opendir (dir);
    cr_assert_not_null (d);
    int count = 0;
    struct dirent *e;
    size_t slen = strlen (suffix);
    while ((e = readdir (d)) != NULL) {
        size_t len = strlen (e->d_name);
        if (e->d_name [0] == '.')
            continue;
        if (len > slen && strcmp (e->d_name + len - slen, suffix) == 0) {
            count++;
            if (path)
                snprintf (path, size, "%s/%s", dir, e->d_name);
        }
    }
    closedir (d);
    return count;
}

static void
s_write_file (const char *path, const char *text)
{
    FILE *f = fopen (path, "wb");
    cr_assert_not_null (f, "cannot write %s", path);
    fputs (text, f);
    fclose (f);
}

//  Runs copy_f4 from PROGRAM over 1000 float4s and checks the output.
static void
s_run_copy (wrk_device_t *dev, cl_program program)
{
    enum { N4 = 1000 };
    float in [N4 * 4], out [N4 * 4];
    for (int i = 0; i < N4 * 4; i++) {
        in [i] = (float) i * 0.5f - 7.0f;
        out [i] = -1.0f;
    }
    cl_int rc;
    cl_kernel k = clCreateKernel (program, "copy_f4", &rc);
    cr_assert_not_null (k, "clCreateKernel: %d", rc);
    cl_mem src = clCreateBuffer (wrk_device_context (dev), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                 sizeof in, in, &rc);
    cr_assert_not_null (src);
    cl_mem dst = clCreateBuffer (wrk_device_context (dev), CL_MEM_WRITE_ONLY, sizeof out,
                                 NULL, &rc);
    cr_assert_not_null (dst);
    cl_uint n = N4;
    cr_assert_eq (clSetKernelArg (k, 0, sizeof src, &src), CL_SUCCESS);
    cr_assert_eq (clSetKernelArg (k, 1, sizeof dst, &dst), CL_SUCCESS);
    cr_assert_eq (clSetKernelArg (k, 2, sizeof n, &n), CL_SUCCESS);
    size_t local = 64, global = 1024;  // more items than elements: the tail must idle
    cl_event ev;
    cr_assert_eq (clEnqueueNDRangeKernel (wrk_device_queue (dev), k, 1, NULL, &global, &local,
                                          0, NULL, &ev), CL_SUCCESS);
    cr_assert_eq (clEnqueueReadBuffer (wrk_device_queue (dev), dst, CL_TRUE, 0, sizeof out, out,
                                       1, &ev, NULL), CL_SUCCESS);
    cr_assert_gt (wrk_device_event_ns (ev), 0, "profiling gave no time");
    cr_assert_eq (memcmp (in, out, sizeof in), 0, "copy_f4 output differs from input");
    clReleaseEvent (ev);
    clReleaseMemObject (src);
    clReleaseMemObject (dst);
    clReleaseKernel (k);
}

Test (wrk_device, open_default_info_sane)
{
    wrk_device_t *dev = s_open (NULL, NULL);
    const wrk_device_info_t *info = wrk_device_info (dev);
    cr_assert_gt (strlen (info->platform), 0);
    cr_assert_gt (strlen (info->name), 0);
    cr_assert_gt (strlen (info->driver), 0);
    cr_assert (strncmp (info->version, "OpenCL ", 7) == 0, "version '%s'", info->version);
    cr_assert (strncmp (info->opencl_c, "OpenCL C ", 9) == 0, "opencl_c '%s'", info->opencl_c);
    cr_assert (strcmp (info->type, "gpu") == 0 || strcmp (info->type, "cpu") == 0
            || strcmp (info->type, "accelerator") == 0 || strcmp (info->type, "other") == 0,
               "type '%s'", info->type);
    cr_assert_geq (info->compute_units, 1);
    cr_assert_gt (info->global_mem, 0);
    cr_assert_gt (info->local_mem, 0);
    cr_assert_gt (info->max_alloc, 0);
    cr_assert_leq (info->max_alloc, info->global_mem);
    cr_assert_geq (info->max_wg, 1);
    cr_assert_not_null (wrk_device_context (dev));
    cr_assert_not_null (wrk_device_queue (dev));
    cr_assert_not_null (wrk_device_id (dev));

    //  The queue must be in order with profiling, as runners rely on both.
    cl_command_queue_properties props = 0;
    cr_assert_eq (clGetCommandQueueInfo (wrk_device_queue (dev), CL_QUEUE_PROPERTIES,
                                         sizeof props, &props, NULL), CL_SUCCESS);
    cr_assert (props & CL_QUEUE_PROFILING_ENABLE);
    cr_assert_not (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE);

    wrk_device_destroy (&dev);
    cr_assert_null (dev);
    wrk_device_destroy (&dev);      // idempotent
}

Test (wrk_device, pack_info_has_every_field)
{
    wrk_device_t *dev = s_open (NULL, NULL);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    wrk_device_pack_info (dev, &pk);
    cmn_body_t body;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&body, sb.data, sb.size, &cmn_codec_limits_default, &err),
                  0, "%s", err.msg);
    cr_assert_eq (body.root.via.map.size, 15);
    const char *strs [] = { "platform", "name", "vendor", "driver", "version", "opencl_c", "type" };
    for (size_t i = 0; i < sizeof strs / sizeof strs [0]; i++) {
        char text [256];
        cr_assert_eq (cmn_codec_get_cstr (&body.root, strs [i], text, sizeof text, &err), 0,
                      "field %s: %s", strs [i], err.msg);
    }
    const char *uints [] = { "compute_units", "global_mem", "local_mem", "max_alloc",
                             "max_clock_mhz", "max_wg" };
    for (size_t i = 0; i < sizeof uints / sizeof uints [0]; i++) {
        uint64_t v;
        cr_assert_eq (cmn_codec_get_uint (&body.root, uints [i], &v, &err), 0,
                      "field %s: %s", uints [i], err.msg);
    }
    bool fp16, fp64;
    cr_assert_eq (cmn_codec_get_bool (&body.root, "fp16", &fp16, &err), 0);
    cr_assert_eq (cmn_codec_get_bool (&body.root, "fp64", &fp64, &err), 0);
    uint64_t cu, max_alloc;
    cmn_codec_get_uint (&body.root, "compute_units", &cu, &err);
    cmn_codec_get_uint (&body.root, "max_alloc", &max_alloc, &err);
    cr_assert_eq (cu, wrk_device_info (dev)->compute_units);
    cr_assert_eq (max_alloc, wrk_device_info (dev)->max_alloc);
    char name [256];
    cmn_codec_get_cstr (&body.root, "name", name, sizeof name, &err);
    cr_assert_str_eq (name, wrk_device_info (dev)->name);
    cmn_body_free (&body);
    msgpack_sbuffer_destroy (&sb);
    wrk_device_destroy (&dev);
}

Test (wrk_device, selector_index_and_substring)
{
    wrk_device_t *dev = s_open ("0:0", NULL);
    char name [128];
    snprintf (name, sizeof name, "%s", wrk_device_info (dev)->name);
    wrk_device_destroy (&dev);

    //  Part of the device name, in another case, selects the same device.
    char sub [8] = "";
    size_t len = strlen (name);
    size_t take = len < 6 ? len : 6;
    for (size_t i = 0; i < take; i++)
        sub [i] = (char) toupper ((unsigned char) name [len - take + i]);
    sub [take] = 0;
    dev = s_open (sub, NULL);
    cr_assert_str_eq (wrk_device_info (dev)->name, name);
    wrk_device_destroy (&dev);
}

Test (wrk_device, selector_without_match_is_nodevice)
{
    cmn_err_t err = { 0 };
    wrk_device_t *dev = wrk_device_new ("no-such-device-xyz", NULL, &err);
    cr_assert_null (dev);
    cr_assert_eq (err.code, RXQ_E_NODEVICE);
    cr_assert (strstr (err.msg, "no-such-device-xyz"), "message: %s", err.msg);
    //  The message lists what exists.
    cr_assert (strstr (err.msg, "0:0"), "message: %s", err.msg);

    cmn_err_clear (&err);
    dev = wrk_device_new ("0:99", NULL, &err);
    cr_assert_null (dev);
    cr_assert_eq (err.code, RXQ_E_NODEVICE, "%s", err.msg);
}

Test (wrk_device, list_names_devices)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&buf, &size);
    int n = wrk_device_list (out);
    fclose (out);
    cr_assert_geq (n, 1);
    cr_assert (strncmp (buf, "0:0 ", 4) == 0, "listing: %s", buf);
    free (buf);
}

Test (wrk_device, cl_error_names_status)
{
    cmn_err_t err = { 0 };
    cr_assert_eq (wrk_device_cl_error (&err, "clCreateBuffer", CL_MEM_OBJECT_ALLOCATION_FAILURE),
                  -1);
    cr_assert_eq (err.code, RXQ_E_OPENCL);
    cr_assert_str_eq (err.msg, "clCreateBuffer: CL_MEM_OBJECT_ALLOCATION_FAILURE (-4)");
}

Test (wrk_device, program_builds_and_is_kept)
{
    wrk_device_t *dev = s_open (NULL, NULL);
    cmn_err_t err = { 0 };
    cl_program p = wrk_device_program (dev, "copy.cl", NULL, &err);
    cr_assert_not_null (p, "%s", err.msg);
    cr_assert_eq (wrk_device_stats (dev)->builds, 1);
    //  Same name and options: the same program, no second build.
    cr_assert_eq (wrk_device_program (dev, "copy.cl", "", &err), p);
    cr_assert_eq (wrk_device_stats (dev)->builds, 1);
    s_run_copy (dev, p);
    //  Other options: another program. An explicit -cl-std is kept as given.
    cl_program q = wrk_device_program (dev, "copy.cl", "-cl-std=CL1.2 -DUNUSED=1", &err);
    cr_assert_not_null (q, "%s", err.msg);
    cr_assert_neq (q, p);
    cr_assert_eq (wrk_device_stats (dev)->builds, 2);
    char opts [256] = "";
    cr_assert_eq (clGetProgramBuildInfo (p, wrk_device_id (dev), CL_PROGRAM_BUILD_OPTIONS,
                                         sizeof opts, opts, NULL), CL_SUCCESS);
    cr_assert (strstr (opts, "-cl-std=CL1.2"), "options: %s", opts);
    wrk_device_destroy (&dev);
}

Test (wrk_device, missing_source_is_notfound)
{
    wrk_device_t *dev = s_open (NULL, NULL);
    cmn_err_t err = { 0 };
    cr_assert_null (wrk_device_program (dev, "no_such_kernel.cl", NULL, &err));
    cr_assert_eq (err.code, RXQ_E_NOTFOUND);
    cr_assert (strstr (err.msg, "no_such_kernel.cl"), "%s", err.msg);
    wrk_device_destroy (&dev);
}

Test (wrk_device, broken_source_gives_build_log)
{
    char *dir = s_tempdir ();
    char path [4096];
    snprintf (path, sizeof path, "%s/broken.cl", dir);
    s_write_file (path, "__kernel void broken (__global float *x)\n"
                        "{\n    x [0] = undefined_thing_42;\n}\n");
    setenv ("RXQ_KERNEL_DIR", dir, 1);
    wrk_device_t *dev = s_open (NULL, NULL);
    cmn_err_t err = { 0 };
    cr_assert_null (wrk_device_program (dev, "broken.cl", NULL, &err));
    cr_assert_eq (err.code, RXQ_E_OPENCL_BUILD, "%d %s", err.code, err.msg);
    cr_assert (strstr (err.msg, "broken.cl"), "%s", err.msg);
    //  The start of the build log names the culprit.
    cr_assert (strstr (err.msg, "undefined_thing_42"), "%s", err.msg);
    cr_assert_eq (wrk_device_stats (dev)->builds, 0);
    //  Other sources still come from the embedded copies.
    cr_assert_not_null (wrk_device_program (dev, "copy.cl", NULL, &err), "%s", err.msg);
    wrk_device_destroy (&dev);
    unsetenv ("RXQ_KERNEL_DIR");
    s_rmtree (dir);
    free (dir);
}

Test (wrk_device, disk_cache_is_written_and_reused)
{
    char *dir = s_tempdir ();
    char cache [4200];
    snprintf (cache, sizeof cache, "%s/cache", dir);      // created by the device

    wrk_device_t *dev = s_open (NULL, cache);
    cmn_err_t err = { 0 };
    cr_assert_not_null (wrk_device_program (dev, "copy.cl", NULL, &err), "%s", err.msg);
    cr_assert_eq (wrk_device_stats (dev)->builds, 1);
    cr_assert_eq (wrk_device_stats (dev)->cache_hits, 0);
    cr_assert_eq (wrk_device_stats (dev)->cache_writes, 1);
    wrk_device_destroy (&dev);
    char file [4400];
    cr_assert_eq (s_count_files (cache, ".clbin", file, sizeof file), 1);
    cr_assert_eq (s_count_files (cache, "", NULL, 0), 1, "temporary file left behind");

    //  A restarted worker loads the binary instead of compiling, and it runs.
    dev = s_open (NULL, cache);
    cl_program p = wrk_device_program (dev, "copy.cl", NULL, &err);
    cr_assert_not_null (p, "%s", err.msg);
    cr_assert_eq (wrk_device_stats (dev)->cache_hits, 1);
    cr_assert_eq (wrk_device_stats (dev)->builds, 0);
    s_run_copy (dev, p);
    //  Other options are another cache entry.
    cr_assert_not_null (wrk_device_program (dev, "copy.cl", "-DX=1", &err), "%s", err.msg);
    cr_assert_eq (wrk_device_stats (dev)->builds, 1);
    cr_assert_eq (s_count_files (cache, ".clbin", NULL, 0), 2);
    wrk_device_destroy (&dev);

    s_rmtree (cache);
    s_rmtree (dir);
    free (dir);
}

Test (wrk_device, corrupt_cache_file_is_rebuilt)
{
    char *dir = s_tempdir ();
    wrk_device_t *dev = s_open (NULL, dir);
    cmn_err_t err = { 0 };
    cr_assert_not_null (wrk_device_program (dev, "copy.cl", NULL, &err), "%s", err.msg);
    wrk_device_destroy (&dev);
    char file [4400];
    cr_assert_eq (s_count_files (dir, ".clbin", file, sizeof file), 1);

    //  Truncated to half its size, as a crash mid-write without the rename
    //  would never leave it, but a full disk or a bad copy might.
    FILE *f = fopen (file, "rb");
    cr_assert_not_null (f);
    fseek (f, 0, SEEK_END);
    long size = ftell (f);
    fclose (f);
    cr_assert_eq (truncate (file, size / 2), 0);

    dev = s_open (NULL, dir);
    cl_program p = wrk_device_program (dev, "copy.cl", NULL, &err);
    cr_assert_not_null (p, "%s", err.msg);
    cr_assert_eq (wrk_device_stats (dev)->cache_rejects, 1);
    cr_assert_eq (wrk_device_stats (dev)->cache_hits, 0);
    cr_assert_eq (wrk_device_stats (dev)->builds, 1);
    cr_assert_eq (wrk_device_stats (dev)->cache_writes, 1);
    s_run_copy (dev, p);
    wrk_device_destroy (&dev);

    //  ... and the rewritten file is good again.
    dev = s_open (NULL, dir);
    cr_assert_not_null (wrk_device_program (dev, "copy.cl", NULL, &err), "%s", err.msg);
    cr_assert_eq (wrk_device_stats (dev)->cache_hits, 1);
    wrk_device_destroy (&dev);
    s_rmtree (dir);
    free (dir);
}

//  A cache file whose header is sound but whose binary the driver refuses
//  (another driver build with the same version string, say): the program
//  is rebuilt from source and the file replaced.
Test (wrk_device, binary_refused_by_driver_is_rebuilt)
{
    char *dir = s_tempdir ();
    wrk_device_t *dev = s_open (NULL, dir);
    cmn_err_t err = { 0 };
    cr_assert_not_null (wrk_device_program (dev, "copy.cl", NULL, &err), "%s", err.msg);
    wrk_device_destroy (&dev);
    char file [4400];
    cr_assert_eq (s_count_files (dir, ".clbin", file, sizeof file), 1);

    //  Keep the magic and key, replace the payload with noise and give it
    //  a matching size and FNV-1a 64 hash, as wrk_device.c lays files out.
    unsigned char buf [32 + 4096];
    FILE *f = fopen (file, "r+b");
    cr_assert_not_null (f);
    cr_assert_eq (fread (buf, 1, 16, f), 16);
    uint64_t size = 4096, hash = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; i++) {
        buf [32 + i] = (unsigned char) (i * 37 + 11);
        hash = (hash ^ buf [32 + i]) * 0x100000001b3ULL;
    }
    memcpy (buf + 16, &size, 8);
    memcpy (buf + 24, &hash, 8);
    fclose (f);
    f = fopen (file, "wb");
    cr_assert_eq (fwrite (buf, 1, sizeof buf, f), sizeof buf);
    fclose (f);

    dev = s_open (NULL, dir);
    cl_program p = wrk_device_program (dev, "copy.cl", NULL, &err);
    cr_assert_not_null (p, "%s", err.msg);
    cr_assert_eq (wrk_device_stats (dev)->cache_rejects, 1);
    cr_assert_eq (wrk_device_stats (dev)->cache_hits, 0);
    cr_assert_eq (wrk_device_stats (dev)->builds, 1);
    cr_assert_eq (wrk_device_stats (dev)->cache_writes, 1);
    s_run_copy (dev, p);
    wrk_device_destroy (&dev);
    s_rmtree (dir);
    free (dir);
}

//  The cache only saves compile time: a directory that cannot be made
//  disables it and the device still works.
Test (wrk_device, unusable_cache_dir_only_disables_cache)
{
    wrk_device_t *dev = s_open (NULL, "/dev/null/rxq-cache");
    cmn_err_t err = { 0 };
    cr_assert_not_null (wrk_device_program (dev, "copy.cl", NULL, &err), "%s", err.msg);
    cr_assert_eq (wrk_device_stats (dev)->builds, 1);
    cr_assert_eq (wrk_device_stats (dev)->cache_writes, 0);
    wrk_device_destroy (&dev);
}
