import assert from "node:assert/strict";
import { it } from "node:test";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";
import type { DemoStyle } from "../../src/demo/generate-demo-data.ts";
import { ROSTER_TABLES } from "../../src/sync/roster-tables.ts";
import { forEachBackend, newDistrict, snapshot, startRosterdock, tempDir } from "./helpers.ts";
import { selectedBackends } from "../support/backends.ts";
import type { RosterSnapshot } from "./helpers.ts";

const SIZE = { students: 300, teachers: 24, schools: 3 };

function keyOf(entity: string, row: Record<string, unknown>): string {
  return JSON.stringify(ROSTER_TABLES.find((t) => t.entity === entity)!.key.map((k) => row[k]));
}

/** created/updated/deleted between two roster snapshots, computed independently of the engine. */
function diff(before: RosterSnapshot, after: RosterSnapshot, entity: string) {
  const b = new Map(before[entity]!.map((r) => [keyOf(entity, r), JSON.stringify(r)]));
  const a = new Map(after[entity]!.map((r) => [keyOf(entity, r), JSON.stringify(r)]));
  let created = 0;
  let updated = 0;
  let deleted = 0;
  for (const [k, v] of a) if (!b.has(k)) created++;
  else if (b.get(k) !== v) updated++;
  for (const k of b.keys()) if (!a.has(k)) deleted++;
  return { created, updated, deleted, unchanged: b.size - updated - deleted };
}

