// Cross-cutting rules for every RPC, in one place: bearer-token auth, translation of thrown
// errors through the one error table, and the per-method/per-code RPC counter.

import { timingSafeEqual } from "node:crypto";
import {
  Code,
  type ConnectError,
  createContextKey,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import type { Caller, Logger, PeerCalls, Tenancy } from "../core/index.ts";
import { HerdError, OPERATOR } from "../core/index.ts";
import { codeName, toConnectError } from "./connect-errors.ts";
import type { ControlPlaneMetrics } from "./metrics.ts";

/** Services anyone may call without a token (load-balancer and orchestrator probes). */
const PUBLIC_SERVICES = new Set(["grpc.health.v1.Health"]);

export function bearerMatches(header: string | null | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? "");
  if (!m) return false;
  const given = Buffer.from(m[1]!.trim());
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/**
 * Who the call is for: the operator (control.token, or no token configured, or a genuine peer
 * node, which forwards what the first node already scoped) or a tenant (its key).
 */
export const CALLER = createContextKey<Caller>(OPERATOR);

/** The verified calling node of a node-to-node call; undefined for everyone else. */
export const PEER_NODE = createContextKey<string | undefined>(undefined);

/**
 * A call carrying a node-to-node credential is a genuine peer's (and then needs no bearer
 * token: the cluster secret authenticates it) or is refused; a forged one never falls back to
 * being an ordinary call.
 */
/** How the control plane checks node-to-node calls: a cluster's PeerCalls over connect's requests. */
export type ControlPeerCalls = PeerCalls<UnaryRequest | StreamRequest>;

export function peerInterceptor(peer: ControlPeerCalls): Interceptor {
  return (next) => async (req) => {
    const credential = req.header.get(peer.header);
    if (credential === null) return next(req);
    const verified = await peer.verify(credential, req);
    if (verified === undefined) {
      throw new HerdError(
        "unauthenticated",
        `${peer.header}: not a genuine node-to-node credential of this cluster (forged, for another node, method or body, stale, or replayed)`,
      );
    }
    const { node } = verified;
    verified.req.contextValues.set(PEER_NODE, node);
    return peer.run(node, () => next(verified.req));
  };
}

/** The bearer token's key, if the header carries one. */
function bearerKey(header: string | null): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(header ?? "")?.[1]?.trim();
}

export function authInterceptor(token: string | undefined, tenancy?: Tenancy): Interceptor {
  return (next) => async (req) => {
    if (
      token !== undefined &&
      !PUBLIC_SERVICES.has(req.service.typeName) &&
      req.contextValues.get(PEER_NODE) === undefined
    ) {
      const header = req.header.get("authorization");
      const key = bearerKey(header);
      const caller = tenancy
        ? key === undefined
          ? undefined
          : tenancy.identify(key)
        : bearerMatches(header, token)
          ? OPERATOR
          : undefined;
      if (caller === undefined) {
        throw new HerdError(
          "unauthenticated",
          req.header.has("authorization")
            ? "the bearer token is wrong"
            : "this herd needs a bearer token: send Authorization: Bearer <token> (HERD_TOKEN for the CLI)",
        );
      }
      req.contextValues.set(CALLER, caller);
    }
    return next(req);
  };
}

/**
 * Outermost interceptor: whatever a handler (or an inner interceptor) throws leaves as a
 * ConnectError with the code from the table, and every finished call is counted.
 */
export function errorAndMetricsInterceptor(
  metrics: ControlPlaneMetrics,
  logger: Logger,
): Interceptor {
  const fail = (method: string, err: unknown): ConnectError => {
    const ce = toConnectError(err);
    // Anything not a HerdError or ConnectError is a bug in herd: say so, with the stack.
    if (ce.cause === err && ce.code === Code.Internal)
      logger.error({ method, err }, "RPC failed unexpectedly");
    metrics.countRpc(method, codeName(ce.code));
    return ce;
  };
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    let res: UnaryResponse | StreamResponse;
    try {
      res = await next(req);
    } catch (err) {
      throw fail(method, err);
    }
    if (!res.stream) {
      metrics.countRpc(method, "ok");
      return res;
    }
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        try {
          yield* messages;
        } catch (err) {
          throw fail(method, err);
        }
        metrics.countRpc(method, "ok");
      })(),
    };
  };
}
