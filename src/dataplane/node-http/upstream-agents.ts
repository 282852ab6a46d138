// One keep-alive http.Agent per worker, so requests reuse upstream connections instead of
// paying a TCP handshake each (http-proxy without an agent sends Connection: close).
//
// Invariant: an agent exists only for a worker not yet reported stopped; when the directory
// reports worker_stopped or session_lost for a worker, its agent and every socket in it are
// destroyed. A worker id is never reused, so a late `agentFor` after the stop event only
// creates an agent whose sockets fail and are retried or answered 502 — and that agent is
// dropped at the next event naming the worker or at close. Single-threaded: the event loop
// below and callers of agentFor interleave only at awaits.
//
// A session another cluster node owns is reached through that node's data plane, which counts
// each of our upstream connections as one connection of the session. So there the upstream
// connection mirrors the client's: one agent per client socket (at most one socket), gone
// when the client's connection closes — the owner then sees exactly the client's connections
// open and close (leases, release_on_disconnect), never a pooled socket outliving them.

import { Agent } from "node:http";
import type { EventSubscription, Logger, SessionInfo, SessionRoutes } from "../../core/index.ts";

export class UpstreamAgents {
  readonly #agents = new Map<string, Agent>();
  readonly #perClient = new WeakMap<object, Agent>();
  readonly #directory: SessionRoutes;
  readonly #logger: Logger;
  #subscription: EventSubscription | undefined;
  #closed = false;

  constructor(directory: SessionRoutes, logger: Logger) {
    this.#directory = directory;
    this.#logger = logger;
    void this.#watch();
  }

  /** `client`: the client's socket (the agent of a session another node owns follows it). */
  agentFor(session: SessionInfo, client?: NodeJS.EventEmitter): Agent {
    if (session.peer !== undefined && client !== undefined) return this.#clientAgent(client);
    let agent = this.#agents.get(session.workerId);
    if (agent === undefined) {
      agent = new Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: "lifo" });
      this.#agents.set(session.workerId, agent);
    }
    return agent;
  }

  #clientAgent(client: NodeJS.EventEmitter): Agent {
    let agent = this.#perClient.get(client);
    if (agent === undefined) {
      const created = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
      this.#perClient.set(client, created);
      client.once("close", () => created.destroy());
      agent = created;
    }
    return agent;
  }

  #drop(workerId: string): void {
    const agent = this.#agents.get(workerId);
    if (agent === undefined) return;
    this.#agents.delete(workerId);
    agent.destroy();
  }

  /** Follows worker lifecycle events; a subscriber cut off for lagging resubscribes. */
  async #watch(): Promise<void> {
    while (!this.#closed) {
      const sinceRevision = this.#directory.revision();
      this.#subscription = this.#directory.subscribe({ sinceRevision });
      try {
        for await (const event of this.#subscription) {
          if (
            (event.type === "worker_stopped" || event.type === "session_lost") &&
            event.workerId !== undefined
          ) {
            this.#drop(event.workerId);
          }
        }
        return; // the directory closed the stream: it is shutting down
      } catch (err) {
        if (this.#closed) return;
        this.#logger.warn({ err }, "data plane: event subscription cut off; resubscribing");
      }
    }
  }

  close(): void {
    this.#closed = true;
    this.#subscription?.close();
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }
}
