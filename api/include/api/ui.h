#ifndef API_UI_H
#define API_UI_H

/**
 * @file api/ui.h
 * @brief The dashboard's files (ui/ in the source tree), as the server
 * hands them to api/: the copies compiled into the binary, or a
 * directory to serve instead (`layerd serve --ui-dir DIR`).
 *
 * api/ answers /ui/... with them (api/ui.c): `/ui/assets/<file>` is that
 * file, every other `/ui/...` path is index.html, so a deep link
 * reloads into the page that shows it.
 */

#include <stddef.h>

/** One file of the dashboard. */
typedef struct api_ui_file {
    const char *path;          /**< relative: "index.html", "assets/app.js" */
    const unsigned char *data; /**< its bytes */
    size_t len;                /**< their number */
    const char *etag;          /**< strong ETag, quoted (a SHA-256 in hex) */
} api_ui_file;

/** Where the dashboard's files come from. Owned by the server. */
typedef struct api_ui {
    const api_ui_file *files; /**< the compiled-in files */
    size_t nfiles;            /**< their number */
    /** >= 0: serve the files of this directory instead (opened by the
     * server, read beneath it with layer_beneath_open()); -1: use files. */
    int dir_fd;
} api_ui;

/** Largest file served from a --ui-dir directory (bytes). */
#define API_UI_FILE_MAX (8u * 1024u * 1024u)

/**
 * The media type of a dashboard file, by its extension ("text/javascript;
 * charset=utf-8" for ".js"); application/octet-stream when unknown.
 * @param path the file's name or path
 * @return a static string
 */
const char *api_ui_content_type(const char *path);

#endif
