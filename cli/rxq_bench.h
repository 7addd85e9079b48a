/*  rxq_bench: the benchmark farm's commands of the `rxq` CLI.
 *
 *    rxq bench KIND [key=value...] [--all-workers | --worker NAME]
 *        runs one bench.* job on every live worker that runs KIND (or on
 *        the one named), each pinned to its worker with the `worker`
 *        requirement (proto 5.1.2), waits for all, prints a summary.
 *    rxq bench report [--kind K] [--since T] [--limit N] [--html FILE]
 *                     [--jsonl FILE] [--csv FILE]
 *        reads the farm's records through the broker (RECORDS, proto
 *        5.10) and shows them side by side (rxq_report).
 *    rxq tune [key=value...] [--all-workers | --worker NAME]
 *        runs the `tune` job the same way; the broker stores each result
 *        as its device's tuning entry.
 *
 *  rxq_cmd parses the global options and calls these with what it found;
 *  the global options are accepted after the command too. docs/cli.md is
 *  the manual, docs/farm.md the design.
 */
#ifndef RXQ_BENCH_H
#define RXQ_BENCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmn_error.h"
#include "rxq_args.h"



//  `rxq bench ...`: ARGV [0] is "bench". Returns the exit code
//  (rxq_cmd.h): 0 every job succeeded / report written; 1 some job did not
//  succeed; 2 the broker refused, or no live worker runs the kind; 3
//  broker unreachable; 64 usage (also when a report file cannot be
//  written).
int rxq_bench_cmd (rxq_args_t *o, int argc, char **argv);

//  `rxq tune ...`: ARGV [0] is "tune". Exit codes as rxq_bench_cmd.
int rxq_bench_tune_cmd (rxq_args_t *o, int argc, char **argv);

//  Parses --since TEXT at NOW_MS (Unix ms): a duration back from now
//  ("90s", "30m", "12h", "7d"), a date "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM"
//  (UTC), or Unix milliseconds. Stores the start in *FROM_MS. Returns 0,
//  or -1 with ERR (RXQ_E_INVAL) saying what is accepted.
int rxq_bench_parse_since (const char *text, uint64_t now_ms, uint64_t *from_ms,
                           cmn_err_t *err);

#endif
