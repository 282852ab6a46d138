// A prototype of herd's HTTP fast path in C on one epoll loop (issue 26): what the per-request
// work of src/dataplane/fast/ costs outside V8, for the data-plane bench's "native prototype"
// row; proxy.spec.ts checks it byte for byte against a real herd. A bench tool driven by a
// static table, not by the daemon. Usage: proxy SESSION=PORT...; listens on a loopback port,
// prints `ready <port>`; each stdin line prints its counters; exits when stdin closes.
//
// Per request, what herd's fast path does for a plain request:
// - the head parsed as strictly as http1/request-head.ts and head-fields.ts;
// - routed as fast/fast-route.ts, route.ts and web-access.ts route by header: X-Session-ID and
//   the routing fields each read once (repeated ones, Origin, Sec-Fetch-Site, X-Herd-Peer,
//   herd's query or cookie names, a /s/ path: declined), Host required and allowed (421), the
//   id validated (400), the connection's last session reused or the table looked up (404, the
//   connection kept); counters, and a coarse clock read that "touches" the session;
// - the worker's head as head-rewrite.ts's workerRequestHead writes it (header-rules.ts: the
//   same fields dropped, Cookie, X-Forwarded-For/-Proto/-Host and the framing lines appended in
//   the same order), the body verbatim by its framing (chunked-framing.ts's grammar, limits);
// - one upstream keep-alive connection pinned per client connection, one exchange at a time
//   (bytes read ahead wait);
// - the response head parsed as response-head.ts does (anything odd: 502), 1xx passed on, the
//   client's head as clientResponseHead writes it (hop-by-hop, listed and herd_* Set-Cookie
//   fields dropped, FRAMING's lines added), the body verbatim by its framing.
// Backpressure as bench/c-relay: a short write parks the rest and stops reading the other side
// until EPOLLOUT. Bounded: heads of MAX_HEAD bytes (431), MAX_FIELDS fields, lengths and chunk
// sizes up to 2^53 - 1, chunk lines and extensions as herd's.
//
// Left out (contracts a native hot path would have to keep, see docs/performance.md): whatever
// herd hands to node:http is answered 400 and closed here (split heads are buffered instead);
// trailer fields (herd rewrites them; here the exchange is cut); the retry of a bodiless
// idempotent request on a reused upstream that closed before answering (a failure path);
// leases, acquire, session ends, tokens and tenants' keys (the table is static, tokens off as
// in the bench); cross-origin checks; tracing; cluster hops; the connection gate and
// per-client limits; every timer (header and keep-alive timeouts, data_timeout, the body-rate
// deadline, lingering close); the park of upstream connections; herd's error bodies;
// WebSocket upgrades; IPv6. Single-threaded; a connection closed mid-batch clears its later
// events (as c-relay does).
#define _GNU_SOURCE  // memmem
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD 16384  // herd's default data.max_header_size
#define MAX_FIELDS 256  // head-fields.ts: beyond it, node:http decides
#define CBUF 32768      // a client connection's read buffer: a head and what came with it
#define RBUF 65536      // one read of either side
#define MAX_SAFE 9007199254740991ULL
#define MAX_CHUNK_LINE 4096
#define MAX_EXTENSION_BYTES 16384
#define MAX_TRAILER_BYTES 16384

// ---- bytes (http1/bytes.ts) ----

static unsigned char TCHAR[256], FIELD[256], TARGET[256], QDTEXT[256], QPAIR[256];
static signed char HEX[256];

static void tables(void) {
  const char *alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  for (const char *p = alnum; *p; p++) TCHAR[(unsigned char)*p] = TARGET[(unsigned char)*p] = 1;
  for (const char *p = "!#$%&'*+-.^_`|~"; *p; p++) TCHAR[(unsigned char)*p] = 1;
  for (const char *p = "!\"$%&'()*+,-./:;<=>@[\\]^_`{|}~?"; *p; p++) TARGET[(unsigned char)*p] = 1;
  for (int c = 0; c < 256; c++) {
    FIELD[c] = QPAIR[c] = c == '\t' || (c >= 0x20 && c <= 0x7e) || c >= 0x80;
    QDTEXT[c] = c == '\t' || c == ' ' || c == '!' || (c >= 0x23 && c <= 0x5b) ||
                (c >= 0x5d && c <= 0x7e) || c >= 0x80;
    HEX[c] = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  }
}

// buf[s..e) equals `lower` ignoring ASCII case (names are tchar bytes, as bytes.ts's nameEquals).
static int is(const char *buf, int s, int e, const char *lower) {
  size_t n = strlen(lower);
  return (size_t)(e - s) == n && strncasecmp(buf + s, lower, n) == 0;
}

// ---- heads (http1/head-fields.ts, request-head.ts, response-head.ts) ----

enum { NEED = -1, BAD = -2 };
enum { B_NONE, B_LENGTH, B_CHUNKED, B_CLOSE };

struct field { int ns, ne, vs, ve; };
// One scanned head: offsets into the buffer it was scanned in. One scratch (H), as herd's
// `marks`: valid until the next scan.
struct head {
  int minor, head_bytes, count;
  int close, keep_alive, upgrade_token, upgrade_header, lists_others, hosts, expects, chunked;
  long long content_length;  // -1: none
  int method_end, target_start, target_end, status, reason_start, reason_end;
  struct field f[MAX_FIELDS];
};
static struct head H;

static long long content_length(const char *b, int s, int e) {
  if (e == s || e - s > 16 || (b[s] == '0' && e - s > 1)) return -1;
  unsigned long long n = 0;
  for (int p = s; p < e; p++) {
    if (b[p] < '0' || b[p] > '9') return -1;
    n = n * 10 + (b[p] - '0');
  }
  return n <= MAX_SAFE ? (long long)n : -1;
}

