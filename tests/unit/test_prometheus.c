/*
 * test_prometheus.c -- the status in Prometheus text format 0.0.4, parsed
 * back by a small exposition-format reader below.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pushq.h"

#define MAX_SAMPLES 32

typedef struct {
    char     name[64];
    char     label[32];         /* label name, "" if none */
    char     value[160];        /* label value, unescaped */
    uint64_t v;
    char     type[16];          /* from the # TYPE line */
    int      has_help;
} sample_t;

typedef struct {
    char     text[8192];
    sample_t s[MAX_SAMPLES];
    size_t   n;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    *state = f;
    return f == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static int name_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
           || c == ':' || (!first && c >= '0' && c <= '9');
}

/* Parses the exposition text: every sample line must follow a # HELP and
 * a # TYPE line of its metric; returns 0 on any format error. */
static int parse(fixture_t *f, size_t len)
{
    char  help_for[64] = "", type_for[64] = "", type[16] = "";
    char *p = f->text, *end = f->text + len;

    f->n = 0;
    if (len == 0 || end[-1] != '\n') return 0;
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t) (end - p));
        *eol = '\0';
        if (strncmp(p, "# HELP ", 7) == 0) {
            char *sp = strchr(p + 7, ' ');
            if (sp == NULL || sp[1] == '\0') return 0;
            memcpy(help_for, p + 7, (size_t) (sp - p - 7));
            help_for[sp - p - 7] = '\0';
        } else if (strncmp(p, "# TYPE ", 7) == 0) {
            char *sp = strchr(p + 7, ' ');
            if (sp == NULL) return 0;
            memcpy(type_for, p + 7, (size_t) (sp - p - 7));
            type_for[sp - p - 7] = '\0';
            strcpy(type, sp + 1);
            if (strcmp(type, "gauge") != 0 && strcmp(type, "counter") != 0)
                return 0;
            if (strcmp(type_for, help_for) != 0) return 0;
        } else {
            sample_t *s = &f->s[f->n++];
            size_t    i = 0;
            memset(s, 0, sizeof(*s));
            while (name_char(p[i], i == 0)) {
                s->name[i] = p[i];
                i++;
            }
            if (i == 0) return 0;
            if (p[i] == '{') {
                size_t k = 0, o = 0;
                i++;
                while (name_char(p[i], k == 0)) s->label[k++] = p[i++];
                if (p[i++] != '=' || p[i++] != '"') return 0;
                while (p[i] != '"') {
                    if (p[i] == '\0') return 0;
                    if (p[i] == '\\') {
                        i++;
                        if (p[i] == 'n') s->value[o++] = '\n';
                        else if (p[i] == '\\' || p[i] == '"')
                            s->value[o++] = p[i];
                        else return 0;
                        i++;
                    } else {
                        s->value[o++] = p[i++];
                    }
                }
                i++;
                if (p[i++] != '}') return 0;
            }
            if (p[i++] != ' ') return 0;
            char *num_end;
            s->v = strtoull(p + i, &num_end, 10);
            if (num_end == p + i || *num_end != '\0') return 0;
            if (strcmp(s->name, type_for) != 0) return 0;
            strcpy(s->type, type);
            s->has_help = strcmp(s->name, help_for) == 0;
            /* counters end in _total (Prometheus naming practice) */
            if (strcmp(type, "counter") == 0) {
                size_t nl = strlen(s->name);
                if (nl < 6 || strcmp(s->name + nl - 6, "_total") != 0)
                    return 0;
            }
        }
        p = eol + 1;
    }
    return 1;
}

static const sample_t *find(const fixture_t *f, const char *name,
                            const char *label_value)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->s[i].name, name) == 0
            && (label_value == NULL
                || strcmp(f->s[i].value, label_value) == 0))
        {
            return &f->s[i];
        }
    }
    return NULL;
}

