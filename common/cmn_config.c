/*  cmn_config: see cmn_config.h. */
#include "cmn_config.h"
#include <errno.h>
#include <stdlib.h>

const char *
cmn_config_str (const char *flag, const char *env, const char *def)
{
    if (flag)
        return flag;
    const char *v = env ? getenv (env) : NULL;
    return v && *v ? v : def;
}

int
cmn_config_long (const char *text, long min, long max, long *out, const char *what,
                 cmn_err_t *err)
{
    char *end = NULL;
    errno = 0;
    long v = text && *text ? strtol (text, &end, 10) : 0;
    if (!text || !*text || errno || *end || v < min || v > max)
        return cmn_err_set (err, RXQ_E_INVAL, "%s must be an integer between %ld and %ld, not '%s'",
                            what, min, max, text ? text : "");
    *out = v;
    return 0;
}
