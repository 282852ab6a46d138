// Calls to another node's control plane (herd.v1.HerdService over Connect, HTTP/1.1), each
// carrying a one-call credential (peer-calls.ts) so the owner serves it locally and never
// forwards again.
// Errors come back as HerdError with the owner's code and message, so a caller cannot tell a
// forwarded call from a local one. One client per peer address, made on first use.

import { durationFromMs, timestampDate } from "@bufbuild/protobuf/wkt";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { HerdService, type Session } from "../../gen/herd/v1/herd_pb.ts";
import type { AcquireOptions, SessionInfo } from "../core/index.ts";
import { HerdError, type HerdErrorCode, PEER_TENANT_HEADER } from "../core/index.ts";
import type { PeerAuth } from "./peer-auth.ts";
import { peerCredentials } from "./peer-calls.ts";
import type { RemoteSession } from "./session-codec.ts";

function herdCode(code: Code): HerdErrorCode {
  const name = Code[code]!.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
  const known: HerdErrorCode[] = [
    "permission_denied",
    "invalid_argument",
    "not_found",
    "failed_precondition",
    "resource_exhausted",
    "deadline_exceeded",
    "out_of_range",
    "unavailable",
    "cancelled",
    "unauthenticated",
  ];
  return (known as string[]).includes(name) ? (name as HerdErrorCode) : "unavailable";
}

export class PeerClient {
  private readonly clients = new Map<string, Client<typeof HerdService>>();

  constructor(private readonly auth: PeerAuth) {}

  /** The client for `node`'s control plane at `control` (credentials are bound to `node`). */
  private client(node: string, control: string): Client<typeof HerdService> {
    const key = `${node} ${control}`;
    let c = this.clients.get(key);
    if (!c) {
      const transport = createConnectTransport({
        baseUrl: `http://${control}`,
        httpVersion: "1.1",
        interceptors: [peerCredentials(this.auth, node)],
      });
      c = createClient(HerdService, transport);
      this.clients.set(key, c);
    }
    return c;
  }

  private async call<T>(
    node: string,
    control: string,
    fn: (c: Client<typeof HerdService>) => Promise<T>,
  ): Promise<T> {
    try {
      return await fn(this.client(node, control));
    } catch (err) {
      const ce = ConnectError.from(err);
      const code = herdCode(ce.code);
      throw new HerdError(
        code,
        ce.code === Code.Unavailable && !ce.rawMessage.includes("herd")
          ? `cluster node ${node} (${control}) is unreachable: ${ce.rawMessage}`
          : ce.rawMessage,
        { cause: err },
      );
    }
  }

  async acquire(
    owner: { node: string; control: string; data: string },
    pool: string,
    id: string,
    opts: AcquireOptions,
  ): Promise<RemoteSession> {
    const res = await this.call(owner.node, owner.control, (c) =>
      c.acquireSession(
        {
          pool,
          sessionId: id,
          labels: opts.labels ?? {},
          ...(opts.waitMs !== undefined && { wait: durationFromMs(opts.waitMs) }),
        },
        {
          signal: opts.signal,
          ...(opts.tenant !== undefined && { headers: { [PEER_TENANT_HEADER]: opts.tenant } }),
        },
      ),
    );
    return { info: fromProto(res.session!, owner.node), data: owner.data, control: owner.control };
  }

  /**
   * Holds `owner`'s session on its node for as long as the returned lease is open: a HoldSession
   * stream to the owner, renewed well within the owner's grace. Closing the lease ends the
   * stream (the owner's dead-man's switch then ends the session, as the holder here is gone);
   * the stream ending for any other reason (the session ended, the owner died) aborts `ended`.
   */
  hold(owner: RemoteSession): { ended: AbortSignal; close(): void } {
    const node = owner.info.node ?? "";
    const stop = new AbortController();
    const ended = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const client = this.client(node, owner.control);
    (async () => {
      // attach_only: the owner holds the live session (restarting its idle clock) or answers
      // NOT_FOUND; a hold must never start a new session on the owner.
      const stream = client.holdSession(
        { pool: owner.info.pool, sessionId: owner.info.id, attachOnly: true },
        { signal: stop.signal },
      );
      for await (const msg of stream) {
        if (timer === undefined && msg.heartbeatGrace) {
          const graceMs =
            Number(msg.heartbeatGrace.seconds) * 1000 + msg.heartbeatGrace.nanos / 1e6;
          if (graceMs > 0) {
            timer = setInterval(
              () => {
                client
                  .renewHold({ sessionId: owner.info.id, holdId: msg.holdId })
                  .catch(() => stop.abort());
              },
              Math.max(10, graceMs / 3),
            );
          }
        }
      }
    })()
      .catch(() => {})
      .finally(() => {
        clearInterval(timer);
        ended.abort({ kind: "lost", reason: `hold on node ${node} ended` });
      });
    return {
      ended: ended.signal,
      close: () => stop.abort(),
    };
  }

  async release(owner: RemoteSession, kill: boolean | undefined): Promise<SessionInfo> {
    const node = owner.info.node ?? "";
    const res = await this.call(node, owner.control, (c) =>
      c.releaseSession({ sessionId: owner.info.id, kill: kill ?? false }),
    );
    return fromProto(res.session!, node);
  }
}

function fromProto(s: Session, node: string): SessionInfo {
  return {
    id: s.sessionId,
    pool: s.pool,
    workerId: s.workerId,
    workerPid: s.workerPid,
    workerAddress: "",
    token: s.token,
    createdAt: s.createdAt ? timestampDate(s.createdAt) : new Date(),
    lastActiveAt: s.lastActiveAt ? timestampDate(s.lastActiveAt) : new Date(),
    ...(s.expiresAt && { expiresAt: timestampDate(s.expiresAt) }),
    connections: s.connections,
    labels: { ...s.labels },
    ...(s.tenant !== "" && { tenant: s.tenant }),
    node: s.node || node,
  };
}
