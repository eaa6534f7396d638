import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import pg from "pg";
import { RosterdockHome, waitFor, type ServerProcess } from "../support/rosterdock-process.ts";
import { requireTool, runSftp, type SftpLogin } from "../support/sftp-client.ts";
import { postgresMissing, startPostgres, type PostgresServer } from "../support/postgres.ts";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";

const missing = requireTool("sftp") ?? postgresMissing();
const sha = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");
/** Enough students for two 1 MiB chunks in the database. */
const STUDENT_COUNT = 40_000;
const STUDENTS = Buffer.from(
  "ID,Student_Number,First_Name,Last_Name,Grade_Level,SchoolID\n" + Array.from({ length: STUDENT_COUNT }, (_, i) => `${100000 + i},${100000 + i},Ana${i},Lopez,5,100`).join("\n") + "\n",
);
const SCHOOLS = Buffer.from("school_id,school_name\n100,Lincoln Elementary\n");
const TEACHERS = Buffer.from("Teacher_Number,First_Name,Last_Name,SchoolID\n7,Ada,King,100\n");
const LEASE_SECONDS = 2;

/**
 * Two `rosterdock serve` nodes (own data folders, own ports) on one PostgreSQL: a district made
 * through one uploads to the other, any node's worker processes any delivery, a dead node's job
 * is taken over, and failed logins count on both.
 */
