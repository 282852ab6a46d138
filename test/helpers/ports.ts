// Free TCP ports for tests: the pool's own ephemeral-port picker. The port is only free at the
// moment of the check: a test that binds it later can still lose a race, which is acceptable
// for test servers on loopback.
export { ephemeralPort as freePort } from "../../src/pool/index.ts";
