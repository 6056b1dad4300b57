#ifndef API_REGISTRY_INT_H
#define API_REGISTRY_INT_H

/*
 * Private to the registry view (api/registry*.c): the OCI distribution
 * API's pull side over the store's layers and images (DESIGN.md section
 * 9). registry.c routes /v2/ and answers the errors, access control,
 * _catalog and tags/list; registry_names.c turns repository names into
 * images (a chain of layers and a config source); registry_manifest.c
 * builds configs and manifests and answers manifest requests;
 * registry_blobs.c describes the layer blobs (api/blobs_int.h) and
 * answers blob requests.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api_int.h"
#include "layer/digest.h"
#include "layer/export.h"
#include "layer/store.h"

/* Media types of the registry view. */
#define REG_TYPE_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define REG_TYPE_OCI_CONFIG   "application/vnd.oci.image.config.v1+json"
#define REG_TYPE_OCI_INDEX    "application/vnd.oci.image.index.v1+json"
#define REG_TYPE_DOCKER_MANIFEST                                               \
    "application/vnd.docker.distribution.manifest.v2+json"
#define REG_TYPE_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define REG_TYPE_DOCKER_LAYER_GZIP                                             \
    "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define REG_TYPE_DOCKER_LAYER_TAR "application/vnd.docker.image.rootfs.diff.tar"

/* The annotation a manifest carries when its config is not the store's
 * own: the value says why, and REG_ANNOTATION_SOURCE names the config
 * the store has. */
#define REG_ANNOTATION_REWRITTEN "dev.layerd.config.rewritten"
#define REG_ANNOTATION_SOURCE    "dev.layerd.config.source"

/* Longest repository name (distribution/reference's cap on the path). */
#define REG_NAME_MAX 255
/* Longest tag (the spec's grammar: 1 + 127 characters). */
#define REG_TAG_MAX 128
/* Most entries one _catalog or tags/list page gives. */
#define REG_PAGE_MAX 1000
/* Longest chain of layers an image may have (the reader's cap). */
#define REG_LAYERS_MAX (LAYER_CHAIN_MAX + 1)

/* ---- names and references (registry_names.c) ---- */

/* Is s[0..len) a path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* ? */
bool api_registry__component_valid(const char *s, size_t len);

/* Is s[0..len) a repository name (components joined by '/', at most
 * REG_NAME_MAX bytes)? */
bool api_registry__name_valid(const char *s, size_t len);

/* Is s[0..len) a tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127} ? */
bool api_registry__tag_valid(const char *s, size_t len);

/* Is s[0..len) a digest as the image spec's grammar has it
 * (algorithm ":" encoded)? */
bool api_registry__digest_syntax(const char *s, size_t len);

/* Is s a sha256 digest: "sha256:" + 64 lowercase hex? */
bool api_registry__digest_sha256(const char *s, size_t len);

/* Where an image's config comes from. */
typedef enum reg_config_source {
    REG_CONFIG_MINIMAL, /* layers/<id>: made from the store's metadata */
    REG_CONFIG_OWN      /* the image's own config, from the store */
} reg_config_source;

/* An image the registry serves: its layers and its config source. */
typedef struct reg_image {
    /* Layers, base first (layer_info_free() each; a slot is NULL once
     * api_registry__describe_start() handed it over). */
    layer_info *layers[REG_LAYERS_MAX];
    /* Their ids and created times (layer_alloc; created may be NULL):
     * what the config needs once the layers were handed over. */
    char *ids[REG_LAYERS_MAX];
    char *created[REG_LAYERS_MAX];
    size_t nlayers;
    reg_config_source source;
    /* REG_CONFIG_OWN: the config's bytes (layer_alloc) and digest. */
    char *config;
    size_t config_len;
    char config_digest[LAYER_DIGEST_STR_SIZE];
} reg_image;

/*
 * Resolve a repository and a tag to an image (allocated: free with
 * api_registry__image_free()). The layers are checked for read access
 * on the way.
 * @return 0; LAYER_ENOTFOUND for an unknown name (NAME_UNKNOWN answered)
 *         or tag (MANIFEST_UNKNOWN answered); another negative code with
 *         the error answered
 */
int api_registry__resolve(reg_image **out, api_call *call, const char *name,
                          const char *tag);

void api_registry__image_free(reg_image *img);

/*
 * The tags of a repository, sorted; NULL-terminated array of owned
 * strings (api_registry__strv_free()).
 * @return 0; LAYER_ENOTFOUND (NAME_UNKNOWN set) or another code (set)
 */
int api_registry__tags(char ***out, size_t *out_n, api_call *call,
                       const char *name);

/*
 * A page of the repositories the request may see: at most n names
 * sorting after last (NULL: from the start), sorted (owned strings,
 * api_registry__strv_free()); *more when others follow.
 * @return 0 or a negative code (the error is set)
 */
int api_registry__repositories(char ***out, size_t *out_n, bool *more,
                               api_call *call, const char *last, size_t n);

void api_registry__strv_free(char **v, size_t n);

/* ---- errors and access (registry.c) ---- */

/*
 * Answer with the spec's error body {"errors":[{"code", "message",
 * "detail"}]}: res is reset first; detail (stolen, may be NULL) goes in
 * as it is.
 */
