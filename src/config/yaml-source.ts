// A parsed herd.yaml that can say where things are: maps a config path (as zod reports it,
// e.g. ["workers", "browser", "cmd", 2]) to the line and column of the YAML node behind it.

import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
} from "yaml";

export type ConfigPath = readonly PropertyKey[];

export interface Position {
  line: number;
  col: number;
}

export interface YamlProblem extends Position {
  message: string;
}

export class YamlSource {
  private constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  static parse(text: string): { source: YamlSource; problems: YamlProblem[] } {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
    const source = new YamlSource(doc, lines);
    const problems = doc.errors.map((e) => ({
      ...source.position(e.pos[0]),
      // The parser's messages end with a source excerpt after a colon-newline; keep line one.
      message: e.message.split("\n")[0]!.replace(/:$/, ""),
    }));
    return { source, problems };
  }

  toJS(): unknown {
    return this.doc.toJS({ maxAliasCount: 100 });
  }

  /**
   * Where `path` is written. `at: "key"` points at a map key instead of its value (unknown
   * keys). A path that does not exist (a missing required key) resolves to the key of the
   * deepest map that does, so the message lands on the block that lacks it.
   */
  locate(path: ConfigPath, at: "key" | "value" = "value"): Position {
    let node: unknown = this.doc.contents;
    let ownerKey: Node | undefined;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      if (isAlias(node)) node = node.resolve(this.doc);
      let next: unknown;
      if (isMap(node)) {
        const pair = node.items.find((p: Pair) => keyText(p.key) === String(seg));
        if (pair === undefined) break;
        if (i === path.length - 1 && at === "key") return this.nodePosition(pair.key);
        ownerKey = pair.key as Node;
        // `min:` with no value has an empty null node, or none at all: point at the key.
        const range = (pair.value as Node | null)?.range;
        next = range && range[0] < range[1] ? pair.value : pair.key;
      } else if (isSeq(node) && typeof seg === "number") {
        next = node.items[seg];
        if (next === undefined) break;
        ownerKey = undefined;
      } else {
        break;
      }
      node = next;
      if (i === path.length - 1) return this.nodePosition(node);
    }
    if (path.length === 0) return this.nodePosition(node);
    return this.nodePosition(ownerKey ?? node);
  }

  private nodePosition(node: unknown): Position {
    const range = isPair(node) ? undefined : (node as Node | null | undefined)?.range;
    return this.position(range ? range[0] : 0);
  }

  private position(offset: number): Position {
    const p = this.lines.linePos(offset);
    // LineCounter reports line 0 before its first newline (one-line files).
    return p.line === 0 ? { line: 1, col: offset + 1 } : p;
  }
}

function keyText(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  return String(key);
}
