// Vitest global setup: builds the dashboard (scripts/build-ui.mjs → dist/ui) once before any
// spec runs, so specs that open /ui test the current ui/ sources, also when vitest is run
// directly rather than through `npm test`.
// @ts-expect-error: a plain .mjs script without type declarations
import { buildUi } from "../scripts/build-ui.mjs";

export default async function setup(): Promise<void> {
  await buildUi();
}