static void want(const fixture_t *f, const char *name, const char *lv,
                 uint64_t v, const char *type)
{
    const sample_t *s = find(f, name, lv);
    if (s == NULL) fail_msg("no sample %s", name);
    assert_true(s->v == v);
    assert_string_equal(s->type, type);
    assert_true(s->has_help);
}

/* Ensure the store status parses back with every field of SPEC.md
 * "Status", gauges and _total counters, each with # HELP and # TYPE. */
static void test_prometheus_stats_parse_back(void **state)
{
    fixture_t    *f = *state;
    pushq_stats_t st = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                        18446744073709551615u};
    size_t        n = pushq_prometheus_stats(f->text, sizeof(f->text), &st);

    assert_true(n < sizeof(f->text));
    assert_true(parse(f, n));
    assert_int_equal(f->n, 12);
    want(f, "pushq_channels", NULL, 1, "gauge");
    want(f, "pushq_messages", NULL, 2, "gauge");
    want(f, "pushq_message_bytes", NULL, 3, "gauge");
    want(f, "pushq_memory_used_bytes", NULL, 4, "gauge");
    want(f, "pushq_memory_total_bytes", NULL, 5, "gauge");
    want(f, "pushq_subscribers", "longpoll", 6, "gauge");
    want(f, "pushq_subscribers", "websocket", 7, "gauge");
    want(f, "pushq_clients", NULL, 8, "gauge");
    want(f, "pushq_published_total", NULL, 9, "counter");
    want(f, "pushq_delivered_total", NULL, 10, "counter");
    want(f, "pushq_lost_total", NULL, 11, "counter");
    want(f, "pushq_dropped_slow_total", NULL, UINT64_MAX, "counter");
}

/* Ensure the channel status parses back with channel="..." on every
 * sample, and that backslash, quote and newline in a label value are
 * escaped (exposition format "label_value"). */
static void test_prometheus_channel_stats_parse_back(void **state)
{
    fixture_t            *f = *state;
    pushq_channel_stats_t cs = {5, 9, 5, 2, 1};
    static const char     odd[] = "a\\b\"c\nd";
    size_t n = pushq_prometheus_channel_stats(f->text, sizeof(f->text),
                                              "room:1", 6, &cs);

    assert_true(parse(f, n));
    assert_int_equal(f->n, 5);
    want(f, "pushq_channel_first_id", "room:1", 5, "gauge");
    want(f, "pushq_channel_last_id", "room:1", 9, "gauge");
    want(f, "pushq_channel_messages", "room:1", 5, "gauge");
    want(f, "pushq_channel_subscribers", "room:1", 2, "gauge");
    want(f, "pushq_channel_clients", "room:1", 1, "gauge");
    for (size_t i = 0; i < f->n; i++) {
        assert_string_equal(f->s[i].label, "channel");
    }

    n = pushq_prometheus_channel_stats(f->text, sizeof(f->text), odd,
                                       sizeof(odd) - 1, &cs);
    assert_true(parse(f, n));
    want(f, "pushq_channel_last_id", odd, 9, "gauge");
}

/* Ensure a buffer too small gets the size needed (writer contract). */
static void test_prometheus_small_buffer_returns_needed(void **state)
{
    fixture_t    *f = *state;
    pushq_stats_t st;
    memset(&st, 0, sizeof(st));
    size_t need = pushq_prometheus_stats(NULL, 0, &st);
    memset(f->text, '#', sizeof(f->text));
    assert_int_equal(pushq_prometheus_stats(f->text, 10, &st), need);
    assert_int_equal(f->text[10], '#');
    assert_int_equal(pushq_prometheus_stats(f->text, need, &st), need);
    assert_true(parse(f, need));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_prometheus_stats_parse_back),
        T(test_prometheus_channel_stats_parse_back),
        T(test_prometheus_small_buffer_returns_needed),
#undef T
    };
    return cmocka_run_group_tests_name("prometheus", tests, NULL, NULL);
}
