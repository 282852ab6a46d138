// herd's native relay: one epoll loop that moves the bytes of socket pairs (a read and a write
// per chunk, 64 KiB reads), without Node's stream layer. Built from source with cc
// (scripts/setup-native.sh). Two ways in, one relay:
//
// Tunnel mode (`tunnel-relay <counter fd> <daemon pid>`, driven by src/dataplane/native-
// relay.ts): after the daemon has done a WebSocket tunnel's HTTP upgrade (or made a connection
// a cluster relay hop), it hands the two established sockets (client, worker) here. Protocol:
// the daemon's child_process IPC channel (fd NODE_CHANNEL_FD, JSON lines). Each socket arrives
// as a NODE_HANDLE message whose msg is {"t":ID,"s":0|1} (0 the client, 1 the worker) with its
// fd in SCM_RIGHTS; we answer NODE_HANDLE_ACK as Node's own receiver does. {"close":ID} closes
// a tunnel. We send {"closed":ID} once a tunnel is closed, whichever side closed it.
// {"dial":ID,"path":P} asks for a connection made inside a contained worker's network namespace:
// we connect to P (a listen-mode relay's dial socket, below), receive the socket it made, and
// pass it on as a NODE_HANDLE message of type net.Native whose msg is {"dialed":ID} (one at a
// time: the next waits for Node's NODE_HANDLE_ACK, as Node's own sender does; a NACK sends it
// again, up to three times), or send {"dialed":ID,"error":WHY}. Byte
// counts of the client socket (read: rx, written: tx) live in the shared counter file (fd
// given as argv[1], mmapped; slot ID = two little-endian uint64 at ID*16), updated per chunk
// by a store, read by the daemon when it needs a figure. The process dies with the daemon:
// PR_SET_PDEATHSIG plus EOF on the channel.
//
// Listen mode (`tunnel-relay --listen <unix socket path> <port>`, src/sandbox/bwrap-argv.ts):
// the relay into a worker's private network namespace, started inside it before the worker.
// Each connection accepted on the Unix socket (the daemon's side, in a root-only directory) is
// paired with a new TCP connection to 127.0.0.1:<port> (the worker) and relayed like a tunnel:
// no process per connection (socat's `fork` cost a fork and an exec's worth of CPU per
// connection). A refused connect closes the pair, as the worker not listening would. With a
// third argument (`--listen <path> <port> <dial path>`) it also listens on the dial socket:
// each connection accepted there gets one new TCP connection to the worker, made here, inside
// the namespace, and passed back over it (one byte, the socket in SCM_RIGHTS; nothing: the
// connect failed), so the daemon can talk to the worker with no relay between. It lives and
// dies with the sandbox's pid namespace; no channel, no counters.
//
// Half-close: a client read to its EOF (it sent its request and FIN, and waits for the answer)
// has the worker's write side shut once what it sent is written, and the answer goes on
// flowing back; the worker's end, once written to the client, ends the tunnel (a client cannot
// hold a tunnel half-open after its worker, or the owning node, has closed).
//
// Invariants: a tunnel's two sockets are closed together (shutdown first: in tunnel mode the
// daemon still holds its own copies of the descriptors until it sees "closed") at the worker's
// end or the first error, and "closed" is sent once per tunnel. An end read to its EOF is
// watched only while it has bytes to write (else its hang-up would be reported on and on).
// Single-threaded.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BUF 65536
#define SLOTS 65536
#define MAX_FDS 64

// What an epoll event points at: a tunnel's end, or a dial under way (the first field says).
enum kind { END, DIAL_SERVED, DIAL_ASKED };

struct tunnel;
struct end {
  enum kind kind;  // END
  int fd;  // -1 until its descriptor arrives
  int side;
  struct tunnel *t;
  char *pending;  // bytes for fd not written yet (a short write), allocated on first need
  size_t off, len;
  int eof;      // read to its end: nothing more comes from fd
  int watched;  // in the epoll set
};
struct tunnel {
  int id;
  struct end e[2];
};

static int ep, ch = -1;
static uint64_t *counters;
static struct tunnel *tunnels[SLOTS];
static char rbuf[BUF];
// The epoll batch being handled: a tunnel closed mid-batch clears its later events.
static struct epoll_event evs[256];
static int ev_next, ev_count;

