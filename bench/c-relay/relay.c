// The same raw TCP relay as bench/tcp-relay.mjs, in C on one epoll loop: what relaying bytes
// costs without Node's stream layer (one read and one write per chunk, nothing else), so the
// data-plane bench can tell Node's floor from the kernel's. Built by bench/c-relay.ts with cc.
// Usage: relay <target port>; prints `ready <port>`; exits when stdin closes.
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

#define BUF 65536

struct end {
  int fd;
  struct end *peer;
  char *pending; // bytes read from peer not yet written to fd
  size_t off, len;
};

static int ep;

static void watch(struct end *e, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = e};
  epoll_ctl(ep, op, e->fd, &ev);
}

static void close_pair(struct end *e) {
  struct end *p = e->peer;
  close(e->fd);
  close(p->fd);
  free(e->pending);
  free(p->pending);
  free(e);
  free(p);
}

static struct end *new_end(int fd) {
  struct end *e = calloc(1, sizeof *e);
  int one = 1;
  e->fd = fd;
  e->pending = malloc(BUF);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return e;
}

// Reads e and writes to its peer; a short write parks the rest and stops reading e.
static int relay(struct end *e, char *buf) {
  struct end *p = e->peer;
  for (;;) {
    ssize_t n = read(e->fd, buf, BUF);
    if (n == 0) return -1;
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    ssize_t w = write(p->fd, buf, n);
    if (w < 0 && errno != EAGAIN) return -1;
    if (w < 0) w = 0;
    if (w < n) {
      memcpy(p->pending, buf + w, n - w);
      p->off = 0;
      p->len = n - w;
      watch(e, EPOLL_CTL_MOD, 0);
      watch(p, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
      return 0;
    }
    if (n < BUF) return 0;
  }
}

static int flush(struct end *e) {
  while (e->len > 0) {
    ssize_t w = write(e->fd, e->pending + e->off, e->len);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    e->off += w;
    e->len -= w;
  }
  watch(e, EPOLL_CTL_MOD, EPOLLIN);
  watch(e->peer, EPOLL_CTL_MOD, EPOLLIN);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int target = atoi(argv[1]);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) return 1;
  getsockname(ls, (struct sockaddr *)&a, &al);
  printf("ready %d\n", ntohs(a.sin_port));
  fflush(stdout);
  fcntl(ls, F_SETFL, O_NONBLOCK);
  ep = epoll_create1(0);
  struct end listener = {.fd = ls}, in = {.fd = 0};
  watch(&listener, EPOLL_CTL_ADD, EPOLLIN);
  watch(&in, EPOLL_CTL_ADD, EPOLLIN);
  static char buf[BUF];
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      struct end *e = evs[i].data.ptr;
      if (e == NULL) continue; // its pair closed earlier in this batch
      if (e == &in) return 0; // stdin readable: closed (or a line), stop
      if (e == &listener) {
        int c;
        while ((c = accept(ls, NULL, NULL)) >= 0) {
          int u = socket(AF_INET, SOCK_STREAM, 0);
          struct sockaddr_in t = {.sin_family = AF_INET,
                                  .sin_port = htons(target),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
          if (connect(u, (struct sockaddr *)&t, sizeof t)) { // blocking connect: loopback
            close(c);
            close(u);
            continue;
          }
          struct end *x = new_end(c), *y = new_end(u);
          x->peer = y;
          y->peer = x;
          watch(x, EPOLL_CTL_ADD, EPOLLIN);
          watch(y, EPOLL_CTL_ADD, EPOLLIN);
        }
        continue;
      }
      int r = 0;
      if (evs[i].events & EPOLLOUT) r = flush(e);
      if (r == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) r = relay(e, buf);
      if (r < 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, e->fd, NULL);
        epoll_ctl(ep, EPOLL_CTL_DEL, e->peer->fd, NULL);
        // later events of this batch for the pair: skip them
        for (int j = i + 1; j < n; j++)
          if (evs[j].data.ptr == e || evs[j].data.ptr == e->peer) evs[j].data.ptr = NULL;
        close_pair(e);
      }
    }
  }
}
