/*  test_cmn_gguf: GGUF writer and reader. A file with every metadata type
 *  (nested arrays too) and several tensors goes out and comes back; hand-
 *  built malformed files each give their error code and message; every
 *  prefix of a valid file is refused; fuzzer finds in tests/fixtures/gguf
 *  give the errors their manifest records.
 *
 *  With RXQ_GGUF_EXPORT=PATH the round-trip test also leaves its file at
 *  PATH for tests/python/check_gguf_roundtrip.py.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmn_gguf.h"
#include "cmn_gguf_writer.h"
#include "cmn_quant.h"

static const char *
s_fixtures (void)
{
    const char *dir = getenv ("RXQ_FIXTURES");
    return dir ? dir : RXQ_SOURCE_DIR "/tests/fixtures";
}

//  --------------------------------------------------------------------------
//  Byte builder for hand-made files

typedef struct {
    uint8_t *p;
    size_t len, cap;
} s_buf_t;

static void
s_put (s_buf_t *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc (b->p, b->cap);
        cr_assert (b->p);
    }
    memcpy (b->p + b->len, data, n);
    b->len += n;
}

static void s_u32 (s_buf_t *b, uint32_t v) { s_put (b, &v, 4); }
static void s_u64 (s_buf_t *b, uint64_t v) { s_put (b, &v, 8); }
static void s_str (s_buf_t *b, const char *s) { s_u64 (b, strlen (s)); s_put (b, s, strlen (s)); }

static void
s_pad (s_buf_t *b, size_t alignment)
{
    while (b->len % alignment)
        s_put (b, "", 1);
}

//  What the small hand-built file holds; tests change one field.
typedef struct {
    uint32_t magic, version;
    uint64_t n_tensors_override;    // 0: the real count
    uint64_t n_kv_override;         // 0: the real count
    uint32_t alignment;             // 0: no general.alignment key
    uint32_t alignment_type;        // type of the general.alignment value
    const char *name0, *name1;      // tensor names
    uint32_t n_dims0;               // n_dims of tensor 0 (2)
    uint32_t type0, type1;          // GGML types (F32, Q8_0)
    uint64_t ne0_0;                 // ne[0] of tensor 0 (4)
    uint64_t offset1;               // offset of tensor 1 (32)
    uint64_t key_len_override;      // 0: the real length of the first key
    bool dup_key;                   // repeat the first key
    uint8_t bool_value;             // value of the bool pair (1)
} s_spec_t;

static s_spec_t
s_spec (void)
{
    return (s_spec_t) {
        .magic = CMN_GGUF_MAGIC, .version = 3, .alignment_type = CMN_GGUF_UINT32,
        .name0 = "blk.0.attn_q.weight", .name1 = "output.bias", .n_dims0 = 2,
        .type0 = GGML_TYPE_F32, .type1 = GGML_TYPE_Q8_0, .ne0_0 = 4, .offset1 = 32,
        .bool_value = 1,
    };
}

//  Tensor 0: F32 [4, 2] = 32 bytes at 0; tensor 1: Q8_0 [32] = 34 bytes
//  at 32, padded to 96.
static s_buf_t
s_build (const s_spec_t *s)
{
    s_buf_t b = { 0 };
    uint64_t n_kv = 2 + (s->alignment ? 1 : 0) + (s->dup_key ? 1 : 0);
    s_u32 (&b, s->magic);
    s_u32 (&b, s->version);
    s_u64 (&b, s->n_tensors_override ? s->n_tensors_override : 2);
    s_u64 (&b, s->n_kv_override ? s->n_kv_override : n_kv);
    if (s->key_len_override) {
        s_u64 (&b, s->key_len_override);
        s_put (&b, "general.name", 12);
    }
    else
        s_str (&b, "general.name");
    s_u32 (&b, CMN_GGUF_STRING);
    s_str (&b, "tiny");
    s_str (&b, "tiny.flag");
    s_u32 (&b, CMN_GGUF_BOOL);
    s_put (&b, &s->bool_value, 1);
    if (s->dup_key) {
        s_str (&b, "general.name");
        s_u32 (&b, CMN_GGUF_STRING);
        s_str (&b, "again");
    }
    if (s->alignment) {
        s_str (&b, "general.alignment");
        s_u32 (&b, s->alignment_type);
        if (s->alignment_type == CMN_GGUF_UINT64)
            s_u64 (&b, s->alignment);
        else
            s_u32 (&b, s->alignment);
    }
    s_str (&b, s->name0);
    s_u32 (&b, s->n_dims0);
    for (uint32_t d = 0; d < s->n_dims0; d++)
        s_u64 (&b, d == 0 ? s->ne0_0 : 2);
    s_u32 (&b, s->type0);
    s_u64 (&b, 0);
    s_str (&b, s->name1);
    s_u32 (&b, 1);
    s_u64 (&b, 32);
    s_u32 (&b, s->type1);
    s_u64 (&b, s->offset1);
    //  Pad to the declared alignment only when it is a sane one: the
    //  tests with bad alignments must not build gigabyte buffers.
    bool pow2 = s->alignment && !(s->alignment & (s->alignment - 1)) && s->alignment <= 4096;
    s_pad (&b, pow2 ? s->alignment : 32);
    for (int i = 0; i < 8; i++) {
        float f = (float) i;
        s_put (&b, &f, 4);
    }
    uint8_t q [34] = { 0x00, 0x3c };    // d = 1.0, quants 0
    s_put (&b, q, sizeof q);
    s_pad (&b, 32);
    return b;
}

static void
s_expect_error (const s_spec_t *spec, int code, const char *substring)
{
    s_buf_t b = s_build (spec);
    cmn_err_t err = { 0 };
    cmn_gguf_t *g = cmn_gguf_new_from_buffer (b.p, b.len, NULL, &err);
    cr_assert_null (g, "expected %s (%s)", cmn_error_name (code), substring);
    cr_assert_str_eq (cmn_error_name (err.code), cmn_error_name (code), "message: %s", err.msg);
    cr_assert (strstr (err.msg, substring), "message '%s' lacks '%s'", err.msg, substring);
    free (b.p);
}

Test (gguf, small_valid_file)
{
    s_spec_t spec = s_spec ();
    s_buf_t b = s_build (&spec);
    cmn_err_t err = { 0 };
    cmn_gguf_t *g = cmn_gguf_new_from_buffer (b.p, b.len, NULL, &err);
    cr_assert (g, "%s", err.msg);
    cr_assert_eq (cmn_gguf_tensor_count (g), 2);
    const cmn_gguf_tensor_t *t = cmn_gguf_find_tensor (g, "blk.0.attn_q.weight");
    cr_assert (t);
    cr_assert_eq (t->size, 32);
    cr_assert_eq (((const float *) t->data) [7], 7.0f);
    cr_assert_eq (cmn_gguf_tensor_nelements (t), 8);
    cr_assert_eq (cmn_gguf_find_tensor (g, "output.bias")->size, 34);
    cr_assert_null (cmn_gguf_find_tensor (g, "nope"));
    cmn_gguf_destroy (&g);
    cmn_gguf_destroy (&g);
    cr_assert_null (g);
    free (b.p);
}

Test (gguf, bad_magic)
{
    s_spec_t s = s_spec ();
    s.magic = 0x46554748;
    s_expect_error (&s, RXQ_E_FORMAT_MAGIC, "invalid magic");
}

Test (gguf, versions_1_2_4)
{
    uint32_t versions [] = { 1, 2, 4 };
    for (int i = 0; i < 3; i++) {
        s_spec_t s = s_spec ();
        s.version = versions [i];
        s_expect_error (&s, RXQ_E_FORMAT_VERSION, "unsupported GGUF version");
    }
}

Test (gguf, every_prefix_is_refused)
{
    s_spec_t spec = s_spec ();
    s_buf_t b = s_build (&spec);
    //  The last tensor ends at data_offset + 32 + 34: any shorter prefix
    //  cuts something the file declares. (Its trailing padding is optional.)
    cmn_err_t err;
    cmn_gguf_t *g = cmn_gguf_new_from_buffer (b.p, b.len, NULL, &err);
    cr_assert (g);
    size_t needed = cmn_gguf_data_offset (g) + 32 + 34;
    cmn_gguf_destroy (&g);
    for (size_t len = 0; len < b.len; len++) {
        uint8_t *copy = malloc (len ? len : 1);
        memcpy (copy, b.p, len);
        err.code = 0;
        g = cmn_gguf_new_from_buffer (copy, len, NULL, &err);
        if (len < needed) {
            cr_assert_null (g, "prefix of %zu bytes was accepted", len);
            cr_assert_eq (cmn_error_primary (err.code), RXQ_E_FORMAT,
                          "prefix %zu: %s (%s)", len, cmn_error_name (err.code), err.msg);
        }
        else
            cr_assert (g, "prefix %zu holding all data refused: %s", len, err.msg);
        cmn_gguf_destroy (&g);
        free (copy);
    }
    free (b.p);
}

Test (gguf, huge_counts)
{
    s_spec_t s = s_spec ();
    s.n_tensors_override = UINT64_MAX;
    s_expect_error (&s, RXQ_E_FORMAT_TRUNC, "tensors cannot fit");
    s = s_spec ();
    s.n_kv_override = (uint64_t) 1 << 62;
    s_expect_error (&s, RXQ_E_FORMAT_TRUNC, "metadata pairs cannot fit");
    //  A count the file could hold but the limits refuse.
    s = s_spec ();
    s_buf_t b = s_build (&s);
    cmn_gguf_limits_t limits = cmn_gguf_limits_default;
    limits.max_tensors = 1;
    cmn_err_t err;
    cr_assert_null (cmn_gguf_new_from_buffer (b.p, b.len, &limits, &err));
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    cr_assert (strstr (err.msg, "exceed the limit"), "%s", err.msg);
    limits = cmn_gguf_limits_default;
    limits.max_str = 8;
    cr_assert_null (cmn_gguf_new_from_buffer (b.p, b.len, &limits, &err));
    cr_assert_eq (err.code, RXQ_E_LIMIT, "%s", err.msg);
    free (b.p);
}

Test (gguf, string_length_past_end)
{
    s_spec_t s = s_spec ();
    s.key_len_override = 1u << 20;
    s_expect_error (&s, RXQ_E_FORMAT_TRUNC, "key length 1048576");
    s.key_len_override = UINT64_MAX;
    s_expect_error (&s, RXQ_E_FORMAT_TRUNC, "runs past the end");
}

Test (gguf, tensor_offset_out_of_bounds)
{
    s_spec_t s = s_spec ();
    s.name1 = "blk.0.attn_q.weight.b";
    s.offset1 = 64;             // 64 + 34 > 96
    s_expect_error (&s, RXQ_E_FORMAT_BOUNDS, "tensor 'blk.0.attn_q.weight.b': data out of bounds");
    s.offset1 = UINT64_MAX - 31;
    s_expect_error (&s, RXQ_E_FORMAT_BOUNDS, "data out of bounds");
}

Test (gguf, alignment_rules)
{
    s_spec_t s = s_spec ();
    s.offset1 = 16;
    s_expect_error (&s, RXQ_E_FORMAT_ALIGN, "not a multiple of the alignment 32");
    s = s_spec ();
    s.alignment = 24;
    s_expect_error (&s, RXQ_E_FORMAT_ALIGN, "not a power of two");
    s.alignment = 1u << 31 | 1;
    s_expect_error (&s, RXQ_E_FORMAT_ALIGN, "not a power of two");
    s = s_spec ();
    s.alignment = 64;
    s.alignment_type = CMN_GGUF_UINT64;
    s_expect_error (&s, RXQ_E_FORMAT_ALIGN, "must be a uint32");
    //  A power of two other than 32 is fine when offsets follow it.
    s = s_spec ();
    s.alignment = 16;
    s.offset1 = 32;
    s_buf_t b = s_build (&s);
    cmn_err_t err;
    cmn_gguf_t *g = cmn_gguf_new_from_buffer (b.p, b.len, NULL, &err);
    cr_assert (g, "%s", err.msg);
    cr_assert_eq (cmn_gguf_alignment (g), 16);
    cr_assert_eq (cmn_gguf_data_offset (g) % 16, 0);
    cmn_gguf_destroy (&g);
    free (b.p);
}

Test (gguf, tensor_info_rules)
{
    s_spec_t s = s_spec ();
    s.type0 = 4;                // removed from ggml
    s_expect_error (&s, RXQ_E_FORMAT_TYPE, "unknown tensor type 4");
    s.type0 = 0xffffffffu;
    s_expect_error (&s, RXQ_E_FORMAT_TYPE, "unknown tensor type");
    s = s_spec ();
    s.n_dims0 = 5;
    s_expect_error (&s, RXQ_E_FORMAT_SHAPE, "5 dimensions, at most 4");
    s = s_spec ();
    s.name1 = s.name0;
    s_expect_error (&s, RXQ_E_FORMAT_DUP, "duplicate tensor name 'blk.0.attn_q.weight'");
    s = s_spec ();
    s.dup_key = true;
    s_expect_error (&s, RXQ_E_FORMAT_DUP, "duplicate key 'general.name'");
    s = s_spec ();
    s.type0 = GGML_TYPE_Q8_0;   // ne[0] = 4 is not a multiple of 32
    s_expect_error (&s, RXQ_E_FORMAT_SHAPE, "not a multiple of the q8_0 block size 32");
    s = s_spec ();
    s.ne0_0 = (uint64_t) 1 << 63;
    s_expect_error (&s, RXQ_E_FORMAT_SHAPE, "negative");
    //  Regression: ne[0] * bytes per value used to wrap around to a small
    //  size that passed the bounds check (2^62 F32 values are 2^64 bytes).
    s = s_spec ();
    s.ne0_0 = (uint64_t) 1 << 62;
    s.n_dims0 = 1;
    s_expect_error (&s, RXQ_E_FORMAT_BOUNDS, "tensor 'blk.0.attn_q.weight': data size overflows");
    s = s_spec ();
    s.type1 = RXQ_TYPE_INT4_G32;
    s_expect_error (&s, RXQ_E_FORMAT_TYPE, "rxq-private");
    s = s_spec ();
    s.bool_value = 2;
    s_expect_error (&s, RXQ_E_FORMAT, "not 0 or 1");
}

Test (gguf, nesting_limit)
{
    //  One pair: an array of arrays of arrays of uint8 (depth 3).
    s_buf_t b = { 0 };
    s_u32 (&b, CMN_GGUF_MAGIC);
    s_u32 (&b, 3);
    s_u64 (&b, 0);
    s_u64 (&b, 1);
    s_str (&b, "deep");
    s_u32 (&b, CMN_GGUF_ARRAY);
    s_u32 (&b, CMN_GGUF_ARRAY);
    s_u64 (&b, 1);
    s_u32 (&b, CMN_GGUF_ARRAY);
    s_u64 (&b, 1);
    s_u32 (&b, CMN_GGUF_UINT8);
    s_u64 (&b, 1);
    s_put (&b, "\x07", 1);
    cmn_gguf_limits_t limits = cmn_gguf_limits_default;
    limits.max_depth = 2;
    cmn_err_t err;
    cr_assert_null (cmn_gguf_new_from_buffer (b.p, b.len, &limits, &err));
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    cr_assert (strstr (err.msg, "key 'deep': arrays nested deeper than 2"), "%s", err.msg);
    limits.max_depth = 3;
    cmn_gguf_t *g = cmn_gguf_new_from_buffer (b.p, b.len, &limits, &err);
    cr_assert (g, "%s", err.msg);
    const cmn_gguf_value_t *v = cmn_gguf_find (g, "deep");
    cmn_gguf_value_t x;
    cmn_gguf_array_get (&v->v.arr.items [0].v.arr.items [0], 0, &x);
    cr_assert_eq (x.v.u, 7);
    cmn_gguf_destroy (&g);
    free (b.p);
}

//  --------------------------------------------------------------------------
//  Writer round trip

#define S_ROWS 4
#define S_COLS 256

typedef struct {
    const float *src;           // rows of S_COLS floats
    int type;
} s_gen_t;

//  Data callback: quantizes rows on demand, as the quantizer will.
static int
s_quantize_fn (void *arg, void *buf, uint64_t offset, size_t len, cmn_err_t *err)
{
    s_gen_t *gen = arg;
    size_t row_bytes = cmn_quant_row_bytes (gen->type, S_COLS);
    uint8_t row [S_COLS * 4];
    for (size_t done = 0; done < len; ) {
        size_t r = (size_t) (offset + done) / row_bytes;
        size_t in_row = (size_t) (offset + done) % row_bytes;
        if (cmn_quant_quantize_row (gen->type, gen->src + r * S_COLS, row, S_COLS))
            return cmn_err_set (err, RXQ_E_INTERNAL, "quantize failed");
        size_t n = row_bytes - in_row < len - done ? row_bytes - in_row : len - done;
        memcpy ((uint8_t *) buf + done, row + in_row, n);
        done += n;
    }
    return 0;
}

Test (gguf, write_read_every_type)
{
    char path [] = "/tmp/rxq_gguf_test_XXXXXX";
    int fd = mkstemp (path);
    cr_assert (fd >= 0);
    close (fd);
    const char *export = getenv ("RXQ_GGUF_EXPORT");
    const char *out = export ? export : path;

    static float src [S_ROWS * S_COLS];
    for (int i = 0; i < S_ROWS * S_COLS; i++)
        src [i] = sinf ((float) i * 0.37f) * (1.0f + (float) (i % 7)) * 0.1f;

    cmn_err_t err = { 0 };
    cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
    cr_assert (w);
    uint8_t u8s [] = { 1, 2, 255 };
    int16_t i16s [] = { -3, 4 };
    double f64s [] = { 0.5, -1e300 };
    uint8_t bools [] = { 1, 0, 1 };
    const char *strs [] = { "a", "", "ünïcode" };
    cr_assert_eq (cmn_gguf_writer_set_str (w, "general.architecture", "llama", &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_u32 (w, "t.u32", 4000000000u, &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_u64 (w, "t.u64", UINT64_MAX, &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_i32 (w, "t.i32", -7, &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_f32 (w, "t.f32", 0.25f, &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_bool (w, "t.bool", true, &err), 0);
    cmn_gguf_value_t v;
    v = (cmn_gguf_value_t) { .type = CMN_GGUF_UINT8, .v.u = 200 };
    cr_assert_eq (cmn_gguf_writer_set (w, "t.u8", &v, &err), 0);
    v = (cmn_gguf_value_t) { .type = CMN_GGUF_INT8, .v.i = -100 };
    cr_assert_eq (cmn_gguf_writer_set (w, "t.i8", &v, &err), 0);
    v = (cmn_gguf_value_t) { .type = CMN_GGUF_UINT16, .v.u = 65535 };
    cr_assert_eq (cmn_gguf_writer_set (w, "t.u16", &v, &err), 0);
    v = (cmn_gguf_value_t) { .type = CMN_GGUF_INT16, .v.i = -32768 };
    cr_assert_eq (cmn_gguf_writer_set (w, "t.i16", &v, &err), 0);
    v = (cmn_gguf_value_t) { .type = CMN_GGUF_INT64, .v.i = INT64_MIN };
    cr_assert_eq (cmn_gguf_writer_set (w, "t.i64", &v, &err), 0);
    v = (cmn_gguf_value_t) { .type = CMN_GGUF_FLOAT64, .v.f = 3.141592653589793 };
    cr_assert_eq (cmn_gguf_writer_set (w, "t.f64", &v, &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_array (w, "t.arr.u8", CMN_GGUF_UINT8, u8s, 3, &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_array (w, "t.arr.i16", CMN_GGUF_INT16, i16s, 2, &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_array (w, "t.arr.f64", CMN_GGUF_FLOAT64, f64s, 2, &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_array (w, "t.arr.bool", CMN_GGUF_BOOL, bools, 3, &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_array (w, "t.arr.empty", CMN_GGUF_UINT32, NULL, 0, &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_str_array (w, "t.arr.str", strs, 3, &err), 0);
    //  Nested: [[1, 2, 3], [], [["a", "", "ünïcode"]]] is not one type;
    //  GGUF arrays are homogeneous: [[u8...], [u8...]] and [[[str...]]].
    cmn_gguf_value_t inner [2] = {
        { .type = CMN_GGUF_ARRAY, .v.arr = { .elem = CMN_GGUF_UINT8, .n = 3, .raw = u8s } },
        { .type = CMN_GGUF_ARRAY, .v.arr = { .elem = CMN_GGUF_UINT8, .n = 0 } },
    };
    v = (cmn_gguf_value_t) { .type = CMN_GGUF_ARRAY,
                             .v.arr = { .elem = CMN_GGUF_ARRAY, .n = 2, .items = inner } };
    cr_assert_eq (cmn_gguf_writer_set (w, "t.nested", &v, &err), 0, "%s", err.msg);
    cmn_gguf_value_t sv [3];
    for (int i = 0; i < 3; i++)
        sv [i] = (cmn_gguf_value_t) { .type = CMN_GGUF_STRING,
                                      .v.str = { strs [i], strlen (strs [i]) } };
    cmn_gguf_value_t mid = { .type = CMN_GGUF_ARRAY,
                             .v.arr = { .elem = CMN_GGUF_STRING, .n = 3, .items = sv } };
    cmn_gguf_value_t lvl2 = { .type = CMN_GGUF_ARRAY,
                              .v.arr = { .elem = CMN_GGUF_ARRAY, .n = 1, .items = &mid } };
    v = (cmn_gguf_value_t) { .type = CMN_GGUF_ARRAY,
                             .v.arr = { .elem = CMN_GGUF_ARRAY, .n = 1, .items = &lvl2 } };
    cr_assert_eq (cmn_gguf_writer_set (w, "t.nested.str", &v, &err), 0, "%s", err.msg);
    //  Replacing a key keeps its place and takes the new value.
    cr_assert_eq (cmn_gguf_writer_set_u32 (w, "t.i32", 5, &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_i32 (w, "t.i32", -8, &err), 0);

    static const int types [] = { GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0,
                                  GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
                                  GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K };
    const size_t n_types = sizeof types / sizeof types [0];
    static s_gen_t gens [16];
    static uint8_t *blobs [16];
    static float *deqs [16];
    int64_t ne [2] = { S_COLS, S_ROWS };
    for (size_t i = 0; i < n_types; i++) {
        char name [64];
        snprintf (name, sizeof name, "blk.%zu.%s.weight", i, cmn_quant_type_name (types [i]));
        size_t bytes = cmn_quant_row_bytes (types [i], S_COLS) * S_ROWS;
        blobs [i] = malloc (bytes);
        for (int r = 0; r < S_ROWS; r++)
            cr_assert_eq (cmn_quant_quantize_row (types [i], src + r * S_COLS,
                                                  blobs [i] + r * bytes / S_ROWS, S_COLS), 0);
        gens [i] = (s_gen_t) { src, types [i] };
        //  Even types from memory, odd ones through the streaming callback.
        cr_assert_eq (cmn_gguf_writer_add_tensor (w, name, types [i], 2, ne,
                                                  i % 2 ? NULL : blobs [i],
                                                  i % 2 ? s_quantize_fn : NULL, &gens [i], &err),
                      0, "%s", err.msg);
        //  rxq's dequantization next to it, for the Python cross-check.
        deqs [i] = malloc (S_ROWS * S_COLS * sizeof (float));
        for (int r = 0; r < S_ROWS; r++)
            cr_assert_eq (cmn_quant_dequantize_row (types [i], blobs [i] + r * bytes / S_ROWS,
                                                    deqs [i] + r * S_COLS, S_COLS), 0);
        snprintf (name, sizeof name, "blk.%zu.%s.weight.rxq_dequant", i,
                  cmn_quant_type_name (types [i]));
        cr_assert_eq (cmn_gguf_writer_add_tensor (w, name, GGML_TYPE_F32, 2, ne, deqs [i], NULL,
                                                  NULL, &err), 0);
    }
    cr_assert_eq (cmn_gguf_writer_add_tensor (w, "source", GGML_TYPE_F32, 2, ne, src, NULL, NULL,
                                              &err), 0);
    //  Misuse that must be refused.
    cr_assert_eq (cmn_gguf_writer_add_tensor (w, "source", GGML_TYPE_F32, 2, ne, src, NULL, NULL,
                                              &err), -1);
    cr_assert_eq (err.code, RXQ_E_FORMAT_DUP);
    int64_t bad_ne [1] = { 33 };
    cr_assert_eq (cmn_gguf_writer_add_tensor (w, "bad", GGML_TYPE_Q4_0, 1, bad_ne, src, NULL,
                                              NULL, &err), -1);
    cr_assert_eq (err.code, RXQ_E_INVAL);

    cr_assert_eq (cmn_gguf_writer_write_file (w, out, &err), 0, "%s", err.msg);
    char tmp [600];
    snprintf (tmp, sizeof tmp, "%s.tmp", out);
    cr_assert_neq (access (tmp, F_OK), 0, "temporary file left behind");
    cmn_gguf_writer_destroy (&w);
    cmn_gguf_writer_destroy (&w);

    cmn_gguf_t *g = cmn_gguf_open_file (out, NULL, &err);
    cr_assert (g, "%s", err.msg);
    //  The nested arrays make it rxq-private: llama.cpp refuses them.
    cr_assert (cmn_gguf_is_private (g));
    bool priv;
    cr_assert_eq (cmn_gguf_get_bool (g, "rxq.private", &priv, &err), 0);
    uint64_t u;
    int64_t i64;
    double f;
    bool bo;
    const char *sp;
    size_t sl;
    cr_assert_eq (cmn_gguf_get_uint (g, "t.u32", &u, &err), 0);
    cr_assert_eq (u, 4000000000u);
    cr_assert_eq (cmn_gguf_get_uint (g, "t.u64", &u, &err), 0);
    cr_assert_eq (u, UINT64_MAX);
    cr_assert_eq (cmn_gguf_get_int (g, "t.i32", &i64, &err), 0);
    cr_assert_eq (i64, -8);
    cr_assert_eq (cmn_gguf_get_int (g, "t.i64", &i64, &err), 0);
    cr_assert_eq (i64, INT64_MIN);
    cr_assert_eq (cmn_gguf_get_int (g, "t.i8", &i64, &err), 0);
    cr_assert_eq (i64, -100);
    cr_assert_eq (cmn_gguf_get_int (g, "t.i16", &i64, &err), 0);
    cr_assert_eq (i64, -32768);
    cr_assert_eq (cmn_gguf_get_uint (g, "t.u8", &u, &err), 0);
    cr_assert_eq (u, 200);
    cr_assert_eq (cmn_gguf_get_uint (g, "t.u16", &u, &err), 0);
    cr_assert_eq (u, 65535);
    cr_assert_eq (cmn_gguf_get_float (g, "t.f32", &f, &err), 0);
    cr_assert_eq (f, 0.25);
    cr_assert_eq (cmn_gguf_get_float (g, "t.f64", &f, &err), 0);
    cr_assert_eq (f, 3.141592653589793);
    cr_assert_eq (cmn_gguf_get_bool (g, "t.bool", &bo, &err), 0);
    cr_assert (bo);
    cr_assert_eq (cmn_gguf_get_str (g, "general.architecture", &sp, &sl, &err), 0);
    cr_assert_eq (sl, 5);
    cr_assert_eq (memcmp (sp, "llama", 5), 0);
    cr_assert_eq (cmn_gguf_get_uint (g, "absent", &u, &err), 1);
    cr_assert_eq (cmn_gguf_get_uint (g, "t.i64", &u, &err), -1, "negative is not uint");
    cr_assert_eq (cmn_gguf_get_str (g, "t.u32", &sp, &sl, &err), -1);
    cr_assert_eq (err.code, RXQ_E_PARAM);
    cr_assert (strstr (err.msg, "key 't.u32' is a uint32"), "%s", err.msg);
    cr_assert_str_eq (cmn_gguf_kv_key (g, 0), "general.architecture");

    const cmn_gguf_value_t *a;
    cmn_gguf_value_t x;
    cr_assert_eq (cmn_gguf_get_array (g, "t.arr.u8", &a, &err), 0);
    cr_assert_eq (a->v.arr.n, 3);
    cmn_gguf_array_get (a, 2, &x);
    cr_assert_eq (x.v.u, 255);
    cr_assert_eq (cmn_gguf_get_array (g, "t.arr.i16", &a, &err), 0);
    cmn_gguf_array_get (a, 0, &x);
    cr_assert_eq (x.v.i, -3);
    cr_assert_eq (cmn_gguf_get_array (g, "t.arr.f64", &a, &err), 0);
    cmn_gguf_array_get (a, 1, &x);
    cr_assert_eq (x.v.f, -1e300);
    cr_assert_eq (cmn_gguf_get_array (g, "t.arr.bool", &a, &err), 0);
    cmn_gguf_array_get (a, 1, &x);
    cr_assert_eq (x.v.b, false);
    cr_assert_eq (cmn_gguf_get_array (g, "t.arr.empty", &a, &err), 0);
    cr_assert_eq (a->v.arr.n, 0);
    cr_assert_eq (cmn_gguf_get_array (g, "t.arr.str", &a, &err), 0);
    cr_assert_eq (a->v.arr.items [2].v.str.len, strlen ("ünïcode"));
    cr_assert_eq (a->v.arr.items [1].v.str.len, 0);
    cr_assert_eq (cmn_gguf_get_array (g, "t.nested", &a, &err), 0);
    cr_assert_eq (a->v.arr.elem, CMN_GGUF_ARRAY);
    cr_assert_eq (a->v.arr.n, 2);
    cmn_gguf_array_get (&a->v.arr.items [0], 1, &x);
    cr_assert_eq (x.v.u, 2);
    cr_assert_eq (a->v.arr.items [1].v.arr.n, 0);
    cr_assert_eq (cmn_gguf_get_array (g, "t.nested.str", &a, &err), 0);
    const cmn_gguf_value_t *leaf = &a->v.arr.items [0].v.arr.items [0].v.arr.items [2];
    cr_assert_eq (leaf->type, CMN_GGUF_STRING);
    cr_assert_eq (memcmp (leaf->v.str.ptr, "ünïcode", leaf->v.str.len), 0);

    cr_assert_eq (cmn_gguf_tensor_count (g), 2 * n_types + 1);
    for (size_t i = 0; i < n_types; i++) {
        char name [64];
        snprintf (name, sizeof name, "blk.%zu.%s.weight", i, cmn_quant_type_name (types [i]));
        const cmn_gguf_tensor_t *t = cmn_gguf_find_tensor (g, name);
        cr_assert (t, "%s missing", name);
        cr_assert_eq (t->type, types [i]);
        cr_assert_eq (t->n_dims, 2);
        cr_assert_eq (t->ne [0], S_COLS);
        cr_assert_eq (t->ne [1], S_ROWS);
        cr_assert_eq (t->offset % 32, 0);
        cr_assert_eq (t->size, cmn_quant_row_bytes (types [i], S_COLS) * S_ROWS);
        cr_assert_eq (memcmp (t->data, blobs [i], t->size), 0, "%s data differs", name);
        t = cmn_gguf_find_tensor (g, strcat (name, ".rxq_dequant"));
        cr_assert (t);
        cr_assert_eq (memcmp (t->data, deqs [i], t->size), 0);
        free (blobs [i]);
        free (deqs [i]);
    }
    cmn_gguf_destroy (&g);
    unlink (path);
}

Test (gguf, private_types_mark_the_file)
{
    char path [] = "/tmp/rxq_gguf_priv_XXXXXX";
    int fd = mkstemp (path);
    cr_assert (fd >= 0);
    float x [128];
    for (int i = 0; i < 128; i++)
        x [i] = (float) i / 128.0f;
    uint8_t q [68];
    cr_assert_eq (cmn_quant_quantize_row (RXQ_TYPE_INT4_G128, x, q, 128), 0);
    cmn_err_t err;
    cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
    cr_assert_eq (cmn_gguf_writer_set_alignment (w, 64, &err), 0);
    cr_assert_eq (cmn_gguf_writer_set_alignment (w, 48, &err), -1);
    int64_t ne [1] = { 128 };
    cr_assert_eq (cmn_gguf_writer_add_tensor (w, "w", RXQ_TYPE_INT4_G128, 1, ne, q, NULL, NULL,
                                              &err), 0);
    cr_assert_eq (cmn_gguf_writer_write_fd (w, fd, &err), 0, "%s", err.msg);
    close (fd);
    cmn_gguf_writer_destroy (&w);
    cmn_gguf_t *g = cmn_gguf_open_file (path, NULL, &err);
    cr_assert (g, "%s", err.msg);
    cr_assert (cmn_gguf_is_private (g));
    cr_assert_eq (cmn_gguf_alignment (g), 64);
    cr_assert_eq (cmn_gguf_data_offset (g) % 64, 0);
    const cmn_gguf_tensor_t *t = cmn_gguf_find_tensor (g, "w");
    cr_assert_eq (t->type, RXQ_TYPE_INT4_G128);
    cr_assert_eq (memcmp (t->data, q, 68), 0);
    cmn_gguf_destroy (&g);
    unlink (path);
}

static int
s_fail_fn (void *arg, void *buf, uint64_t offset, size_t len, cmn_err_t *err)
{
    (void) arg;
    (void) buf;
    (void) offset;
    (void) len;
    return cmn_err_set (err, RXQ_E_CANCELLED, "stop");
}

Test (gguf, write_file_failure_leaves_nothing)
{
    cmn_err_t err;
    cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
    cr_assert_eq (cmn_gguf_writer_write_file (w, "/nonexistent-dir/x.gguf", &err), -1);
    cr_assert_eq (err.code, RXQ_E_IO);
    //  A failing data callback aborts the write and removes PATH.tmp.
    char path [] = "/tmp/rxq_gguf_fail_XXXXXX";
    int fd = mkstemp (path);
    close (fd);
    unlink (path);
    int64_t ne [1] = { 32 };
    cr_assert_eq (cmn_gguf_writer_add_tensor (w, "t", GGML_TYPE_F32, 1, ne, NULL,
                                              s_fail_fn, NULL, &err), 0);
    cr_assert_eq (cmn_gguf_writer_write_file (w, path, &err), -1);
    cr_assert_eq (err.code, RXQ_E_CANCELLED);
    cmn_gguf_writer_destroy (&w);
    cr_assert_null (w);
    char tmp [64];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    cr_assert_neq (access (path, F_OK), 0, "PATH exists after a failed write");
    cr_assert_neq (access (tmp, F_OK), 0, "PATH.tmp left behind");
}

Test (gguf, open_file_errors)
{
    cmn_err_t err;
    cr_assert_null (cmn_gguf_open_file ("/nonexistent/model.gguf", NULL, &err));
    cr_assert_eq (err.code, RXQ_E_IO);
    cr_assert (strstr (err.msg, "/nonexistent/model.gguf"), "%s", err.msg);
}

//  --------------------------------------------------------------------------
//  Fuzzer finds: tests/fixtures/gguf/expected.txt lists "file CODE text".

Test (gguf, fixtures_replay)
{
    char path [512];
    snprintf (path, sizeof path, "%s/gguf/expected.txt", s_fixtures ());
    FILE *m = fopen (path, "r");
    cr_assert (m, "cannot open %s", path);
    char line [512];
    int count = 0;
    while (fgets (line, sizeof line, m)) {
        if (line [0] == '#' || line [0] == '\n')
            continue;
        char file [128], code [64];
        int used = 0;
        cr_assert_eq (sscanf (line, "%127s %63s %n", file, code, &used), 2, "bad line: %s", line);
        char *text = line + used;
        text [strcspn (text, "\n")] = 0;
        snprintf (path, sizeof path, "%s/gguf/%s", s_fixtures (), file);
        cmn_err_t err = { 0 };
        cmn_gguf_t *g = cmn_gguf_open_file (path, NULL, &err);
        if (strcmp (code, "RXQ_E_OK") == 0) {
            cr_assert (g, "%s: %s", file, err.msg);
            cmn_gguf_destroy (&g);
        }
        else {
            cr_assert_null (g, "%s was accepted", file);
            cr_assert_str_eq (cmn_error_name (err.code), code, "%s: %s", file, err.msg);
            cr_assert (strstr (err.msg, text), "%s: '%s' lacks '%s'", file, err.msg, text);
        }
        count++;
    }
    fclose (m);
    cr_assert_gt (count, 0);
}
