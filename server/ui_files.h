#ifndef SRV_UI_FILES_H
#define SRV_UI_FILES_H

/*
 * The dashboard's files (ui/), compiled into the binary: the build
 * generates their definition (server/ui_embed.cmake writes ui_files.c in
 * the build directory). `layerd serve` hands them to api/ as its
 * api_ui, unless --ui-dir names a directory to serve instead.
 */

#include <stddef.h>

#include "api/ui.h"

/* The files, sorted by path; srv_ui_nfiles of them. */
extern const api_ui_file srv_ui_files[];
extern const size_t srv_ui_nfiles;

#endif
