/* test-template.c - what volunteers see after {{placeholders}} are filled, and what admins
 * are told when a template is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

static const tvar_t vars[] = {
        { "name", "Ann Smith" },
        { "session_title", "MECC: Healthy Conversations" },
        { "email", "ann@example.org" },
        { "join_url", NULL },
};
#define N_VARS (sizeof(vars) / sizeof(vars[0]))

static void expect_render(const char *text, bool html, const char *want) {
        char *out = NULL, *err = NULL;
        int r = template_render(text, vars, N_VARS, html, &out, &err);

        if (r < 0)
                fail_msg("rendering \"%s\" failed: %d %s", text, r, err ? err : "");
        assert_null(err);
        assert_string_equal(out, want);
        free(out);
}

static void expect_render_error(const char *text, const char *want_err) {
        char *out = (char *) 0x1, *err = NULL;
        int r = template_render(text, vars, N_VARS, false, &out, &err);

        assert_int_equal(r, -EINVAL);
        assert_ptr_equal(out, (char *) 0x1);
        assert_non_null(err);
        assert_string_equal(err, want_err);
        free(err);
}

static void test_known_placeholders(void **state) {
        static const char *const names[] = {
                "name", "email", "session_title", "session_date", "session_time", "join_url",
                "elearning_url", "signpost_url", "feedback_url", "organisation", "cancel_url",
                "next_sessions", "token", "attendees", "booked_count", "capacity", "seats_left",
                "time_to_go", "reminder_note", "changes", "trainer_email",
        };
        (void) state;

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (!template_known(names[i]))
                        fail_msg("%s should be known", names[i]);
        assert_false(template_known("nmae"));
        assert_false(template_known("Name"));
        assert_false(template_known("name "));
        assert_false(template_known(""));
        assert_false(template_known("organization"));
        assert_false(template_known(NULL));
}

static void test_substitution(void **state) {
        (void) state;
        expect_render("Dear {{name}},", false, "Dear Ann Smith,");
        expect_render("Dear {{ name }},", false, "Dear Ann Smith,");
        expect_render("Dear {{\tname  }},", false, "Dear Ann Smith,");
        expect_render("{{name}}{{email}}", false, "Ann Smithann@example.org");
        expect_render("{{name}} / {{name}}", false, "Ann Smith / Ann Smith");
        expect_render("Line one\n{{session_title}}\n", false, "Line one\nMECC: Healthy Conversations\n");
        expect_render("no placeholders at all", false, "no placeholders at all");
        expect_render("", false, "");
        expect_render("{single} braces }} stay", false, "{single} braces }} stay");
}

static void test_missing_values_render_empty(void **state) {
        (void) state;
        /* known, but not given */
        expect_render("[{{feedback_url}}]", false, "[]");
        /* given as NULL */
        expect_render("[{{join_url}}]", false, "[]");
}

static void test_values_are_not_expanded_again(void **state) {
        tvar_t v[] = { { "name", "{{token}} {{nmae}}" } };
        char *out = NULL;
        (void) state;

        assert_int_equal(template_render("Hi {{name}}", v, 1, false, &out, NULL), 0);
        assert_string_equal(out, "Hi {{token}} {{nmae}}");
        free(out);
}

static void test_html_escapes_values_only(void **state) {
        tvar_t v[] = { { "name", "<b>Tom & \"Jerry\" O'Neil</b>" } };
        char *out = NULL;
        (void) state;

        assert_int_equal(template_render("<p class=\"x\">Hi {{name}} &amp;</p>", v, 1, true, &out, NULL), 0);
        assert_string_equal(out, "<p class=\"x\">Hi &lt;b&gt;Tom &amp; &quot;Jerry&quot; O&#39;Neil&lt;/b&gt; &amp;</p>");
        free(out);

        /* the same value in a text template is left alone */
        assert_int_equal(template_render("Hi {{name}}", v, 1, false, &out, NULL), 0);
        assert_string_equal(out, "Hi <b>Tom & \"Jerry\" O'Neil</b>");
        free(out);
}

static void test_unknown_placeholder_names_line(void **state) {
        (void) state;
        expect_render_error("Subject: hi\n\nDear {{nmae}},\n", "unknown placeholder {{nmae}} on line 3");
        expect_render_error("Dear {{ nmae }},", "unknown placeholder {{nmae}} on line 1");
        expect_render_error("a\r\nb\r\n\r\n{{Name}}", "unknown placeholder {{Name}} on line 4");
        expect_render_error("{{}}", "unknown placeholder {{}} on line 1");
        expect_render_error("{{name}} {{session_titel}}", "unknown placeholder {{session_titel}} on line 1");
        expect_render_error("{{{name}}}", "unknown placeholder {{{name}} on line 1");
}

