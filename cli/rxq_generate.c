/*  rxq_generate: see rxq_generate.h. */
#include "rxq_generate.h"
#include "rxq_blob.h"
#include "rxq_client.h"
#include "rxq_cmd.h"
#include "cmn_codec.h"
#include "cmn_kind.h"
#include "cmn_proto.h"
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_help =
"usage: rxq generate --model FILE|HASH [options] \"prompt\" [\"prompt\" ...]\n"
"\n"
"Generates text with a Llama-architecture GGUF model on a worker and prints\n"
"it as it arrives. The prompt is the user message of the model's chat\n"
"template (ChatML) unless --raw. FILE, a local file, goes to the broker's\n"
"blob store first (nothing is sent when the store has it: a line on stderr\n"
"says when it was uploaded); HASH (64 hex digits) names a blob already\n"
"there (rxq put). A worker keeps the model loaded on its device after a\n"
"job, and the broker sends the model's next job to it.\n"
"Several prompts (arguments or repeated --prompt, at most 64) run as one\n"
"batched job; their text is printed as it arrives, each piece after a\n"
"\"[i] \" tag naming its prompt (0 = the first) when the prompt changes.\n"
"\n"
"  --model FILE|HASH     GGUF model file, or its blob name (required)\n"
"  --prompt TEXT         a prompt; may be repeated, and mixed with arguments\n"
"  --max-tokens N        tokens to generate at most (default 128)\n"
"  --temp T              temperature; 0 is greedy (default 0.8)\n"
"  --top-k K             sample from the K most likely tokens; 0 all (default 40)\n"
"  --top-p P             nucleus probability mass, 0 < P <= 1 (default 0.95)\n"
"  --repeat-penalty R    penalty on the last 64 tokens, R >= 1 (default 1)\n"
"  --seed S              random seed: the same seed gives the same text\n"
"                        (default: from the clock, printed in the summary)\n"
"  --stop STR            stop when the text contains STR (not printed)\n"
"  --raw                 feed the prompt as it is, without the chat template\n"
"  --numerics N          f32 (default); ggml: compute as llama.cpp's CPU\n"
"                        backend does, bit for bit (same greedy tokens; slower);\n"
"                        q8: int8 activations when decoding (faster on GPUs)\n"
"  --json                print the job record as JSON at the end instead of the\n"
"                        text: tokens, timings (pp/tg tokens per second), kernels\n"
"  --broker URL, --timeout SEC as for every command\n"
"\n"
"Exit: 0 done; 1 the job failed or was cancelled; 2 broker refused (no blob\n"
"store, no such blob); 3 broker unreachable; 5 FILE unreadable; 64 usage.\n";

//  What the stream printed so far.
typedef struct {
    bool json;              // print nothing while streaming
    uint64_t attempt;       // attempt whose text is being printed, 0 none yet
    bool any;               // some text was printed
    size_t printed;         // bytes of the current attempt's text printed
    bool newline;           // the last byte printed was '\n'
    bool multi;             // several prompts: events carry tagged `parts`
    int last;               // prompt of the last piece printed, -1 none
    size_t printed_seq [RXQ_GENERATE_MAX_PROMPTS];  // bytes printed per prompt
} s_stream_t;

//  Prints LEN bytes of prompt I's text, tagged "[i] " when another prompt
//  printed last (on a new line).
static void
s_print_part (s_stream_t *st, int i, const char *text, size_t len)
{
    if (!len)
        return;
    if (st->last != i) {
        if (st->any && !st->newline)
            fputc ('\n', stdout);
        fprintf (stdout, "[%d] ", i);
        st->last = i;
    }
    fwrite (text, 1, len, stdout);
    st->any = true;
    st->newline = text [len - 1] == '\n';
    st->printed_seq [i] += len;
}

