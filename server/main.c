/*
 * layerd: one binary, subcommands. main() only dispatches; each
 * subcommand lives in cmd_<name>.c, parses its own options and returns
 * the exit status (see cli.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: layerd <command> [options]\n"
               "\n"
               "Serve container image layers from this host's disk.\n"
               "\n"
               "commands:\n"
               "  cache     warm, list or prune the blob cache\n"
               "  entries   list a layer's changeset entries as NDJSON\n"
               "  export    write a layer's changeset as an OCI layer tar\n"
               "  serve     run the HTTPS server\n"
               "  token     make a bearer token for the access policy\n"
               "  version   print the version\n"
               "\n"
               "Run 'layerd <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (cmd == NULL) {
        usage(stderr);
        return SRV_EXIT_USAGE;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return SRV_EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("layerd %s\n", LAYERD_VERSION);
        return SRV_EXIT_OK;
    }
    if (strcmp(cmd, "entries") == 0)
        return srv_cmd_entries(argc - 1, argv + 1);
    if (strcmp(cmd, "export") == 0)
        return srv_cmd_export(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return srv_cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "cache") == 0)
        return srv_cmd_cache(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0)
        return srv_cmd_token(argc - 1, argv + 1);
    fprintf(stderr, "layerd: unknown command '%s'\n", cmd);
    usage(stderr);
    return SRV_EXIT_USAGE;
}
