#ifndef LAYER_JSON_INT_H
#define LAYER_JSON_INT_H

/*
 * A small strict JSON (RFC 8259) reader for liblayer's own metadata files
 * (layer.json, containers-storage's layers.json). lib/ may not link a JSON
 * library (DESIGN.md section 1), and it only ever reads JSON, so this is a
 * parser into an immutable tree, nothing more. Private to lib/.
 *
 * Strictness: UTF-8 input only (no BOM), no comments, no trailing commas,
 * no leading zeros, no lone surrogates, no control characters in strings,
 * one value per document followed only by whitespace. Caps: documents of
 * at most LAYER_JSON_MAX_SIZE bytes, nesting of at most
 * LAYER_JSON_MAX_DEPTH arrays/objects, numbers of at most
 * LAYER_JSON_MAX_NUMBER characters. Duplicate object keys are accepted and
 * the last one wins, as in Go's encoding/json, which writes the files this
 * reads.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Largest document accepted, in bytes. */
#define LAYER_JSON_MAX_SIZE (16u * 1024u * 1024u)
/** Deepest nesting of arrays and objects accepted. */
#define LAYER_JSON_MAX_DEPTH 64
/** Longest number token accepted, in characters. */
#define LAYER_JSON_MAX_NUMBER 512

/** The type of a JSON value. */
typedef enum layer_json_type {
    LAYER_JSON_NULL = 0,
    LAYER_JSON_BOOL,
    LAYER_JSON_NUMBER,
    LAYER_JSON_STRING,
    LAYER_JSON_ARRAY,
    LAYER_JSON_OBJECT
} layer_json_type;

/** A parsed value. Opaque; read it with the accessors below. */
typedef struct layer_json layer_json;

/**
 * Parse a JSON document.
 *
 * @param[out] out the root value; free with layer_json__free()
 * @param data the document, len bytes (need not be NUL-terminated)
 * @param len its length
 * @param name what the document is, for error messages (e.g. a file name);
 *        may be NULL
 * @return 0, LAYER_EBROKEN for malformed input or a cap exceeded (the
 *         message names the document and the byte offset), LAYER_ENOMEM
 */
int layer_json__parse(layer_json **out, const char *data, size_t len,
                      const char *name);

/** Free a tree from layer_json__parse(). NULL is accepted. */
void layer_json__free(layer_json *v);

/** The type of a value; LAYER_JSON_NULL for a NULL pointer. */
layer_json_type layer_json__type(const layer_json *v);

/** A static name for a type ("null", "boolean", "number", ...). */
const char *layer_json__type_name(layer_json_type type);

/**
 * An object member by key (the last one if the key is repeated).
 *
 * @return the member's value, borrowed from the tree, or NULL if obj is not
 *         an object or has no such key
 */
const layer_json *layer_json__get(const layer_json *obj, const char *key);

/**
 * Number of items of an array or members of an object; 0 for other types.
 */
size_t layer_json__size(const layer_json *v);

/**
 * The i-th item of an array, or the value of the i-th member of an object,
 * in document order.
 *
 * @return borrowed value, or NULL if i is out of range or v is neither
 */
const layer_json *layer_json__at(const layer_json *v, size_t i);

/**
 * The key of the i-th member of an object, in document order.
 *
 * @param[out] out_len the key's length in bytes (keys may contain NUL from
 *             \u0000); may be NULL
 * @return the NUL-terminated key, borrowed, or NULL if out of range or obj
 *         is not an object
 */
const char *layer_json__key_at(const layer_json *obj, size_t i,
                               size_t *out_len);

/**
 * A string's bytes (UTF-8, NUL-terminated; may contain NUL from \u0000).
 *
 * @param[out] out_len the length in bytes; may be NULL
 * @return borrowed bytes, or NULL if v is not a string
 */
const char *layer_json__string(const layer_json *v, size_t *out_len);

/**
 * A boolean's value.
 * @param[out] out the value
 * @return 0, or LAYER_EINVALID if v is not a boolean (no message recorded)
 */
int layer_json__bool(bool *out, const layer_json *v);

/**
 * A number as a double (the nearest one; overflow gives +-HUGE_VAL).
 * @param[out] out the value
 * @return 0, or LAYER_EINVALID if v is not a number (no message recorded)
 */
int layer_json__number(double *out, const layer_json *v);

/**
 * A number as an exact 64-bit integer.
 * @param[out] out the value
 * @return 0, or LAYER_EINVALID if v is not a number written as an integer
 *         (no fraction, no exponent) within int64_t's range (no message
 *         recorded)
 */
int layer_json__int(int64_t *out, const layer_json *v);

#endif
