/* Unit tests for arena.c: the caller's first block, alignment, growth, release and reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "arena.h"

static void test_inline_block_first_then_heap(void **state)
{
	(void)state;
	_Alignas(max_align_t) unsigned char buf[256];
	struct arena a;
	arena_init_with(&a, buf, sizeof(buf));
	char *p = arena_alloc(&a, 100);
	assert_ptr_equal(p, buf);
	assert_null(a.head);		/* nothing allocated yet */
	char *q = arena_alloc(&a, 200); /* does not fit what is left inline */
	assert_non_null(a.head);
	assert_true((unsigned char *)q < buf || (unsigned char *)q >= buf + sizeof(buf));
	memset(q, 0x5a, 200);
	arena_release(&a);
	assert_null(a.head);
	/* After release the inline block is reused from its start. */
	assert_ptr_equal(arena_alloc(&a, 8), buf);
	arena_release(&a);
}

static void test_alignment_and_growth(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	for (size_t n = 1; n < 5000; n += 37) {
		void *p = arena_alloc(&a, n);
		assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
		memset(p, 1, n);
	}
	char *big = arena_alloc(&a, 1 << 20); /* larger than any block so far */
	memset(big, 2, 1 << 20);
	arena_release(&a);
}

static void test_strings(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	assert_string_equal(arena_strndup(&a, "resortd!", 7), "resortd");
	assert_string_equal(arena_printf(&a, "/v1/resorts/%s?%d", "rs_1", 42),
			    "/v1/resorts/rs_1?42");
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(strlen(arena_printf(&a, "%s%s", big, big)), 2 * (sizeof(big) - 1));
	arena_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inline_block_first_then_heap),
		cmocka_unit_test(test_alignment_and_growth),
		cmocka_unit_test(test_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