// Connection: tokens separated by commas with optional spaces; 0 when the value is anything else.
static int connection(const char *b, int s, int e, struct head *h) {
  int p = s;
  for (;;) {
    int ts = p;
    while (p < e && TCHAR[(unsigned char)b[p]]) p++;
    if (p == ts) return 0;
    if (is(b, ts, p, "close")) h->close = 1;
    else if (is(b, ts, p, "keep-alive")) h->keep_alive = 1;
    else if (is(b, ts, p, "upgrade")) h->upgrade_token = 1;
    else h->lists_others = 1;
    while (p < e && b[p] == ' ') p++;
    if (p == e) return 1;
    if (b[p] != ',') return 0;
    p++;
    while (p < e && b[p] == ' ') p++;
  }
}

// What a field llhttp interprets says; 0 when its value is not acceptable (head-fields.ts).
static int classify(const char *b, int ns, int ne, int vs, int ve, int padded, struct head *h) {
  switch (ne - ns) {
  case 4: return h->hosts += is(b, ns, ne, "host"), 1;
  case 6:
    if (!is(b, ns, ne, "expect")) return 1;
    return h->expects++, !padded;
  case 7:
    if (!is(b, ns, ne, "upgrade")) return 1;
    return h->upgrade_header = 1, ve > vs;
  case 10: return !is(b, ns, ne, "connection") || (!padded && connection(b, vs, ve, h));
  case 14:
    if (!is(b, ns, ne, "content-length")) return 1;
    if (padded || h->content_length != -1 || h->chunked) return 0;
    return (h->content_length = content_length(b, vs, ve)) != -1;
  case 16: return !is(b, ns, ne, "proxy-connection");
  case 17:
    if (!is(b, ns, ne, "transfer-encoding")) return 1;
    if (padded || h->chunked || h->content_length != -1 || !is(b, vs, ve, "chunked")) return 0;
    return h->chunked = 1;
  default: return 1;
  }
}

// The field lines from i up to end: the index after the blank line, NEED or BAD.
static int scan_fields(const char *b, int i, int end, struct head *h) {
  for (;;) {
    if (i >= end) return NEED;
    if (b[i] == '\r') {
      if (i + 1 >= end) return NEED;
      return b[i + 1] == '\n' ? i + 2 : BAD;
    }
    int ns = i;
    while (i < end && TCHAR[(unsigned char)b[i]]) i++;
    if (i >= end) return NEED;
    if (b[i] != ':' || i == ns) return BAD;
    int ne = i++, padded = 0;
    for (; i < end && (b[i] == ' ' || b[i] == '\t'); i++) padded |= b[i] == '\t';
    int vs = i;
    while (i < end && FIELD[(unsigned char)b[i]]) i++;
    if (i >= end) return NEED;
    if (b[i] != '\r') return BAD;
    if (i + 1 >= end) return NEED;
    if (b[i + 1] != '\n') return BAD;
    int ve = i;
    while (ve > vs && (b[ve - 1] == ' ' || b[ve - 1] == '\t')) ve--;
    padded |= ve != i;
    i += 2;
    if (h->count == MAX_FIELDS || !classify(b, ns, ne, vs, ve, padded, h)) return BAD;
    h->f[h->count++] = (struct field){ns, ne, vs, ve};
  }
}

static void head_reset(struct head *h) {
  memset(h, 0, offsetof(struct head, f));
  h->content_length = -1;
}

static int version(const char *b, int i) {
  if (memcmp(b + i, "HTTP/1.", 7) != 0) return -1;
  return b[i + 7] == '0' ? 0 : b[i + 7] == '1' ? 1 : -1;
}

enum { INCOMPLETE = -1, DECLINE = -2, TOO_LARGE = -3 };
static int short_of(int len) { return len >= MAX_HEAD ? TOO_LARGE : INCOMPLETE; }

