// A bounded ring of the last lines a worker wrote. Memory stays flat whatever the worker prints:
// at most `maxLines` lines of at most `maxLineLength` characters each, plus one partial line.

export class LineBuffer {
  private readonly lines: string[] = [];
  private partial = "";

  constructor(
    private readonly maxLines = 200,
    private readonly maxLineLength = 4_096,
  ) {}

  /** Appends a chunk and returns the complete lines it finished (for readiness matching). */
  push(chunk: string): string[] {
    const parts = (this.partial + chunk).split("\n");
    this.partial = (parts.pop() ?? "").slice(-this.maxLineLength);
    const done = parts.map((line) => line.replace(/\r$/, "").slice(0, this.maxLineLength));
    for (const line of done) this.lines.push(line);
    if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
    return done;
  }

  tail(count: number): string[] {
    const all = this.partial ? [...this.lines, this.partial] : this.lines;
    return all.slice(-count);
  }
}