static void test_unknown_long_name_is_shortened(void **state) {
        char text[300], *out = NULL, *err = NULL;
        (void) state;

        memset(text, 'x', sizeof(text));
        memcpy(text, "{{", 2);
        memcpy(text + sizeof(text) - 3, "}}", 3);
        assert_int_equal(template_render(text, vars, N_VARS, false, &out, &err), -EINVAL);
        assert_non_null(err);
        assert_true(strlen(err) < 100);
        assert_non_null(strstr(err, "...}} on line 1"));
        free(err);
}

static void test_unclosed_placeholder(void **state) {
        (void) state;
        expect_render_error("Dear {{name,\n", "unclosed {{ on line 1");
        expect_render_error("one\ntwo {{name\n}} three", "unclosed {{ on line 2");
        expect_render_error("{{name}}\n\n{{", "unclosed {{ on line 3");
        expect_render_error("{{name}", "unclosed {{ on line 1");
}

static void test_error_without_err_pointer(void **state) {
        char *out = NULL;
        (void) state;

        assert_int_equal(template_render("{{nmae}}", vars, N_VARS, false, &out, NULL), -EINVAL);
        assert_null(out);
}

static void expect_split(const char *text, const char *want_subject, const char *want_body) {
        char *subject = NULL, *body = NULL, *err = NULL;
        int r = template_split_subject(text, &subject, &body, &err);

        if (r < 0)
                fail_msg("split failed: %d %s", r, err ? err : "");
        assert_string_equal(subject, want_subject);
        assert_string_equal(body, want_body);
        free(subject);
        free(body);
}

static void expect_split_error(const char *text, const char *want_err) {
        char *subject = (char *) 0x1, *body = (char *) 0x2, *err = NULL;

        assert_int_equal(template_split_subject(text, &subject, &body, &err), -EINVAL);
        assert_ptr_equal(subject, (char *) 0x1);
        assert_ptr_equal(body, (char *) 0x2);
        assert_non_null(err);
        assert_string_equal(err, want_err);
        free(err);
}

static void test_split_subject(void **state) {
        (void) state;
        expect_split("Subject: Your place on {{session_title}}\n\nDear {{name}},\n\nSee you.\n",
                     "Your place on {{session_title}}", "Dear {{name}},\n\nSee you.\n");
        /* no blank line after the subject */
        expect_split("Subject: Hi\nDear Ann,\n", "Hi", "Dear Ann,\n");
        /* only one blank line is eaten */
        expect_split("Subject: Hi\n\n\nDear Ann,\n", "Hi", "\nDear Ann,\n");
        /* nothing after the subject */
        expect_split("Subject: Hi", "Hi", "");
        expect_split("Subject: Hi\n", "Hi", "");
        /* blanks around the subject text go */
        expect_split("Subject:Hi there  \t\n\nx", "Hi there", "x");
        expect_split("subject: lower case is fine\n\nx", "lower case is fine", "x");
        /* UTF-8 subject */
        expect_split("Subject: Caf\xc3\xa9 chat\n\nx", "Caf\xc3\xa9 chat", "x");
}

static void test_split_subject_crlf_and_bom(void **state) {
        (void) state;
        /* as saved by Windows Notepad: BOM and CRLF */
        expect_split("\xef\xbb\xbfSubject: Booked\r\n\r\nDear {{name}},\r\nThanks.\r\n",
                     "Booked", "Dear {{name}},\nThanks.\n");
        expect_split("\xef\xbb\xbfSubject: Booked\n\nBody", "Booked", "Body");
        expect_split("Subject: Booked\r\nBody\r\n", "Booked", "Body\n");
        /* converted twice; a CR elsewhere stays */
        expect_split("Subject: Booked\r\r\n\r\r\nBody\r\r\nx\ry\r", "Booked", "Body\nx\ry\r");
}

static void test_split_subject_errors(void **state) {
        (void) state;
        expect_split_error("Dear {{name}},\n", "line 1 must be \"Subject: ...\"");
        expect_split_error("", "line 1 must be \"Subject: ...\"");
        expect_split_error("\nSubject: Hi\n", "line 1 must be \"Subject: ...\"");
        expect_split_error(" Subject: Hi\n", "line 1 must be \"Subject: ...\"");
        expect_split_error("Subject Hi\n", "line 1 must be \"Subject: ...\"");
        expect_split_error("Subject:\n\nBody", "empty Subject on line 1");
        expect_split_error("Subject:   \r\n\r\nBody", "empty Subject on line 1");
        expect_split_error("Subject: a\rBcc: x@example.org\n", "control character in Subject on line 1");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_known_placeholders),
                cmocka_unit_test(test_substitution),
                cmocka_unit_test(test_missing_values_render_empty),
                cmocka_unit_test(test_values_are_not_expanded_again),
                cmocka_unit_test(test_html_escapes_values_only),
                cmocka_unit_test(test_unknown_placeholder_names_line),
                cmocka_unit_test(test_unknown_long_name_is_shortened),
                cmocka_unit_test(test_unclosed_placeholder),
                cmocka_unit_test(test_error_without_err_pointer),
                cmocka_unit_test(test_split_subject),
                cmocka_unit_test(test_split_subject_crlf_and_bom),
                cmocka_unit_test(test_split_subject_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
