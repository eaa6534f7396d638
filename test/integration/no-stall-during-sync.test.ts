import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import SqliteDatabase from "better-sqlite3";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { cachedDemoNight } from "../support/demo-night-cache.ts";
import { RosterdockHome, waitFor } from "../support/rosterdock-process.ts";
import { requireTool, runSftp } from "../support/sftp-client.ts";

const missing = requireTool("sftp");

/** Several hundred thousand students: their first load holds SQLite's write lock for seconds. */
const BIG = { students: 300_000, teachers: 6_000, schools: 12, courses: 300, enrollmentsPerStudent: 8 };
const LIMIT_MS = 2_000;

interface Timed {
  name: string;
  start: number;
  end: number;
  failed: string | undefined;
}

describe("no upload or API request waits behind a sync", { skip: missing }, () => {
  it("another district's small uploads each finish in under 2 s while a big first load is staged and applied", { timeout: 600_000 }, async (t) => {
    const night = await cachedDemoNight("canonical", BIG);
    const home = await RosterdockHome.create({ ROSTERDOCK_QUIET_SECONDS: "4" });
    try {
      const big = await home.createDistrict("big");
      const small = await home.createDistrict("small");
      const server = await home.serve();
      try {
        const dir = await mkdtemp(join(tmpdir(), "rosterdock-small-"));
        await writeFile(join(dir, "note.txt"), "a small file from another district\n");
        const put = async (name: string): Promise<Timed> => {
          const start = Date.now();
          const result = await runSftp({ ...small, port: server.sftpPort }, [`put note.txt ${name}`], { cwd: dir });
          return { name, start, end: Date.now(), failed: result.code === 0 ? undefined : result.stderr };
        };
        // How long one takes here with nothing else running: a shared, overloaded machine is slow at everything.
        const idle: Timed[] = [];
        for (let i = 0; i < 5; i++) idle.push(await put(`idle-${i}.txt`));
        const slowestIdle = Math.max(...idle.map((u) => u.end - u.start));
        const limit = Math.max(LIMIT_MS, 2 * slowestIdle);
        t.diagnostic(`idle uploads: ${JSON.stringify(idle.map((u) => u.end - u.start))} ms; limit ${limit} ms`);

        const zip = night.files[0]!;
        const sent = await runSftp({ ...big, port: server.sftpPort }, [`put ${basename(zip)}`], { cwd: dirname(zip) });
        assert.equal(sent.code, 0, sent.stderr);
        const bigId = (await home.json(["district", "show", "big"])).id;
        const processing = await server.waitForLog((e) => e.event === "sync.processing" && e.districtId === bigId, 30_000);

        const uploads: Timed[] = [];
        const health: Timed[] = [];
        const applied = () => server.logs.find((e) => (e.event === "sync.applied" || e.event === "sync.held" || e.event === "sync.failed") && e.syncId === processing.syncId);
        // Until the big sync is done, and once more after: each upload its own connection and login, as a district's nightly job.
        for (let i = 0, after = 0; after < 2 && i < 400; i++) {
          if (applied()) after++;
          uploads.push(await put(`note-${String(i).padStart(3, "0")}.txt`));
          const asked = Date.now();
          const response = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`);
          health.push({ name: "/healthz", start: asked, end: Date.now(), failed: response.ok ? undefined : await response.text() });
        }
        const outcome = applied();
        assert.equal(outcome?.event, "sync.applied", "the big district's first load is applied");
        const [bigSync] = await home.json(["syncs", "big"]);
        const applyMs: number = bigSync.summary?.timings?.applyMs ?? (await home.json(["sync", "show", String(bigSync.id)])).summary.timings.applyMs;
        const window = { start: outcome.time - applyMs, end: outcome.time };
        const during = uploads.filter((u) => u.end > window.start && u.start < window.end);
        const ms = (list: Timed[]) => list.map((u) => u.end - u.start);
        t.diagnostic(`apply held the write lock ${applyMs} ms; ${uploads.length} uploads, ${during.length} during the apply: ${JSON.stringify(ms(during))} ms`);
        t.diagnostic(`slowest upload ${Math.max(...ms(uploads))} ms, slowest /healthz ${Math.max(...ms(health))} ms`);
        const lags = server.logs.filter((e) => e.event === "server.event_loop_lag");
        if (lags.length > 0) t.diagnostic(`event-loop lag logged: ${JSON.stringify(lags.map((e) => e.lagMs))}`);

        assert.deepEqual(uploads.filter((u) => u.failed), [], "every upload succeeds");
        assert.deepEqual(health.filter((h) => h.failed), [], "the server stays healthy");
        assert.ok(applyMs >= 2 * LIMIT_MS, `the apply must hold the lock long enough to show a stall (${applyMs} ms)`);
        assert.ok(during.length >= 2, `uploads ran while the apply held the write lock (${during.length})`);
        for (const u of uploads) assert.ok(u.end - u.start < limit, `${u.name} took ${u.end - u.start} ms`);
        for (const h of health) assert.ok(h.end - h.start < LIMIT_MS, `/healthz took ${h.end - h.start} ms`);

        // Every small upload is on record, and in a delivery that became a sync (one, unless a slow
        // spell of this machine let the quiet period pass between two uploads).
        const recorded = await waitFor(async () => {
          const list = await home.json(["uploads", "small", "--limit", "1000"]);
          return list.length === idle.length + uploads.length && list;
        }, 30_000, "every small upload on record");
        assert.ok(recorded.every((u: any) => u.status === "accepted"));
        const files = await waitFor(async () => {
          const syncs = await home.json(["syncs", "small"]);
          const names = syncs.flatMap((s: any) => s.files.map((f: any) => f.name));
          return names.length === idle.length + uploads.length && names;
        }, 60_000, "the small district's deliveries to close with every upload");
        assert.deepEqual(files.sort(), [...idle, ...uploads].map((u) => u.name).sort());
      } finally {
        await server.stop();
      }
    } finally {
      await home.remove();
    }
  });

  it("an upload answered while a sync holds the write lock survives a crash of the server", async () => {
    const home = await RosterdockHome.create({ ROSTERDOCK_QUIET_SECONDS: "1" });
    try {
      const small = await home.createDistrict("small");
      const dir = await mkdtemp(join(tmpdir(), "rosterdock-small-"));
      await writeFile(join(dir, "students.csv"), "a small file\n");
      const server = await home.serve();
      // A session with the lock free as a baseline (a listing: an upload would be on record too), since a
      // shared, overloaded machine is slow at everything.
      const idleStart = Date.now();
      const idleSent = await runSftp({ ...small, port: server.sftpPort }, ["ls"], { cwd: dir });
      assert.equal(idleSent.code, 0, idleSent.stderr);
      const idle = Date.now() - idleStart;
      // Held as the sync engine holds it while it applies a big district.
      const holder = new SqliteDatabase(join(home.dataDir, "rosterdock.sqlite"));
      holder.exec("BEGIN IMMEDIATE");
      try {
        const start = Date.now();
        const sent = await runSftp({ ...small, port: server.sftpPort }, ["put students.csv"], { cwd: dir });
        assert.equal(sent.code, 0, sent.stderr);
        const took = Date.now() - start;
        assert.ok(took < Math.max(LIMIT_MS, 2 * idle), `answered in ${took} ms (a session with the lock free: ${idle} ms)`);
        await server.kill();
      } finally {
        holder.exec("COMMIT");
        holder.close();
      }
      const restarted = await home.serve();
      try {
        const [upload] = await waitFor(async () => {
          const list = await home.json(["uploads", "small"]);
          return list.length > 0 && list;
        }, 20_000, "the upload on record after the restart");
        assert.equal(upload.status, "accepted");
        assert.equal(upload.path, "/students.csv");
        const [sync] = await waitFor(async () => {
          const syncs = await home.json(["syncs", "small"]);
          return syncs.length > 0 && syncs;
        }, 30_000, "its delivery to close into a sync");
        assert.deepEqual(sync.files.map((f: any) => f.name), ["students.csv"]);
        assert.equal((await home.json(["uploads", "small"])).length, 1, "recorded once");
      } finally {
        await restarted.stop();
      }
    } finally {
      await home.remove();
    }
  });
});
