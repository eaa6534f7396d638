import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { buildHttpApp } from "../../src/api/http-app.ts";
import { CODE_MINOR_VALUES, codeMinor } from "../../src/api/oneroster/oneroster-routes.ts";
import { PAGE_CHUNK } from "../../src/api/oneroster/rostering-service.ts";
import { ONEROSTER_ROLES } from "../../src/api/oneroster/user-roles.ts";
import { ERROR_CATALOGUE, RosterdockError, type ErrorCode } from "../../src/errors.ts";
import { BackendHomes, selectedBackends, type BackendHome } from "../support/backends.ts";

const V = "ims/oneroster/rostering/v1p2";

interface Ref {
  href: string;
  sourcedId: string;
  type: string;
}
type Rec = Record<string, unknown> & { sourcedId: string };

/** Family names from several languages, in the order people expect them (Unicode root collation, case-insensitive). */
const FAMILY_NAMES_SORTED = [
  "Abbott",
  "Åberg",
  "de la Cruz",
  "De Vries",
  "del Río",
  "Lewandowski",
  "Łukasiewicz",
  "Mueller",
  "Müller",
  "Ngo",
  "Nguyễn",
  "O'Brien",
  "Obi",
  "Strand",
  "Straße",
  "Williams",
  "Żak",
  "Zeller",
  "Zúñiga",
];

const csv = (rows: string[][]) => rows.map((r) => r.join(",")).join("\r\n") + "\r\n";

/**
 * A small district with what the 1.2 operations need: two schools, a teacher at both, a district
 * and a school administrator, an aide, students with and without demographics, a course without
 * a school, a district-wide term and a school's term.
 */
function smallDistrict(): Record<string, string> {
  const sexes = ["M", "F", "X", "U", "", "female"];
  const students = FAMILY_NAMES_SORTED.map((family, i) => {
    const id = String(1001 + i);
    const school = i % 2 === 0 ? "101" : "102";
    const birth = i % 3 === 0 ? "" : `2012-0${1 + (i % 9)}-1${i % 10}`;
    return [id, "student", `Given${i}`, family, school, "", birth, sexes[i % sexes.length]!, ""];
  });
  return {
    "schools.csv": csv([["school_id", "school_name"], ["101", "North High"], ["102", "South Middle"]]),
    "users.csv": csv([
      ["district_user_id", "role", "first_name", "last_name", "school_id", "teacher_number", "birth_date", "gender", "email"],
      ...students,
      ["501", "teacher", "Ada", "Okafor", "101", "T1", "", "", "okafor@example.org"],
      ["502", "teacher", "Ada", "Okafor", "102", "T1", "", "", "okafor@example.org"],
      ["601", "administrator", "Dana", "Superintendent", "", "A1", "", "", ""],
      ["602", "administrator", "Sam", "Principal", "101", "A2", "", "", ""],
      ["603", "aide", "Ira", "Helper", "102", "H1", "", "", ""],
    ]),
    "courses.csv": csv([["course_id", "course_name", "school_id"], ["C1", "Álgebra", "101"], ["C2", "art", ""], ["C3", "Biology", "101"]]),
    "terms.csv": csv([
      ["term_id", "term_name", "start_date", "end_date", "school_id"],
      ["3600", "2026-2027", "2026-08-20", "2027-06-10", ""],
      ["3601", "Semester 1", "2026-08-20", "2027-01-15", "101"],
    ]),
    "classes.csv": csv([
      ["class_id", "school_id", "course_id", "teacher_id", "term_id", "section_number"],
      ["K1", "101", "C1", "501", "3601", "1"],
      ["K2", "102", "C2", "502", "3600", "2"],
    ]),
    "enrollments.csv": csv([
      ["class_id", "student_id"],
      ...students.filter((s) => s[4] === "101").map((s) => ["K1", s[0]!]),
      ...students.filter((s) => s[4] === "102").map((s) => ["K2", s[0]!]),
    ]),
  };
}

/** A district with more students than one chunk of a page, and no demographics at all. */
function bigDistrict(students: number): Record<string, string> {
  const rows = Array.from({ length: students }, (_, i) => [String(100_000 + i), "student", `G${i}`, `F${i % 997}`, "101"]);
  return {
    "schools.csv": csv([["school_id", "school_name"], ["101", "Only School"]]),
    "users.csv": csv([["district_user_id", "role", "first_name", "last_name", "school_id"], ...rows, ["9", "teacher", "Tess", "Teacher", "101"]]),
    "classes.csv": csv([["class_id", "school_id", "course_id", "teacher_id"], ["B1", "101", "X1", "9"]]),
    "courses.csv": csv([["course_id", "course_name"], ["X1", "Homeroom"]]),
    "enrollments.csv": csv([["class_id", "student_id"], ["B1", "100000"]]),
  };
}

