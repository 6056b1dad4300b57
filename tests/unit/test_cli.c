/*
 * Tests for server/cli.c: the one command-line parser of every subcommand
 * (values as "--opt value", "--opt=value", "-o value" and "-ovalue";
 * repeatable and boolean options; operands anywhere and after "--"; -h
 * and --help; usage errors that name the option and exit 2), the shared
 * options of the subcommands that read one layer, and the mapping of
 * error codes to exit statuses.
 */
#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "layer/error.h"

/* What the test tables store into. */
typedef struct args {
    const char *output;
    const char *output_dir;
    const char *level;
    srv_strv parents;
    bool json;
} args;

static const srv_opt test_opts[] = {
    {"output", 'o', SRV_OPT_STRING, offsetof(args, output)},
    {"output-dir", 0, SRV_OPT_STRING, offsetof(args, output_dir)},
    {"level", 0, SRV_OPT_STRING, offsetof(args, level)},
    {"parent", 0, SRV_OPT_LIST, offsetof(args, parents)},
    {"json", 0, SRV_OPT_FLAG, offsetof(args, json)},
};

static int usage_calls;
static FILE *usage_stream;

static void test_usage(FILE *f)
{
    usage_calls++;
    usage_stream = f;
    fputs("usage: test\n", f);
}

/* What went to standard error between capture_begin() and
 * capture_end(). */
static char err_text[4096];
static FILE *capture_file;
static int saved_stderr = -1;

static void capture_begin(void)
{
    capture_file = tmpfile();
    ck_assert_ptr_nonnull(capture_file);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(saved_stderr, 0);
    fflush(stderr);
    ck_assert_int_ge(dup2(fileno(capture_file), STDERR_FILENO), 0);
}

static void capture_end(void)
{
    size_t n;

    fflush(stderr);
    ck_assert_int_ge(dup2(saved_stderr, STDERR_FILENO), 0);
    close(saved_stderr);
    rewind(capture_file);
    n = fread(err_text, 1, sizeof(err_text) - 1, capture_file);
    err_text[n] = '\0';
    fclose(capture_file);
}

/* Copy the NULL-terminated words (the command name first) into argv;
 * returns argc. */
static int make_argv(char **argv, size_t cap, const char *const *words)
{
    int argc = 0;

    while (words[argc] != NULL) {
        ck_assert_uint_lt((size_t)argc + 1, cap);
        argv[argc] = (char *)words[argc];
        argc++;
    }
    argv[argc] = NULL;
    return argc;
}

/* srv_cmdline_parse() over words, its standard error in err_text. */
static int parse_words(srv_cmdline *cl, const char *const *words)
{
    char *argv[32];
    int argc = make_argv(argv, 32, words);
    int status;

    capture_begin();
    status = srv_cmdline_parse(cl, argc, argv);
    capture_end();
    return status;
}

/* A command line over test_opts into a, with room for two operands. */
typedef struct fixture {
    args a;
    srv_optgroup g;
    const char *ops[2];
    srv_cmdline cl;
} fixture;

static void fixture_init(fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->g = (srv_optgroup){test_opts, sizeof(test_opts) / sizeof(test_opts[0]),
                          &f->a, NULL};
    f->cl = (srv_cmdline){.cmd = "test",
                          .usage = test_usage,
                          .groups = &f->g,
                          .ngroups = 1,
                          .operands = f->ops,
                          .max_operands = 2};
}

#define PARSE(cl, ...)                                                         \
    parse_words(cl, (const char *const[]){"test", __VA_ARGS__, NULL})

