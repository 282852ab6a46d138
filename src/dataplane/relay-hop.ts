// The cluster hop as a byte relay (issue 26). A plain client connection on a node that does not
// own the session of its request stops being proxied here: this node dials the owner's data
// plane (the session's signed, verified address from the owner's live record, never unix:),
// writes one preamble line — `HERD-RELAY/1 <credential>` CRLF, a PeerAuth relay credential
// that names this node, the owner, the time, a single-use nonce and the client's address —
// then the client's bytes read and not consumed (from that request's head on, unchanged), and
// from then on moves bytes both ways: on the native tunnel relay when it runs (native-relay.ts),
// else with `pipe`. The owner (fast/fast-connection.ts) verifies the preamble and serves the
// rest of the connection as a client connection of its own, from the client's address, with
// every check its own; a request on it for a session of a third node takes the classic one-hop
// forward (peer-forward.ts), never a relay, so no loop can form.
//
// Invariants: the relayed pair is the client socket (admitted by this node's connection gate,
// as before) and the socket to the owner; closing either destroys the other, and close()
// (the data plane closing) destroys both. Until the owner's socket is connected, the client
// is paused and its bytes stay in its stream; a connection the owner refuses to accept
// answers 502 and nothing else. Single-threaded.

import { connect, type Socket } from "node:net";
import type { SessionInfo } from "../core/index.ts";
import { workerEndpoint } from "../core/index.ts";
import { writeErrorToSocket } from "./http-errors.ts";
import { handOver } from "./native-relay.ts";
import type { ProxyContext } from "./proxy-context.ts";
import { workerFailed } from "./worker-faults.ts";

/** What a relayed connection's first bytes are: not an HTTP request line ("/" is no token). */
export const RELAY_PREFIX = "HERD-RELAY/1 ";
const PREFIX = Buffer.from(RELAY_PREFIX, "latin1");
/** A preamble line's bound (a relay credential is under 300 bytes). */
export const MAX_PREAMBLE_BYTES = 512;

/** The start of a connection's bytes, as the owner reads it. */
export type Preamble =
  | { readonly kind: "none" }
  | { readonly kind: "incomplete" }
  | { readonly kind: "line"; readonly credential: string; readonly rest: Buffer | undefined }
  | { readonly kind: "malformed"; readonly why: string };

const NONE: Preamble = { kind: "none" };
const INCOMPLETE: Preamble = { kind: "incomplete" };

/** Whether `buf` (a connection's first bytes) opens with a relay preamble, and what it says. */
export function readPreamble(buf: Buffer): Preamble {
  const n = Math.min(buf.length, PREFIX.length);
  if (buf.compare(PREFIX, 0, n, 0, n) !== 0) return NONE;
  const end = buf.indexOf("\r\n", PREFIX.length, "latin1");
  if (end < 0 || end + 2 > MAX_PREAMBLE_BYTES) {
    if (buf.length < MAX_PREAMBLE_BYTES) return INCOMPLETE;
    return { kind: "malformed", why: `no line end within ${MAX_PREAMBLE_BYTES} bytes` };
  }
  const credential = buf.toString("latin1", PREFIX.length, end);
  const rest = buf.length > end + 2 ? buf.subarray(end + 2) : undefined;
  return { kind: "line", credential, rest };
}

/** Where a relay hop for `session` dials: its owner's data plane, if it accepts relays (TCP). */
export function relayTarget(session: SessionInfo): { host: string; port: number } | undefined {
  if (session.peer?.relay === undefined) return undefined;
  const endpoint = workerEndpoint(session.workerAddress);
  return "port" in endpoint ? endpoint : undefined;
}

/** The data plane's open relay hops (this node the sender). */
export class RelayHops {
  readonly #open = new Set<Socket>();

  constructor(readonly ctx: ProxyContext) {}

  /**
   * Relays `client` (from `address`) to the owner of `session` at `target` (its relayTarget),
   * `unread` (the client's bytes from a request head on) first. The client socket carries no
   * listener of anyone else's any more.
   */
  start(
    client: Socket,
    address: string,
    unread: Buffer,
    session: SessionInfo,
    target: { host: string; port: number },
  ): void {
    const { ctx } = this;
    const credential = session.peer!.relay!(address);
    const owner = connect({ ...target, noDelay: true });
    ctx.counters.upstreamConnections++;
    this.#open.add(client);
    client.pause();
    let connected = false;
    client.on("error", (err) => ctx.logger.debug({ err }, "data plane: relayed client error"));
    owner.on("error", (err: NodeJS.ErrnoException) => {
      ctx.logger.debug({ err, node: session.node }, "data plane: relay hop to the owner failed");
      // Not reached at all: nothing was sent either way, so the request gets the classic
      // forward's answer (502 naming the node). Later, the client's connection is cut.
      if (connected || client.destroyed) return;
      writeErrorToSocket(client, workerFailed(session, err.code ?? err.message));
    });
    client.once("close", () => {
      this.#open.delete(client);
      owner.destroy();
    });
    owner.once("close", () => {
      // A refused dial answered 502 (above): its client goes once that is flushed.
      if (client.writableEnded) client.destroySoon();
      else client.destroy();
    });
    owner.once("connect", () => {
      connected = true;
      if (client.destroyed) return;
      const preamble = Buffer.from(`${RELAY_PREFIX}${credential}\r\n`, "latin1");
      const relay = ctx.nativeRelay;
      if (relay?.usable && handOver(relay, client, owner, [], [preamble, unread], undefined)) {
        return;
      }
      owner.cork();
      owner.write(preamble);
      owner.write(unread);
      owner.uncork();
      client.pipe(owner);
      owner.pipe(client);
      client.resume();
    });
  }

  /** The data plane closes: every relay goes at once. */
  close(): void {
    for (const client of this.#open) client.destroy();
  }
}
