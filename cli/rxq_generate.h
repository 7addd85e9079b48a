/*  rxq_generate: `rxq generate`, text generation through the cluster.
 *
 *    rxq generate --model FILE|HASH [--max-tokens N] [--temp T] [--top-k K]
 *                 [--top-p P] [--repeat-penalty R] [--seed S] [--stop STR]
 *                 [--raw] [--json] [--prompt TEXT ...] "prompt" ...
 *
 *  Uploads FILE to the broker's blob store (rxq_blob_model: nothing is
 *  sent when the store has it; a 64-hex HASH names a blob already there),
 *  submits a `generate` job (docs/llm.md) on the blob with wait, prints the text to
 *  stdout as the worker streams it (PROGRESS events with `text`), then a
 *  summary line on stderr (tokens, pp/tg tokens per second, why it
 *  stopped). Several prompts (--prompt ones first, then the arguments)
 *  go as one job's `prompts`; their pieces (events' `parts`) print with
 *  a "[i] " tag whenever the prompt changes, and stderr gets a line per
 *  prompt. --json prints nothing while it runs and then the job record,
 *  whose result holds the text, token ids, timings and kernel telemetry.
 *  rxq_cmd parses the global options and calls this with what it found.
 */
#ifndef RXQ_GENERATE_H
#define RXQ_GENERATE_H
#include <stdbool.h>

//  Most prompts in one job (the worker's WRK_LLM_MAX_SEQ, cmn_kind's limit).
#include "rxq_args.h"

#define RXQ_GENERATE_MAX_PROMPTS 64


//  `rxq generate ...`: ARGV [0] is "generate". Returns the exit code
//  (rxq_cmd.h): 0 the job succeeded; 1 it failed or was cancelled; 2 the
//  broker refused it or the model; 3 broker unreachable; 5 the model file
//  is unreadable; 64 usage.
int rxq_generate_cmd (rxq_args_t *o, int argc, char **argv);

#endif