START_TEST(test_values_take_every_spelling)
{
    fixture f;

    fixture_init(&f);

    ck_assert_int_eq(PARSE(&f.cl, "--output", "x.tar", "--level=3"),
                     SRV_CONTINUE);
    ck_assert_str_eq(f.a.output, "x.tar");
    ck_assert_str_eq(f.a.level, "3");
    ck_assert_int_eq(PARSE(&f.cl, "-o", "-"), SRV_CONTINUE);
    ck_assert_str_eq(f.a.output, "-");
    ck_assert_int_eq(PARSE(&f.cl, "-oy.tar"), SRV_CONTINUE);
    ck_assert_str_eq(f.a.output, "y.tar");
    /* A value may start with a dash: it is the option's value. */
    ck_assert_int_eq(PARSE(&f.cl, "--level", "-5"), SRV_CONTINUE);
    ck_assert_str_eq(f.a.level, "-5");
    /* Given twice, the last one wins. */
    ck_assert_int_eq(PARSE(&f.cl, "--output=a", "--output", "b"), SRV_CONTINUE);
    ck_assert_str_eq(f.a.output, "b");
    ck_assert_str_eq(err_text, "");
    ck_assert_int_eq(f.cl.noperands, 0);
    srv_strv_dispose(&f.a.parents);
}
END_TEST

START_TEST(test_a_unique_prefix_names_the_option)
{
    fixture f;

    fixture_init(&f);

    ck_assert_int_eq(PARSE(&f.cl, "--lev", "9", "--js"), SRV_CONTINUE);
    ck_assert_str_eq(f.a.level, "9");
    ck_assert(f.a.json);
    /* An exact name wins over a longer one it is a prefix of. */
    ck_assert_int_eq(PARSE(&f.cl, "--output", "o"), SRV_CONTINUE);
    ck_assert_str_eq(f.a.output, "o");
}
END_TEST

START_TEST(test_lists_keep_every_value_in_order)
{
    fixture f;

    fixture_init(&f);

    ck_assert_int_eq(PARSE(&f.cl, "--parent", "p1", "--json", "--parent=p2",
                           "--parent", "p3"),
                     SRV_CONTINUE);
    ck_assert_uint_eq(f.a.parents.n, 3);
    ck_assert_str_eq(f.a.parents.v[0], "p1");
    ck_assert_str_eq(f.a.parents.v[1], "p2");
    ck_assert_str_eq(f.a.parents.v[2], "p3");
    ck_assert(f.a.json);
    srv_strv_dispose(&f.a.parents);
    ck_assert_ptr_null(f.a.parents.v);
    ck_assert_uint_eq(f.a.parents.n, 0);
}
END_TEST

START_TEST(test_operands_stand_anywhere_and_after_the_end_marker)
{
    fixture f;

    fixture_init(&f);

    ck_assert_int_eq(PARSE(&f.cl, "first", "--json", "second"), SRV_CONTINUE);
    ck_assert_uint_eq(f.cl.noperands, 2);
    ck_assert_str_eq(f.ops[0], "first");
    ck_assert_str_eq(f.ops[1], "second");
    ck_assert(f.a.json);

    /* After "--", words that look like options are operands. */
    f.a.json = false;
    ck_assert_int_eq(PARSE(&f.cl, "-o", "x", "--", "--json", "-"),
                     SRV_CONTINUE);
    ck_assert_uint_eq(f.cl.noperands, 2);
    ck_assert_str_eq(f.ops[0], "--json");
    ck_assert_str_eq(f.ops[1], "-");
    ck_assert(!f.a.json);
    ck_assert_str_eq(f.a.output, "x");
}
END_TEST

START_TEST(test_posixly_correct_does_not_stop_at_an_operand)
{
    fixture f;

    fixture_init(&f);

    setenv("POSIXLY_CORRECT", "1", 1);
    ck_assert_int_eq(PARSE(&f.cl, "id", "--json"), SRV_CONTINUE);
    unsetenv("POSIXLY_CORRECT");
    ck_assert(f.a.json);
    ck_assert_uint_eq(f.cl.noperands, 1);
    ck_assert_str_eq(f.ops[0], "id");
}
END_TEST

/* Parse words expecting a usage error whose message contains want. */
static void assert_usage_error(const char *want, const char *const *words)
{
    fixture f;

    fixture_init(&f);

    ck_assert_int_eq(parse_words(&f.cl, words), SRV_EXIT_USAGE);
    ck_assert_msg(strstr(err_text, want) != NULL, "'%s' not in: %s", want,
                  err_text);
    ck_assert_msg(strncmp(err_text, "layerd test: ", 13) == 0,
                  "the message does not name the command: %s", err_text);
    ck_assert_msg(strstr(err_text, "layerd test --help") != NULL,
                  "no pointer to --help: %s", err_text);
    srv_strv_dispose(&f.a.parents);
}

