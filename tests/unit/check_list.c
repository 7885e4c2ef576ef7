/* check_list.c - list.h: order of push_front and push_back, removal from
 * the middle and the ends, a second removal being harmless, and a walk
 * that removes the node it stands on.
 */
#include <check.h>
#include <stdlib.h>

#include "list.h"

struct item {
    int value;
    struct fw_list link;
};

static struct fw_list head = FW_LIST_INIT(head);
static struct item items[5];

static void setup(void)
{
    int i;

    fw_list_init(&head);
    for (i = 0; i < 5; i++) {
        items[i].value = i;
        fw_list_init(&items[i].link);
    }
}

/* The values on head, front to back, as digits; also checks the back
 * links agree. */
static void expect(const char *want)
{
    char got[16];
    size_t n = 0;
    struct fw_list *pos, *tmp;

    fw_list_each(pos, tmp, &head) {
        ck_assert_ptr_eq(pos->next->prev, pos);
        got[n++] = (char)('0' + fw_list_entry(pos, struct item, link)->value);
    }
    got[n] = '\0';
    ck_assert_str_eq(got, want);
    ck_assert_ptr_eq(head.prev->next, &head);
    ck_assert(fw_list_empty(&head) == (n == 0));
}

START_TEST(static_and_initialised_lists_are_empty)
{
    static struct fw_list s = FW_LIST_INIT(s);

    ck_assert(fw_list_empty(&s));
    ck_assert(fw_list_empty(&head));
    ck_assert(!fw_list_linked(&items[0].link));
    expect("");
}
END_TEST

START_TEST(push_back_appends_and_push_front_prepends)
{
    fw_list_push_back(&head, &items[1].link);
    fw_list_push_back(&head, &items[2].link);
    fw_list_push_front(&head, &items[0].link);
    expect("012");
    ck_assert(fw_list_linked(&items[1].link));
}
END_TEST

START_TEST(remove_takes_out_the_middle_and_the_ends)
{
    int i;

    for (i = 0; i < 5; i++)
        fw_list_push_back(&head, &items[i].link);
    fw_list_remove(&items[2].link);
    expect("0134");
    fw_list_remove(&items[0].link);
    expect("134");
    fw_list_remove(&items[4].link);
    expect("13");
    ck_assert(!fw_list_linked(&items[4].link));
}
END_TEST

START_TEST(a_second_remove_is_harmless)
{
    fw_list_push_back(&head, &items[0].link);
    fw_list_push_back(&head, &items[1].link);
    fw_list_remove(&items[0].link);
    fw_list_remove(&items[0].link);
    expect("1");
    fw_list_remove(&items[1].link);
    expect("");
}
END_TEST

START_TEST(a_walk_may_remove_the_node_it_stands_on)
{
    struct fw_list *pos, *tmp;
    int i;

    for (i = 0; i < 5; i++)
        fw_list_push_back(&head, &items[i].link);
    fw_list_each(pos, tmp, &head)
        if (fw_list_entry(pos, struct item, link)->value % 2 == 0)
            fw_list_remove(pos);
    expect("13");
}
END_TEST

#define ADD(t) tcase_add_test(tc, t)

int main(void)
{
    Suite *s = suite_create("list");
    TCase *tc = tcase_create("list");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, NULL);
    suite_add_tcase(s, tc);
    ADD(static_and_initialised_lists_are_empty);
    ADD(push_back_appends_and_push_front_prepends);
    ADD(remove_takes_out_the_middle_and_the_ends);
    ADD(a_second_remove_is_harmless);
    ADD(a_walk_may_remove_the_node_it_stands_on);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
