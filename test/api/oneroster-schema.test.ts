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
 * Every operation of 1EdTech's OneRoster 1.2 Rostering OpenAPI document, asked of a realistic
 * district (one with a terms file, one without; a teacher at two schools, a district
 * administrator, a school administrator and an aide), and every body validated against the
 * document's schemas. Every `href` of every record seen must resolve.
 */

const V = "ims/oneroster/rostering/v1p2";
const PUBLIC_URL = "https://roster.example.org";
const SIZE = { students: 120, teachers: 12, courses: 10, schools: 3 };

interface Operation {
  path: string;
  operationId: string;
  ok: string;
  error: string;
}

type Rec = Record<string, unknown> & { sourcedId: string };

const fixture = join(import.meta.dirname, "..", "fixtures", "oneroster", "onerosterv1p2rostersservice_openapi3_v1p0.json");

/** The school year (its ending year) a date falls in: from July on, the next one. */
const schoolYearOf = (date: string) => Number(date.slice(0, 4)) + (Number(date.slice(5, 7)) >= 7 ? 1 : 0);

function schemaRef(operation: { responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }> }, status: string): string {
  const ref = operation.responses[status]?.content?.["application/json"]?.schema?.$ref;
  if (ref === undefined) throw new Error(`no ${status} schema`);
  return ref;
}