#define USAGE_ERROR(want, ...)                                                 \
    assert_usage_error(want, (const char *const[]){"test", __VA_ARGS__, NULL})

START_TEST(test_usage_errors_name_the_option)
{
    USAGE_ERROR("unknown option '--bogus'", "--bogus", "1");
    USAGE_ERROR("unknown option '--bogus=1'", "--json", "--bogus=1");
    USAGE_ERROR("unknown option '-x'", "-x");
    USAGE_ERROR("option '--level' needs a value", "--level");
    USAGE_ERROR("option '-o' needs a value", "-o");
    USAGE_ERROR("option '--output' needs a value", "--output");
    USAGE_ERROR("option '--json' takes no value", "--json=yes");
    USAGE_ERROR("option '--out' is ambiguous", "--out", "x");
    USAGE_ERROR("unexpected argument 'three'", "one", "two", "three");
    USAGE_ERROR("unexpected argument 'three'", "one", "--", "two", "three");
}
END_TEST

START_TEST(test_help_prints_the_usage_to_stdout_and_stops)
{
    fixture f;

    fixture_init(&f);

    usage_calls = 0;
    ck_assert_int_eq(PARSE(&f.cl, "--help", "--bogus"), SRV_EXIT_OK);
    ck_assert_int_eq(usage_calls, 1);
    ck_assert_ptr_eq(usage_stream, stdout);
    ck_assert_int_eq(PARSE(&f.cl, "--json", "-h"), SRV_EXIT_OK);
    ck_assert_int_eq(usage_calls, 2);
    /* What comes before --help is parsed first. */
    ck_assert_int_eq(PARSE(&f.cl, "--bogus", "--help"), SRV_EXIT_USAGE);
    ck_assert_int_eq(usage_calls, 2);
}
END_TEST

/* A take function that records what it got. */
typedef struct taken {
    size_t n;
    size_t index[8];
    const char *value[8];
    int stop_at; /* return SRV_EXIT_FAILURE for this call number (1-based) */
} taken;

static int take_record(void *dest, size_t index, const char *value)
{
    taken *t = dest;

    ck_assert_uint_lt(t->n, 8);
    t->index[t->n] = index;
    t->value[t->n] = value;
    t->n++;
    return (int)t->n == t->stop_at ? SRV_EXIT_FAILURE : SRV_CONTINUE;
}

START_TEST(test_take_functions_get_each_option_in_order)
{
    static const srv_opt opts[] = {
        {"insecure-http", 0, SRV_OPT_BOOL, 0},
        {"store", 0, SRV_OPT_STRING, 0},
        {"help-config", 0, SRV_OPT_FLAG, 0},
    };
    taken t = {0};
    srv_optgroup g = {opts, 3, &t, take_record};
    srv_cmdline cl = {
        .cmd = "test", .usage = test_usage, .groups = &g, .ngroups = 1};

    ck_assert_int_eq(PARSE(&cl, "--store", "s", "--insecure-http",
                           "--insecure-http=no", "--help-config"),
                     SRV_CONTINUE);
    ck_assert_uint_eq(t.n, 4);
    ck_assert_uint_eq(t.index[0], 1);
    ck_assert_str_eq(t.value[0], "s");
    ck_assert_uint_eq(t.index[1], 0);
    ck_assert_ptr_null(t.value[1]);
    ck_assert_uint_eq(t.index[2], 0);
    ck_assert_str_eq(t.value[2], "no");
    ck_assert_uint_eq(t.index[3], 2);
    ck_assert_ptr_null(t.value[3]);

    /* A boolean's value comes only with '=': the next word is an
     * operand, and there is no room for one. */
    memset(&t, 0, sizeof(t));
    ck_assert_int_eq(PARSE(&cl, "--insecure-http", "no"), SRV_EXIT_USAGE);
    ck_assert_ptr_nonnull(strstr(err_text, "unexpected argument 'no'"));

    /* A take function's exit status stops the parse. */
    memset(&t, 0, sizeof(t));
    t.stop_at = 1;
    ck_assert_int_eq(PARSE(&cl, "--store", "s", "--bogus"), SRV_EXIT_FAILURE);
    ck_assert_uint_eq(t.n, 1);
}
END_TEST