static void say(const char *line) {
  size_t n = strlen(line), off = 0;
  while (off < n) {
    ssize_t w = write(ch, line + off, n - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        usleep(1000);
        continue;
      }
      exit(0);  // the daemon is gone
    }
    off += w;
  }
}

static void report_closed(long id) {
  if (ch < 0) return;  // listen mode: nobody to tell
  char line[64];
  snprintf(line, sizeof line, "{\"closed\":%ld}\n", id);
  say(line);
}

static void watch(struct end *e, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = e};
  epoll_ctl(ep, op, e->fd, &ev);
}

static struct end *peer(struct end *e) { return &e->t->e[1 - e->side]; }

// What an end waits for, from the state: readable until its EOF while its peer has nothing
// pending (else backpressure), writable while it has bytes pending itself.
static void rearm(struct end *e) {
  unsigned events = (peer(e)->len == 0 && !e->eof ? EPOLLIN : 0) | (e->len > 0 ? EPOLLOUT : 0);
  if (e->eof && events == 0) {
    if (e->watched) epoll_ctl(ep, EPOLL_CTL_DEL, e->fd, NULL);
    e->watched = 0;
    return;
  }
  watch(e, e->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, events);
  e->watched = 1;
}

// Once e's feeder has ended and everything it sent is written to e: the worker's end is the
// tunnel's (-1); the client's is passed on to the worker (its write side shut) and the answer
// still flows back (0).
static int ended(struct end *e) {
  if (!peer(e)->eof || e->len > 0) return 0;
  if (e->side == 0) return -1;
  shutdown(e->fd, SHUT_WR);
  return 0;
}

static void close_tunnel(struct tunnel *t) {
  for (int j = ev_next; j < ev_count; j++)
    if (evs[j].data.ptr == &t->e[0] || evs[j].data.ptr == &t->e[1]) evs[j].data.ptr = NULL;
  for (int i = 0; i < 2; i++) {
    struct end *e = &t->e[i];
    if (e->fd >= 0) {
      epoll_ctl(ep, EPOLL_CTL_DEL, e->fd, NULL);
      shutdown(e->fd, SHUT_RDWR);
      close(e->fd);
    }
    free(e->pending);
  }
  tunnels[t->id] = NULL;
  report_closed(t->id);
  free(t);
}

static void count(struct end *e, int read, size_t n) {
  if (e->side != 0 || counters == NULL) return;  // the client's socket is the one counted
  counters[e->t->id * 2 + (read ? 0 : 1)] += n;
}

// Reads e and writes to its peer; a short write parks the rest and stops reading e. An end
// read to its EOF is read no more; its peer learns of it (ended).
static int relay(struct end *e) {
  struct end *p = peer(e);
  if (e->eof) return -1;  // hung up with bytes still to write to it: they cannot be
  for (;;) {
    ssize_t n = read(e->fd, rbuf, BUF);
    if (n == 0) {
      e->eof = 1;
      if (ended(p) < 0) return -1;
      rearm(e);
      return 0;
    }
    if (n < 0) return errno == EAGAIN ? 0 : errno == EINTR ? relay(e) : -1;
    count(e, 1, n);
    ssize_t w = write(p->fd, rbuf, n);
    if (w < 0 && errno != EAGAIN) return -1;
    if (w < 0) w = 0;
    count(p, 0, w);
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
    count(e, 0, w);
    e->off += w;
    e->len -= w;
  }
  if (ended(e) < 0) return -1;
  rearm(e);
  rearm(peer(e));
  return 0;
}

// Closes tunnel id, or says it is closed if this process does not hold it.
static void close_id(long id) {
  if (id < 0 || id >= SLOTS) return;
  if (tunnels[id] != NULL) close_tunnel(tunnels[id]);
  else report_closed(id);
}

// The integer after `key` in line, or -1.
static long field(const char *line, const char *key) {
  const char *at = strstr(line, key);
  if (at == NULL) return -1;
  at += strlen(key);
  if (*at < '0' || *at > '9') return -1;
  return strtol(at, NULL, 10);
}

static int fdq[MAX_FDS], fdq_len;

