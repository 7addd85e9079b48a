/*  rxq_report: the benchmark farm's report (`rxq bench report`).
 *
 *  Collects records as RECORDS returns them (proto 5.10: {id, job, kind,
 *  worker, device, ms, record}) and writes them four ways:
 *    - a side-by-side table for the terminal: one section per benchmark
 *      (kind and parameters), one row per device and run, with each run's
 *      headline figure relative to the best of its section;
 *    - a self-contained HTML page: the same table plus plots drawn as
 *      inline SVG (one bar chart of the headline figure per benchmark, and
 *      per-kernel times where records carry several kernels); no script,
 *      no external file, nothing fetched;
 *    - JSON lines: one {id, job, kind, worker, device, ms, record} object
 *      per line, the record complete;
 *    - CSV (RFC 4180): one row per record with the fields of docs/farm.md.
 *  The headline figure is GFLOPS for bench.gemm and bench.device, GB/s for
 *  bench.gemv and bench.kernels. The stream is written at least once per
 *  job (docs/farm.md), so records are de-duplicated by job id.
 *
 *  Records are copied: what is given to rxq_report_add may be freed after.
 *  Missing or ill-typed fields in a record read as empty or 0.
 */
#ifndef RXQ_REPORT_H
#define RXQ_REPORT_H
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include "cmn_error.h"

typedef struct _rxq_report_t rxq_report_t;

//  Creates an empty report, or NULL when out of memory.
rxq_report_t *rxq_report_new (void);

//  Frees the report. Idempotent; nulls *self_p.
void rxq_report_destroy (rxq_report_t **self_p);

//  Adds ENTRY, one element of a RECORDS reply's `records`. Returns 0 when
//  added, 1 when a record of the same job is already there (not added),
//  -1 with ERR (RXQ_E_PROTO) when ENTRY is not a map with `job`, `kind`
//  and a `record` map, or RXQ_E_NOMEM.
int rxq_report_add (rxq_report_t *self, const msgpack_object *entry, cmn_err_t *err);

//  Number of records held.
size_t rxq_report_size (rxq_report_t *self);

//  Writes the table; "no benchmark records" when empty.
void rxq_report_table (rxq_report_t *self, FILE *out);

//  Writes the HTML page. TITLE is shown as its heading (escaped).
void rxq_report_html (rxq_report_t *self, FILE *out, const char *title);

//  Writes one JSON object per record, each on its own line.
void rxq_report_jsonl (rxq_report_t *self, FILE *out);

//  Writes the CSV header line and one line per record.
void rxq_report_csv (rxq_report_t *self, FILE *out);

#endif
