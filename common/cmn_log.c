/*  cmn_log: see cmn_log.h. */
#include "cmn_log.h"
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static cmn_log_level_t s_level = CMN_LOG_INFO;
static char s_tag [32] = "rxq";

void
cmn_log_init (const char *tag, cmn_log_level_t level)
{
    snprintf (s_tag, sizeof s_tag, "%s", tag ? tag : "rxq");
    s_level = level;
}

int
cmn_log_level_parse (const char *text)
{
    static const char *names [] = { "error", "warn", "info", "debug" };
    for (int i = 0; text && i < 4; i++)
        if (strcasecmp (text, names [i]) == 0)
            return i;
    return -1;
}

cmn_log_level_t
cmn_log_level (void)
{
    return s_level;
}

void
cmn_log (cmn_log_level_t level, const char *fmt, ...)
{
    if (level > s_level)
        return;
    static const char letters [] = "EWID";
    struct timeval tv;
    gettimeofday (&tv, NULL);
    struct tm tm;
    gmtime_r (&tv.tv_sec, &tm);
    char line [2048];
    int n = snprintf (line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %c %s: ",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                      tm.tm_min, tm.tm_sec, (int) (tv.tv_usec / 1000),
                      letters [level], s_tag);
    va_list ap;
    va_start (ap, fmt);
    if (n > 0 && n < (int) sizeof line)
        vsnprintf (line + n, sizeof line - (size_t) n, fmt, ap);
    va_end (ap);
    //  One call per record, so lines from several threads do not interleave.
    fprintf (stderr, "%s\n", line);
}
