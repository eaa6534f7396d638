import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { RosterdockHome, ROOT } from "../support/rosterdock-process.ts";

/** The variables an invalid configuration's message names, one per problem line. */
function named(stderr: string): string[] {
  return [...stderr.matchAll(/^\s+(ROSTERDOCK_[A-Z_]+) /gm)].map((m) => m[1]!);
}

describe("configuration, as the real process reports it", () => {
  for (const bad of ["abc", "70000"]) {
    it(`an invalid ROSTERDOCK_HTTP_PORT (${bad}) is the only error, not also the URL derived from it`, async () => {
      const home = await RosterdockHome.create({ ROSTERDOCK_HTTP_PORT: bad });
      try {
        const result = await home.cli(["district", "list"]);
        assert.equal(result.code, 2);
        assert.deepEqual(named(result.stderr), ["ROSTERDOCK_HTTP_PORT"], result.stderr);
        assert.match(result.stderr, bad === "abc" ? /ROSTERDOCK_HTTP_PORT must be a whole number, got "abc"/ : /ROSTERDOCK_HTTP_PORT must be between 0 and 65535, got 70000/);
        assert.doesNotMatch(result.stderr, /PUBLIC_URL/);
        assert.equal(result.stdout, "");
      } finally {
        await home.remove();
      }
    });
  }

  it("a ROSTERDOCK_PUBLIC_URL someone did set is still checked beside a bad port", async () => {
    const home = await RosterdockHome.create({ ROSTERDOCK_HTTP_PORT: "abc", ROSTERDOCK_PUBLIC_URL: "ftp://x" });
    try {
      const result = await home.cli(["district", "list"]);
      assert.equal(result.code, 2);
      assert.deepEqual(named(result.stderr), ["ROSTERDOCK_HTTP_PORT", "ROSTERDOCK_PUBLIC_URL"], result.stderr);
    } finally {
      await home.remove();
    }
  });

  it("an invalid ROSTERDOCK_PUBLIC_HOST is reported alone too", async () => {
    const home = await RosterdockHome.create({ ROSTERDOCK_PUBLIC_HOST: "bad host!" });
    try {
      const result = await home.cli(["district", "list"]);
      assert.equal(result.code, 2);
      assert.deepEqual(named(result.stderr), ["ROSTERDOCK_PUBLIC_HOST"], result.stderr);
    } finally {
      await home.remove();
    }
  });
});

describe("rosterdock --version", () => {
  it("prints the package's version", async () => {
    const { version } = JSON.parse(await readFile(`${ROOT}/package.json`, "utf8")) as { version: string };
    const home = await RosterdockHome.create();
    try {
      for (const flag of ["--version", "-V"]) {
        const result = await home.cli([flag]);
        assert.equal(result.code, 0);
        assert.equal(result.stdout, `${version}\n`);
      }
    } finally {
      await home.remove();
    }
  });
});
