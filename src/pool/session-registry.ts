// Where live session ids are recorded, behind a small interface so a shared store can replace
// the in-memory map when several herd nodes serve one id space. The pool writes an entry when a
// session is bound and deletes it when the session ends; `get` answers "is this id live, and
// where?". Calls are synchronous: a shared implementation keeps a local write-through cache.

import type { SessionInfo } from "../core/index.ts";

export interface SessionRegistry {
  get(id: string): SessionInfo | undefined;
  set(id: string, session: SessionInfo): void;
  delete(id: string): void;
  size(): number;
}

export class InMemorySessionRegistry implements SessionRegistry {
  private readonly entries = new Map<string, SessionInfo>();

  get(id: string): SessionInfo | undefined {
    return this.entries.get(id);
  }

  set(id: string, session: SessionInfo): void {
    this.entries.set(id, session);
  }

  delete(id: string): void {
    this.entries.delete(id);
  }

  size(): number {
    return this.entries.size;
  }
}
