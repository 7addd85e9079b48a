/*  rxq_cluster: starts and stops a local cluster for `rxq up` / `rxq down`.
 *
 *  A local cluster is redis-server (unless an external Redis is given),
 *  one rxq-broker and N rxq-worker processes, each daemonised (setsid, own
 *  session) with stdout and stderr in RUN_DIR/<name>.log and its pid in
 *  RUN_DIR/<name>.pid, where <name> is redis, broker, worker-1 ... worker-N.
 *  Redis keeps its append-only file in RUN_DIR/redis.
 *
 *  rxq_cluster_up refuses to start when a cluster from the same run dir is
 *  running or a port is taken, and waits until Redis answers PING and the
 *  broker lists every worker; if anything fails it names the component,
 *  prints the tail of its log, and stops what it started.
 */
#ifndef RXQ_CLUSTER_H
#define RXQ_CLUSTER_H
#include <stdbool.h>
#include <stdio.h>
#include "cmn_error.h"

//  Default private Redis port of a local cluster (not Redis' 6379, so a
//  system Redis is left alone).
#define RXQ_CLUSTER_REDIS_PORT_DEFAULT  6390
#define RXQ_CLUSTER_BROKER_PORT_DEFAULT 5555
#define RXQ_CLUSTER_WORKERS_DEFAULT     2
#define RXQ_CLUSTER_READY_MS_DEFAULT    30000
//  How long rxq down waits for a process after SIGTERM before SIGKILL.
#define RXQ_CLUSTER_STOP_MS             10000

typedef struct {
    const char *run_dir;    // pid files, logs, Redis data; created if missing
    int workers;            // worker processes to start (0 allowed)
    const char *redis_url;  // external Redis "redis://host:port[/db]"; NULL: start one
    int redis_port;         // port of the Redis we start, on 127.0.0.1
    int port;               // broker port, bound on 127.0.0.1
    const char *device;     // worker --device selector, NULL for the default
    bool no_device;         // start workers with --no-device
    int capacity;           // worker --capacity (leases held at once); 0: its default
    int ready_ms;           // how long to wait for the cluster to be ready, ms
} rxq_cluster_opts_t;

//  Fills OPTS with the defaults (run dir from $RXQ_RUN_DIR, else ./.rxq).
void rxq_cluster_opts_default (rxq_cluster_opts_t *opts);

//  Starts the cluster described by OPTS and waits until it is ready;
//  writes progress and a summary to OUT. Returns 0, or -1 with ERR set
//  (RXQ_E_STATE: already running; RXQ_E_ADDRINUSE: a port is taken;
//  RXQ_E_INVAL: a bad URL; RXQ_E_TIMEOUT / RXQ_E_UNAVAILABLE: a component
//  did not become ready or exited; RXQ_E_IO: the run dir or a log could
//  not be written) and, when one component is to blame, its name
//  ("broker", "worker-2") in FAILED, else "". What it started is stopped
//  again; the logs stay.
int rxq_cluster_up (const rxq_cluster_opts_t *opts, FILE *out, char *failed,
                    size_t failed_size, cmn_err_t *err);

//  Prints the last lines of RUN_DIR/<NAME>.log to stderr, indented.
void rxq_cluster_print_log_tail (const char *run_dir, const char *name);

//  Stops the cluster of RUN_DIR: SIGTERM to the workers, then the broker,
//  then Redis, each group given RXQ_CLUSTER_STOP_MS before SIGKILL, and
//  removes the pid files. A pid file whose process is gone (or is not the
//  program it names) is removed silently. Writes what it did to OUT
//  ("no cluster is running from DIR" when nothing ran). Returns 0, or -1
//  with ERR set when a process could not be stopped (RXQ_E_STATE).
int rxq_cluster_down (const char *run_dir, FILE *out, cmn_err_t *err);

//  Parses "redis://host:port[/db]" (also without the scheme). HOST gets at
//  most HOST_SIZE - 1 bytes. Returns 0, or -1 with ERR set (RXQ_E_INVAL).
int rxq_cluster_parse_redis_url (const char *url, char *host, size_t host_size,
                                 int *port, int *db, cmn_err_t *err);

//  Returns 0 when TCP port PORT on 127.0.0.1 can be bound now, or -1 with
//  ERR set (RXQ_E_ADDRINUSE naming the port and WHAT, e.g. "broker").
int rxq_cluster_port_free (int port, const char *what, cmn_err_t *err);

#endif