//  PARTIAL callback: prints each progress event's `text`. A new attempt
//  (the job was requeued) starts its text again: say so.
static void
s_on_partial (void *arg, const msgpack_object *body)
{
    s_stream_t *st = arg;
    const msgpack_object *ev = NULL;
    if (st->json || cmn_codec_get_map (body, "event", &ev, NULL) != 0
    ||  !cmn_codec_str_eq (cmn_codec_find (ev, "type"), "progress"))
        return;
    const char *text = NULL;
    size_t len = 0;
    uint64_t attempt = 0;
    cmn_codec_get_uint (ev, "attempt", &attempt, NULL);
    const msgpack_object *parts = NULL;
    if (st->multi ? cmn_codec_get_array (ev, "parts", &parts, NULL) != 0 || !parts
                  : cmn_codec_get_str (ev, "text", &text, &len, NULL) != 0 || !text)
        return;
    if (st->attempt && attempt != st->attempt) {
        if (st->any && !st->newline)
            fputc ('\n', stdout);
        fflush (stdout);
        fprintf (stderr, "rxq: the job was requeued; attempt %llu starts over\n",
                 (unsigned long long) attempt);
    }
    if (attempt != st->attempt) {
        st->printed = 0;
        memset (st->printed_seq, 0, sizeof st->printed_seq);
        st->last = -1;
    }
    st->attempt = attempt;
    if (st->multi) {
        for (uint32_t k = 0; k < parts->via.array.size; k++) {
            const msgpack_object *part = &parts->via.array.ptr [k];
            uint64_t i = 0;
            if (cmn_codec_get_uint (part, "index", &i, NULL) != 0 || i >= RXQ_GENERATE_MAX_PROMPTS
            ||  cmn_codec_get_str (part, "text", &text, &len, NULL) != 0 || !text)
                continue;
            s_print_part (st, (int) i, text, len);
        }
        fflush (stdout);
        return;
    }
    st->printed += len;
    if (len) {
        fwrite (text, 1, len, stdout);
        st->any = true;
        st->newline = text [len - 1] == '\n';
        fflush (stdout);
    }
}

