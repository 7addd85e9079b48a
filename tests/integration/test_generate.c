/*  test_generate: `rxq generate` end to end through a real cluster (Redis,
 *  broker with a blob store, one worker on PoCL) with the real
 *  SmolLM2-135M-Instruct: the model goes to the store once and stays
 *  loaded on the worker's device (the next job reports weights_cached; a
 *  path on the worker still works, loaded for its job alone),
 *  text streams to stdout, --json carries tokens and timings, a seed
 *  repeats, cancel stops a running generation, several prompts batched in
 *  one job give each prompt's own output, bad models fail with one line
 *  naming what is wrong, and with two workers the model's next job goes
 *  to the one holding it. */
#include "itest.h"
#include "cmn_gguf_writer.h"
#include "support/tst_llm.h"

static itest_run_t s_run, s_run2;
static char s_endpoint [64];

//  Starts Redis, a broker with a blob store, and N_WORKERS workers: w1
//  (tagged t1 when there are two) and w2 (tagged t2).
static void
s_up_workers (int n_workers)
{
    const int redis_port = itest_free_port ();
    int port = itest_free_port ();
    while (port == redis_port)
        port = itest_free_port ();
    snprintf (s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", port);
    itest_start_redis (redis_port);
    itest_proc_t *broker = itest_start_broker_store (port, redis_port);
    char *t1 [] = { "--tag", "t1", NULL }, *t2 [] = { "--tag", "t2", NULL };
    itest_start_worker ("w1", port, n_workers > 1 ? t1 : NULL, NULL);
    if (n_workers > 1)
        itest_start_worker ("w2", port, t2, NULL);
    cr_assert_eq (itest_wait_workers (port, n_workers, 45000), n_workers, "broker log:\n%s",
                  itest_log (broker));
}

static void
s_up (void)
{
    s_up_workers (1);
}

//  `rxq put PATH` into the cluster's store; its blob name into HASH.
static void
s_put (const char *path, char hash [65])
{
    itest_run_t r;
    itest_rxq (&r, 60000, "--broker", s_endpoint, "put", path);
    cr_assert_eq (r.code, 0, "rxq put %s: %s", path, r.err);
    snprintf (hash, 65, "%.64s", r.out);
}

static void
s_fini (void)
{
    itest_cleanup ();
}

Test (generate, streams_text_json_and_seed, .fini = s_fini, .timeout = 600) {
    TST_LLM_REQUIRE (model);
    s_up ();
    itest_run_t *r = &s_run;
    itest_rxq (r, 300000, "--broker", s_endpoint, "generate", "--model", model, "--temp", "0",
               "What is the capital of France?");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_expect_str_eq (r->out, "The capital of France is Paris.\n");
    cr_expect (strstr (r->err, "7 generated") && strstr (r->err, "stopped by eos"), "%s", r->err);
    cr_expect (strstr (r->err, "uploaded"), "the first job sends the model: %s", r->err);

    //  The second job on the model: nothing sent, nothing uploaded to the
    //  device (the worker kept the model loaded), the same tokens.
    itest_rxq (r, 300000, "--broker", s_endpoint, "--json", "generate", "--model", model,
               "--temp", "0", "--max-tokens", "4", "What is the capital of France?");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_expect_null (strstr (r->err, "uploaded"), "the store has the model: %s", r->err);
    cr_expect (strstr (r->out, "\"tokens\":[504,3575,282,4649]"), "%s", r->out);
    cr_expect (strstr (r->out, "\"stop_reason\":\"max_tokens\""), "%s", r->out);
    cr_expect (strstr (r->out, "\"pp_tps\":") && strstr (r->out, "\"matmul\":"), "%s", r->out);
    cr_expect (strstr (r->out, "\"weights_cached\":true")
               && strstr (r->out, "\"model_cached\":true"), "%s", r->out);

    //  The model by its blob name, and the worker advertising it.
    char hash [65];
    s_put (model, hash);
    itest_rxq (r, 300000, "--broker", s_endpoint, "--json", "generate", "--model", hash,
               "--temp", "0", "--max-tokens", "2", "What is the capital of France?");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_expect (strstr (r->out, "\"tokens\":[504,3575]"), "%s", r->out);
    cr_expect (strstr (r->out, "\"weights_cached\":true"), "%s", r->out);
    itest_rxq (r, 10000, "--broker", s_endpoint, "--json", "workers");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_expect (strstr (r->out, hash), "the worker lists the model in its weights: %s", r->out);

    //  --numerics ggml computes as llama.cpp's CPU back end does, and so
    //  gives llama.cpp's greedy tokens for this chat prompt
    //  (tests/fixtures/llm/llama_cpp_ref.txt, chat_capital), where the
    //  default f32 arithmetic picks the other of two nearly tied tokens.
    itest_rxq (r, 300000, "--broker", s_endpoint, "--json", "generate", "--model", hash,
               "--numerics", "ggml", "--temp", "0", "--max-tokens", "6",
               "What is the capital of France?");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_expect (strstr (r->out, "\"tokens\":[60,23,39614,1141,552,28]"), "%s", r->out);
    //  --numerics q8 (one-token products on int8 activations, as llama.cpp
    //  rounds them) runs through the cluster. The first token's output
    //  product is one already, and on this prompt's near tie it picks
    //  llama.cpp's token, as ggml numerics do (measured; not bit-exact in
    //  general).
    itest_rxq (r, 300000, "--broker", s_endpoint, "--json", "generate", "--model", hash,
               "--numerics", "q8", "--temp", "0", "--max-tokens", "4",
               "What is the capital of France?");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_expect (strstr (r->out, "\"tokens\":[60,23,39614,1141]"), "%s", r->out);
    itest_rxq (r, 10000, "--broker", s_endpoint, "generate", "--model", hash,
               "--numerics", "f16", "hi");
    cr_expect_eq (r->code, 64, "usage error: %s", r->err);
    cr_expect (strstr (r->err, "--numerics must be f32, ggml or q8"), "%s", r->err);

    //  A path on the worker (rxq submit) still works, loaded for the job
    //  alone: the same tokens, nothing cached.
    char param [4200];
    snprintf (param, sizeof param, "model=%s", model);
    itest_rxq (r, 300000, "--broker", s_endpoint, "--json", "submit", "generate", param,
               "prompt=What is the capital of France?", "max_tokens=2", "temp=0", "--wait");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_expect (strstr (r->out, "\"tokens\":[504,3575]"), "%s", r->out);
    cr_expect (strstr (r->out, "\"weights_cached\":false")
               && strstr (r->out, "\"model_cached\":false"), "%s", r->out);

    //  Sampling at temperature 1: the same seed gives the same text.
    itest_run_t *r2 = &s_run2;
    itest_rxq (r, 300000, "--broker", s_endpoint, "generate", "--model", model, "--temp", "1",
               "--top-k", "0", "--top-p", "1", "--seed", "7", "--max-tokens", "16", "--raw",
               "Once upon a time");
    itest_rxq (r2, 300000, "--broker", s_endpoint, "generate", "--model", model, "--temp", "1",
               "--top-k", "0", "--top-p", "1", "--seed", "7", "--max-tokens", "16", "--raw",
               "Once upon a time");
    cr_assert (r->code == 0 && r2->code == 0, "%s %s", r->err, r2->err);
    cr_expect_str_eq (r->out, r2->out);
    cr_expect (strstr (r->err, "seed 7"), "%s", r->err);
}

Test (generate, cancel_mid_generation, .fini = s_fini, .timeout = 600) {
    TST_LLM_REQUIRE (model);
    s_up ();
    char program [512];
    itest_program ("rxq", program, sizeof program);
    char *argv [] = { program, "--broker", s_endpoint, "generate", "--model", (char *) model,
                      "--max-tokens", "4000", "--seed", "3", "--raw", "Chapter 1.", NULL };
    itest_proc_t *gen = itest_spawn ("generate", argv, NULL);
    //  Wait for streamed text, then cancel the job.
    int64_t deadline = itest_now_ms () + 120000;
    char log [65536] = "";
    while (itest_now_ms () < deadline) {
        itest_read_file (gen->log, log, sizeof log);
        if (strlen (log) > 40)
            break;
        itest_sleep_ms (200);
    }
    cr_assert_gt (strlen (log), 40, "text streams before the end: '%s'", log);
    itest_run_t *r = &s_run;
    itest_rxq (r, 10000, "--broker", s_endpoint, "jobs");
    cr_assert_eq (r->code, 0, "%s", r->err);
    char id [80] = "";
    for (char *line = strtok (r->out, "\n"); line; line = strtok (NULL, "\n"))
        if (strstr (line, "generate") && strstr (line, "leased"))
            sscanf (line, "%79s", id);
    cr_assert (id [0], "a leased generate job is listed");
    itest_rxq (r, 10000, "--broker", s_endpoint, "cancel", id);
    cr_assert_eq (r->code, 0, "%s", r->err);
    int status = 0;
    cr_assert (itest_wait_exit (gen, 30000, &status), "generate ends soon after the cancel");
    cr_expect (WIFEXITED (status) && WEXITSTATUS (status) == 1, "exit 1; log: %s", itest_log (gen));
    cr_expect (strstr (itest_log (gen), "cancelled"), "%s", itest_log (gen));
}

//  Copies the I-th "tokens":[...] and "stop_reason":"..." of JSON into
//  TOKENS and REASON; false when there are fewer.
static bool
s_nth_tokens (const char *json, int i, char *tokens, size_t cap, char *reason, size_t rcap)
{
    const char *p = json;
    for (int k = 0; k <= i; k++) {
        p = strstr (p, "\"tokens\":[");
        if (!p)
            return false;
        if (k < i)
            p++;
    }
    const char *e = strchr (p, ']');
    const char *r = strstr (p, "\"stop_reason\":\"");
    if (!e || !r)
        return false;
    snprintf (tokens, cap, "%.*s", (int) (e - p + 1), p);
    r += strlen ("\"stop_reason\":\"");
    snprintf (reason, rcap, "%.*s", (int) strcspn (r, "\""), r);
    return true;
}

//  Joins the pieces of prompt I in the CLI's tagged output ("[i] " at the
//  start of the output or of a line begins a piece; the newline the CLI
//  puts before a tag is not text).
static void
s_tagged_text (const char *out, int i, char *text, size_t cap)
{
    size_t n = 0;
    int cur = -1;
    for (const char *p = out; *p; ) {
        int idx = -1, used = 0;
        if ((p == out || p [-1] == '\n') && sscanf (p, "[%d] %n", &idx, &used) == 1 && used) {
            if (n && cur == i && text [n - 1] == '\n')
                n--;
            cur = idx;
            p += used;
            continue;
        }
        if (cur == i && n + 1 < cap)
            text [n++] = *p;
        p++;
    }
    text [n] = 0;
}

//  Three prompts in one job: each one's greedy tokens and stop reason are
//  those of the prompt run alone (one stops at the stop string, the
//  others at max_tokens or EOS, each on its own), the text streams tagged
//  with the prompt's index, and repeated --prompt works like arguments.
Test (generate, batched_prompts_match_alone, .fini = s_fini, .timeout = 600) {
    TST_LLM_REQUIRE (model);
    s_up ();
    const char *prompts [3] = { "What is the capital of France?", "Write a haiku about the sea.",
                                "Say hello." };
    char alone [3][1024], alone_reason [3][32];
    itest_run_t *r = &s_run;
    for (int i = 0; i < 3; i++) {
        itest_rxq (r, 300000, "--broker", s_endpoint, "--json", "generate", "--model", model,
                   "--temp", "0", "--max-tokens", "12", "--stop", "Paris", prompts [i]);
        cr_assert_eq (r->code, 0, "%s", r->err);
        cr_assert (s_nth_tokens (r->out, 0, alone [i], sizeof alone [i], alone_reason [i],
                                 sizeof alone_reason [i]), "%s", r->out);
        cr_log_info ("alone %d: %s (%s)", i, alone [i], alone_reason [i]);
    }
    cr_expect_str_eq (alone_reason [0], "stop");
    cr_expect_str_eq (alone_reason [1], "max_tokens");
    itest_rxq (r, 300000, "--broker", s_endpoint, "--json", "generate", "--model", model,
               "--temp", "0", "--max-tokens", "12", "--stop", "Paris", prompts [0], prompts [1],
               prompts [2]);
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_expect (strstr (r->out, "\"results\":["), "%s", r->out);
    for (int i = 0; i < 3; i++) {
        char tokens [1024], reason [32];
        cr_assert (s_nth_tokens (r->out, i, tokens, sizeof tokens, reason, sizeof reason),
                   "result %d missing: %s", i, r->out);
        cr_expect_str_eq (tokens, alone [i], "prompt %d: batched %s, alone %s", i, tokens,
                          alone [i]);
        cr_expect_str_eq (reason, alone_reason [i], "prompt %d stopped by %s, alone by %s", i,
                          reason, alone_reason [i]);
    }
    //  The text as it streams: each piece tagged with its prompt.
    itest_rxq (r, 300000, "--broker", s_endpoint, "generate", "--model", model, "--temp", "0",
               "--max-tokens", "12", "--stop", "Paris", "--prompt", prompts [0], "--prompt",
               prompts [1]);
    cr_assert_eq (r->code, 0, "%s", r->err);
    char text0 [1024];
    s_tagged_text (r->out, 0, text0, sizeof text0);
    cr_expect_str_eq (text0, "The capital of France is ", "%s", r->out);
    cr_expect (!strncmp (r->out, "[0] ", 4) && strstr (r->out, "\n[1] "), "%s", r->out);
    cr_expect (strstr (r->err, "[0] ") && strstr (r->err, "stopped by stop")
               && strstr (r->err, "2 prompts"), "%s", r->err);
}

//  Cancel reaches a batched generation too.
Test (generate, cancel_batched_generation, .fini = s_fini, .timeout = 600) {
    TST_LLM_REQUIRE (model);
    s_up ();
    char program [512];
    itest_program ("rxq", program, sizeof program);
    char *argv [] = { program, "--broker", s_endpoint, "generate", "--model", (char *) model,
                      "--max-tokens", "4000", "--seed", "3", "--raw", "Chapter 1.",
                      "Chapter 2.", "Chapter 3.", NULL };
    itest_proc_t *gen = itest_spawn ("generate", argv, NULL);
    int64_t deadline = itest_now_ms () + 120000;
    char log [65536] = "";
    while (itest_now_ms () < deadline) {
        itest_read_file (gen->log, log, sizeof log);
        if (strstr (log, "[0] ") && strstr (log, "[2] ") && strlen (log) > 60)
            break;
        itest_sleep_ms (200);
    }
    cr_assert (strstr (log, "[0] ") && strstr (log, "[2] "), "tagged text streams: '%s'", log);
    itest_run_t *r = &s_run;
    itest_rxq (r, 10000, "--broker", s_endpoint, "jobs");
    cr_assert_eq (r->code, 0, "%s", r->err);
    char id [80] = "";
    for (char *line = strtok (r->out, "\n"); line; line = strtok (NULL, "\n"))
        if (strstr (line, "generate") && strstr (line, "leased"))
            sscanf (line, "%79s", id);
    cr_assert (id [0], "a leased generate job is listed");
    itest_rxq (r, 10000, "--broker", s_endpoint, "cancel", id);
    cr_assert_eq (r->code, 0, "%s", r->err);
    int status = 0;
    cr_assert (itest_wait_exit (gen, 30000, &status), "generate ends soon after the cancel");
    cr_expect (WIFEXITED (status) && WEXITSTATUS (status) == 1, "exit 1; log: %s", itest_log (gen));
    cr_expect (strstr (itest_log (gen), "cancelled"), "%s", itest_log (gen));
}

Test (generate, bad_models_are_named, .fini = s_fini, .timeout = 600) {
    TST_LLM_REQUIRE (model);
    s_up ();
    char path [512];
    snprintf (path, sizeof path, "%s/bert.gguf", itest.dir);
    cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
    cr_assert_eq (cmn_gguf_writer_set_str (w, "general.architecture", "bert", NULL), 0);
    cr_assert_eq (cmn_gguf_writer_write_file (w, path, NULL), 0);
    cmn_gguf_writer_destroy (&w);
    //  In the store already, so that stderr holds only the error (a first
    //  upload adds a line saying so).
    char hash [65];
    s_put (path, hash);
    s_put (model, hash);
    itest_run_t *r = &s_run;
    itest_rxq (r, 120000, "--broker", s_endpoint, "generate", "--model", path, "hi");
    cr_expect_eq (r->code, 1, "%s", r->err);
    itest_assert_one_error_line (r);
    cr_expect (strstr (r->err, "architecture is 'bert'"), "%s", r->err);
    //  Regression: RXQ_E_UNSUPPORTED was retried, so a model no worker can
    //  run spent every attempt and ended dead instead of failed.
    itest_rxq (&s_run2, 10000, "--broker", s_endpoint, "--json", "jobs", "--state", "failed");
    cr_expect (strstr (s_run2.out, "\"attempt\":1"), "failed at the first attempt: %s",
               s_run2.out);
    itest_rxq (&s_run2, 10000, "--broker", s_endpoint, "--json", "jobs", "--state", "dead");
    cr_expect_null (strstr (s_run2.out, "\"id\""), "nothing dead: %s", s_run2.out);

    //  A prompt longer than the model's 8192-token context.
    static char prompt [64 * 1024];
    for (size_t i = 0; i + 5 < sizeof prompt && i < 9000 * 5; i += 5)
        memcpy (prompt + i, "word ", 5);
    itest_rxq (r, 120000, "--broker", s_endpoint, "generate", "--model", model, "--raw", prompt);
    cr_expect_eq (r->code, 1, "%s", r->err);
    itest_assert_one_error_line (r);
    cr_expect (strstr (r->err, "tokens long") && strstr (r->err, "8192"), "%s", r->err);

    itest_rxq (r, 10000, "--broker", s_endpoint, "generate", "--model", model, "--top-p", "0", "x");
    cr_expect_eq (r->code, 64, "%s", r->err);
    itest_assert_one_error_line (r);

    //  A blob the store does not have; a file that is not there.
    itest_rxq (r, 10000, "--broker", s_endpoint, "generate", "--model",
               "00000000000000000000000000000000000000000000000000000000000000aa", "hi");
    cr_expect_eq (r->code, 2, "%s", r->err);
    itest_assert_one_error_line (r);
    cr_expect (strstr (r->err, "not in the broker's store"), "%s", r->err);
    itest_rxq (r, 10000, "--broker", s_endpoint, "generate", "--model", "/nonexistent.gguf",
               "hi");
    cr_expect_eq (r->code, 5, "%s", r->err);
    itest_assert_one_error_line (r);

    //  Several prompts: one too long is named by its index (the array's
    //  types are checked by cmn_kind: tests/common/test_cmn_kind.c).
    itest_rxq (r, 120000, "--broker", s_endpoint, "generate", "--model", model, "--raw", "hi",
               prompt);
    cr_expect_eq (r->code, 1, "%s", r->err);
    itest_assert_one_error_line (r);
    cr_expect (strstr (r->err, "prompt 1 is") && strstr (r->err, "tokens long"), "%s", r->err);
}

//  proto 6.10 for generate: a job pinned (by tag) to w2 leaves the model
//  loaded in w2's weight cache; the next job on that model, not pinned,
//  goes to w2 and uploads nothing. The same with a second model blob (the
//  same file with bytes appended: another name) on w1, so that a broker
//  without affinity (always the same first choice) fails one of the two.
Test (generate, next_job_on_a_model_goes_to_the_worker_holding_it, .fini = s_fini,
      .timeout = 600) {
    TST_LLM_REQUIRE (model);
    s_up_workers (2);

    char other [512], cmd [1200];
    snprintf (other, sizeof other, "%s/other.gguf", itest_tmpdir ());
    snprintf (cmd, sizeof cmd, "cp '%s' '%s' && printf 'padding' >> '%s'", model, other, other);
    cr_assert_eq (system (cmd), 0, "%s", cmd);
    char h1 [65], h2 [65], p1 [100], p2 [100];
    s_put (model, h1);
    s_put (other, h2);
    cr_assert_str_neq (h1, h2);
    snprintf (p1, sizeof p1, "model=%s", h1);
    snprintf (p2, sizeof p2, "model=%s", h2);
    const struct { const char *param, *pin, *holder; } steps [2] = {
        { p1, "tag=t2", "leased by w2" }, { p2, "tag=t1", "leased by w1" }
    };
    itest_run_t *r = &s_run;
    for (int i = 0; i < 2; i++) {
        itest_rxq (r, 300000, "--broker", s_endpoint, "--json", "submit", "generate",
                   steps [i].param, "prompt=Hi", "max_tokens=1", "temp=0", "--require",
                   steps [i].pin, "--wait");
        cr_assert_eq (r->code, 0, "%s", r->err);
        cr_assert (strstr (r->err, steps [i].holder), "%s", r->err);
        cr_expect (strstr (r->out, "\"weights_cached\":false"), "%s", r->out);
        itest_rxq (r, 300000, "--broker", s_endpoint, "--json", "submit", "generate",
                   steps [i].param, "prompt=Hi", "max_tokens=1", "temp=0", "--wait");
        cr_assert_eq (r->code, 0, "%s", r->err);
        cr_assert (strstr (r->err, steps [i].holder), "model %d's next job not on the worker "
                   "holding it: %s", i + 1, r->err);
        cr_expect (strstr (r->out, "\"weights_cached\":true"), "%s", r->out);
    }
}