for (const backend of selectedBackends()) describe(`OneRoster 1.2: every rostering operation, roles, filters and sorts (${backend.name})`, { skip: backend.skip }, () => {
  const homes = new BackendHomes(backend.name);
  let home: BackendHome | undefined;
  let dir: string;
  let rd: Rosterdock;
  let app: FastifyInstance;
  let base: string;
  let reader: string;
  const BIG = PAGE_CHUNK + 57;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "rosterdock-operations-"));
    rd = await createRosterdock(loadConfig({ ...(home = await homes.create()).env, ROSTERDOCK_PUBLIC_URL: "https://roster.example.org" }), { logger: createLogger("silent") });
    app = await buildHttpApp(rd, { sftpListening: () => true });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    reader = (await rd.tokens.create("app", ["roster.readonly"], "test")).token;
    for (const [slug, files] of [
      ["small", smallDistrict()],
      ["big", bigDistrict(BIG)],
    ] as const) {
      const folder = join(dir, slug);
      await mkdir(folder, { recursive: true });
      for (const [name, content] of Object.entries(files)) await writeFile(join(folder, name), content);
      await rd.districts.create({ slug, name: `District ${slug}` }, "test");
      const outcome = await rd.syncs.ingest(slug, [folder]);
      assert.equal(outcome.status, "applied", `${slug}: ${JSON.stringify(outcome)}`);
    }
  });

  after(async () => {
    await app.close();
    await rd.close();
    await home?.remove();
    await homes.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (path: string) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${reader}` } });
  const or = (slug: string, path: string, query: Record<string, string | number> = {}) => {
    const search = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    return `/districts/${slug}/${V}/${path}${search ? `?${search}` : ""}`;
  };
  async function list(path: string, query: Record<string, string | number> = {}, key?: string, slug = "small") {
    const response = await get(or(slug, path, { limit: 1000, ...query }));
    assert.equal(response.status, 200, `${path} ${JSON.stringify(query)}: ${response.status} ${response.status === 200 ? "" : await response.text()}`);
    const body = (await response.json()) as Record<string, Rec[]>;
    const keys = Object.keys(body);
    assert.equal(keys.length, 1);
    if (key) assert.equal(keys[0], key);
    return { records: body[keys[0]!]!, total: Number(response.headers.get("x-total-count")), link: response.headers.get("link") ?? "" };
  }
  const ids = async (path: string, query: Record<string, string | number> = {}) => (await list(path, { fields: "sourcedId", ...query })).records.map((r) => r.sourcedId);
  async function expectError(path: string, status: number, minor: string) {
    const response = await get(path);
    assert.equal(response.status, status, path);
    const body = (await response.json()) as { imsx_CodeMinor: { imsx_codeMinorField: Array<{ imsx_codeMinorFieldValue: string }> } };
    assert.equal(body.imsx_CodeMinor.imsx_codeMinorField[0]!.imsx_codeMinorFieldValue, minor, path);
  }
  const studentIds = FAMILY_NAMES_SORTED.map((_, i) => `student-${1001 + i}`);
  const atSchool = (school: string) => studentIds.filter((_, i) => (i % 2 === 0 ? "101" : "102") === school);

  it("serves grading periods as empty sets, and 404 for an unknown one or term", async () => {
    for (const path of ["gradingPeriods", "terms/3600/gradingPeriods", "terms/3601-101/gradingPeriods"]) {
      const { records, total } = await list(path, {}, "academicSessions");
      assert.deepEqual(records, [], path);
      assert.equal(total, 0);
    }
    await expectError(or("small", "gradingPeriods/3600"), 404, "unknownobject");
    await expectError(or("small", "terms/nope/gradingPeriods"), 404, "unknownobject");
  });

  it("serves demographics from birth dates and sex where the district sent them, and none where it did not", async () => {
    const { records, total } = await list("demographics", {}, "demographics");
    const expected = FAMILY_NAMES_SORTED.map((_, i) => i).filter((i) => i % 3 !== 0 || i % 6 !== 4);
    assert.equal(total, expected.length);
    assert.deepEqual(
      records.map((r) => r.sourcedId),
      expected.map((i) => `student-${1001 + i}`).sort(),
    );
    const sexOf: Record<string, string> = { M: "male", F: "female", X: "other", U: "unspecified", female: "female" };
    for (const record of records) {
      const i = Number(record.sourcedId.slice("student-".length)) - 1001;
      assert.equal(record.status, "active");
      assert.match(String(record.dateLastModified), /^\d{4}-\d\d-\d\dT/);
      const raw = ["M", "F", "X", "U", "", "female"][i % 6]!;
      if (raw === "") assert.equal("sex" in record, false, "an absent value is left out, never null");
      else assert.equal(record.sex, sexOf[raw]);
      if (i % 3 === 0) assert.equal("birthDate" in record, false);
      else assert.match(String(record.birthDate), /^2012-0\d-1\d$/);
      assert.deepEqual(Object.keys(record).filter((k) => !["sourcedId", "status", "dateLastModified", "birthDate", "sex"].includes(k)), []);
    }
    const one = (await (await get(or("small", `demographics/${records[0]!.sourcedId}`))).json()) as Record<string, Rec>;
    assert.deepEqual(Object.keys(one), ["demographics"]);
    assert.deepEqual(one.demographics, records[0]);
    assert.deepEqual(await ids("demographics", { filter: "sex='female'" }), records.filter((r) => r.sex === "female").map((r) => r.sourcedId));
    await expectError(or("small", "demographics/staff-T1"), 404, "unknownobject");
    await expectError(or("small", "demographics/student-999"), 404, "unknownobject");
    assert.deepEqual((await list("demographics", {}, "demographics", "big")).records, []);
  });

  it("serves a course's classes, a school's terms and a class's members within its school", async () => {
    assert.deepEqual(await ids("courses/C1/classes"), ["K1"]);
    assert.deepEqual(await ids("courses/C2/classes"), ["K2"]);
    await expectError(or("small", "courses/C9/classes"), 404, "unknownobject");
    assert.deepEqual(await ids("schools/101/terms"), ["3600", "3601-101"]);
    assert.deepEqual(await ids("schools/102/terms"), ["3600"]);
    assert.equal((await list("schools/102/terms", {}, "academicSessions")).total, 1);
    await expectError(or("small", "schools/999/terms"), 404, "unknownobject");

    assert.deepEqual(await ids("schools/101/classes/K1/students"), atSchool("101"));
    assert.deepEqual(await ids("schools/101/classes/K1/teachers"), ["staff-T1"]);
    assert.deepEqual(await ids("schools/102/classes/K2/teachers"), ["staff-T1"]);
    const enrollments = (await list("schools/101/classes/K1/enrollments", {}, "enrollments")).records;
    assert.deepEqual(enrollments, (await list("classes/K1/enrollments")).records);
    assert.equal(enrollments.length, atSchool("101").length + 1);
    assert.ok(enrollments.every((e) => (e.school as Ref).sourcedId === "101" && (e.class as Ref).sourcedId === "K1"));
    for (const member of ["students", "teachers", "enrollments"]) {
      await expectError(or("small", `schools/102/classes/K1/${member}`), 404, "unknownobject");
      await expectError(or("small", `schools/101/classes/K9/${member}`), 404, "unknownobject");
      await expectError(or("small", `schools/999/classes/K1/${member}`), 404, "unknownobject");
    }
  });

  it("gives users their roles in the 1.2 vocabulary, one primary role per org", async () => {
    const user = async (id: string) => ((await (await get(or("small", `users/${id}`))).json()) as { user: Rec }).user;
    const roles = async (id: string) => ((await user(id)).roles as Array<{ roleType: string; role: string; org: Ref }>).map((r) => [r.roleType, r.role, r.org.sourcedId]);
    assert.deepEqual(await roles("staff-T1"), [
      ["primary", "teacher", "101"],
      ["primary", "teacher", "102"],
    ]);
    assert.deepEqual(await roles("staff-A1"), [["primary", "districtAdministrator", "district-small"]]);
    assert.deepEqual(await roles("staff-A2"), [["primary", "siteAdministrator", "101"]]);
    assert.deepEqual(await roles("staff-H1"), [["primary", "aide", "102"]]);
    assert.deepEqual(await roles("student-1001"), [["primary", "student", "101"]]);
    const everyone = (await list("users")).records;
    for (const u of everyone) {
      const userRoles = u.roles as Array<{ roleType: string; role: string; org: Ref }>;
      assert.ok(userRoles.length >= 1);
      for (const role of userRoles) assert.ok((ONEROSTER_ROLES as readonly string[]).includes(role.role), role.role);
      const orgs = userRoles.map((r) => r.org.sourcedId);
      for (const org of new Set(orgs)) assert.equal(userRoles.filter((r) => r.org.sourcedId === org && r.roleType === "primary").length, 1, `${u.sourcedId} at ${org}`);
    }
  });

  it("filters on roles.role, roles.roleType and roles.org.sourcedId against any of a user's roles", async () => {
    assert.deepEqual(await ids("users", { filter: "roles.role='siteAdministrator'" }), ["staff-A2"]);
    assert.deepEqual(await ids("users", { filter: "roles.role='districtAdministrator'" }), ["staff-A1"]);
    assert.deepEqual(await ids("users", { filter: "roles.role='teacher'" }), ["staff-T1"]);
    assert.deepEqual(await ids("users", { filter: "roles.role='aide'" }), ["staff-H1"]);
    assert.deepEqual(await ids("users", { filter: "roles.role='administrator'" }), [], "not a 1.2 role");
    assert.deepEqual(await ids("users", { filter: "role='administrator'" }), ["staff-A1", "staff-A2"], "the older role filter still takes the roster's roles");
    assert.deepEqual(await ids("users", { filter: "roles.role!='student'" }), ["staff-A1", "staff-A2", "staff-H1", "staff-T1"]);
    assert.deepEqual(await ids("users", { filter: "roles.role~'Admin'" }), ["staff-A1", "staff-A2"]);
    assert.equal((await list("users", { filter: "roles.roleType='primary'" })).total, studentIds.length + 4);
    assert.equal((await list("users", { filter: "roles.roleType='secondary'" })).total, 0);
    assert.deepEqual(await ids("users", { filter: "roles.org.sourcedId='102'" }), [...atSchool("102"), "staff-H1", "staff-T1"].sort());
    assert.deepEqual(await ids("users", { filter: "roles.org.sourcedId='101'" }), [...atSchool("101"), "staff-A2", "staff-T1"].sort());
    assert.deepEqual(await ids("users", { filter: "roles.org.sourcedId='district-small'" }), ["staff-A1"]);
    assert.deepEqual(await ids("teachers", { filter: "roles.org.sourcedId='102'" }), ["staff-T1"], "the teacher's second school");
    assert.deepEqual(await ids("users", { filter: "roles.org.sourcedId!='101' AND roles.role!='student'" }), ["staff-A1", "staff-H1"]);
    assert.deepEqual(await ids("users", { filter: "roles.org.sourcedId~'district'" }), ["staff-A1"]);
    assert.deepEqual(await ids("users", { filter: "roles.role='teacher' AND roles.org.sourcedId='102'" }), ["staff-T1"]);
  });

  it("filters on the string forms of booleans and enumerations, and on a course's displayed org", async () => {
    const all = await ids("users");
    assert.deepEqual(await ids("users", { filter: "enabledUser='true'" }), all);
    assert.deepEqual(await ids("users", { filter: "enabledUser='false'" }), []);
    const enrollments = (await list("enrollments")).records;
    const byRole = (role: string) => enrollments.filter((e) => e.role === role).map((e) => e.sourcedId);
    assert.deepEqual(await ids("enrollments", { filter: "primary='true'" }), byRole("teacher"));
    assert.deepEqual(await ids("enrollments", { filter: "primary='false'" }), byRole("student"));
    assert.deepEqual(await ids("classes", { filter: "classType='scheduled'" }), ["K1", "K2"]);
    assert.deepEqual(await ids("classes", { filter: "classType='homeroom'" }), []);
    assert.deepEqual(await ids("courses", { filter: "org.sourcedId='district-small'" }), ["C2"]);
    assert.deepEqual(await ids("courses", { filter: "org.sourcedId='101'" }), ["C1", "C3"]);
    const courses = (await list("courses")).records;
    assert.deepEqual(
      courses.map((c) => [c.sourcedId, (c.org as Ref).sourcedId]),
      [
        ["C1", "101"],
        ["C2", "district-small"],
        ["C3", "101"],
      ],
    );
  });

  it("sorts names from several languages as people expect, ascending and descending", async () => {
    const names = async (orderBy: string) => (await list("students", { sort: "familyName", orderBy, fields: "familyName" })).records.map((r) => r.familyName);
    assert.deepEqual(await names("asc"), FAMILY_NAMES_SORTED);
    assert.deepEqual(await names("desc"), [...FAMILY_NAMES_SORTED].reverse());
    // An equality filter on a name matches it exactly (the key finds it, the name decides).
    assert.deepEqual(await ids("students", { filter: "familyName='Müller'" }), [studentIds[FAMILY_NAMES_SORTED.indexOf("Müller")]!]);
    assert.deepEqual(await ids("students", { filter: "familyName='Muller'" }), []);
    assert.deepEqual(await ids("students", { filter: "familyName='de la cruz'" }), []);
    const given = (await list("users", { sort: "givenName", fields: "givenName" })).records.map((r) => String(r.givenName));
    assert.deepEqual(given.slice(0, 2), ["Ada", "Dana"]);
    // Titles and org names too, through the same key.
    assert.deepEqual((await list("orgs", { sort: "name", fields: "name" })).records.map((r) => r.name), ["District small", "North High", "South Middle"]);
    assert.deepEqual((await list("orgs", { sort: "name", orderBy: "desc", fields: "name" })).records.map((r) => r.name), ["South Middle", "North High", "District small"]);
    assert.deepEqual((await list("courses", { sort: "title", fields: "title" })).records.map((r) => r.title), ["Álgebra", "art", "Biology"]);
    assert.deepEqual((await list("terms", { sort: "title", fields: "title" })).records.map((r) => r.title), ["2026-2027", "Semester 1"]);
  });

  it("answers only with codeMinor values of the 1.2 vocabulary", async () => {
    for (const code of Object.keys(ERROR_CATALOGUE) as ErrorCode[]) {
      assert.ok((CODE_MINOR_VALUES as readonly string[]).includes(codeMinor(new RosterdockError(code))), code);
    }
    await expectError(or("small", "users", { sort: "agents" }), 400, "invaliddata");
    await expectError(or("small", "users", { limit: 0 }), 400, "invaliddata");
    await expectError(or("small", "users", { filter: "shoeSize='9'" }), 400, "invalid_filter_field");
    await expectError(or("small", "users", { fields: "shoeSize" }), 400, "invalid_selection_field");
  });

  it("follows a student's new sex and name the next night, and a rollback", async () => {
    const night2 = smallDistrict();
    // student-1001 (Abbott, sex M) becomes Zimmermann, F.
    night2["users.csv"] = night2["users.csv"]!.replace("1001,student,Given0,Abbott,101,,,M,", "1001,student,Given0,Zimmermann,101,,,F,");
    assert.match(night2["users.csv"]!, /Zimmermann/);
    const folder = join(dir, "small-night2");
    await mkdir(folder, { recursive: true });
    for (const [name, content] of Object.entries(night2)) await writeFile(join(folder, name), content);
    const outcome = await rd.syncs.ingest("small", [folder]);
    assert.equal(outcome.status, "applied");
    assert.equal(outcome.counts.users.updated, 1);
    const sex = async () => ((await (await get(or("small", "demographics/student-1001"))).json()) as { demographics: Rec }).demographics.sex;
    const family = async () => (await list("students", { sort: "familyName", fields: "familyName" })).records.map((r) => r.familyName);
    assert.equal(await sex(), "female");
    assert.deepEqual(await family(), [...FAMILY_NAMES_SORTED.slice(1, FAMILY_NAMES_SORTED.indexOf("Zeller")), "Zeller", "Zimmermann", "Zúñiga"]);
    await rd.syncs.rollback(outcome.syncId, "test");
    assert.equal(await sex(), "male");
    assert.deepEqual(await family(), FAMILY_NAMES_SORTED);
  });

  it("honours a limit above 10,000, with the same records, total and links as smaller pages", async () => {
    const total = BIG + 1;
    const whole = await list("users", { limit: 50_000, fields: "sourcedId" }, "users", "big");
    assert.equal(whole.total, total);
    assert.equal(whole.records.length, total);
    assert.doesNotMatch(whole.link, /rel="next"/);
    const first = await list("users", { limit: PAGE_CHUNK, fields: "sourcedId" }, "users", "big");
    const rest = await list("users", { limit: PAGE_CHUNK, offset: PAGE_CHUNK, fields: "sourcedId" }, "users", "big");
    assert.deepEqual(
      whole.records.map((r) => r.sourcedId),
      [...first.records, ...rest.records].map((r) => r.sourcedId),
    );
    const middle = await list("users", { limit: PAGE_CHUNK + 1, offset: 30, sort: "familyName", orderBy: "desc" }, "users", "big");
    const sorted = await list("users", { limit: total, sort: "familyName", orderBy: "desc" }, "users", "big");
    assert.equal(middle.records.length, PAGE_CHUNK + 1);
    assert.deepEqual(middle.records, sorted.records.slice(30, 30 + PAGE_CHUNK + 1));
    assert.match(middle.link, /rel="next"/);
  });
});