void api_registry__error(api_call *call, int status, const char *code,
                         const char *message, json_t *detail);

/* Answer a liblayer error code as a registry error (NAME_UNKNOWN for
 * ENOTFOUND, UNKNOWN 500 for server errors, ...). */
void api_registry__from_error(api_call *call, int code, const char *notfound);

/*
 * May the request read this layer? Decides with the layer's id and
 * mutability.
 * @return 0, or a negative code with the refusal answered (401
 *         UNAUTHORIZED with the Basic challenge, 403 DENIED, or
 *         NAME_UNKNOWN for a layer hidden from the request)
 */
int api_registry__may_read(api_call *call, const layer_info *info);

/* May the request see this layer in _catalog (no answer is set)? */
bool api_registry__may_list(api_call *call, const char *id, bool mutable_);

/* ---- manifests and configs (registry_manifest.c) ---- */

/* What a layer blob is, as the manifest names it. */
typedef struct reg_blob_desc {
    char digest[LAYER_DIGEST_STR_SIZE];
    char diff_id[LAYER_DIGEST_STR_SIZE];
    uint64_t size;
    layer_compression compression;
} reg_blob_desc;

/* Which manifest flavour. */
typedef enum reg_flavour {
    REG_FLAVOUR_OCI = 0,
    REG_FLAVOUR_DOCKER = 1
} reg_flavour;

/* A built manifest and its config. */
typedef struct reg_manifest {
    reg_flavour flavour;
    char *config; /* layer_alloc */
    size_t config_len;
    char config_digest[LAYER_DIGEST_STR_SIZE];
    char *body; /* the manifest, layer_alloc */
    size_t body_len;
    char digest[LAYER_DIGEST_STR_SIZE];
    bool rewritten; /* the config is not the store's own */
} reg_manifest;

void api_registry__manifest_dispose(reg_manifest *m);

/* The host's architecture as Go names it ("amd64", "arm64", ...), and its
 * variant or NULL. */
const char *api_registry__arch(const char **variant);

/*
 * Build the config and the manifest of an image whose layers are served
 * as the blobs descs (one per layer, base first).
 * @return 0; LAYER_EBROKEN for an own config that is not a JSON object;
 *         LAYER_ENOMEM
 */
int api_registry__manifest_build(reg_manifest *out, const reg_image *img,
                                 const reg_blob_desc *descs,
                                 reg_flavour flavour);

/*
 * Choose the flavour from the request's Accept values: OCI when they list
 * it, a wildcard, or nothing at all; Docker schema 2 when they list it
 * and not OCI.
 * @return 0, or LAYER_ENOTFOUND when neither is acceptable
 */
int api_registry__flavour(reg_flavour *out, api_call *call);

/* GET|HEAD /v2/<name>/manifests/<reference> */
void api_registry__manifest(api_call *call, const char *name,
                            const char *reference);

/* ---- describes and blobs (registry_blobs.c) ---- */

/* The blobs of a set of images being described (api/blobs_int.h): one
 * describe per layer, answered at once for cached blobs, else once the
 * fills end (the notify protocol). */
typedef struct reg_describes reg_describes;

/*
 * Start describing the layers of imgs[0..n) (each layer_info is handed
 * over: its slot becomes NULL). The blobs are the layers' exports as the
 * registry serves them: the original tar where the store kept it, else
 * the canonical one, compressed as the context says.
 * @return 0, or a negative code with the error answered
 */
int api_registry__describe_start(reg_describes **out, api_call *call,
                                 reg_image **imgs, size_t n);

/*
 * Poll: 0 once every blob is described (descs filled, one array per
 * image, base first); LAYER_EAGAIN with wake installed on the describe
 * that is not ready (called once it is); another negative code when a
 * blob could not be made (the message says why).
 */
int api_registry__describe_poll(reg_describes *d, void (*wake)(void *arg),
                                void *arg);

/*
 * Check, as an export's start does, that the layers whose blobs are still
 * being made can be read at all (api_entries__probe()), so that a layer
 * refused at once gets an error before a streamed answer's status.
 * @return 0 or a negative code (the error is recorded, not answered)
 */
int api_registry__describe_probe(reg_describes *d, api_context *ctx,
                                 reg_image *const *imgs);

/* The blobs of image i, valid after api_registry__describe_poll() gave 0. */
const reg_blob_desc *api_registry__describe_descs(const reg_describes *d,
                                                  size_t i);

void api_registry__describe_free(reg_describes *d);

/* The images of a repository, one per tag (at most 64 tags), resolved
 * under access control; free with api_registry__images_free().
 * @return 0, or a negative code with the error answered */
int api_registry__repo_images(reg_image ***out, size_t *out_n, api_call *call,
                              const char *name);

void api_registry__images_free(reg_image **imgs, size_t n);

/* Everything under /v2 (api.c hands it every method). */
void api_registry__handle(api_call *call);

/* Should a GET of this path (still encoded, under /v2/) take a stream
 * slot (it may answer with a producer)? */
bool api_registry__streams(const char *raw_path, size_t len);

/* Answer 503 UNAVAILABLE: every stream slot is taken. */
void api_registry__busy(api_call *call);

/* GET|HEAD /v2/<name>/blobs/<digest> */
void api_registry__blob(api_call *call, const char *name, const char *digest);

#endif
