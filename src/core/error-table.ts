// The one error table of herd: every HerdErrorCode, the Connect/gRPC code the control plane
// answers with, and the HTTP status the data plane answers with. Handlers never pick codes
// themselves; they throw HerdError and translate through here.

import { Code } from "@connectrpc/connect";
import type { HerdErrorCode } from "./errors.ts";

export interface ErrorMapping {
  connect: Code;
  http: number;
}

export const errorTable: Readonly<Record<HerdErrorCode, ErrorMapping>> = {
  invalid_argument: { connect: Code.InvalidArgument, http: 400 },
  unauthenticated: { connect: Code.Unauthenticated, http: 401 },
  permission_denied: { connect: Code.PermissionDenied, http: 403 },
  not_found: { connect: Code.NotFound, http: 404 },
  failed_precondition: { connect: Code.FailedPrecondition, http: 409 },
  out_of_range: { connect: Code.OutOfRange, http: 400 },
  cancelled: { connect: Code.Canceled, http: 499 },
  resource_exhausted: { connect: Code.ResourceExhausted, http: 503 },
  /** A tenant over its max_sessions or acquire_rate: the caller's limit, not the pool's. */
  quota_exceeded: { connect: Code.ResourceExhausted, http: 429 },
  unavailable: { connect: Code.Unavailable, http: 503 },
  deadline_exceeded: { connect: Code.DeadlineExceeded, http: 504 },
  internal: { connect: Code.Internal, http: 500 },
};
