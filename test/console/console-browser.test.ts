import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { generateDemoData, type DemoDataResult } from "../../src/demo/generate-demo-data.ts";
import { ROOT, RosterdockHome, waitFor, type ServerProcess } from "../support/rosterdock-process.ts";
import { requireTool, runSftp, type SftpLogin } from "../support/sftp-client.ts";
import { BackendHomes, selectedBackends, type BackendHome } from "../support/backends.ts";
import pg from "pg";

const CHROMIUM = "/usr/bin/chromium";
const missing = requireTool("sftp") ?? requireTool(CHROMIUM, ["--version"]);
const SIZE = { students: 120, teachers: 10, schools: 2 };
const ARTIFACTS = join(ROOT, "test-artifacts", "console");

async function upload(login: SftpLogin, files: string[]): Promise<void> {
  const result = await runSftp(login, files.map((f) => `put ${basename(f)}`), { cwd: dirname(files[0]!) });
  assert.equal(result.code, 0, result.stderr);
}

/** The students file of a night cut to a share of its length at a line end: a truncated export. */
async function truncatedStudents(night: DemoDataResult, share: number): Promise<string> {
  const students = night.files.dem.find((f) => basename(f).startsWith("students"))!;
  const text = await readFile(students, "utf8");
  const dir = await mkdtemp(join(tmpdir(), "rosterdock-console-cut-"));
  const cut = join(dir, basename(students));
  await writeFile(cut, text.slice(0, Math.floor(text.length * share)).replace(/\r\n[^\r\n]*$/, "\r\n"));
  return cut;
}

