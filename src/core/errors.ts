// The errors every room raises. Codes are named after the Connect/gRPC codes they become, so
// the single code table in error-table.ts can map them to Connect and HTTP without guesswork.

export type HerdErrorCode =
  | "invalid_argument"
  | "not_found"
  | "failed_precondition"
  | "resource_exhausted"
  | "deadline_exceeded"
  | "out_of_range"
  | "unavailable"
  | "cancelled"
  | "unauthenticated"
  | "permission_denied"
  | "quota_exceeded"
  | "internal";

export class HerdError extends Error {
  override readonly name = "HerdError";
  /** When a retry may succeed (a quota's refill): the data plane's Retry-After. */
  readonly retryAfterSeconds: number | undefined;
  constructor(
    readonly code: HerdErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message, options);
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

export function isHerdError(err: unknown, code?: HerdErrorCode): err is HerdError {
  return err instanceof HerdError && (code === undefined || err.code === code);
}
