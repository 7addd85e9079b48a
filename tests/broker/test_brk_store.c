/*  brk_store: URL parsing, connection errors, pipelined writes. */
#include <criterion/criterion.h>
#include "brk_store.h"
#include "support/tst_redis.h"

Test (brk_store, bad_urls_are_refused_with_a_message)
{
    const char *bad [] = { "http://x", "redis://", "redis://host:0", "redis://host:99999",
                           "redis://host:12ab", "redis://host:6379/x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        cmn_err_t err = { 0 };
        cr_assert_null (brk_store_new (bad [i], &err), "%s accepted", bad [i]);
        cr_assert_eq (err.code, RXQ_E_INVAL, "%s: %s", bad [i], err.msg);
        cr_assert_gt (strlen (err.msg), 10);
    }
}

Test (brk_store, unreachable_redis_names_the_address)
{
    cmn_err_t err = { 0 };
    int port = tst_free_port ();
    char url [64];
    snprintf (url, sizeof url, "redis://127.0.0.1:%d", port);
    cr_assert_null (brk_store_new (url, &err));
    cr_assert_eq (err.code, RXQ_E_REDIS_CONNECT);
    char want [32];
    snprintf (want, sizeof want, "%d", port);
    cr_assert (strstr (err.msg, want), "message: %s", err.msg);
}

Test (brk_store, pipeline_writes_and_reports_error_replies, .timeout = 30)
{
    tst_redis_t r;
    cr_assert_eq (tst_redis_start (&r), 0);
    cmn_err_t err = { 0 };
    brk_store_t *s = brk_store_new (r.url, &err);
    cr_assert_not_null (s, "%s", err.msg);
    for (int i = 0; i < 1000; i++)
        brk_store_append (s, "RPUSH list %d", i);
    cr_assert_eq (brk_store_pending (s), 1000);
    cr_assert_eq (brk_store_flush (s), 0);
    redisReply *rep = brk_store_command (s, "LLEN list");
    cr_assert_eq (rep->integer, 1000);
    freeReplyObject (rep);
    brk_store_append (s, "INCR list");      // WRONGTYPE
    cr_assert_eq (brk_store_flush (s), -1);
    cr_assert_eq (brk_store_error (s)->code, RXQ_E_REDIS_REPLY);
    cr_assert (brk_store_ok (s), "an error reply must not drop the connection");
    tst_redis_stop (&r, true);
    brk_store_append (s, "PING");
    cr_assert_eq (brk_store_flush (s), -1);
    cr_assert_not (brk_store_ok (s));
    brk_store_destroy (&s);
    brk_store_destroy (&s);
    tst_redis_destroy (&r);
}