static const char *METHODS[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"};

// scanRequestHead, for what herd's fast path serves: the head's length, INCOMPLETE, DECLINE
// (herd: node:http decides; HTTP/1.0, upgrades and Expect included) or TOO_LARGE.
static int scan_request(const char *b, int len) {
  int end = len < MAX_HEAD ? len : MAX_HEAD, i = 0, known = 0;
  head_reset(&H);
  while (i < end && TCHAR[(unsigned char)b[i]]) i++;
  if (i > 7) return DECLINE;
  if (i >= end) return short_of(len);
  if (b[i] != ' ') return DECLINE;
  for (size_t m = 0; m < sizeof METHODS / sizeof *METHODS; m++)
    known |= (size_t)i == strlen(METHODS[m]) && memcmp(b, METHODS[m], i) == 0;
  if (!known) return DECLINE;
  H.method_end = i;
  H.target_start = ++i;
  if (i < end && b[i] != '/') return DECLINE;
  while (i < end && TARGET[(unsigned char)b[i]]) i++;
  if (i + 11 > end) return i < end && b[i] != ' ' ? DECLINE : short_of(len);
  H.target_end = i;
  H.minor = b[i] == ' ' ? version(b, i + 1) : -1;
  if (H.minor < 0 || b[i + 9] != '\r' || b[i + 10] != '\n') return DECLINE;
  int e = scan_fields(b, i + 11, end, &H);
  if (e == NEED) return short_of(len);
  if (e == BAD || H.minor != 1 || H.hosts != 1 || H.expects > 0) return DECLINE;
  if ((H.close && H.keep_alive) || (H.upgrade_header && H.upgrade_token)) return DECLINE;
  H.head_bytes = e;
  return e;
}

// scanResponseHead: the head's length, INCOMPLETE, BAD (→ 502) or TOO_LARGE; *framing set.
static int scan_response(const char *b, int len, int head_request, int *framing, int *keep) {
  int end = len < MAX_HEAD ? len : MAX_HEAD;
  head_reset(&H);
  if (end < 14) {
    for (int k = 0; k < 7 && k < end; k++)
      if (b[k] != "HTTP/1."[k]) return BAD;
    return short_of(len);
  }
  H.minor = version(b, 0);
  int d0 = b[9] - '0', d1 = b[10] - '0', d2 = b[11] - '0';
  if (H.minor < 0 || b[8] != ' ' || d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9)
    return BAD;
  int status = H.status = d0 * 100 + d1 * 10 + d2;
  if (status < 200 && status > 103) return BAD;
  int i = 12;
  H.reason_start = i;
  if (b[i] == ' ') {
    H.reason_start = ++i;
    while (i < end && FIELD[(unsigned char)b[i]]) i++;
  }
  H.reason_end = i;
  if (i >= end) return short_of(len);
  if (b[i] != '\r') return BAD;
  if (i + 1 >= end) return short_of(len);
  if (b[i + 1] != '\n') return BAD;
  int e = scan_fields(b, i + 2, end, &H);
  if (e == NEED) return short_of(len);
  if (e == BAD || (H.close && H.keep_alive)) return BAD;
  if (status < 200 || status == 204 || status == 304) {
    if (H.chunked) return BAD;
    *framing = B_NONE;
  } else if (head_request) *framing = B_NONE;
  else if (H.chunked) {
    if (H.minor == 0) return BAD;
    *framing = B_CHUNKED;
  } else if (H.content_length == 0) *framing = B_NONE;
  else if (H.content_length > 0) *framing = B_LENGTH;
  else *framing = B_CLOSE;
  int ka = H.minor == 1 ? !H.close : H.keep_alive;
  if (status < 200 && status != 101 && !ka) return BAD;
  int reads_to_close = status >= 200 && status != 204 && status != 304 && !H.chunked &&
                       H.content_length == -1;
  *keep = ka && !reads_to_close;
  H.head_bytes = e;
  return e;
}

// ---- bodies (http1/chunked-framing.ts, fast/body-cursor.ts) ----

enum { C_SIZE_FIRST, C_SIZE, C_EXT_NAME_FIRST, C_EXT_NAME, C_EXT_VALUE_FIRST, C_EXT_TOKEN,
       C_EXT_QUOTED, C_EXT_QUOTED_PAIR, C_EXT_QUOTE_END, C_SIZE_LF, C_DATA, C_DATA_CR, C_DATA_LF,
       C_TRAILER_START, C_END_LF, C_DONE };

struct body {
  int kind, open, state, digits, line_bytes, ext_bytes, trailer_bytes;
  unsigned long long size, remaining;
};

static void body_init(struct body *b, int kind, unsigned long long length) {
  *b = (struct body){.kind = kind, .remaining = length};
  b->open = kind == B_CLOSE || kind == B_CHUNKED || (kind == B_LENGTH && length > 0);
}

static int after_size(struct body *b, int c) {
  if (c != ';' && c != '\r') return 0;
  return b->state = c == ';' ? C_EXT_NAME_FIRST : C_SIZE_LF, 1;
}

// One byte outside chunk data; 0 when it breaks the framing. A trailer section with fields is
// not handled (herd rewrites it): its first field byte is refused here.
static int step(struct body *b, int c) {
  switch (b->state) {
  case C_SIZE_FIRST:
  case C_SIZE:
    if (HEX[c] >= 0) {
      if (++b->digits > 16 || b->size > (MAX_SAFE - HEX[c]) / 16) return 0;
      b->size = b->size * 16 + HEX[c];
      b->state = C_SIZE;
      return 1;
    }
    return b->state == C_SIZE && after_size(b, c);
  case C_EXT_NAME_FIRST: return b->state = C_EXT_NAME, TCHAR[c];
  case C_EXT_NAME:
    if (TCHAR[c]) return 1;
    if (c == '=') return b->state = C_EXT_VALUE_FIRST, 1;
    return after_size(b, c);
  case C_EXT_VALUE_FIRST:
    if (c == '"') b->state = C_EXT_QUOTED;
    else if (TCHAR[c]) b->state = C_EXT_TOKEN;
    else return 0;
    return 1;
  case C_EXT_TOKEN: return TCHAR[c] || after_size(b, c);
  case C_EXT_QUOTED:
    if (c == '"') b->state = C_EXT_QUOTE_END;
    else if (c == '\\') b->state = C_EXT_QUOTED_PAIR;
    else return QDTEXT[c];
    return 1;
  case C_EXT_QUOTED_PAIR: return b->state = C_EXT_QUOTED, QPAIR[c];
  case C_EXT_QUOTE_END: return after_size(b, c);
  case C_SIZE_LF:
    if (c != '\n') return 0;
    b->state = b->size == 0 ? C_TRAILER_START : C_DATA;
    b->remaining = b->size;
    return 1;
  case C_DATA_CR: return b->state = C_DATA_LF, c == '\r';
  case C_DATA_LF: return b->state = C_SIZE_FIRST, b->size = b->digits = b->line_bytes = 0, c == '\n';
  case C_TRAILER_START: return b->state = C_END_LF, c == '\r';
  case C_END_LF: return b->state = C_DONE, c == '\n';
  default: return 0;
  }
}

// How many leading bytes of buf[0..n) belong to the body (-1: malformed); b->open clears at its end.
static long body_take(struct body *b, const char *buf, size_t n) {
  if (!b->open) return 0;
  if (b->kind == B_CLOSE) return n;
  if (b->kind == B_LENGTH) {
    size_t k = b->remaining < n ? b->remaining : n;
    b->remaining -= k;
    b->open = b->remaining > 0;
    return k;
  }
  size_t i = 0;
  while (i < n && b->state != C_DONE) {
    if (b->state == C_DATA) {
      size_t k = b->remaining < n - i ? b->remaining : n - i;
      i += k;
      b->remaining -= k;
      if (b->remaining == 0) b->state = C_DATA_CR;
      continue;
    }
    if (b->state < C_SIZE_LF) {
      if (++b->line_bytes > MAX_CHUNK_LINE) return -1;
      if (b->state >= C_EXT_NAME_FIRST && ++b->ext_bytes > MAX_EXTENSION_BYTES) return -1;
    } else if (b->state >= C_TRAILER_START && ++b->trailer_bytes > MAX_TRAILER_BYTES) {
      return -1;
    }
    if (!step(b, (unsigned char)buf[i++])) return -1;
  }
  b->open = b->state != C_DONE;
  return i;
}

// ---- header rules (header-rules.ts) ----

enum { R_PASS, R_HOP, R_CONNECTION, R_UPGRADE, R_NOT_TO_WORKER, R_XFF, R_HOST, R_REFERER,
       R_SET_COOKIE, R_AUTHORIZATION, R_TRACEPARENT };
static const struct { const char *name; int rule; } RULES[] = {
    {"connection", R_CONNECTION}, {"keep-alive", R_HOP}, {"te", R_HOP}, {"trailer", R_HOP},
    {"transfer-encoding", R_HOP}, {"upgrade", R_UPGRADE}, {"cookie", R_NOT_TO_WORKER},
    {"x-herd-token", R_NOT_TO_WORKER}, {"x-herd-key", R_NOT_TO_WORKER},
    {"x-herd-pool", R_NOT_TO_WORKER}, {"x-herd-peer", R_NOT_TO_WORKER},
    {"x-forwarded-proto", R_NOT_TO_WORKER}, {"x-forwarded-host", R_NOT_TO_WORKER},
    {"x-forwarded-for", R_XFF}, {"host", R_HOST}, {"referer", R_REFERER},
    {"set-cookie", R_SET_COOKIE}, {"authorization", R_AUTHORIZATION},
    {"traceparent", R_TRACEPARENT}};

static int rule_of(const char *b, int ns, int ne) {
  for (size_t k = 0; k < sizeof RULES / sizeof *RULES; k++)
    if (is(b, ns, ne, RULES[k].name)) return RULES[k].rule;
  return ne - ns >= 6 && strncasecmp(b + ns, "proxy-", 6) == 0 ? R_HOP : R_PASS;
}

// Does a Connection field of the head list the name buf[ns..ne)? Only asked when one lists any.
static int listed(const char *b, int ns, int ne) {
  for (int k = 0; k < H.count; k++) {
    struct field *f = &H.f[k];
    if (!is(b, f->ns, f->ne, "connection")) continue;
    for (int p = f->vs; p < f->ve;) {
      int ts = p;
      while (p < f->ve && b[p] != ',' && b[p] != ' ') p++;
      // connectionListed: close, keep-alive and upgrade are not names it lists
      if (p - ts == ne - ns && strncasecmp(b + ts, b + ns, p - ts) == 0 &&
          !is(b, ts, p, "close") && !is(b, ts, p, "keep-alive") && !is(b, ts, p, "upgrade"))
        return 1;
      while (p < f->ve && (b[p] == ',' || b[p] == ' ')) p++;
    }
  }
  return 0;
}

// setsHerdCookie: the cookie's name (before the first ';', then the first '=', trimmed) starts
// with herd_ in any case.
static int sets_herd_cookie(const char *b, int vs, int ve) {
  int e = vs;
  while (e < ve && b[e] != ';') e++;
  int q = vs;
  while (q < e && b[q] != '=') q++;
  while (vs < q && (b[vs] == ' ' || b[vs] == '\t')) vs++;
  return q - vs >= 5 && strncasecmp(b + vs, "herd_", 5) == 0;
}

static char *put(char *o, const char *s, size_t n) { return (char *)memcpy(o, s, n) + n; }
#define PUTS(o, lit) put(o, lit, sizeof lit - 1)
static char *field_line(char *o, const char *b, const struct field *f) {
  o = put(o, b + f->ns, f->ne - f->ns);
  o = PUTS(o, ": ");
  o = put(o, b + f->vs, f->ve - f->vs);
  return PUTS(o, "\r\n");
}

// clientResponseHead's head (the scanned response in b, H) with `framing` lines; the end.
static char *client_head(char *o, const char *b, const char *framing, size_t flen) {
  if (H.minor == 1 && H.reason_start == 13) {
    o = put(o, b, H.reason_end + 2);
  } else {
    o = PUTS(o, "HTTP/1.1 ");
    o = put(o, b + 9, 3);
    *o++ = ' ';
    o = put(o, b + H.reason_start, H.reason_end - H.reason_start);
    o = PUTS(o, "\r\n");
  }
  for (int k = 0; k < H.count; k++) {
    struct field *f = &H.f[k];
    int rule = rule_of(b, f->ns, f->ne);
    if (rule == R_HOP || rule == R_CONNECTION || rule == R_UPGRADE) continue;
    if (H.lists_others && listed(b, f->ns, f->ne)) continue;
    if (rule == R_SET_COOKIE && sets_herd_cookie(b, f->vs, f->ve)) continue;
    o = field_line(o, b, f);
  }
  o = put(o, framing, flen);
  return PUTS(o, "\r\n");
}

// ---- sessions: the static table (the daemon's directory, in a real adoption) ----

struct session {
  char id[129];
  int port;
  time_t touched;
  unsigned long long requests;
};
static struct session *table[1024];  // open addressing by FNV-1a of the id

static unsigned hash(const char *s, size_t n) {
  unsigned h = 2166136261u;
  while (n--) h = (h ^ (unsigned char)*s++) * 16777619u;
  return h;
}

static struct session *lookup(const char *id, size_t n) {
  for (unsigned k = hash(id, n) % 1024, tries = 0; tries < 1024; k = (k + 1) % 1024, tries++) {
    struct session *s = table[k];
    if (s == NULL) return NULL;
    if (strlen(s->id) == n && memcmp(s->id, id, n) == 0) return s;
  }
  return NULL;
}

static int add_session(const char *arg) {
  struct session *s = calloc(1, sizeof *s);
  const char *eq = strchr(arg, '=');
  if (s == NULL || eq == NULL || eq == arg || eq - arg > 128) return -1;
  memcpy(s->id, arg, eq - arg);
  s->port = atoi(eq + 1);
  for (unsigned k = hash(s->id, eq - arg) % 1024, tries = 0; tries < 1024; k = (k + 1) % 1024)
    if (table[k] == NULL) return table[k] = s, 0;
    else tries++;
  return -1;
}

static int valid_id(const char *b, int s, int e) {
  if (e == s || e - s > 128) return 0;
  for (int p = s; p < e; p++) {
    unsigned char c = b[p];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == ':' || c == '@' || c == '-'))
      return 0;
  }
  return 1;
}

