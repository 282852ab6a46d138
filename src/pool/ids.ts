// Session ids: validated at every edge, generated unguessable when the caller gives none.

import { randomBytes } from "node:crypto";
import { HerdError } from "./errors.ts";

const SESSION_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

export function validateSessionId(id: string, where = "session_id"): string {
  if (!SESSION_ID.test(id)) {
    const shown =
      id.length > 40
        ? `${JSON.stringify(id.slice(0, 40))}… (${id.length} chars)`
        : JSON.stringify(id);
    throw new HerdError(
      "invalid_argument",
      `${where}: ${shown} is not a valid session id (1-128 of A-Z a-z 0-9 . _ : @ -)`,
    );
  }
  return id;
}

/** 128 random bits, URL-safe. */
export function newSessionId(): string {
  return randomBytes(16).toString("base64url");
}

/** 192 random bits, URL-safe. */
export function newToken(): string {
  return randomBytes(24).toString("base64url");
}
