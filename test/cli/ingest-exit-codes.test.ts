import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { INGEST_EXIT_CODES } from "../../src/errors.ts";
import { RosterdockHome, type CliResult } from "../support/rosterdock-process.ts";
import { selectedBackends } from "../support/backends.ts";
import { startPostgres, type PostgresServer } from "../support/postgres.ts";

/** A small canonical district: 3 schools, 2 teachers, N students, 4 classes, 3 enrollments each. */
function night(students: number): Record<string, string> {
  const users = ["district_user_id,role,first_name,last_name,school_id,teacher_number", "1,teacher,Ana,Núñez,101,T1", "2,teacher,Liam,Smith,102,T2"];
  const enrollments = ["class_id,student_id,start_date,end_date"];
  for (let i = 1; i <= students; i++) {
    users.push(`${1000 + i},student,Zoë,Student ${i},10${1 + (i % 3)},`);
    for (const c of [1, 2, 3]) enrollments.push(`C${((i + c) % 4) + 1},${1000 + i},08/24/2026,`);
  }
  return {
    "schools.csv": "school_id,school_name\n101,Lincoln\n102,Roosevelt\n103,Jefferson\n",
    "users.csv": `${users.join("\n")}\n`,
    "classes.csv": "class_id,class_name,school_id,course_id,teacher_id\nC1,Algebra,101,A,1\nC2,Biology,101,B,1\nC3,Chemistry,102,C,2\nC4,Drama,102,D,2\n",
    "enrollments.csv": `${enrollments.join("\n")}\n`,
  };
}

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function folder(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "rosterdock-ingest-"));
  dirs.push(dir);
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

/** `ingest --json` prints the sync as `sync show ID --json` does, whatever the outcome. */
async function ingested(home: RosterdockHome, result: CliResult): Promise<any> {
  assert.notEqual(result.stdout, "", result.stderr);
  const sync = JSON.parse(result.stdout);
  assert.deepEqual(sync, await home.json(["sync", "show", String(sync.id)]));
  return sync;
}

for (const backend of selectedBackends()) describe(`rosterdock ingest exit codes (${backend.name})`, { skip: backend.skip }, () => {
  it("0 when applied (also when nothing changed), 3 when held, 4 when failed", async () => {
    let postgres: PostgresServer | undefined;
    const env: Record<string, string> = { ROSTERDOCK_LOG_LEVEL: "warn" };
    if (backend.name === "postgres") {
      postgres = await startPostgres();
      env.ROSTERDOCK_DATABASE_URL = await postgres.createDatabase();
    }
    const home = await RosterdockHome.create(env);
    try {
      await home.createDistrict("lincoln");

      const first = await home.cli(["ingest", "lincoln", await folder(night(40)), "--json"]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal((await ingested(home, first)).status, "applied");

      const same = await home.cli(["ingest", "lincoln", await folder(night(40)), "--json"]);
      assert.equal(same.code, 0, same.stderr);
      const unchanged = await ingested(home, same);
      assert.equal(unchanged.status, "applied");
      assert.equal(unchanged.counts.users.created + unchanged.counts.users.updated + unchanged.counts.users.deleted, 0);

      // A second night that deletes most students: a safeguard holds it.
      const truncated = await home.cli(["ingest", "lincoln", await folder(night(5)), "--json"]);
      assert.equal(truncated.code, 3, truncated.stderr);
      assert.equal(INGEST_EXIT_CODES.held, 3);
      const held = await ingested(home, truncated);
      assert.equal(held.status, "held");
      assert.ok(held.summary.holdReasons.some((r: { code: string }) => r.code === "TOO_MANY_DELETES"));

      // A file missing a required column fails the sync.
      const files = night(40);
      files["classes.csv"] = files["classes.csv"]!.replace("teacher_id", "instructor");
      const missing = await home.cli(["ingest", "lincoln", await folder(files), "--json"]);
      assert.equal(missing.code, 4, missing.stderr);
      assert.equal((await ingested(home, missing)).status, "failed");

      // A zip that is not one fails too, and text mode exits the same way.
      const broken = await home.cli(["ingest", "lincoln", await folder({ "roster.zip": Buffer.from("PK\u0003\u0004 this is not a zip") })]);
      assert.equal(broken.code, 4, broken.stderr);
      assert.match(broken.stdout, /^Status\s+failed$/m);
      const heldText = await home.cli(["ingest", "lincoln", await folder(night(5))]);
      assert.equal(heldText.code, 3);
      assert.match(heldText.stdout, /^Held: /m);

      // An error before there is a sync exits by the error catalogue, with nothing on standard output.
      const nowhere = await home.cli(["ingest", "nowhere", await folder(night(1)), "--json"]);
      assert.equal(nowhere.code, 3);
      assert.equal(nowhere.stdout, "");
      assert.match(nowhere.stderr, /\[ERR_DISTRICT_NOT_FOUND\]/);
    } finally {
      await home.remove();
      await postgres?.stop();
    }
  });
});