// AllowedHosts for a loopback-bound plane without allowed_hosts: an IP, a name without a dot,
// *.localhost.
static int host_allowed(const char *b, int s, int e) {
  if (e > s && b[s] == '[') return 1;
  int colon = e, dot = 0, digits = 1;
  for (int p = s; p < e; p++) if (b[p] == ':') colon = p;
  for (int p = s; p < colon; p++) {
    dot |= b[p] == '.';
    digits &= (b[p] >= '0' && b[p] <= '9') || b[p] == '.';
  }
  return colon > s && (!dot || digits || (colon - s > 10 && is(b, colon - 10, colon, ".localhost")));
}

// ---- connections ----

struct pending { char *buf; size_t off, len, cap; };

enum { P_IDLE, P_HEAD, P_BODY, P_CLOSING };
struct conn;
struct end { int fd; unsigned mask; struct conn *c; };
struct conn {
  struct end ce, ue;
  int phase, c_eof, upstream_port;
  int req_head, req_keep_alive, resp_keep_alive, close_framed;
  struct body req, resp;
  struct pending to_cl, to_up;
  char *uhead;  // a split response head
  int uhead_len;
  struct session *last;
  char peer[INET_ADDRSTRLEN];
  size_t clen;
  char cbuf[CBUF];
};

