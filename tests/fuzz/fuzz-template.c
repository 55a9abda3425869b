/* fuzz-template.c - template_render (text and HTML) and template_split_subject on arbitrary
 * templates. The first byte picks the mode; the rest is the template. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

static const tvar_t vars[] = {
        { "name", "Ann <b>\"O'Neil\"</b> & co" },
        { "email", "ann@example.org" },
        { "session_title", "{{name}} {{" },
        { "join_url", NULL },
        { "next_sessions", "line one\nline two\r\n" },
        { "organisation", "" },
};
#define N_VARS (sizeof(vars) / sizeof(vars[0]))

static void render(const char *text, bool html) {
        char *out = NULL, *err = NULL;
        int r = template_render(text, vars, N_VARS, html, &out, &err);

        if (r == 0) {
                if (!out || err)
                        abort();
                /* text without placeholders comes back unchanged */
                if (!strstr(text, "{{") && strcmp(out, text) != 0)
                        abort();
                /* markup characters in HTML output come from the template, never a value */
                for (const char *c = "<>\"'"; html && *c; c++)
                        if (!strchr(text, *c) && strchr(out, *c))
                                abort();
        } else if (r == -EINVAL) {
                if (!err || (strncmp(err, "unknown placeholder {{", 22) != 0 &&
                             strncmp(err, "unclosed {{ on line ", 20) != 0))
                        abort();
        } else
                abort();
        free(out);
        free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text, *subject = NULL, *body = NULL, *err = NULL;
        bool html;

        if (size == 0)
                return 0;
        html = data[0] & 1;
        text = malloc(size);
        if (!text)
                abort();
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';

        render(text, html);
        if (template_split_subject(text, &subject, &body, &err) == 0) {
                if (err || subject[0] == '\0' || strpbrk(subject, "\r\n") || strstr(body, "\r\n"))
                        abort();
                render(subject, false);
                render(body, html);
                free(subject);
                free(body);
        } else if (!err)
                abort();
        free(err);
        free(text);
        return 0;
}
