/* bigdl.c - answers every request with SIZE bytes of zeros, for the
 * proxy download benchmark. One connection at a time; each response
 * closes its connection.
 *
 * usage: bigdl PORT SIZE
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char chunk[1 << 20];

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void serve(int c, long long size)
{
    char head[256], buf[8192];
    size_t got = 0;
    int n;

    while (got < sizeof(buf) - 1) {
        ssize_t r = read(c, buf + got, sizeof(buf) - 1 - got);

        if (r <= 0)
            return;
        got += (size_t)r;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: "
                 "application/octet-stream\r\nContent-Length: %lld\r\n"
                 "Connection: close\r\n\r\n", size);
    if (write_all(c, head, (size_t)n) < 0)
        return;
    while (size > 0) {
        size_t k = size > (long long)sizeof(chunk) ? sizeof(chunk)
                                                   : (size_t)size;

        if (write_all(c, chunk, k) < 0)
            return;
        size -= (long long)k;
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    int one = 1, s;

    if (argc != 3) {
        fprintf(stderr, "usage: bigdl PORT SIZE\n");
        return 2;
    }
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 64) < 0) {
        perror("bigdl");
        return 1;
    }
    for (;;) {
        int c = accept(s, NULL, NULL);

        if (c < 0)
            continue;
        serve(c, atoll(argv[2]));
        close(c);
    }
}
