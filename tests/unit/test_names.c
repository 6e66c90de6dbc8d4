/*
 * test_names.c - what the core, the client library and pythreadctl share in
 * proto/names.c: the one table of the kinds' names and the one name rule.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "names.h"

/* "BoundedSemaphore" -> "bounded_semaphore": how a word follows its class. */
static void snake_case(const char *name, char *out, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; name[i] && n + 2 < len; i++) {
        unsigned char ch = (unsigned char)name[i];

        if (isupper(ch) && i > 0 && islower((unsigned char)name[i - 1]))
            out[n++] = '_';
        out[n++] = (char)tolower(ch);
    }
    out[n] = '\0';
}

/* Every kind: kind -> word -> kind, and its word and class name agree. */
static void test_every_kind_round_trips(void **state)
{
    char want[32];

    (void)state;
    for (int k = PT_KIND_LOCK; k <= PT_KIND_BARRIER; k++) {
        const char *word = pt_kind_word(k);

        assert_true(pt_kind_known(k));
        assert_non_null(word);
        assert_int_equal(pt_kind_parse(word), k);
        snake_case(pt_kind_name((pt_kind)k), want, sizeof(want));
        assert_string_equal(word, want);
    }
    assert_string_equal(pt_kind_name(PT_KIND_RLOCK), "RLock");
    assert_string_equal(pt_kind_word(PT_KIND_RLOCK), "rlock");
    assert_string_equal(pt_kind_word(PT_KIND_BOUNDED_SEMAPHORE), "bounded_semaphore");
}

/* Outside the kinds: nothing is known, no word parses to a kind. */
static void test_unknown_kinds_and_words(void **state)
{
    (void)state;
    assert_false(pt_kind_known(0));
    assert_false(pt_kind_known(PT_KIND_BARRIER + 1));
    assert_false(pt_kind_known(-1));
    assert_null(pt_kind_word(0));
    assert_null(pt_kind_word(PT_KIND_BARRIER + 1));
    assert_string_equal(pt_kind_name((pt_kind)0), "unknown");
    assert_string_equal(pt_kind_name((pt_kind)99), "unknown");
    assert_int_equal(pt_kind_parse(""), 0);
    assert_int_equal(pt_kind_parse("Lock"), 0);
    assert_int_equal(pt_kind_parse("locks"), 0);
    assert_int_equal(pt_kind_parse("unknown"), 0);
}

/* The one name rule, which the client checks before sending and the core
 * on receipt: both accept and refuse the same names. */
static void test_name_rule(void **state)
{
    char name[PT_NAME_MAX + 2];

    (void)state;
    memset(name, 'a', sizeof(name));
    assert_true(pt_name_valid("jobs", 4));
    assert_true(pt_name_valid("A-Z.a_z:0/9", 11));
    assert_true(pt_name_valid(name, PT_NAME_MAX));
    assert_false(pt_name_valid(name, PT_NAME_MAX + 1));
    assert_false(pt_name_valid("", 0));
    assert_false(pt_name_valid(NULL, 3));
    assert_false(pt_name_valid("a b", 3));
    assert_false(pt_name_valid("a\0b", 3));
    assert_false(pt_name_valid("caf\xc3\xa9", 5));
    for (int ch = 1; ch < 256; ch++) {
        char c = (char)ch;
        int want = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || strchr("._:/-", ch) != NULL;

        assert_int_equal(pt_name_valid(&c, 1), want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_round_trips),
        cmocka_unit_test(test_unknown_kinds_and_words),
        cmocka_unit_test(test_name_rule),
    };

    return cmocka_run_group_tests_name("unit.names", tests, NULL, NULL);
}