START_TEST(test_groups_number_their_options_apart)
{
    static const srv_opt first[] = {{"alpha", 0, SRV_OPT_STRING, 0}};
    static const srv_opt second[] = {{"beta", 'b', SRV_OPT_STRING, 0},
                                     {"gamma", 0, SRV_OPT_FLAG, 0}};
    taken t1 = {0}, t2 = {0};
    srv_optgroup g[] = {{first, 1, &t1, take_record},
                        {second, 2, &t2, take_record}};
    srv_cmdline cl = {
        .cmd = "test", .usage = test_usage, .groups = g, .ngroups = 2};

    ck_assert_int_eq(PARSE(&cl, "-b", "B", "--alpha=A", "--gamma"),
                     SRV_CONTINUE);
    ck_assert_uint_eq(t1.n, 1);
    ck_assert_uint_eq(t1.index[0], 0);
    ck_assert_str_eq(t1.value[0], "A");
    ck_assert_uint_eq(t2.n, 2);
    ck_assert_uint_eq(t2.index[0], 0);
    ck_assert_str_eq(t2.value[0], "B");
    ck_assert_uint_eq(t2.index[1], 1);
}
END_TEST

/* The layer options, as `layerd entries` parses them. */
static int parse_layer(srv_layer_args *a, const char *const *words)
{
    char *argv[32];
    int argc = make_argv(argv, 32, words);
    int status;

    capture_begin();
    status = srv_layer_args_parse(a, "entries", argc, argv, NULL, test_usage);
    capture_end();
    return status;
}

#define PARSE_LAYER(a, ...)                                                    \
    parse_layer(a, (const char *const[]){"entries", __VA_ARGS__, NULL})

START_TEST(test_layer_args_take_a_store_and_an_id)
{
    srv_layer_args a = {0};

    ck_assert_int_eq(PARSE_LAYER(&a, "--store", "dir:s", "patch", "--trace=-",
                                 "--log-format", "text"),
                     SRV_CONTINUE);
    ck_assert_str_eq(a.store, "dir:s");
    ck_assert_str_eq(a.id, "patch");
    ck_assert_str_eq(a.trace, "-");
    ck_assert_str_eq(a.log_format, "text");
    srv_layer_args_dispose(&a);
}
END_TEST

START_TEST(test_layer_args_take_a_directory_and_its_parents)
{
    srv_layer_args a = {0};
    layer_info *info = NULL;

    ck_assert_int_eq(PARSE_LAYER(&a, "--layer", "top", "--parent", "mid",
                                 "--kind", "snapshot", "--parent=base"),
                     SRV_CONTINUE);
    ck_assert_str_eq(a.layer, "top");
    ck_assert_ptr_null(a.id);
    ck_assert_uint_eq(a.parents.n, 2);
    ck_assert_int_eq(srv_layer_args_resolve(&info, &a, NULL), 0);
    ck_assert_str_eq(info->layer.path, "top");
    ck_assert_int_eq(info->layer.kind, LAYER_KIND_SNAPSHOT);
    ck_assert_uint_eq(info->nparents, 2);
    ck_assert_str_eq(info->parents[0].path, "mid");
    ck_assert_str_eq(info->parents[1].path, "base");
    ck_assert_int_eq(info->parents[1].kind, LAYER_KIND_SNAPSHOT);
    layer_info_free(info);
    srv_layer_args_dispose(&a);
}
END_TEST

