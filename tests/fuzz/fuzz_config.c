/* fuzz_config.c - libFuzzer target for the configuration: the input is
 * an environment, NAME=VALUE lines, read by fw_config_load through a
 * lookup over them; each value also goes through fw_argv_split and
 * fw_duration_parse / fw_duration_format.
 *
 * Checks: a load either fails with one line naming a variable or gives
 * a config within its documented ranges; argv words hold no more bytes
 * than the line; a parsed duration formats and parses back to itself.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz_common.h"

#define MAX_VARS 64

struct env {
    char *names[MAX_VARS];
    char *values[MAX_VARS];
    size_t n;
};

static const char *lookup(const char *name, void *ctx)
{
    const struct env *e = ctx;
    size_t i;

    /* The last definition wins, as in a shell's environment. */
    for (i = e->n; i-- > 0;)
        if (strcmp(e->names[i], name) == 0)
            return e->values[i];
    return NULL;
}

static void on_warn(const char *line)
{
    FZ_CHECK(line && *line && !strchr(line, '\n'), "warning not one line");
}

/* Splits the input at '\n' into NAME=VALUE pairs (copies, NUL-ended). */
static void parse_env(struct env *e, char *text, size_t len)
{
    char *p = text, *end = text + len;

    e->n = 0;
    while (p < end && e->n < MAX_VARS) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eq;

        if (nl == NULL)
            nl = end;
        *nl = '\0';
        eq = strchr(p, '=');
        if (eq) {
            *eq = '\0';
            e->names[e->n] = p;
            e->values[e->n] = eq + 1;
            e->n++;
        }
        p = nl + 1;
    }
}

static void check_config(const struct fw_config *c)
{
    size_t i;

    FZ_CHECK(c->port >= 1 && c->port <= 65535, "port %d", c->port);
    FZ_CHECK(c->metrics_port >= 0 && c->metrics_port <= 65535, "metrics");
    FZ_CHECK(c->read_timeout_ms > 0, "read_timeout %lld",
             (long long)c->read_timeout_ms);
    FZ_CHECK(c->write_timeout_ms > 0 || c->mode == FW_MODE_CLASSIC,
             "write_timeout 0 outside classic");
    FZ_CHECK(c->exec_timeout_ms >= 0 && c->write_timeout_ms >= 0 &&
             c->healthcheck_interval_ms >= 0 &&
             c->exec_timeout_grace_ms >= 0, "negative duration");
    FZ_CHECK(c->max_inflight >= 0 && c->http_workers >= 0, "negative count");
    FZ_CHECK(strcmp(fw_mode_name(c->mode), "unknown") != 0, "mode");
    if (c->mode != FW_MODE_STATIC) {
        FZ_CHECK(c->fprocess && c->argv && c->argv[0], "no command");
        for (i = 0; c->argv[i]; i++)
            FZ_CHECK(strlen(c->argv[i]) <= strlen(c->fprocess), "argv");
    }
    if (c->mode == FW_MODE_HTTP) {
        size_t n;

        FZ_CHECK(c->upstream_url, "http mode without upstream_url");
        n = strlen(c->upstream_url);
        FZ_CHECK(strncmp(c->upstream_url, "http://", 7) == 0, "scheme");
        FZ_CHECK(n > 7 && c->upstream_url[n - 1] != '/', "trailing /");
    }
    FZ_CHECK(c->tmpdir != NULL, "no TMPDIR");
}

static void check_split(const char *line)
{
    const char *why = NULL;
    char **argv = fw_argv_split(line, &why);
    size_t i, bytes = 0;

    if (argv == NULL) {
        FZ_CHECK(why && *why, "failure without a reason");
        return;
    }
    FZ_CHECK(why == NULL, "reason with a result");
    FZ_CHECK(argv[0] != NULL, "no words and no error");
    for (i = 0; argv[i]; i++)
        bytes += strlen(argv[i]) + 1;
    FZ_CHECK(bytes <= strlen(line) + 1, "words outgrow the line");
    free(argv);
}

static void check_duration(const char *s)
{
    char text[64];
    int64_t ms, again;

    if (fw_duration_parse(s, &ms) < 0)
        return;
    fw_duration_format(ms, text, sizeof(text));
    FZ_CHECK(fw_duration_parse(text, &again) == 0, "\"%s\" -> %lld -> "
             "\"%s\" does not parse", s, (long long)ms, text);
    FZ_CHECK(again == ms, "\"%s\" -> %lld -> \"%s\" -> %lld", s,
             (long long)ms, text, (long long)again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    struct fw_config cfg;
    struct env env;
    char err[256];
    size_t i;
    int rc;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    parse_env(&env, text, size);
    rc = fw_config_load(&cfg, lookup, &env, on_warn, err, sizeof(err));
    if (rc < 0) {
        FZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "rc %d", rc);
        FZ_CHECK(*err && !strchr(err, '\n'), "error \"%s\"", err);
    } else {
        check_config(&cfg);
        fw_config_release(&cfg);
    }
    for (i = 0; i < env.n; i++) {
        check_split(env.values[i]);
        check_duration(env.values[i]);
    }
    free(text);
    return 0;
}
