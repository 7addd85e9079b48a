/*  rxq_cmd: the `rxq` command line: global options, the commands (up,
 *  down, submit, status, watch, result, cancel, jobs, workers, retry; bench
 *  and tune live in rxq_bench, generate in rxq_generate),
 *  their --help, output and exit codes. docs/cli.md is the user's manual;
 *  cli/main.c only calls rxq_cmd_main.
 */
#ifndef RXQ_CMD_H
#define RXQ_CMD_H

//  Exit codes (also in `rxq --help` and docs/cli.md).
#define RXQ_EXIT_OK          0   // success; for submit --wait/watch/result: job succeeded
#define RXQ_EXIT_JOB         1   // the job ended failed, dead or cancelled
#define RXQ_EXIT_BROKER      2   // the broker answered with an error (not found, state...)
#define RXQ_EXIT_UNREACHABLE 3   // the broker did not answer within the timeout
#define RXQ_EXIT_CLUSTER     4   // rxq up / rxq down could not start or stop the cluster
#define RXQ_EXIT_IO          5   // a local file failed, or a download failed its hash check
#define RXQ_EXIT_USAGE       64  // bad flag, unknown command or kind, bad parameter

//  Runs the CLI with ARGC/ARGV as given to main: writes results to stdout,
//  progress and errors to stderr (each error one line "rxq: <message>"),
//  and returns the exit code. Reentrant enough for tests to call it more
//  than once in one process (it resets getopt).
int rxq_cmd_main (int argc, char **argv);

#endif
