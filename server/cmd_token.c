/*
 * `layerd token new`: a fresh bearer token for the access policy.
 *
 * The token is 32 bytes from OpenSSL's CSPRNG in base64url without
 * padding (43 characters of [A-Za-z0-9_-], valid in a Bearer header and
 * as a Basic password). What the policy keeps is its SHA-256 digest in
 * hex (tokens_sha256): the digest of the token's characters exactly as a
 * client sends them, which `printf %s "$TOKEN" | sha256sum` gives too.
 * The token is printed once, to standard output, and wiped from memory.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cli.h"
#include "layer/text.h"

/* Random bytes of a token: 256 bits. */
#define TOKEN_BYTES 32

static void usage(FILE *f)
{
    fputs("usage: layerd token new\n"
          "\n"
          "Print a new random bearer token (32 bytes, base64url) and the\n"
          "SHA-256 digest of it that goes into the tokens_sha256 list of a\n"
          "principal of the --auth policy:\n"
          "\n"
          "  token: <the token: give it to the client, keep it secret>\n"
          "  tokens_sha256: <64 hex digits: put them in the policy>\n"
          "\n"
          "exit status: 0 ok, 1 failure, 2 usage\n",
          f);
}

/* base64url without padding of n bytes into out (room for 4n/3 + 4). */
static size_t base64url(char *out, const unsigned char *data, size_t n)
{
    size_t len = layer_text_base64(out, data, n);

    while (len > 0 && out[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    out[len] = '\0';
    return len;
}

static int token_new(void)
{
    unsigned char raw[TOKEN_BYTES];
    char token[LAYER_TEXT_BASE64_LEN(TOKEN_BYTES) + 1];
    unsigned char digest[EVP_MAX_MD_SIZE];
    char hex[2 * 32 + 1];
    unsigned int dlen = 0;
    size_t len;
    int status = SRV_EXIT_OK;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        srv_errorf("token", "the random number generator failed");
        status = SRV_EXIT_FAILURE;
        goto out;
    }
    len = base64url(token, raw, sizeof(raw));
    if (EVP_Digest(token, len, digest, &dlen, EVP_sha256(), NULL) != 1 ||
        dlen != 32) {
        srv_errorf("token", "cannot compute SHA-256");
        status = SRV_EXIT_FAILURE;
        goto out;
    }
    layer_text_hex_encode(hex, digest, 32);
    printf("token: %s\ntokens_sha256: %s\n", token, hex);
    if (fflush(stdout) != 0) {
        srv_errorf("token", "cannot write to standard output");
        status = SRV_EXIT_FAILURE;
    }
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(token, sizeof(token));
    return status;
}

int srv_cmd_token(int argc, char **argv)
{
    const char *op[2] = {NULL, NULL};
    srv_cmdline cl = {.cmd = "token",
                      .usage = usage,
                      .groups = NULL,
                      .ngroups = 0,
                      .operands = op,
                      .max_operands = 2};
    int status;

    if ((status = srv_cmdline_parse(&cl, argc, argv)) != SRV_CONTINUE)
        return status;
    if (cl.noperands != 1 || strcmp(op[0], "new") != 0) {
        srv_errorf("token", "%s",
                   cl.noperands == 0 ? "missing the action: 'new'"
                                     : "unknown action or extra operands "
                                       "(the only action is 'new')");
        usage(stderr);
        return SRV_EXIT_USAGE;
    }
    return token_new();
}
