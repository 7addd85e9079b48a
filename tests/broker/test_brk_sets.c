/*  brk_sets: a batch's state-set moves written as one ZREM and one ZADD
 *  per set, and its job records as MSETs, chunked, against a real Redis. */
#include <criterion/criterion.h>
#include <stdio.h>
#include "brk_sets.h"
#include "support/tst_redis.h"

static long
s_zcard (brk_store_t *store, const char *key)
{
    redisReply *r = brk_store_command (store, "ZCARD %s", key);
    cr_assert (r && r->type == REDIS_REPLY_INTEGER);
    long n = (long) r->integer;
    freeReplyObject (r);
    return n;
}

Test (brk_sets, moves_are_batched_per_set_and_chunked, .timeout = 30)
{
    tst_redis_t r;
    cr_assert_eq (tst_redis_start (&r), 0);
    cmn_err_t err = { 0 };
    brk_store_t *store = brk_store_new (r.url, &err);
    cr_assert_not_null (store, "%s", err.msg);
    brk_sets_t *sets = brk_sets_new ();
    cr_assert_not_null (sets);

    //  More members than one command takes, so the chunking is used.
    enum { N = 2 * BRK_SETS_CHUNK + 7 };
    static char ids [N][16];
    for (int i = 0; i < N; i++) {
        snprintf (ids [i], sizeof ids [i], "job-%d", i);
        cr_assert_eq (brk_sets_add (sets, BRK_QUEUED, (uint64_t) i, ids [i]), 0);
    }
    cr_assert_eq (brk_sets_pending (sets), N);
    size_t before = brk_store_pending (store);
    brk_sets_append (sets, store, "t:");
    cr_assert_eq (brk_store_pending (store) - before, 3, "%d adds in 3 commands", N);
    cr_assert_eq (brk_sets_pending (sets), 0);
    cr_assert_eq (brk_store_flush (store), 0);
    cr_assert_eq (s_zcard (store, "t:state:queued"), N);
    redisReply *rep = brk_store_command (store, "ZSCORE t:state:queued job-1000");
    cr_assert (rep && rep->type == REDIS_REPLY_STRING && !strcmp (rep->str, "1000"));
    freeReplyObject (rep);

    //  Half of them move to leased: removes and adds in the same batch.
    for (int i = 0; i < N; i += 2) {
        cr_assert_eq (brk_sets_remove (sets, BRK_QUEUED, ids [i]), 0);
        cr_assert_eq (brk_sets_add (sets, BRK_LEASED, (uint64_t) i, ids [i]), 0);
    }
    brk_sets_append (sets, store, "t:");
    cr_assert_eq (brk_store_flush (store), 0);
    cr_assert_eq (s_zcard (store, "t:state:queued"), N / 2);
    cr_assert_eq (s_zcard (store, "t:state:leased"), (N + 1) / 2);
    rep = brk_store_command (store, "ZSCORE t:state:queued job-0");
    cr_assert (rep && rep->type == REDIS_REPLY_NIL, "job-0 left queued");
    freeReplyObject (rep);

    //  Nothing collected: nothing appended.
    before = brk_store_pending (store);
    brk_sets_append (sets, store, "t:");
    cr_assert_eq (brk_store_pending (store), before);

    brk_sets_destroy (&sets);
    brk_sets_destroy (&sets);
    cr_assert_null (sets);
    brk_store_destroy (&store);
    tst_redis_stop (&r, true);
    tst_redis_destroy (&r);
}

Test (brk_sets, records_go_out_as_chunked_msets_before_the_moves, .timeout = 30)
{
    tst_redis_t r;
    cr_assert_eq (tst_redis_start (&r), 0);
    cmn_err_t err = { 0 };
    brk_store_t *store = brk_store_new (r.url, &err);
    cr_assert_not_null (store, "%s", err.msg);
    brk_sets_t *sets = brk_sets_new ();
    cr_assert_not_null (sets);

    //  More records than one MSET takes; values with NULs and of several
    //  sizes, so lengths (not C strings) are what is written.
    enum { N = BRK_SETS_CHUNK + 3 };
    char key [32], value [300];
    for (int i = 0; i < N; i++) {
        snprintf (key, sizeof key, "t:job:%d", i);
        size_t len = (size_t) (i % 7) * 40 + 2;
        memset (value, 'a' + i % 26, len);
        value [1] = 0;
        cr_assert_eq (brk_sets_record (sets, key, value, len), 0);
    }
    cr_assert_eq (brk_sets_add (sets, BRK_QUEUED, 1, "job-1"), 0);
    cr_assert_eq (brk_sets_pending (sets), N + 1);
    size_t before = brk_store_pending (store);
    brk_sets_append (sets, store, "t:");
    cr_assert_eq (brk_store_pending (store) - before, 3, "%d records in 2 MSETs, one ZADD", N);
    cr_assert_eq (brk_sets_pending (sets), 0);
    cr_assert_eq (brk_store_flush (store), 0);
    for (int i = 0; i < N; i += 97) {
        redisReply *rep = brk_store_command (store, "GET t:job:%d", i);
        size_t len = (size_t) (i % 7) * 40 + 2;
        cr_assert (rep && rep->type == REDIS_REPLY_STRING);
        cr_assert_eq (rep->len, len, "record %d: %zu bytes", i, (size_t) rep->len);
        cr_assert_eq (rep->str [0], 'a' + i % 26);
        cr_assert_eq (rep->str [1], 0);
        freeReplyObject (rep);
    }
    cr_assert_eq (s_zcard (store, "t:state:queued"), 1);

    //  The buffer is reused: a second batch writes only its own records.
    cr_assert_eq (brk_sets_record (sets, "t:job:0", "new", 3), 0);
    before = brk_store_pending (store);
    brk_sets_append (sets, store, "t:");
    cr_assert_eq (brk_store_pending (store) - before, 1);
    cr_assert_eq (brk_store_flush (store), 0);
    redisReply *rep = brk_store_command (store, "GET t:job:0");
    cr_assert (rep && rep->type == REDIS_REPLY_STRING && !strcmp (rep->str, "new"));
    freeReplyObject (rep);

    brk_sets_destroy (&sets);
    brk_store_destroy (&store);
    tst_redis_stop (&r, true);
    tst_redis_destroy (&r);
}
