/* firstok.c - time from exec of the watchdog to its first 200 on
 * /_/health, in microseconds.
 *
 * usage: firstok PORT COMMAND [ARGS...]   (env passes through)
 * Forks COMMAND, polls 127.0.0.1:PORT as fast as it can, prints the
 * microseconds from fork to the first "HTTP/1.1 200", then SIGTERMs the
 * child and reaps it. Gives up after 5 s.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int probe(int port)
{
    static const char req[] = "GET /_/health HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n";
    struct sockaddr_in a = { .sin_family = AF_INET };
    char buf[64];
    ssize_t n;
    int fd, ok = 0;

    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1) {
        n = read(fd, buf, sizeof(buf) - 1);
        if (n > 12) {
            buf[n] = '\0';
            ok = strncmp(buf, "HTTP/1.1 200", 12) == 0;
        }
    }
    close(fd);
    return ok;
}

int main(int argc, char **argv)
{
    double t0, t;
    int port, status;
    pid_t pid;

    if (argc < 3) {
        fprintf(stderr, "usage: firstok PORT COMMAND [ARGS...]\n");
        return 2;
    }
    port = atoi(argv[1]);
    t0 = now_us();
    pid = fork();
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    for (;;) {
        if (probe(port)) {
            t = now_us() - t0;
            break;
        }
        if (now_us() - t0 > 5e6 || waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "firstok: no 200 from port %d\n", port);
            kill(pid, SIGKILL);
            return 1;
        }
    }
    printf("%.0f\n", t);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    return 0;
}