for (const backend of selectedBackends()) describe(`operator console in headless Chromium (${backend.name})`, { skip: missing ?? backend.skip }, () => {
  const homes = new BackendHomes(backend.name);
  let database: BackendHome | undefined;
  let home: RosterdockHome;
  let server: ServerProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let base: string;
  let axeSource: string;
  let night: DemoDataResult;
  let ada: { email: string; password: string };
  let eve: { email: string; password: string };
  let login: SftpLogin;

  before(async () => {
    database = await homes.create();
    const url = database.env.ROSTERDOCK_DATABASE_URL;
    home = await RosterdockHome.create({ ROSTERDOCK_QUIET_SECONDS: "2", ...(url ? { ROSTERDOCK_DATABASE_URL: url } : {}) });
    ada = await home.json(["operator", "create", "ada@example.org"]);
    eve = await home.json(["operator", "create", "eve@example.org"]);
    await home.createDistrict("hidden", []);
    night = await generateDemoData(await mkdtemp(join(tmpdir(), "rosterdock-console-night-")), SIZE);
    server = await home.serve();
    base = `http://127.0.0.1:${server.httpPort}`;
    axeSource = await readFile(join(ROOT, "node_modules", "axe-core", "axe.min.js"), "utf8");
    await mkdir(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    // The page's CSP (no inline scripts) would refuse axe-core's injected script tag; the header itself is checked below.
    context = await browser.newContext({ bypassCSP: true, baseURL: base });
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await home?.remove();
    await database?.remove();
    await homes.close();
  });

  /** Rows of a query on the server's database, whichever it is. */
  async function query<T>(text: string): Promise<T[]> {
    const url = database?.env.ROSTERDOCK_DATABASE_URL;
    if (url === undefined) {
      const { default: Database } = await import("better-sqlite3");
      const db = new Database(join(home.dataDir, "rosterdock.sqlite"), { readonly: true });
      try {
        return db.prepare(text).all() as T[];
      } finally {
        db.close();
      }
    }
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(text)).rows as T[];
    } finally {
      await client.end();
    }
  }

  /** A screenshot for people, axe-core for machines: no serious or critical violation, and "Rosterdock" in the title. */
  async function check(name: string): Promise<void> {
    assert.match(await page.title(), /Rosterdock/);
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    await page.addScriptTag({ content: axeSource });
    const result = await page.evaluate(async () => {
      const axe = (window as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: unknown }[] }[] }> } }).axe;
      return axe.run();
    });
    const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    assert.deepEqual(
      bad.map((v) => `${v.id}: ${v.help} (${JSON.stringify(v.nodes.map((n) => n.target))})`),
      [],
      `${name} has accessibility violations`,
    );
  }

  async function signIn(email: string, password: string): Promise<number> {
    await page.goto("/sign-in");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(password);
    const [response] = await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Sign in" }).click()]);
    return response?.status() ?? 0;
  }

  /** Reloads the district page, as an operator would, until its newest sync has `status`; then opens that sync. */
  async function newestSyncBecomes(status: string): Promise<void> {
    await waitFor(async () => {
      await page.goto("/districts/madison");
      const newest = page.locator("table.syncs tbody tr").first();
      return (await newest.count()) > 0 && (await newest.locator(".status").innerText()) === status;
    }, 90_000, `the newest sync ${status}`);
  }

  /** Reloads a sync page until its status reads `status`. */
  async function syncBecomes(path: string, status: string): Promise<void> {
    await waitFor(async () => {
      await page.goto(path);
      return (await page.locator("#sync-status").innerText()) === status;
    }, 90_000, `${path} ${status}`);
  }

  it("redirects every console page to sign-in without a session and shows no district data", async () => {
    for (const path of ["/", "/districts/hidden", "/districts/new", "/syncs/1"]) {
      await page.goto(path);
      assert.equal(new URL(page.url()).pathname, "/sign-in", path);
      assert.doesNotMatch(await page.content(), /hidden district/);
    }
    const response = await page.goto("/sign-in");
    assert.match(response!.headers()["content-security-policy"] ?? "", /script-src 'self'(;|$)/);
    assert.doesNotMatch(response!.headers()["content-security-policy"] ?? "", /unsafe-inline/);
    await check("sign-in");
    // The APIs on the same port keep their own behaviour: no console cookie, no console headers.
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.headers.get("set-cookie"), null);
    assert.equal(health.headers.get("content-security-policy"), null);
  });

  it("refuses a wrong password, then rate-limits repeated failures", async () => {
    assert.equal(await signIn(ada.email, "not-the-password"), 401);
    assert.match(await page.locator("[role=alert]").innerText(), /do not match/);
    let status = 0;
    for (let i = 0; i < 15 && status !== 429; i++) status = await signIn(eve.email, `wrong-${i}`);
    assert.equal(status, 429);
    assert.match(await page.locator("[role=alert]").innerText(), /Too many failed sign-in attempts/);
    // Even the right password is refused while the limit holds.
    assert.equal(await signIn(eve.email, eve.password), 429);
  });

  it("refuses a POST without a CSRF token", async () => {
    const refused = await context.request.post("/sign-in", { form: { email: ada.email, password: ada.password }, maxRedirects: 0 });
    assert.equal(refused.status(), 403);
  });

  it("signs in and creates a district whose credentials are shown once", async () => {
    assert.equal(await signIn(ada.email, ada.password), 200);
    assert.equal(new URL(page.url()).pathname, "/");
    await page.getByRole("link", { name: "hidden district" }).waitFor();
    await check("districts");
    const noToken = await context.request.post("/districts", { form: { name: "Sneaky", slug: "sneaky" }, maxRedirects: 0 });
    assert.equal(noToken.status(), 403);

    await page.getByRole("link", { name: "New district" }).click();
    await check("new-district");
    await page.getByLabel("Name").fill("Madison <Schools>");
    await page.getByLabel("Slug").fill("madison");
    await page.getByRole("button", { name: "Create district" }).click();
    // The page gives the one-time link, never the password itself.
    assert.equal(await page.locator("code.secret").count(), 0);
    const link = new URL((await page.getByRole("link", { name: /\/handoff\// }).innerText()).trim());
    await check("district-created");
    // Beside the link, the district's setup guide, as a web page and as a PDF printed by the server's Chromium.
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Setup guide (HTML)" }).click()]);
    assert.equal(download.suggestedFilename(), "setup-guide-madison.html");
    const guide = await readFile((await download.path())!, "utf8");
    assert.match(guide, /<title>PowerSchool setup for Madison &#60;Schools&#62;<\/title>/);
    assert.match(guide, /<code>madison<\/code>/);
    const pdf = await context.request.get("/districts/madison/guide.pdf");
    assert.equal(pdf.status(), 200);
    assert.equal((await pdf.body()).subarray(0, 5).toString("latin1"), "%PDF-");
    // The district's admin opens it once: the password shows, then never again.
    await page.goto(link.pathname);
    await page.getByRole("button", { name: "Reveal the credentials" }).click();
    const password = (await page.locator("code.secret").innerText()).trim();
    assert.match(password, /^[A-Za-z0-9_-]{24}$/);
    await page.goto(link.pathname);
    assert.equal(await page.locator("code.secret").count(), 0);
    assert.ok((await page.content()).includes("already used"));
    login = { port: server.sftpPort, username: "madison", password };
  });

  it("shows a night uploaded over SFTP applied", async () => {
    await upload(login, night.files.dem);
    await newestSyncBecomes("applied");
    assert.equal(await page.title(), "Madison <Schools> · Rosterdock");
    await check("district");
    await page.getByRole("link", { name: /^Sync \d+$/ }).first().click();
    assert.match(await page.locator("#sync-status").innerText(), /^applied$/);
    // What was detected in each file: the export, the delimiter, the encoding and how the header names columns.
    const students = page.locator("table.files tr", { has: page.locator("td", { hasText: /^students_\d+\.csv$/ }) });
    assert.match(await students.innerText(), /students export, delimited text\s.*users.*utf-8\s+comma \(,\)\s+Table\.Field labels/s);
    await check("sync-applied");
    await page.goto("/?health=delivered");
    await page.getByRole("link", { name: "Madison <Schools>" }).waitFor();
  });

  it("finds a student in the roster browser and opens their classes and their teacher's", async () => {
    const [student] = await query<{ first_name: string; last_name: string; user_key: string }>(
      "select u.first_name, u.last_name, u.user_key from roster_users u join roster_enrollments e on e.district_id = u.district_id and e.student_id = u.district_user_id where u.scope = 'student' order by u.user_key limit 1",
    );
    assert.ok(student);
    await page.goto("/districts/madison");
    await page.getByLabel("Search users").fill(`${student.first_name.slice(0, 2)} ${student.last_name.slice(0, 3).toUpperCase()}`);
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await check("roster-search");
    await page.locator("table.users tr", { hasText: student.user_key }).getByRole("link").click();
    assert.equal(await page.locator("h1").innerText(), `${student.first_name} ${student.last_name}`);
    assert.equal(await page.locator("h2#classes").innerText(), "Enrolled in");
    assert.ok((await page.locator("table.classes tbody tr").count()) > 0);
    await check("roster-student");
    await page.locator("table.classes tbody tr").first().locator("td").last().getByRole("link").click();
    assert.equal(await page.locator("h2#classes").innerText(), "Teaches");
    assert.ok((await page.locator("table.classes tbody tr").count()) > 0);
  });

  it("shows a truncated night held with its reason, and applies it on approval", async () => {
    await upload(login, [await truncatedStudents(night, 1 / 3)]);
    await newestSyncBecomes("held");
    await page.getByRole("link", { name: /^Sync \d+$/ }).first().click();
    const syncPath = new URL(page.url()).pathname;
    assert.match(await page.locator("#sync-status").innerText(), /^held$/);
    assert.match(await page.locator("main").innerText(), /Why it was held/);
    // A sample of what it would change: the students cut from the file are among the deletes.
    const users = page.locator("table.preview", { has: page.locator("caption", { hasText: /^users: \d+ deleted/ }) });
    assert.ok((await users.locator("td.change-deleted").count()) > 0);
    assert.match(await users.locator("tbody tr", { has: page.locator("td.change-deleted") }).first().innerText(), /student-\d+/);
    await check("sync-held");
    const csv = await context.request.get(`${syncPath}/issues.csv`);
    assert.equal(csv.status(), 200);
    assert.match(csv.headers()["content-type"] ?? "", /^text\/csv/);
    assert.match(await csv.text(), /DEPENDENTS_DELETED/);
    const progress = await (await context.request.get(`${syncPath}/progress.json`)).json();
    assert.equal(progress.status, "held");
    assert.equal(progress.text, "The sync is held.");
    await page.getByLabel("Severity").selectOption("info");
    await page.getByRole("button", { name: "Filter" }).click();
    const severities = await page.locator("#issues ~ table tbody tr td:first-child").allInnerTexts();
    assert.ok(severities.length > 0 && severities.every((s) => s === "info"), severities.join());
    await page.goto(syncPath);
    await page.getByRole("button", { name: "Approve" }).click();
    await check("confirm-approve");
    await page.getByRole("button", { name: "Confirm" }).click();
    await syncBecomes(syncPath, "applied");
    assert.match(await page.locator("#sync-status").innerText(), /^applied$/);
  });

  it("discards another held sync, after stricter safeguards set in the console", async () => {
    await page.goto("/districts/madison");
    await page.locator("#deletePercent").fill("0");
    await page.locator("#deleteMinRows").fill("1");
    await page.getByRole("button", { name: "Save safeguards" }).click();
    assert.match(await page.locator("[role=status]").first().innerText(), /Safeguards saved/);
    await upload(login, [await truncatedStudents(night, 1 / 6)]);
    await newestSyncBecomes("held");
    await page.getByRole("link", { name: /^Sync \d+$/ }).first().click();
    await page.getByRole("button", { name: "Discard" }).click();
    await page.getByRole("button", { name: "Confirm" }).click();
    assert.match(await page.locator("#sync-status").innerText(), /^discarded$/);
    await check("sync-discarded");
  });

  it("rolls back the latest applied sync", async () => {
    await page.goto("/districts/madison");
    const rows = page.locator("table tbody tr", { hasText: "applied" });
    await rows.first().getByRole("link").click();
    await page.getByRole("button", { name: "Roll back" }).click();
    await page.getByRole("button", { name: "Confirm" }).click();
    assert.match(await page.locator("#sync-status").innerText(), /^rolled back$/);
    await check("sync-rolled-back");
  });

  it("makes a new one-time link from the district page, shown once", async () => {
    await page.goto("/districts/madison");
    await page.getByRole("button", { name: "New one-time link" }).click();
    assert.match(await page.title(), /^New one-time link for Madison <Schools>/);
    const link = new URL((await page.getByRole("link", { name: /\/handoff\// }).innerText()).trim());
    assert.equal(await page.locator("code.secret").count(), 0);
    await check("new-link");
    await page.goto(link.pathname);
    await page.getByRole("button", { name: "Reveal the credentials" }).click();
    const password = (await page.locator("code.secret").innerText()).trim();
    assert.match(password, /^[A-Za-z0-9_-]{24}$/);
    assert.notEqual(password, login.password);
  });

  it("signs out, after which console pages redirect to sign-in", async () => {
    await page.goto("/");
    await page.getByRole("button", { name: "Sign out" }).click();
    assert.equal(new URL(page.url()).pathname, "/sign-in");
    for (const path of ["/", "/districts/madison"]) {
      await page.goto(path);
      assert.equal(new URL(page.url()).pathname, "/sign-in", path);
      assert.doesNotMatch(await page.content(), /Madison/);
    }
    const actions = (await query<{ action: string }>("select action from audit_events where actor = 'operator:ada@example.org' order by id")).map((r) => r.action);
    for (const action of ["operator.signed_in", "district.created", "district.safeguards_set", "sync.approval_queued", "sync.discarded", "sync.rolled_back", "district.password_rotated", "operator.signed_out"]) {
      assert.ok(actions.includes(action), `${action} audited with the operator's email: ${actions.join(", ")}`);
    }
  });
});
