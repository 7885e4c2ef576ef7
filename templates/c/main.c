/* The template's entry point: one process per request. Reads the whole
 * request body from stdin, calls handle() from function/handler.c, and
 * exits with its status (non-zero: a 500). */
#include <stdio.h>
#include <stdlib.h>

#include "handler.h"

int main(void)
{
    char *req = NULL;
    size_t len = 0, cap = 0, n;
    int status;

    do {
        if (cap - len < 4096) {
            char *p = realloc(req, cap ? cap * 2 : 65536);

            if (p == NULL) {
                perror("reading the request");
                return 1;
            }
            req = p;
            cap = cap ? cap * 2 : 65536;
        }
        n = fread(req + len, 1, cap - len - 1, stdin);
        len += n;
    } while (n > 0);
    if (ferror(stdin)) {
        perror("reading the request");
        return 1;
    }
    req[len] = '\0';
    status = handle(req, len, stdout);
    free(req);
    if (fflush(stdout) != 0)
        return 1;
    return status;
}
