import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import type { Defender } from "../../src/security/defender.ts";
import { postgresMissing, startPostgres, type PostgresServer } from "../support/postgres.ts";

/** Two nodes' defenders (own connection pools, own memory) on one PostgreSQL database. */
describe("login throttling shared by two nodes (PostgreSQL)", { skip: postgresMissing() }, () => {
  let postgres: PostgresServer;
  const dirs: string[] = [];
  let a: Rosterdock;
  let b: Rosterdock;

  before(async () => {
    postgres = await startPostgres();
    const url = await postgres.createDatabase();
    const node = async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "rosterdock-node-"));
      dirs.push(dataDir);
      const env = { ROSTERDOCK_DATA_DIR: dataDir, ROSTERDOCK_DATABASE_URL: url, ROSTERDOCK_LOGIN_MAX_FAILURES: "4", ROSTERDOCK_LOGIN_MAX_ACCOUNTS: "3" };
      return createRosterdock(loadConfig(env), { logger: createLogger("silent") });
    };
    a = await node();
    b = await node();
    await a.defender.start();
    await b.defender.start();
  });

  after(async () => {
    await a?.close();
    await b?.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    await postgres?.stop();
  });

  function fail(defender: Defender, address: string, account: string): void {
    const started = defender.begin(address, account, "ssh");
    assert.ok(started.ok, `refused: ${JSON.stringify(!started.ok && started.refusal)}`);
    started.attempt.fail("bad_password");
  }

  it("counts failures spread over two nodes together and bans at the limit, on both nodes", async () => {
    const address = "203.0.113.5";
    // Alternating nodes: each sees only two of its own, below the limit of four.
    for (const node of [a, b, a, b]) {
      fail(node.defender, address, "lincoln");
      await node.defender.settled();
    }
    const bans = await a.defender.list(address);
    assert.deepEqual(
      bans.map((ban) => [ban.account, ban.failures]),
      [["lincoln", 4]],
    );
    assert.match(bans[0]!.reason, /on all nodes/);
    // The node that did not decide the ban reads it at its next refresh (every few seconds).
    await a.defender.refresh();
    for (const node of [a, b]) {
      const next = node.defender.begin(address, "lincoln", "ssh");
      assert.equal(next.ok, false);
      assert.equal(!next.ok && next.refusal.reason, "banned");
      // Another district behind the same address is not locked out.
      const other = node.defender.begin(address, "madison", "ssh");
      assert.ok(other.ok);
      other.attempt.release();
    }
  });

  it("counts the other node's failures with this node's checks under way, so parallel tries do not pass the limit", async () => {
    const address = "203.0.113.6";
    for (let i = 0; i < 3; i++) fail(a.defender, address, "lincoln");
    await a.defender.settled();
    await b.defender.refresh();
    // Three failed on node A: node B lets one check run, and refuses a parallel one before any hashing.
    const first = b.defender.begin(address, "lincoln", "ssh");
    assert.ok(first.ok);
    const second = b.defender.begin(address, "lincoln", "ssh");
    assert.equal(second.ok, false);
    assert.equal(!second.ok && second.refusal.reason, "too_many_failures");
    first.attempt.succeed();
    await b.defender.settled();
    // A success forgets the account's failures from that address on every node.
    await a.defender.refresh();
    const rows = await a.database.db.selectFrom("login_failures").select("id").where("address", "=", address).execute();
    assert.equal(rows.length, 0);
  });

  it("bans an address for every account when its failures at different accounts on both nodes reach the account limit", async () => {
    const address = "203.0.113.7";
    fail(a.defender, address, "one");
    await a.defender.settled();
    fail(b.defender, address, "two");
    await b.defender.settled();
    fail(a.defender, address, "three");
    await a.defender.settled();
    const bans = await b.defender.list(address);
    assert.deepEqual(
      bans.map((ban) => ban.account),
      [null],
    );
    // Node B did not decide it: it hears of it at once (NOTIFY), well before its next 5-second refresh.
    const deadline = Date.now() + 1000;
    while (!b.defender.isBanned(address) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(b.defender.isBanned(address), true);
  });

  it("lifts bans and forgets the shared failures with `bans clear`", async () => {
    await a.defender.clear(undefined, "test");
    await b.defender.refresh();
    assert.equal(b.defender.isBanned("203.0.113.7"), false);
    const rows = await a.database.db.selectFrom("login_failures").select("id").execute();
    assert.equal(rows.length, 0);
  });
});
