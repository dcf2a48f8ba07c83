/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Minimal assertion macros for the unit tests: each failed check prints both
 * sides with file and line and counts a failure; STP_TEST_MAIN_END() returns
 * the exit status (1 if any check failed). Table-driven tests loop over rows
 * and name the row in the message.
 */
#ifndef STP_TEST_H
#define STP_TEST_H

#include <stdio.h>
#include <string.h>

static int stp_test_failures;
static int stp_test_checks;

#define STP_FAIL_AT(...)                                      \
    do {                                                      \
        fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                         \
        fputc('\n', stderr);                                  \
        stp_test_failures++;                                  \
    } while (0)

#define ASSERT_TRUE(c)                            \
    do {                                          \
        stp_test_checks++;                        \
        if (!(c))                                 \
            STP_FAIL_AT("expected true: %s", #c); \
    } while (0)

#define ASSERT_EQ(a, b)                                                    \
    do {                                                                   \
        long long stp_a_ = (long long)(a), stp_b_ = (long long)(b);        \
        stp_test_checks++;                                                 \
        if (stp_a_ != stp_b_)                                              \
            STP_FAIL_AT("%s == %s: %lld != %lld", #a, #b, stp_a_, stp_b_); \
    } while (0)

#define ASSERT_STREQ(a, b)                                                   \
    do {                                                                     \
        const char *stp_a_ = (a), *stp_b_ = (b);                             \
        stp_test_checks++;                                                   \
        if (stp_a_ == NULL || stp_b_ == NULL || strcmp(stp_a_, stp_b_) != 0) \
            STP_FAIL_AT("%s == %s: \"%s\" != \"%s\"", #a, #b,                \
                        stp_a_ ? stp_a_ : "(null)",                          \
                        stp_b_ ? stp_b_ : "(null)");                         \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                          \
    do {                                                      \
        const char *stp_h_ = (hay), *stp_n_ = (needle);       \
        stp_test_checks++;                                    \
        if (stp_h_ == NULL || strstr(stp_h_, stp_n_) == NULL) \
            STP_FAIL_AT("\"%s\" does not contain \"%s\"",     \
                        stp_h_ ? stp_h_ : "(null)", stp_n_);  \
    } while (0)

#define ASSERT_OK(c)       ASSERT_EQ((c), 1)
#define ASSERT_NOT_NULL(p) ASSERT_TRUE((p) != NULL)
#define ASSERT_NULL(p)     ASSERT_TRUE((p) == NULL)

#define STP_TEST_MAIN_END()                                                   \
    do {                                                                      \
        printf("%d checks, %d failed\n", stp_test_checks, stp_test_failures); \
        return stp_test_failures == 0 ? 0 : 1;                                \
    } while (0)

#endif
