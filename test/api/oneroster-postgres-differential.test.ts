import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { FastifyInstance } from "fastify";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { buildHttpApp } from "../../src/api/http-app.ts";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";
import { SEEK_STEP } from "../../src/api/oneroster/roster-reader.ts";
import { EXTRA_STAFF, HAND_WRITTEN } from "../support/oneroster-districts.ts";
import { selectedBackends } from "../support/backends.ts";
import { startPostgres, type PostgresServer } from "../support/postgres.ts";
import { copyDistrictRoster } from "../support/roster-copy.ts";
import pg from "pg";
import { compileList } from "../../src/api/oneroster/oneroster-sql.ts";
import { parseFilter } from "../../src/api/oneroster/oneroster-filter.ts";
import { STUDENTS, USERS } from "../../src/api/oneroster/oneroster-resources.ts";
import { NESTED } from "../../src/api/oneroster/oneroster-routes.ts";
import { positionalParameters, postgresRosterSql } from "../../src/api/oneroster/roster-sql-dialect.ts";
import { sortsUnbounded } from "../../src/api/oneroster/postgres-roster-store.ts";

/**
 * DIFFERENTIAL TEST, kept on purpose: the PostgreSQL reader answers exactly as the SQLite reader.
 *
 * Districts are synced by the real engine into SQLite; their roster tables (live rows,
 * tombstones, changesets, the change log) are then copied row for row into a PostgreSQL database
 * (test/support/roster-copy.ts), and the same requests go to a server on each: every operation
 * of 1EdTech's OneRoster 1.2 document (as in oneroster-schema.test.ts), the 1.1 collections, with
 * paging deep enough to seek, sorts, filters and fields, the errors, and the change feed page by
 * page. Status, body bytes, and the Link, X-Total-Count and ETag headers must be identical.
 *
 * It checks the reader alone, on rosters the SQLite engine wrote; it does not replace the
 * suites that sync into PostgreSQL itself (see ENGINE_ON_POSTGRES in test/support/backends.ts).
 */

const V = "ims/oneroster/rostering/v1p2";
const V1P1 = "ims/oneroster/v1p1";
const PUBLIC_URL = "https://roster.example.org";
/** More students than two seek steps: deep pages go through the seek index on both sides. */
const SIZE = { students: 2 * SEEK_STEP + 200, teachers: 14, courses: 10, schools: 3 };

type Rec = Record<string, unknown> & { sourcedId: string };

const fixture = join(import.meta.dirname, "..", "fixtures", "oneroster", "onerosterv1p2rostersservice_openapi3_v1p0.json");

const postgres = selectedBackends().find((b) => b.name === "postgres");

