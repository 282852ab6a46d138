// SessionAccess.known's reuse of a connection's last session in a cluster: it is taken only
// while the cluster says the session still routes as it did (ClusterRouting.current: the
// node's own lease valid, the owner live), and a forwarded request only with the connection's
// genuine peer credential and for a session of this node. The directory and the cluster are
// stand-ins that record what is asked of them (the decision is SessionAccess's alone; the
// real ones are exercised end to end by test/cluster).
import { describe, expect, it } from "vitest";
import type { ClusterRouting, Lease, SessionInfo, SessionRoutes } from "../core/index.ts";
import type { Route } from "./route.ts";
import { type LastConnection, SessionAccess } from "./session-access.ts";

function session(peer?: SessionInfo["peer"]): SessionInfo {
  const now = new Date();
  return {
    id: "s1",
    pool: "w",
    workerId: "w-1",
    workerPid: 1,
    workerAddress: "127.0.0.1:1",
    token: "tok",
    createdAt: now,
    lastActiveAt: now,
    connections: 1,
    labels: {},
    ...(peer && { peer }),
  };
}

function route(peer?: string): Route {
  return {
    sessionId: "s1",
    source: "header",
    token: "tok",
    tokenFrom: "header",
    crossOrigin: false,
    pool: undefined,
    key: undefined,
    bearer: undefined,
    peer,
    path: "/",
    cookie: undefined,
  };
}

const lease: Lease = { sessionId: "s1", ended: new AbortController().signal, close() {} };

function setup(known: SessionInfo) {
  const asked = { lookups: 0, current: 0, verified: [] as string[] };
  const state = { routes: true, genuine: "good" };
  const cluster: ClusterRouting = {
    find: async () => undefined,
    verifyPeer(credential) {
      asked.verified.push(credential);
      return credential === state.genuine;
    },
    current() {
      asked.current++;
      return state.routes;
    },
  };
  const directory = {
    lookup() {
      asked.lookups++;
      return known;
    },
    touch() {},
  } as unknown as SessionRoutes;
  const access = new SessionAccess(directory, {
    autoAcquire: false,
    tokens: true,
    defaultPool: undefined,
    cluster,
  });
  const last: LastConnection = { session: known, lease, touchedAt: Date.now() };
  const take = () => lease;
  return { access, state, asked, last, take };
}

describe("SessionAccess.known in a cluster", () => {
  it("reuses the last session while it still routes, and looks it up again once it does not", () => {
    const { access, state, asked, last, take } = setup(session());
    expect(access.known(route(), take, {}, last)).toBe(last);
    expect(asked).toMatchObject({ lookups: 0, current: 1 });
    state.routes = false; // e.g. this node's lease lapsed
    expect(access.known(route(), take, {}, last)).not.toBe(last);
    expect(asked.lookups).toBe(1);
  });

  it("a forwarded request is reused only with a genuine credential, for a session of this node", () => {
    const local = setup(session());
    expect(local.access.known(route("good"), local.take, {}, local.last)).toBe(local.last);
    expect(local.asked.verified).toEqual(["good"]);
    // A wrong credential after good ones: refused (the lookup path refuses it too).
    expect(local.access.known(route("forged"), local.take, {}, local.last)).toBeUndefined();
    expect(local.asked.verified).toEqual(["good", "forged", "forged"]);
    // The last session was another node's: a forward is never served from it.
    const remote = setup(session({ credential: () => "d3~" }));
    expect(remote.access.known(route("good"), remote.take, {}, remote.last)).toBeUndefined();
    expect(remote.asked).toMatchObject({ lookups: 1, current: 0, verified: ["good"] });
  });

  it("without a cluster a forwarded request is never reused", () => {
    const { last, take } = setup(session());
    const directory = { lookup: () => session(), touch() {} } as unknown as SessionRoutes;
    const single = new SessionAccess(directory, {
      autoAcquire: false,
      tokens: true,
      defaultPool: undefined,
      cluster: undefined,
    });
    expect(single.known(route(), take, {}, last)).toBe(last);
    expect(single.known(route("good"), take, {}, last)).toBeUndefined();
  });
});
