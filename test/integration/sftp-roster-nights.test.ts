import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { generateDemoData, type DemoDataResult } from "../../src/demo/generate-demo-data.ts";
import { verifyWebhook } from "../../src/webhooks/webhook-signature.ts";
import { RosterdockHome, waitFor, type ServerProcess } from "../support/rosterdock-process.ts";
import { requireTool, runSftp, type SftpLogin } from "../support/sftp-client.ts";
import { WebhookReceiver } from "../support/webhook-receiver.ts";
import { selectedBackends } from "../support/backends.ts";
import { startPostgres, type PostgresServer } from "../support/postgres.ts";

const missing = requireTool("sftp");
const SIZE = { students: 300, teachers: 20, schools: 3 };

/** Uploads files over SFTP, one `put` each, as PowerSchool's templates do. */
async function upload(login: SftpLogin, files: string[]): Promise<void> {
  const result = await runSftp(login, files.map((f) => `put ${basename(f)}`), { cwd: dirname(files[0]!) });
  assert.equal(result.code, 0, result.stderr);
}

for (const backend of selectedBackends()) describe(`nightly roster deliveries over SFTP (${backend.name})`, { skip: missing ?? backend.skip }, () => {
  let postgres: PostgresServer | undefined;
  let databaseUrl: string | undefined;
  let home: RosterdockHome;
  let server: ServerProcess;
  let receiver: WebhookReceiver;
  let webhookSecret: string;
  let nights: { first: DemoDataResult; second: DemoDataResult };

  before(async () => {
    if (backend.name === "postgres") {
      postgres = await startPostgres();
      databaseUrl = await postgres.createDatabase();
    }
    home = await RosterdockHome.create({ ROSTERDOCK_QUIET_SECONDS: "2", ...(databaseUrl ? { ROSTERDOCK_DATABASE_URL: databaseUrl } : {}) });
    receiver = await WebhookReceiver.start("/rosterdock");
    webhookSecret = (await home.json(["webhook", "add", receiver.url])).secret;
    const dir = await mkdtemp(join(tmpdir(), "rosterdock-nights-"));
    nights = {
      first: await generateDemoData(join(dir, "first"), SIZE),
      second: await generateDemoData(join(dir, "second"), { ...SIZE, night: 2 }),
    };
    server = await home.serve();
  });

  after(async () => {
    await server?.stop();
    await receiver?.close();
    await home?.remove();
    await postgres?.stop();
  });

  async function district(slug: string): Promise<SftpLogin> {
    return { ...(await home.createDistrict(slug)), port: server.sftpPort };
  }

  async function finishedSyncs(slug: string, count: number): Promise<any[]> {
    return waitFor(async () => {
      const syncs = await home.json(["syncs", slug]);
      return syncs.length >= count && syncs.every((s: { status: string }) => !["waiting", "processing"].includes(s.status)) && syncs;
    }, 60_000, `${count} finished syncs of ${slug}`);
  }

  /** Rows of the district's live roster: `sql` takes the district's id as its first `?`. */
  async function roster(slug: string, sql: string, ...params: unknown[]): Promise<any[]> {
    if (databaseUrl !== undefined) {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const { id } = (await client.query("select id from districts where slug = $1", [slug])).rows[0] as { id: number };
        let n = 0;
        return (await client.query(sql.replace(/\?/g, () => `$${++n}`), [id, ...params])).rows;
      } finally {
        await client.end();
      }
    }
    const db = new Database(join(home.dataDir, "rosterdock.sqlite"), { readonly: true });
    try {
      const id = (db.prepare("select id from districts where slug = ?").get(slug) as { id: number }).id;
      return db.prepare(sql).all(id, ...params);
    } finally {
      db.close();
    }
  }

  it("applies a Data Export Manager night (Table.Field labels, CRLF, UTF-8 BOM) and tells webhooks", async () => {
    const login = await district("dem");
    await upload(login, nights.first.files.dem);
    const [sync] = await finishedSyncs("dem", 1);
    assert.equal(sync.status, "applied", JSON.stringify(sync.issues.slice(0, 5)));
    const expected = nights.first.expected;
    assert.equal(sync.counts.schools.created, expected.schools);
    assert.equal(sync.counts.classes.created, expected.classes);
    assert.equal(sync.counts.enrollments.created, expected.enrollments);
    assert.equal(sync.counts.courses.created, expected.courses);
    assert.equal(sync.files.length, nights.first.files.dem.length);
    const pena = await roster("dem", "select first_name, last_name from roster_users where district_id = ? and last_name = 'Peña'");
    assert.ok(pena.length > 0, "non-ASCII names arrive intact");

    const hook = await waitFor(async () => receiver.received.find((h) => JSON.parse(h.body).district === "dem"), 20_000, "the sync.applied webhook");
    const body = JSON.parse(hook.body);
    assert.equal(body.event, "sync.applied");
    assert.equal(body.data.syncId, sync.id);
    assert.equal(verifyWebhook(webhookSecret, hook.body, String(hook.headers["x-rosterdock-signature"]), Math.floor(Date.now() / 1000)), true);
  });

  it("applies an AutoSend night (tab, LF, Windows-1252, trailing tab) with the same names", async () => {
    const login = await district("autosend");
    await upload(login, nights.first.files.autosend);
    const [sync] = await finishedSyncs("autosend", 1);
    assert.equal(sync.status, "applied", JSON.stringify(sync.issues.slice(0, 5)));
    assert.equal(sync.counts.enrollments.created, nights.first.expected.enrollments);
    const names = (slug: string) => roster(slug, "select user_key, first_name, last_name from roster_users where district_id = ? order by user_key");
    assert.deepEqual(await names("autosend"), await names("dem"), "Windows-1252 decodes to the same names as UTF-8");
  });

  it("applies a canonical zip uploaded alone, then the second night's changes", async () => {
    const login = await district("zipped");
    await upload(login, nights.first.files.canonical);
    const [first] = await finishedSyncs("zipped", 1);
    assert.equal(first.status, "applied");
    assert.equal(first.counts.enrollments.created, nights.first.expected.enrollments);
    await upload(login, nights.second.files.canonical);
    const [second] = await finishedSyncs("zipped", 2);
    assert.equal(second.status, "applied", JSON.stringify(second));
    const changed = ["users", "enrollments"].map((e) => second.counts[e].created + second.counts[e].updated + second.counts[e].deleted);
    assert.ok(changed.every((n) => n > 0), JSON.stringify(second.counts));
    assert.ok(second.counts.users.unchanged > second.counts.users.updated * 10);
  });

  it("holds a truncated students file without touching the roster, then applies it on approval", async () => {
    const login = await district("truncated");
    await upload(login, nights.first.files.dem);
    assert.equal((await finishedSyncs("truncated", 1))[0].status, "applied");
    const before = await roster("truncated", "select * from roster_users where district_id = ? order by user_key");

    const dir = await mkdtemp(join(tmpdir(), "rosterdock-truncated-"));
    const students = nights.first.files.dem.find((f) => basename(f).startsWith("students"))!;
    const text = await readFile(students, "utf8");
    const cut = join(dir, basename(students));
    await writeFile(cut, text.slice(0, Math.floor(text.length / 3)).replace(/\r\n[^\r\n]*$/, "\r\n"));
    await upload(login, [cut]);
    const [held] = await finishedSyncs("truncated", 2);
    assert.equal(held.status, "held");
    assert.ok(held.counts.users.deleted > 100);
    assert.deepEqual(await roster("truncated", "select * from roster_users where district_id = ? order by user_key"), before);
    const heldHook = await waitFor(async () => receiver.received.find((h) => JSON.parse(h.body).event === "sync.held"), 20_000, "the sync.held webhook");
    assert.equal(JSON.parse(heldHook.body).data.syncId, held.id);

    const shown = await home.json(["sync", "show", String(held.id)]);
    assert.equal(shown.status, "held");
    const approved = await home.json(["sync", "approve", String(held.id)]);
    assert.equal(approved.status, "applied");
    assert.equal((await roster("truncated", "select * from roster_users where district_id = ?")).length, before.length - held.counts.users.deleted);
  });

  it("fails a binary file named students.csv with an issue the district can act on, and changes nothing", async () => {
    const login = await district("binary");
    await upload(login, nights.first.files.dem);
    assert.equal((await finishedSyncs("binary", 1))[0].status, "applied");
    const before = await roster("binary", "select * from roster_users where district_id = ? order by user_key");
    const dir = await mkdtemp(join(tmpdir(), "rosterdock-binary-"));
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]), Buffer.alloc(2048, 7)]);
    await writeFile(join(dir, "students.csv"), png);
    await upload(login, [join(dir, "students.csv")]);
    const [failed] = await finishedSyncs("binary", 2);
    assert.equal(failed.status, "failed");
    const issue = failed.issues.find((i: { code: string }) => i.code === "BINARY_FILE");
    assert.equal(issue?.file, "students.csv");
    assert.match(issue.message, /students\.csv/);
    assert.deepEqual(await roster("binary", "select * from roster_users where district_id = ? order by user_key"), before);
    const csv = await home.cli(["sync", "issues", String(failed.id), "--csv"]);
    assert.equal(csv.code, 0);
    assert.match(csv.stdout, /BINARY_FILE/);
  });
});
