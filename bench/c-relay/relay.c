// The same raw TCP relay as bench/tcp-relay.mjs, in C on one epoll loop: what relaying bytes
// costs without Node's stream layer (one read and one write per chunk, nothing else), so the
// data-plane bench can tell Node's floor from the kernel's. Built by bench/bench-tools.ts with cc.
// Usage: relay <target port>; prints `ready <port>`; exits when stdin closes.
//
// Backpressure as herd's native tunnel relay (native/tunnel-relay/tunnel-relay.c) does it: each
// end's epoll interest follows its state (read while its peer has nothing pending, write while
// it has bytes pending itself), so a short write stops reading the other side until EPOLLOUT,
// and a direction backing up never drops the other's interest. An end read to its EOF closes
// the pair once the peer's pending bytes are written. Single-threaded.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536

struct pair;
struct end {
  int fd;
  struct pair *pair;
  char *pending;  // bytes for fd not written yet (a short write), allocated on first need
  size_t off, len;
};
struct pair {
  int draining;  // one side ended: the other's pending bytes are written, then it closes
  struct end e[2];
};

static int ep;
static char rbuf[BUF];
// The epoll batch being handled: a pair closed mid-batch clears its later events.
static struct epoll_event evs[256];
static int ev_next, ev_count;

static void watch(struct end *e, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = e};
  epoll_ctl(ep, op, e->fd, &ev);
}

static struct end *peer(struct end *e) { return &e->pair->e[e == &e->pair->e[0] ? 1 : 0]; }

// What an end waits for, from the state: readable while its peer has nothing pending (else
// backpressure), writable while it has bytes pending itself.
static void rearm(struct end *e) {
  if (e->pair->draining && e->len == 0) return;  // the ended side: out of the set already
  watch(e, EPOLL_CTL_MOD, (peer(e)->len == 0 && !e->pair->draining ? EPOLLIN : 0) |
                              (e->len > 0 ? EPOLLOUT : 0));
}

static void close_pair(struct pair *p) {
  for (int j = ev_next; j < ev_count; j++)
    if (evs[j].data.ptr == &p->e[0] || evs[j].data.ptr == &p->e[1]) evs[j].data.ptr = NULL;
  for (int i = 0; i < 2; i++) {
    epoll_ctl(ep, EPOLL_CTL_DEL, p->e[i].fd, NULL);
    close(p->e[i].fd);
    free(p->e[i].pending);
  }
  free(p);
}

// Reads e and writes to its peer; a short write parks the rest and stops reading e.
static int relay(struct end *e) {
  struct end *p = peer(e);
  for (;;) {
    ssize_t n = read(e->fd, rbuf, BUF);
    if (n == 0) {
      if (p->len == 0) return -1;
      e->pair->draining = 1;
      epoll_ctl(ep, EPOLL_CTL_DEL, e->fd, NULL);  // its EOF would be reported on and on
      rearm(p);
      return 0;
    }
    if (n < 0) return errno == EAGAIN ? 0 : errno == EINTR ? relay(e) : -1;
    ssize_t w = write(p->fd, rbuf, n);
    if (w < 0 && errno != EAGAIN) return -1;
    if (w < 0) w = 0;
    if (w < n) {
      if (p->pending == NULL && (p->pending = malloc(BUF)) == NULL) return -1;
      memcpy(p->pending, rbuf + w, n - w);
      p->off = 0;
      p->len = n - w;
      rearm(e);
      rearm(p);
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
  if (e->pair->draining) return -1;
  rearm(e);
  rearm(peer(e));
  return 0;
}

static void nonblocking(int fd) {
  int one = 1;
  fcntl(fd, F_SETFL, O_NONBLOCK);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  signal(SIGPIPE, SIG_IGN);
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
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno != EINTR) return 1;
    ev_count = n;
    for (int i = 0; i < n; i++) {
      ev_next = i + 1;
      struct end *e = evs[i].data.ptr;
      if (e == NULL) continue;  // its pair closed earlier in this batch
      if (e == &in) return 0;   // stdin readable: closed (or a line), stop
      if (e == &listener) {
        int c;
        while ((c = accept(ls, NULL, NULL)) >= 0) {
          int u = socket(AF_INET, SOCK_STREAM, 0);
          struct sockaddr_in t = {.sin_family = AF_INET,
                                  .sin_port = htons(target),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
          struct pair *p = calloc(1, sizeof *p);
          if (p == NULL || connect(u, (struct sockaddr *)&t, sizeof t)) {  // blocking: loopback
            free(p);
            close(c);
            close(u);
            continue;
          }
          p->e[0] = (struct end){.fd = c, .pair = p};
          p->e[1] = (struct end){.fd = u, .pair = p};
          nonblocking(c);
          nonblocking(u);
          watch(&p->e[0], EPOLL_CTL_ADD, EPOLLIN);
          watch(&p->e[1], EPOLL_CTL_ADD, EPOLLIN);
        }
        continue;
      }
      int r = 0;
      if (evs[i].events & EPOLLOUT) r = flush(e);
      if (r == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) r = relay(e);
      if (r < 0) close_pair(e->pair);
    }
  }
}
