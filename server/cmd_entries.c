/*
 * layerd entries: print a layer's changeset entries as NDJSON, one
 * api_entry_json_append() object per line, the same bytes the server's
 * /entries endpoint streams. One line buffer is reused for every entry.
 */
#include <stdio.h>
#include <string.h>

#include "api/entry_json.h"
#include "cli.h"
#include "layer/error.h"
#include "layer/reader.h"
#include "layer/text.h"

/* Longest line: an entry's JSON and its newline. */
#define LINE_MAX_BYTES (API_ENTRY_JSON_MAX + 1)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: layerd entries (--store STORE ID | --layer DIR [--kind "
            "diff|snapshot|folder]\n"
            "                       [--parent DIR]...) [--trace FILE|-|none] "
            "[--log-format json|text]\n"
            "\n"
            "Print the layer's changeset entries as NDJSON, one object per "
            "line.\n"
            "\n"
            "  --store STORE ID  the layer ID in STORE (dir:PATH, "
            "containers-storage:PATH,\n"
            "                    docker:PATH)\n"
            "  --layer DIR       a layer directory; --kind says how it holds "
            "its content\n"
            "                    (default diff), --parent names its parents, "
            "nearest first\n"
            "  --trace           where spans go (default none)\n"
            "\n"
            "exit status: 0 ok, 1 failure, 2 usage, 3 not found, 4 the layer "
            "cannot be read\n");
}

int srv_cmd_entries(int argc, char **argv)
{
    srv_layer_cmd c = {0};
    layer_reader *r = NULL;
    layer_reader_opts opts = {0};
    const layer_entry *e;
    layer_text_buf line = LAYER_TEXT_BUF_INIT(LINE_MAX_BYTES, "an entry line");
    int status, rc;

    if ((status = srv_layer_args_parse(&c.args, "entries", argc, argv, NULL,
                                       usage)) != SRV_CONTINUE)
        goto out;
    if ((status = srv_layer_cmd_open(&c, "layer.entries")) != 0)
        goto out;
    opts.span = c.span;
    if ((rc = layer_reader_open(&r, &c.info->layer, c.info->parents,
                                c.info->nparents, &opts)) < 0) {
        srv_errorf("entries", "%s", layer_error_last());
        layer_span_set_error(c.span, "layer.entries", rc);
        status = srv_exit_status(rc);
        goto out;
    }
    while ((rc = layer_reader_next(&e, r)) == 0) {
        layer_text_buf_truncate(&line, 0);
        if ((rc = api_entry_json_append(&line, e)) < 0 ||
            (rc = layer_text_buf_add(&line, "\n", 1)) < 0)
            break;
        fwrite(line.p, 1, line.len, stdout);
    }
    if (rc != LAYER_ITEROVER) {
        fflush(stdout);
        srv_errorf("entries", "%s", layer_error_last());
        layer_span_set_error(c.span, "layer.entries", rc);
        status = srv_exit_status(rc);
        goto out;
    }
    {
        layer_reader_stats st;

        if (layer_reader_stats_get(&st, r) == 0)
            layer_span_set_int(c.span, "entries.count", (int64_t)st.entries);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        srv_errorf("entries", "write error on standard output");
        status = SRV_EXIT_FAILURE;
    }
out:
    layer_text_buf_dispose(&line);
    layer_reader_free(r);
    srv_layer_cmd_dispose(&c);
    return status;
}
