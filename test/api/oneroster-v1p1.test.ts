import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import type { FastifyInstance } from "fastify";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { buildHttpApp } from "../../src/api/http-app.ts";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";
import { EXTRA_STAFF, HAND_WRITTEN } from "../support/oneroster-districts.ts";
import { BackendHomes, selectedBackends, type BackendHome } from "../support/backends.ts";

/**
 * Every operation of the OneRoster 1.1 rostering service, asked of realistic districts (with a
 * terms file, without one, and one whose terms are told apart by their dates; a teacher at two
 * schools, administrators and an aide), each body validated against the JSON Schemas transcribed
 * from the 1.1 specification (test/fixtures/oneroster/v1p1/SOURCE.md). Every href resolves, 1.1
 * and 1.2 list the same records, and tokens granted under 1.1's scope URIs read 1.1.
 */

const V1P1 = "ims/oneroster/v1p1";
const V1P2 = "ims/oneroster/rostering/v1p2";
const PUBLIC_URL = "https://roster.example.org";
const SIZE = { students: 90, teachers: 10, courses: 8, schools: 3 };

/** The 1.1 REST binding's rostering operations (41 GETs), with the record schema of their answer. */
const OPERATIONS: ReadonlyArray<{ id: string; path: string; schema: string; list: boolean }> = [
  ["getAllAcademicSessions", "/academicSessions", "AcademicSession", true],
  ["getAcademicSession", "/academicSessions/{academicSession}", "AcademicSession", false],
  ["getAllClasses", "/classes", "Class", true],
  ["getClass", "/classes/{class}", "Class", false],
  ["getAllCourses", "/courses", "Course", true],
  ["getCourse", "/courses/{course}", "Course", false],
  ["getAllGradingPeriods", "/gradingPeriods", "AcademicSession", true],
  ["getGradingPeriod", "/gradingPeriods/{gradingPeriod}", "AcademicSession", false],
  ["getAllDemographics", "/demographics", "Demographics", true],
  ["getDemographics", "/demographics/{demographics}", "Demographics", false],
  ["getAllEnrollments", "/enrollments", "Enrollment", true],
  ["getEnrollment", "/enrollments/{enrollment}", "Enrollment", false],
  ["getAllOrgs", "/orgs", "Org", true],
  ["getOrg", "/orgs/{org}", "Org", false],
  ["getAllSchools", "/schools", "Org", true],
  ["getSchool", "/schools/{school}", "Org", false],
  ["getAllStudents", "/students", "User", true],
  ["getStudent", "/students/{student}", "User", false],
  ["getAllTeachers", "/teachers", "User", true],
  ["getTeacher", "/teachers/{teacher}", "User", false],
  ["getAllTerms", "/terms", "AcademicSession", true],
  ["getTerm", "/terms/{term}", "AcademicSession", false],
  ["getAllUsers", "/users", "User", true],
  ["getUser", "/users/{user}", "User", false],
  ["getCoursesForSchool", "/schools/{school}/courses", "Course", true],
  ["getEnrollmentsForClassInSchool", "/schools/{school}/classes/{class}/enrollments", "Enrollment", true],
  ["getStudentsForClassInSchool", "/schools/{school}/classes/{class}/students", "User", true],
  ["getTeachersForClassInSchool", "/schools/{school}/classes/{class}/teachers", "User", true],
  ["getEnrollmentsForSchool", "/schools/{school}/enrollments", "Enrollment", true],
  ["getStudentsForSchool", "/schools/{school}/students", "User", true],
  ["getTeachersForSchool", "/schools/{school}/teachers", "User", true],
  ["getTermsForSchool", "/schools/{school}/terms", "AcademicSession", true],
  ["getClassesForTerm", "/terms/{term}/classes", "Class", true],
  ["getGradingPeriodsForTerm", "/terms/{term}/gradingPeriods", "AcademicSession", true],
  ["getClassesForCourse", "/courses/{course}/classes", "Class", true],
  ["getClassesForStudent", "/students/{student}/classes", "Class", true],
  ["getClassesForTeacher", "/teachers/{teacher}/classes", "Class", true],
  ["getClassesForSchool", "/schools/{school}/classes", "Class", true],
  ["getClassesForUser", "/users/{user}/classes", "Class", true],
  ["getStudentsForClass", "/classes/{class}/students", "User", true],
  ["getTeachersForClass", "/classes/{class}/teachers", "User", true],
].map(([id, path, schema, list]) => ({ id: id as string, path: path as string, schema: schema as string, list: list as boolean }));