static void adopt(long id, long side, int fd) {
  if (id < 0 || id >= SLOTS || (side != 0 && side != 1)) {
    close(fd);
    return;
  }
  struct tunnel *t = tunnels[id];
  if (t == NULL) {
    t = calloc(1, sizeof *t);
    if (t == NULL) {
      close(fd);
      return;
    }
    t->id = (int)id;
    t->e[0] = (struct end){.fd = -1, .side = 0, .t = t};
    t->e[1] = (struct end){.fd = -1, .side = 1, .t = t};
    tunnels[id] = t;
  }
  struct end *e = &t->e[side];
  if (e->fd >= 0) close(e->fd);
  e->fd = fd;
  int one = 1;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (t->e[0].fd >= 0 && t->e[1].fd >= 0) {
    rearm(&t->e[0]);
    rearm(&t->e[1]);
  }
}

static void ask_dial(long id, const char *line);
static void handle_acked(int ok);

static void command(const char *line) {
  if (strstr(line, "\"cmd\":\"NODE_HANDLE\"") != NULL) {
    if (fdq_len == 0) {
      // Its descriptor did not arrive (no descriptor left here: MSG_CTRUNC). Not a NACK, which
      // Node answers by sending it again, in vain: the tunnel is reported closed instead.
      say("{\"cmd\":\"NODE_HANDLE_ACK\"}\n");
      close_id(field(line, "\"t\":"));
      return;
    }
    int fd = fdq[0];
    memmove(fdq, fdq + 1, --fdq_len * sizeof *fdq);
    say("{\"cmd\":\"NODE_HANDLE_ACK\"}\n");
    adopt(field(line, "\"t\":"), field(line, "\"s\":"), fd);
    return;
  }
  if (strstr(line, "\"cmd\":\"NODE_HANDLE_ACK\"") != NULL) return handle_acked(1);
  if (strstr(line, "\"cmd\":\"NODE_HANDLE_NACK\"") != NULL) return handle_acked(0);
  if (strstr(line, "\"cmd\":\"NODE_") != NULL) return;  // nothing else of Node's concerns us
  long dial = field(line, "\"dial\":");
  if (dial >= 0) return ask_dial(dial, line);
  close_id(field(line, "\"close\":"));
}

static char line[1 << 16];
static size_t line_len;

// Reads the channel: bytes into lines, descriptors into the queue. Returns -1 at EOF.
static int channel(void) {
  char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  struct iovec iov = {.iov_base = line + line_len, .iov_len = sizeof line - line_len - 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                     .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(ch, &m, MSG_CMSG_CLOEXEC);
  if (n == 0) return -1;
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *fds = (int *)CMSG_DATA(c);
    for (int i = 0; i < k; i++) {
      if (fdq_len < MAX_FDS) fdq[fdq_len++] = fds[i];
      else close(fds[i]);
    }
  }
  line_len += n;
  line[line_len] = 0;
  char *start = line, *nl;
  while ((nl = strchr(start, '\n')) != NULL) {
    *nl = 0;
    command(start);
    start = nl + 1;
  }
  line_len -= start - line;
  memmove(line, start, line_len);
  if (line_len == sizeof line - 1) line_len = 0;  // no line is this long: drop it
  return 0;
}

// ---- dials ----

