import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { FastifyInstance } from "fastify";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { buildHttpApp } from "../../src/api/http-app.ts";
import { generateDemoData, type DemoDataResult } from "../../src/demo/generate-demo-data.ts";
import { SEEK_STEP } from "../../src/api/oneroster/roster-reader.ts";
import { collationKey } from "../../src/sync/collation-key.ts";
import { BackendHomes, selectedBackends, type BackendHome } from "../support/backends.ts";

const V = "ims/oneroster/rostering/v1p2";
const SIZE = { students: 1500, teachers: 30, courses: 30, schools: 3 };

interface Ref {
  href: string;
  sourcedId: string;
  type: string;
}
type Rec = Record<string, unknown> & { sourcedId: string };

for (const backend of selectedBackends()) describe(`OneRoster 1.2 API and change feed, on a roster filled by the sync pipeline (${backend.name})`, { skip: backend.skip }, () => {
  const homes = new BackendHomes(backend.name);
  let home: BackendHome | undefined;
  let dir: string;
  let rd: Rosterdock;
  let app: FastifyInstance;
  let base: string;
  let admin: string;
  let reader: string;
  let otherDistrictOnly: string;
  let demo: DemoDataResult;
  let night2: DemoDataResult;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "rosterdock-oneroster-"));
    rd = await createRosterdock(loadConfig({ ...(home = await homes.create()).env, ROSTERDOCK_PUBLIC_URL: "https://roster.example.org" }), { logger: createLogger("silent") });
    app = await buildHttpApp(rd, { sftpListening: () => true });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    admin = (await rd.tokens.create("ops", ["admin"], "test")).token;
    reader = (await rd.tokens.create("app", ["roster.readonly"], "test")).token;

    demo = await generateDemoData(join(dir, "night1"), { ...SIZE, styles: ["dem", "autosend"] });
    night2 = await generateDemoData(join(dir, "night2"), { ...SIZE, styles: ["dem"], night: 2 });
    for (const [slug, style] of [
      ["utf8", "dem"],
      ["cp1252", "autosend"],
    ] as const) {
      await rd.districts.create({ slug, name: `District ${slug}` }, "test");
      const outcome = await rd.syncs.ingest(slug, demo.files[style]);
      assert.equal(outcome.status, "applied", `${style} night applied`);
    }
    await rd.districts.create({ slug: "other", name: "Other" }, "test");
    const client = await rd.clients.create({ name: "other-app", scopes: ["roster.readonly"], districts: ["other"] }, "test");
    otherDistrictOnly = (await rd.clients.issueToken(client.clientId, client.clientSecret))!.access_token;
  });

  after(async () => {
    await app.close();
    await rd.close();
    await home?.remove();
    await homes.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (path: string, token: string | null = reader) => fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const or = (slug: string, path: string, query: Record<string, string | number> = {}) => {
    const search = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    return `/districts/${slug}/${V}/${path}${search ? `?${search}` : ""}`;
  };
  async function list(slug: string, path: string, query: Record<string, string | number> = {}, key?: string) {
    const response = await get(or(slug, path, query));
    assert.equal(response.status, 200, `${path}: ${response.status}`);
    const body = (await response.json()) as Record<string, Rec[]>;
    const keys = Object.keys(body);
    assert.equal(keys.length, 1);
    if (key) assert.equal(keys[0], key);
    return { records: body[keys[0]!]!, total: Number(response.headers.get("x-total-count")), link: parseLink(response.headers.get("link") ?? "") };
  }
  const all = async (slug: string, path: string, query: Record<string, string | number> = {}) => (await list(slug, path, { limit: 10_000, ...query })).records;

  it("returns totals that match the delivered night, keyed as the specification says", async () => {
    const e = demo.expected;
    const totals: Array<[string, number, string]> = [
      ["students", e.students, "users"],
      ["teachers", e.staff - 1, "users"], // one teacher works at two schools: two Teachers rows, one person
      ["users", e.students + e.staff - 1, "users"],
      ["schools", e.schools, "orgs"],
      ["orgs", e.schools + 1, "orgs"],
      ["classes", e.classes, "classes"],
      ["courses", e.courses, "courses"],
      ["terms", e.terms, "academicSessions"],
      ["academicSessions", e.terms, "academicSessions"],
      ["enrollments", e.enrollments + e.classes, "enrollments"], // + one teacher enrollment per class
    ];
    for (const [path, expected, key] of totals) {
      for (const slug of ["utf8", "cp1252"]) {
        const { total, records } = await list(slug, path, { limit: 5 }, key);
        assert.equal(total, expected, `${slug} ${path}`);
        assert.equal(records.length, Math.min(5, expected));
      }
    }
    const district = (await (await get(or("utf8", "orgs/district-utf8"))).json()) as { org: Rec };
    assert.equal(district.org.type, "district");
    assert.equal((district.org.children as Ref[]).length, demo.expected.schools);
    const school = (await list("utf8", "schools", { limit: 1 })).records[0]!;
    assert.deepEqual(school.parent, { href: `https://roster.example.org/districts/utf8/${V}/orgs/district-utf8`, sourcedId: "district-utf8", type: "org" });
  });

  it("pages with limit and offset, down to the last page, with RFC 8288 Link headers", async () => {
    const everyone = (await all("utf8", "students", { fields: "sourcedId" })).map((r) => r.sourcedId);
    assert.equal(everyone.length, demo.expected.students);
    assert.deepEqual([...everyone].sort(), everyone, "default order is by sourcedId");
    const seen: string[] = [];
    let next: string | undefined = or("utf8", "students", { limit: 400, fields: "sourcedId" });
    let pages = 0;
    while (next) {
      const response = await get(next.replace("https://roster.example.org", ""));
      const body = (await response.json()) as { users: Rec[] };
      seen.push(...body.users.map((u) => u.sourcedId));
      const link = parseLink(response.headers.get("link") ?? "");
      assert.ok(link.first && link.last);
      if (pages > 0) assert.ok(link.prev, "prev after the first page");
      next = link.next;
      pages++;
    }
    assert.equal(pages, Math.ceil(everyone.length / 400));
    assert.deepEqual(seen, everyone);

    const lastOffset = Math.floor((everyone.length - 1) / 100) * 100;
    const first = await list("utf8", "students", { limit: 100, fields: "sourcedId" });
    const lastLink = new URL(first.link.last!);
    assert.equal(lastLink.origin + lastLink.pathname, `https://roster.example.org/districts/utf8/${V}/students`);
    assert.deepEqual(Object.fromEntries(lastLink.searchParams), { fields: "sourcedId", limit: "100", offset: String(lastOffset) });
    assert.equal(first.link.prev, undefined);
    const last = await list("utf8", "students", { limit: 100, offset: lastOffset, fields: "sourcedId" });
    assert.deepEqual(
      last.records.map((r) => r.sourcedId),
      everyone.slice(lastOffset),
    );
    assert.equal(last.link.next, undefined);
    assert.equal((await list("utf8", "students", { limit: 100, offset: everyone.length + 5 })).records.length, 0);

    // Deep offsets go through the seek index; they must equal a plain scan, in both directions and on a sorted field.
    for (const offset of [SEEK_STEP, SEEK_STEP + 1, 2 * SEEK_STEP + 37, everyone.length - 3]) {
      const page = await list("utf8", "students", { limit: 50, offset, fields: "sourcedId" });
      assert.deepEqual(
        page.records.map((r) => r.sourcedId),
        everyone.slice(offset, offset + 50),
        `offset ${offset}`,
      );
      const descending = await list("utf8", "students", { limit: 50, offset, orderBy: "desc", fields: "sourcedId" });
      assert.deepEqual(
        descending.records.map((r) => r.sourcedId),
        [...everyone].reverse().slice(offset, offset + 50),
      );
    }
    const byName = (await all("utf8", "students", { sort: "familyName", fields: "sourcedId,familyName" })).map((r) => r.sourcedId);
    const deep = await list("utf8", "students", { sort: "familyName", limit: 30, offset: 2 * SEEK_STEP + 5, fields: "sourcedId" });
    assert.deepEqual(
      deep.records.map((r) => r.sourcedId),
      byName.slice(2 * SEEK_STEP + 5, 2 * SEEK_STEP + 35),
    );
  });

  it("filters on non-ASCII names from a UTF-8 (DEM) and a Windows-1252 (AutoSend) delivery alike", async () => {
    const truth = (await all("utf8", "students", { fields: "sourcedId,familyName" })).filter((u) => u.familyName === "Peña").map((u) => u.sourcedId);
    assert.ok(truth.length > 10);
    for (const slug of ["utf8", "cp1252"]) {
      const found = await list(slug, "students", { filter: "familyName='Peña'", limit: 10_000, fields: "sourcedId,familyName,givenName" });
      assert.equal(found.total, truth.length, slug);
      assert.deepEqual(
        found.records.map((u) => u.sourcedId),
        truth,
      );
      assert.ok(found.records.every((u) => u.familyName === "Peña" && Object.keys(u).length === 3));
      const accented = await list(slug, "users", { filter: "givenName='Zoë' AND familyName!='Peña'", limit: 10_000, fields: "givenName,familyName" });
      assert.ok(accented.total > 0 && accented.records.every((u) => u.givenName === "Zoë" && u.familyName !== "Peña"));
      const contains = await list(slug, "students", { filter: "familyName~'ÑEZ'", limit: 10_000, fields: "familyName" });
      assert.ok(contains.total > 0 && contains.records.every((u) => String(u.familyName).toLowerCase().includes("ñez")), "~ is case-insensitive beyond ASCII");
    }
    const either = await list("utf8", "students", { filter: "familyName='Peña' OR familyName='Müller'", limit: 1 });
    const müller = await list("utf8", "students", { filter: "familyName='Müller'", limit: 1 });
    assert.equal(either.total, truth.length + müller.total);
    const kindergarten = await list("utf8", "students", { filter: "grades='KG'", limit: 10_000, fields: "grades" });
    assert.ok(kindergarten.total > 0 && kindergarten.records.every((u) => (u.grades as string[])[0] === "KG"));
  });

  it("sorts with orderBy, and returns only the fields asked for", async () => {
    const desc = await all("utf8", "users", { sort: "familyName", orderBy: "desc", fields: "familyName,sourcedId" });
    // Names sort by their collation key (Unicode-aware, case-insensitive), not by code point.
    for (let i = 1; i < desc.length; i++) {
      assert.ok(collationKey(String(desc[i - 1]!.familyName)) >= collationKey(String(desc[i]!.familyName)), `${desc[i - 1]!.familyName} ≥ ${desc[i]!.familyName}`);
    }
    assert.ok(desc.every((u) => Object.keys(u).join() === "sourcedId,familyName"));
    const asc = await all("utf8", "classes", { sort: "title", fields: "title" });
    for (let i = 1; i < asc.length; i++) assert.ok(collationKey(String(asc[i - 1]!.title)) <= collationKey(String(asc[i]!.title)));
    const one = (await (await get(or("utf8", "students/student-1001", { fields: "givenName,familyName" }))).json()) as { user: Rec };
    assert.deepEqual(Object.keys(one.user), ["givenName", "familyName"]);
  });

  it("serves single records and nested routes", async () => {
    const student = ((await (await get(or("utf8", "students/student-1004"))).json()) as { user: Rec }).user;
    assert.equal(student.role, undefined, "1.2 users carry roles, not role");
    assert.equal(student.enabledUser, "true");
    assert.equal((student.roles as Array<{ role: string; roleType: string; org: Ref }>)[0]!.role, "student");
    assert.equal((student.roles as Array<{ role: string; roleType: string; org: Ref }>)[0]!.roleType, "primary");
    const byRole = await list("utf8", "users", { filter: "role='student'", sort: "role", limit: 1 });
    assert.equal(byRole.total, demo.expected.students, "role stays a filter and sort name");
    assert.deepEqual(student.userIds, [
      { type: "district", identifier: "1004" },
      { type: "state", identifier: "9000000004" },
    ]);
    const twoSchools = ((await (await get(or("utf8", "teachers/staff-5001"))).json()) as { user: Rec }).user;
    assert.deepEqual(
      (twoSchools.roles as Array<{ org: Ref }>).map((r) => r.org.sourcedId),
      ["101", "102"],
    );

    const classes = await all("utf8", "classes", { fields: "sourcedId,school,terms" });
    const cls = classes[0]!;
    const enrollments = await all("utf8", `classes/${cls.sourcedId}/enrollments`);
    const teacherEnrollment = enrollments.find((e) => e.role === "teacher")!;
    assert.equal(teacherEnrollment.primary, "true");
    assert.ok(enrollments.filter((e) => e.role === "student").every((e) => e.primary === "false"));
    assert.equal(teacherEnrollment.sourcedId, `${cls.sourcedId}-teacher-${(teacherEnrollment.user as Ref).sourcedId}`);
    const students = await all("utf8", `classes/${cls.sourcedId}/students`, { fields: "sourcedId" });
    assert.deepEqual(
      students.map((s) => s.sourcedId),
      enrollments.filter((e) => e.role === "student").map((e) => (e.user as Ref).sourcedId).sort(),
    );
    const teachers = await all("utf8", `classes/${cls.sourcedId}/teachers`, { fields: "sourcedId" });
    assert.deepEqual(
      teachers.map((t) => t.sourcedId),
      [(teacherEnrollment.user as Ref).sourcedId],
    );
    const single = (await (await get(or("utf8", `enrollments/${teacherEnrollment.sourcedId}`))).json()) as { enrollment: Rec };
    assert.deepEqual(single.enrollment, teacherEnrollment);

    const school = (cls.school as Ref).sourcedId;
    const schoolClasses = await all("utf8", `schools/${school}/classes`, { fields: "school" });
    assert.ok(schoolClasses.length > 0 && schoolClasses.every((c) => (c.school as Ref).sourcedId === school));
    assert.equal(schoolClasses.length, classes.filter((c) => (c.school as Ref).sourcedId === school).length);
    const schoolStudents = await list("utf8", `schools/${school}/students`, { limit: 1 });
    const allStudents = await all("utf8", "students", { fields: "primaryOrg" });
    assert.equal(schoolStudents.total, allStudents.filter((s) => (s.primaryOrg as Ref).sourcedId === school).length);
    assert.ok((await list("utf8", `schools/${school}/teachers`, { limit: 1 })).total > 0);
    assert.ok((await list("utf8", `schools/${school}/courses`, { limit: 1 })).total > 0);
    const schoolEnrollments = await all("utf8", `schools/${school}/enrollments`, { fields: "school" });
    assert.ok(schoolEnrollments.length > 0 && schoolEnrollments.every((e) => (e.school as Ref).sourcedId === school));

    const studentId = (students[0] as Rec).sourcedId;
    for (const parent of ["students", "users"]) {
      const mine = await all("utf8", `${parent}/${studentId}/classes`, { fields: "sourcedId" });
      assert.ok(mine.some((c) => c.sourcedId === cls.sourcedId));
    }
    const teacherId = (teacherEnrollment.user as Ref).sourcedId;
    const taught = await all("utf8", `teachers/${teacherId}/classes`, { fields: "sourcedId" });
    assert.ok(taught.some((c) => c.sourcedId === cls.sourcedId));
    const term = (cls.terms as Ref[])[0]!.sourcedId;
    const termClasses = await all("utf8", `terms/${term}/classes`, { fields: "terms" });
    assert.ok(termClasses.length > 0 && termClasses.every((c) => (c.terms as Ref[])[0]!.sourcedId === term));
    assert.equal(((await (await get(or("utf8", `academicSessions/${term}`))).json()) as { academicSession: Rec }).academicSession.sourcedId, term);
  });

  it("answers 401, 403 and 404 with imsx_StatusInfo bodies", async () => {
    const expectStatus = async (response: Response, status: number, codeMinor: string) => {
      assert.equal(response.status, status);
      const body = (await response.json()) as Record<string, unknown>;
      assert.equal(body.imsx_codeMajor, "failure");
      assert.equal(body.imsx_severity, "error");
      assert.equal(typeof body.imsx_description, "string");
      assert.deepEqual(body.imsx_CodeMinor, { imsx_codeMinorField: [{ imsx_codeMinorFieldName: "TargetEndSystem", imsx_codeMinorFieldValue: codeMinor }] });
    };
    await expectStatus(await get(or("utf8", "users"), null), 401, "unauthorisedrequest");
    await expectStatus(await get(or("utf8", "users"), "rdk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"), 401, "unauthorisedrequest");
    await expectStatus(await get(or("utf8", "users"), otherDistrictOnly), 403, "forbidden");
    assert.equal((await get(or("other", "users", { limit: 1 }), otherDistrictOnly)).status, 200);
    assert.equal((await get(or("utf8", "users", { limit: 1 }), admin)).status, 200);
    await expectStatus(await get(or("utf8", "users/student-999999")), 404, "unknownobject");
    await expectStatus(await get(or("utf8", "students/staff-5001")), 404, "unknownobject");
    await expectStatus(await get(or("utf8", "classes/nope/students")), 404, "unknownobject");
    await expectStatus(await get(or("nowhere", "users")), 404, "unknownobject");
    await expectStatus(await get(or("utf8", "gradebooks")), 404, "unknownobject");
    await expectStatus(await get(or("utf8", "users", { filter: "shoeSize='9'" })), 400, "invalid_filter_field");
    await expectStatus(await get(or("utf8", "users", { filter: "familyName=Peña" })), 400, "invalid_filter_field");
    await expectStatus(await get(or("utf8", "users", { sort: "agents" })), 400, "invaliddata");
    await expectStatus(await get(or("utf8", "users", { fields: "sourcedId,shoeSize" })), 400, "invalid_selection_field");
    await expectStatus(await get(or("utf8", "users", { limit: 0 })), 400, "invaliddata");
  });

  it("lets a held or failed sync change nothing, and feeds an applied sync's changes exactly once, rollback included", async () => {
    // Active records: what a rollback removes stays readable as a tombstone (status tobedeleted).
    const snapshot = async () => ({
      students: (await all("utf8", "students", { filter: "status='active'" })).map((s) => JSON.stringify(s)),
      enrollments: (await list("utf8", "enrollments", { limit: 1, filter: "status='active'" })).total,
      feed: await feed("utf8", "0", 250),
    });
    const before = await snapshot();
    assert.equal(before.feed.items.length > 0, true);
    // The first night is stored as one load marker per entity; the feed reads it out record by record.
    const createdStudents = before.feed.items.filter((i) => i.entity === "users" && i.op === "created" && i.id.startsWith("student-"));
    assert.equal(createdStudents.length, before.students.length);
    assert.equal(new Set(createdStudents.map((i) => i.cursor)).size, createdStudents.length, "one cursor per loaded record");
    assert.deepEqual(
      before.feed.items.map((i) => i.cursor),
      [...before.feed.items.map((i) => i.cursor)].sort(compareCursors),
    );
    const firstStudent = JSON.parse(before.students[0]!) as Rec;
    assert.deepEqual(createdStudents.find((i) => i.id === firstStudent.sourcedId)?.data, firstStudent, "loaded records as the API returns them");

    // Held: tonight's students file lost most of its rows (too many deletes).
    const heldDir = join(dir, "held");
    await mkdir(heldDir, { recursive: true });
    const studentsFile = demo.files.dem.find((f) => basename(f).startsWith("students"))!;
    const lines = (await readFile(studentsFile, "utf8")).split("\r\n");
    await writeFile(join(heldDir, basename(studentsFile)), lines.slice(0, 50).join("\r\n") + "\r\n");
    const held = await rd.syncs.ingest("utf8", [join(heldDir, basename(studentsFile))]);
    assert.equal(held.status, "held");
    // Failed: the students file breaks off inside a quoted value.
    const failedDir = join(dir, "failed");
    await mkdir(failedDir, { recursive: true });
    await writeFile(join(failedDir, basename(studentsFile)), `${lines.slice(0, 20).join("\r\n")}\r\n"9999","unclosed`);
    const failed = await rd.syncs.ingest("utf8", [join(failedDir, basename(studentsFile))]);
    assert.equal(failed.status, "failed");
    assert.deepEqual(await snapshot(), before);

    // Night 2 applies: its changes appear once each, in cursor order, across small pages.
    const cursor = before.feed.nextCursor;
    const night2Dir = join(dir, "night2-files");
    await mkdir(night2Dir, { recursive: true });
    for (const file of night2.files.dem) await copyFile(file, join(night2Dir, basename(file)));
    const applied = await rd.syncs.ingest("utf8", [night2Dir]);
    assert.equal(applied.status, "applied");
    const changed = Object.values(applied.counts).reduce((n, c) => n + c.created + c.updated + c.deleted, 0);
    assert.ok(changed > 0);
    const forward = await feed("utf8", cursor, 37);
    assert.equal(new Set(forward.items.map((i) => i.cursor)).size, changed, "one cursor per changed record");
    assert.equal(new Set(forward.items.map((i) => `${i.cursor}/${i.entity}/${i.id}`)).size, forward.items.length, "no item twice");
    assert.deepEqual(
      forward.items.map((i) => i.cursor),
      [...forward.items.map((i) => i.cursor)].sort(compareCursors),
    );
    assert.deepEqual((await feed("utf8", forward.nextCursor)).items, [], "nothing after the last cursor");
    const renamed = forward.items.find((i) => i.entity === "users" && i.op === "updated")!;
    assert.ok(renamed, "night 2 renames students");
    const now = ((await (await get(or("utf8", `users/${renamed.id}`))).json()) as { user: Rec }).user;
    assert.deepEqual(renamed.data, now, "feed data is the record as the API returns it");
    const deleted = forward.items.find((i) => i.entity === "users" && i.op === "deleted")!;
    assert.equal(deleted.data, null);
    // A deleted record stays readable, as a tombstone dated by the apply that removed it.
    const removed = ((await (await get(or("utf8", `users/${deleted.id}`))).json()) as { user: Rec }).user;
    assert.equal(removed.status, "tobedeleted");
    assert.equal(removed.dateLastModified, now.dateLastModified, "the time night 2 was applied");

    // Rolled back: the inverse changes follow, and the API is as before night 2.
    await rd.syncs.rollback(applied.syncId, "test");
    const backward = await feed("utf8", forward.nextCursor, 500);
    assert.equal(new Set(backward.items.map((i) => i.cursor)).size, changed);
    const undo = backward.items.find((i) => i.entity === "users" && i.id === renamed.id)!;
    assert.equal(undo.op, "updated");
    assert.equal(undo.data!.familyName, (before.students.map((s) => JSON.parse(s) as Rec).find((s) => s.sourcedId === renamed.id) ?? { familyName: undefined }).familyName);
    assert.equal(backward.items.find((i) => i.entity === "users" && i.id === deleted.id)!.op, "created");
    const after = await snapshot();
    assert.deepEqual(after.students, before.students);
    assert.equal(after.enrollments, before.enrollments);

    // The feed is also for roster.readonly tokens (not just admin); other districts' tokens are refused.
    assert.equal((await get(`/api/v1/districts/utf8/changes?limit=1`, reader)).status, 200);
    assert.equal((await get(`/api/v1/districts/utf8/changes?limit=1`, otherDistrictOnly)).status, 403);
    assert.equal((await get(`/api/v1/districts/utf8/changes?limit=1`, null)).status, 401);
    assert.equal((await get(`/api/v1/districts/utf8/syncs`, reader)).status, 403, "the rest of /api/v1 still needs admin");
  });

  it("lists the change feed in the OpenAPI document", async () => {
    const doc = (await (await get("/api/v1/openapi.json", null)).json()) as { paths: Record<string, unknown> };
    assert.ok(doc.paths["/api/v1/districts/{slug}/changes"]);
  });

  interface FeedItem {
    cursor: string;
    entity: string;
    id: string;
    op: string;
    data: Rec | null;
  }
  async function feed(slug: string, after: string, limit = 1000): Promise<{ items: FeedItem[]; nextCursor: string }> {
    const items: FeedItem[] = [];
    let cursor = after;
    for (;;) {
      const response = await get(`/api/v1/districts/${slug}/changes?after=${cursor}&limit=${limit}`);
      assert.equal(response.status, 200);
      const body = (await response.json()) as { changes: FeedItem[]; nextCursor: string };
      items.push(...body.changes);
      if (body.nextCursor === cursor) return { items, nextCursor: cursor };
      assert.ok(compareCursors(body.nextCursor, cursor) > 0);
      cursor = body.nextCursor;
    }
  }
});

/** Feed cursors are `id`, or `id.position` inside a first load (`id` alone is past all of it). */
function compareCursors(a: string, b: string): number {
  const [ai = 0, aw = Infinity] = a.split(".").map(Number);
  const [bi = 0, bw = Infinity] = b.split(".").map(Number);
  return ai - bi || (aw === bw ? 0 : aw < bw ? -1 : 1);
}

function parseLink(header: string): Record<string, string> {
  const links: Record<string, string> = {};
  for (const part of header.split(/,\s*(?=<)/)) {
    const match = /^<([^>]+)>;\s*rel="([^"]+)"$/.exec(part.trim());
    if (match) links[match[2]!] = match[1]!;
  }
  return links;
}