type Rec = Record<string, unknown> & { sourcedId: string };

const SAMPLE_KINDS = ["class", "school", "course", "term", "academicSession", "gradingPeriod", "user", "student", "teacher", "enrollment", "org", "demographics"] as const;
/** Sample sourcedIds of each kind, to fill the operations' path parameters. */
type Samples = Record<(typeof SAMPLE_KINDS)[number], string[]>;

const FORM = "application/x-www-form-urlencoded";

for (const backend of selectedBackends()) describe(`OneRoster 1.1 at /districts/{slug}/ims/oneroster/v1p1 (${backend.name})`, { skip: backend.skip }, () => {
  const homes = new BackendHomes(backend.name);
  let home: BackendHome | undefined;
  let dir: string;
  let rd: Rosterdock;
  let app: FastifyInstance;
  let base: string;
  let token: string;
  const validators = new Map<string, ValidateFunction>();
  const hrefs = new Set<string>();

  before(async () => {
    const schema = JSON.parse(await readFile(join(import.meta.dirname, "..", "fixtures", "oneroster", "v1p1", "oneroster-v1p1.schema.json"), "utf8")) as { $id: string; $defs: Record<string, unknown> };
    const ajv = new Ajv({ strict: true, allErrors: true });
    (addFormatsModule as unknown as (ajv: Ajv) => Ajv)(ajv);
    ajv.addSchema(schema);
    for (const name of Object.keys(schema.$defs)) validators.set(name, ajv.getSchema(`${schema.$id}#/$defs/${name}`)!);

    dir = await mkdtemp(join(tmpdir(), "rosterdock-oneroster-v1p1-"));
    rd = await createRosterdock(loadConfig({ ...(home = await homes.create()).env, ROSTERDOCK_PUBLIC_URL: PUBLIC_URL }), { logger: createLogger("silent") });
    app = await buildHttpApp(rd, { sftpListening: () => true });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    token = (await rd.tokens.create("app", ["roster.readonly"], "test")).token;

    const demo = await generateDemoData(join(dir, "night1"), { ...SIZE, styles: ["dem"] });
    const staff = join(dir, "users.csv");
    await writeFile(staff, `${EXTRA_STAFF}\n`);
    const withoutTerms = demo.files.dem.filter((f) => !/terms/i.test(basename(f)));
    assert.equal(withoutTerms.length, demo.files.dem.length - 1);
    const handWritten = join(dir, "hand-written");
    await mkdir(handWritten);
    for (const [name, text] of Object.entries(HAND_WRITTEN)) await writeFile(join(handWritten, name), `${text}\n`);
    for (const [slug, files] of [
      ["terms", [...demo.files.dem, staff]],
      ["noterms", [...withoutTerms, staff]],
      ["dates", [...Object.keys(HAND_WRITTEN).map((name) => join(handWritten, name)), staff]],
    ] as const) {
      await rd.districts.create({ slug, name: `District ${slug}` }, "test");
      const outcome = await rd.syncs.ingest(slug, files);
      assert.equal(outcome.status, "applied", `${slug} night applied`);
    }
  });

  after(async () => {
    await app.close();
    await rd.close();
    await home?.remove();
    await homes.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (path: string, bearer = token) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${bearer}` } });
  const url = (slug: string, path: string, query: Record<string, string | number> = {}, version = V1P1) => {
    const search = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    return `/districts/${slug}/${version}${path}${search ? `?${search}` : ""}`;
  };
  const records = (body: Record<string, unknown>): Rec[] => {
    const value = Object.values(body)[0];
    return Array.isArray(value) ? (value as Rec[]) : [value as Rec];
  };
  async function all(slug: string, path: string, version = V1P1, query: Record<string, string> = {}): Promise<Rec[]> {
    const response = await get(url(slug, path, { limit: 10_000, ...query }, version));
    assert.equal(response.status, 200, `${version}${path}`);
    return records((await response.json()) as Record<string, unknown>);
  }

  function collectHrefs(value: unknown): void {
    if (Array.isArray(value)) return value.forEach(collectHrefs);
    if (value === null || typeof value !== "object") return;
    for (const [key, inner] of Object.entries(value)) {
      if (key === "href" && typeof inner === "string") hrefs.add(inner);
      else collectHrefs(inner);
    }
  }

  let problems: string[] = [];
  function check(schema: string, body: unknown, what: string): void {
    const validate = validators.get(schema);
    assert.ok(validate, schema);
    if (!validate(body)) {
      const errors = (validate.errors ?? []).slice(0, 4).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
      problems.push(`${what} does not validate against ${schema}:\n  ${errors.join("\n  ")}`);
    }
  }
  const report = () => {
    const found = problems;
    problems = [];
    assert.equal(found.length, 0, `${found.length} responses do not validate:\n${found.join("\n")}`);
  };

  /** Asks one URL and validates the body. */
  async function ask(op: (typeof OPERATIONS)[number], path: string): Promise<Record<string, unknown>> {
    const response = await get(path);
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(response.status, 200, `${op.id} ${path}: ${response.status} ${JSON.stringify(body).slice(0, 300)}`);
    check(op.list ? `${op.schema}Set` : `Single${op.schema}`, body, `${op.id} ${path}`);
    collectHrefs(body);
    return body;
  }

  async function samples(slug: string): Promise<Samples> {
    const classes = await all(slug, "/classes");
    const klass = classes[0]!;
    const school = (klass.school as Rec).sourcedId;
    const sessions = await all(slug, "/academicSessions");
    const users = await all(slug, "/users");
    const teachers = await all(slug, "/teachers");
    const twoSchools = teachers.find((t) => (t.orgs as Rec[]).length > 1);
    assert.ok(twoSchools, `${slug}: a teacher at two schools`);
    const staff = users.filter((u) => u.sourcedId.startsWith("staff-A-"));
    assert.deepEqual(staff.map((u) => u.role).sort(), ["administrator", "administrator", "aide"], `${slug}: two administrators and an aide`);
    const student = (await all(slug, "/students"))[0]!;
    const enrollment = (await all(slug, "/enrollments"))[0]!;
    const gradingPeriods = await all(slug, "/gradingPeriods");
    const demographics = await all(slug, "/demographics");
    return {
      class: [klass.sourcedId],
      school: [school],
      course: [(klass.course as Rec).sourcedId],
      term: [...new Set([...(klass.terms as Rec[]).map((t) => t.sourcedId), ...sessions.map((s) => s.sourcedId)])],
      academicSession: sessions.map((s) => s.sourcedId),
      gradingPeriod: gradingPeriods.map((s) => s.sourcedId),
      user: [twoSchools!.sourcedId, ...staff.map((a) => a.sourcedId), student.sourcedId],
      student: [student.sourcedId],
      teacher: [twoSchools!.sourcedId],
      enrollment: [enrollment.sourcedId],
      org: [`district-${slug}`, school],
      demographics: demographics.slice(0, 2).map((d) => d.sourcedId),
    };
  }

  function urlsOf(path: string, ids: Samples): string[] {
    let results = [""];
    for (const segment of path.split("/").slice(1)) {
      const kind = segment.slice(1, -1) as keyof Samples;
      if (segment.startsWith("{")) assert.ok(SAMPLE_KINDS.includes(kind), `${path}: no samples of ${kind}`);
      const values = segment.startsWith("{") ? ids[kind] : [segment];
      results = results.flatMap((prefix) => values.map((v) => `${prefix}/${encodeURIComponent(v)}`));
    }
    return results;
  }

  it("serves the 41 operations of the 1.1 rostering service and no other", () => {
    assert.equal(OPERATIONS.length, 41);
    assert.equal(new Set(OPERATIONS.map((o) => o.id)).size, 41);
    for (const op of OPERATIONS) {
      const route = `/districts/:slug/${V1P1}${op.path.replace(/\{(\w+)\}/g, (_, name: string, offset: number) => (op.path.indexOf("{") === offset && op.path.includes("}/classes/{") ? ":schoolId" : op.path.lastIndexOf("{") === offset && op.path.includes("}/classes/{") ? ":classId" : ":id"))}`;
      assert.equal(app.hasRoute({ method: "GET", url: route }), true, `${op.id} ${route}`);
    }
    // 1.2 extras that 1.1 does not define.
    assert.equal(app.hasRoute({ method: "GET", url: `/districts/:slug/${V1P1}/classes/:id/enrollments` }), false);
  });

  for (const [slug, description] of Object.entries({ terms: "with a terms file", noterms: "without a terms file", dates: "whose terms are told apart by their dates" })) {
    describe(`a district ${description}`, () => {
      let ids: Samples;
      before(async () => {
        ids = await samples(slug);
      });

      it("answers every operation with a body that validates, on several pages", async () => {
        for (const op of OPERATIONS) {
          for (const path of urlsOf(op.path, ids)) {
            if (!op.list) {
              await ask(op, url(slug, path));
              continue;
            }
            if ((await ask(op, url(slug, path, { limit: 3 }))) === undefined) continue;
            const every = records((await ask(op, url(slug, path, { limit: 10_000 })))!);
            if (every.length > 3) {
              const second = records((await ask(op, url(slug, path, { limit: 3, offset: 3 })))!);
              assert.deepEqual(second.map((r) => r.sourcedId), every.slice(3, 6).map((r) => r.sourcedId), `${op.id} ${path}: the second page`);
              await ask(op, url(slug, path, { limit: 3, offset: Math.floor((every.length - 1) / 3) * 3 }));
            }
          }
        }
        report();
      });

      it("shapes users, enrollments and sessions in 1.1's vocabulary", async () => {
        for (const user of await all(slug, "/users")) {
          assert.equal(user.roles, undefined);
          assert.equal(user.primaryOrg, undefined);
          assert.equal(user.enabledUser, "true");
          assert.ok(["administrator", "aide", "student", "teacher"].includes(String(user.role)), String(user.role));
          for (const org of user.orgs as Rec[]) assert.equal(org.href, `${PUBLIC_URL}/districts/${slug}/${V1P1}/orgs/${encodeURIComponent(org.sourcedId)}`);
        }
        const districtAdmin = await all(slug, "/users", V1P1, { filter: "role='administrator'" });
        assert.ok(districtAdmin.some((u) => (u.orgs as Rec[])[0]!.sourcedId === `district-${slug}`), "an administrator without a school belongs to the district");
        const teachers12 = new Map((await all(slug, "/teachers", V1P2)).map((t) => [t.sourcedId, t]));
        for (const teacher of await all(slug, "/teachers")) {
          const roles = teachers12.get(teacher.sourcedId)!.roles as Array<{ roleType: string; org: Rec }>;
          assert.deepEqual(
            (teacher.orgs as Rec[]).map((o) => o.sourcedId).sort(),
            roles.map((r) => r.org.sourcedId).sort(),
            `${teacher.sourcedId}: the same orgs as its 1.2 roles`,
          );
          assert.equal((teacher.orgs as Rec[])[0]!.sourcedId, ((teachers12.get(teacher.sourcedId)!.primaryOrg) as Rec).sourcedId, "the primary org first");
        }
        const enrollments = await all(slug, "/enrollments");
        assert.deepEqual([...new Set(enrollments.map((e) => `${e.role}:${e.primary}`))].sort(), ["student:false", "teacher:true"]);
        for (const session of await all(slug, "/academicSessions")) assert.match(String(session.schoolYear), /^\d{4}$/);
        const filtered = await all(slug, "/users", V1P1, { filter: `orgs.sourcedId='${(enrollments[0]!.school as Rec).sourcedId}'`, sort: "orgs.sourcedId" });
        assert.ok(filtered.length > 0);
        for (const user of filtered) assert.equal((user.orgs as Rec[])[0]!.sourcedId, (enrollments[0]!.school as Rec).sourcedId);
        // Dotted reference names filter and sort as in 1.2 (which reads `org.sourcedId` of courses the same way).
        for (const org of [`district-${slug}`, ...ids.school]) {
          const query = { filter: `org.sourcedId='${org}'`, sort: "org.sourcedId" };
          const ours = (await all(slug, "/courses", V1P1, query)).map((c) => c.sourcedId);
          assert.deepEqual(ours, (await all(slug, "/courses", V1P2, query)).map((c) => c.sourcedId), `courses of ${org}`);
        }
      });

      it("lists the same records as 1.2 in every collection", async () => {
        for (const path of ["/academicSessions", "/classes", "/courses", "/demographics", "/enrollments", "/orgs", "/schools", "/students", "/teachers", "/terms", "/users"]) {
          const v1p1 = (await all(slug, path)).map((r) => `${r.sourcedId}:${r.status}:${r.dateLastModified}`).sort();
          const v1p2 = (await all(slug, path, V1P2)).map((r) => `${r.sourcedId}:${r.status}:${r.dateLastModified}`).sort();
          // The hand-written district sends no birth dates, so it has no demographics.
          assert.equal(v1p1.length > 0, path !== "/demographics" || slug !== "dates", path);
          assert.deepEqual(v1p1, v1p2, path);
        }
        const gradingPeriods = (await all(slug, "/academicSessions", V1P2, { filter: "type='gradingPeriod'" })).map((s) => s.sourcedId).sort();
        assert.deepEqual((await all(slug, "/gradingPeriods")).map((s) => s.sourcedId).sort(), gradingPeriods);
      });

      it("answers errors with a 1.1 imsx_StatusInfo body", async () => {
        for (const op of OPERATIONS) {
          if (!op.path.includes("{")) continue;
          const unknown = op.path.replace(/\{[^}]+\}/g, "no-such-record");
          const response = await get(url(slug, unknown));
          const body = (await response.json()) as Record<string, unknown>;
          assert.equal(response.status, 404, `${op.id} ${unknown}`);
          check("StatusInfo", body, `${op.id} ${unknown}`);
          assert.match(JSON.stringify(body), /"unknownobject"/);
        }
        if (ids.class.length > 0 && ids.school.length > 0) {
          const otherSchool = (await all(slug, "/schools")).find((s) => s.sourcedId !== ids.school[0]);
          if (otherSchool) {
            const response = await get(url(slug, `/schools/${otherSchool.sourcedId}/classes/${ids.class[0]}/students`));
            assert.equal(response.status, 404, "a class asked for under another school");
          }
        }
        const bad: Array<[Record<string, string>, string]> = [
          [{ filter: "nosuchfield='x'" }, "invalid_filter_field"],
          [{ filter: "familyName=" }, "invalid_filter_field"],
          [{ sort: "nosuchfield" }, "invalid_sort_field"],
          [{ fields: "nosuchfield" }, "invalid_selection_field"],
          [{ fields: "roles" }, "invalid_selection_field"],
          [{ limit: "0" }, "invaliddata"],
        ];
        for (const [query, minor] of bad) {
          const response = await get(url(slug, "/users", query));
          const body = (await response.json()) as Record<string, unknown>;
          assert.equal(response.status, 400, JSON.stringify(query));
          check("StatusInfo", body, `getAllUsers ${JSON.stringify(query)}`);
          assert.equal((body.imsx_CodeMinor as { imsx_codeMinorField: Array<{ imsx_codeMinorFieldValue: string }> }).imsx_codeMinorField[0]!.imsx_codeMinorFieldValue, minor, JSON.stringify(query));
        }
        const unauthenticated = await fetch(`${base}${url(slug, "/users")}`);
        assert.equal(unauthenticated.status, 401);
        check("StatusInfo", await unauthenticated.json(), "getAllUsers without a token");
        const oneField = (await (await get(url(slug, `/users/${encodeURIComponent(ids.user[0]!)}`, { fields: "sourcedId,orgs" }))).json()) as { user: Rec };
        assert.deepEqual(Object.keys(oneField.user), ["sourcedId", "orgs"]);
        report();
      });

      it("resolves every href of every record it returned, under the 1.1 base URL", async () => {
        assert.ok(hrefs.size > 0);
        const broken: string[] = [];
        for (const href of hrefs) {
          if (!href.includes(`/districts/${slug}/`)) continue;
          assert.ok(href.startsWith(`${PUBLIC_URL}/districts/${slug}/${V1P1}/`), href);
          const response = await get(href.slice(PUBLIC_URL.length));
          if (response.status !== 200) broken.push(`${href}: ${response.status}`);
          else await response.arrayBuffer();
        }
        assert.deepEqual(broken, []);
      });
    });
  }

  it("grants tokens for 1.1's scope URIs that read 1.1, and refuses a token without the roster scope", async () => {
    const client = await rd.clients.create({ name: "sds", scopes: [] }, "test");
    const scope = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-core.readonly";
    const response = await fetch(`${base}/oauth/token`, {
      method: "POST",
      headers: { "content-type": FORM, authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString("base64")}` },
      body: new URLSearchParams({ grant_type: "client_credentials", scope }).toString(),
    });
    const granted = (await response.json()) as { access_token: string; scope: string };
    assert.equal(response.status, 200, JSON.stringify(granted));
    assert.equal(granted.scope, scope);
    const read = await get(url("terms", "/users", { limit: 1 }), granted.access_token);
    assert.equal(read.status, 200);
    check("UserSet", await read.json(), "getAllUsers with a 1.1 scope token");
    const admin = (await rd.tokens.create("ops", ["roster-demographics.readonly"], "test")).token;
    const refused = await get(url("terms", "/users", { limit: 1 }), admin);
    assert.equal(refused.status, 403);
    check("StatusInfo", await refused.json(), "getAllUsers with a demographics-only token");
    report();
  });
});
