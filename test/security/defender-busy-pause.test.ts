import assert from "node:assert/strict";
import { it } from "node:test";
import type { AuditLog } from "../../src/audit/audit-log.ts";
import { createLogger } from "../../src/logger.ts";
import type { BanStore } from "../../src/security/ban-store.ts";
import { Defender } from "../../src/security/defender.ts";

/** Only the defender's in-memory judgement is exercised here: no ban is stored or audited. */
function defenderAt(clock: { ms: number }): Defender {
  return new Defender(
    {} as BanStore,
    { maxFailures: 10, maxAccounts: 5, windowMs: 600_000, banMs: 1_800_000, refreshMs: 5000 },
    { now: () => new Date(clock.ms) },
    {} as AuditLog,
    createLogger("silent"),
  );
}

it("pauses an address whose login was refused for want of hashing capacity: 1 s, doubling while it keeps coming back, at most a minute", () => {
  const clock = { ms: Date.parse("2026-12-04T03:00:00Z") };
  const defender = defenderAt(clock);
  const flooder = "198.51.100.7";
  assert.equal(defender.isPausedForBusy(flooder), false);

  defender.recordBusy(flooder);
  // Its other connections in flight are refused in the same second: the pause does not grow.
  for (let i = 0; i < 19; i++) defender.recordBusy(flooder);
  assert.equal(defender.isPausedForBusy(flooder), true);
  clock.ms += 999;
  assert.equal(defender.isPausedForBusy(flooder), true);
  clock.ms += 1;
  assert.equal(defender.isPausedForBusy(flooder), false, "a 1 s pause");

  // Refused again right after: 2 s, then 4 s, … up to 60 s.
  const pauses: number[] = [];
  for (let round = 0; round < 8; round++) {
    defender.recordBusy(flooder);
    let paused = 0;
    while (defender.isPausedForBusy(flooder)) {
      clock.ms += 1000;
      paused += 1000;
    }
    pauses.push(paused);
  }
  assert.deepEqual(pauses, [2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);

  // Quiet for longer than 10 s after a pause: the next refusal starts again at 1 s.
  clock.ms += 11_000;
  defender.recordBusy(flooder);
  clock.ms += 1000;
  assert.equal(defender.isPausedForBusy(flooder), false);

  // Another address is not affected.
  assert.equal(defender.isPausedForBusy("198.51.100.8"), false);
});

it("never pauses an address a district logged in from within a day", () => {
  const clock = { ms: Date.parse("2026-12-04T03:00:00Z") };
  const defender = defenderAt(clock);
  const district = "192.0.2.10";
  const login = defender.begin(district, "lincoln", "ssh");
  assert.ok(login.ok);
  login.attempt.succeed();
  defender.recordBusy(district);
  assert.equal(defender.isPausedForBusy(district), false);
});
