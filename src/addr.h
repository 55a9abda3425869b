/* addr.h - email address checks. Pure: no I/O, no logging. */
#pragma once
#include <stdbool.h>

/* A single bare mailbox "local@domain" (dot-atom or quoted local part, a domain of
 * dot-separated labels or a bracketed literal), ASCII printable only, at most 254
 * octets, no spaces, no control characters, no display name, no second address. */
bool addr_valid(const char *s);

/* Split "Display Name <local@domain>" or a bare "local@domain". On success the caller
 * owns *ret_display (NULL when there is none) and *ret_addr. -EINVAL when the address
 * part is not addr_valid() or the text holds control characters. */
int addr_parse_mailbox(const char *s, char **ret_display, char **ret_addr);