forEachBackend(selectedBackends(), "a first night, then a second night with ~1% changes", () => {
  for (const style of ["dem", "autosend", "canonical"] as DemoStyle[]) {
    it(`${style}: the roster holds exactly tonight's data`, async () => {
      const rd = await startRosterdock();
      const slug = await newDistrict(rd);
      const night1 = await generateDemoData(await tempDir(), { ...SIZE, styles: [style] });
      const first = await rd.syncs.ingest(slug, night1.files[style]);
      assert.equal(first.status, "applied");
      const e = night1.expected;
      const persons = e.students + e.staff - 1; // the teacher at two schools is one person
      assert.deepEqual(first.counts.users, { created: persons, updated: 0, deleted: 0, unchanged: 0 });
      assert.equal(first.counts.schools.created, e.schools);
      assert.equal(first.counts.classes.created, e.classes);
      assert.equal(first.counts.enrollments.created, e.enrollments);
      assert.equal(first.counts.courses.created, e.courses);
      assert.equal(first.counts.terms.created, e.terms);

      const roster = await snapshot(rd, slug);
      const users = roster.users!;
      // Non-ASCII names intact from UTF-8 (dem, canonical) and Windows-1252 (autosend); quotes and commas.
      assert.ok(users.some((u) => u.first_name === 'Mary "Mae"' && u.last_name === "O'Neil, Jr."));
      assert.ok(users.some((u) => /[éëñüöøç]/i.test(`${u.first_name}${u.last_name}`)));
      assert.ok(!users.some((u) => /\uFFFD|Ã/.test(`${u.first_name}${u.last_name}`)), "no mojibake");
      // A student and a teacher share the number 1001 and are two people.
      assert.ok(users.some((u) => u.user_key === "student-1001" && u.scope === "student"));
      const teacher = users.find((u) => u.user_key === "staff-5001")!;
      assert.equal(teacher.district_user_id, "1001");
      // The teacher at two schools: one person, both schools, both Teachers.IDs resolve to them.
      assert.deepEqual(JSON.parse(String(teacher.school_ids)), ["101", "102"]);
      const secondId = String(1001 + SIZE.teachers);
      assert.deepEqual(
        roster.staff_ids!.filter((s) => s.user_key === "staff-5001").map((s) => [s.district_user_id, s.school_id]),
        [["1001", "101"], [secondId, "102"]],
      );
      const taught = roster.classes!.filter((c) => c.teacher_key === "staff-5001");
      assert.ok(taught.some((c) => c.teacher_id === secondId && c.school_id === "102"));
      assert.ok(taught.some((c) => c.teacher_id === "1001"));
      // Class names derived from the course name when the file has none.
      assert.ok(roster.classes!.every((c) => / - \d+$/.test(String(c.class_name)) && !/^C\d+ - /.test(String(c.class_name))));
      // Dropped enrollments are absent; student 1001's dropped row for another section is not in the roster.
      assert.equal(roster.enrollments!.length, e.enrollments);

      // Night 2: the engine's counts match an independent diff against a fresh load of night 2.
      const night2 = await generateDemoData(await tempDir(), { ...SIZE, styles: [style], night: 2 });
      const second = await rd.syncs.ingest(slug, night2.files[style]);
      assert.equal(second.status, "applied");
      // Students and enrollments were read against night 1's line digests: unchanged lines were skipped.
      const digests = (await rd.syncs.show(second.syncId)).summary.digests!;
      assert.equal(digests.length, 2);
      assert.ok(digests.every((d) => d.delta && d.unchanged > 0 && d.removed > 0), JSON.stringify(digests));
      const fresh = await newDistrict(rd);
      assert.equal((await rd.syncs.ingest(fresh, night2.files[style])).status, "applied");
      const expectedRoster = await snapshot(rd, fresh);
      assert.deepEqual((await snapshot(rd, slug)), expectedRoster);
      for (const entity of ["schools", "users", "classes", "enrollments", "courses", "terms"] as const) {
        assert.deepEqual(second.counts[entity], diff(roster, expectedRoster, entity), entity);
      }
      const changed = second.counts.users.created + second.counts.users.deleted + second.counts.enrollments.created;
      assert.ok(changed > 0, "night 2 changes something");

      // Rollback: night 1 cannot go while night 2 stands; night 2 goes, restoring night 1 exactly.
      const withIds = await snapshot(rd, slug, { withSyncIds: true });
      await assert.rejects(rd.syncs.rollback(first.syncId, "test"), /most recent applied sync/);
      await rd.syncs.rollback(second.syncId, "test");
      assert.notDeepEqual((await snapshot(rd, slug, { withSyncIds: true })), withIds);
      assert.deepEqual((await snapshot(rd, slug)), roster);
      assert.equal((await rd.syncs.show(second.syncId)).status, "rolled_back");
      await rd.syncs.rollback(first.syncId, "test");
      assert.ok(Object.values((await snapshot(rd, slug))).every((rows) => rows.length === 0));
      await assert.rejects(rd.syncs.rollback(first.syncId, "test"), /only an applied sync/);
    });
  }

  it("logs a first load as one `load` marker per entity, and rolls it back row by row", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd);
    const night1 = await generateDemoData(await tempDir(), { ...SIZE, styles: ["canonical"] });
    const first = await rd.syncs.ingest(slug, night1.files.canonical);
    assert.equal(first.status, "applied");
    const log = () =>
      rd.database.db.selectFrom("roster_changes").select(["entity", "key", "op", "before_json", "after_json"]).where("sync_id", "=", first.syncId).orderBy("id").execute();
    const roster = await snapshot(rd, slug, { withSyncIds: true });
    const markers = await log();
    assert.deepEqual(
      markers.map((m) => m.entity).sort(),
      ROSTER_TABLES.map((t) => t.entity).sort(),
      "one marker per loaded table",
    );
    for (const m of markers) {
      assert.equal(m.op, "load");
      assert.equal(m.key, "[]");
      assert.equal(m.before_json, null);
      const marker = JSON.parse(m.after_json!) as { rows: number; scopes?: string[] };
      assert.equal(marker.rows, roster[m.entity]!.length, `${m.entity}: rows`);
      assert.deepEqual(marker.scopes, m.entity === "users" ? ["staff", "student"] : undefined);
      assert.ok(roster[m.entity]!.every((r) => r.last_sync_id === first.syncId));
    }
    const { changes } = (await rd.syncs.rollback(first.syncId, "test")).changeset;
    const total = Object.values(roster).reduce((n, rows) => n + rows.length, 0);
    assert.equal(changes, total, "a delete per loaded row");
    const undo = (await log()).slice(markers.length);
    assert.ok(undo.every((c) => c.op === "delete" && c.after_json === null && c.before_json !== null));
    const enrollment = undo.find((c) => c.entity === "enrollments")!;
    assert.equal((JSON.parse(enrollment.before_json!) as { last_sync_id: number }).last_sync_id, first.syncId);
    assert.equal(JSON.parse(enrollment.key).length, 2);
    assert.ok(Object.values((await snapshot(rd, slug))).every((rows) => rows.length === 0));
  });

  it("re-running a finished sync's job changes nothing (idempotent after a crash)", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd);
    const night1 = await generateDemoData(await tempDir(), { ...SIZE, styles: ["canonical"] });
    const first = await rd.syncs.ingest(slug, night1.files.canonical);
    const before = await snapshot(rd, slug, { withSyncIds: true });
    const job = { id: 1, kind: "process-sync", payload: JSON.stringify({ syncId: first.syncId }), status: "running" as const, attempts: 2, run_after: "", locked_at: null, locked_by: null, lease_until: null, last_error: null, created_at: "", updated_at: "" };
    await rd.syncs.processJob(job);
    assert.deepEqual((await snapshot(rd, slug, { withSyncIds: true })), before);
    // A sync interrupted mid-way (status still processing) runs again from its files.
    await rd.database.db.updateTable("syncs").set({ status: "processing" }).where("id", "=", first.syncId).execute();
    await rd.syncs.processJob(job);
    const shown = await rd.syncs.show(first.syncId);
    assert.equal(shown.status, "applied");
    assert.deepEqual((await snapshot(rd, slug)), Object.fromEntries(Object.entries(before).map(([e, rows]) => [e, rows.map(({ last_sync_id: _s, ...r }) => r)])));
    assert.equal((await snapshot(rd, slug)).enrollments!.length, night1.expected.enrollments);
  });
});
