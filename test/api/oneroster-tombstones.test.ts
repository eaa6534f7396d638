import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Clock } from "../../src/clock.ts";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { buildHttpApp } from "../../src/api/http-app.ts";
import { writeFiles } from "../sync/helpers.ts";
import { SEEK_STEP } from "../../src/api/oneroster/roster-reader.ts";
import { compileList } from "../../src/api/oneroster/oneroster-sql.ts";
import { SQLITE_ROSTER_SQL } from "../../src/api/oneroster/roster-sql-dialect.ts";
import { STUDENTS as STUDENT_RESOURCE } from "../../src/api/oneroster/oneroster-resources.ts";
import { sql } from "../../src/db/kysely.ts";
import { BackendHomes, selectedBackends, type BackendHome } from "../support/backends.ts";

const V = "ims/oneroster/rostering/v1p2";
const DAY = 86_400;
/** What a delta reader polls, and the key of each collection's body. */
const COLLECTIONS = ["orgs", "academicSessions", "courses", "classes", "users", "enrollments"] as const;

type Rec = Record<string, unknown> & { sourcedId: string; status: string; dateLastModified: string };

/** A clock the test moves by hand: nights a day apart, retention without waiting. */
class TestClock implements Clock {
  #now = new Date("2026-09-01T02:00:00.000Z");
  now(): Date {
    return new Date(this.#now);
  }
  advance(seconds: number): void {
    this.#now = new Date(this.#now.getTime() + seconds * 1000);
  }
}

interface Student {
  id: number;
  first: string;
  last: string;
}

/**
 * A canonical night of two schools: two teachers, the students given, two classes (class C1's
 * teacher is `c1Teacher`), every student in C1 and the even ones in C2.
 */
function night(students: readonly Student[], c1Teacher = "1"): Promise<string> {
  const lines = (header: string, rows: Iterable<string>) => [header, ...rows].join("\n") + "\n";
  return writeFiles({
    "schools.csv": lines("school_id,school_name", ["101,Lincoln High", "102,Adams Middle"]),
    "courses.csv": lines("course_id,course_name,school_id", ["ALG,Algebra,101", "BIO,Biology,102"]),
    "terms.csv": lines("term_id,term_name,start_date,end_date,school_id", ["3600,2026-2027,2026-08-24,2027-06-11,101", "3600,2026-2027,2026-08-24,2027-06-11,102"]),
    "users.csv": lines("district_user_id,role,first_name,last_name,school_id", [
      "1,teacher,Ada,Lovelace,101",
      "2,teacher,Grace,Hopper,102",
      ...students.map((s) => `${s.id},student,${s.first},${s.last},${s.id % 2 === 0 ? 102 : 101}`),
    ]),
    "classes.csv": lines("class_id,class_name,school_id,course_id,teacher_id,term_id", [`C1,Algebra 1,101,ALG,${c1Teacher},3600`, "C2,Biology,102,BIO,2,3600"]),
    "enrollments.csv": lines("class_id,student_id,start_date,end_date", [
      ...students.map((s) => `C1,${s.id},2026-08-24,2027-06-11`),
      ...students.filter((s) => s.id % 2 === 0).map((s) => `C2,${s.id},2026-08-24,2027-06-11`),
    ]),
  });
}

const STUDENTS: readonly Student[] = [
  { id: 5001, first: "Ana", last: "Åberg" },
  { id: 5002, first: "Bo", last: "Núñez" },
  { id: 5003, first: "Chen", last: "Wei" },
  { id: 5004, first: "Dara", last: "O'Neil" },
  { id: 5005, first: "Emeka", last: "Okafor" },
  { id: 5006, first: "Fatima", last: "Zahra" },
];

for (const backend of selectedBackends()) describe(`deletions visible to OneRoster delta readers: tombstones (${backend.name})`, { skip: backend.skip }, () => {
  const homes = new BackendHomes(backend.name);
  let home: BackendHome | undefined;
  let dir: string;
  let clock: TestClock;
  let rd: Rosterdock;
  let app: FastifyInstance;
  let base: string;
  let token: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "rosterdock-tombstones-"));
    clock = new TestClock();
    rd = await createRosterdock(loadConfig({ ...(home = await homes.create()).env, ROSTERDOCK_PUBLIC_URL: "https://roster.example.org", ROSTERDOCK_TOMBSTONE_DAYS: "30" }), {
      logger: createLogger("silent"),
      clock,
    });
    app = await buildHttpApp(rd, { sftpListening: () => true });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    token = (await rd.tokens.create("app", ["roster.readonly"], "test")).token;
  });

  after(async () => {
    await app.close();
    await rd.close();
    await home?.remove();
    await homes.close();
    await rm(dir, { recursive: true, force: true });
  });

  const url = (slug: string, path: string, query: Record<string, string | number> = {}) => {
    const search = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    return `${base}/districts/${slug}/${V}/${path}${search ? `?${search}` : ""}`;
  };
  const get = (slug: string, path: string, query: Record<string, string | number> = {}) => fetch(url(slug, path, query), { headers: { authorization: `Bearer ${token}` } });

  /** Every record of a collection, read page by page as a client does. */
  async function all(slug: string, path: string, query: Record<string, string | number> = {}, limit = 4): Promise<Rec[]> {
    const records: Rec[] = [];
    for (let offset = 0; ; offset += limit) {
      const response = await get(slug, path, { ...query, limit, offset });
      assert.equal(response.status, 200, `${path} ${JSON.stringify(query)}: ${response.status}`);
      const body = (await response.json()) as Record<string, Rec[]>;
      const page = Object.values(body)[0]!;
      records.push(...page);
      if (offset + limit >= Number(response.headers.get("x-total-count"))) return records;
    }
  }

  async function one(slug: string, path: string): Promise<{ status: number; record: Rec | undefined }> {
    const response = await get(slug, path);
    const body = (await response.json()) as Record<string, Rec>;
    return { status: response.status, record: response.status === 200 ? Object.values(body)[0] : undefined };
  }

  /** What the API holds as active, per collection and sourcedId. */
  async function activeRoster(slug: string): Promise<Map<string, Rec>> {
    const roster = new Map<string, Rec>();
    for (const path of COLLECTIONS) for (const record of await all(slug, path, { filter: "status='active'" }, 100)) roster.set(`${path}/${record.sourcedId}`, record);
    return roster;
  }

  /**
   * A client syncing by `dateLastModified>'T'` (as School Data Sync does): it applies what it reads
   * to its own copy (tobedeleted removes, anything else replaces) and returns what it read.
   */
  async function poll(slug: string, copy: Map<string, Rec>, since: string): Promise<Map<string, Rec>> {
    const read = new Map<string, Rec>();
    for (const path of COLLECTIONS) {
      for (const record of await all(slug, path, { filter: `dateLastModified>'${since}'` })) {
        const key = `${path}/${record.sourcedId}`;
        read.set(key, record);
        if (record.status === "tobedeleted") copy.delete(key);
        else copy.set(key, record);
      }
    }
    return read;
  }

  const ingest = async (slug: string, students: readonly Student[], c1Teacher = "1") => {
    const outcome = await rd.syncs.ingest(slug, [await night(students, c1Teacher)]);
    assert.equal(outcome.status, "applied");
    return outcome;
  };

  it("a delta reader's copy equals the API's active records after each of three nights: a student leaves, comes back, another is renamed", async () => {
    const slug = "delta";
    await rd.districts.create({ slug, name: "Delta Unified" }, "test");
    const copy = new Map<string, Rec>();

    // Night 1: the first load; the client reads everything once.
    clock.advance(DAY);
    await ingest(slug, STUDENTS);
    let since = clock.now().toISOString();
    await poll(slug, copy, "1970-01-01T00:00:00.000Z");
    assert.deepEqual(copy, await activeRoster(slug));
    assert.equal(copy.size, 2 + 1 + 2 + 2 + 2 + 8 + (6 + 3 + 2), "district, 2 schools, 2 terms, 2 courses, 2 classes, 8 users, 11 enrollments");

    // Night 2: student 5003 leaves, and C1 is taught by teacher 2 instead of teacher 1.
    clock.advance(DAY);
    const night2 = await ingest(
      slug,
      STUDENTS.filter((s) => s.id !== 5003),
      "2",
    );
    assert.equal(night2.counts.users.deleted, 1);
    const removedAt = clock.now().toISOString();
    let read = await poll(slug, copy, since);
    since = clock.now().toISOString();
    assert.deepEqual(copy, await activeRoster(slug));
    const left = read.get("users/student-5003")!;
    assert.equal(left.status, "tobedeleted");
    assert.equal(left.dateLastModified, removedAt, "dated by the apply that removed it");
    assert.equal(left.familyName, "Wei", "the record as it last was");
    assert.equal(read.get("enrollments/C1-student-5003")?.status, "tobedeleted");
    assert.equal(read.get("enrollments/C1-teacher-staff-id-1")?.status, "tobedeleted", "teacher 1 no longer teaches C1");
    assert.equal(read.get("enrollments/C1-teacher-staff-id-2")?.status, "active");
    assert.equal(read.get("users/student-5001"), undefined, "unchanged records are not read again");
    // The tombstone through every way of reading: single GET, filters, nested routes.
    assert.equal((await one(slug, "users/student-5003")).record?.status, "tobedeleted");
    assert.equal((await one(slug, "students/student-5003")).record?.status, "tobedeleted");
    assert.deepEqual(
      (await all(slug, "users", { filter: "status='tobedeleted'" })).map((u) => u.sourcedId),
      ["student-5003"],
    );
    assert.ok(!(await all(slug, "students", { filter: "status='active'" })).some((u) => u.sourcedId === "student-5003"));
    assert.ok((await all(slug, "students", { filter: "familyName='Wei'" })).some((u) => u.sourcedId === "student-5003"));
    assert.deepEqual(
      (await all(slug, "classes/C1/enrollments", { filter: "status='tobedeleted'" })).map((e) => e.sourcedId).sort(),
      ["C1-student-5003", "C1-teacher-staff-id-1"],
    );
    assert.deepEqual(
      (await all(slug, "schools/101/enrollments", { filter: "status='tobedeleted'" })).map((e) => e.sourcedId).sort(),
      ["C1-student-5003", "C1-teacher-staff-id-1"],
    );
    assert.ok((await all(slug, "schools/101/students")).some((u) => u.sourcedId === "student-5003" && u.status === "tobedeleted"));
    // Sorted lists interleave live and removed records in one order.
    const byFamilyName = await all(slug, "students", { sort: "familyName" });
    assert.deepEqual(
      byFamilyName.map((u) => u.familyName),
      [...byFamilyName.map((u) => String(u.familyName))].sort(new Intl.Collator("und", { sensitivity: "base" }).compare),
    );
    assert.equal(byFamilyName.length, 6);
    // The change feed is unchanged: one delete for the student, nothing about tombstones.
    assert.deepEqual((await rd.syncs.doctor(slug)).dangling, [], "tombstones are not live roster");

    // Night 3: 5003 is back; 5001 changes name.
    clock.advance(DAY);
    await ingest(
      slug,
      STUDENTS.map((s) => (s.id === 5001 ? { ...s, last: "Berg" } : s)),
      "2",
    );
    read = await poll(slug, copy, since);
    assert.deepEqual(copy, await activeRoster(slug));
    assert.equal(read.get("users/student-5003")?.status, "active");
    assert.equal(read.get("users/student-5003")?.dateLastModified, clock.now().toISOString(), "back, dated by tonight");
    assert.equal(read.get("enrollments/C1-student-5003")?.status, "active");
    assert.equal(read.get("users/student-5001")?.familyName, "Berg");
    assert.equal((await one(slug, "users/student-5003")).record?.status, "active");
    assert.deepEqual(await all(slug, "users", { filter: "status='tobedeleted'" }), [], "a record sent again leaves the tombstones");
    assert.deepEqual((await rd.syncs.doctor(slug)).dangling, []);
  });

  it("a rollback tombstones what the sync created and revives what it removed; a first load rolled back and sent again is all active", async () => {
    const slug = "rollback";
    await rd.districts.create({ slug, name: "Rollback Unified" }, "test");
    clock.advance(DAY);
    const first = await ingest(slug, STUDENTS.slice(0, 4));
    clock.advance(DAY);
    // Tonight 5004 leaves and 5005 arrives; then an operator rolls the night back.
    const second = await ingest(slug, [...STUDENTS.slice(0, 3), STUDENTS[4]!]);
    assert.equal((await one(slug, "users/student-5004")).record?.status, "tobedeleted");
    clock.advance(3600);
    await rd.syncs.rollback(second.syncId, "test");
    const rolledBackAt = clock.now().toISOString();
    const arrived = (await one(slug, "users/student-5005")).record!;
    assert.equal(arrived.status, "tobedeleted");
    assert.equal(arrived.dateLastModified, rolledBackAt);
    assert.equal((await one(slug, "enrollments/C1-student-5005")).record?.status, "tobedeleted");
    assert.equal((await one(slug, "users/student-5004")).record?.status, "active", "restored by the rollback");
    assert.deepEqual(
      (await all(slug, "users", { filter: `dateLastModified>'${new Date(Date.parse(rolledBackAt) - 1000).toISOString()}'` })).map((u) => `${u.sourcedId} ${u.status}`),
      ["student-5005 tobedeleted"],
    );

    // Rolling back the first load leaves the whole roster as tombstones (the district org stays).
    clock.advance(3600);
    await rd.syncs.rollback(first.syncId, "test");
    const users = await all(slug, "users");
    assert.equal(users.length, 2 + 5);
    assert.ok(users.every((u) => u.status === "tobedeleted"));
    assert.deepEqual(await all(slug, "users", { filter: "status='active'" }), []);
    assert.ok((await all(slug, "enrollments")).every((e) => e.status === "tobedeleted"));
    assert.deepEqual(
      (await all(slug, "orgs", { filter: "status='active'" })).map((o) => o.sourcedId),
      [`district-${slug}`],
    );
    assert.equal((await one(slug, "classes/C1")).record?.status, "tobedeleted");
    assert.equal((await one(slug, "academicSessions/3600-101")).record?.status, "tobedeleted");
    assert.equal((await one(slug, "courses/ALG")).record?.status, "tobedeleted");

    // Loaded again, 5005 included: every record active, no tombstone left.
    clock.advance(DAY);
    await ingest(slug, STUDENTS.slice(0, 5));
    for (const path of COLLECTIONS) assert.deepEqual(await all(slug, path, { filter: "status='tobedeleted'" }), [], path);
    const { id } = await rd.database.db.selectFrom("districts").select("id").where("slug", "=", slug).executeTakeFirstOrThrow();
    for (const table of ["schools", "courses", "terms", "users", "classes", "enrollments", "class_teachers"]) {
      const { rows } = await sql<{ n: number }>`SELECT count(*) AS n FROM ${sql.table(`tombstones_${table}`)} WHERE district_id = ${id}`.execute(rd.database.db);
      assert.equal(Number(rows[0]!.n), 0, table);
    }
    assert.deepEqual((await rd.syncs.doctor(slug)).dangling, []);
  });

  it("pages deep into live and removed records merged in one order, through the seek index, as plain offsets would", async () => {
    const slug = "deep";
    await rd.districts.create({ slug, name: "Deep Unified" }, "test");
    const many = Array.from({ length: 3 * SEEK_STEP }, (_, i): Student => ({ id: 6000 + i, first: "Student", last: `Number ${i}` }));
    clock.advance(DAY);
    await ingest(slug, many);
    // Every seventh student leaves: removed records sit between live ones all along the list.
    clock.advance(DAY);
    const second = await rd.syncs.ingest(slug, [await night(many.filter((s) => s.id % 7 !== 0))]);
    // 14% of the students go: more than the safeguards let through unasked.
    assert.equal(second.status, "held");
    assert.equal((await rd.syncs.approve(second.syncId, "test")).status, "applied");
    const everything = (await (await get(slug, "students", { limit: 10_000 })).json()) as { users: Rec[] };
    assert.equal(everything.users.length, many.length);
    assert.equal(everything.users.filter((u) => u.status === "tobedeleted").length, many.filter((s) => s.id % 7 === 0).length);
    for (const orderBy of ["asc", "desc"]) {
      const full = (await (await get(slug, "students", { limit: 10_000, orderBy })).json()) as { users: Rec[] };
      for (const offset of [SEEK_STEP - 1, SEEK_STEP, 2 * SEEK_STEP + 3, many.length - 2]) {
        const page = (await (await get(slug, "students", { limit: 5, offset, orderBy })).json()) as { users: Rec[] };
        assert.deepEqual(page.users, full.users.slice(offset, offset + 5), `${orderBy} at ${offset}`);
      }
      // A client paging on from deep: each page starts where the one before ended (remembered),
      // the same page asked again (past the response cache) starts at its own remembered row, and
      // a page between remembered rows steps from the nearest one.
      for (let offset = 2 * SEEK_STEP - 9; offset < many.length; offset += 7) {
        const page = (await (await get(slug, "students", { limit: 7, offset, orderBy })).json()) as { users: Rec[] };
        assert.deepEqual(page.users, full.users.slice(offset, offset + 7), `${orderBy} walking at ${offset}`);
      }
      for (const [offset, limit] of [[2 * SEEK_STEP - 2, 7], [2 * SEEK_STEP + 3, 4], [2 * SEEK_STEP + 5, 7]] as const) {
        const page = (await (await get(slug, "students", { limit, offset, orderBy, again: 1 })).json()) as { users: Rec[] };
        assert.deepEqual(page.users, full.users.slice(offset, offset + limit), `${orderBy} again at ${offset}`);
      }
    }
    // SQLite merges the index-ordered arms: no sort of the whole list per step (PostgreSQL's
    // per-arm reads are checked by oneroster-postgres-differential.test.ts).
    if (backend.name !== "sqlite") return;
    const seek = compileList({ resource: STUDENT_RESOURCE, orderBy: "asc" }).seek!;
    const plan = (rd.database.sqlite!.prepare(`EXPLAIN QUERY PLAN ${SQLITE_ROSTER_SQL.render(seek.stepSql)}`).all({ d: 1, slug, a0: "", skip: 0 }) as Array<{ detail: string }>).map((r) => r.detail);
    assert.ok(plan.some((d) => d.startsWith("MERGE")), plan.join("\n"));
    assert.ok(!plan.some((d) => d.includes("TEMP B-TREE")), plan.join("\n"));
  });

  it(`purges tombstones after ROSTERDOCK_TOMBSTONE_DAYS, not before, and serves no cached page that still shows them`, async () => {
    const slug = "purge";
    await rd.districts.create({ slug, name: "Purge Unified" }, "test");
    clock.advance(DAY);
    await ingest(slug, STUDENTS);
    clock.advance(DAY);
    await ingest(
      slug,
      STUDENTS.filter((s) => s.id !== 5006),
    );
    const removedAt = clock.now();
    const tombstones = async () => (await all(slug, "users", { filter: "status='tobedeleted'" })).map((u) => u.sourcedId);
    assert.deepEqual(await tombstones(), ["student-5006"]);

    // 29 days on: the server's purge and tonight's apply keep it.
    clock.advance(29 * DAY);
    await rd.syncs.purgeTombstones();
    await ingest(
      slug,
      STUDENTS.filter((s) => s.id !== 5006),
    );
    assert.deepEqual(await tombstones(), ["student-5006"]);
    assert.equal((await one(slug, "users/student-5006")).status, 200);
    const listed = await (await get(slug, "students", { limit: 100 })).text();
    assert.match(listed, /student-5006/);

    // Just past 30 days: purged, with its enrollments, and gone from every page (cached ones too).
    clock.advance(DAY + 60);
    assert.ok(clock.now().getTime() - removedAt.getTime() > 30 * DAY * 1000);
    assert.ok((await rd.syncs.purgeTombstones()) >= 1 + 2, "the student and two enrollments");
    assert.deepEqual(await tombstones(), []);
    assert.equal((await one(slug, "users/student-5006")).status, 404);
    assert.doesNotMatch(await (await get(slug, "students", { limit: 100 })).text(), /student-5006/);
    assert.equal((await one(slug, "enrollments/C2-student-5006")).status, 404);
    assert.equal(await rd.syncs.purgeTombstones(), 0, "nothing left to purge");
  });
});