static struct { unsigned long long forwarded, fast_forwarded, upstream_connections; } counters;
static int ep;
static char rbuf[RBUF];
static char obuf[2 * MAX_HEAD + 1024 + RBUF + CBUF];  // a head we write and the body bytes after it
static struct epoll_event evs[256];
static int ev_next, ev_count;

static void watch(struct end *e, unsigned mask) {
  if (e->fd < 0 || e->mask == mask) return;
  struct epoll_event ev = {.events = mask, .data.ptr = e};
  epoll_ctl(ep, e->mask == (unsigned)-1 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, e->fd, &ev);
  e->mask = mask;
}

// Each side's interest from the state: read it while the other side has nothing pending
// (backpressure), write it while it has bytes pending itself.
static void arm(struct conn *c) {
  int in = c->phase == P_CLOSING
               ? c->to_cl.len == 0 || !c->c_eof  // at EOF: read (0) once the answer is out
               : !c->c_eof && c->to_up.len == 0 &&
                     (c->clen < CBUF || (c->phase != P_IDLE && c->req.open));
  watch(&c->ce, (in ? EPOLLIN : 0) | (c->to_cl.len ? EPOLLOUT : 0));
  watch(&c->ue, (c->to_cl.len == 0 ? EPOLLIN : 0) | (c->to_up.len ? EPOLLOUT : 0));
}

static void forget(struct end *e) {
  for (int j = ev_next; j < ev_count; j++)
    if (evs[j].data.ptr == e) evs[j].data.ptr = NULL;
}

static void close_upstream(struct conn *c) {
  if (c->ue.fd < 0) return;
  forget(&c->ue);
  close(c->ue.fd);  // closing drops it from the epoll set
  c->ue = (struct end){.fd = -1, .mask = (unsigned)-1, .c = c};
  c->to_up.len = 0;
}

static void close_conn(struct conn *c) {
  close_upstream(c);
  forget(&c->ce);
  close(c->ce.fd);
  free(c->to_cl.buf);
  free(c->to_up.buf);
  free(c->uhead);
  free(c);
}

static int open_upstream(struct conn *c, int port) {
  close_upstream(c);
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in t = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || connect(fd, (struct sockaddr *)&t, sizeof t)) {  // blocking: loopback
    if (fd >= 0) close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->ue.fd = fd;
  c->upstream_port = port;
  counters.upstream_connections++;
  return 0;
}

