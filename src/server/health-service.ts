// grpc.health.v1: SERVING while the daemon runs, NOT_SERVING once shutdown begins (Watch
// streams see the change and then end). A restart's hand-over is no shutdown: the service goes
// on in the successor, so the old process still answers SERVING for the calls it finishes and
// its Watch streams just end (the client reconnects, to the successor). Known services: ""
// (the server) and each served one.

import type { ServiceImpl } from "@connectrpc/connect";
import {
  type Health,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/grpc/health/v1/health_pb.ts";
import { HerdError } from "../core/index.ts";

export function healthService(
  serviceNames: readonly string[],
  shutdown: AbortSignal,
  handedOver: () => boolean,
): ServiceImpl<typeof Health> {
  const known = new Set(["", ...serviceNames]);
  const stopping = () => shutdown.aborted && !handedOver();
  const status = () => (stopping() ? Status.NOT_SERVING : Status.SERVING);
  return {
    async check(req) {
      if (!known.has(req.service)) {
        throw new HerdError(
          "not_found",
          `unknown service ${JSON.stringify(req.service.slice(0, 200))}`,
        );
      }
      return { status: status() };
    },
    async *watch(req, ctx) {
      if (!known.has(req.service)) {
        yield { status: Status.SERVICE_UNKNOWN };
        return;
      }
      yield { status: status() };
      if (shutdown.aborted) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          shutdown.removeEventListener("abort", done);
          ctx.signal.removeEventListener("abort", done);
          resolve();
        };
        shutdown.addEventListener("abort", done);
        ctx.signal.addEventListener("abort", done);
        if (ctx.signal.aborted) done();
      });
      if (stopping()) yield { status: Status.NOT_SERVING };
    },
    async list() {
      const statuses: Record<string, { status: Status }> = {};
      for (const name of known) statuses[name] = { status: status() };
      return { statuses };
    },
  };
}
