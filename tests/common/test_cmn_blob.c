/*  cmn_blob: SHA-256 against the FIPS 180-4 example vectors (via
 *  libsodium; these guard the wrapper: hex encoding, streaming, the file
 *  hasher's buffer boundaries) and blob-name validation. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmn_blob.h"

static void
s_hash (const void *data, size_t len, char *hex)
{
    cmn_blob_hash_t h;
    cmn_blob_hash_init (&h);
    cmn_blob_hash_update (&h, data, len);
    cmn_blob_hash_final (&h, hex);
}

Test (cmn_blob, fips_180_4_one_block_and_empty)
{
    char hex [CMN_BLOB_HEX_LEN + 1];
    s_hash ("abc", 3, hex);
    cr_assert_str_eq (hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    s_hash ("", 0, hex);
    cr_assert_str_eq (hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test (cmn_blob, fips_180_4_two_blocks)
{
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char hex [CMN_BLOB_HEX_LEN + 1];
    s_hash (m, strlen (m), hex);
    cr_assert_str_eq (hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test (cmn_blob, fips_180_4_million_a_streamed_in_odd_pieces)
{
    //  1,000,000 x 'a', fed in pieces of 1, 63, 64, 65, 999 ... bytes so
    //  every split across the 64-byte block boundary is exercised.
    char *buf = malloc (1000000);
    memset (buf, 'a', 1000000);
    cmn_blob_hash_t h;
    cmn_blob_hash_init (&h);
    static const size_t pieces [] = { 1, 63, 64, 65, 999, 4096, 7 };
    size_t at = 0, i = 0;
    while (at < 1000000) {
        size_t n = pieces [i++ % 7];
        if (n > 1000000 - at)
            n = 1000000 - at;
        cmn_blob_hash_update (&h, buf + at, n);
        at += n;
    }
    cr_assert_eq (h.bytes, 1000000);
    char hex [CMN_BLOB_HEX_LEN + 1];
    cmn_blob_hash_final (&h, hex);
    cr_assert_str_eq (hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    //  The file hasher reads through a 1 MiB buffer: the same bytes in a
    //  file give the same name and the size.
    char path [] = "/tmp/rxq-blob-XXXXXX";
    int fd = mkstemp (path);
    cr_assert_geq (fd, 0);
    cr_assert_eq (write (fd, buf, 1000000), 1000000);
    close (fd);
    uint64_t size = 0;
    cmn_err_t err = { 0 };
    char fhex [CMN_BLOB_HEX_LEN + 1];
    cr_assert_eq (cmn_blob_hash_file (path, fhex, &size, &err), 0, "%s", err.msg);
    cr_assert_str_eq (fhex, hex);
    cr_assert_eq (size, 1000000);
    unlink (path);
    free (buf);
}

Test (cmn_blob, file_larger_than_the_buffer)
{
    //  3 MiB + 5 bytes: several full buffers and a short last read.
    size_t n = 3 * CMN_BLOB_IO_BYTES + 5;
    unsigned char *buf = malloc (n);
    for (size_t i = 0; i < n; i++)
        buf [i] = (unsigned char) (i * 2654435761u >> 24);
    char want [CMN_BLOB_HEX_LEN + 1], got [CMN_BLOB_HEX_LEN + 1];
    s_hash (buf, n, want);
    char path [] = "/tmp/rxq-blob-XXXXXX";
    int fd = mkstemp (path);
    cr_assert_eq (write (fd, buf, n), (ssize_t) n);
    close (fd);
    cr_assert_eq (cmn_blob_hash_file (path, got, NULL, NULL), 0);
    cr_assert_str_eq (got, want);
    unlink (path);
    free (buf);
}

Test (cmn_blob, missing_file_names_the_path)
{
    cmn_err_t err = { 0 };
    char hex [CMN_BLOB_HEX_LEN + 1];
    cr_assert_eq (cmn_blob_hash_file ("/nonexistent/model.gguf", hex, NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_IO);
    cr_assert (strstr (err.msg, "/nonexistent/model.gguf"), "%s", err.msg);
}

Test (cmn_blob, names_are_64_lowercase_hex_digits)
{
    const char *good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    cr_assert (cmn_blob_name_valid (good, 64));
    cr_assert_not (cmn_blob_name_valid (good, 63));
    cr_assert_not (cmn_blob_name_valid (NULL, 64));
    char bad [65];
    memcpy (bad, good, 65);
    bad [10] = 'A';
    cr_assert_not (cmn_blob_name_valid (bad, 64), "upper case is not a name");
    bad [10] = 'g';
    cr_assert_not (cmn_blob_name_valid (bad, 64));
    bad [10] = '/';
    cr_assert_not (cmn_blob_name_valid (bad, 64), "no path characters");
}