// Writes (or queues behind what is pending); -1: the socket failed.
static int send_to(struct end *e, struct pending *p, const char *b, size_t n) {
  size_t w = 0;
  if (n == 0) return 0;
  if (p->len == 0) {
    ssize_t r = write(e->fd, b, n);
    if (r < 0 && errno != EAGAIN) return -1;
    w = r < 0 ? 0 : (size_t)r;
    if (w == n) return 0;
    p->off = 0;
  }
  size_t rest = n - w;
  if (p->off + p->len + rest > p->cap) {
    if (p->off > 0) memmove(p->buf, p->buf + p->off, p->len);
    p->off = 0;
    if (p->len + rest > p->cap) {
      char *nb = realloc(p->buf, p->len + rest);
      if (nb == NULL) return -1;
      p->buf = nb;
      p->cap = p->len + rest;
    }
  }
  memcpy(p->buf + p->off + p->len, b + w, rest);
  p->len += rest;
  return 0;
}

static int flush(struct end *e, struct pending *p) {
  while (p->len > 0) {
    ssize_t w = write(e->fd, p->buf + p->off, p->len);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    p->off += w;
    p->len -= w;
  }
  return 0;
}

// Ends the connection once what is pending for the client is written.
static void closing(struct conn *c) {
  c->phase = P_CLOSING;
  close_upstream(c);
  c->clen = 0;
  if (c->to_cl.len == 0) shutdown(c->ce.fd, SHUT_WR);
}

// An answer of ours (herd's would come from node:http); `keep`: the connection stays.
static void answer(struct conn *c, int status, const char *reason, const char *code, int keep) {
  char out[512];
  char body[128];
  int bl = snprintf(body, sizeof body, "{\"code\":\"%s\"}", code);
  int n = snprintf(out, sizeof out,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                   "Connection: %s\r\n\r\n%s",
                   status, reason, bl, keep ? "keep-alive" : "close", body);
  if (send_to(&c->ce, &c->to_cl, out, n) < 0) keep = 0;
  if (!keep) closing(c);
}

static void start_exchange(struct conn *c, struct session *s, int route_cookie);
static int next_request(struct conn *c);

// Routes the head in cbuf (scanned into H): starts its exchange, or answers; 0: go on with
// the next buffered request, 1: stop (an exchange started, or the connection closes).
static int route(struct conn *c) {
  const char *b = c->cbuf;
  int v[11][2], k;  // host cookie origin referer sec-fetch-site authorization token key pool peer session
  static const char *names[] = {"host", "cookie", "origin", "referer", "sec-fetch-site",
                                "authorization", "x-herd-token", "x-herd-key", "x-herd-pool",
                                "x-herd-peer"};
  for (k = 0; k < 11; k++) v[k][0] = -1;
  for (int i = 0; i < H.count; i++) {
    struct field *f = &H.f[i];
    for (k = 0; k < 10 && !is(b, f->ns, f->ne, names[k]); k++) {}
    if (k == 10 && !is(b, f->ns, f->ne, "x-session-id")) continue;
    if (v[k][0] >= 0) return answer(c, 400, "Bad Request", "declined", 0), 1;  // node:http joins
    v[k][0] = f->vs;
    v[k][1] = f->ve;
  }
#define HAS(k) (v[k][0] >= 0)
#define CONTAINS(k, s) (HAS(k) && memmem(b + v[k][0], v[k][1] - v[k][0], s, strlen(s)))
  const char *t = b + H.target_start;
  int tlen = H.target_end - H.target_start;
  // What herd's fast path serves too, but by rules this prototype leaves to Node: cross-origin
  // pages, cluster hops, herd's query, cookie and path routing, a Referer to scrub.
  if (HAS(2) || HAS(4) || HAS(9) || CONTAINS(1, "herd_") || memmem(t, tlen, "herd_", 5) ||
      (tlen >= 3 && memcmp(t, "/s/", 3) == 0) ||
      (HAS(3) && memchr(b + v[3][0], '?', v[3][1] - v[3][0]) && CONTAINS(3, "herd")))
    return answer(c, 400, "Bad Request", "declined", 0), 1;
  if (!host_allowed(b, v[0][0], v[0][1])) return answer(c, 421, "Misdirected Request", "misdirected", 0), 1;
  if (!HAS(10) || !valid_id(b, v[10][0], v[10][1]))
    return answer(c, 400, "Bad Request", "invalid_argument", 0), 1;
  const char *id = b + v[10][0];
  size_t idn = v[10][1] - v[10][0];
  struct session *s = c->last;
  if (s == NULL || strlen(s->id) != idn || memcmp(s->id, id, idn) != 0) s = lookup(id, idn);
  if (s == NULL) {
    // As herd with auto_acquire off; a body is not skipped: that connection closes.
    answer(c, 404, "Not Found", "not_found", H.content_length <= 0 && !H.chunked);
    return c->phase == P_CLOSING;
  }
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  if (now.tv_sec != s->touched) s->touched = now.tv_sec;  // the directory's touch
  s->requests++;
  c->last = s;
  start_exchange(c, s, HAS(1));
  return 1;
}

