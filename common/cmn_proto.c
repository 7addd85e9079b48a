/*  cmn_proto: names of protocol commands, for logs and error messages. */
#include "cmn_proto.h"

const char *
cmn_proto_command_name (int command)
{
    switch (command) {
        case RXQ_CMD_SUBMIT:     return "SUBMIT";
        case RXQ_CMD_STATUS:     return "STATUS";
        case RXQ_CMD_RESULT:     return "RESULT";
        case RXQ_CMD_WATCH:      return "WATCH";
        case RXQ_CMD_CANCEL:     return "CANCEL";
        case RXQ_CMD_LIST:       return "LIST";
        case RXQ_CMD_WORKERS:    return "WORKERS";
        case RXQ_CMD_RETRY:      return "RETRY";
        case RXQ_CMD_RECORDS:    return "RECORDS";
        case RXQ_CMD_PARTIAL:    return "PARTIAL";
        case RXQ_CMD_FINAL:      return "FINAL";
        case RXQ_CMD_ERROR:      return "ERROR";
        case RXQ_CMD_READY:      return "READY";
        case RXQ_CMD_PROGRESS:   return "PROGRESS";
        case RXQ_CMD_DONE:       return "DONE";
        case RXQ_CMD_DONES:      return "DONES";
        case RXQ_CMD_JOB:        return "JOB";
        case RXQ_CMD_ABORT:      return "ABORT";
        case RXQ_CMD_TUNING:     return "TUNING";
        case RXQ_CMD_JOBS:       return "JOBS";
        case RXQ_CMD_BLOB_PUT:   return "BLOB_PUT";
        case RXQ_CMD_BLOB_DATA:  return "BLOB_DATA";
        case RXQ_CMD_BLOB_GET:   return "BLOB_GET";
        case RXQ_CMD_HEARTBEAT:  return "HEARTBEAT";
        case RXQ_CMD_DISCONNECT: return "DISCONNECT";
        default:                 return "UNKNOWN";
    }
}
