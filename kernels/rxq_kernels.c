/*  rxq_kernels: look up embedded OpenCL sources, or read them from
 *  RXQ_KERNEL_DIR while developing kernels. */
#include "rxq_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
s_read_file (const char *path, size_t *size_p)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek (f, 0, SEEK_END) == 0) {
        long len = ftell (f);
        if (len >= 0 && fseek (f, 0, SEEK_SET) == 0) {
            buf = malloc ((size_t) len + 1);
            if (buf && fread (buf, 1, (size_t) len, f) == (size_t) len) {
                buf [len] = 0;
                if (size_p)
                    *size_p = (size_t) len;
            }
            else {
                free (buf);
                buf = NULL;
            }
        }
    }
    fclose (f);
    return buf;
}

char *
rxq_kernels_load (const char *name, size_t *size_p)
{
    const char *dir = getenv ("RXQ_KERNEL_DIR");
    if (dir && *dir) {
        char path [4096];
        if (snprintf (path, sizeof path, "%s/%s", dir, name) < (int) sizeof path) {
            char *text = s_read_file (path, size_p);
            if (text)
                return text;
        }
        //  Not in the development directory (the shared header lives in
        //  common/, for example): fall back to the embedded copy.
    }
    for (const rxq_kernel_file_t *k = rxq_kernel_files; k->name; k++)
        if (strcmp (k->name, name) == 0) {
            char *copy = malloc (k->size + 1);
            if (!copy)
                return NULL;
            memcpy (copy, k->data, k->size + 1);
            if (size_p)
                *size_p = k->size;
            return copy;
        }
    return NULL;
}
