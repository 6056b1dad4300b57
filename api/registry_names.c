/*
 * Names in the registry view: the spec's grammars (repository names,
 * tags, digests), and which images the names stand for.
 *
 * Every layer of the store is an image of its own chain, repository
 * "layers/<id>", tag "latest", when its id is a valid path component
 * ([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*; other ids, with capitals, ':' or
 * a leading punctuation, are not exposed). Its config is made from the
 * store's metadata (registry_manifest.c).
 *
 * The images a store knows (layer_store_images(): containers-storage
 * images.json names, docker repositories.json) are served under their
 * names, "repository:tag" split at the last ':' after the last '/'.
 * Docker's short forms are the same image: "docker.io/library/app"
 * answers also as "library/app" and "app", "docker.io/user/app" as
 * "user/app", whichever of them the store wrote. A lookup tries those
 * few spellings with layer_store_image_resolve() (an index lookup);
 * only tags/list and _catalog walk the store's images. Digest references
 * ("app@sha256:...") name no tag and are not listed. Images without
 * layers, names that break the grammar, and repositories under
 * "layers/" (which the layer images own) are not served.
 *
 * An image answers only when the request may read every layer of its
 * chain: an image shows its parents' bytes too. A layer hidden from the
 * request hides the repository (NAME_UNKNOWN); one it may list but not
 * read is DENIED. Mutable layers (container layers) have no stable
 * digest, so they are never images, nor part of one.
 */
#include "registry_int.h"

#include <stdio.h>
#include <string.h>

#include "layer/alloc.h"
#include "layer/error.h"

#define LAYERS_PREFIX     "layers/"
#define LAYERS_PREFIX_LEN 7
#define LATEST            "latest"

static bool alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool api_registry__component_valid(const char *s, size_t len)
{
    size_t i = 0;

    if (len == 0 || !alnum_lower(s[0]))
        return false;
    while (i < len) {
        /* A run of alphanumerics... */
        while (i < len && alnum_lower(s[i]))
            i++;
        if (i == len)
            return true;
        /* ...then a separator: '.', '_', "__" or a run of '-'. */
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < len && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < len && s[i] == '-')
                i++;
        } else {
            return false;
        }
        /* ...which an alphanumeric must follow. */
        if (i == len || !alnum_lower(s[i]))
            return false;
    }
    return true;
}

