import assert from "node:assert/strict";
import { it } from "node:test";
import { sql } from "../../src/db/kysely.ts";
import type { Rosterdock } from "../../src/service.ts";
import { brief, forEachBackend, newDistrict, snapshot, startRosterdock, writeFiles } from "./helpers.ts";
import { selectedBackends } from "../support/backends.ts";

const STUDENTS = 400;

/** A canonical night of one school; `extraEnrollments` appended to its enrollments file. */
function night(extraEnrollments: (rows: string[]) => string[] = () => []): Promise<string> {
  const lines = (header: string, rows: Iterable<string>) => [header, ...rows].join("\n") + "\n";
  const students = Array.from({ length: STUDENTS }, (_, i) => 5000 + i);
  const enrollments = students.flatMap((id, s) => [`C${(s % 20) + 1},${id},2026-08-24,2027-06-11`, `C${((s + 7) % 20) + 1},${id},2026-08-24,2027-06-11`]);
  return writeFiles({
    "schools.csv": lines("school_id,school_name", ["101,Lincoln High"]),
    "courses.csv": lines("course_id,course_name", ["ALG,Algebra"]),
    "users.csv": lines("district_user_id,role,first_name,last_name,school_id", ["1,teacher,Ada,Teach,101", ...students.map((id) => `${id},student,Student,Number ${id},101`)]),
    "classes.csv": lines(
      "class_id,class_name,school_id,course_id,teacher_id",
      Array.from({ length: 20 }, (_, i) => `C${i + 1},Algebra ${i + 1},101,ALG,1`),
    ),
    "enrollments.csv": lines("class_id,student_id,start_date,end_date", [...enrollments, ...extraEnrollments(enrollments)]),
  });
}

/** The district partitions of the roster tables, and any table a sync keyed as a partition-to-be and left behind. */
async function partitions(rd: Rosterdock): Promise<{ attached: string[]; leftOver: string[] }> {
  const attached = await sql<{ name: string }>`SELECT c.relname::text || ' ' || pg_get_expr(c.relpartbound, c.oid) AS name
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent AND p.relkind = 'p' ORDER BY 1`.execute(rd.database.db);
  const leftOver = await sql<{ name: string }>`SELECT relname::text AS name FROM pg_class
    WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND relname LIKE 'roster\\_%' AND NOT relispartition
      AND relname ~ '_(sync\\d+|d\\d+_new)$' ORDER BY 1`.execute(rd.database.db);
  return { attached: attached.rows.map((r) => r.name), leftOver: leftOver.rows.map((r) => r.name) };
}

async function districtId(rd: Rosterdock, slug: string): Promise<number> {
  return Number((await rd.database.db.selectFrom("districts").select("id").where("slug", "=", slug).executeTakeFirstOrThrow()).id);
}

const ofDistrict = (id: number) => [`roster_classes_d${id} FOR VALUES IN (${id})`, `roster_enrollments_d${id} FOR VALUES IN (${id})`, `roster_users_d${id} FOR VALUES IN (${id})`];

// PostgreSQL only: there a district's first load is keyed as its own partition of each big roster
// table and attached by the apply (src/sync/postgres-engine-sql.ts); SQLite has one table each.
forEachBackend(
  selectedBackends().filter((b) => b.name === "postgres"),
  "a district's first load becomes its partition of the roster tables",
  () => {
    it("attaches the keyed first load, repeats and all; a failed first load leaves nothing; a load after a rollback goes into the emptied partition", async () => {
      const rd = await startRosterdock();
      const plain = await newDistrict(rd);
      assert.equal((await rd.syncs.ingest(plain, [await night()])).status, "applied");
      const expected = await snapshot(rd, plain);
      const plainId = await districtId(rd, plain);
      assert.deepEqual(await partitions(rd), { attached: ofDistrict(plainId), leftOver: [] });

      // Two repeated enrollment rows: found when the partition-to-be is keyed, reported, dropped, keyed again.
      const repeats = await newDistrict(rd);
      const first = await rd.syncs.ingest(repeats, [await night((rows) => rows.slice(0, 2))]);
      assert.equal(first.status, "applied");
      const issues = brief((await rd.syncs.show(first.syncId)).issues);
      assert.equal(issues.filter((i) => i.startsWith("warning DUPLICATE_KEY")).length, 2, issues.join("\n"));
      assert.deepEqual(await snapshot(rd, repeats), expected);
      const repeatsId = await districtId(rd, repeats);
      assert.deepEqual(await partitions(rd), { attached: [...ofDistrict(plainId), ...ofDistrict(repeatsId)].sort(), leftOver: [] });

      // Every enrollment repeated: the sync fails; no partition, nothing left behind, nothing live.
      const failing = await newDistrict(rd);
      const failed = await rd.syncs.ingest(failing, [await night((rows) => rows)]);
      assert.equal(failed.status, "failed");
      assert.deepEqual(await partitions(rd), { attached: [...ofDistrict(plainId), ...ofDistrict(repeatsId)].sort(), leftOver: [] });
      assert.ok(Object.values(await snapshot(rd, failing)).every((rows) => rows.length === 0));

      // Rolled back, the first load leaves its partitions empty; the next load fills them through the table.
      await rd.syncs.rollback(first.syncId, "test");
      assert.ok(Object.values(await snapshot(rd, repeats)).every((rows) => rows.length === 0));
      const again = await rd.syncs.ingest(repeats, [await night()]);
      assert.equal(again.status, "applied");
      assert.deepEqual(again.counts.enrollments, { created: STUDENTS * 2, updated: 0, deleted: 0, unchanged: 0 });
      assert.deepEqual(await snapshot(rd, repeats), expected);
      assert.deepEqual(await partitions(rd), { attached: [...ofDistrict(plainId), ...ofDistrict(repeatsId)].sort(), leftOver: [] });
      // The other district's roster came through untouched, read through the shared tables.
      assert.deepEqual(await snapshot(rd, plain), expected);
      assert.deepEqual((await rd.syncs.doctor(repeats)).dangling, []);
    });

    it("drops the partitions-to-be a dead node left for syncs that are over, and keeps those of a sync still waiting", async () => {
      const rd = await startRosterdock();
      const failing = await newDistrict(rd);
      const failed = await rd.syncs.ingest(failing, [await night((rows) => rows)]);
      assert.equal(failed.status, "failed");
      // A sync still to run (queued on another node), as a row of its own.
      const { id: waiting } = await rd.database.db
        .insertInto("syncs")
        .values({ district_id: await districtId(rd, failing), delivery_id: null, source: "cli", status: "waiting", created_at: "2026-12-05T00:00:00.000Z", updated_at: "2026-12-05T00:00:00.000Z", counts: "{}", summary: "{}" })
        .returning("id")
        .executeTakeFirstOrThrow();
      // What a node that died mid-staging on the failed sync's last attempt, and one keying the waiting sync, leave.
      for (const name of [`roster_users_sync${failed.syncId}`, `roster_enrollments_sync${failed.syncId}`, `roster_users_sync${waiting}`]) {
        await sql.raw(`CREATE TABLE public."${name}" (LIKE public.roster_users)`).execute(rd.database.db);
      }
      assert.deepEqual((await partitions(rd)).leftOver, [`roster_enrollments_sync${failed.syncId}`, `roster_users_sync${failed.syncId}`, `roster_users_sync${waiting}`]);

      // The next sync of any district sweeps the failed sync's away.
      const other = await newDistrict(rd);
      assert.equal((await rd.syncs.ingest(other, [await night()])).status, "applied");
      assert.deepEqual((await partitions(rd)).leftOver, [`roster_users_sync${waiting}`]);
    });
  },
);
