/*  cmn_codec: round trips, typed accessors, and rejection of malformed
 *  bodies (truncated, wrong types, oversized, deeply nested, lying counts). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "cmn_codec.h"
#include "cmn_proto.h"

static const cmn_codec_limits_t *L = &cmn_codec_limits_default;

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} s_buf_t;

static msgpack_packer *
s_begin (s_buf_t *b)
{
    msgpack_sbuffer_init (&b->sb);
    msgpack_packer_init (&b->pk, &b->sb, msgpack_sbuffer_write);
    return &b->pk;
}

Test (cmn_codec, round_trip_every_field_type)
{
    s_buf_t b;
    msgpack_packer *pk = s_begin (&b);
    msgpack_pack_map (pk, 8);
    cmn_pack_kv_str (pk, "s", "hello");
    cmn_pack_kv_uint (pk, "u", UINT64_MAX);
    cmn_pack_kv_int (pk, "i", -42);
    cmn_pack_kv_double (pk, "d", 2.5);
    cmn_pack_kv_bool (pk, "b", true);
    cmn_pack_key (pk, "m");
    msgpack_pack_map (pk, 1);
    cmn_pack_kv_uint (pk, "x", 1);
    cmn_pack_key (pk, "a");
    msgpack_pack_array (pk, 2);
    msgpack_pack_nil (pk);
    msgpack_pack_bin (pk, 3);
    msgpack_pack_bin_body (pk, "\x00\x01\x02", 3);
    cmn_pack_kv_strn (pk, "n", "ab\0c", 4);
    cmn_body_t body;
    cmn_err_t err = { 0 };
    cr_assert_eq (cmn_body_decode (&body, b.sb.data, b.sb.size, L, &err), 0, "%s", err.msg);
    const char *s;
    size_t n;
    uint64_t u;
    int64_t i;
    double d;
    bool bo;
    const msgpack_object *m, *a;
    cr_assert_eq (cmn_codec_get_str (&body.root, "s", &s, &n, &err), 0);
    cr_assert (n == 5 && memcmp (s, "hello", 5) == 0);
    cr_assert_eq (cmn_codec_get_uint (&body.root, "u", &u, &err), 0);
    cr_assert_eq (u, UINT64_MAX);
    cr_assert_eq (cmn_codec_get_int (&body.root, "i", &i, &err), 0);
    cr_assert_eq (i, -42);
    cr_assert_eq (cmn_codec_get_double (&body.root, "d", &d, &err), 0);
    cr_assert_float_eq (d, 2.5, 0);
    cr_assert_eq (cmn_codec_get_bool (&body.root, "b", &bo, &err), 0);
    cr_assert (bo);
    cr_assert_eq (cmn_codec_get_map (&body.root, "m", &m, &err), 0);
    cr_assert_eq (cmn_codec_get_array (&body.root, "a", &a, &err), 0);
    cr_assert_eq (a->via.array.size, 2);
    //  Absent fields say so without an error.
    cr_assert_eq (cmn_codec_get_uint (&body.root, "missing", &u, &err), 1);
    //  Wrong types name the field.
    cr_assert_eq (cmn_codec_get_uint (&body.root, "s", &u, &err), -1);
    cr_assert (strstr (err.msg, "'s'"), "%s", err.msg);
    cr_assert_eq (cmn_codec_get_int (&body.root, "u", &i, &err), -1);
    //  A string with a NUL cannot become a C string.
    char out [16];
    cr_assert_eq (cmn_codec_get_cstr (&body.root, "n", out, sizeof out, &err), -1);
    cr_assert_eq (cmn_codec_get_cstr (&body.root, "s", out, 4, &err), -1);
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    char *json = cmn_codec_to_json (&body.root);
    cr_assert_str_eq (json, "{\"s\":\"hello\",\"u\":18446744073709551615,\"i\":-42,\"d\":2.5,"
                      "\"b\":true,\"m\":{\"x\":1},\"a\":[null,{\"bin\":\"000102\"}],"
                      "\"n\":\"ab\\u0000c\"}");
    free (json);
    cmn_body_free (&body);
    cmn_body_free (&body);
    msgpack_sbuffer_destroy (&b.sb);
}

static int
s_check (const void *buf, size_t len, cmn_err_t *err)
{
    return cmn_codec_check (buf, len, L, err);
}

Test (cmn_codec, truncated_at_every_length_is_refused)
{
    s_buf_t b;
    msgpack_packer *pk = s_begin (&b);
    msgpack_pack_map (pk, 3);
    cmn_pack_kv_str (pk, "kind", "bench.device");
    cmn_pack_kv_uint (pk, "req", 70000);
    cmn_pack_key (pk, "params");
    msgpack_pack_map (pk, 1);
    cmn_pack_kv_double (pk, "x", 1.5);
    for (size_t n = 0; n < b.sb.size; n++) {
        cmn_err_t err = { 0 };
        cr_assert_eq (s_check (b.sb.data, n, &err), -1, "prefix of %zu bytes accepted", n);
        cr_assert (err.code == RXQ_E_PROTO, "prefix %zu: %s", n, err.msg);
    }
    cr_assert_eq (s_check (b.sb.data, b.sb.size, NULL), 0);
    msgpack_sbuffer_destroy (&b.sb);
}

Test (cmn_codec, trailing_bytes_and_non_map_bodies_refused)
{
    cmn_err_t err = { 0 };
    cr_assert_eq (s_check ("\x80\x80", 2, &err), -1);
    cr_assert (strstr (err.msg, "trailing"), "%s", err.msg);
    cmn_body_t body;
    cr_assert_eq (cmn_body_decode (&body, "\x91\x01", 2, L, &err), -1);
    cr_assert (strstr (err.msg, "map"), "%s", err.msg);
    cr_assert_eq (s_check ("\xc1", 1, &err), -1);
    cr_assert (strstr (err.msg, "0xc1"), "%s", err.msg);
}

Test (cmn_codec, lying_counts_refused_before_allocation)
{
    cmn_err_t err = { 0 };
    //  array32 of 4 billion entries in 5 bytes; map32 likewise.
    cr_assert_eq (s_check ("\xdd\xff\xff\xff\xff", 5, &err), -1);
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    cmn_codec_limits_t wide = *L;
    wide.max_items = SIZE_MAX;
    cr_assert_eq (cmn_codec_check ("\xdf\x7f\xff\xff\xff", 5, &wide, &err), -1);
    cr_assert (strstr (err.msg, "remain"), "%s", err.msg);
    //  str32 claiming 1 GB.
    cr_assert_eq (s_check ("\xdb\x40\x00\x00\x00x", 6, &err), -1);
    cr_assert_eq (err.code, RXQ_E_LIMIT);
}

Test (cmn_codec, depth_limit)
{
    char deep [RXQ_MAX_DEPTH + 2];
    memset (deep, 0x91, sizeof deep);     // nested one-element arrays
    deep [sizeof deep - 1] = 0x01;
    cmn_err_t err = { 0 };
    //  RXQ_MAX_DEPTH + 1 containers: one too many.
    cr_assert_eq (s_check (deep, sizeof deep, &err), -1);
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    //  Exactly RXQ_MAX_DEPTH is fine.
    cr_assert_eq (s_check (deep + 1, sizeof deep - 1, &err), 0, "%s", err.msg);
}

Test (cmn_codec, oversized_body_and_string)
{
    size_t n = RXQ_MAX_BODY_BYTES + 1;
    char *big = calloc (1, n);
    cmn_err_t err = { 0 };
    cr_assert_eq (s_check (big, n, &err), -1);
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    free (big);
    s_buf_t b;
    msgpack_packer *pk = s_begin (&b);
    msgpack_pack_map (pk, 1);
    cmn_pack_key (pk, "s");
    char *text = malloc (RXQ_MAX_STR_BYTES + 1);
    memset (text, 'a', RXQ_MAX_STR_BYTES + 1);
    msgpack_pack_str (pk, RXQ_MAX_STR_BYTES + 1);
    msgpack_pack_str_body (pk, text, RXQ_MAX_STR_BYTES + 1);
    cr_assert_eq (s_check (b.sb.data, b.sb.size, &err), -1);
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    free (text);
    msgpack_sbuffer_destroy (&b.sb);
}

Test (cmn_codec, random_bytes_never_crash)
{
    //  A cheap in-suite fuzz: the libFuzzer target in tests/fuzz goes further.
    unsigned seed = 12345;
    char buf [64];
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = 1 + (size_t) (rand_r (&seed) % (int) sizeof buf);
        for (size_t i = 0; i < n; i++)
            buf [i] = (char) (rand_r (&seed) & 0xff);
        //  Bias towards containers so nesting is exercised.
        if (iter % 2)
            buf [0] = (char) (0x80 | (buf [0] & 0x1f));
        cmn_body_t body;
        if (cmn_body_decode (&body, buf, n, L, NULL) == 0) {
            char *json = cmn_codec_to_json (&body.root);
            free (json);
            cmn_body_free (&body);
        }
    }
}

//  Regression: bodies used to point into the caller's buffer, so a body
//  read after its message was freed held garbage.
Test (cmn_codec, body_outlives_its_buffer)
{
    s_buf_t b;
    msgpack_packer *pk = s_begin (&b);
    msgpack_pack_map (pk, 2);
    cmn_pack_kv_str (pk, "name", "worker-one");
    cmn_pack_key (pk, "data");
    msgpack_pack_bin (pk, 3);
    msgpack_pack_bin_body (pk, "\x01\x02\x03", 3);
    char *heap = malloc (b.sb.size);
    cr_assert_not_null (heap);
    memcpy (heap, b.sb.data, b.sb.size);
    size_t len = b.sb.size;
    msgpack_sbuffer_destroy (&b.sb);
    cmn_body_t body;
    cmn_err_t err;
    cr_assert_eq (cmn_body_decode (&body, heap, len, L, &err), 0, "%s", err.msg);
    memset (heap, 0xAA, len);
    free (heap);
    char name [32];
    cr_assert_eq (cmn_codec_get_cstr (&body.root, "name", name, sizeof name, &err), 0);
    cr_assert_str_eq (name, "worker-one");
    const msgpack_object *data = cmn_codec_find (&body.root, "data");
    cr_assert (data && data->type == MSGPACK_OBJECT_BIN && data->via.bin.size == 3);
    cr_assert_eq (memcmp (data->via.bin.ptr, "\x01\x02\x03", 3), 0);
    cmn_body_free (&body);
}

//  cmn_packbuf starts small and doubles: bodies far over the first
//  allocation, written piece by piece and in one large piece, come out
//  whole.
Test (cmn_codec, packbuf_grows_past_its_first_allocation)
{
    cmn_packbuf_t b;
    cmn_packbuf_init (&b);
    enum { N = 5000 };
    msgpack_pack_array (&b.pk, N + 1);
    for (int i = 0; i < N; i++)
        msgpack_pack_uint32 (&b.pk, (uint32_t) i * 65537u);
    static char big [100000];
    memset (big, 'x', sizeof big);
    msgpack_pack_bin (&b.pk, sizeof big);
    msgpack_pack_bin_body (&b.pk, big, sizeof big);
    cmn_codec_limits_t limits = cmn_codec_limits_default;
    limits.max_str = sizeof big;
    cr_assert_eq (cmn_codec_check (b.sb.data, b.sb.size, &limits, NULL), 0);
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    cr_assert_eq (msgpack_unpack_next (&u, b.sb.data, b.sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq (u.data.via.array.size, N + 1);
    for (int i = 0; i < N; i++)
        cr_assert_eq (u.data.via.array.ptr [i].via.u64, (uint64_t) ((uint32_t) i * 65537u));
    cr_assert_eq (u.data.via.array.ptr [N].via.bin.size, sizeof big);
    cr_assert_eq (memcmp (u.data.via.array.ptr [N].via.bin.ptr, big, sizeof big), 0);
    msgpack_unpacked_destroy (&u);
    msgpack_sbuffer_destroy (&b.sb);
}
