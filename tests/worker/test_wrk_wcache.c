/*  wrk_wcache: the weight cache in device memory (PoCL here). Entries
 *  are the tensors of a GGUF in device buffers (read back, they equal the
 *  file's bytes), evicted least recently used first under a byte budget;
 *  an entry over the whole budget is refused and evicts nothing; the held
 *  list is most recently used first; extra data comes back as stored;
 *  object entries (a loaded model) share the budget and the LRU order, and
 *  their destroy callback runs once whenever they go.
 */
#include <criterion/criterion.h>
#include <czmq.h>
#include "cmn_codec.h"
#include "cmn_gguf.h"
#include "support/tst_model.h"
#include "wrk_device.h"
#include "wrk_wcache.h"

static wrk_device_t *s_dev;
static char s_dir [64];
static char s_path [3][128];
static uint64_t s_bytes;        // tensor bytes of one model file

static void
s_init (void)
{
    cmn_err_t err = { 0 };
    const char *sel = getenv ("RXQ_TEST_DEVICE");
    s_dev = wrk_device_new (sel && *sel ? sel : "Portable", NULL, &err);
    cr_assert_not_null (s_dev, "no device: %s", err.msg);
    snprintf (s_dir, sizeof s_dir, "/tmp/rxq-wcache-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
    for (int i = 0; i < 3; i++) {
        snprintf (s_path [i], sizeof s_path [i], "%s/m%d.gguf", s_dir, i);
        cr_assert_eq (tst_model_write_gguf (s_path [i], GGML_TYPE_Q8_0, (uint64_t) i + 1), 0);
    }
    cmn_gguf_t *g = cmn_gguf_open_file (s_path [0], NULL, &err);
    cr_assert_not_null (g, "%s", err.msg);
    s_bytes = 0;
    for (size_t i = 0; i < cmn_gguf_tensor_count (g); i++)
        s_bytes += cmn_gguf_tensor (g, i)->size;
    cmn_gguf_destroy (&g);
}

static void
s_fini (void)
{
    wrk_device_destroy (&s_dev);
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    if (system (cmd) != 0)
        cr_log_warn ("could not remove %s", s_dir);
}

TestSuite (wrk_wcache, .init = s_init, .fini = s_fini, .timeout = 60);

static const char *M [3] = {
    "1111111111111111111111111111111111111111111111111111111111111111",
    "2222222222222222222222222222222222222222222222222222222222222222",
    "3333333333333333333333333333333333333333333333333333333333333333",
};

//  Packs C's held list as a READY would and reads it back: returns how
//  many entries it has, with the first one's model, type and bytes.
static size_t
s_held (wrk_wcache_t *c, char model [65], char type [32], uint64_t *bytes)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    cmn_pack_key (&pk, "weights");
    wrk_wcache_pack_held (c, &pk);
    cmn_body_t b;
    cr_assert_eq (cmn_body_decode (&b, sb.data, sb.size, &cmn_codec_limits_default, NULL), 0);
    const msgpack_object *held = NULL;
    cr_assert_eq (cmn_codec_get_array (&b.root, "weights", &held, NULL), 0);
    const size_t n = held->via.array.size;
    if (n) {
        const msgpack_object *first = &held->via.array.ptr [0];
        cr_assert_eq (cmn_codec_get_cstr (first, "model", model, 65, NULL), 0);
        cr_assert_eq (cmn_codec_get_cstr (first, "type", type, 32, NULL), 0);
        if (bytes)
            cr_assert_eq (cmn_codec_get_uint (first, "bytes", bytes, NULL), 0);
    }
    cmn_body_free (&b);
    msgpack_sbuffer_destroy (&sb);
    return n;
}

Test (wrk_wcache, tensors_live_in_device_buffers)
{
    wrk_wcache_t *c = wrk_wcache_new (s_dev, 4 * s_bytes);
    cr_assert_not_null (c);
    cmn_err_t err = { 0 };
    cr_assert_eq (wrk_wcache_load_gguf (c, M [0], "q8_0", s_path [0], "\x81\xa1k\x01", 4, &err),
                  0, "%s", err.msg);
    cr_assert_eq (wrk_wcache_count (c), 1);
    cr_assert_eq (wrk_wcache_bytes (c), s_bytes);
    //  Every tensor, read back from the device, is the file's bytes.
    cmn_gguf_t *g = cmn_gguf_open_file (s_path [0], NULL, &err);
    for (size_t i = 0; i < cmn_gguf_tensor_count (g); i++) {
        const cmn_gguf_tensor_t *t = cmn_gguf_tensor (g, i);
        cl_mem buf = wrk_wcache_tensor (c, M [0], "q8_0", t->name);
        cr_assert_not_null (buf, "%s not held", t->name);
        void *back = malloc (t->size);
        cr_assert_eq (clEnqueueReadBuffer (wrk_device_queue (s_dev), buf, CL_TRUE, 0, t->size,
                                           back, 0, NULL, NULL), CL_SUCCESS);
        cr_assert_eq (memcmp (back, t->data, t->size), 0, "%s differs on the device", t->name);
        free (back);
    }
    cmn_gguf_destroy (&g);
    cr_assert_null (wrk_wcache_tensor (c, M [0], "q8_0", "no.such.tensor"));
    cr_assert_null (wrk_wcache_tensor (c, M [0], "q4_0", "output.weight"), "type is in the key");
    const void *extra = NULL;
    size_t len = 0;
    uint64_t bytes = 0;
    cr_assert (wrk_wcache_lookup (c, M [0], "q8_0", &extra, &len, &bytes));
    cr_assert_eq (len, 4);
    cr_assert_eq (memcmp (extra, "\x81\xa1k\x01", 4), 0);
    cr_assert_eq (bytes, s_bytes);
    cr_assert_not (wrk_wcache_lookup (c, M [1], "q8_0", NULL, NULL, NULL));
    wrk_wcache_destroy (&c);
    wrk_wcache_destroy (&c);
}

