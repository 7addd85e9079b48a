/*  wrk_blobs: the worker's LRU blob cache, against a real rxq-broker with
 *  a blob store (started as a process on a test Redis): misses fetch and
 *  verify, hits do not, the least recently used blob goes first when the
 *  cap is passed (never the one just fetched), the order survives a
 *  restart, and outputs put through the cache reach the broker.
 */
#include <criterion/criterion.h>
#include <czmq.h>
#include <sys/stat.h>
#include "cmn_xfer.h"
#include "support/tst_proc.h"
#include "support/tst_redis.h"
#include "wrk_blobs.h"

static tst_redis_t s_redis;
static tst_proc_t s_broker;
static char s_dir [64];
static char s_endpoint [64];

static void
s_init (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/rxq-wblobs-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
    cr_assert_eq (tst_redis_start (&s_redis), 0);
    int port = tst_free_port ();
    snprintf (s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", port);
    char data [128], log [128];
    snprintf (data, sizeof data, "%s/broker", s_dir);
    snprintf (log, sizeof log, "%s/broker.log", s_dir);
    char *argv [] = { (char *) tst_bin ("rxq-broker"), "--bind", s_endpoint, "--redis",
                      s_redis.url, "--data-dir", data, NULL };
    cr_assert_eq (tst_proc_start (&s_broker, log, argv), 0);
    //  Ready when it answers (an unknown blob is refused, not ignored).
    cmn_xfer_t *x = cmn_xfer_new (s_endpoint, NULL);
    cmn_xfer_set_timeout (x, 200);
    cmn_err_t err = { 0 };
    int64_t end = zclock_mono () + 10000;
    do
        cmn_xfer_get (x, "0000000000000000000000000000000000000000000000000000000000000000",
                      "/dev/null", NULL, &err);
    while (err.code == RXQ_E_UNREACHABLE && zclock_mono () < end);
    cr_assert_eq (err.code, RXQ_E_NOTFOUND, "broker not ready: %s", err.msg);
    cmn_xfer_destroy (&x);
}

static void
s_fini (void)
{
    tst_proc_stop (&s_broker, 3000);
    tst_redis_destroy (&s_redis);
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    if (system (cmd) != 0)
        cr_log_warn ("could not remove %s", s_dir);
}

//  Writes N bytes of pattern SEED to a file and uploads it; HASH gets its
//  name.
static void
s_upload (size_t n, unsigned seed, char *hash)
{
    char path [128];
    snprintf (path, sizeof path, "%s/src-%u", s_dir, seed);
    FILE *f = fopen (path, "wb");
    cr_assert_not_null (f);
    for (size_t i = 0; i < n; i++)
        fputc ((int) ((i * 31 + seed * 7919) >> 3 & 0xff), f);
    fclose (f);
    cmn_err_t err = { 0 };
    cmn_xfer_t *x = cmn_xfer_new (s_endpoint, &err);
    cr_assert_eq (cmn_xfer_put (x, path, hash, NULL, NULL, &err), 0, "%s", err.msg);
    cmn_xfer_destroy (&x);
}

TestSuite (wrk_blobs, .init = s_init, .fini = s_fini, .timeout = 60);

Test (wrk_blobs, lru_under_a_size_cap)
{
    char a [65], b [65], c [65];
    s_upload (400000, 1, a);
    s_upload (400000, 2, b);
    s_upload (400000, 3, c);
    char dir [128], path [4096];
    snprintf (dir, sizeof dir, "%s/cache/blobs", s_dir);
    cmn_err_t err = { 0 };
    wrk_blobs_t *w = wrk_blobs_new (dir, 1000000, s_endpoint, &err);
    cr_assert_not_null (w, "%s", err.msg);
    bool hit = true;
    cr_assert_eq (wrk_blobs_fetch (w, a, path, sizeof path, &hit, NULL, NULL, &err), 0, "%s",
                  err.msg);
    cr_assert_not (hit, "first fetch is a miss");
    char got [65];
    cr_assert_eq (cmn_blob_hash_file (path, got, NULL, NULL), 0);
    cr_assert_str_eq (got, a);
    cr_assert_eq (wrk_blobs_fetch (w, a, path, sizeof path, &hit, NULL, NULL, &err), 0);
    cr_assert (hit, "second fetch is a hit");
    zclock_sleep (5);
    cr_assert_eq (wrk_blobs_fetch (w, b, path, sizeof path, &hit, NULL, NULL, &err), 0);
    cr_assert_eq (wrk_blobs_bytes (w), 800000);
    zclock_sleep (5);
    //  A used again: B is now the least recently used.
    cr_assert_eq (wrk_blobs_fetch (w, a, path, sizeof path, &hit, NULL, NULL, &err), 0);
    cr_assert (hit);
    zclock_sleep (5);
    cr_assert_eq (wrk_blobs_fetch (w, c, path, sizeof path, &hit, NULL, NULL, &err), 0);
    cr_assert_not (hit);
    cr_assert (wrk_blobs_has (w, a));
    cr_assert_not (wrk_blobs_has (w, b), "the least recently used blob is evicted");
    cr_assert (wrk_blobs_has (w, c));
    cr_assert_eq (wrk_blobs_bytes (w), 800000);
    cr_assert_eq (wrk_blobs_count (w), 2);
    char bpath [4096];
    snprintf (bpath, sizeof bpath, "%s/%s", dir, b);
    cr_assert_neq (access (bpath, F_OK), 0, "an evicted blob's file is removed");
    wrk_blobs_destroy (&w);
    wrk_blobs_destroy (&w);

    //  A restart indexes what is there, in the same order (mtime): the
    //  next eviction takes A (used before C).
    w = wrk_blobs_new (dir, 1000000, s_endpoint, &err);
    cr_assert_not_null (w, "%s", err.msg);
    cr_assert_eq (wrk_blobs_count (w), 2);
    cr_assert_eq (wrk_blobs_bytes (w), 800000);
    cr_assert_eq (wrk_blobs_fetch (w, b, path, sizeof path, &hit, NULL, NULL, &err), 0);
    cr_assert_not (wrk_blobs_has (w, a));
    cr_assert (wrk_blobs_has (w, c));
    cr_assert (wrk_blobs_has (w, b));
    wrk_blobs_destroy (&w);

    //  A smaller cap at start evicts down to it.
    w = wrk_blobs_new (dir, 500000, s_endpoint, &err);
    cr_assert_not_null (w);
    cr_assert_eq (wrk_blobs_count (w), 1);
    cr_assert (wrk_blobs_has (w, b), "the most recently used stays");
    wrk_blobs_destroy (&w);
}

Test (wrk_blobs, errors_leave_nothing_in_the_cache)
{
    char dir [128], path [4096];
    snprintf (dir, sizeof dir, "%s/cache2", s_dir);
    cmn_err_t err = { 0 };
    wrk_blobs_t *w = wrk_blobs_new (dir, 1 << 20, s_endpoint, &err);
    cr_assert_not_null (w, "%s", err.msg);
    cr_assert_eq (wrk_blobs_fetch (w, "1111111111111111111111111111111111111111111111111111111111111111",
                                   path, sizeof path, NULL, NULL, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_NOTFOUND, "%s", err.msg);
    cr_assert_eq (wrk_blobs_fetch (w, "../../etc/passwd", path, sizeof path, NULL, NULL, NULL,
                                   &err), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
    cr_assert_eq (wrk_blobs_count (w), 0);
    //  Only the tmp directory is there.
    char cmd [256];
    snprintf (cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", dir);
    cr_assert_eq (system (cmd), 0, "a failed fetch left files in %s", dir);
    wrk_blobs_destroy (&w);
    //  Not a directory.
    char file [128];
    snprintf (file, sizeof file, "%s/plain", s_dir);
    fclose (fopen (file, "w"));
    cr_assert_null (wrk_blobs_new (file, 1 << 20, s_endpoint, &err));
    cr_assert_eq (err.code, RXQ_E_IO);
    cr_assert (strstr (err.msg, file), "%s", err.msg);
}

Test (wrk_blobs, put_uploads_and_keeps_the_output)
{
    char dir [128], tmp [4096], path [4096];
    snprintf (dir, sizeof dir, "%s/cache3", s_dir);
    cmn_err_t err = { 0 };
    wrk_blobs_t *w = wrk_blobs_new (dir, 1 << 20, s_endpoint, &err);
    cr_assert_not_null (w, "%s", err.msg);
    cr_assert_eq (wrk_blobs_tmp_path (w, ".gguf", tmp, sizeof tmp), 0);
    FILE *f = fopen (tmp, "wb");
    cr_assert_not_null (f, "%s", tmp);
    fputs ("quantized output", f);
    fclose (f);
    char hash [65];
    uint64_t size = 0;
    cr_assert_eq (wrk_blobs_put (w, tmp, hash, &size, &err), 0, "%s", err.msg);
    cr_assert_eq (size, 16);
    cr_assert_neq (access (tmp, F_OK), 0, "moved into the cache");
    cr_assert (wrk_blobs_has (w, hash));
    bool hit = false;
    cr_assert_eq (wrk_blobs_fetch (w, hash, path, sizeof path, &hit, NULL, NULL, &err), 0);
    cr_assert (hit);
    //  The broker has it too.
    char out [128];
    snprintf (out, sizeof out, "%s/back", s_dir);
    cmn_xfer_t *x = cmn_xfer_new (s_endpoint, &err);
    cr_assert_eq (cmn_xfer_get (x, hash, out, &size, &err), 0, "%s", err.msg);
    cr_assert_eq (size, 16);
    cmn_xfer_destroy (&x);
    wrk_blobs_destroy (&w);
}
