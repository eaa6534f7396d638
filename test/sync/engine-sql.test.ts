import assert from "node:assert/strict";
import { before, it } from "node:test";
import pg from "pg";
import { isBusy, isUniqueViolation } from "../../src/db/dialect-info.ts";
import type { Rosterdock } from "../../src/service.ts";
import type { EngineSql } from "../../src/sync/engine-sql.ts";
import { sqlTrue } from "../../src/sync/engine-sql.ts";
import { PostgresEngineSql } from "../../src/sync/postgres-engine-sql.ts";
import { SqliteEngineSql } from "../../src/sync/sqlite-engine-sql.ts";
import { forEachBackend, startRosterdock } from "./helpers.ts";
import { selectedBackends } from "../support/backends.ts";

/** The engine's SQL on the Rosterdock's own database, as createSyncService opens it. */
function engineOf(rd: Rosterdock): EngineSql {
  const sqlite = rd.database.sqlite;
  return sqlite ? new SqliteEngineSql(sqlite.name, `${rd.config.dataDir}/staging`) : new PostgresEngineSql(rd.config.databaseUrl!);
}

forEachBackend(selectedBackends(), "the sync engine's SQL interface", (backend) => {
  let rd: Rosterdock;
  let sql: EngineSql;

  before(async () => {
    rd = await startRosterdock();
    sql = engineOf(rd);
    await sql.attachStage(1);
  });

  it("runs statements with ? parameters and reads rows, values and counts", async () => {
    const t = `${sql.stage}"t"`;
    await sql.exec(`CREATE TABLE ${t} (k TEXT NOT NULL, v TEXT, n INTEGER)`);
    assert.equal(await sql.run(`INSERT INTO ${t} (k, v, n) VALUES (?, ?, ?), (?, ?, ?)`, ["a", "what?", 1, "b", null, 2]), 2);
    assert.deepEqual(await sql.all(`SELECT k, v, n FROM ${t} WHERE v = 'what?' OR k = ? ORDER BY k`, ["b"]), [
      { k: "a", v: "what?", n: 1 },
      { k: "b", v: null, n: 2 },
    ]);
    assert.deepEqual(await sql.get(`SELECT k FROM ${t} WHERE n = ?`, [2]), { k: "b" });
    assert.equal(await sql.get(`SELECT k FROM ${t} WHERE n = ?`, [3]), undefined);
    assert.equal(await sql.value(`SELECT v FROM ${t} WHERE k = ?`, ["a"]), "what?");
    assert.deepEqual(await sql.column(`SELECT k FROM ${t} ORDER BY k`), ["a", "b"]);
    assert.equal(await sql.count(`SELECT count(*) FROM ${t}`), 2);
    assert.ok(sqlTrue(await sql.value(`SELECT EXISTS (SELECT 1 FROM ${t})`)));
    assert.ok(!sqlTrue(await sql.value(`SELECT EXISTS (SELECT 1 FROM ${t} WHERE n > ?)`, [5])));
  });

  it("streams more rows than one fetch, with parameters bound as values, not text to run", async () => {
    const t = `${sql.stage}"many"`;
    await sql.exec(`CREATE TABLE ${t} (k TEXT NOT NULL, row INTEGER NOT NULL, n INTEGER NOT NULL)`);
    const writer = sql.stageWriter("many", ["k", "row"], { n: 7 });
    for (let i = 0; i < 25_003; i++) writer.push([`k'${i}`], i);
    await writer.end();
    let rows = 0;
    let last = "";
    await sql.each<{ k: string; row: number }>(`SELECT k, row FROM ${t} WHERE n = ? AND k <> ? ORDER BY row`, [7, "x' OR '1'='1"], (r) => {
      rows++;
      last = r.k;
    });
    assert.equal(rows, 25_003);
    assert.equal(last, "k'25002");
    const seen: string[] = [];
    await sql.eachValue<string>(`SELECT k FROM ${t} WHERE k = ?`, ["k'42"], (k) => seen.push(k));
    assert.deepEqual(seen, ["k'42"]);
  });

  it("stages values as they are: nulls, tabs, newlines, backslashes, quotes and any script", async () => {
    await sql.exec(`CREATE TABLE ${sql.stage}"odd" (a TEXT, b TEXT, file_idx INTEGER NOT NULL, row INTEGER NOT NULL)`);
    const values = [
      ["tab\there", null],
      ["line\nbreak\r\n", "back\\slash \\N"],
      ['"quoted", \'single\'', "Zoë Øster 李 🙂"],
    ];
    const writer = sql.stageWriter("odd", ["a", "b", "row"], { file_idx: 3 });
    values.forEach((v, i) => writer.push(v, i + 2));
    await writer.endBatch();
    await writer.end();
    const rows = await sql.all<{ a: string; b: string | null; file_idx: number; row: number }>(`SELECT a, b, file_idx, row FROM ${sql.stage}"odd" ORDER BY row`);
    assert.deepEqual(
      rows.map((r) => [r.a, r.b, Number(r.file_idx), Number(r.row)]),
      values.map((v, i) => [v[0], v[1], 3, i + 2]),
    );
  });

  it("rolls a failed transaction back, and a failed nested one back to its savepoint", async () => {
    const t = `${sql.stage}"tx"`;
    await sql.exec(`CREATE TABLE ${t} (k TEXT PRIMARY KEY)`);
    await assert.rejects(
      sql.transaction(async () => {
        await sql.run(`INSERT INTO ${t} (k) VALUES (?)`, ["gone"]);
        throw new Error("changed my mind");
      }),
      /changed my mind/,
    );
    assert.equal(await sql.count(`SELECT count(*) FROM ${t}`), 0);
    await sql.transaction(async () => {
      await sql.run(`INSERT INTO ${t} (k) VALUES (?)`, ["kept"]);
      const error = await sql.scratch(() => sql.run(`INSERT INTO ${t} (k) VALUES (?)`, ["kept"])).catch((e: unknown) => e);
      assert.ok(isUniqueViolation(error), "a repeated key reads as a unique violation");
      await sql.run(`INSERT INTO ${t} (k) VALUES (?)`, ["also kept"]);
    });
    assert.deepEqual(await sql.column(`SELECT k FROM ${t} ORDER BY k`), ["also kept", "kept"]);
  });

  it("inserts or ignores, and inserts or replaces, by key", async () => {
    const t = `${sql.stage}"kv"`;
    await sql.exec(`CREATE TABLE ${t} (k TEXT NOT NULL, v TEXT, PRIMARY KEY (k))${sql.withoutRowid}`);
    await sql.run(`INSERT INTO ${t} (k, v) VALUES ('a', '1'), ('b', '1')`);
    await sql.run(sql.insertOrIgnore(t, ["k", "v"], "VALUES (?, ?)", ["k"]), ["a", "2"]);
    await sql.run(sql.insertOrReplace(t, ["k", "v"], "SELECT 'b', '3'", ["k"]));
    await sql.run(sql.insertOrIgnore(t, ["k", "v"], "SELECT 'c', '4'", ["k"]));
    assert.deepEqual(await sql.all(`SELECT k, v FROM ${t} ORDER BY k`), [
      { k: "a", v: "1" },
      { k: "b", v: "3" },
      { k: "c", v: "4" },
    ]);
  });

  it("builds the change log's JSON and reads it back alike", async () => {
    const json = await sql.value<string>(
      `SELECT ${sql.jsonObject([
        ["name", "'Zoë \"Z\"'"],
        ["n", "3"],
        ["none", "NULL"],
      ])}`,
    );
    assert.deepEqual(JSON.parse(json!), { name: 'Zoë "Z"', n: 3, none: null });
    const key = await sql.value<string>(`SELECT ${sql.jsonArray(["'1'", "'5000'"])}`);
    assert.deepEqual(JSON.parse(key!), ["1", "5000"]);
    assert.equal(await sql.value(`SELECT ${sql.jsonItem("?", 1)}`, [key]), "5000");
    assert.equal(await sql.value(`SELECT ${sql.jsonField("?", "name")}`, [json]), 'Zoë "Z"');
    assert.equal(Number(await sql.value(`SELECT ${sql.jsonField("?", "n", "integer")} + 1`, [json])), 4);
    assert.deepEqual(JSON.parse((await sql.value<string>(`SELECT ${sql.jsonSetInteger("?", "n", 9)}`, [json]))!), { name: 'Zoë "Z"', n: 9, none: null });
    await sql.exec(`CREATE TABLE ${sql.stage}"schools" (s TEXT)`);
    const none = await sql.value(`SELECT ${sql.jsonGroupArray("s")} FROM (SELECT s FROM ${sql.stage}"schools" ORDER BY s) x`);
    assert.equal(none, "[]");
    await sql.run(`INSERT INTO ${sql.stage}"schools" (s) VALUES ('102'), ('101')`);
    assert.equal(await sql.value(`SELECT ${sql.jsonGroupArray("s")} FROM (SELECT s FROM ${sql.stage}"schools" ORDER BY s) x`), '["101","102"]');
  });

  it("builds staging indexes, and a unique one over repeated keys fails as a unique violation", async () => {
    await sql.exec(`CREATE TABLE ${sql.stage}"rep" (k TEXT NOT NULL)`);
    await sql.run(`INSERT INTO ${sql.stage}"rep" (k) VALUES ('x'), ('x')`);
    const error = await sql.createStageIndex({ name: "rep_k", table: "rep", columns: ["k"], unique: true }).catch((e: unknown) => e);
    assert.ok(isUniqueViolation(error));
    await sql.createStageIndex({ name: "rep_k", table: "rep", columns: ["k"] });
    await sql.dropStageIndex("rep_k");
  });

  it("discards the staging space when the sync is done", async () => {
    await sql.detachStage();
    await sql.attachStage(2);
    await sql.exec(`CREATE TABLE ${sql.stage}"t" (k TEXT)`);
    assert.equal(await sql.count(`SELECT count(*) FROM ${sql.stage}"t"`), 0);
    await sql.detachStage();
    await sql.close();
  });

  if (backend === "postgres") {
    it("PostgreSQL: a lock held by another connection reads as busy, and the roster write lock is taken by every write transaction", async () => {
      const other = new pg.Client({ connectionString: rd.config.databaseUrl! });
      await other.connect();
      const engine = new PostgresEngineSql(rd.config.databaseUrl!);
      try {
        await other.query("BEGIN");
        await other.query("LOCK TABLE roster_changes IN ACCESS EXCLUSIVE MODE");
        const error = await engine
          .transaction(async () => {
            await engine.exec("SET LOCAL lock_timeout = '100ms'");
            await engine.exec("SELECT count(*) FROM roster_changes");
          })
          .catch((e: unknown) => e);
        assert.ok(isBusy(error), `busy: ${String(error)}`);
        await other.query("ROLLBACK");
        // While one engine writes, another waits for the roster write lock; readers do not.
        let release: (() => void) | undefined;
        const held = engine.transaction(() => new Promise<void>((resolve) => (release = resolve)));
        while (release === undefined) await new Promise((r) => setTimeout(r, 10));
        const waiter = new PostgresEngineSql(rd.config.databaseUrl!);
        let ran = false;
        const waiting = waiter.transaction(async () => void (ran = true)).finally(() => waiter.close());
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(ran, false, "the second writer waits");
        assert.equal((await other.query("SELECT count(*)::int AS n FROM roster_changes")).rows[0].n, 0, "a reader does not");
        release();
        await held;
        await waiting;
        assert.equal(ran, true);
      } finally {
        await engine.close();
        await other.end();
      }
    });
  }
});
