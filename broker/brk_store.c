/*  brk_store: see brk_store.h. */
#include "brk_store.h"
#include "cmn_log.h"
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _brk_store_t {
    char host [256];        // host name or address
    int port;               // TCP port
    char password [256];    // AUTH password, empty for none
    int db;                 // SELECT index
    char url [600];         // URL as given, password masked
    redisContext *ctx;      // NULL while disconnected
    size_t pending;         // commands appended since the last flush
    cmn_err_t err;          // last error
};

static int
s_parse_url (brk_store_t *self, const char *url, cmn_err_t *err)
{
    const char *p = url;
    if (strncmp (p, "redis://", 8) == 0)
        p += 8;
    else
    if (strstr (p, "://"))
        return cmn_err_set (err, RXQ_E_INVAL,
                            "unsupported Redis URL '%s' (expected redis://[:password@]host[:port][/db])",
                            url);
    const char *at = strrchr (p, '@');
    if (at) {
        const char *colon = memchr (p, ':', (size_t) (at - p));
        const char *pw = colon ? colon + 1 : p;
        size_t n = (size_t) (at - pw);
        if (n >= sizeof self->password)
            return cmn_err_set (err, RXQ_E_INVAL, "Redis password in URL is too long");
        memcpy (self->password, pw, n);
        self->password [n] = 0;
        p = at + 1;
    }
    const char *slash = strchr (p, '/');
    const char *colon = strchr (p, ':');
    if (colon && slash && colon > slash)
        colon = NULL;
    const char *host_end = colon ? colon : slash ? slash : p + strlen (p);
    size_t hn = (size_t) (host_end - p);
    if (hn == 0 || hn >= sizeof self->host)
        return cmn_err_set (err, RXQ_E_INVAL, "Redis URL '%s' has no valid host", url);
    memcpy (self->host, p, hn);
    self->host [hn] = 0;
    self->port = 6379;
    if (colon) {
        char *end;
        long port = strtol (colon + 1, &end, 10);
        if (end == colon + 1 || (*end && *end != '/') || port < 1 || port > 65535)
            return cmn_err_set (err, RXQ_E_INVAL, "Redis URL '%s' has an invalid port", url);
        self->port = (int) port;
    }
    self->db = 0;
    if (slash && slash [1]) {
        char *end;
        long db = strtol (slash + 1, &end, 10);
        if (*end || db < 0 || db > 65535)
            return cmn_err_set (err, RXQ_E_INVAL, "Redis URL '%s' has an invalid database", url);
        self->db = (int) db;
    }
    snprintf (self->url, sizeof self->url, "redis://%s%s:%d/%d",
              self->password [0] ? "***@" : "", self->host, self->port, self->db);
    return 0;
}

static void
s_drop (brk_store_t *self)
{
    if (self->ctx)
        redisFree (self->ctx);
    self->ctx = NULL;
    self->pending = 0;
}

int
brk_store_reconnect (brk_store_t *self)
{
    s_drop (self);
    struct timeval tv = { 2, 0 };
    redisContext *c = redisConnectWithTimeout (self->host, self->port, tv);
    if (!c || c->err) {
        cmn_err_set (&self->err, RXQ_E_REDIS_CONNECT, "cannot connect to Redis at %s: %s",
                     self->url, c ? c->errstr : "out of memory");
        if (c)
            redisFree (c);
        return -1;
    }
    //  Commands must not hang the broker if Redis stalls: fail the batch
    //  and treat Redis as unavailable instead.
    redisSetTimeout (c, tv);
    self->ctx = c;
    if (self->password [0]) {
        redisReply *r = brk_store_command (self, "AUTH %s", self->password);
        if (!r)
            return -1;
        freeReplyObject (r);
    }
    if (self->db) {
        redisReply *r = brk_store_command (self, "SELECT %d", self->db);
        if (!r)
            return -1;
        freeReplyObject (r);
    }
    redisReply *r = brk_store_command (self, "PING");
    if (!r)
        return -1;
    freeReplyObject (r);
    cmn_err_clear (&self->err);
    return 0;
}

