#ifndef HANDLER_H
#define HANDLER_H

#include <stddef.h>
#include <stdio.h>

/* Answers one request: req holds the body (len bytes, plus a '\0'); the
 * response body goes to out. Returns the process exit status. */
int handle(const char *req, size_t len, FILE *out);

#endif
