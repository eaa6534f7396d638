import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { recogniseFile } from "../../src/intake/recognise-file.ts";
import type { DeliveryFile } from "../../src/intake/unpack.ts";
import { ParseThreads, type ParseThread } from "../../src/sync/parse-thread.ts";

/** Every record of source 0 of the thread's delivery, read to its end. */
async function readAll(thread: ParseThread, name: string): Promise<unknown[]> {
  const records: unknown[] = [];
  for await (const message of thread.read(0, recogniseFile(name)!, false)) {
    if (message.kind === "batch") records.push(...message.records);
  }
  return records;
}

/** Threads a test acquired, ended when it ends whatever happened: a thread left running would keep the file from ending. */
const acquired: ParseThread[] = [];
function take(threads: ParseThreads, files: DeliveryFile[]): ParseThread {
  const thread = threads.acquire(files, {});
  acquired.push(thread);
  return thread;
}

function schools(rows: number, prefix: string): string {
  return ["School_Number,Name", ...Array.from({ length: rows }, (_, i) => `${i + 1},${prefix} ${i + 1}`)].join("\n") + "\n";
}

describe("parse threads kept between deliveries", () => {
  let dir: string;
  let first: DeliveryFile[];
  let second: DeliveryFile[];
  let big: DeliveryFile[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "rosterdock-parse-threads-"));
    await writeFile(join(dir, "a.csv"), schools(3, "North"));
    await writeFile(join(dir, "b.csv"), schools(5, "South"));
    // Many batches: more than the thread may parse ahead, so a reader that stops leaves it midway.
    await writeFile(join(dir, "c.csv"), schools(200_000, "West"));
    first = [{ name: "schools.csv", path: join(dir, "a.csv") }];
    second = [{ name: "schools.csv", path: join(dir, "b.csv") }];
    big = [{ name: "schools.csv", path: join(dir, "c.csv") }];
  });

  afterEach(async () => {
    await Promise.all(acquired.splice(0).map((thread) => thread.close()));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads the next delivery on the thread that read the last one to its end", async () => {
    const threads = new ParseThreads();
    try {
      const thread = take(threads, first);
      assert.equal((await readAll(thread, "schools.csv")).length, 3);
      assert.ok(thread.clean);
      await threads.release(thread);
      const again = take(threads, second);
      assert.equal(again, thread, "the same thread");
      const records = (await readAll(again, "schools.csv")) as Array<Record<string, unknown>>;
      assert.equal(records.length, 5, "the second delivery's rows, not the first's");
      assert.ok(JSON.stringify(records).includes("South 5"));
      assert.ok(!JSON.stringify(records).includes("North"));
      await threads.release(again);
    } finally {
      await threads.close();
    }
  });

  it("ends a thread left midway, and starts a new one for the next delivery", async () => {
    const threads = new ParseThreads();
    try {
      const thread = take(threads, big);
      for await (const message of thread.read(0, recogniseFile("schools.csv")!, false)) {
        assert.equal(message.kind, "batch");
        break; // a file that failed: the sync stops reading it
      }
      assert.equal(thread.clean, false);
      await threads.release(thread);
      const next = take(threads, first);
      assert.notEqual(next, thread);
      assert.equal((await readAll(next, "schools.csv")).length, 3);
      await threads.release(next);
    } finally {
      await threads.close();
    }
  });

  it("ends every thread released after it is closed", async () => {
    const threads = new ParseThreads();
    const thread = take(threads, first);
    await readAll(thread, "schools.csv");
    await threads.close();
    await threads.release(thread);
    assert.equal(thread.clean, false, "closed, not kept");
    const fresh = take(threads, second);
    assert.notEqual(fresh, thread);
    await readAll(fresh, "schools.csv");
    await threads.release(fresh);
    assert.equal(fresh.clean, false);
  });
});
