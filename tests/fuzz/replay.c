/*  replay: feeds every file in the given directories (or single files)
 *  through a fuzz target's LLVMFuzzerTestOneInput, so that corpora and
 *  fixtures run in normal CI without clang's libFuzzer. Exits non-zero if
 *  a file cannot be read; crashes show up as crashes (run under ASan).
 *
 *  Usage: replay_<target> PATH...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
s_run_file (const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f) {
        fprintf (stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc (cap);
    size_t n;
    while (buf && (n = fread (buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *bigger = realloc (buf, cap * 2);
            if (!bigger) {
                free (buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose (f);
    if (!buf) {
        fprintf (stderr, "replay: out of memory reading %s\n", path);
        return -1;
    }
    //  An exact-size copy lets ASan catch reads one past the end.
    uint8_t *exact = malloc (len ? len : 1);
    if (!exact) {
        free (buf);
        return -1;
    }
    memcpy (exact, buf, len);
    free (buf);
    LLVMFuzzerTestOneInput (exact, len);
    free (exact);
    return 0;
}

int
main (int argc, char **argv)
{
    int rc = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat (argv [i], &st) < 0) {
            fprintf (stderr, "replay: no such path %s\n", argv [i]);
            rc = 1;
            continue;
        }
        if (!S_ISDIR (st.st_mode)) {
            rc |= s_run_file (argv [i]) ? 1 : 0;
            count++;
            continue;
        }
        DIR *d = opendir (argv [i]);
        struct dirent *e;
        while (d && (e = readdir (d))) {
            if (e->d_name [0] == '.')
                continue;
            char path [4096];
            snprintf (path, sizeof path, "%s/%s", argv [i], e->d_name);
            if (stat (path, &st) == 0 && S_ISREG (st.st_mode)) {
                rc |= s_run_file (path) ? 1 : 0;
                count++;
            }
        }
        if (d)
            closedir (d);
    }
    printf ("replay: %d inputs\n", count);
    return rc;
}
