import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Jail } from "../../src/sftp/jail.ts";

describe("Jail", () => {
  const jail = new Jail("/srv/rosterdock/districts/7/home");

  it("resolves every client path against the district's own top folder", () => {
    assert.equal(jail.virtual(""), "/");
    assert.equal(jail.virtual("."), "/");
    assert.equal(jail.virtual("students.csv"), "/students.csv");
    assert.equal(jail.virtual("/in/../students.csv"), "/students.csv");
    assert.equal(jail.virtual("../../../etc/passwd"), "/etc/passwd");
    assert.equal(jail.virtual("..\\..\\x.csv"), "/x.csv");
    assert.equal(jail.real("/../../etc/passwd"), "/srv/rosterdock/districts/7/home/etc/passwd");
    assert.equal(jail.real("/"), "/srv/rosterdock/districts/7/home");
  });

  it("refuses NUL bytes in paths", () => {
    assert.throws(() => jail.virtual("a\0b"), { code: "ERR_PATH_OUTSIDE_JAIL" });
  });

  it("refuses a link on disk that points outside", async () => {
    const root = await mkdtemp(join(tmpdir(), "jail-"));
    const home = join(root, "home");
    await mkdir(home);
    await writeFile(join(root, "secret"), "x");
    await symlink(join(root, "secret"), join(home, "link"));
    await symlink(root, join(home, "dirlink"));
    const j = new Jail(home);
    await assert.rejects(j.assertInside(j.real("/link")), { code: "ERR_PATH_OUTSIDE_JAIL" });
    await assert.rejects(j.assertInside(j.real("/dirlink/new.csv")), { code: "ERR_PATH_OUTSIDE_JAIL" });
    await j.assertInside(j.real("/missing/deeper/new.csv"));
    await j.assertInside(j.real("/"));
  });
});
