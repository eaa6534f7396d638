import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { openDatabase, type RosterDatabase } from "../../src/db/open-database.ts";
import { JobQueue } from "../../src/jobs/job-queue.ts";
import { systemClock } from "../../src/clock.ts";
import { postgresMissing, startPostgres, type PostgresServer } from "../support/postgres.ts";

const LEASE_MS = 1500;

/** Two nodes' queues, each on its own connection pool, on one PostgreSQL database. */
describe("jobs shared by several nodes (PostgreSQL)", { skip: postgresMissing() }, () => {
  let postgres: PostgresServer;
  let dataDir: string;
  let dbA: RosterDatabase;
  let dbB: RosterDatabase;
  let a: JobQueue;
  let b: JobQueue;

  before(async () => {
    postgres = await startPostgres();
    const url = await postgres.createDatabase();
    dataDir = await mkdtemp(join(tmpdir(), "rosterdock-jobs-"));
    dbA = await openDatabase({ dataDir, databaseUrl: url });
    dbB = await openDatabase({ dataDir, databaseUrl: url });
    a = new JobQueue(dbA.db, systemClock, { nodeId: "node-a", shared: true, leaseMs: LEASE_MS });
    b = new JobQueue(dbB.db, systemClock, { nodeId: "node-b", shared: true, leaseMs: LEASE_MS });
  });

  beforeEach(async () => {
    await dbA.db.deleteFrom("jobs").execute();
  });

  after(async () => {
    await dbA?.close();
    await dbB?.close();
    await postgres?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("never hands the same job to two nodes claiming at once (SKIP LOCKED)", async () => {
    const ids = new Set<number>();
    for (let i = 0; i < 60; i++) ids.add(await a.enqueue("process-sync", { syncId: i + 1 }));
    const claimedBy = new Map<number, string[]>();
    const drain = async (queue: JobQueue) => {
      for (;;) {
        const job = await queue.claim(["process-sync"]);
        if (!job) return;
        claimedBy.set(job.id, [...(claimedBy.get(job.id) ?? []), queue.nodeId]);
      }
    };
    // Several claimers per node, all at once.
    await Promise.all([drain(a), drain(a), drain(a), drain(b), drain(b), drain(b)]);
    assert.deepEqual([...claimedBy.keys()].sort((x, y) => x - y), [...ids].sort((x, y) => x - y));
    assert.ok([...claimedBy.values()].every((nodes) => nodes.length === 1), "a job was claimed twice");
    const nodes = new Set([...claimedBy.values()].map((n) => n[0]));
    assert.deepEqual([...nodes].sort(), ["node-a", "node-b"], "both nodes got work");
    const rows = await dbA.db.selectFrom("jobs").select(["locked_by", "lease_until", "status"]).execute();
    assert.ok(rows.every((r) => r.status === "running" && r.locked_by !== null && r.lease_until !== null));
  });

  it("leaves a live node's job alone while its heartbeat renews the lease", async () => {
    const id = await a.enqueue("process-sync", { syncId: 41 });
    const job = await a.claim(["process-sync"]);
    assert.equal(job?.id, id);
    const until = Date.now() + LEASE_MS * 4;
    while (Date.now() < until) {
      assert.deepEqual(await a.heartbeat([id]), []);
      assert.equal(await b.claim(["process-sync"]), undefined, "another node took a live node's job");
      await sleep(LEASE_MS / 4);
    }
    // A restarting node takes nothing at start either: only expired leases are ever taken.
    assert.equal(await b.requeueInterrupted(), 0);
    await a.complete(id);
    const row = await dbA.db.selectFrom("jobs").select(["status"]).where("id", "=", id).executeTakeFirstOrThrow();
    assert.equal(row.status, "done");
  });

  it("gives a dead node's job to another node once its lease expires, with the same payload, and ignores the dead node's late outcome", async () => {
    const id = await a.enqueue("process-sync", { syncId: 42 });
    const first = await a.claim(["process-sync"]);
    assert.equal(first?.id, id);
    // Node A dies: no more heartbeats.
    assert.equal(await b.claim(["process-sync"]), undefined);
    await sleep(LEASE_MS + 100);
    const taken = await b.claim(["process-sync"]);
    assert.equal(taken?.id, id);
    assert.deepEqual(JSON.parse(taken!.payload), { syncId: 42 });
    assert.equal(taken!.takenOverFrom, "node-a");
    assert.equal(taken!.attempts, 2);
    // Node A, had it only paused, learns it lost the lease and cannot record an outcome.
    assert.deepEqual(await a.heartbeat([id]), [id]);
    await a.complete(id);
    await a.fail(first!, "late");
    const row = await dbA.db.selectFrom("jobs").select(["status", "locked_by", "last_error"]).where("id", "=", id).executeTakeFirstOrThrow();
    assert.deepEqual(row, { status: "running", locked_by: "node-b", last_error: null });
    await b.complete(id);
    assert.equal((await dbA.db.selectFrom("jobs").select("status").where("id", "=", id).executeTakeFirstOrThrow()).status, "done");
  });
});

describe("jobs on one node (SQLite)", () => {
  it("requeues every job left running at start: the one node's crash interrupted them", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "rosterdock-jobs-"));
    const database = await openDatabase({ dataDir, databaseUrl: undefined });
    try {
      const queue = new JobQueue(database.db, systemClock, { nodeId: "only", shared: false });
      const id = await queue.enqueue("process-sync", { syncId: 1 });
      assert.equal((await queue.claim(["process-sync"]))?.id, id);
      assert.equal(await queue.claim(["process-sync"]), undefined);
      assert.equal(await queue.requeueInterrupted(), 1);
      const again = await queue.claim(["process-sync"]);
      assert.deepEqual({ id: again?.id, attempts: again?.attempts, locked_by: again?.locked_by }, { id, attempts: 2, locked_by: "only" });
    } finally {
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
