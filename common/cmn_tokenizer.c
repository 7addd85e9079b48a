/*  cmn_tokenizer: see cmn_tokenizer.h.
 *
 *  Lookups (token text -> id, merge pair -> rank) go through one small
 *  open-addressing table whose keys are the strings in the GGUF buffer, so
 *  a vocabulary of 50k tokens and 50k merges costs two arrays of ints and
 *  nothing is copied. Merging keeps the rank (or score) of every adjacent
 *  pair and recomputes only the two pairs a merge touches, so a piece of n
 *  symbols costs O(n^2) integer comparisons at worst, not O(n^2) lookups.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "cmn_tokenizer.h"
#include <assert.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_MAX_TEXT   (64u << 20)     // bytes of text encode accepts
#define TOK_MAX_REGEX  2               // pre-tokenizer expressions

//  Token types (llama.cpp's numbering in tokenizer.ggml.token_type).
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef struct {
    const char *ptr;            // bytes in the GGUF buffer
    uint32_t len;               // length in bytes
} s_str_t;

//  Open-addressing table of indices into KEYS; 0 marks an empty slot.
typedef struct {
    uint32_t *slots;            // index + 1, or 0
    size_t mask;                // slots - 1, slots a power of two
    const s_str_t *keys;        // key of index i
} s_map_t;

struct _cmn_tokenizer_t {
    bool spm;                   // "llama" (SentencePiece) rather than "gpt2"
    int n_vocab;                // tokens
    s_str_t *text;              // [n_vocab] token texts
    uint8_t *type;              // [n_vocab] token types
    float *score;               // [n_vocab] scores (spm)
    s_str_t *merges;            // [n_merges] "left right" (gpt2)
    size_t n_merges;            // merges
    s_map_t vocab;              // text -> id
    s_map_t ranks;              // merge -> rank
    int32_t *special;           // ids matched in text, longest first
    size_t n_special;           // entries of special
    int32_t bos, eos, unk;      // ids, -1 when absent
    bool add_bos;               // prompts start with BOS
    bool add_space_prefix;      // spm: prefix raw text with a space
    pcre2_code *re [TOK_MAX_REGEX]; // pre-tokenizer expressions, in order
    int n_re;                   // entries of re
    pcre2_match_data *md;       // match data sized for re
    int byte_cp [256];          // gpt2: byte -> printable code point
    int16_t cp_byte [512];      // gpt2: code point -> byte, -1 for none
    int32_t byte_tok [256];     // spm: <0xXX> token per byte, -1 for none
    char *chat_system;          // ChatML default system message, or NULL
    bool chat;                  // a ChatML template is present
};

// ---------------------------------------------------------------------------
// Lookup table

static uint64_t
s_hash (const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t) p [i]) * 0x100000001b3ull;
    return h;
}

//  Builds MAP over the N KEYS; a key seen twice keeps its first index.
static int
s_map_build (s_map_t *map, const s_str_t *keys, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap <<= 1;
    map->slots = calloc (cap, sizeof *map->slots);
    if (!map->slots)
        return -1;
    map->mask = cap - 1;
    map->keys = keys;
    for (size_t i = 0; i < n; i++) {
        size_t s = s_hash (keys [i].ptr, keys [i].len) & map->mask;
        bool dup = false;
        while (map->slots [s]) {
            const s_str_t *k = &keys [map->slots [s] - 1];
            if (k->len == keys [i].len && memcmp (k->ptr, keys [i].ptr, k->len) == 0) {
                dup = true;
                break;
            }
            s = (s + 1) & map->mask;
        }
        if (!dup)
            map->slots [s] = (uint32_t) i + 1;
    }
    return 0;
}

//  Index of key P[0..N), or -1.
static int32_t
s_map_find (const s_map_t *map, const char *p, size_t n)
{
    if (!map->slots)
        return -1;
    size_t s = s_hash (p, n) & map->mask;
    while (map->slots [s]) {
        const s_str_t *k = &map->keys [map->slots [s] - 1];
        if (k->len == n && memcmp (k->ptr, p, n) == 0)
            return (int32_t) map->slots [s] - 1;
        s = (s + 1) & map->mask;
    }
    return -1;
}

// ---------------------------------------------------------------------------
// Growable arrays

typedef struct {
    int32_t *v;
    size_t n, cap;
    bool failed;                // an allocation failed; contents incomplete
} s_ids_t;

static void
s_ids_push (s_ids_t *a, int32_t id)
{
    if (a->failed)
        return;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc (a->v, cap * sizeof *v);
        if (!v) {
            a->failed = true;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v [a->n++] = id;
}

static int
s_utf8_len (uint8_t c)
{
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) return 2;
    if ((c & 0xf0) == 0xe0) return 3;
    if ((c & 0xf8) == 0xf0) return 4;
    return 1;       // a stray continuation or invalid byte stands alone
}

static size_t
s_utf8_put (int cp, char *out)
{
    if (cp < 0x80) { out [0] = (char) cp; return 1; }
    if (cp < 0x800) {
        out [0] = (char) (0xc0 | (cp >> 6));
        out [1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }
    out [0] = (char) (0xe0 | (cp >> 12));
    out [1] = (char) (0x80 | ((cp >> 6) & 0x3f));
    out [2] = (char) (0x80 | (cp & 0x3f));
    return 3;
}

// ---------------------------------------------------------------------------
// Merging: symbols are spans of BUF linked in a list; pair i is (i, next[i])

typedef struct {
    char *buf;                  // the piece's bytes (mapped, for gpt2)
    int32_t *start, *len;       // span of symbol i
    int32_t *next, *prev;       // list links, -1 at the ends
    double *key;                // pair (i, next[i]) priority; lower merges
                                // first; HUGE_VAL when not mergeable
    int32_t *merged;            // token id of the pair's concatenation
    int n;                      // symbols allocated
} s_sym_t;

#define S_NO_MERGE 1e300

//  Priority of merging symbols A and B: the merge's rank (gpt2) or minus
//  the score of the joined token (spm); S_NO_MERGE when they cannot merge.
static double
s_pair_key (cmn_tokenizer_t *self, s_sym_t *s, int a, int b, int32_t *id, char *tmp)
{
    *id = -1;
    if (a < 0 || b < 0)
        return S_NO_MERGE;
    const char *pa = s->buf + s->start [a], *pb = s->buf + s->start [b];
    if (self->spm) {
        //  Symbols are adjacent in BUF, so the concatenation is in place.
        const int32_t t = s_map_find (&self->vocab, pa, (size_t) (s->len [a] + s->len [b]));
        if (t < 0)
            return S_NO_MERGE;
        *id = t;
        return -(double) self->score [t];
    }
    memcpy (tmp, pa, (size_t) s->len [a]);
    tmp [s->len [a]] = ' ';
    memcpy (tmp + s->len [a] + 1, pb, (size_t) s->len [b]);
    const int32_t r = s_map_find (&self->ranks, tmp, (size_t) (s->len [a] + s->len [b] + 1));
    return r < 0 ? S_NO_MERGE : (double) r;
}

//  Merges the symbols of BUF[0..LEN) (split at UTF-8 characters) and
//  appends their ids to OUT.
static int
s_merge (cmn_tokenizer_t *self, char *buf, size_t len, s_ids_t *out)
{
    if (len == 0)
        return 0;
    s_sym_t s = { .buf = buf };
    const size_t n = len;       // at most one symbol per byte
    s.start = malloc (n * sizeof (int32_t));
    s.len = malloc (n * sizeof (int32_t));
    s.next = malloc (n * sizeof (int32_t));
    s.prev = malloc (n * sizeof (int32_t));
    s.key = malloc (n * sizeof (double));
    s.merged = malloc (n * sizeof (int32_t));
    char *tmp = malloc (len + 2);
    int rc = -1;
    if (!s.start || !s.len || !s.next || !s.prev || !s.key || !s.merged || !tmp)
        goto done;
    for (size_t i = 0; i < len; ) {
        size_t l = (size_t) s_utf8_len ((uint8_t) buf [i]);
        if (i + l > len)
            l = len - i;
        s.start [s.n] = (int32_t) i;
        s.len [s.n] = (int32_t) l;
        s.prev [s.n] = s.n - 1;
        s.next [s.n] = -1;
        if (s.n > 0)
            s.next [s.n - 1] = s.n;
        s.n++;
        i += l;
    }
    for (int i = 0; i < s.n; i++)
        s.key [i] = s_pair_key (self, &s, i, s.next [i], &s.merged [i], tmp);
    for (;;) {
        int best = -1;
        double bk = S_NO_MERGE;
        for (int i = 0; i >= 0; i = s.next [i])
            if (s.key [i] < bk) {
                bk = s.key [i];
                best = i;
            }
        if (best < 0)
            break;
        const int b = s.next [best];
        s.len [best] += s.len [b];
        s.next [best] = s.next [b];
        if (s.next [b] >= 0)
            s.prev [s.next [b]] = best;
        s.key [best] = s_pair_key (self, &s, best, s.next [best], &s.merged [best], tmp);
        if (s.prev [best] >= 0)
            s.key [s.prev [best]] = s_pair_key (self, &s, s.prev [best], best,
                                                &s.merged [s.prev [best]], tmp);
    }
    for (int i = 0; i >= 0; i = s.next [i]) {
        const char *p = buf + s.start [i];
        const int32_t id = s_map_find (&self->vocab, p, (size_t) s.len [i]);
        if (id >= 0)
            s_ids_push (out, id);
        else
        if (self->spm) {
            //  Byte fallback: the symbol's bytes as <0xXX> tokens.
            for (int k = 0; k < s.len [i]; k++) {
                const int32_t bt = self->byte_tok [(uint8_t) p [k]];
                if (bt >= 0)
                    s_ids_push (out, bt);
                else
                if (self->unk >= 0)
                    s_ids_push (out, self->unk);
            }
        }
        else
        if (self->unk >= 0)
            s_ids_push (out, self->unk);
    }
    rc = 0;
done:
    free (s.start); free (s.len); free (s.next); free (s.prev);
    free (s.key); free (s.merged); free (tmp);
    return rc;
}

// ---------------------------------------------------------------------------
// Raw text

typedef struct {
    size_t off, len;
} s_span_t;

//  gpt2: splits TEXT by the pre-tokenizer expressions and merges each
//  piece's byte-mapped symbols.
static int
s_encode_bpe (cmn_tokenizer_t *self, const char *text, size_t len, s_ids_t *out)
{
    s_span_t *cur = malloc (sizeof *cur);
    size_t n_cur = 1;
    if (!cur)
        return -1;
    cur [0] = (s_span_t) { 0, len };
    for (int r = 0; r < self->n_re; r++) {
        //  Every piece splits into at most its length in pieces.
        s_span_t *nxt = malloc ((len + 1) * sizeof *nxt);
        if (!nxt) {
            free (cur);
            return -1;
        }
        size_t n_nxt = 0;
        for (size_t p = 0; p < n_cur; p++) {
            const PCRE2_SPTR subj = (PCRE2_SPTR) (text + cur [p].off);
            const size_t sl = cur [p].len;
            size_t at = 0;
            while (at < sl) {
                const int rc = pcre2_match (self->re [r], subj, sl, at, 0, self->md, NULL);
                if (rc < 0)
                    break;
                const PCRE2_SIZE *ov = pcre2_get_ovector_pointer (self->md);
                if (ov [1] <= ov [0])
                    break;      // an empty match: treat the rest as unmatched
                if (ov [0] > at)
                    nxt [n_nxt++] = (s_span_t) { cur [p].off + at, ov [0] - at };
                nxt [n_nxt++] = (s_span_t) { cur [p].off + ov [0], ov [1] - ov [0] };
                at = ov [1];
            }
            if (at < sl)
                nxt [n_nxt++] = (s_span_t) { cur [p].off + at, sl - at };
        }
        free (cur);
        cur = nxt;
        n_cur = n_nxt;
    }
    int rc = 0;
    char *buf = NULL;
    size_t cap = 0;
    for (size_t p = 0; p < n_cur && rc == 0; p++) {
        if (cur [p].len * 2 > cap) {
            cap = cur [p].len * 2;
            char *nb = realloc (buf, cap);
            if (!nb) {
                rc = -1;
                break;
            }
            buf = nb;
        }
        size_t bl = 0;
        for (size_t i = 0; i < cur [p].len; i++)
            bl += s_utf8_put (self->byte_cp [(uint8_t) text [cur [p].off + i]], buf + bl);
        rc = s_merge (self, buf, bl, out);
    }
    free (buf);
    free (cur);
    return rc;
}

//  spm: escapes spaces as U+2581 (with the prefix space when asked) and
//  merges the characters by score.
static int
s_encode_spm (cmn_tokenizer_t *self, const char *text, size_t len, bool prefix, s_ids_t *out)
{
    char *buf = malloc (len * 3 + 3);
    if (!buf)
        return -1;
    size_t bl = 0;
    if (prefix) {
        memcpy (buf, "\xe2\x96\x81", 3);
        bl = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text [i] == ' ') {
            memcpy (buf + bl, "\xe2\x96\x81", 3);
            bl += 3;
        }
        else
            buf [bl++] = text [i];
    }
    int rc = s_merge (self, buf, bl, out);
    free (buf);
    return rc;
}

int
cmn_tokenizer_encode (cmn_tokenizer_t *self, const char *text, size_t len,
                      bool parse_special, bool add_bos, int32_t **ids, size_t *n,
                      cmn_err_t *err)
{
    assert (self && (text || len == 0) && ids && n);
    *ids = NULL;
    *n = 0;
    if (len > TOK_MAX_TEXT)
        return cmn_err_set (err, RXQ_E_LIMIT, "text of %zu bytes is over the tokenizer's "
                            "limit of %u", len, TOK_MAX_TEXT);
    s_ids_t out = { 0 };
    if (add_bos && self->bos >= 0)
        s_ids_push (&out, self->bos);
    int rc = 0;
    bool prev_special = true;   // spm prefixes raw text at the start and after specials
    size_t seg = 0, i = 0;
    while (i <= len && rc == 0) {
        int32_t hit = -1;
        if (parse_special && i < len)
            for (size_t k = 0; k < self->n_special; k++) {
                const s_str_t *t = &self->text [self->special [k]];
                if (t->len <= len - i && (uint8_t) t->ptr [0] == (uint8_t) text [i]
                &&  memcmp (t->ptr, text + i, t->len) == 0) {
                    hit = self->special [k];
                    break;
                }
            }
        if (hit < 0 && i < len) {
            i++;
            continue;
        }
        if (i > seg) {
            rc = self->spm
               ? s_encode_spm (self, text + seg, i - seg, self->add_space_prefix && prev_special, &out)
               : s_encode_bpe (self, text + seg, i - seg, &out);
            prev_special = false;
        }
        if (hit < 0)
            break;
        s_ids_push (&out, hit);
        prev_special = true;
        i += self->text [hit].len;
        seg = i;
    }
    if (rc < 0 || out.failed) {
        free (out.v);
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory tokenizing %zu bytes", len);
    }
    *ids = out.v;
    *n = out.n;
    return 0;
}

// ---------------------------------------------------------------------------
// Decoding

size_t
cmn_tokenizer_piece (const cmn_tokenizer_t *self, int32_t id, bool special,
                     char *buf, size_t cap)
{
    assert (self && (buf || cap == 0));
    if (id < 0 || id >= self->n_vocab)
        return 0;
    const s_str_t *t = &self->text [id];
    const int type = self->type [id];
    size_t n = 0;
#define PUT(c) do { if (n < cap) buf [n] = (char) (c); n++; } while (0)
    if (type == TT_CONTROL || type == TT_UNKNOWN || type == TT_UNUSED) {
        if (!special)
            return 0;
        for (uint32_t i = 0; i < t->len; i++)
            PUT (t->ptr [i]);
        return n;
    }
    if (type == TT_USER) {
        for (uint32_t i = 0; i < t->len; i++)
            PUT (t->ptr [i]);
        return n;
    }
    if (self->spm) {
        unsigned byte;
        if (type == TT_BYTE && t->len == 6 && sscanf (t->ptr, "<0x%2X>", &byte) == 1) {
            PUT (byte);
            return n;
        }
        for (uint32_t i = 0; i < t->len; ) {
            if (i + 3 <= t->len && memcmp (t->ptr + i, "\xe2\x96\x81", 3) == 0) {
                PUT (' ');
                i += 3;
            }
            else
                PUT (t->ptr [i++]);
        }
        return n;
    }
    //  gpt2: every code point of a normal token is a mapped byte.
    for (uint32_t i = 0; i < t->len; ) {
        const uint8_t c = (uint8_t) t->ptr [i];
        int cp = c, l = 1;
        if ((c & 0xe0) == 0xc0 && i + 1 < t->len) {
            cp = ((c & 0x1f) << 6) | (t->ptr [i + 1] & 0x3f);
            l = 2;
        }
        if (cp < 512 && self->cp_byte [cp] >= 0)
            PUT (self->cp_byte [cp]);
        else
            for (int k = 0; k < l; k++)
                PUT (t->ptr [i + k]);
        i += (uint32_t) l;
    }
#undef PUT
    return n;
}

// ---------------------------------------------------------------------------
// Construction

//  Pre-tokenizer expressions per tokenizer.ggml.pre (llama.cpp's).
static const char *s_re_gpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char *s_re_llama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *s_re_digits = "\\p{N}";
static const char *s_re_smollm =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

static int
s_add_regex (cmn_tokenizer_t *self, const char *pattern, cmn_err_t *err)
{
    assert (self->n_re < TOK_MAX_REGEX);
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile ((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED,
                                    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                                    &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg [128];
        pcre2_get_error_message (code, msg, sizeof msg);
        return cmn_err_set (err, RXQ_E_INTERNAL, "pre-tokenizer expression: %s at %zu",
                            (char *) msg, (size_t) at);
    }
    self->re [self->n_re++] = re;
    return 0;
}

static int
s_pre (cmn_tokenizer_t *self, const char *pre, size_t len, cmn_err_t *err)
{
#define IS(s) (len == strlen (s) && memcmp (pre, s, len) == 0)
    int rc;
    if (!pre || IS ("default") || IS ("gpt2") || IS ("gpt-2"))
        rc = s_add_regex (self, s_re_gpt2, err);
    else
    if (IS ("smollm") || IS ("starcoder") || IS ("refact") || IS ("codeshell")
    ||  IS ("command-r") || IS ("exaone") || IS ("minerva-7b"))
        rc = s_add_regex (self, s_re_digits, err) ? -1 : s_add_regex (self, s_re_smollm, err);
    else
    if (IS ("llama3") || IS ("llama-bpe") || IS ("llama-v3") || IS ("smaug-bpe"))
        rc = s_add_regex (self, s_re_llama3, err);
    else
        return cmn_err_set (err, RXQ_E_UNSUPPORTED, "pre-tokenizer '%.*s' "
                            "(tokenizer.ggml.pre) is not supported; supported: default, gpt2, "
                            "smollm, starcoder, refact, llama3, llama-bpe", (int) (len > 64 ? 64 : len), pre);
#undef IS
    if (rc < 0)
        return -1;
    self->md = pcre2_match_data_create (32, NULL);
    return self->md ? 0 : cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
}

//  Reads a string array KEY into *OUT (malloc'ed, N entries).
static int
s_strings (const cmn_gguf_t *g, const char *key, bool required, s_str_t **out, size_t *n,
           cmn_err_t *err)
{
    const cmn_gguf_value_t *arr = NULL;
    *out = NULL;
    *n = 0;
    if (cmn_gguf_get_array (g, key, &arr, err) < 0)
        return -1;
    if (!arr)
        return required ? cmn_err_set (err, RXQ_E_FORMAT, "model has no tokenizer: "
                                       "metadata '%s' is missing", key) : 0;
    if (arr->v.arr.elem != CMN_GGUF_STRING)
        return cmn_err_set (err, RXQ_E_FORMAT, "metadata '%s' is an array of %s, not of "
                            "strings", key, cmn_gguf_type_name (arr->v.arr.elem));
    if (arr->v.arr.n == 0 || arr->v.arr.n > INT32_MAX / 2)
        return cmn_err_set (err, RXQ_E_FORMAT, "metadata '%s' has %zu entries", key,
                            arr->v.arr.n);
    *out = calloc (arr->v.arr.n, sizeof **out);
    if (!*out)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < arr->v.arr.n; i++) {
        const cmn_gguf_value_t *v = &arr->v.arr.items [i];
        if (v->v.str.len == 0 || v->v.str.len > UINT32_MAX / 4)
            return cmn_err_set (err, RXQ_E_FORMAT, "metadata '%s': entry %zu is %s", key, i,
                                v->v.str.len ? "too long" : "empty");
        (*out) [i] = (s_str_t) { v->v.str.ptr, (uint32_t) v->v.str.len };
    }
    *n = arr->v.arr.n;
    return 0;
}

//  Reads an optional token id KEY into *OUT (unchanged when absent).
static int
s_token_id (const cmn_tokenizer_t *self, const cmn_gguf_t *g, const char *key, int32_t *out,
            cmn_err_t *err)
{
    uint64_t v;
    int rc = cmn_gguf_get_uint (g, key, &v, err);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        if (v >= (uint64_t) self->n_vocab)
            return cmn_err_set (err, RXQ_E_FORMAT, "metadata '%s' = %llu is outside the "
                                "vocabulary of %d tokens", key, (unsigned long long) v,
                                self->n_vocab);
        *out = (int32_t) v;
    }
    return 0;
}

static int
s_cmp_special (const void *a, const void *b, void *arg)
{
    const cmn_tokenizer_t *self = arg;
    const uint32_t la = self->text [*(const int32_t *) a].len;
    const uint32_t lb = self->text [*(const int32_t *) b].len;
    return la < lb ? 1 : la > lb ? -1 : (*(const int32_t *) a - *(const int32_t *) b);
}

//  Finds the ChatML default system message in TEMPLATE, if it has one.
static int
s_chat (cmn_tokenizer_t *self, const char *tpl, size_t len)
{
    static const char open [] = "<|im_start|>system";
    const char *end = tpl + len;
    if (!memmem (tpl, len, "<|im_start|>", 12))
        return 0;
    self->chat = true;
    const char *p = memmem (tpl, len, open, sizeof open - 1);
    if (!p)
        return 0;
    p += sizeof open - 1;
    if (p < end && *p == '\n')
        p++;
    else
    if (p + 1 < end && p [0] == '\\' && p [1] == 'n')
        p += 2;
    else
        return 0;
    const char *q = memmem (p, (size_t) (end - p), "<|im_end|>", 10);
    //  Only a literal message: an expression such as messages[0]['content']
    //  sits outside the quotes and is not a default.
    if (!q || memchr (p, '\'', (size_t) (q - p)) || memchr (p, '{', (size_t) (q - p)))
        return 0;
    self->chat_system = malloc ((size_t) (q - p) + 1);
    if (!self->chat_system)
        return -1;
    size_t n = 0;
    for (const char *c = p; c < q; c++) {
        if (c + 1 < q && c [0] == '\\' && c [1] == 'n') {
            self->chat_system [n++] = '\n';
            c++;
        }
        else
            self->chat_system [n++] = *c;
    }
    self->chat_system [n] = 0;
    return 0;
}

cmn_tokenizer_t *
cmn_tokenizer_new (const cmn_gguf_t *g, cmn_err_t *err)
{
    assert (g);
    cmn_tokenizer_t *self = calloc (1, sizeof *self);
    if (!self) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        return NULL;
    }
    self->bos = self->eos = self->unk = -1;
    const char *model = NULL, *pre = NULL;
    size_t model_len = 0, pre_len = 0, n = 0;
    int rc = cmn_gguf_get_str (g, "tokenizer.ggml.model", &model, &model_len, err);
    if (rc < 0)
        goto fail;
    if (rc == 1) {
        cmn_err_set (err, RXQ_E_FORMAT, "model has no tokenizer: metadata "
                     "'tokenizer.ggml.model' is missing");
        goto fail;
    }
    if (model_len == 5 && memcmp (model, "llama", 5) == 0)
        self->spm = true;
    else
    if (!(model_len == 4 && memcmp (model, "gpt2", 4) == 0)) {
        cmn_err_set (err, RXQ_E_UNSUPPORTED, "tokenizer model '%.*s' is not supported "
                     "(only 'gpt2' byte-level BPE and 'llama' SentencePiece)",
                     (int) (model_len > 64 ? 64 : model_len), model);
        goto fail;
    }
    if (s_strings (g, "tokenizer.ggml.tokens", true, &self->text, &n, err) < 0)
        goto fail;
    self->n_vocab = (int) n;
    self->type = malloc (n);
    self->score = calloc (n, sizeof *self->score);
    if (!self->type || !self->score) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        goto fail;
    }
    memset (self->type, TT_NORMAL, n);
    const cmn_gguf_value_t *arr = NULL;
    if (cmn_gguf_get_array (g, "tokenizer.ggml.token_type", &arr, err) < 0)
        goto fail;
    if (arr) {
        if (arr->v.arr.n != n || (arr->v.arr.elem != CMN_GGUF_INT32
                               && arr->v.arr.elem != CMN_GGUF_UINT32)) {
            cmn_err_set (err, RXQ_E_FORMAT, "metadata 'tokenizer.ggml.token_type' must be "
                         "%zu int32 values", n);
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            cmn_gguf_value_t v;
            cmn_gguf_array_get (arr, i, &v);
            self->type [i] = (uint8_t) (v.v.i >= 1 && v.v.i <= 6 ? v.v.i : TT_NORMAL);
        }
    }
    arr = NULL;
    if (cmn_gguf_get_array (g, "tokenizer.ggml.scores", &arr, err) < 0)
        goto fail;
    if (arr) {
        if (arr->v.arr.n != n || arr->v.arr.elem != CMN_GGUF_FLOAT32) {
            cmn_err_set (err, RXQ_E_FORMAT, "metadata 'tokenizer.ggml.scores' must be "
                         "%zu float32 values", n);
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            cmn_gguf_value_t v;
            cmn_gguf_array_get (arr, i, &v);
            self->score [i] = (float) v.v.f;
        }
    }
    else
    if (self->spm) {
        cmn_err_set (err, RXQ_E_FORMAT, "model has no tokenizer scores: metadata "
                     "'tokenizer.ggml.scores' is missing (needed by the 'llama' tokenizer)");
        goto fail;
    }
    if (!self->spm && s_strings (g, "tokenizer.ggml.merges", true, &self->merges,
                                 &self->n_merges, err) < 0)
        goto fail;
    if (s_map_build (&self->vocab, self->text, n) < 0
    ||  (self->merges && s_map_build (&self->ranks, self->merges, self->n_merges) < 0)) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        goto fail;
    }
    if (s_token_id (self, g, "tokenizer.ggml.bos_token_id", &self->bos, err)
    ||  s_token_id (self, g, "tokenizer.ggml.eos_token_id", &self->eos, err)
    ||  s_token_id (self, g, "tokenizer.ggml.unknown_token_id", &self->unk, err))
        goto fail;
    self->add_bos = self->spm;
    self->add_space_prefix = self->spm;
    if (cmn_gguf_get_bool (g, "tokenizer.ggml.add_bos_token", &self->add_bos, err) < 0
    ||  cmn_gguf_get_bool (g, "tokenizer.ggml.add_space_prefix", &self->add_space_prefix, err) < 0)
        goto fail;

    //  Special tokens, longest first so "<|im_start|>" wins over "<".
    self->special = malloc (n * sizeof *self->special);
    if (!self->special) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        if (self->type [i] == TT_CONTROL || self->type [i] == TT_USER
        ||  self->type [i] == TT_UNKNOWN)
            self->special [self->n_special++] = (int32_t) i;
    qsort_r (self->special, self->n_special, sizeof *self->special, s_cmp_special, self);

    if (self->spm) {
        for (int b = 0; b < 256; b++) {
            char name [8];
            snprintf (name, sizeof name, "<0x%02X>", b);
            self->byte_tok [b] = s_map_find (&self->vocab, name, 6);
        }
    }
    else {
        if (cmn_gguf_get_str (g, "tokenizer.ggml.pre", &pre, &pre_len, err) < 0
        ||  s_pre (self, pre, pre_len, err) < 0)
            goto fail;
        //  GPT-2's byte map: printable Latin-1 bytes stand for themselves,
        //  the rest take code points 256, 257, ... in byte order.
        for (int c = 0; c < 512; c++)
            self->cp_byte [c] = -1;
        int extra = 256;
        for (int b = 0; b < 256; b++) {
            const bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
            self->byte_cp [b] = keep ? b : extra++;
            self->cp_byte [self->byte_cp [b]] = (int16_t) b;
        }
    }
    const char *tpl = NULL;
    size_t tpl_len = 0;
    if (cmn_gguf_get_str (g, "tokenizer.chat_template", &tpl, &tpl_len, err) < 0)
        goto fail;
    if (tpl && s_chat (self, tpl, tpl_len) < 0) {
        cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
        goto fail;
    }
    return self;
fail:
    cmn_tokenizer_destroy (&self);
    return NULL;
}

void
cmn_tokenizer_destroy (cmn_tokenizer_t **self_p)
{
    assert (self_p);
    cmn_tokenizer_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->n_re; i++)
        pcre2_code_free (self->re [i]);
    pcre2_match_data_free (self->md);
    free (self->vocab.slots);
    free (self->ranks.slots);
    free (self->text);
    free (self->type);
    free (self->score);
    free (self->merges);
    free (self->special);
    free (self->chat_system);
    free (self);
    *self_p = NULL;
}

int cmn_tokenizer_n_vocab (const cmn_tokenizer_t *self) { assert (self); return self->n_vocab; }
int32_t cmn_tokenizer_bos (const cmn_tokenizer_t *self) { assert (self); return self->bos; }
int32_t cmn_tokenizer_eos (const cmn_tokenizer_t *self) { assert (self); return self->eos; }
bool cmn_tokenizer_add_bos (const cmn_tokenizer_t *self) { assert (self); return self->add_bos; }
bool cmn_tokenizer_has_chat (const cmn_tokenizer_t *self) { assert (self); return self->chat; }

bool
cmn_tokenizer_is_eog (const cmn_tokenizer_t *self, int32_t id)
{
    assert (self);
    if (id < 0 || id >= self->n_vocab)
        return false;
    if (id == self->eos)
        return true;
    if (self->type [id] != TT_CONTROL)
        return false;
    static const char *names [] = {
        "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", NULL
    };
    const s_str_t *t = &self->text [id];
    for (int i = 0; names [i]; i++)
        if (t->len == strlen (names [i]) && memcmp (t->ptr, names [i], t->len) == 0)
            return true;
    return false;
}

int
cmn_tokenizer_chat (const cmn_tokenizer_t *self, const char *user, size_t len,
                    char **out, cmn_err_t *err)
{
    assert (self && (user || len == 0) && out);
    *out = NULL;
    if (!self->chat)
        return cmn_err_set (err, RXQ_E_UNSUPPORTED, "the model has no ChatML chat template "
                            "(tokenizer.chat_template); use raw prompts");
    const char *sys = self->chat_system;
    const size_t need = len + (sys ? strlen (sys) : 0) + 128;
    char *s = malloc (need);
    if (!s)
        return cmn_err_set (err, RXQ_E_NOMEM, "out of memory");
    size_t n = 0;
    if (sys)
        n += (size_t) snprintf (s + n, need - n, "<|im_start|>system\n%s<|im_end|>\n", sys);
    n += (size_t) snprintf (s + n, need - n, "<|im_start|>user\n");
    memcpy (s + n, user, len);
    n += len;
    snprintf (s + n, need - n, "<|im_end|>\n<|im_start|>assistant\n");
    *out = s;
    return 0;
}
