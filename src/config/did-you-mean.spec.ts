import { describe, expect, it } from "vitest";
import { didYouMean } from "./did-you-mean.ts";

const keys = ["min", "max", "ttl", "health_path", "health_interval", "release_on_disconnect"];

describe("didYouMean", () => {
  it.each([
    ["mn", "min"],
    ["mxa", "max"],
    ["healthPath", "health_path"],
    ["health-path", "health_path"],
    ["helth_interval", "health_interval"],
    ["release_on_disconect", "release_on_disconnect"],
  ])("%s → %s", (word, guess) => {
    expect(didYouMean(word, keys)).toBe(guess);
  });

  it("stays silent when nothing is close", () => {
    expect(didYouMean("banana", keys)).toBeUndefined();
    expect(didYouMean("command", keys)).toBeUndefined();
  });
});
