/*  rxq_print: human-readable output of the `rxq` CLI.
 *
 *  Formats the broker's replies (proto/rxq-protocol.md, 5.2 to 5.7): a job
 *  record as "key: value" lines, job and worker lists as aligned tables,
 *  job events as one line each, and results as flattened "key: value"
 *  lines, with a summary in GB/s and GFLOPS for bench.device. Every
 *  function reads the msgpack objects it is given and tolerates missing or
 *  ill-typed fields (a newer broker may send more, an older one less).
 */
#ifndef RXQ_PRINT_H
#define RXQ_PRINT_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

//  Prints JOB (the JOB map of 5.2) as aligned "key: value" lines.
void rxq_print_job (FILE *out, const msgpack_object *job);

//  Prints JOBS (an array of JOB maps, 5.6) as a table, newest first as
//  given; prints "no jobs" for an empty array.
void rxq_print_jobs (FILE *out, const msgpack_object *jobs);

//  Prints WORKERS (an array of WORKER maps, 5.7) as a table.
void rxq_print_workers (FILE *out, const msgpack_object *workers);

//  Prints one event of a PARTIAL body ({req, id, event}) as one line:
//  local time of arrival, job id, and what happened. Bodies without an
//  event print nothing.
void rxq_print_event (FILE *out, const msgpack_object *body);

//  Prints the outcome of a finished JOB: its result when it succeeded (a
//  summary for bench.device, then every field), else its state and error.
void rxq_print_result (FILE *out, const msgpack_object *job);

//  Finds the first number in map OBJ under a key that contains NAME
//  ("gbps" matches "gbps_best"), looking at OBJ's own keys before its
//  nested maps. Returns false if none.
bool rxq_print_find_number (const msgpack_object *obj, const char *name, double *out);

//  Formats Unix milliseconds MS as "2026-11-25 10:51:58Z" into BUF; "-" for 0.
void rxq_print_time (char *buf, size_t size, uint64_t ms);

#endif