//  Packs the job into BODY: {kind, params: {model: MODEL, REST's NREST
//  entries}, wait}.
static void
s_pack_job (msgpack_sbuffer *body, const char *model, const msgpack_sbuffer *rest,
            uint32_t nrest)
{
    msgpack_sbuffer_clear (body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    cmn_pack_kv_str (&pk, "kind", "generate");
    cmn_pack_key (&pk, "params");
    msgpack_pack_map (&pk, 1 + nrest);
    cmn_pack_kv_str (&pk, "model", model);
    msgpack_sbuffer_write (body, rest->data, rest->size);
    cmn_pack_kv_bool (&pk, "wait", true);
}

static bool
s_float (const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    double v = strtod (s, &end);
    if (end == s || *end || !isfinite (v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int
rxq_generate_cmd (rxq_args_t *o, int argc, char **argv)
{
    enum { O_MODEL = 1, O_PROMPT, O_MAX, O_TEMP, O_TOPK, O_TOPP, O_PEN, O_SEED, O_STOP, O_RAW,
           O_NUMERICS };
    static const struct option options [] = {
        { "model", required_argument, NULL, O_MODEL },
        { "prompt", required_argument, NULL, O_PROMPT },
        { "max-tokens", required_argument, NULL, O_MAX },
        { "temp", required_argument, NULL, O_TEMP },
        { "top-k", required_argument, NULL, O_TOPK },
        { "top-p", required_argument, NULL, O_TOPP },
        { "repeat-penalty", required_argument, NULL, O_PEN },
        { "seed", required_argument, NULL, O_SEED },
        { "stop", required_argument, NULL, O_STOP },
        { "raw", no_argument, NULL, O_RAW },
        { "numerics", required_argument, NULL, O_NUMERICS },
        RXQ_ARGS_COMMON,
        { NULL, 0, NULL, 0 }
    };
    const char *model = NULL, *stop = NULL, *numerics = NULL;
    uint64_t max_tokens = 0, top_k = 0, seed = 0;
    double temp = 0, top_p = 0, penalty = 0;
    bool have_max = false, have_temp = false, have_topk = false, have_topp = false;
    bool have_pen = false, have_seed = false, raw = false;
    const char *prompts [RXQ_GENERATE_MAX_PROMPTS];
    int n_prompts = 0;
    int c;
    optind = 1;
    while ((c = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        switch (c) {
            case O_MODEL: model = optarg; break;
            case O_PROMPT:
                if (n_prompts == RXQ_GENERATE_MAX_PROMPTS)
                    return rxq_args_error (RXQ_EXIT_USAGE, "at most %d prompts in one job",
                                    RXQ_GENERATE_MAX_PROMPTS);
                prompts [n_prompts++] = optarg;
                break;
            case O_MAX:
                if (!rxq_args_uint (optarg, 0, 65536, &max_tokens) || max_tokens == 0)
                    return rxq_args_error (RXQ_EXIT_USAGE, "--max-tokens must be 1..65536, not '%s'", optarg);
                have_max = true;
                break;
            case O_TEMP:
                if (!s_float (optarg, 0, 100, &temp))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--temp must be a number in 0..100, not '%s'", optarg);
                have_temp = true;
                break;
            case O_TOPK:
                if (!rxq_args_uint (optarg, 0, 1000000, &top_k))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--top-k must be 0..1000000, not '%s'", optarg);
                have_topk = true;
                break;
            case O_TOPP:
                if (!s_float (optarg, 0, 1, &top_p) || top_p <= 0)
                    return rxq_args_error (RXQ_EXIT_USAGE, "--top-p must be in (0, 1], not '%s'", optarg);
                have_topp = true;
                break;
            case O_PEN:
                if (!s_float (optarg, 1, 100, &penalty))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--repeat-penalty must be in 1..100, not '%s'",
                                    optarg);
                have_pen = true;
                break;
            case O_SEED:
                if (!rxq_args_uint (optarg, 0, UINT64_MAX, &seed))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--seed must be an unsigned integer, not '%s'", optarg);
                have_seed = true;
                break;
            case O_STOP:
                if (!*optarg || strlen (optarg) > 256)
                    return rxq_args_error (RXQ_EXIT_USAGE, "--stop must be 1..256 bytes");
                stop = optarg;
                break;
            case O_RAW: raw = true; break;
            case O_NUMERICS:
                if (strcmp (optarg, "f32") && strcmp (optarg, "ggml") && strcmp (optarg, "q8"))
                    return rxq_args_error (RXQ_EXIT_USAGE, "--numerics must be f32, ggml or "
                                           "q8, not '%s'", optarg);
                numerics = optarg;
                break;
            default: {
                o->cmd = "generate";
                int code = rxq_args_common (o, c, argv, s_help);
                if (code >= 0)
                    return code;
            }
        }
    }
    if (!model || !*model)
        return rxq_args_error (RXQ_EXIT_USAGE, "generate needs --model FILE (see rxq generate --help)");
    for (int i = optind; i < argc; i++) {
        if (n_prompts == RXQ_GENERATE_MAX_PROMPTS)
            return rxq_args_error (RXQ_EXIT_USAGE, "at most %d prompts in one job",
                            RXQ_GENERATE_MAX_PROMPTS);
        prompts [n_prompts++] = argv [i];
    }
    if (n_prompts == 0)
        return rxq_args_error (RXQ_EXIT_USAGE, "generate needs a prompt argument (quote it; see rxq "
                        "generate --help)");

    //  The params but the model, which is known once it is in the store.
    msgpack_sbuffer rest;
    msgpack_sbuffer_init (&rest);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &rest, msgpack_sbuffer_write);
    const uint32_t nrest = 1 + have_max + have_temp + have_topk + have_topp + have_pen
                         + have_seed + (stop != NULL) + raw + (numerics != NULL);
    if (n_prompts == 1)
        cmn_pack_kv_str (&pk, "prompt", prompts [0]);
    else {
        cmn_pack_key (&pk, "prompts");
        msgpack_pack_array (&pk, (size_t) n_prompts);
        for (int i = 0; i < n_prompts; i++)
            cmn_pack_cstr (&pk, prompts [i]);
    }
    if (have_max) cmn_pack_kv_uint (&pk, "max_tokens", max_tokens);
    if (have_temp) cmn_pack_kv_double (&pk, "temp", temp);
    if (have_topk) cmn_pack_kv_uint (&pk, "top_k", top_k);
    if (have_topp) cmn_pack_kv_double (&pk, "top_p", top_p);
    if (have_pen) cmn_pack_kv_double (&pk, "repeat_penalty", penalty);
    if (have_seed) cmn_pack_kv_uint (&pk, "seed", seed);
    if (stop) cmn_pack_kv_str (&pk, "stop", stop);
    if (raw) cmn_pack_kv_bool (&pk, "raw", true);
    if (numerics) cmn_pack_kv_str (&pk, "numerics", numerics);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    s_pack_job (&body, model, &rest, nrest);

    //  The same checks the broker makes, so a typo fails here, at once,
    //  before the model is sent.
    cmn_err_t err = { 0 };
    cmn_body_t check;
    if (cmn_body_decode (&check, body.data, body.size, &cmn_codec_limits_default, &err) != 0) {
        msgpack_sbuffer_destroy (&body);
        msgpack_sbuffer_destroy (&rest);
        return rxq_args_error (RXQ_EXIT_USAGE, "job too large: %s", err.msg);
    }
    const cmn_kind_t *kind = cmn_kind_find ("generate", 8);
    int rc = kind ? cmn_kind_validate (kind, cmn_codec_find (&check.root, "params"), &err) : 0;
    cmn_body_free (&check);
    if (rc != 0) {
        msgpack_sbuffer_destroy (&body);
        msgpack_sbuffer_destroy (&rest);
        return rxq_args_error (RXQ_EXIT_USAGE, "%s", err.msg);
    }

    //  The model into the store (a blob name is taken as it is).
    int code = RXQ_EXIT_OK;
    cmn_xfer_t *xfer = NULL;
    char hash [CMN_BLOB_HEX_LEN + 1];
    code = rxq_blob_model (o, &xfer, model, true, hash);
    cmn_xfer_destroy (&xfer);
    if (code == RXQ_EXIT_OK)
        s_pack_job (&body, hash, &rest, nrest);
    msgpack_sbuffer_destroy (&rest);
    if (code != RXQ_EXIT_OK) {
        msgpack_sbuffer_destroy (&body);
        return code;
    }

    rxq_client_t *client = rxq_args_connect (o, &code);
    if (!client) {
        msgpack_sbuffer_destroy (&body);
        return code;
    }
    s_stream_t st = { .json = o->json, .newline = true, .multi = n_prompts > 1, .last = -1 };
    cmn_body_t final;
    if (rxq_client_request (client, RXQ_CMD_SUBMIT, body.data, body.size, s_on_partial, &st,
                            o->timeout_ms, &final, &err) != 0) {
        code = rxq_args_error (rxq_client_error_from_broker (client) ? RXQ_EXIT_BROKER
                                                              : RXQ_EXIT_UNREACHABLE, "%s", err.msg);
        goto done;
    }
    const msgpack_object *job = NULL, *result = NULL, *error = NULL;
    if (cmn_codec_get_map (&final.root, "job", &job, NULL) != 0) {
        code = rxq_args_error (RXQ_EXIT_BROKER, "the broker's reply has no 'job' record");
        cmn_body_free (&final);
        goto done;
    }
    char state [32] = "", id [RXQ_MAX_ID_LEN + 1] = "?";
    cmn_codec_get_cstr (job, "state", state, sizeof state, NULL);
    cmn_codec_get_cstr (job, "id", id, sizeof id, NULL);
    if (o->json) {
        cmn_codec_print_json (stdout, job);
        fputc ('\n', stdout);
    }
    else {
        //  Whatever the stream did not carry (an event lost on the way)
        //  comes from the result, which holds the whole text.
        const char *text = NULL;
        size_t len = 0;
        const msgpack_object *results = NULL;
        if (st.multi && cmn_codec_get_map (job, "result", &result, NULL) == 0
        &&  cmn_codec_get_array (result, "results", &results, NULL) == 0 && results)
            for (uint32_t i = 0; i < results->via.array.size && i < RXQ_GENERATE_MAX_PROMPTS;
                 i++)
                if (cmn_codec_get_str (&results->via.array.ptr [i], "text", &text, &len,
                                       NULL) == 0 && text && len > st.printed_seq [i])
                    s_print_part (&st, (int) i, text + st.printed_seq [i],
                                  len - st.printed_seq [i]);
        if (!st.multi && cmn_codec_get_map (job, "result", &result, NULL) == 0
        &&  cmn_codec_get_str (result, "text", &text, &len, NULL) == 0 && text
        &&  len > st.printed) {
            fwrite (text + st.printed, 1, len - st.printed, stdout);
            st.any = true;
            st.newline = text [len - 1] == '\n';
        }
    }
    if (!o->json && st.any && !st.newline)
        fputc ('\n', stdout);
    fflush (stdout);
    if (strcmp (state, "succeeded") != 0) {
        char msg [300] = "";
        if (cmn_codec_get_map (job, "error", &error, NULL) == 0)
            cmn_codec_get_cstr (error, "message", msg, sizeof msg, NULL);
        code = rxq_args_error (RXQ_EXIT_JOB, "job %s %s%s%s", id, state, msg [0] ? ": " : "", msg);
    }
    else
    if (!o->json && cmn_codec_get_map (job, "result", &result, NULL) == 0) {
        uint64_t n_prompt = 0, n_gen = 0, seed_used = 0;
        double pp = 0, tg = 0;
        char reason [32] = "";
        cmn_codec_get_uint (result, "n_prompt", &n_prompt, NULL);
        cmn_codec_get_uint (result, "n_gen", &n_gen, NULL);
        cmn_codec_get_uint (result, "seed", &seed_used, NULL);
        cmn_codec_get_double (result, "pp_tps", &pp, NULL);
        cmn_codec_get_double (result, "tg_tps", &tg, NULL);
        cmn_codec_get_cstr (result, "stop_reason", reason, sizeof reason, NULL);
        const msgpack_object *results = NULL;
        if (st.multi && cmn_codec_get_array (result, "results", &results, NULL) == 0 && results) {
            for (uint32_t i = 0; i < results->via.array.size; i++) {
                const msgpack_object *q = &results->via.array.ptr [i];
                uint64_t qp = 0, qg = 0;
                char qr [32] = "";
                cmn_codec_get_uint (q, "n_prompt", &qp, NULL);
                cmn_codec_get_uint (q, "n_gen", &qg, NULL);
                cmn_codec_get_cstr (q, "stop_reason", qr, sizeof qr, NULL);
                fprintf (stderr, "rxq: [%u] %llu prompt tokens, %llu generated, stopped by %s\n",
                         (unsigned) i, (unsigned long long) qp, (unsigned long long) qg, qr);
            }
            fprintf (stderr, "rxq: %u prompts: %llu prompt tokens (%.1f tok/s), %llu generated "
                     "(%.1f tok/s), seed %llu\n", (unsigned) results->via.array.size,
                     (unsigned long long) n_prompt, pp, (unsigned long long) n_gen, tg,
                     (unsigned long long) seed_used);
        }
        else
        fprintf (stderr, "rxq: %llu prompt tokens (%.1f tok/s), %llu generated (%.1f tok/s), "
                 "stopped by %s, seed %llu\n", (unsigned long long) n_prompt, pp,
                 (unsigned long long) n_gen, tg, reason, (unsigned long long) seed_used);
    }
    cmn_body_free (&final);
done:
    rxq_client_destroy (&client);
    msgpack_sbuffer_destroy (&body);
    return code;
}
