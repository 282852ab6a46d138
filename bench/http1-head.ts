// Micro-benchmark of the data plane's strict head parsers (src/dataplane/http1/) beside
// llhttp as node:http drives it (`_http_common`'s HTTPParser, one parser reused across
// keep-alive messages, the same JS callbacks building the header array): CPU ns per parsed
// head, medians of interleaved rounds, the load average printed beside them. The baseline is only
// the parse; node:http adds its IncomingMessage and stream objects on top of it.
//
// Standalone: `node --import tsx bench/http1-head.ts [--quick]`

import { parseRequestHead, parseResponseHead } from "../src/dataplane/index.ts";
import { HTTPParser, type NativeParser } from "../test/helpers/llhttp.ts";
import { type BenchRow, compared, formatTable, load1, median } from "./report.ts";

const MAX = 16 * 1024;

/** A typical API request (~200 bytes, 6 headers), a browser navigation, a worker's answer. */
const HEADS = {
  "request, curl-like 6 headers":
    "GET /api/v1/items?page=2 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nX-Session-ID: user-42\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n",
  "request, Chrome navigation 16 headers":
    'GET /s/abc123/index.html HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\nsec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"\r\nsec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: "Linux"\r\nUpgrade-Insecure-Requests: 1\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\nSec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\nSec-Fetch-Dest: document\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\nCookie: herd_session=abc123; theme=dark\r\n\r\n',
  "response, node:http 5 headers":
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Wed, 25 Nov 2026 16:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\n\r\n",
};

/** The same messages through one llhttp parser, as a keep-alive connection feeds it. */
function llhttpParser(kind: "request" | "response"): NativeParser {
  const parser = new HTTPParser();
  parser.initialize(kind === "request" ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, 0, 0);
  parser[HTTPParser.kOnHeadersComplete] = () => 0;
  parser[HTTPParser.kOnHeaders] = () => {};
  parser[HTTPParser.kOnBody] = () => {};
  parser[HTTPParser.kOnMessageComplete] = () => {};
  return parser;
}

/** CPU time (user + system) per call, ns: on a shared, loaded machine wall time would count
 *  the time this process waited for a core. */
function nsPer(n: number, run: () => void): number {
  const started = process.cpuUsage();
  for (let i = 0; i < n; i++) run();
  const used = process.cpuUsage(started);
  return ((used.user + used.system) * 1000) / n;
}

export function benchHttp1Head(opts: { quick?: boolean } = {}): BenchRow[] {
  const n = opts.quick ? 50_000 : 300_000;
  const rounds = opts.quick ? 3 : 7;
  const rows: BenchRow[] = [];
  for (const [name, text] of Object.entries(HEADS)) {
    const isResponse = name.startsWith("response");
    const head = Buffer.from(text, "latin1");
    // llhttp must see the whole message (the response's 5-byte body) to be ready for the next.
    const llBytes = isResponse ? Buffer.from(`${text}hello`, "latin1") : head;
    const parser = llhttpParser(isResponse ? "response" : "request");
    let check = 0;
    const ours = isResponse
      ? () => {
          const r = parseResponseHead(head, 0, MAX, "GET");
          if (typeof r === "object") check += r.rawHeaders.length;
        }
      : () => {
          const r = parseRequestHead(head, 0, MAX);
          if (typeof r === "object") check += r.rawHeaders.length;
        };
    const theirs = () => {
      parser.execute(llBytes);
    };
    nsPer(n / 5, ours);
    nsPer(n / 5, theirs);
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < rounds; r++) {
      a.push(nsPer(n, ours));
      b.push(nsPer(n, theirs));
    }
    parser.close();
    if (check === 0) throw new Error(`${name}: our parser did not accept the head`);
    rows.push(compared(`${name} (${head.length} B)`, median(a), "ns/parse", median(b)));
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = benchHttp1Head({ quick: process.argv.includes("--quick") });
  console.log(formatTable(rows));
  console.log(`baseline: llhttp via _http_common HTTPParser; load average (1 min) ${load1()}`);
}
