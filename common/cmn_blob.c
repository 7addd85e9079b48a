/*  cmn_blob: see cmn_blob.h. */
#include "cmn_blob.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
cmn_blob_hash_init (cmn_blob_hash_t *h)
{
    assert (h);
    //  sodium_init is idempotent and thread-safe; SHA-256 itself needs no
    //  initialisation, but the library asks that it be called first.
    if (sodium_init () < 0)
        abort ();
    crypto_hash_sha256_init (&h->st);
    h->bytes = 0;
}

void
cmn_blob_hash_update (cmn_blob_hash_t *h, const void *data, size_t len)
{
    assert (h && (data || len == 0));
    if (len)
        crypto_hash_sha256_update (&h->st, data, len);
    h->bytes += len;
}

void
cmn_blob_hash_final (cmn_blob_hash_t *h, char hex [CMN_BLOB_HEX_LEN + 1])
{
    assert (h && hex);
    unsigned char digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final (&h->st, digest);
    sodium_bin2hex (hex, CMN_BLOB_HEX_LEN + 1, digest, sizeof digest);
}

int
cmn_blob_hash_file (const char *path, char hex [CMN_BLOB_HEX_LEN + 1], uint64_t *size,
                    cmn_err_t *err)
{
    assert (path && hex);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cmn_err_set (err, RXQ_E_IO, "cannot open %s: %s", path, strerror (errno));
    unsigned char *buf = malloc (CMN_BLOB_IO_BYTES);
    if (!buf) {
        close (fd);
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory hashing %s", path);
    }
    //  Sequential reads: tell the kernel, so readahead is generous and the
    //  pages can be dropped early (page cache is not our memory, but this
    //  keeps a multi-GB hash from evicting everything else).
    posix_fadvise (fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    cmn_blob_hash_t h;
    cmn_blob_hash_init (&h);
    int rc = 0;
    for (;;) {
        ssize_t n = read (fd, buf, CMN_BLOB_IO_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cmn_err_set (err, RXQ_E_IO, "cannot read %s: %s", path, strerror (errno));
            break;
        }
        if (n == 0)
            break;
        cmn_blob_hash_update (&h, buf, (size_t) n);
    }
    free (buf);
    close (fd);
    if (rc == 0) {
        cmn_blob_hash_final (&h, hex);
        if (size)
            *size = h.bytes;
    }
    return rc;
}

bool
cmn_blob_name_valid (const char *text, size_t len)
{
    if (!text || len != CMN_BLOB_HEX_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text [i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}
