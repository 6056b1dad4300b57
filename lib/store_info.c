/*
 * Helpers over a resolved layer_info that every caller needs in the same
 * form (spans, logs).
 */
#include <string.h>

#include "layer/alloc.h"
#include "layer/store.h"

char *layer_info_parent_paths(const layer_info *info)
{
    size_t len = 0, o = 0;
    char *joined;

    for (size_t i = 0; i < info->nparents; i++)
        len += strlen(info->parents[i].path) + 2;
    joined = layer_trymalloc(len + 1);
    if (joined == NULL)
        return NULL;
    for (size_t i = 0; i < info->nparents; i++) {
        size_t n = strlen(info->parents[i].path);

        if (i > 0) {
            memcpy(joined + o, ", ", 2);
            o += 2;
        }
        memcpy(joined + o, info->parents[i].path, n);
        o += n;
    }
    joined[o] = '\0';
    return joined;
}