brk_store_t *
brk_store_new (const char *url, cmn_err_t *err)
{
    brk_store_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    if (s_parse_url (self, url, err)
    ||  brk_store_reconnect (self)) {
        if (self->err.code && err)
            *err = self->err;
        brk_store_destroy (&self);
        return NULL;
    }
    return self;
}

void
brk_store_destroy (brk_store_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        s_drop (*self_p);
        free (*self_p);
        *self_p = NULL;
    }
}

bool
brk_store_ok (brk_store_t *self)
{
    return self->ctx != NULL;
}

void
brk_store_appendv (brk_store_t *self, int argc, const char **argv, const size_t *lens)
{
    if (!self->ctx)
        return;
    if (redisAppendCommandArgv (self->ctx, argc, argv, lens) == REDIS_OK)
        self->pending++;
}

void
brk_store_append (brk_store_t *self, const char *fmt, ...)
{
    if (!self->ctx)
        return;
    va_list ap;
    va_start (ap, fmt);
    if (redisvAppendCommand (self->ctx, fmt, ap) == REDIS_OK)
        self->pending++;
    va_end (ap);
}

size_t
brk_store_pending (brk_store_t *self)
{
    return self->pending;
}

int
brk_store_flush (brk_store_t *self)
{
    if (!self->ctx) {
        if (!self->err.code)
            cmn_err_set (&self->err, RXQ_E_REDIS_CONNECT, "not connected to Redis at %s", self->url);
        return -1;
    }
    int rc = 0;
    while (self->pending > 0) {
        void *reply = NULL;
        if (redisGetReply (self->ctx, &reply) != REDIS_OK) {
            cmn_err_set (&self->err, RXQ_E_REDIS, "Redis at %s: %s", self->url,
                         self->ctx->errstr [0] ? self->ctx->errstr : "connection lost");
            cmn_log_error ("%s", self->err.msg);
            s_drop (self);
            return -1;
        }
        self->pending--;
        redisReply *r = reply;
        if (r->type == REDIS_REPLY_ERROR && rc == 0) {
            cmn_err_set (&self->err, RXQ_E_REDIS_REPLY, "Redis at %s replied: %s", self->url, r->str);
            cmn_log_error ("%s", self->err.msg);
            rc = -1;
        }
        freeReplyObject (r);
    }
    return rc;
}

static redisReply *
s_check_reply (brk_store_t *self, redisReply *r)
{
    if (!r) {
        cmn_err_set (&self->err, RXQ_E_REDIS, "Redis at %s: %s", self->url,
                     self->ctx && self->ctx->errstr [0] ? self->ctx->errstr : "connection lost");
        s_drop (self);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cmn_err_set (&self->err, RXQ_E_REDIS_REPLY, "Redis at %s replied: %s", self->url, r->str);
        freeReplyObject (r);
        return NULL;
    }
    return r;
}

redisReply *
brk_store_command (brk_store_t *self, const char *fmt, ...)
{
    assert (self->pending == 0);
    if (!self->ctx) {
        cmn_err_set (&self->err, RXQ_E_REDIS_CONNECT, "not connected to Redis at %s", self->url);
        return NULL;
    }
    va_list ap;
    va_start (ap, fmt);
    redisReply *r = redisvCommand (self->ctx, fmt, ap);
    va_end (ap);
    return s_check_reply (self, r);
}

redisReply *
brk_store_commandv (brk_store_t *self, int argc, const char **argv, const size_t *lens)
{
    assert (self->pending == 0);
    if (!self->ctx) {
        cmn_err_set (&self->err, RXQ_E_REDIS_CONNECT, "not connected to Redis at %s", self->url);
        return NULL;
    }
    return s_check_reply (self, redisCommandArgv (self->ctx, argc, argv, lens));
}

const cmn_err_t *
brk_store_error (brk_store_t *self)
{
    return &self->err;
}

const char *
brk_store_url (brk_store_t *self)
{
    return self->url;
}