for (const backend of selectedBackends()) describe(`OneRoster 1.2 responses validate against 1EdTech's OpenAPI schemas (${backend.name})`, { skip: backend.skip }, () => {
  const homes = new BackendHomes(backend.name);
  let home: BackendHome | undefined;
  let dir: string;
  let rd: Rosterdock;
  let app: FastifyInstance;
  let base: string;
  let token: string;
  let operations: Operation[];
  const validators = new Map<string, ValidateFunction>();
  /** Every href seen in a record, to be followed at the end. */
  const hrefs = new Set<string>();

  before(async () => {
    const doc = JSON.parse(await readFile(fixture, "utf8")) as { paths: Record<string, { get?: { operationId: string; responses: never } }> };
    operations = Object.entries(doc.paths).flatMap(([path, item]) => (item.get ? [{ path, operationId: item.get.operationId, ok: schemaRef(item.get, "200"), error: schemaRef(item.get, "default") }] : []));
    const ajv = new Ajv({ strict: false, allErrors: true });
    const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
    addFormats(ajv);
    ajv.addSchema(doc, "oneroster-v1p2");
    const validator = (ref: string) => {
      let v = validators.get(ref);
      if (v === undefined) {
        v = ajv.getSchema(`oneroster-v1p2${ref}`);
        if (v === undefined) throw new Error(`schema ${ref} not found`);
        validators.set(ref, v);
      }
      return v;
    };
    for (const op of operations) (validator(op.ok), validator(op.error));
    for (const name of ["OrgDType", "AcademicSessionDType", "CourseDType", "ClassDType", "UserDType", "EnrollmentDType"]) validator(`#/components/schemas/${name}`);

    dir = await mkdtemp(join(tmpdir(), "rosterdock-oneroster-schema-"));
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
    assert.equal(withoutTerms.length, demo.files.dem.length - 1, "the demo night has one terms file");
    // Semesters only: the full-year terms (TermID 3600) left out, so the year must be derived.
    const termsFile = demo.files.dem.find((f) => /terms/i.test(basename(f)))!;
    const semestersOnly = join(dir, basename(termsFile));
    const termLines = (await readFile(termsFile, "utf8")).split("\n");
    await writeFile(semestersOnly, termLines.filter((line) => !line.startsWith('"3600"')).join("\n"));
    assert.ok(termLines.some((line) => line.startsWith('"3600"')));
    const handWritten = join(dir, "hand-written");
    await mkdir(handWritten);
    for (const [name, text] of Object.entries(HAND_WRITTEN)) await writeFile(join(handWritten, name), `${text}\n`);
    for (const [slug, files] of [
      ["terms", [...demo.files.dem, staff]],
      ["noterms", [...withoutTerms, staff]],
      ["semesters", [...withoutTerms, semestersOnly, staff]],
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

  const get = (path: string) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const url = (slug: string, path: string, query: Record<string, string | number> = {}) => {
    const search = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    return `/districts/${slug}/${V}${path}${search ? `?${search}` : ""}`;
  };

  function collectHrefs(value: unknown): void {
    if (Array.isArray(value)) return value.forEach(collectHrefs);
    if (value === null || typeof value !== "object") return;
    for (const [key, inner] of Object.entries(value)) {
      if (key === "href" && typeof inner === "string") hrefs.add(inner);
      else collectHrefs(inner);
    }
  }

  /** Violations found by the running test, reported together at its end so one does not hide the others. */
  let problems: string[] = [];
  function check(ref: string, body: unknown, what: string): void {
    const validate = validators.get(ref)!;
    if (!validate(body)) {
      const errors = (validate.errors ?? []).slice(0, 4).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
      problems.push(`${what} does not validate against ${ref.split("/").pop()}:\n  ${errors.join("\n  ")}`);
    }
  }
  /** What the schema cannot say: "There MUST be one, and only one, primary role for each org." */
  function checkRoles(user: Rec, what: string): void {
    const primaries = new Map<string, number>();
    for (const role of (user.roles ?? []) as Array<{ roleType: string; org: Rec }>) {
      primaries.set(role.org.sourcedId, (primaries.get(role.org.sourcedId) ?? 0) + (role.roleType === "primary" ? 1 : 0));
    }
    for (const [org, count] of primaries) if (count !== 1) problems.push(`${what}: user ${user.sourcedId} has ${count} primary roles at ${org}`);
  }
  const report = () => {
    const found = problems;
    problems = [];
    assert.equal(found.length, 0, `${found.length} responses do not validate:\n${found.join("\n")}`);
  };

  /** Asks one URL of an operation and validates the body; returns it, or undefined for an awaited route not served yet. */
  async function ask(op: Operation, path: string, expected = 200): Promise<Record<string, unknown>> {
    const response = await get(path);
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(response.status, expected, `${op.operationId} ${path}: ${response.status} ${JSON.stringify(body).slice(0, 300)}`);
    check(expected === 200 ? op.ok : op.error, body, `${op.operationId} ${path}`);
    if (op.ok.includes("User")) for (const user of records(body)) checkRoles(user, `${op.operationId} ${path}`);
    collectHrefs(body);
    return body;
  }

  const records = (body: Record<string, unknown> | undefined): Rec[] => {
    if (body === undefined) return [];
    const value = Object.values(body)[0];
    return Array.isArray(value) ? (value as Rec[]) : [value as Rec];
  };

  /** Sample ids per district, to fill the document's path parameters. */
  async function samples(slug: string) {
    const list = async (path: string, query: Record<string, string | number> = {}) => {
      const body = (await (await get(url(slug, path, { limit: 10_000, ...query }))).json()) as Record<string, Rec[]>;
      return Object.values(body)[0]!;
    };
    const classes = await list("/classes");
    const klass = classes[0]!;
    const school = (klass.school as Rec).sourcedId;
    const sessions = await list("/academicSessions");
    const teachers = await list("/teachers");
    const twoSchools = teachers.find((t) => new Set((t.roles as Array<{ org: Rec }>).map((r) => r.org.sourcedId)).size > 1);
    assert.ok(twoSchools, `${slug}: a teacher at two schools`);
    const users = await list("/users");
    const admins = users.filter((u) => u.sourcedId.startsWith("staff-A-"));
    assert.equal(admins.length, 3, `${slug}: two administrators and an aide`);
    const student = (await list("/students", { limit: 1 }))[0]!;
    const enrollment = (await list("/enrollments", { limit: 1 }))[0]!;
    const gradingPeriods = await get(url(slug, "/gradingPeriods", { limit: 1 }));
    const demographics = ((await (await get(url(slug, "/demographics", { limit: 1 }))).json()) as { demographics: Rec[] }).demographics[0]?.sourcedId;
    const gradingPeriod = gradingPeriods.status === 200 ? ((await gradingPeriods.json()) as { academicSessions: Rec[] }).academicSessions[0]?.sourcedId : undefined;
    return {
      class: [klass.sourcedId],
      school: [school],
      course: [(klass.course as Rec).sourcedId],
      term: [...new Set([...(klass.terms as Rec[]).map((t) => t.sourcedId), ...sessions.map((s) => s.sourcedId)])],
      academicSession: sessions.map((s) => s.sourcedId),
      user: [twoSchools!.sourcedId, ...admins.map((a) => a.sourcedId), student.sourcedId],
      student: [student.sourcedId],
      teacher: [twoSchools!.sourcedId],
      enrollment: [enrollment.sourcedId],
      org: [`district-${slug}`, school],
      demographics: demographics === undefined ? [] : [demographics],
      gradingPeriod: gradingPeriod === undefined ? [] : [gradingPeriod],
    };
  }

  /** The concrete URLs of an operation: each path parameter filled with every sample of its kind. */
  function urlsOf(path: string, ids: Awaited<ReturnType<typeof samples>>): string[][] {
    const kindOf = (segments: string[], i: number): keyof typeof ids => {
      const name = segments[i]!.slice(1, -1);
      if (name !== "sourcedId") return name.replace(/SourcedId$/, "") as keyof typeof ids;
      const collection = segments[i - 1]!;
      const singular: Record<string, keyof typeof ids> = {
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
      return singular[collection]!;
    };
    let results: string[][] = [[]];
    const segments = path.split("/").slice(1);
    segments.forEach((segment, i) => {
      const values = segment.startsWith("{") ? ids[kindOf(segments, i)] : [segment];
      results = results.flatMap((prefix) => values.map((v) => [...prefix, encodeURIComponent(v)]));
    });
    return results;
  }

  it("reads the document: 41 GET operations", () => {
    assert.equal(operations.length, 41);
  });

  const DISTRICTS: Record<string, string> = {
    terms: "with a terms file",
    noterms: "without a terms file",
    semesters: "whose terms file has semesters but no full year",
    dates: "whose terms are told apart by their dates",
  };
  for (const [slug, description] of Object.entries(DISTRICTS)) {
    describe(`a district ${description}`, () => {
      let ids: Awaited<ReturnType<typeof samples>>;
      before(async () => {
        ids = await samples(slug);
      });

      it("answers every operation of the document with a body that validates, on several pages", async () => {
        for (const op of operations) {
          const collection = op.ok.endsWith("SetDType");
          for (const segments of urlsOf(op.path, ids)) {
            const path = `/${segments.join("/")}`;
            if (!collection) {
              await ask(op, url(slug, path));
              continue;
            }
            await ask(op, url(slug, path, { limit: 3 }));
            const all = records(await ask(op, url(slug, path, { limit: 10_000 })));
            if (all.length > 3) {
              await ask(op, url(slug, path, { limit: 3, offset: 3 }));
              await ask(op, url(slug, path, { limit: 3, offset: Math.floor((all.length - 1) / 3) * 3 }));
            }
          }
        }
        report();
      });

      it("answers errors with an imsx_StatusInfo body: unknown records, bad filter, sort and fields", async () => {
        for (const op of operations) {
          const params = op.path.match(/\{[^}]+\}/g) ?? [];
          if (params.length > 0) {
            const unknown = op.path.replace(/\{[^}]+\}/g, "no-such-record");
            const response = await get(url(slug, unknown));
            const body = await response.json();
            assert.equal(response.status, 404, `${op.operationId} ${unknown}`);
            check(op.error, body, `${op.operationId} ${unknown}`);
          }
        }
        const users = operations.find((o) => o.operationId === "getAllUsers")!;
        const bad: Array<Record<string, string>> = [{ filter: "nosuchfield='x'" }, { filter: "familyName=" }, { sort: "nosuchfield" }, { fields: "nosuchfield" }];
        for (const query of bad) {
          const response = await get(url(slug, "/users", query));
          assert.equal(response.status, 400, JSON.stringify(query));
          check(users.error, await response.json(), `getAllUsers ${JSON.stringify(query)}`);
        }
        report();
      });

      it("has a school year session for every year, parent of the terms and semesters, and one for every class", async () => {
        const body = (await (await get(url(slug, "/academicSessions", { limit: 10_000 }))).json()) as { academicSessions: Rec[] };
        const sessions = new Map(body.academicSessions.map((s) => [s.sourcedId, s]));
        const years = body.academicSessions.filter((s) => s.type === "schoolYear");
        assert.ok(years.length > 0);
        for (const year of years) {
          if (slug !== "dates" || !year.sourcedId.startsWith("school-year-")) assert.equal(year.schoolYear, "2027", `${year.sourcedId}: 2026–27 ends in 2027`);
          assert.equal(year.parent, undefined);
          for (const child of (year.children ?? []) as Rec[]) assert.equal(((sessions.get(child.sourcedId)!.parent) as Rec).sourcedId, year.sourcedId);
        }
        for (const session of body.academicSessions.filter((s) => s.type !== "schoolYear")) {
          if (slug !== "dates") assert.equal(session.type, "semester", `${session.sourcedId} (${session.startDate}–${session.endDate}) is a semester`);
          const parent = sessions.get((session.parent as Rec).sourcedId)!;
          assert.equal(parent.type, "schoolYear");
          assert.ok(((parent.children ?? []) as Rec[]).some((c) => c.sourcedId === session.sourcedId), `${parent.sourcedId} lists ${session.sourcedId}`);
        }
        const filtered = (await (await get(url(slug, "/academicSessions", { filter: "type='schoolYear'", limit: 10_000 }))).json()) as { academicSessions: Rec[] };
        assert.deepEqual(
          filtered.academicSessions.map((s) => s.sourcedId),
          years.map((s) => s.sourcedId),
        );
        if (slug === "dates") {
          assert.deepEqual(
            body.academicSessions.filter((s) => !String(s.sourcedId).startsWith("school-year-")).map((s) => [s.sourcedId, s.type, s.schoolYear, (s.parent as Rec | undefined)?.sourcedId]),
            [
              ["Q1-101", "term", "2027", "Y27-101"],
              ["S2-101", "semester", "2027", "Y27-101"],
              ["Y27-101", "schoolYear", "2027", undefined],
              ["Y27-102", "schoolYear", "2027", undefined],
            ],
          );
        } else if (slug === "terms") {
          assert.deepEqual(years.map((y) => y.sourcedId).sort(), ["3600-101", "3600-102", "3600-103"]);
          assert.deepEqual(((sessions.get("3600-101")!.children ?? []) as Rec[]).map((c) => c.sourcedId), ["3601-101", "3602-101"]);
        } else {
          assert.deepEqual(
            years.map((y) => [y.sourcedId, y.title, y.startDate, y.endDate]),
            [["school-year-2027", "2026–2027 school year", "2026-07-01", "2027-06-30"]],
          );
          assert.equal(body.academicSessions.length, slug === "noterms" ? 1 : 7, "the derived year and, with semesters, three schools' two semesters");
        }
        const classes = (await (await get(url(slug, "/classes", { limit: 10_000 }))).json()) as { classes: Rec[] };
        let inYear = 0;
        for (const klass of classes.classes) {
          const terms = klass.terms as Rec[];
          assert.equal(terms.length, 1, klass.sourcedId);
          assert.ok(sessions.has(terms[0]!.sourcedId), `${klass.sourcedId}: ${terms[0]!.sourcedId}`);
          if (sessions.get(terms[0]!.sourcedId)!.type === "schoolYear") inYear++;
        }
        if (slug === "dates") {
          // C3 and C4 have no term: the school year they were applied in, at their school.
          const terms = Object.fromEntries(classes.classes.map((c) => [c.sourcedId, (c.terms as Rec[])[0]!.sourcedId]));
          const year = schoolYearOf(String(classes.classes.find((c) => c.sourcedId === "C3")!.dateLastModified));
          const expected = year === 2027 ? "Y27-102" : `school-year-${year}`;
          assert.deepEqual(terms, { C1: "Q1-101", C2: "S2-101", C3: expected, C4: expected });
          return;
        }
        const derived = await get(url(slug, "/terms/school-year-2027/classes", { limit: 10_000 }));
        if (slug === "terms") assert.equal(derived.status, 404);
        else assert.equal(((await derived.json()) as { classes: Rec[] }).classes.length, inYear);
      });

      it("feeds changes whose records validate and equal what the API answers for them", async () => {
        const schemaOf: Record<string, string> = {
          orgs: "OrgDType",
          academicSessions: "AcademicSessionDType",
          courses: "CourseDType",
          classes: "ClassDType",
          users: "UserDType",
          enrollments: "EnrollmentDType",
        };
        const items: Array<{ entity: string; id: string; op: string; data: Rec | null }> = [];
        for (let cursor = "0"; ; ) {
          const response = await get(`/api/v1/districts/${slug}/changes?after=${cursor}&limit=1000`);
          assert.equal(response.status, 200);
          const body = (await response.json()) as { changes: typeof items; nextCursor: string };
          items.push(...body.changes);
          if (body.nextCursor === cursor) break;
          cursor = body.nextCursor;
        }
        assert.ok(items.length > 0);
        const seen = new Set<string>();
        let enrollmentsSkipped = 0;
        for (const item of items) {
          assert.equal(item.op, "created");
          const ref = `#/components/schemas/${schemaOf[item.entity]}`;
          check(ref, item.data, `change ${item.entity} ${item.id}`);
          if (item.entity === "users") checkRoles(item.data!, `change ${item.id}`);
          // Every record validates; the API's own copy is fetched for all but most enrollments (the bulk of the feed).
          if (item.entity === "enrollments" && seen.has("enrollments") && ++enrollmentsSkipped % 25 !== 0) continue;
          seen.add(item.entity);
          const response = await get(url(slug, `/${item.entity}/${encodeURIComponent(item.id)}`));
          assert.equal(response.status, 200, `${item.entity}/${item.id}`);
          const record = Object.values((await response.json()) as Record<string, Rec>)[0];
          assert.deepEqual(item.data, record, `${item.entity} ${item.id}: the feed's record is the API's`);
        }
        assert.deepEqual([...seen].sort(), (slug === "noterms" ? ["classes", "courses", "enrollments", "orgs", "users"] : Object.keys(schemaOf)).sort());
        report();
      });

      it("resolves every href of every record it returned", async () => {
        assert.ok(hrefs.size > 0);
        const broken: string[] = [];
        for (const href of hrefs) {
          if (!href.includes(`/districts/${slug}/`)) continue;
          assert.ok(href.startsWith(`${PUBLIC_URL}/districts/${slug}/${V}/`), href);
          const response = await get(href.slice(PUBLIC_URL.length));
          if (response.status !== 200) broken.push(`${href}: ${response.status}`);
          else await response.arrayBuffer();
        }
        assert.deepEqual(broken, []);
      });
    });
  }
});
