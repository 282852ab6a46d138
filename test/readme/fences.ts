// Fenced code blocks of a Markdown document, as CommonMark reads them: an opening fence of 3+
// backticks or tildes (indented at most 3 spaces), an info string whose first word is the
// language, and a closing fence of the same character at least as long. The README test runs
// what this returns, so an unclosed fence is an error rather than a block silently swallowing
// the rest of the document.

export interface Fence {
  /** First word of the info string, lower-cased; "" for a bare fence. */
  lang: string;
  /** The block's text, without the fences, ending in "\n" unless empty. */
  body: string;
  /** 1-based line of the opening fence, for messages (`README.md:LINE`). */
  line: number;
}

const OPEN = /^ {0,3}(`{3,}|~{3,})(.*)$/;

export function fences(markdown: string, file = "markdown"): Fence[] {
  const lines = markdown.split("\n");
  const found: Fence[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = OPEN.exec(lines[i]!);
    if (!open) continue;
    const [, marker, info] = open as unknown as [string, string, string];
    // A backtick fence's info string may not itself contain a backtick (that is inline code).
    if (marker[0] === "`" && info.includes("`")) continue;
    const close = new RegExp(`^ {0,3}${marker[0]}{${marker.length},}\\s*$`);
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !close.test(lines[i]!); i++) body.push(lines[i]!);
    if (i >= lines.length) {
      throw new Error(`${file}:${start + 1}: code fence ${marker} is never closed`);
    }
    found.push({
      lang: info.trim().split(/\s+/)[0]!.toLowerCase(),
      body: body.length > 0 ? `${body.join("\n")}\n` : "",
      line: start + 1,
    });
  }
  return found;
}