// Sends bytes[0..n) on the Unix socket u, fd in SCM_RIGHTS with the first; what it wrote, or -1.
static int send_fd(int u, int fd, const char *bytes, size_t n) {
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  struct iovec iov = {.iov_base = (void *)bytes, .iov_len = n};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                     .msg_controllen = sizeof cbuf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t w;
  do w = sendmsg(u, &m, MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  return w > 0 ? (int)w : -1;
}

// Tunnel mode: a dial asked of a listen-mode relay, waiting for its answer on u.
struct dial_asked {
  enum kind kind;  // DIAL_ASKED
  long id;
  int u;
};

// Sockets dialed and not yet taken by the daemon: the head is in flight (sent, not acked).
#define MAX_DIALED 256
static struct {
  long id;
  int fd;
  int tries;
} dialed[MAX_DIALED];
static int dialed_len, in_flight;

static void dial_failed(long id, const char *why) {
  char msg[128];
  snprintf(msg, sizeof msg, "{\"dialed\":%ld,\"error\":\"%s\"}\n", id, why);
  say(msg);
}

// Sends the head of the queue to the daemon, its descriptor with the line's first byte.
static void send_dialed(void) {
  if (in_flight || dialed_len == 0) return;
  char msg[128];
  int n = snprintf(msg, sizeof msg,
                   "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Native\",\"msg\":{\"dialed\":%ld}}\n",
                   dialed[0].id);
  int w = send_fd(ch, dialed[0].fd, msg, n);
  if (w < 0) {
    if (errno != EAGAIN) exit(0);  // the daemon is gone
    usleep(1000);  // the channel is full: the daemon reads it soon
    return send_dialed();
  }
  if (w < n) say(msg + w);
  in_flight = 1;
  dialed[0].tries++;
}

static void handle_acked(int ok) {
  if (!in_flight) return;
  in_flight = 0;
  if (!ok && dialed[0].tries < 3) return send_dialed();  // its descriptor was lost: again
  if (!ok) dial_failed(dialed[0].id, "not passed");
  close(dialed[0].fd);
  memmove(dialed, dialed + 1, --dialed_len * sizeof dialed[0]);
  send_dialed();
}

static void ask_dial(long id, const char *line) {
  // The path: a JSON string the daemon wrote; one with escapes is none of herd's.
  const char *at = strstr(line, "\"path\":\"");
  const char *end = at == NULL ? NULL : strchr(at + 8, '"');
  struct sockaddr_un to = {.sun_family = AF_UNIX};
  if (end == NULL || end - (at + 8) >= (long)sizeof to.sun_path || memchr(at, '\\', end - at)) {
    return dial_failed(id, "bad path");
  }
  memcpy(to.sun_path, at + 8, end - (at + 8));
  int u = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (u < 0 || connect(u, (struct sockaddr *)&to, sizeof to) < 0) {
    const char *why = errno == ENOENT ? "ENOENT" : errno == ECONNREFUSED ? "ECONNREFUSED"
                    : errno == EAGAIN ? "EAGAIN" : "connect failed";
    if (u >= 0) close(u);
    return dial_failed(id, why);
  }
  struct dial_asked *d = malloc(sizeof *d);
  if (d == NULL) {
    close(u);
    return dial_failed(id, "ENOMEM");
  }
  *d = (struct dial_asked){.kind = DIAL_ASKED, .id = id, .u = u};
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = d};
  epoll_ctl(ep, EPOLL_CTL_ADD, u, &ev);
}

// The answer to a dial asked: the socket, queued for the daemon, or the failure said.
static void dial_answered(struct dial_asked *d) {
  char byte, cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                     .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(d->u, &m, MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;  // not yet
  int fd = -1;
  struct cmsghdr *c = n == 1 ? CMSG_FIRSTHDR(&m) : NULL;
  if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
      c->cmsg_len == CMSG_LEN(sizeof(int))) {
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
  }
  epoll_ctl(ep, EPOLL_CTL_DEL, d->u, NULL);
  close(d->u);
  if (fd < 0) dial_failed(d->id, "refused");
  else if (dialed_len == MAX_DIALED) {
    close(fd);
    dial_failed(d->id, "too many at once");
  } else {
    dialed[dialed_len].id = d->id;
    dialed[dialed_len].fd = fd;
    dialed[dialed_len++].tries = 0;
    send_dialed();
  }
  free(d);
}

// ---- listen mode ----

static int lfd, listen_port;
static long next_slot;

static int dfd = -1;  // the dial socket, if any

// Listen mode: a dial being served, waiting for its connect to the worker to finish.
struct dial_served {
  enum kind kind;  // DIAL_SERVED
  int u, w;        // the daemon's connection, the worker's
};

static int worker_socket(void) {
  int w = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(listen_port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (w >= 0 && connect(w, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS) {
    close(w);
    return -1;
  }
  return w;
}

// The next connection waiting on listener fd, or -1: none left (EAGAIN), or out of descriptors
// (the connection waits in the backlog, and a pause keeps the still-readable listener from
// spinning the loop meanwhile).
static int next_accepted(int fd) {
  int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (c < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)) {
    usleep(10000);
  }
  return c;
}

static void accept_dials(void) {
  for (;;) {
    int u = next_accepted(dfd);
    if (u < 0) return;
    int w = worker_socket();
    struct dial_served *d = w < 0 ? NULL : malloc(sizeof *d);
    if (d == NULL) {
      if (w >= 0) close(w);
      close(u);  // nothing passed: the daemon's dial fails
      continue;
    }
    *d = (struct dial_served){.kind = DIAL_SERVED, .u = u, .w = w};
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = d};
    epoll_ctl(ep, EPOLL_CTL_ADD, w, &ev);
  }
}

