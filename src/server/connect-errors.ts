// The only place the control plane turns failures into Connect errors: HerdErrors through the
// one table in src/core/error-table.ts, anything else as INTERNAL with its detail kept out of
// the reply.

import { Code, ConnectError } from "@connectrpc/connect";
import { errorTable, isHerdError } from "../core/index.ts";

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) {
    // connect-es reports undecodable protobuf as INTERNAL; it is the caller's bad input. (For
    // unary calls it decodes before any interceptor runs, so only streams can be fixed here.)
    if (err.code === Code.Internal && err.rawMessage.startsWith("parse binary: ")) {
      return new ConnectError(err.rawMessage, Code.InvalidArgument);
    }
    return err;
  }
  if (isHerdError(err)) return new ConnectError(err.message, errorTable[err.code].connect);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

/** "not_found" for Code.NotFound: the label value for metrics and logs. */
export function codeName(code: Code | undefined): string {
  if (code === undefined) return "ok";
  return Code[code]!.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