Test (wrk_wcache, lru_under_the_budget)
{
    //  Room for two entries, not three.
    wrk_wcache_t *c = wrk_wcache_new (s_dev, 2 * s_bytes + s_bytes / 2);
    cmn_err_t err = { 0 };
    cr_assert_eq (wrk_wcache_load_gguf (c, M [0], "q8_0", s_path [0], NULL, 0, &err), 0);
    cr_assert_eq (wrk_wcache_load_gguf (c, M [1], "q8_0", s_path [1], NULL, 0, &err), 0);
    //  Use the first: the second is now the least recently used.
    cr_assert (wrk_wcache_lookup (c, M [0], "q8_0", NULL, NULL, NULL));
    cr_assert_eq (wrk_wcache_load_gguf (c, M [2], "q8_0", s_path [2], NULL, 0, &err), 0);
    cr_assert_eq (wrk_wcache_count (c), 2);
    cr_assert (wrk_wcache_lookup (c, M [0], "q8_0", NULL, NULL, NULL));
    cr_assert_not (wrk_wcache_lookup (c, M [1], "q8_0", NULL, NULL, NULL), "LRU evicted");
    cr_assert (wrk_wcache_lookup (c, M [2], "q8_0", NULL, NULL, NULL));
    cr_assert_leq (wrk_wcache_bytes (c), wrk_wcache_budget (c));
    //  Held, most recently used first.
    char model [65], type [32];
    cr_assert_eq (s_held (c, model, type, NULL), 2);
    cr_assert_str_eq (model, M [2]);
    //  Reloading a key replaces it, and drop removes it.
    cr_assert_eq (wrk_wcache_load_gguf (c, M [2], "q8_0", s_path [2], NULL, 0, &err), 0);
    cr_assert_eq (wrk_wcache_count (c), 2);
    wrk_wcache_drop (c, M [2], "q8_0");
    cr_assert_eq (wrk_wcache_count (c), 1);
    cr_assert_eq (wrk_wcache_bytes (c), s_bytes);
    wrk_wcache_destroy (&c);
}

Test (wrk_wcache, over_budget_or_unreadable_is_refused_without_evicting)
{
    wrk_wcache_t *c = wrk_wcache_new (s_dev, s_bytes + 1);
    cmn_err_t err = { 0 };
    cr_assert_eq (wrk_wcache_load_gguf (c, M [0], "q8_0", s_path [0], NULL, 0, &err), 0);
    wrk_wcache_t *small = wrk_wcache_new (s_dev, s_bytes - 1);
    cr_assert_eq (wrk_wcache_load_gguf (small, M [0], "q8_0", s_path [0], NULL, 0, &err), -1);
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    cr_assert (strstr (err.msg, "budget"), "%s", err.msg);
    cr_assert_eq (wrk_wcache_count (small), 0);
    char bad [160];
    snprintf (bad, sizeof bad, "%s/bad.gguf", s_dir);
    FILE *f = fopen (bad, "wb");
    fputs ("GGUF?", f);
    fclose (f);
    cr_assert_eq (wrk_wcache_load_gguf (c, M [1], "q8_0", bad, NULL, 0, &err), -1);
    cr_assert_eq (cmn_error_primary (err.code), RXQ_E_FORMAT, "%s", err.msg);
    cr_assert_eq (wrk_wcache_count (c), 1, "a bad file evicts nothing");
    wrk_wcache_destroy (&small);
    wrk_wcache_destroy (&c);
}

//  An object entry (what generate keeps: a loaded model) counts in the
//  same budget and LRU order as tensor entries, and its destroy callback
//  runs exactly once whenever it goes: evicted, replaced, dropped or at
//  destroy. A refused put leaves the object with the caller.
typedef struct {
    int *freed;                 // incremented by s_obj_free
    int id;                     // which object
} s_obj_t;

static void
s_obj_free (void *arg)
{
    s_obj_t *o = arg;
    (*o->freed)++;
    free (o);
}

