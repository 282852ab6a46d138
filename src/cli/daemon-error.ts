// A failed call to the daemon, as both clients report it, and the one line the CLI prints for
// it. No Connect import here: the one-call commands never load the Connect runtime.

export class DaemonCallError extends Error {
  override readonly name = "DaemonCallError";
  constructor(
    /** The Connect code's name as Connect's Code enum spells it, e.g. "NotFound". */
    readonly code: string,
    /** The daemon's own message, without the code. */
    readonly rawMessage: string,
    /** The socket error under an Unavailable call, e.g. "ECONNREFUSED". */
    readonly errno?: string,
  ) {
    super(`${rawMessage} (${code})`);
  }
}

/** One line that says what went wrong talking to the daemon and what to do about it. */
export function describeDaemonError(err: DaemonCallError, where: string): string {
  if (err.errno === "ECONNREFUSED" || err.errno === "ENOENT") {
    return `cannot reach the herd daemon at ${where} (${err.errno}): is \`herd serve\` running there? Point --addr or HERD_ADDR at it`;
  }
  if (err.code === "Unauthenticated") {
    return `the daemon at ${where} refused the call: ${err.rawMessage}. Pass --token or set HERD_TOKEN`;
  }
  if (err.code === "Unavailable" && err.errno) {
    return `cannot reach the herd daemon at ${where}: ${err.errno}`;
  }
  return err.message;
}