bool api_registry__name_valid(const char *s, size_t len)
{
    size_t start = 0;

    if (len == 0 || len > REG_NAME_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '/') {
            if (!api_registry__component_valid(s + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

static bool word_char(char c)
{
    return alnum_lower(c) || (c >= 'A' && c <= 'Z') || c == '_';
}

bool api_registry__tag_valid(const char *s, size_t len)
{
    if (len == 0 || len > REG_TAG_MAX || !word_char(s[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        if (!word_char(s[i]) && s[i] != '.' && s[i] != '-')
            return false;
    }
    return true;
}

bool api_registry__digest_syntax(const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);
    size_t alen, elen;

    if (colon == NULL)
        return false;
    alen = (size_t)(colon - s);
    elen = len - alen - 1;
    if (alen == 0 || elen == 0 || !alnum_lower(s[0]) ||
        !alnum_lower(s[alen - 1]))
        return false;
    /* algorithm-component (separator algorithm-component)* */
    for (size_t i = 1; i < alen; i++) {
        bool sep = s[i] == '+' || s[i] == '.' || s[i] == '_' || s[i] == '-';

        if (!alnum_lower(s[i]) && !sep)
            return false;
        if (sep && !alnum_lower(s[i + 1]))
            return false;
    }
    for (size_t i = alen + 1; i < len; i++) {
        char c = s[i];

        if (!word_char(c) && c != '=' && c != '-')
            return false;
    }
    if (alen == 6 && memcmp(s, "sha256", 6) == 0)
        return api_registry__digest_sha256(s, len);
    return true;
}

bool api_registry__digest_sha256(const char *s, size_t len)
{
    if (len != 71 || memcmp(s, "sha256:", 7) != 0)
        return false;
    for (size_t i = 7; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

void api_registry__image_free(reg_image *img)
{
    if (img == NULL)
        return;
    for (size_t i = 0; i < img->nlayers; i++) {
        layer_info_free(img->layers[i]);
        layer_free(img->ids[i]);
        layer_free(img->created[i]);
    }
    layer_free(img->config);
    layer_free(img);
}

/* The layer id of a "layers/<id>" name, or NULL. */
static const char *layer_name_id(const char *name)
{
    const char *id;

    if (strncmp(name, LAYERS_PREFIX, LAYERS_PREFIX_LEN) != 0)
        return NULL;
    id = name + LAYERS_PREFIX_LEN;
    if (!api_registry__component_valid(id, strlen(id)))
        return NULL;
    return id;
}

static void name_unknown(api_call *call, const char *name)
{
    api_registry__error(call, 404, "NAME_UNKNOWN",
                        "repository name not known to registry",
                        json_pack("{s:s}", "name", name));
}

static void manifest_unknown(api_call *call, const char *tag)
{
    api_registry__error(call, 404, "MANIFEST_UNKNOWN", "manifest unknown",
                        json_pack("{s:s}", "tag", tag));
}

/* Keep a copy of what the config needs of layer i. */
static int keep_names(reg_image *img, size_t i)
{
    const layer_info *l = img->layers[i];

    if ((img->ids[i] = layer_trystrdup(l->id)) == NULL)
        return LAYER_ENOMEM;
    if (l->created != NULL &&
        (img->created[i] = layer_trystrdup(l->created)) == NULL)
        return LAYER_ENOMEM;
    return 0;
}

/*
 * Resolve layer id and its chain into img (base first), checking read
 * access on each. Answers the error itself; unknown and mutable layers
 * answer as "what" (NAME_UNKNOWN for a layer name, MANIFEST_UNKNOWN for
 * a store image's tag).
 */
static int resolve_chain(reg_image *img, api_call *call, const char *name,
                         const char *id)
{
    layer_info *top = NULL;
    size_t n;
    int rc;

    rc = layer_store_resolve(&top, call->ctx->store, id);
    if (rc == LAYER_ENOTFOUND || rc == LAYER_EINVALID) {
        name_unknown(call, name);
        return LAYER_ENOTFOUND;
    }
    if (rc < 0) {
        api_registry__from_error(call, rc, "NAME_UNKNOWN");
        return rc;
    }
    if ((rc = api_registry__may_read(call, top)) < 0) {
        layer_info_free(top);
        return rc;
    }
    if (top->mutable_) {
        layer_info_free(top);
        name_unknown(call, name);
        return LAYER_ENOTFOUND;
    }
    n = top->nparents + 1;
    if (n > REG_LAYERS_MAX) {
        layer_info_free(top);
        (void)layer_error_set(LAYER_ETOOBIG, "chain of %zu layers", n);
        api_registry__from_error(call, LAYER_ETOOBIG, "NAME_UNKNOWN");
        return LAYER_ETOOBIG;
    }
    img->layers[n - 1] = top;
    img->nlayers = n;
    if ((rc = keep_names(img, n - 1)) < 0) {
        api_registry__from_error(call, rc, "NAME_UNKNOWN");
        return rc;
    }
    /* Parents nearest first: layer i of the chain is parent n - 2 - i. */
    for (size_t i = 0; i + 1 < n; i++) {
        const char *pid = top->parent_ids[n - 2 - i];

        rc = layer_store_resolve(&img->layers[i], call->ctx->store, pid);
        if (rc == LAYER_ENOTFOUND)
            rc = api_problem__recode(LAYER_EBROKEN);
        if (rc < 0) {
            api_registry__from_error(call, rc, "NAME_UNKNOWN");
            return rc;
        }
        if ((rc = api_registry__may_read(call, img->layers[i])) < 0)
            return rc;
        if (img->layers[i]->mutable_) {
            name_unknown(call, name);
            return LAYER_ENOTFOUND;
        }
        if ((rc = keep_names(img, i)) < 0) {
            api_registry__from_error(call, rc, "NAME_UNKNOWN");
            return rc;
        }
    }
    return 0;
}

/* Is the repository reserved for the layer images? */
static bool layers_repo(const char *repo, size_t len)
{
    return len >= LAYERS_PREFIX_LEN - 1 &&
           strncmp(repo, LAYERS_PREFIX, LAYERS_PREFIX_LEN - 1) == 0 &&
           (len == LAYERS_PREFIX_LEN - 1 || repo[LAYERS_PREFIX_LEN - 1] == '/');
}

/* The other spellings Docker gives repository r (up to 2), written into
 * alt[] as NUL-terminated strings of at most REG_NAME_MAX bytes. */
static size_t aliases(char alt[2][REG_NAME_MAX + 16], const char *r)
{
    const char *slash = strchr(r, '/');
    size_t n = 0;

    if (strncmp(r, "docker.io/library/", 18) == 0) {
        snprintf(alt[n++], REG_NAME_MAX + 16, "%s", r + 10);
        snprintf(alt[n++], REG_NAME_MAX + 16, "%s", r + 18);
    } else if (strncmp(r, "docker.io/", 10) == 0) {
        snprintf(alt[n++], REG_NAME_MAX + 16, "%s", r + 10);
        if (strchr(r + 10, '/') == NULL)
            snprintf(alt[n++], REG_NAME_MAX + 16, "library/%s", r + 10);
    } else if (strncmp(r, "library/", 8) == 0 && strchr(r + 8, '/') == NULL) {
        snprintf(alt[n++], REG_NAME_MAX + 16, "docker.io/%s", r);
        snprintf(alt[n++], REG_NAME_MAX + 16, "%s", r + 8);
    } else if (slash == NULL) {
        snprintf(alt[n++], REG_NAME_MAX + 16, "docker.io/library/%s", r);
        snprintf(alt[n++], REG_NAME_MAX + 16, "library/%s", r);
    } else if (memchr(r, '.', (size_t)(slash - r)) == NULL &&
               strncmp(r, "localhost/", 10) != 0) {
        /* "user/app": no domain, so Docker's hub */
        snprintf(alt[n++], REG_NAME_MAX + 16, "docker.io/%s", r);
    }
    return n;
}

/* Find the store's image named repo:tag under any of its spellings. */
static int find_image(layer_image **out, layer_store *store, const char *repo,
                      const char *tag)
{
    char alt[2][REG_NAME_MAX + 16];
    char ref[REG_NAME_MAX + 16 + REG_TAG_MAX + 2];
    size_t nalt = aliases(alt, repo);
    int rc;

    for (size_t i = 0; i <= nalt; i++) {
        snprintf(ref, sizeof(ref), "%s:%s", i == 0 ? repo : alt[i - 1], tag);
        rc = layer_store_image_resolve(out, store, ref);
        if (rc != LAYER_ENOTFOUND && rc != LAYER_EINVALID)
            return rc;
    }
    return LAYER_ENOTFOUND;
}

/* Split a store's image name into repository and tag (borrowed from
 * buf); false for digest references and names that break the grammar
 * or belong to the layer images. */
static bool split_name(char *buf, size_t cap, const char *full,
                       const char **repo, const char **tag)
{
    const char *slash, *colon;
    size_t rlen;

    if (strchr(full, '@') != NULL || strlen(full) >= cap)
        return false;
    slash = strrchr(full, '/');
    colon = strrchr(slash != NULL ? slash : full, ':');
    if (colon == NULL)
        return false;
    rlen = (size_t)(colon - full);
    memcpy(buf, full, rlen);
    buf[rlen] = '\0';
    *repo = buf;
    *tag = colon + 1;
    return api_registry__name_valid(buf, rlen) &&
           api_registry__tag_valid(*tag, strlen(*tag)) &&
           !layers_repo(buf, rlen);
}

/* Does repository repo (any spelling) name one of image's names? Adds
 * its tags to v (owned copies) when v is not NULL. */
static int image_tags(const layer_image *im, const char *repo, char ***v,
                      size_t *n, size_t *cap, bool *found)
{
    char alt[2][REG_NAME_MAX + 16];
    char buf[REG_NAME_MAX + 1];
    const char *r, *t;

    for (size_t i = 0; i < im->nnames; i++) {
        size_t nalt;
        bool same;

        if (!split_name(buf, sizeof(buf), im->names[i], &r, &t))
            continue;
        same = strcmp(r, repo) == 0;
        nalt = aliases(alt, r);
        for (size_t k = 0; k < nalt && !same; k++)
            same = strcmp(alt[k], repo) == 0;
        if (!same)
            continue;
        *found = true;
        if (v == NULL)
            continue;
        if (*n == *cap) {
            size_t nc = *cap != 0 ? *cap * 2 : 8;
            char **nv = layer_tryarray(*v, nc, sizeof(**v));

            if (nv == NULL)
                return LAYER_ENOMEM;
            *v = nv;
            *cap = nc;
        }
        if (((*v)[*n] = layer_trystrdup(t)) == NULL)
            return LAYER_ENOMEM;
        (*n)++;
    }
    return 0;
}

int api_registry__resolve(reg_image **out, api_call *call, const char *name,
                          const char *tag)
{
    const char *id = layer_name_id(name);
    layer_image *im = NULL;
    reg_image *img = NULL;
    int rc;

    *out = NULL;
    if ((img = layer_trycalloc(1, sizeof(*img))) == NULL) {
        api_registry__from_error(call, LAYER_ENOMEM, "NAME_UNKNOWN");
        return LAYER_ENOMEM;
    }
    if (id != NULL) {
        if ((rc = resolve_chain(img, call, name, id)) < 0)
            goto out;
        if (strcmp(tag, LATEST) != 0) {
            manifest_unknown(call, tag);
            rc = LAYER_ENOTFOUND;
            goto out;
        }
        img->source = REG_CONFIG_MINIMAL;
        goto out;
    }
    if (layers_repo(name, strlen(name))) {
        name_unknown(call, name);
        rc = LAYER_ENOTFOUND;
        goto out;
    }
    rc = find_image(&im, call->ctx->store, name, tag);
    if (rc == LAYER_ENOTFOUND) {
        /* A known repository with another tag is MANIFEST_UNKNOWN. */
        char **tags = NULL;
        size_t ntags = 0;

        if (api_registry__tags(&tags, &ntags, call, name) == 0) {
            api_registry__strv_free(tags, ntags);
            manifest_unknown(call, tag);
        }
        goto out;
    }
    if (rc < 0) {
        api_registry__from_error(call, rc, "NAME_UNKNOWN");
        goto out;
    }
    if (im->top_layer == NULL) {
        (void)layer_error_set(LAYER_ENOTFOUND, "the image has no layers");
        manifest_unknown(call, tag);
        rc = LAYER_ENOTFOUND;
        goto out;
    }
    if ((rc = resolve_chain(img, call, name, im->top_layer)) < 0)
        goto out;
    img->source = REG_CONFIG_OWN;
    if ((rc = layer_store_image_config(&img->config, &img->config_len,
                                       call->ctx->store, im)) < 0) {
        if (rc == LAYER_ENOTFOUND)
            rc = api_problem__recode(LAYER_EBROKEN);
        api_registry__from_error(call, rc, "MANIFEST_UNKNOWN");
        goto out;
    }
    snprintf(img->config_digest, sizeof(img->config_digest), "%s",
             im->config_digest);
out:
    layer_image_free(im);
    if (rc < 0) {
        api_registry__image_free(img);
        return rc;
    }
    *out = img;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort v[0..n) and drop duplicates. */
static size_t sort_unique(char **v, size_t n)
{
    size_t k = 0;

    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_str);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i], v[k]) == 0)
            layer_free(v[i]);
        else
            v[++k] = v[i];
    }
    return k + 1;
}

int api_registry__tags(char ***out, size_t *out_n, api_call *call,
                       const char *name)
{
    reg_image *img = NULL;
    layer_image **ims = NULL;
    size_t nims = 0, n = 0, cap = 0;
    char **v = NULL;
    bool found = false;
    int rc;

    if (layer_name_id(name) != NULL) {
        if ((rc = api_registry__resolve(&img, call, name, LATEST)) < 0)
            return rc;
        api_registry__image_free(img);
        if ((v = layer_trycalloc(1, sizeof(*v))) == NULL ||
            (v[0] = layer_trystrdup(LATEST)) == NULL) {
            layer_free(v);
            api_registry__from_error(call, LAYER_ENOMEM, "NAME_UNKNOWN");
            return LAYER_ENOMEM;
        }
        *out = v;
        *out_n = 1;
        return 0;
    }
    if (layers_repo(name, strlen(name))) {
        name_unknown(call, name);
        return LAYER_ENOTFOUND;
    }
    if ((rc = layer_store_images(&ims, &nims, call->ctx->store)) < 0)
        goto out;
    for (size_t i = 0; i < nims; i++) {
        bool here = false;
        layer_info *top = NULL;
        size_t before = n;

        if (ims[i]->top_layer == NULL)
            continue;
        if ((rc = image_tags(ims[i], name, &v, &n, &cap, &here)) < 0)
            goto out;
        if (!here)
            continue;
        /* The image's tags count only if the request may read it. */
        if (layer_store_describe(&top, call->ctx->store, ims[i]->top_layer) <
                0 ||
            top->mutable_ || !api_registry__may_list(call, top->id, false)) {
            while (n > before)
                layer_free(v[--n]);
        } else {
            found = true;
        }
        layer_info_free(top);
    }
    if (!found) {
        name_unknown(call, name);
        rc = LAYER_ENOTFOUND;
        goto done;
    }
    n = sort_unique(v, n);
    *out = v;
    *out_n = n;
    v = NULL;
    n = 0;
out:
    if (rc < 0)
        api_registry__from_error(call, rc, "NAME_UNKNOWN");
done:
    api_registry__strv_free(v, n);
    layer_images_free(ims, nims);
    return rc;
}

/* The repositories of the store's images the request may list, sorted,
 * unique, as the store spells them. */
static int image_repos(char ***out, size_t *out_n, api_call *call)
{
    layer_image **ims = NULL;
    size_t nims = 0, n = 0, cap = 0;
    char **v = NULL;
    char buf[REG_NAME_MAX + 1];
    int rc;

    if ((rc = layer_store_images(&ims, &nims, call->ctx->store)) < 0)
        goto out;
    for (size_t i = 0; i < nims; i++) {
        layer_info *top = NULL;
        bool ok;

        if (ims[i]->top_layer == NULL)
            continue;
        ok = layer_store_describe(&top, call->ctx->store, ims[i]->top_layer) ==
                 0 &&
             !top->mutable_ && api_registry__may_list(call, top->id, false);
        layer_info_free(top);
        if (!ok)
            continue;
        for (size_t k = 0; k < ims[i]->nnames; k++) {
            const char *r, *t;

            if (!split_name(buf, sizeof(buf), ims[i]->names[k], &r, &t))
                continue;
            if (n == cap) {
                size_t nc = cap != 0 ? cap * 2 : 16;
                char **nv = layer_tryarray(v, nc, sizeof(*v));

                if (nv == NULL) {
                    rc = LAYER_ENOMEM;
                    goto out;
                }
                v = nv;
                cap = nc;
            }
            if ((v[n] = layer_trystrdup(r)) == NULL) {
                rc = LAYER_ENOMEM;
                goto out;
            }
            n++;
        }
    }
    *out_n = sort_unique(v, n);
    *out = v;
    v = NULL;
    n = 0;
out:
    api_registry__strv_free(v, n);
    layer_images_free(ims, nims);
    return rc;
}

/* Batch of ids asked of the store at a time. */
#define LIST_BATCH 256

/* Append to v (room for n + 1) the "layers/<id>" names sorting after
 * last, up to n + 1 in all. */
static int layer_repos(char **v, size_t *count, api_call *call,
                       const char *last, size_t n)
{
    char **ids = NULL;
    size_t nids = 0;
    char *cursor = NULL;
    int rc = 0;

    /* "layers/<id>" sort as their ids do: page through the store from
     * the id after last's (from the start when last sorts before every
     * layer name; nothing when after them all). */
    if (last != NULL) {
        if (strncmp(last, LAYERS_PREFIX, LAYERS_PREFIX_LEN) == 0) {
            if ((cursor = layer_trystrdup(last + LAYERS_PREFIX_LEN)) == NULL)
                return LAYER_ENOMEM;
        } else if (strcmp(last, LAYERS_PREFIX) > 0) {
            return 0;
        }
    }
    while (*count <= n) {
        if ((rc = layer_store_list(&ids, &nids, call->ctx->store, cursor,
                                   LIST_BATCH)) < 0)
            goto out;
        for (size_t i = 0; i < nids && *count <= n; i++) {
            layer_info *info = NULL;
            size_t len = strlen(ids[i]);
            char *repo;
            bool ok;

            if (!api_registry__component_valid(ids[i], len) ||
                !api_registry__may_list(call, ids[i], false))
                continue;
            /* The index alone: gone, broken or mutable is no image. */
            ok = layer_store_describe(&info, call->ctx->store, ids[i]) == 0 &&
                 !info->mutable_;
            layer_info_free(info);
            if (!ok)
                continue;
            if ((repo = layer_trymalloc(LAYERS_PREFIX_LEN + len + 1)) == NULL) {
                rc = LAYER_ENOMEM;
                goto out;
            }
            memcpy(repo, LAYERS_PREFIX, LAYERS_PREFIX_LEN);
            memcpy(repo + LAYERS_PREFIX_LEN, ids[i], len + 1);
            v[(*count)++] = repo;
        }
        if (nids < LIST_BATCH)
            break;
        layer_free(cursor);
        if ((cursor = layer_trystrdup(ids[nids - 1])) == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
        layer_store_ids_free(ids, nids);
        ids = NULL;
        nids = 0;
    }
out:
    layer_store_ids_free(ids, nids);
    layer_free(cursor);
    return rc;
}

int api_registry__repositories(char ***out, size_t *out_n, bool *more,
                               api_call *call, const char *last, size_t n)
{
    char **layers = NULL, **images = NULL, **v = NULL;
    size_t nl = 0, ni = 0, count = 0, a = 0, b = 0;
    int rc = 0;

    *more = false;
    if ((layers = layer_trycalloc(n + 1, sizeof(*layers))) == NULL ||
        (v = layer_trycalloc(n + 1, sizeof(*v))) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    if ((rc = layer_repos(layers, &nl, call, last, n)) < 0 ||
        (rc = image_repos(&images, &ni, call)) < 0)
        goto out;
    /* The images' names after last, merged with the layer names. */
    while (b < ni && last != NULL && strcmp(images[b], last) <= 0)
        b++;
    while (count <= n && (a < nl || b < ni)) {
        if (b == ni || (a < nl && strcmp(layers[a], images[b]) < 0)) {
            v[count++] = layers[a];
            layers[a++] = NULL;
        } else {
            v[count++] = images[b];
            images[b++] = NULL;
        }
    }
    if (count > n) {
        *more = true;
        layer_free(v[n]);
        v[n] = NULL;
        count = n;
    }
    *out = v;
    *out_n = count;
    v = NULL;
out:
    if (rc < 0)
        api_registry__from_error(call, rc, "NAME_UNKNOWN");
    api_registry__strv_free(v, count);
    api_registry__strv_free(layers, nl);
    api_registry__strv_free(images, ni);
    return rc;
}