static s_obj_t *
s_obj (int *freed, int id)
{
    s_obj_t *o = calloc (1, sizeof *o);
    cr_assert_not_null (o);
    o->freed = freed;
    o->id = id;
    return o;
}

Test (wrk_wcache, objects_share_the_budget_and_are_destroyed_once)
{
    //  Room for two models' worth: one GGUF entry plus one object of the
    //  same size, not a third.
    wrk_wcache_t *c = wrk_wcache_new (s_dev, 2 * s_bytes + s_bytes / 2);
    cmn_err_t err = { 0 };
    int freed [3] = { 0, 0, 0 };
    cr_assert_eq (wrk_wcache_load_gguf (c, M [0], "q8_0", s_path [0], NULL, 0, &err), 0);
    void *obj = s_obj (&freed [0], 0);
    cr_assert_eq (wrk_wcache_put (c, M [1], "llm", &obj, s_bytes, s_obj_free, &err), 0,
                  "%s", err.msg);
    cr_assert_null (obj, "the cache owns the object now");
    cr_assert_eq (wrk_wcache_count (c), 2);
    cr_assert_eq (wrk_wcache_bytes (c), 2 * s_bytes);
    s_obj_t *got = wrk_wcache_object (c, M [1], "llm");
    cr_assert_not_null (got);
    cr_assert_eq (got->id, 0);
    cr_assert_null (wrk_wcache_object (c, M [1], "q8_0"), "type is in the key");
    cr_assert_null (wrk_wcache_object (c, M [0], "q8_0"), "a tensor entry has no object");
    cr_assert_null (wrk_wcache_tensor (c, M [1], "llm", "output.weight"));
    uint64_t bytes = 0;
    cr_assert (wrk_wcache_lookup (c, M [1], "llm", NULL, NULL, &bytes));
    cr_assert_eq (bytes, s_bytes);

    //  The object was used last: a third entry evicts the GGUF one.
    cr_assert_not_null (wrk_wcache_object (c, M [1], "llm"));
    obj = s_obj (&freed [1], 1);
    cr_assert_eq (wrk_wcache_put (c, M [2], "llm", &obj, s_bytes, s_obj_free, &err), 0);
    cr_assert_eq (wrk_wcache_count (c), 2);
    cr_assert_not (wrk_wcache_lookup (c, M [0], "q8_0", NULL, NULL, NULL), "LRU evicted");
    cr_assert_eq (freed [0] + freed [1], 0, "no object destroyed yet");
    //  Now the first object is the least recently used: reserving room
    //  for one more evicts it, and destroys it once.
    cr_assert_eq (wrk_wcache_reserve (c, s_bytes, &err), 0);
    cr_assert_eq (freed [0], 1);
    cr_assert_null (wrk_wcache_object (c, M [1], "llm"));
    cr_assert_eq (wrk_wcache_bytes (c), s_bytes);
    cr_assert_eq (wrk_wcache_reserve (c, s_bytes, &err), 0, "fits: nothing more evicted");
    cr_assert_eq (wrk_wcache_count (c), 1);

    //  Over the whole budget: refused, nothing evicted, the caller keeps it.
    obj = s_obj (&freed [2], 2);
    cr_assert_eq (wrk_wcache_put (c, M [0], "llm", &obj, wrk_wcache_budget (c) + 1, s_obj_free,
                                  &err), -1);
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    cr_assert_not_null (obj, "a refused object stays the caller's");
    cr_assert_eq (wrk_wcache_reserve (c, wrk_wcache_budget (c) + 1, &err), -1);
    cr_assert_eq (err.code, RXQ_E_LIMIT);
    cr_assert_eq (wrk_wcache_count (c), 1);
    cr_assert_eq (freed [1], 0);

    //  Replacing a key destroys the old object; held lists it with its
    //  bytes; destroy frees the rest once.
    cr_assert_eq (wrk_wcache_put (c, M [2], "llm", &obj, s_bytes / 2, s_obj_free, &err), 0);
    cr_assert_eq (freed [1], 1, "replaced");
    cr_assert_eq (wrk_wcache_count (c), 1);
    cr_assert_eq (wrk_wcache_bytes (c), s_bytes / 2);
    char model [65], type [32];
    uint64_t held_bytes = 0;
    cr_assert_eq (s_held (c, model, type, &held_bytes), 1);
    cr_assert_str_eq (model, M [2]);
    cr_assert_str_eq (type, "llm");
    cr_assert_eq (held_bytes, s_bytes / 2);
    wrk_wcache_drop (c, M [2], "llm");
    cr_assert_eq (freed [2], 1, "dropped");
    obj = s_obj (&freed [2], 3);
    cr_assert_eq (wrk_wcache_put (c, M [0], "llm", &obj, 1, s_obj_free, &err), 0);
    wrk_wcache_destroy (&c);
    cr_assert_eq (freed [2], 2, "destroyed with the cache");
    cr_assert_eq (freed [0], 1);
    cr_assert_eq (freed [1], 1);
}
