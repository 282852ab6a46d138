// Typed errors of the SDK. Every failure of a call surfaces as HerdClientError carrying the
// Connect code the daemon answered with (see DESIGN.md's error table), so callers branch on
// `err.code` (or the stable snake_case `err.codeName`) instead of parsing messages.

import { Code, ConnectError } from "@connectrpc/connect";

export class HerdClientError extends Error {
  override readonly name = "HerdClientError";
  /** The Connect/gRPC status code. */
  readonly code: Code;
  /** The code as snake_case, e.g. "not_found", "resource_exhausted". */
  readonly codeName: string;

  constructor(message: string, code: Code, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.codeName = codeName(code);
  }

  /** Wraps anything a generated client threw; HerdClientErrors pass through unchanged. */
  static from(err: unknown): HerdClientError {
    if (err instanceof HerdClientError) return err;
    const ce = ConnectError.from(err);
    return new HerdClientError(ce.rawMessage, ce.code, { cause: err });
  }
}

/** Code.NotFound -> "not_found". */
export function codeName(code: Code): string {
  const name = Code[code] ?? "unknown";
  return name.replace(/(?<!^)([A-Z])/g, "_$1").toLowerCase();
}
