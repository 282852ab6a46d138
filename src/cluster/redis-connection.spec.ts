import { describe, expect, it } from "vitest";
import { redactRedisUrl } from "./redis-connection.ts";

describe("redactRedisUrl", () => {
  it("hides the password of every redis:// and rediss:// URL in a text, keeps the rest", () => {
    expect(
      redactRedisUrl(
        "connect redis://herd:s3cr%40t@10.0.0.1:6379/0 failed; also rediss://:pw@r.example:6380 and redis://r:6379/1",
      ),
    ).toBe(
      "connect redis://herd:***@10.0.0.1:6379/0 failed; also rediss://:***@r.example:6380 and redis://r:6379/1",
    );
  });
});
