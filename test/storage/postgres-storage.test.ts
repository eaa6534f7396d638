import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { CHUNK_BYTES, PostgresStorage } from "../../src/storage/postgres-storage.ts";
import type { Clock } from "../../src/clock.ts";
import { postgresMissing, startPostgres, type PostgresServer } from "../support/postgres.ts";

class TestClock implements Clock {
  #now = new Date("2026-11-02T02:00:00.000Z");
  now(): Date {
    return new Date(this.#now);
  }
  advance(seconds: number): void {
    this.#now = new Date(this.#now.getTime() + seconds * 1000);
  }
}

const sha = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

/** Two nodes (two data folders, two connection pools) on one PostgreSQL database. */
describe("uploads stored in PostgreSQL, shared by two nodes", { skip: postgresMissing() }, () => {
  const clock = new TestClock();
  let postgres: PostgresServer;
  let dirs: string[] = [];
  let a: Rosterdock;
  let b: Rosterdock;
  let districtId: number;

  before(async () => {
    postgres = await startPostgres();
    const url = await postgres.createDatabase();
    const node = async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "rosterdock-node-"));
      dirs.push(dataDir);
      return createRosterdock(loadConfig({ ROSTERDOCK_DATA_DIR: dataDir, ROSTERDOCK_DATABASE_URL: url, ROSTERDOCK_QUIET_SECONDS: "60" }), { logger: createLogger("silent"), clock });
    };
    a = await node();
    b = await node();
    districtId = (await a.districts.create({ slug: "adams", name: "Adams" }, "test")).district.id;
  });

  after(async () => {
    await a?.close();
    await b?.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    await postgres?.stop();
  });

  /** An upload as a node's SFTP session makes it: stored and recorded, then renamed into that node's view. */
  async function upload(rd: Rosterdock, path: string, content: Buffer): Promise<string> {
    const tempPath = await rd.storage.incomingPath(districtId);
    await writeFile(tempPath, content);
    const storedPath = await rd.deliveries.accept({
      districtId,
      path,
      tempPath,
      size: content.length,
      sha256: sha(content),
      clientIp: "127.0.0.1",
      clientVersion: "SSH-2.0-OpenSSH_9.2",
      startedAt: clock.now().toISOString(),
    });
    await rename(tempPath, join(rd.storage.homeDir(districtId), path));
    await rd.storage.incomingDone(tempPath);
    return storedPath;
  }

  it("stores an upload in ~1 MiB chunks with its sha256, counts it against the quota on every node, and closes files received by two nodes as one delivery", async () => {
    assert.ok(a.storage instanceof PostgresStorage && b.storage instanceof PostgresStorage);
    const students = randomBytes(CHUNK_BYTES * 2 + 12345);
    const teachers = Buffer.from("Teacher_Number,First_Name,Last_Name\n7,Ada,King\n");
    const storedA = await upload(a, "/students.csv", students);
    clock.advance(30);
    const storedB = await upload(b, "/teachers.csv", teachers);
    assert.match(storedA, /^pg:\d+$/);

    const blobs = await a.database.db.selectFrom("upload_blobs").selectAll().orderBy("id").execute();
    assert.deepEqual(
      blobs.map((r) => ({ size: Number(r.size), sha256: r.sha256, chunks: r.chunks })),
      [
        { size: students.length, sha256: sha(students), chunks: 3 },
        { size: teachers.length, sha256: sha(teachers), chunks: 1 },
      ],
    );
    const chunkSizes = await a.database.db.selectFrom("upload_chunks").select(["seq", (eb) => eb.fn("length", ["data"]).as("n")]).where("blob_id", "=", blobs[0]!.id).orderBy("seq").execute();
    assert.deepEqual(chunkSizes.map((c) => Number(c.n)), [CHUNK_BYTES, CHUNK_BYTES, 12345]);

    // Either node sees the district's whole archive, whoever received the files.
    const both = students.length + teachers.length;
    assert.equal(await b.storage.archiveBytes(districtId), both);
    const check = await b.storage.archiveUsage.check(districtId, both);
    assert.deepEqual({ used: check.usedBytes, full: check.full, becameFull: check.becameFull }, { used: both, full: true, becameFull: true });

    // The quiet period counts from the last upload, whichever node received it.
    clock.advance(45);
    assert.deepEqual(await a.deliveries.closeQuietDeliveries(), []);
    clock.advance(20);
    const [closed] = await a.deliveries.closeQuietDeliveries();
    assert.equal(closed?.files, 2);
    // Node A takes its own file out of its view at once; node B its own at its next pass.
    assert.deepEqual(await a.storage.visibleFiles(districtId), []);
    assert.deepEqual(await b.storage.visibleFiles(districtId), ["/teachers.csv"]);
    await b.deliveries.closeQuietDeliveries();
    assert.deepEqual(await b.storage.visibleFiles(districtId), []);
    assert.deepEqual(await b.storage.receivedHere(), []);

    // Any node's worker copies the sync's files into its spool, byte for byte, and removes them after.
    const files = await b.database.db.selectFrom("sync_files").select(["name", "stored_path", "sha256"]).where("sync_id", "=", closed!.syncId).orderBy("id").execute();
    assert.deepEqual(files.map((f) => f.stored_path).sort(), [storedA, storedB].sort());
    for (const node of [a, b]) {
      const local = await node.storage.localFiles(closed!.syncId, files);
      const byName = new Map(await Promise.all(local.files.map(async (f) => [f.name, await readFile(f.path)] as const)));
      assert.equal(sha(byName.get("students.csv")!), sha(students));
      assert.ok(byName.get("teachers.csv")!.equals(teachers));
      await local.release();
      for (const f of local.files) await assert.rejects(stat(f.path), /ENOENT/);
    }
  });

  it("refuses to hand the engine a stored file that no longer matches its sha256, and leaves nothing in the spool", async () => {
    const content = randomBytes(5000);
    const storedPath = await upload(a, "/cc.csv", content);
    const id = Number(storedPath.slice(3));
    await a.database.db.updateTable("upload_chunks").set({ data: randomBytes(5000) }).where("blob_id", "=", id).execute();
    await assert.rejects(b.storage.localFiles(999, [{ name: "cc.csv", stored_path: storedPath, sha256: sha(content) }]), (error: Error & { code?: string }) => error.code === "ERR_STORED_FILE_DAMAGED");
    const spool = join(dirs[1]!, "spool");
    assert.deepEqual(await readdir(spool).catch(() => []), []);
  });

  it("stores nothing when the file read back is not what the session hashed", async () => {
    const before = await a.database.db.selectFrom("upload_blobs").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    const tempPath = await a.storage.incomingPath(districtId);
    await writeFile(tempPath, "changed on disk");
    await assert.rejects(a.storage.archive(districtId, tempPath, sha("what the client sent")), (error: Error & { code?: string }) => error.code === "ERR_STORED_FILE_DAMAGED");
    const after_ = await a.database.db.selectFrom("upload_blobs").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    assert.equal(Number(after_.n), Number(before.n));
  });
});
