/* text.h - text that comes from outside (the website, the command line, a config file):
 * one rule for what a single line and a link are, and reading a whole file, bounded. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Non-empty, and no control byte (CR, LF, TAB, NUL, DEL ...). */
bool text_is_line(const char *s);
/* An absolute http:// or https:// URL with no space or control byte. */
bool text_is_url(const char *s);
/* A copy in which each control byte (a CR LF pair counts once) is a space: a title or a
 * name is shown on one line wherever it goes. NULL reads as "". Caller frees; NULL on OOM. */
char *text_one_line(const char *s);

/* A copy of server text (a relay's reply, a bounce's diagnostic) with every email address
 * in it, bare, in angle brackets or with a quoted local part, replaced by "[address]": the
 * journal names nobody. NULL reads as "". Caller frees; NULL on OOM. */
char *text_redact_addresses(const char *s);

/* The UTF-8 sequence at the start of s[0..n): its length, with its code point in *ret_cp
 * (if not NULL); 0 when there is no well-formed one (RFC 3629: no overlong form, no
 * surrogate, nothing above U+10FFFF), *ret_cp then untouched. */
size_t text_utf8_decode(const char *s, size_t n, uint32_t *ret_cp);
/* s[0..n) is well-formed UTF-8 throughout (NUL bytes included, as U+0000). */
bool text_utf8_valid(const char *s, size_t n);

/* Read a regular file whole, NUL-terminated, refusing one over max bytes (-EFBIG), one that
 * is not a regular file (-EINVAL: a directory, a FIFO, a device) or holds a NUL byte when
 * ret_size is NULL (-EBADMSG: text was expected). Caller frees *ret. */
int text_read_file(const char *path, size_t max, char **ret, size_t *ret_size);
