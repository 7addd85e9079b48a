/*  test_generate: `rxq generate` end to end through a real cluster (Redis,
 *  broker, one worker on PoCL) with the real SmolLM2-135M-Instruct: text
 *  streams to stdout, --json carries tokens and timings, a seed repeats,
 *  cancel stops a running generation, and bad models fail with one line
 *  naming what is wrong. */
#include "itest.h"
#include "cmn_gguf_writer.h"
#include "support/tst_llm.h"

static itest_run_t s_run, s_run2;
static char s_endpoint [64];

static void
s_up (void)
{
    const int redis_port = itest_free_port ();
    int port = itest_free_port ();
    while (port == redis_port)
        port = itest_free_port ();
    snprintf (s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", port);
    itest_start_redis (redis_port);
    itest_proc_t *broker = itest_start_broker (port, redis_port);
    itest_start_worker ("w1", port, NULL, NULL);
    cr_assert_eq (itest_wait_workers (port, 1, 45000), 1, "broker log:\n%s", itest_log (broker));
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

    itest_rxq (r, 300000, "--broker", s_endpoint, "--json", "generate", "--model", model,
               "--temp", "0", "--max-tokens", "4", "What is the capital of France?");
    cr_assert_eq (r->code, 0, "%s", r->err);
    cr_expect (strstr (r->out, "\"tokens\":[504,3575,282,4649]"), "%s", r->out);
    cr_expect (strstr (r->out, "\"stop_reason\":\"max_tokens\""), "%s", r->out);
    cr_expect (strstr (r->out, "\"pp_tps\":") && strstr (r->out, "\"matmul\":"), "%s", r->out);

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

Test (generate, bad_models_are_named, .fini = s_fini, .timeout = 600) {
    TST_LLM_REQUIRE (model);
    s_up ();
    char path [512];
    snprintf (path, sizeof path, "%s/bert.gguf", itest.dir);
    cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
    cr_assert_eq (cmn_gguf_writer_set_str (w, "general.architecture", "bert", NULL), 0);
    cr_assert_eq (cmn_gguf_writer_write_file (w, path, NULL), 0);
    cmn_gguf_writer_destroy (&w);
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
}