if (postgres !== undefined) {
  describe("OneRoster and the change feed on PostgreSQL answer byte for byte as on SQLite (differential)", { skip: postgres.skip }, () => {
    let dir: string;
    let server: PostgresServer;
    let postgresUrl: string;
    const sides: Array<{ rd: Rosterdock; app: FastifyInstance; base: string; token: string }> = [];
    let operations: string[];
    const slugs = ["terms", "noterms", "dates"];
    /** A second node on the same PostgreSQL database, with its own response cache. */
    let nodeB: { rd: Rosterdock; app: FastifyInstance; base: string; token: string };
    let night2Files: string[];

    before(async () => {
      const doc = JSON.parse(await readFile(fixture, "utf8")) as { paths: Record<string, { get?: unknown }> };
      operations = Object.entries(doc.paths).flatMap(([path, item]) => (item.get ? [path] : []));
      dir = await mkdtemp(join(tmpdir(), "rosterdock-differential-"));
      server = await startPostgres();
      postgresUrl = await server.createDatabase();
      for (const env of [{ ROSTERDOCK_DATA_DIR: join(dir, "sqlite") }, { ROSTERDOCK_DATA_DIR: join(dir, "postgres"), ROSTERDOCK_DATABASE_URL: postgresUrl }]) {
        const rd = await createRosterdock(loadConfig({ ...env, ROSTERDOCK_PUBLIC_URL: PUBLIC_URL }), { logger: createLogger("silent") });
        const app = await buildHttpApp(rd, { sftpListening: () => true });
        await app.listen({ host: "127.0.0.1", port: 0 });
        const address = app.server.address();
        const base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
        sides.push({ rd, app, base, token: "" });
      }
      const [sqlite] = sides;
      {
        const rd = await createRosterdock(loadConfig({ ROSTERDOCK_DATA_DIR: join(dir, "node-b"), ROSTERDOCK_DATABASE_URL: postgresUrl, ROSTERDOCK_PUBLIC_URL: PUBLIC_URL }), {
          logger: createLogger("silent"),
        });
        const app = await buildHttpApp(rd, { sftpListening: () => true });
        await app.listen({ host: "127.0.0.1", port: 0 });
        const address = app.server.address();
        nodeB = { rd, app, base: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`, token: "" };
      }

      // The schema test's districts: a terms file, none, and terms told apart by their dates;
      // "terms" then gets a second night (students added, removed and renamed: tombstones, updates).
      const demo = await generateDemoData(join(dir, "night1"), { ...SIZE, styles: ["dem"] });
      const night2 = await generateDemoData(join(dir, "night2"), { ...SIZE, styles: ["dem"], night: 2 });
      const staff = join(dir, "users.csv");
      await writeFile(staff, `${EXTRA_STAFF}\n`);
      const withoutTerms = demo.files.dem.filter((f) => !/terms/i.test(basename(f)));
      const handWritten = join(dir, "hand-written");
      await mkdir(handWritten);
      for (const [name, text] of Object.entries(HAND_WRITTEN)) await writeFile(join(handWritten, name), `${text}\n`);
      const nights: Record<string, string[][]> = {
        terms: [
          [...demo.files.dem, staff],
          [...night2.files.dem, staff],
        ],
        noterms: [[...withoutTerms, staff]],
        dates: [[...Object.keys(HAND_WRITTEN).map((name) => join(handWritten, name)), staff]],
        cache: [[...demo.files.dem, staff]],
      };
      night2Files = [...night2.files.dem, staff];
      for (const slug of [...slugs, "cache"]) {
        await sqlite!.rd.districts.create({ slug, name: `District ${slug}` }, "test");
        for (const files of nights[slug]!) {
          const outcome = await sqlite!.rd.syncs.ingest(slug, files);
          const status = outcome.status === "held" ? (await sqlite!.rd.syncs.approve(outcome.syncId, "test")).status : outcome.status;
          assert.equal(status, "applied", `${slug}: night applied`);
        }
        const { tables } = await copyDistrictRoster(join(dir, "sqlite", "rosterdock.sqlite"), postgresUrl, slug);
        assert.ok(tables.roster_users! > 0 && tables.roster_changes! > 0, `${slug}: roster copied (${JSON.stringify(tables)})`);
      }
      assert.ok(Number(sqlite!.rd.database.sqlite!.prepare("SELECT count(*) FROM tombstones_users").pluck().get()) > 0, "night 2 removed users");
      for (const side of [...sides, nodeB]) side.token = (await side.rd.tokens.create("app", ["roster.readonly", "roster-demographics.readonly"], "test")).token;
    });

    after(async () => {
      for (const { app, rd } of [...sides, ...(nodeB ? [nodeB] : [])]) {
        await app.close();
        await rd.close();
      }
      await server?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    /** Asks both servers; fails on the first difference. Returns the (shared) body. */
    async function same(path: string): Promise<{ status: number; body: string }> {
      const answers = await Promise.all(
        sides.map(async ({ base, token }) => {
          const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
          const headers = ["x-total-count", "link", "etag", "content-type"].map((h) => `${h}: ${response.headers.get(h)}`);
          return { status: response.status, headers, body: await response.text() };
        }),
      );
      const [lite, post] = answers as [(typeof answers)[0], (typeof answers)[0]];
      assert.equal(post.status, lite.status, `${path}: status ${post.status} on PostgreSQL, ${lite.status} on SQLite; ${post.body.slice(0, 500)}`);
      if (post.body !== lite.body) {
        let at = 0;
        while (post.body[at] === lite.body[at]) at++;
        assert.fail(`${path}: bodies differ at ${at}:\n  SQLite:     …${lite.body.slice(Math.max(0, at - 120), at + 200)}\n  PostgreSQL: …${post.body.slice(Math.max(0, at - 120), at + 200)}`);
      }
      assert.deepEqual(post.headers, lite.headers, path);
      return { status: lite.status, body: lite.body };
    }
    const list = async (path: string): Promise<Rec[]> => Object.values(JSON.parse((await same(path)).body) as Record<string, Rec[]>)[0]!;
    const query = (q: Record<string, string | number>) => `?${new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)])).toString()}`;

    it("serves no cached response of a roster another node has since changed (two nodes on one database)", async () => {
      const [sqlite, nodeA] = sides as [(typeof sides)[0], (typeof sides)[0]];
      const paths = [`/districts/cache/${V}/users?limit=5&sort=dateLastModified&orderBy=desc`, `/districts/cache/${V1P1}/enrollments?limit=4`, `/api/v1/districts/cache/changes?after=0&limit=3`];
      const ask = async (node: typeof nodeA, path: string, etag?: string) => {
        const response = await fetch(`${node.base}${path}`, { headers: { authorization: `Bearer ${node.token}`, ...(etag ? { "if-none-match": etag } : {}) } });
        return { status: response.status, etag: response.headers.get("etag") ?? undefined, body: await response.text() };
      };
      const before = new Map<string, { etag: string | undefined; body: string }>();
      for (const path of paths) {
        // Asked twice of each node: the second answer comes from its cache (or a 304).
        for (const node of [nodeA, nodeB]) {
          const first = await ask(node, path);
          assert.equal(first.status, 200, `${path}: ${first.body.slice(0, 300)}`);
          assert.equal((await ask(node, path)).body, first.body);
          if (first.etag) assert.equal((await ask(node, path, first.etag)).status, 304);
          before.set(path, first);
        }
      }
      // Another node applies a sync: the roster changes in the database, under both nodes' caches.
      const outcome = await sqlite.rd.syncs.ingest("cache", night2Files);
      assert.equal(outcome.status === "held" ? (await sqlite.rd.syncs.approve(outcome.syncId, "test")).status : outcome.status, "applied");
      await copyDistrictRoster(join(dir, "sqlite", "rosterdock.sqlite"), postgresUrl, "cache", { replace: true });
      for (const path of paths) {
        const expected = await ask(sqlite, path);
        for (const node of [nodeA, nodeB]) {
          const old = before.get(path)!;
          const now = await ask(node, path, old.etag);
          assert.equal(now.status, 200, `${path}: the old ETag is no longer current`);
          assert.equal(now.body, expected.body, `${path}: the new roster, as SQLite serves it`);
        }
      }
      assert.notEqual((await ask(nodeA, paths[0]!)).body, before.get(paths[0]!)!.body, "night 2 changed the first page");
    });

    it("reads deep pages, familyName filters and a class's students off the roster indexes on PostgreSQL (EXPLAIN)", async () => {
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      try {
        // The test's tables are small enough for a scan and a sort to win; what is checked is that
        // the indexes can deliver each statement's rows in order (on a large district they do win).
        await client.query("SET enable_seqscan = off");
        await client.query("SET enable_bitmapscan = off");
        const dialect = postgresRosterSql({ byteOrderedText: true });
        const plan = async (sql: string, params: Record<string, unknown>) => {
          const { text, names } = positionalParameters(dialect.render(sql), params);
          const { rows } = await client.query<{ "QUERY PLAN": unknown }>(`EXPLAIN (FORMAT JSON) ${text}`, names.map((n) => params[n]));
          return JSON.stringify(rows[0]!["QUERY PLAN"]);
        };
        const ids = await client.query<{ id: number; slug: string }>("SELECT id, slug FROM districts WHERE slug IN ('terms', 'noterms')");
        const district = (slug: string) => ({ d: ids.rows.find((r) => r.slug === slug)!.id, slug });
        const live = { ...USERS, arms: USERS.arms.filter((a) => a.tombstones === undefined) };
        // noterms has no removed users (one arm); terms has (live and removed users merged).
        for (const [slug, resource] of [
          ["noterms", live],
          ["terms", USERS],
        ] as const) {
          const compiled = compileList({ resource, sort: "familyName", orderBy: "asc" }, { compoundAsSubquery: true });
          const step = await plan(compiled.seek!.stepSql, { ...district(slug), a0: "m", a1: "student-1", skip: 511 });
          assert.ok(!sortsUnbounded(JSON.parse(step)), `${slug} deep-page step sorts: ${step}`);
          // The district's own partition of the users (roster_users_d<id>), through its copy of the index
          // (named by PostgreSQL: the test's copy creates the partition before its rows).
          assert.match(step, /"Index Name":"roster_users_d\d+_district_id_family_name_key\w*"/, `${slug} deep-page step`);
          // Removed users are read off their own key index: each arm gives its top rows in order.
          if (slug === "terms") assert.match(step, /"Index Name":"tombstones_users_family_name_key"/, "removed users in index order");
          const page = await plan(compiled.seek!.pageSql, { ...district(slug), a0: "m", a1: "student-1", limit: 100, offset: 0 });
          assert.ok(!sortsUnbounded(JSON.parse(page)), `${slug} deep page sorts: ${page}`);
          const first = await plan(compiled.pageSql, { ...district(slug), limit: 100, offset: 0 });
          assert.ok(!sortsUnbounded(JSON.parse(first)), `${slug} first page sorts: ${first}`);
          const filtered = compileList({ resource, filter: parseFilter("familyName='Ødegaard'"), orderBy: "asc" }, { compoundAsSubquery: true });
          const byName = await plan(filtered.pageSql, { ...district(slug), ...filtered.params, limit: 100, offset: 0 });
          // The key is folded at planning time: rosterdock_collation_key('Ødegaard') is 'odegaard', as collationKey says.
          assert.match(byName, /"Index Name":"roster_users_d\d+_district_id_family_name_key\w*"[^}]*"Index Cond":"[^"]*family_name_key = 'odegaard'/, `${slug} familyName filter: ${byName}`);
        }
        // A class's students: its enrollments read first (an InitPlan), then each student looked up by
        // key, not the district's users walked in key order until the class's turn up (a semi-join
        // PostgreSQL guessed keeps half the users: 230 ms a page at 1M users).
        const members = NESTED.find((n) => n.parent === "classes" && n.child === "students")!;
        const classId = (await client.query<{ class_id: string }>("SELECT class_id FROM roster_enrollments WHERE district_id = $1 LIMIT 1", [district("noterms").d])).rows[0]!.class_id;
        const ofClass = compileList({ resource: STUDENTS, scope: { sql: members.scope, params: { parent: classId } }, orderBy: "asc" }, { compoundAsSubquery: true });
        const students = await plan(ofClass.pageSql, { ...district("noterms"), ...ofClass.params, limit: 100, offset: 0 });
        assert.match(students, /"Index Cond":"[^"]*user_key = ANY \(\$0\)/, `a class's students: ${students}`);
        assert.doesNotMatch(students, /Semi Join/, `a class's students: ${students}`);
      } finally {
        await client.end();
      }
    });

    for (const slug of slugs) {
      describe(`district ${slug}`, () => {
        const base = `/districts/${slug}/${V}`;
        let ids: Record<string, string[]>;

        before(async () => {
          const classes = await list(`${base}/classes${query({ limit: 10_000 })}`);
          const sessions = await list(`${base}/academicSessions${query({ limit: 10_000 })}`);
          const users = await list(`${base}/users${query({ limit: 10_000 })}`);
          const teacher = users.find((u) => u.sourcedId.startsWith("staff-") && (u.roles as Array<{ role: string }>).some((r) => r.role === "teacher"))!;
          const student = users.find((u) => u.sourcedId.startsWith("student-"))!;
          const enrollments = await list(`${base}/enrollments${query({ limit: 2 })}`);
          const demographics = await list(`${base}/demographics${query({ limit: 1 })}`);
          const grading = await list(`${base}/gradingPeriods${query({ limit: 1 })}`);
          const school = (classes[0]!.school as Rec).sourcedId;
          ids = {
            class: [classes[0]!.sourcedId],
            school: [school],
            course: [(classes[0]!.course as Rec).sourcedId],
            term: sessions.slice(0, 3).map((s) => s.sourcedId),
            academicSession: sessions.slice(0, 3).map((s) => s.sourcedId),
            user: [teacher.sourcedId, student.sourcedId, ...users.filter((u) => u.status === "tobedeleted").slice(0, 1).map((u) => u.sourcedId)],
            student: [student.sourcedId],
            teacher: [teacher.sourcedId],
            enrollment: enrollments.map((e) => e.sourcedId),
            org: [`district-${slug}`, school],
            demographics: demographics.map((d) => d.sourcedId),
            gradingPeriod: grading.map((g) => g.sourcedId),
          };
        });

        const urlsOf = (path: string): string[] => {
          const singular: Record<string, string> = {
            academicSessions: "academicSession",
            classes: "class",
            courses: "course",
            demographics: "demographics",
            enrollments: "enrollment",
            gradingPeriods: "gradingPeriod",
            orgs: "org",
            schools: "school",
            students: "student",
            teachers: "teacher",
            terms: "term",
            users: "user",
          };
          let results = [""];
          const segments = path.split("/").slice(1);
          segments.forEach((segment, i) => {
            const name = segment.startsWith("{") ? segment.slice(1, -1) : undefined;
            const kind = name === undefined ? undefined : name === "sourcedId" ? singular[segments[i - 1]!]! : name.replace(/SourcedId$/, "");
            const values = kind === undefined ? [segment] : [...(ids[kind] ?? []), "no-such-record"];
            results = results.flatMap((prefix) => values.map((v) => `${prefix}/${encodeURIComponent(v)}`));
          });
          return results;
        };

        it("answers every operation of the 1.2 document alike, on every page", async () => {
          for (const operation of operations) {
            for (const path of urlsOf(operation)) {
              const first = await same(`${base}${path}${query({ limit: 3 })}`);
              if (first.status !== 200 || !Array.isArray(Object.values(JSON.parse(first.body))[0])) continue;
              const all = await list(`${base}${path}${query({ limit: 10_000 })}`);
              await same(`${base}${path}`);
              for (const offset of [3, Math.floor(all.length / 2), Math.max(0, all.length - 2)]) await same(`${base}${path}${query({ limit: 3, offset })}`);
            }
          }
        });

        it("sorts, filters and selects fields alike, deep pages included", async () => {
          const users = await list(`${base}/users${query({ limit: 10_000 })}`);
          const someone = users.find((u) => u.sourcedId.startsWith("student-"))!;
          const checks: Array<[string, Record<string, string | number>]> = [];
          for (const collection of ["users", "students", "teachers"]) {
            for (const sort of ["familyName", "givenName", "middleName", "sourcedId", "dateLastModified", "email", "identifier", "username", "grades", "status"]) {
              for (const orderBy of ["asc", "desc"]) checks.push([collection, { sort, orderBy, limit: 7 }], [collection, { sort, orderBy, limit: 5, offset: SEEK_STEP + 17 }]);
            }
            for (const offset of [SEEK_STEP - 1, SEEK_STEP, 2 * SEEK_STEP + 3]) checks.push([collection, { limit: 5, offset }], [collection, { limit: 5, offset, orderBy: "desc" }]);
            for (const filter of [
              `familyName='${String(someone.familyName).replace(/'/g, "''")}'`,
              `givenName~'${String(someone.givenName).slice(0, 2).toUpperCase()}'`,
              "familyName>'M'",
              "familyName<='C'",
              "roles.role='teacher'",
              "roles.role='siteAdministrator'",
              "roles.role!='student'",
              `roles.org.sourcedId='${ids.school![0]}'`,
              `roles.org.sourcedId='district-${slug}'`,
              "roles.org.sourcedId~'1'",
              "roles.org.sourcedId>'1'",
              "role='administrator'",
              "grades='KG'",
              "grades>='05'",
              "status='tobedeleted'",
              "status='active' AND familyName~'a'",
              "email!='x' OR givenName='Ada'",
              "dateLastModified>'2020-01-01T00:00:00Z'",
              "dateLastModified<'2020-01-01T00:00:00Z'",
              "middleName~'e'",
              "userIds='x'",
            ]) {
              checks.push([collection, { filter, limit: 50 }], [collection, { filter, sort: "familyName", orderBy: "desc", limit: 20, offset: 3 }]);
            }
            checks.push([collection, { fields: "sourcedId,familyName,roles", limit: 30, sort: "givenName" }]);
          }
          for (const [collection, sorts, filters] of [
            ["orgs", ["name", "type", "identifier", "parent", "sourcedId"], ["type='school'", "name~'school'", "parent.sourcedId='district-" + slug + "'"]],
            ["schools", ["name", "identifier"], ["name>'M'"]],
            ["academicSessions", ["title", "startDate", "endDate", "type", "schoolYear", "parent", "sourcedId"], ["type='schoolYear'", "schoolYear='2027'", "title~'SEM'", "startDate>'2026-10-01'"]],
            ["terms", ["title"], ["type='semester'"]],
            ["courses", ["title", "courseCode", "org"], [`org.sourcedId='${ids.school![0]}'`, `org.sourcedId='district-${slug}'`, "title~'math'"]],
            ["classes", ["title", "classCode", "course", "school", "location"], ["title~'a'", `school.sourcedId='${ids.school![0]}'`, `terms.sourcedId='${ids.term![0]}'`, "classType='scheduled'", "periods='1'"]],
            ["enrollments", ["role", "user", "class", "school", "beginDate", "endDate"], ["role='teacher'", "primary='true'", `user.sourcedId='${someone.sourcedId}'`, "status='tobedeleted'", "beginDate>'2026-09-01'"]],
            ["demographics", ["sourcedId", "dateLastModified"], ["sex='female'", "birthDate<'2015-01-01'"]],
          ] as const) {
            for (const sort of sorts) for (const orderBy of ["asc", "desc"]) checks.push([collection, { sort, orderBy, limit: 9, offset: 2 }]);
            for (const filter of filters) checks.push([collection, { filter, limit: 40 }]);
            checks.push([collection, { limit: 5, offset: SEEK_STEP + 3 }], [collection, { limit: 5, offset: SEEK_STEP + 3, orderBy: "desc", sort: "sourcedId" }]);
          }
          // Every one of these is a valid request: the same answer must also be a right one.
          for (const [collection, q] of checks) assert.equal((await same(`${base}/${collection}${query(q)}`)).status, 200, `${collection} ${JSON.stringify(q)}`);
          // Errors: unknown fields, sorts and filters, and bad values.
          const bad: Array<Record<string, string>> = [{ filter: "nosuchfield='x'" }, { filter: "familyName=" }, { sort: "nosuchfield" }, { fields: "nosuchfield" }, { filter: "dateLastModified>'yesterday'" }];
          for (const q of bad) {
            await same(`${base}/users${query(q)}`);
          }
        });

        it("serves OneRoster 1.1 alike", async () => {
          for (const collection of ["orgs", "schools", "academicSessions", "terms", "gradingPeriods", "courses", "classes", "users", "students", "teachers", "enrollments", "demographics"]) {
            await same(`/districts/${slug}/${V1P1}/${collection}${query({ limit: 4, offset: 1 })}`);
            await same(`/districts/${slug}/${V1P1}/${collection}${query({ limit: 10_000, sort: "sourcedId", orderBy: "desc" })}`);
          }
          await same(`/districts/${slug}/${V1P1}/users${query({ filter: "role='teacher'", sort: "familyName" })}`);
          await same(`/districts/${slug}/${V1P1}/classes/${encodeURIComponent(ids.class![0]!)}/students`);
        });

        it("feeds the same changes, page by page", async () => {
          for (const limit of [1000, 97]) {
            let after = "0";
            for (let page = 0; page < 2000; page++) {
              const { status, body } = await same(`/api/v1/districts/${slug}/changes${query({ after, limit })}`);
              assert.equal(status, 200);
              const { changes, nextCursor } = JSON.parse(body) as { changes: unknown[]; nextCursor: string };
              if (nextCursor === after) break;
              assert.ok(changes.length > 0 || page > 0);
              after = nextCursor;
            }
          }
        });
      });
    }
  });
}
