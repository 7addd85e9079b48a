/*  rxq: the command-line client of an rxq cluster. See docs/cli.md. */
#include "rxq_cmd.h"

int
main (int argc, char **argv)
{
    return rxq_cmd_main (argc, argv);
}
