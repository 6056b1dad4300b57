/*
 * Entry helpers: names of change kinds and types, xattr lookup, and the
 * changeset path order. The order compares paths bytewise with '/' below
 * every other byte; that is exactly a depth-first pre-order walk whose
 * children are sorted with strcmp (continuity's directoryCompare).
 */
#include "layer/entry.h"

#include <string.h>

const char *layer_change_name(layer_change change)
{
    switch (change) {
    case LAYER_CHANGE_ADD:
        return "add";
    case LAYER_CHANGE_MODIFY:
        return "modify";
    case LAYER_CHANGE_DELETE:
        return "delete";
    }
    return "?";
}

const char *layer_type_name(layer_type type)
{
    switch (type) {
    case LAYER_TYPE_NONE:
        return "none";
    case LAYER_TYPE_FILE:
        return "file";
    case LAYER_TYPE_DIR:
        return "dir";
    case LAYER_TYPE_SYMLINK:
        return "symlink";
    case LAYER_TYPE_HARDLINK:
        return "hardlink";
    case LAYER_TYPE_CHAR:
        return "char";
    case LAYER_TYPE_BLOCK:
        return "block";
    case LAYER_TYPE_FIFO:
        return "fifo";
    }
    return "?";
}

const layer_xattr *layer_entry_xattr(const layer_entry *entry, const char *name)
{
    for (size_t i = 0; i < entry->xattr_count; i++) {
        if (strcmp(entry->xattrs[i].name, name) == 0)
            return &entry->xattrs[i];
    }
    return NULL;
}

int layer_path_compare(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;

    for (size_t i = 0; i < n; i++) {
        unsigned ca = (unsigned char)a[i], cb = (unsigned char)b[i];

        if (ca == cb)
            continue;
        ca = ca == '/' ? 0 : ca + 1;
        cb = cb == '/' ? 0 : cb + 1;
        return ca < cb ? -1 : 1;
    }
    return alen < blen ? -1 : alen > blen;
}
