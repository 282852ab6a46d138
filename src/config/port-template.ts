// The `{{.Port}}` template in a pool's `cmd` and `env` values. `{{.Port}}` is its only field:
// anything else in `{{ }}` is a typo that would reach the program verbatim (`{{.Prot}}`), and a
// pool that tells its program the port in no way at all starts workers that never listen
// where herd waits for them. The first is an error, the second a warning (the program may
// read PORT itself, which no config can show).

import { didYouMean } from "./did-you-mean.ts";
import type { RawPool } from "./schema.ts";
import type { PathIssue } from "./zod-issues.ts";

const FIELD = ".Port";
const TEMPLATE = /\{\{\s*(.*?)\s*\}\}/g;
/** `$PORT`, `${PORT}`, `process.env.PORT`, `os.environ["PORT"]`, `%PORT%`: the name, whole. */
const PORT_NAME = /(^|[^A-Za-z0-9_])PORT($|[^A-Za-z0-9_])/;

export function portTemplateIssues(
  name: string,
  raw: Pick<RawPool, "cmd" | "env">,
): { errors: PathIssue[]; warnings: PathIssue[] } {
  const errors: PathIssue[] = [];
  let told = false;
  const values: [PropertyKey[], string][] = [
    ...raw.cmd.map((arg, i): [PropertyKey[], string] => [["workers", name, "cmd", i], arg]),
    ...Object.entries(raw.env ?? {}).map(([k, v]): [PropertyKey[], string] => [
      ["workers", name, "env", k],
      v,
    ]),
  ];
  for (const [path, value] of values) {
    for (const [whole, field] of value.matchAll(TEMPLATE)) {
      if (field === FIELD) {
        told = true;
        continue;
      }
      const guess = didYouMean(field!.replace(/^\./, ""), ["Port"]);
      errors.push({
        path,
        message: `unknown template field ${JSON.stringify(whole)}${guess ? ` (did you mean "{{.Port}}"?)` : ""}: the only field is {{.Port}}, the worker's port`,
      });
    }
  }
  if (raw.cmd.some((arg) => PORT_NAME.test(arg))) told = true;
  const warnings: PathIssue[] = told
    ? []
    : [
        {
          path: ["workers", name, "cmd"],
          message:
            "neither {{.Port}} nor PORT appears in cmd or env: each worker must listen on the port herd gives it (in $PORT and {{.Port}}); fine if the program reads PORT itself",
        },
      ];
  return { errors, warnings };
}