// The worker's connect finished: a connected socket is passed to the daemon, then both closed
// here (the daemon holds its own copy).
static void dial_connected(struct dial_served *d) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(d->w, SOL_SOCKET, SO_ERROR, &err, &len);
  // Out of the epoll set first: passed on, the socket outlives this descriptor's close (the
  // daemon's copy is in flight), and so would its registration.
  epoll_ctl(ep, EPOLL_CTL_DEL, d->w, NULL);
  if (err == 0) send_fd(d->u, d->w, "D", 1);
  close(d->w);
  close(d->u);
  free(d);
}

static int listen_unix(const char *path) {
  struct sockaddr_un at = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof at.sun_path) return -1;
  strcpy(at.sun_path, path);
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&at, sizeof at) < 0 || listen(fd, 511) < 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

// A free tunnel id, or -1 when SLOTS tunnels are open.
static long free_slot(void) {
  for (long i = 0; i < SLOTS; i++) {
    long id = (next_slot + i) % SLOTS;
    if (tunnels[id] == NULL) {
      next_slot = id + 1;
      return id;
    }
  }
  return -1;
}

// Pairs each waiting connection with a new one to the worker's port. The worker's connect may
// still be in progress: bytes for it wait as a short write's would, until EPOLLOUT; a refused
// one ends the pair through EPOLLERR.
static void accept_all(void) {
  for (;;) {
    int c = next_accepted(lfd);
    if (c < 0) return;
    long id = free_slot();
    int w = id < 0 ? -1 : worker_socket();
    if (w < 0) {
      close(c);
      continue;
    }
    adopt(id, 0, c);
    adopt(id, 1, w);
  }
}

static int listen_on(const char *path, const char *port, const char *dial) {
  listen_port = atoi(port);
  if (listen_port <= 0 || listen_port > 65535) {
    fprintf(stderr, "tunnel-relay: bad --listen port %s\n", port);
    return -1;
  }
  // The dial socket first: once the relay socket accepts, both do (the daemon's readiness).
  if ((dial != NULL && (dfd = listen_unix(dial)) < 0) || (lfd = listen_unix(path)) < 0) {
    perror("tunnel-relay: listen");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct end source;  // the channel (tunnel mode) or the listening socket (listen mode)
  struct end dials = {.fd = -1};  // listen mode's dial socket
  if ((argc == 4 || argc == 5) && strcmp(argv[1], "--listen") == 0) {
    if (listen_on(argv[2], argv[3], argc == 5 ? argv[4] : NULL) < 0) return 1;
    source = (struct end){.fd = lfd};
    dials.fd = dfd;
  } else {
    const char *chfd = getenv("NODE_CHANNEL_FD");
    if (argc != 3 || chfd == NULL) {
      fprintf(stderr,
              "usage: NODE_CHANNEL_FD=n tunnel-relay <counter fd> <daemon pid>\n"
              "       tunnel-relay --listen <unix socket path> <port> [<dial socket path>]\n");
      return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != atoi(argv[2])) return 0;  // the daemon died before the line above
    ch = atoi(chfd);
    counters = mmap(NULL, SLOTS * 16, PROT_READ | PROT_WRITE, MAP_SHARED, atoi(argv[1]), 0);
    if (counters == MAP_FAILED) {
      perror("tunnel-relay: mmap");
      return 1;
    }
    source = (struct end){.fd = ch};
  }
  watch(&source, EPOLL_CTL_ADD, EPOLLIN);
  if (dials.fd >= 0) watch(&dials, EPOLL_CTL_ADD, EPOLLIN);
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno != EINTR) return 1;
    ev_count = n;
    for (int i = 0; i < n; i++) {
      ev_next = i + 1;
      struct end *e = evs[i].data.ptr;
      if (e == NULL) continue;  // its tunnel closed earlier in this batch
      if (e == &source) {
        if (ch < 0) accept_all();
        else if (channel() < 0) return 0;  // the daemon closed the channel (or died)
        continue;
      }
      if (e == &dials) {
        accept_dials();
        continue;
      }
      if (e->kind == DIAL_SERVED) {
        dial_connected((struct dial_served *)e);
        continue;
      }
      if (e->kind == DIAL_ASKED) {
        dial_answered((struct dial_asked *)e);
        continue;
      }
      int r = 0;
      if (evs[i].events & EPOLLOUT) r = flush(e);
      if (r == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) r = relay(e);
      if (r < 0) close_tunnel(e->t);
    }
  }
}