// workerRequestHead + the body bytes that came with the head, in one write.
static void start_exchange(struct conn *c, struct session *s, int sent_cookie) {
  const char *b = c->cbuf;
  char *o = obuf;
  int host = -1, cookie = -1;
  o = put(o, b, H.target_end);
  o = PUTS(o, " HTTP/1.1\r\n");
  for (int k = 0; k < H.count; k++) {
    struct field *f = &H.f[k];
    int rule = rule_of(b, f->ns, f->ne);
    if (rule == R_HOST) host = k;
    if (rule == R_NOT_TO_WORKER && f->ne - f->ns == 6) cookie = k;
    if (rule == R_HOP || rule == R_CONNECTION || rule == R_UPGRADE || rule == R_NOT_TO_WORKER ||
        rule == R_XFF || (H.lists_others && listed(b, f->ns, f->ne)))
      continue;
    o = field_line(o, b, f);
  }
  if (sent_cookie) {
    o = PUTS(o, "Cookie: ");
    o = put(o, b + H.f[cookie].vs, H.f[cookie].ve - H.f[cookie].vs);
    o = PUTS(o, "\r\n");
  }
  o = PUTS(o, "X-Forwarded-For: ");
  for (int k = 0; k < H.count; k++) {
    struct field *f = &H.f[k];
    if (f->ne - f->ns != 15 || !is(b, f->ns, f->ne, "x-forwarded-for")) continue;
    o = put(o, b + f->vs, f->ve - f->vs);
    o = PUTS(o, ", ");
  }
  o = put(o, c->peer, strlen(c->peer));
  o = PUTS(o, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ");
  o = put(o, b + H.f[host].vs, H.f[host].ve - H.f[host].vs);
  o = H.chunked ? PUTS(o, "\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n")
                : PUTS(o, "\r\nConnection: keep-alive\r\n\r\n");
  int head_len = o - obuf;
  counters.forwarded++;
  counters.fast_forwarded++;
  c->req_head = H.method_end == 4 && memcmp(b, "HEAD", 4) == 0;
  c->req_keep_alive = !H.close;
  body_init(&c->req, H.chunked ? B_CHUNKED : H.content_length > 0 ? B_LENGTH : B_NONE,
            H.content_length > 0 ? H.content_length : 0);
  size_t from = H.head_bytes;
  long n = body_take(&c->req, b + from, c->clen - from);
  if (n < 0) return answer(c, 400, "Bad Request", "invalid_chunked_body", 0);
  memcpy(o, b + from, n);
  c->phase = P_HEAD;
  memmove(c->cbuf, b + from + n, c->clen - from - n);
  c->clen -= from + n;
  if ((c->ue.fd < 0 || c->upstream_port != s->port) && open_upstream(c, s->port) < 0)
    return answer(c, 502, "Bad Gateway", "unavailable", 0);
  if (send_to(&c->ue, &c->to_up, obuf, head_len + n) < 0) {
    answer(c, 502, "Bad Gateway", "unavailable", 0);
    close_upstream(c);
  }
}

// Serves the requests buffered in cbuf while idle; -1: close the connection now.
static int next_request(struct conn *c) {
  while (c->phase == P_IDLE && c->clen > 0) {
    int r = scan_request(c->cbuf, c->clen);
    if (r == INCOMPLETE && c->clen < CBUF) return 0;
    if (r == TOO_LARGE || r == INCOMPLETE) return answer(c, 431, "Request Header Fields Too Large", "too_large", 0), 0;
    if (r == DECLINE) return answer(c, 400, "Bad Request", "declined", 0), 0;
    if (route(c)) return 0;
    c->clen -= r;  // answered here, the connection kept: on to the next head
    memmove(c->cbuf, c->cbuf + r, c->clen);
  }
  if (c->phase == P_IDLE && c->c_eof) return -1;
  return 0;
}

// The exchange ended at the response's framing end; `reusable`: so did the worker's bytes.
static int complete(struct conn *c, int reusable) {
  if (!reusable || c->req.open) close_upstream(c);
  if (c->req.open || !c->req_keep_alive || c->close_framed || c->c_eof) {
    closing(c);
    return 0;
  }
  c->phase = P_IDLE;
  return next_request(c);
}

static int response_body(struct conn *c, const char *b, size_t n, char *head_end) {
  long k = body_take(&c->resp, b, n);
  if (k < 0) {
    if (head_end) send_to(&c->ce, &c->to_cl, obuf, head_end - obuf);
    return -1;  // the head went out: the client sees a cut, never a short answer
  }
  const char *out = b;
  size_t len = k;
  if (head_end) {  // one write: the head and its first body bytes
    memcpy(head_end, b, k);
    out = obuf;
    len = head_end - obuf + k;
  }
  if (send_to(&c->ce, &c->to_cl, out, len) < 0) return -1;
  if (!c->resp.open) return complete(c, c->resp_keep_alive && (size_t)k == n);
  return 0;
}

static int response_head(struct conn *c, const char *b, size_t n) {
  if (c->uhead_len > 0) {
    size_t room = MAX_HEAD - c->uhead_len;
    if (n > room) return answer(c, 502, "Bad Gateway", "too_large_response_head", 0), 0;
    if (c->uhead == NULL && (c->uhead = malloc(MAX_HEAD)) == NULL) return -1;
    memcpy(c->uhead + c->uhead_len, b, n);
    n = c->uhead_len += n;
    b = c->uhead;
  }
  for (;;) {
    int framing = B_NONE, keep = 0;
    int r = scan_response(b, n, c->req_head, &framing, &keep);
    if (r == INCOMPLETE) {
      if (c->uhead == NULL && (c->uhead = malloc(MAX_HEAD)) == NULL) return -1;
      memmove(c->uhead, b, n);  // b may point into uhead, past an interim head
      c->uhead_len = n;
      return 0;
    }
    c->uhead_len = 0;
    if (r < 0 || H.status == 101) return answer(c, 502, "Bad Gateway", "invalid_response_head", 0), 0;
    if (H.status < 200) {  // interim: passed as is, the final head follows
      char *e = client_head(obuf, b, "", 0);
      if (send_to(&c->ce, &c->to_cl, obuf, e - obuf) < 0) return -1;
      b += r;
      n -= r;
      if (n == 0) return 0;
      continue;
    }
    c->phase = P_BODY;
    body_init(&c->resp, framing, framing == B_LENGTH ? H.content_length : 0);
    c->resp_keep_alive = keep;
    c->close_framed = framing == B_CLOSE;
    int keep_client = c->req_keep_alive && !c->close_framed;
    char lines[96];
    int ln = snprintf(lines, sizeof lines, "%s%s",
                      framing == B_CHUNKED ? "Transfer-Encoding: chunked\r\n" : "",
                      keep_client ? "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
                                  : "Connection: close\r\n");
    char *e = client_head(obuf, b, lines, ln);
    return response_body(c, b + r, n - r, e);
  }
}

// The upstream closed (EOF or error) with the exchange in `phase`.
static int upstream_closed(struct conn *c) {
  close_upstream(c);
  if (c->phase == P_BODY) return c->close_framed ? complete(c, 0) : -1;  // a cut
  if (c->phase != P_HEAD) return 0;
  answer(c, 502, "Bad Gateway", "worker_failed", 0);
  return 0;
}

static int upstream_readable(struct conn *c) {
  ssize_t n = read(c->ue.fd, rbuf, RBUF);
  if (n < 0 && errno == EAGAIN) return 0;
  if (n <= 0) return upstream_closed(c);
  if (c->phase != P_HEAD && c->phase != P_BODY) {
    close_upstream(c);  // a worker speaking out of turn
    return 0;
  }
  return c->phase == P_HEAD ? response_head(c, rbuf, n) : response_body(c, rbuf, n, NULL);
}

static int client_readable(struct conn *c) {
  if (c->phase == P_CLOSING) {  // what the client still sends is dropped
    ssize_t n = read(c->ce.fd, rbuf, RBUF);
    if (n == 0 && c->to_cl.len > 0) c->c_eof = 1;  // closed once the answer is out
    else if (n == 0 || (n < 0 && errno != EAGAIN)) return -1;
    return 0;
  }
  if (c->phase != P_IDLE && c->req.open) {  // request body bytes
    ssize_t n = read(c->ce.fd, rbuf, CBUF);
    if (n < 0 && errno == EAGAIN) return 0;
    if (n <= 0) return -1;  // the client left mid-body
    long k = body_take(&c->req, rbuf, n);
    if (k < 0) {
      if (c->phase == P_HEAD) return answer(c, 400, "Bad Request", "invalid_chunked_body", 0), 0;
      return -1;  // a cut: the worker's answer has begun
    }
    if (send_to(&c->ue, &c->to_up, rbuf, k) < 0) return -1;
    memcpy(c->cbuf, rbuf + k, n - k);  // read ahead: the next request
    c->clen = n - k;
    return 0;
  }
  ssize_t n = read(c->ce.fd, c->cbuf + c->clen, CBUF - c->clen);
  if (n < 0 && errno == EAGAIN) return 0;
  if (n < 0) return -1;
  if (n == 0) {
    c->c_eof = 1;
    return c->phase == P_IDLE ? -1 : 0;  // in an exchange: closed once it ends
  }
  c->clen += n;
  return c->phase == P_IDLE ? next_request(c) : 0;
}

static int handle(struct end *e, unsigned events) {
  struct conn *c = e->c;
  int client = e == &c->ce, r = 0;
  if (events & EPOLLOUT) {
    r = flush(e, client ? &c->to_cl : &c->to_up);
    if (r == 0 && client && c->to_cl.len == 0 && c->phase == P_CLOSING) shutdown(c->ce.fd, SHUT_WR);
  }
  if (r == 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    r = client ? client_readable(c) : upstream_readable(c);
  return r;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  tables();
  for (int i = 1; i < argc; i++) {
    if (add_session(argv[i]) < 0) {
      fprintf(stderr, "proxy: %s: expected SESSION=PORT\n", argv[i]);
      return 2;
    }
  }
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) return 1;
  getsockname(ls, (struct sockaddr *)&a, &al);
  printf("ready %d\n", ntohs(a.sin_port));
  fflush(stdout);
  fcntl(ls, F_SETFL, O_NONBLOCK);
  ep = epoll_create1(0);
  struct end listener = {.fd = ls, .mask = (unsigned)-1}, in = {.fd = 0, .mask = (unsigned)-1};
  watch(&listener, EPOLLIN);
  watch(&in, EPOLLIN);
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno != EINTR) return 1;
    ev_count = n;
    for (int i = 0; i < n; i++) {
      ev_next = i + 1;
      struct end *e = evs[i].data.ptr;
      if (e == NULL) continue;  // its connection closed earlier in this batch
      if (e == &in) {  // a line: the counters; closed: stop
        char line[256];
        if (read(0, line, sizeof line) <= 0) return 0;
        printf("{\"forwarded\":%llu,\"fastForwarded\":%llu,\"upstreamConnections\":%llu}\n",
               counters.forwarded, counters.fast_forwarded, counters.upstream_connections);
        fflush(stdout);
        continue;
      }
      if (e == &listener) {
        int fd, one = 1;
        struct sockaddr_in peer;
        socklen_t pl = sizeof peer;
        while ((fd = accept(ls, (struct sockaddr *)&peer, &pl)) >= 0) {
          struct conn *c = malloc(sizeof *c);
          if (c == NULL) {
            close(fd);
            continue;
          }
          memset(c, 0, offsetof(struct conn, cbuf));
          c->ce = (struct end){.fd = fd, .mask = (unsigned)-1, .c = c};
          c->ue = (struct end){.fd = -1, .mask = (unsigned)-1, .c = c};
          inet_ntop(AF_INET, &peer.sin_addr, c->peer, sizeof c->peer);
          fcntl(fd, F_SETFL, O_NONBLOCK);
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          arm(c);
          pl = sizeof peer;
        }
        continue;
      }
      struct conn *c = e->c;
      if (handle(e, evs[i].events) < 0) close_conn(c);
      else arm(c);
    }
  }
}