describe("several nodes on one PostgreSQL", { skip: missing }, () => {
  let postgres: PostgresServer;
  let databaseUrl: string;
  let homeA: RosterdockHome;
  let homeB: RosterdockHome;
  let nodeA: ServerProcess | undefined;
  let nodeB: ServerProcess | undefined;
  let lincoln: { username: string; password: string };
  let districtId: number;
  let files: string;

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
    const env = {
      ROSTERDOCK_DATABASE_URL: databaseUrl,
      ROSTERDOCK_QUIET_SECONDS: "3",
      ROSTERDOCK_JOB_LEASE_SECONDS: String(LEASE_SECONDS),
      ROSTERDOCK_LOGIN_MAX_FAILURES: "4",
      // Room for what the tests below send (2 students, 2 teachers), and one students.csv more only
      // for a node that counts its own uploads alone (the last test): the quota counts every node's.
      ROSTERDOCK_ARCHIVE_QUOTA_BYTES: String(3 * STUDENTS.length + TEACHERS.length + SCHOOLS.length),
    };
    homeA = await RosterdockHome.create(env);
    homeB = await RosterdockHome.create(env);
    // Created through node A's CLI (its own data folder).
    lincoln = await homeA.createDistrict("lincoln");
    districtId = (await query<{ id: number }>("SELECT id FROM districts WHERE slug = 'lincoln'"))[0]!.id;
    [nodeA, nodeB] = await Promise.all([homeA.serve(), homeB.serve()]);
    files = await mkdtemp(join(tmpdir(), "rosterdock-files-"));
    await writeFile(join(files, "students.csv"), STUDENTS);
    await writeFile(join(files, "teachers.csv"), TEACHERS);
    await writeFile(join(files, "schools.csv"), SCHOOLS);
  });

  after(async () => {
    await nodeA?.stop();
    await nodeB?.stop();
    await homeA?.remove();
    await homeB?.remove();
    await postgres?.stop();
    if (files) await rm(files, { recursive: true, force: true });
  });

  async function query<T>(text: string, values: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      return (await client.query(text, values)).rows as T[];
    } finally {
      await client.end();
    }
  }

  const login = (node: ServerProcess): SftpLogin => ({ ...lincoln, port: node.sftpPort });
  const nodeId = (node: ServerProcess) => node.logs.find((e) => e.event === "node.identity")?.node as string;
  const shown = async (home: RosterdockHome) => (await readdir(join(home.dataDir, "districts", String(districtId), "home")).catch(() => [])).sort();

  async function syncs(home: RosterdockHome): Promise<any[]> {
    return home.json(["syncs", "lincoln"]);
  }

  it("stores an upload to node B in PostgreSQL; node A closes the delivery, claims its job and copies its files byte for byte from the database", async () => {
    assert.notEqual(nodeId(nodeA!), nodeId(nodeB!));
    const put = await runSftp(login(nodeB!), ["put schools.csv", "put students.csv"], { cwd: files });
    assert.equal(put.code, 0, put.stderr);
    // Node B stops within the quiet period: only node A is left to close the delivery and run its job.
    assert.equal(await nodeB!.stop(), 0);
    nodeB = undefined;

    // The upload is in the database, in ~1 MiB chunks whose bytes are the file's.
    const [blob] = await query<{ id: number; size: string; sha256: string; chunks: number }>("SELECT id, size, sha256, chunks FROM upload_blobs WHERE district_id = $1 AND sha256 = $2", [districtId, sha(STUDENTS)]);
    assert.deepEqual({ size: Number(blob!.size), sha256: blob!.sha256, chunks: blob!.chunks }, { size: STUDENTS.length, sha256: sha(STUDENTS), chunks: 2 });
    const chunks = await query<{ data: Buffer }>("SELECT data FROM upload_chunks WHERE blob_id = $1 ORDER BY seq", [blob!.id]);
    assert.equal(sha(Buffer.concat(chunks.map((c) => c.data))), sha(STUDENTS));
    const [upload] = (await homeA.json(["uploads", "lincoln"])).filter((u: { path: string }) => u.path === "/students.csv");
    assert.deepEqual({ status: upload.status, sha256: upload.sha256 }, { status: "accepted", sha256: sha(STUDENTS) });

    const closed = await nodeA!.waitForLog((e) => e.event === "delivery.closed", 30_000);
    const filled = await nodeA!.waitForLog((e) => e.event === "storage.spool.filled" && e.syncId === closed.syncId, 30_000);
    assert.deepEqual(filled.files, [
      { name: "schools.csv", size: SCHOOLS.length, sha256: sha(SCHOOLS) },
      { name: "students.csv", size: STUDENTS.length, sha256: sha(STUDENTS) },
    ]);
    const sync = await waitFor(async () => (await syncs(homeA)).find((s) => s.id === closed.syncId && s.status !== "waiting" && s.status !== "processing"), 30_000, "the sync to be processed");
    const [job] = await query<{ status: string; locked_by: string; attempts: number }>("SELECT status, locked_by, attempts FROM jobs WHERE kind = 'process-sync'");
    assert.deepEqual(job, { status: "done", locked_by: nodeId(nodeA!), attempts: 1 });
    // Applied on PostgreSQL from the files copied above, and served through OneRoster by node A.
    assert.equal(sync.status, "applied", JSON.stringify(sync));
    assert.equal(sync.counts.users.created, STUDENT_COUNT);
    const { token } = await homeA.json(["token", "create", "--name", "several-nodes", "--scope", "roster.readonly"]);
    const students = await fetch(`http://127.0.0.1:${nodeA!.httpPort}/districts/lincoln/ims/oneroster/rostering/v1p2/students?limit=1&sort=sourcedId`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(students.status, 200);
    assert.equal(students.headers.get("x-total-count"), String(STUDENT_COUNT));
    assert.equal(((await students.json()) as { users: Array<{ givenName: string }> }).users[0]!.givenName, "Ana0");
    // The spool is emptied after the sync.
    assert.deepEqual(await readdir(join(homeA.dataDir, "spool")).catch(() => []), []);
    // `syncs --json` answers the same from node B's side (its own data folder), server stopped or not.
    assert.deepEqual((await syncs(homeB)).map((s) => [s.id, s.status]), (await syncs(homeA)).map((s) => [s.id, s.status]));

    // Node B, back, takes the file it received out of its folder: its delivery was closed by A.
    assert.deepEqual(await shown(homeB), ["schools.csv", "students.csv"]);
    nodeB = await homeB.serve();
    await waitFor(async () => (await shown(homeB)).length === 0, 10_000, "node B's folder to be emptied");
  });

  it("closes files uploaded to two nodes as one delivery once the district is quiet, and both folders empty", async () => {
    const before = (await syncs(homeA)).length;
    const toA = await runSftp(login(nodeA!), ["put teachers.csv"], { cwd: files });
    assert.equal(toA.code, 0, toA.stderr);
    const toB = await runSftp(login(nodeB!), ["put students.csv"], { cwd: files });
    assert.equal(toB.code, 0, toB.stderr);
    const sync = await waitFor(async () => (await syncs(homeA)).length > before && (await syncs(homeA))[0], 30_000, "the delivery to close");
    assert.deepEqual(sync.files.map((f: { name: string }) => f.name).sort(), ["students.csv", "teachers.csv"]);
    const deliveries = await query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM deliveries GROUP BY status");
    assert.deepEqual(deliveries, [{ status: "closed", n: "2" }]);
    await waitFor(async () => (await shown(homeA)).length === 0 && (await shown(homeB)).length === 0, 10_000, "both folders to be emptied");
    // The archive's usage is every node's stored uploads, seen alike from either node.
    const stored = Number((await query<{ n: string }>("SELECT sum(size) AS n FROM upload_blobs WHERE district_id = $1", [districtId]))[0]!.n);
    assert.equal(stored, 2 * STUDENTS.length + TEACHERS.length + SCHOOLS.length);
    for (const home of [homeA, homeB]) assert.equal((await home.json(["district", "show", "lincoln"])).archive.usedBytes, stored);
  });

  it("counts failed logins spread over both nodes together and bans the address at the limit on both", async () => {
    const wrong = { username: lincoln.username, password: "not-the-password" };
    const once = ["-o", "NumberOfPasswordPrompts=1"];
    // Four failures, two on each node: each node alone stays below the limit of four.
    for (const node of [nodeA!, nodeB!, nodeA!, nodeB!]) {
      const tried = await runSftp({ ...wrong, port: node.sftpPort }, ["ls"], { extra: once });
      assert.notEqual(tried.code, 0);
    }
    const bans = await waitFor(async () => {
      const listed = await homeA.json(["bans", "list"]);
      return listed.length > 0 && listed;
    }, 10_000, "the ban");
    assert.deepEqual(bans.map((b: { account: string; failures: number }) => [b.account, b.failures]), [[lincoln.username, 4]]);
    assert.match(bans[0].reason, /on all nodes/);
    // Both nodes refuse even the right password now (each reads the ban within seconds).
    for (const node of [nodeA!, nodeB!]) {
      await waitFor(async () => (await runSftp(login(node), ["ls"], { extra: once })).code !== 0, 15_000, "the ban on each node");
    }
    await homeA.json(["bans", "clear"]);
    await waitFor(async () => (await runSftp(login(nodeB!), ["ls"], { extra: once })).code === 0, 15_000, "the ban lifted");
  });

  it("hands a job whose node is killed with kill -9 to the other node once its lease expires, never while the node lives", async () => {
    // A webhook receiver that holds its first request open, as a slow receiver would.
    const requests: Array<{ req: IncomingMessage; res: ServerResponse; body: string }> = [];
    const receiver: Server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        requests.push({ req, res, body });
        if (requests.length > 1) res.end("ok");
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    try {
      const port = (receiver.address() as { port: number }).port;
      await homeA.json(["webhook", "add", `http://127.0.0.1:${port}/hooks`, "--district", "lincoln", "--event", "sync.failed", "--event", "sync.applied", "--event", "sync.held"]);
      const put = await runSftp(login(nodeA!), ["put teachers.csv"], { cwd: files });
      assert.equal(put.code, 0, put.stderr);
      const first = await waitFor(async () => requests[0], 30_000, "the webhook's first request");
      const [job] = await query<{ id: number; locked_by: string; payload: string }>("SELECT id, locked_by, payload FROM jobs WHERE kind = 'deliver-webhook' AND status = 'running'");
      const holder = [nodeA!, nodeB!].find((n) => nodeId(n) === job!.locked_by)!;
      const other = holder === nodeA ? nodeB! : nodeA!;
      assert.ok(holder, `a node holds the job: ${job!.locked_by}`);

      // Alive and renewing its lease: the other node never takes the job, lease after lease.
      await new Promise((r) => setTimeout(r, LEASE_SECONDS * 2500));
      assert.equal(requests.length, 1);
      const [still] = await query<{ locked_by: string; status: string }>("SELECT locked_by, status FROM jobs WHERE id = $1", [job!.id]);
      assert.deepEqual(still, { locked_by: nodeId(holder), status: "running" });

      // Killed: the other node takes it over once the lease runs out, with the same payload.
      const killedAt = Date.now();
      await holder.kill();
      const second = await waitFor(async () => requests[1], 60_000, "the other node to take the job over");
      assert.ok(Date.now() - killedAt < 60_000);
      assert.equal(second.body, first.body);
      assert.equal(second.req.headers["x-rosterdock-delivery"], first.req.headers["x-rosterdock-delivery"]);
      const syncId = JSON.parse(second.body).data?.syncId ?? JSON.parse(second.body).syncId;
      assert.equal(typeof syncId, "number");
      const taken = await other.waitForLog((e) => e.event === "job.taken_over" && e.jobId === job!.id, 10_000);
      assert.deepEqual({ from: taken.from, node: taken.node, payload: taken.payload }, { from: nodeId(holder), node: nodeId(other), payload: job!.payload });
      await waitFor(async () => (await query<{ status: string }>("SELECT status FROM jobs WHERE id = $1", [job!.id]))[0]!.status === "done", 10_000, "the job to be done");
      if (holder === nodeA) nodeA = undefined;
      else nodeB = undefined;
    } finally {
      for (const { res } of requests) res.destroy();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });

  it("finishes, on node A with exact counts, a big delivery's sync whose node B was killed with kill -9 while processing it", async () => {
    // Only node B runs when the delivery closes, so its worker takes the sync.
    await nodeA?.stop();
    nodeA = undefined;
    nodeB ??= await homeB.serve();
    const jefferson = await homeA.createDistrict("jefferson");
    const night = await generateDemoData(await mkdtemp(join(tmpdir(), "rosterdock-several-nodes-")), { students: 40_000, teachers: 1_000, styles: ["canonical"] });
    const zip = night.files.canonical[0]!;
    const upload = await runSftp({ ...jefferson, port: nodeB.sftpPort }, [`put ${basename(zip)}`], { cwd: dirname(zip) });
    assert.equal(upload.code, 0, upload.stderr);
    const processing = async () =>
      (await query<{ id: number; status: string }>("SELECT s.id, s.status FROM syncs s JOIN districts d ON d.id = s.district_id WHERE d.slug = 'jefferson'"))[0];
    const started = await waitFor(async () => ((await processing())?.status === "processing" ? await processing() : undefined), 60_000, "node B to start the sync", 50);
    await nodeB.kill();
    nodeB = undefined;
    assert.equal((await processing())!.status, "processing", "node B was killed before it finished");

    nodeA = await homeA.serve();
    const taken = await nodeA.waitForLog((e) => e.event === "job.taken_over", 60_000);
    assert.equal(JSON.parse(taken.payload).syncId, started!.id);
    const done = await waitFor(async () => (await homeA.json(["syncs", "jefferson"])).find((s: { status: string }) => s.status !== "processing" && s.status !== "waiting"), 120_000, "node A to finish the sync");
    assert.equal(done.id, started!.id, "the same sync, not a new one");
    assert.equal(done.status, "applied");
    assert.equal(done.counts.enrollments.created, night.expected.enrollments);
    assert.equal(done.counts.classes.created, night.expected.classes);
    assert.equal(done.counts.schools.created, night.expected.schools);
    const rows = async (table: string) => Number((await query<{ n: string }>(`SELECT count(*) AS n FROM ${table} t JOIN districts d ON d.id = t.district_id WHERE d.slug = 'jefferson'`))[0]!.n);
    assert.equal(await rows("roster_enrollments"), night.expected.enrollments);
    assert.equal(await rows("roster_classes"), night.expected.classes);
    assert.equal((await homeA.json(["syncs", "jefferson"])).length, 1);
  });

  it("refuses an upload past the district's quota, counting the archive every node stored", async () => {
    const survivor = (nodeA ?? nodeB)!;
    const sent = await runSftp(login(survivor), ["-put students.csv again.csv"], { cwd: files });
    assert.match(sent.stderr, /again\.csv refused: Quota exceeded: the district's archive holds [\d.]+ MiB of its [\d.]+ MiB quota, and this file/);
    const [refused] = await homeA.json(["uploads", "lincoln"]);
    assert.deepEqual([refused.path, refused.status], ["/again.csv", "refused"]);
  });
});
