// Public surface of the CLI room for the rest of the repository; the program itself starts at
// main.ts (bin/herd).

export { DEFAULT_ADDR } from "./daemon-address.ts";