START_TEST(test_layer_args_refuse_what_does_not_name_one_layer)
{
    srv_layer_args a = {0};
    layer_info *info = NULL;

    /* An ID with --layer, either side of it. */
    ck_assert_int_eq(PARSE_LAYER(&a, "--layer", "d", "id"), SRV_EXIT_USAGE);
    ck_assert_ptr_nonnull(strstr(err_text, "unexpected argument 'id'"));
    srv_layer_args_dispose(&a);
    memset(&a, 0, sizeof(a));
    ck_assert_int_eq(PARSE_LAYER(&a, "id", "--layer", "d"), SRV_EXIT_USAGE);
    srv_layer_args_dispose(&a);
    memset(&a, 0, sizeof(a));
    ck_assert_int_eq(PARSE_LAYER(&a, "--store", "s", "one", "two"),
                     SRV_EXIT_USAGE);
    srv_layer_args_dispose(&a);

    /* What parses but does not resolve to one layer. */
    capture_begin();
    a = (srv_layer_args){0};
    ck_assert_int_eq(srv_layer_args_resolve(&info, &a, NULL), SRV_EXIT_USAGE);
    a = (srv_layer_args){.store = "dir:s", .layer = "d"};
    ck_assert_int_eq(srv_layer_args_resolve(&info, &a, NULL), SRV_EXIT_USAGE);
    a = (srv_layer_args){.store = "dir:s"};
    ck_assert_int_eq(srv_layer_args_resolve(&info, &a, NULL), SRV_EXIT_USAGE);
    a = (srv_layer_args){.store = "dir:s", .id = "x", .kind = "diff"};
    ck_assert_int_eq(srv_layer_args_resolve(&info, &a, NULL), SRV_EXIT_USAGE);
    a = (srv_layer_args){.layer = "d", .kind = "weird"};
    ck_assert_int_eq(srv_layer_args_resolve(&info, &a, NULL), SRV_EXIT_USAGE);
    capture_end();
    ck_assert_ptr_null(info);
    ck_assert_ptr_nonnull(strstr(err_text, "give either --store STORE ID"));
    ck_assert_ptr_nonnull(strstr(err_text, "--store needs a layer ID"));
    ck_assert_ptr_nonnull(strstr(err_text, "--kind and --parent go with"));
    ck_assert_ptr_nonnull(strstr(err_text, "weird"));
}
END_TEST

START_TEST(test_error_codes_map_to_exit_statuses)
{
    ck_assert_int_eq(srv_exit_status(0), SRV_EXIT_OK);
    ck_assert_int_eq(srv_exit_status(LAYER_ENOTFOUND), SRV_EXIT_NOTFOUND);
    ck_assert_int_eq(srv_exit_status(LAYER_EINVALID), SRV_EXIT_INVALID);
    ck_assert_int_eq(srv_exit_status(LAYER_EUNSUPPORTED), SRV_EXIT_INVALID);
    ck_assert_int_eq(srv_exit_status(LAYER_ETOOBIG), SRV_EXIT_INVALID);
    ck_assert_int_eq(srv_exit_status(LAYER_ERROR), SRV_EXIT_FAILURE);
    ck_assert_int_eq(srv_exit_status(LAYER_ENOMEM), SRV_EXIT_FAILURE);
    /* A setting that cannot be used is the command line's fault. */
    ck_assert_int_eq(srv_setting_status(LAYER_EINVALID), SRV_EXIT_USAGE);
    ck_assert_int_eq(srv_setting_status(LAYER_ETOOBIG), SRV_EXIT_USAGE);
    ck_assert_int_eq(srv_setting_status(LAYER_ENOTFOUND), SRV_EXIT_NOTFOUND);
    ck_assert_int_eq(srv_setting_status(LAYER_ERROR), SRV_EXIT_FAILURE);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cmdline");

    tcase_add_test(tc, test_values_take_every_spelling);
    tcase_add_test(tc, test_a_unique_prefix_names_the_option);
    tcase_add_test(tc, test_lists_keep_every_value_in_order);
    tcase_add_test(tc, test_operands_stand_anywhere_and_after_the_end_marker);
    tcase_add_test(tc, test_posixly_correct_does_not_stop_at_an_operand);
    tcase_add_test(tc, test_usage_errors_name_the_option);
    tcase_add_test(tc, test_help_prints_the_usage_to_stdout_and_stops);
    tcase_add_test(tc, test_take_functions_get_each_option_in_order);
    tcase_add_test(tc, test_groups_number_their_options_apart);
    suite_add_tcase(s, tc);
    tc = tcase_create("layer_args");
    tcase_add_test(tc, test_layer_args_take_a_store_and_an_id);
    tcase_add_test(tc, test_layer_args_take_a_directory_and_its_parents);
    tcase_add_test(tc, test_layer_args_refuse_what_does_not_name_one_layer);
    tcase_add_test(tc, test_error_codes_map_to_exit_statuses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cli_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
