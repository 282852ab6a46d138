// A session as the SDK hands it out: the generated Session plus what a caller needs to send
// traffic through the data plane (proxy URL and headers), and a release that is safe to call
// more than once. Subclasses decide how the session is held (plain acquire or HoldSession).

import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { Session } from "../gen/herd/v1/herd_pb.ts";
import { HerdClientError } from "./errors.ts";

export interface ReleaseOptions {
  /** Kill the worker's process tree even when the pool reuses workers. */
  kill?: boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Carries a tenant key on the data plane (on the control plane it is the bearer token). */
export const KEY_HEADER = "X-Herd-Key";

/** Ends a session on the daemon; NOT_FOUND (already ended) counts as done. */
export type ReleaseFn = (sessionId: string, options: ReleaseOptions) => Promise<void>;

export class HerdSession {
  /** The session as the daemon returned it. */
  readonly info: Session;
  readonly #release: ReleaseFn;
  readonly #key: string | undefined;
  #released: Promise<void> | undefined;

  /** `key`: the client's tenant key, which `headers` carry to the data plane. */
  constructor(info: Session, release: ReleaseFn, key?: string) {
    this.info = info;
    this.#release = release;
    this.#key = key;
  }

  get id(): string {
    return this.info.sessionId;
  }
  get pool(): string {
    return this.info.pool;
  }
  get workerId(): string {
    return this.info.workerId;
  }
  get workerPid(): number {
    return this.info.workerPid;
  }
  /** Session token the data plane may demand ("" when tokens are off). */
  get token(): string {
    return this.info.token;
  }
  /** Base URL of the data plane: send the session's HTTP/WebSocket traffic here. */
  get proxyUrl(): string {
    return this.info.dataPlaneUrl;
  }
  get createdAt(): Date | undefined {
    return this.info.createdAt === undefined ? undefined : timestampDate(this.info.createdAt);
  }
  /**
   * Headers that route a data-plane request to this session and authorize it: its token, if
   * any, and the client's tenant key (`X-Herd-Key`), if it has one.
   */
  get headers(): Record<string, string> {
    const h: Record<string, string> = { "X-Session-ID": this.id };
    if (this.token !== "") h["X-Herd-Token"] = this.token;
    if (this.#key !== undefined) h[KEY_HEADER] = this.#key;
    return h;
  }

  /** Ends the session now. Idempotent: later calls return the first call's outcome. */
  release(options: ReleaseOptions = {}): Promise<void> {
    this.#released ??= this.#release(this.id, options);
    return this.#released;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** A ReleaseFn over the generated client's releaseSession. */
export function releaseIgnoringGone(
  call: (sessionId: string, options: ReleaseOptions) => Promise<unknown>,
): ReleaseFn {
  return async (sessionId, options) => {
    try {
      await call(sessionId, options);
    } catch (err) {
      const e = HerdClientError.from(err);
      if (e.code !== Code.NotFound) throw e;
    }
  };
}
