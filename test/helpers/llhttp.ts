// llhttp as node:http runs it (strict mode, Node's default limits), driven directly through
// `_http_common`'s HTTPParser binding: the oracle the data plane's own head parsers are checked
// against (src/dataplane/http1/*.spec.ts) and measured beside (bench/http1-head.ts).
// Stateless: every call runs a fresh parser over the bytes given and frees it.
import { createRequire } from "node:module";

interface Binding {
  new (): NativeParser;
  REQUEST: number;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}

export interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(buf: Buffer): number | (Error & { code: string; reason: string; bytesParsed: number });
  finish(): undefined | Error;
  close(): void;
  [callback: number]: unknown;
}

const common = createRequire(import.meta.url)("_http_common") as {
  HTTPParser: Binding;
  methods: string[];
};
export const HTTPParser = common.HTTPParser;
const methods = common.methods;

export interface LlMessage {
  method: string | undefined;
  url: string | undefined;
  status: number | undefined;
  reason: string | undefined;
  minor: number;
  major: number;
  rawHeaders: string[];
  upgrade: boolean;
  keepAlive: boolean;
  body: Buffer;
  complete: boolean;
}

export interface LlResult {
  messages: LlMessage[];
  /** Bytes execute() consumed (for an upgrade, up to the end of its head). */
  consumed: number;
  /** llhttp's error code (HPE_*), if it refused the bytes. */
  error: string | undefined;
}

export interface LlOptions {
  /** Responses: the method of the request each response answers (HEAD skips the body, as
   *  node:http's client does; so do 1xx interim responses). */
  requestMethod?: string;
  /** Call finish() after the bytes (the peer closed): ends a read-until-close body. */
  finish?: boolean;
}

/** Runs llhttp over `bytes` as one connection's stream of requests or responses. */
export function llhttp(
  kind: "request" | "response",
  bytes: Buffer,
  options: LlOptions = {},
): LlResult {
  const parser = new HTTPParser();
  parser.initialize(kind === "request" ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, 0, 0);
  const messages: LlMessage[] = [];
  let flushed: string[] = [];
  let flushedUrl = "";
  parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
    flushed = flushed.concat(headers);
    flushedUrl += url;
  };
  parser[HTTPParser.kOnHeadersComplete] = (
    major: number,
    minor: number,
    headers: string[] | undefined,
    method: number | undefined,
    url: string | undefined,
    status: number | undefined,
    reason: string | undefined,
    upgrade: boolean,
    keepAlive: boolean,
  ) => {
    messages.push({
      method: method === undefined ? undefined : methods[method],
      url: kind === "request" ? flushedUrl + (url ?? "") : undefined,
      status,
      reason,
      major,
      minor,
      rawHeaders: flushed.concat(headers ?? []),
      upgrade,
      keepAlive,
      body: Buffer.alloc(0),
      complete: false,
    });
    flushed = [];
    flushedUrl = "";
    if (kind === "response" && status !== undefined && status !== 101 && status < 200) return 1;
    return kind === "response" && options.requestMethod === "HEAD" ? 1 : 0;
  };
  parser[HTTPParser.kOnBody] = (chunk: Buffer) => {
    const m = messages.at(-1)!;
    m.body = Buffer.concat([m.body, chunk]);
  };
  parser[HTTPParser.kOnMessageComplete] = () => {
    // Trailers arrive through kOnHeaders after the head; they are not the next message's.
    flushed = [];
    flushedUrl = "";
    messages.at(-1)!.complete = true;
  };
  try {
    const r = parser.execute(bytes);
    if (typeof r !== "number") return { messages, consumed: r.bytesParsed, error: r.code };
    if (options.finish) {
      const f = parser.finish() as (Error & { code: string }) | undefined;
      if (f !== undefined) return { messages, consumed: r, error: f.code };
    }
    return { messages, consumed: r, error: undefined };
  } finally {
    parser.close();
  }
}
