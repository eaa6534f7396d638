import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from "../../src/db/kysely.ts";
import type { LogEvent } from "kysely";
import pg from "pg";
import { POSTGRES_DIALECT, SQLITE_DIALECT } from "../../src/db/dialect-info.ts";
import { BackendHomes, selectedBackends, type BackendHome } from "../support/backends.ts";
import { migrationProvider } from "../../src/db/migrations/index.ts";
import type { Database } from "../../src/db/schema.ts";
import { collationKey } from "../../src/sync/collation-key.ts";
import { PostgresEngineSql } from "../../src/sync/postgres-engine-sql.ts";
import { PARTITIONED_TABLES } from "../../src/db/district-partition-name.ts";
import { USERS_PER_PAGE, searchUsers, userWithClasses, type RosterReader } from "../../src/console/roster-browser.ts";

const PEOPLE: Array<[first: string, last: string]> = [
  ["Åse", "Lovelace"],
  ["Ada", "Lövgren"],
  ["Ada", "Zimmer"],
  ["Zoë", "Adams"],
];

for (const backend of selectedBackends()) describe(`the console's roster browser (${backend.name})`, { skip: backend.skip }, () => {
  let dir: string;
  let sqlite: SqliteDatabase.Database | undefined;
  let postgresUrl: string | undefined;
  let db: Kysely<Database>;
  let reader: RosterReader;
  const queries: { sql: string; parameters: readonly unknown[] }[] = [];
  const homes = new BackendHomes(backend.name);
  let home: BackendHome | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "rosterdock-roster-browser-"));
    const log = (event: LogEvent) => {
      if (event.level === "query") queries.push({ sql: event.query.sql, parameters: event.query.parameters });
    };
    if (backend.name === "sqlite") {
      sqlite = new SqliteDatabase(join(dir, "r.sqlite"));
      db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }), log });
    } else {
      home = await homes.create();
      postgresUrl = home.env.ROSTERDOCK_DATABASE_URL!;
      db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: postgresUrl, max: 2 }) }), log });
    }
    const dialect = backend.name === "sqlite" ? SQLITE_DIALECT : POSTGRES_DIALECT;
    reader = { db, dialect };
    const migrated = await new Migrator({ db, provider: migrationProvider(dialect) }).migrateToLatest();
    assert.equal(migrated.error, undefined);
    if (postgresUrl !== undefined) {
      // The districts' partitions of the big tables, made as the sync engine's first load makes them.
      const engine = new PostgresEngineSql(postgresUrl);
      try {
        for (const district of [1, 2]) {
          for (const table of PARTITIONED_TABLES) {
            await engine.transaction(async () => {
              const partition = await engine.newDistrictPartition(table, district);
              assert.notEqual(partition, null);
              await engine.attachDistrictPartition(table, partition!, district);
            });
          }
        }
      } finally {
        await engine.close();
      }
    }
    const user = (district: number, scope: "student" | "staff", id: string, first: string, last: string, teacherNumber: string | null = null) => ({
      district_id: district,
      user_key: scope === "student" ? `student-${id}` : `staff-${teacherNumber}`,
      scope,
      district_user_id: id,
      role: scope === "student" ? "student" : "teacher",
      first_name: first,
      last_name: last,
      family_name_key: collationKey(last),
      given_name_key: collationKey(first),
      school_id: "100",
      school_ids: '["100"]',
      teacher_number: teacherNumber,
      last_sync_id: 7,
    });
    const students = Array.from({ length: 60 }, (_, i) => user(1, "student", String(1000 + i), PEOPLE[i % 4]![0], `${PEOPLE[i % 4]![1]}`));
    // The same names in another district, never shown for the first.
    const others = students.map((s) => ({ ...s, district_id: 2 }));
    await db.insertInto("roster_users").values([...students, ...others, user(1, "staff", "55", "Grace", "Hopper", "T9")]).execute();
    await db.insertInto("roster_staff_ids").values({ district_id: 1, district_user_id: "55", user_key: "staff-T9", school_id: "100", last_sync_id: 7 }).execute();
    await db.insertInto("roster_schools").values({ district_id: 1, school_id: "100", school_name: "North High", last_sync_id: 7 }).execute();
    await db.insertInto("roster_courses").values({ district_id: 1, course_id: "C1", course_name: "Algebra", school_id: "100", last_sync_id: 7 }).execute();
    await db.insertInto("roster_terms").values({ district_id: 1, term_id: "T1", school_id: "", term_name: "2026-2027", start_date: "2026-08-20", end_date: "2027-06-10", last_sync_id: 7 }).execute();
    await db
      .insertInto("roster_classes")
      .values(["A", "B"].map((s) => ({ district_id: 1, class_id: `K${s}`, class_name: `Algebra ${s}`, school_id: "100", course_id: "C1", teacher_id: "55", teacher_key: "staff-T9", term_id: "T1", period: "2", last_sync_id: 7 })))
      .execute();
    await db.insertInto("roster_enrollments").values({ district_id: 1, class_id: "KB", student_id: "1001", last_sync_id: 7 }).execute();
  });

  after(async () => {
    await db?.destroy();
    await home?.remove();
    await homes.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Each query's plan, as lines naming the indexes used and the tables scanned whole. */
  async function plans(): Promise<Array<{ sql: string; plan: string[] }>> {
    if (sqlite !== undefined) {
      const db = sqlite;
      return queries.map((q) => ({ sql: q.sql, plan: (db.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).all(...(q.parameters as unknown[])) as { detail: string }[]).map((p) => p.detail) }));
    }
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    try {
      // Tables of a few rows are scanned whole by choice; what is checked is that an index serves each query.
      await client.query("ANALYZE");
      await client.query("SET enable_seqscan = off");
      const out: Array<{ sql: string; plan: string[] }> = [];
      for (const q of queries) {
        const { rows } = await client.query<{ "QUERY PLAN": string }>(`EXPLAIN ${q.sql}`, q.parameters as unknown[]);
        out.push({ sql: q.sql, plan: rows.map((r) => r["QUERY PLAN"].trim()) });
      }
      return out;
    } finally {
      await client.end();
    }
  }

  it("finds users by the beginning of a family or given name, whatever the accents and case, a page at a time", async () => {
    const lov = await searchUsers(reader, 1, "LOV", 1);
    // Lovelace and Lövgren, 15 of each, by family name then sourcedId; the other district's never.
    assert.equal(lov.users.length, USERS_PER_PAGE);
    assert.ok(lov.more);
    assert.deepEqual([...new Set(lov.users.map((u) => u.lastName))], ["Lovelace", "Lövgren"]);
    const second = await searchUsers(reader, 1, "lov", 2);
    assert.equal(second.users.length, 30 - USERS_PER_PAGE);
    assert.equal(second.more, false);
    assert.equal(new Set([...lov.users, ...second.users].map((u) => u.userKey)).size, 30);

    const ase = await searchUsers(reader, 1, "ase", 1);
    assert.deepEqual([...new Set(ase.users.map((u) => `${u.firstName} ${u.lastName}`))], ["Åse Lovelace"]);
    // A given name and a family name together, either way round.
    const adaZ = await searchUsers(reader, 1, "ada zim", 1);
    assert.deepEqual([...new Set(adaZ.users.map((u) => `${u.firstName} ${u.lastName}`))], ["Ada Zimmer"]);
    const zAda = await searchUsers(reader, 1, "Zimmer, Ada", 1);
    assert.deepEqual(new Set(zAda.users.map((u) => u.userKey)), new Set(adaZ.users.map((u) => u.userKey)));
    // "ada" is Ada Lövgren and Ada Zimmer by given name, Zoë Adams by family name.
    assert.equal((await searchUsers(reader, 1, "ada", 1)).users.length, USERS_PER_PAGE);
    assert.deepEqual((await searchUsers(reader, 1, "nobody", 1)).users, []);
    assert.deepEqual((await searchUsers(reader, 1, "  ", 1)).users, []);
  });

  it("finds a user by sourcedId or PowerSchool ID, first", async () => {
    assert.deepEqual((await searchUsers(reader, 1, "student-1003", 1)).users.map((u) => u.userKey), ["student-1003"]);
    assert.deepEqual((await searchUsers(reader, 1, "1003", 1)).users.map((u) => u.userKey), ["student-1003"]);
    assert.deepEqual((await searchUsers(reader, 1, "55", 1)).users.map((u) => u.userKey), ["staff-T9"]);
    assert.deepEqual((await searchUsers(reader, 1, "T9", 1)).users.map((u) => u.userKey), ["staff-T9"]);
  });

  it("reads through the primary keys and the name-key indexes, never a scan of the users", async () => {
    queries.length = 0;
    queries.length = 0;
    await searchUsers(reader, 1, "ada", 2);
    await searchUsers(reader, 1, "ada lov", 1);
    await searchUsers(reader, 1, "1003", 1);
    await userWithClasses(reader, 1, "student-1001");
    await userWithClasses(reader, 1, "staff-T9");
    assert.ok(queries.length >= 6);
    const explained = await plans();
    const lines = explained.flatMap((e) => e.plan);
    // On PostgreSQL, through the district's partition's copy of the index (roster_users_d1_family_name_key).
    for (const index of ["family_name_key", "given_name_key", "teacher", "student"]) {
      const used = new RegExp(`roster_(users|classes|enrollments)(_d1)?_${index}\\b`);
      assert.ok(lines.some((d) => used.test(d)), `${index} used:\n${lines.join("\n")}`);
    }
    for (const { sql, plan } of explained) {
      // A scan, or a walk of the district's whole primary key, would read every user or class of the district.
      const walks = plan.filter(
        (d) =>
          /^SCAN (roster_|c\b|tu\b)/.test(d) ||
          /^SEARCH (roster_users|roster_classes|c) USING PRIMARY KEY \(district_id=\?\)$/.test(d) ||
          /Seq Scan on roster_/.test(d) ||
          // PostgreSQL: a primary key read on the district alone (no user or class key).
          (/Index Cond: \(district_id = \$\d+\)$/.test(d) && plan.some((p) => /Index (Only )?Scan using roster_(users|classes)(_d\d+)?_pkey/.test(p))),
      );
      assert.deepEqual(walks, [], `${sql}\n${plan.join("\n")}`);
    }
  });

  it("shows a student's classes with their teacher, and a teacher's classes", async () => {
    const student = await userWithClasses(reader, 1, "student-1001");
    assert.equal(student?.user.firstName, "Ada");
    assert.deepEqual(student?.classes, [
      { classId: "KB", className: "Algebra B", courseName: "Algebra", schoolName: "North High", termName: "2026-2027", period: "2", teacher: { userKey: "staff-T9", name: "Grace Hopper" } },
    ]);
    const teacher = await userWithClasses(reader, 1, "staff-T9");
    assert.deepEqual(teacher?.classes.map((c) => [c.classId, c.teacher]), [
      ["KA", null],
      ["KB", null],
    ]);
    assert.equal(await userWithClasses(reader, 2, "staff-T9"), undefined);
  });
});
