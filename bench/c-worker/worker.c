// The data-plane bench's HTTP worker: one epoll loop that answers every request head it reads
// with the same small 200 (keep-alive, Content-Length), so that it costs a fraction of what any
// proxy in front of it does (a read and a write per request, no parsing beyond finding the
// head's end) and the proxy, not the worker, sets the ceiling. Requests without a body only
// (the bench's GETs). Built by bench/bench-tools.ts with cc.
// Port: $PORT (0 or unset: one the OS picks). Prints `ready <port>` once listening.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 16384

struct conn {
  int fd;
  size_t have; // bytes of an unfinished head kept from the last read
  char buf[BUF];
};

int main(void) {
  char body[64], resp[256], out[BUF];
  int bl = snprintf(body, sizeof body, "{\"pid\":%d,\"worker\":\"c\"}", getpid());
  int rl = snprintf(resp, sizeof resp,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n%s",
                    bl, body);
  const char *port = getenv("PORT");
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons(port ? atoi(port) : 0),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) {
    perror("c-worker");
    return 1;
  }
  getsockname(ls, (struct sockaddr *)&a, &al);
  printf("ready %d\n", ntohs(a.sin_port));
  fflush(stdout);
  fcntl(ls, F_SETFL, O_NONBLOCK);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, evs[256];
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c == NULL) {
        int fd;
        while ((fd = accept(ls, NULL, NULL)) >= 0) {
          fcntl(fd, F_SETFL, O_NONBLOCK);
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          c = calloc(1, sizeof *c);
          c->fd = fd;
          ev.data.ptr = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      ssize_t r = read(c->fd, c->buf + c->have, BUF - c->have);
      if (r < 0 && errno == EAGAIN) continue;
      if (r <= 0) {
        close(c->fd);
        free(c);
        continue;
      }
      size_t end = c->have + r, from = 0, w = 0;
      // One answer per complete head; all of this read's answers in one write.
      for (size_t k = 3; k < end; k++) {
        if (c->buf[k] == '\n' && c->buf[k - 1] == '\r' && c->buf[k - 2] == '\n' &&
            c->buf[k - 3] == '\r') {
          if (w + rl <= sizeof out) {
            memcpy(out + w, resp, rl);
            w += rl;
          }
          from = k + 1;
        }
      }
      memmove(c->buf, c->buf + from, end - from);
      c->have = end - from;
      if (c->have == BUF) c->have = 0; // a head longer than the buffer: dropped
      if (w > 0 && write(c->fd, out, w) < 0 && errno != EAGAIN) {
        close(c->fd);
        free(c);
      }
    }
  }
}
