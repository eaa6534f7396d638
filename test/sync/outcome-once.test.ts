import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { it } from "node:test";
import Database from "better-sqlite3";
import type { Rosterdock } from "../../src/service.ts";
import { forEachBackend, newDistrict, snapshot, startRosterdock, writeFiles } from "./helpers.ts";
import { selectedBackends } from "../support/backends.ts";

const night = (students: number) => {
  const users = ["district_user_id,role,first_name,last_name,school_id,teacher_number", "1,teacher,Ana,Núñez,101,T1"];
  const enrollments = ["class_id,student_id,start_date,end_date"];
  for (let i = 1; i <= students; i++) {
    users.push(`${1000 + i},student,Zoë,Student ${i},101,`);
    enrollments.push(`C1,${1000 + i},08/24/2026,`);
  }
  return {
    "schools.csv": "school_id,school_name\n101,Lincoln\n",
    "users.csv": `${users.join("\n")}\n`,
    "classes.csv": "class_id,class_name,school_id,course_id,teacher_id\nC1,Algebra,101,A,1\n",
    "enrollments.csv": `${enrollments.join("\n")}\n`,
  };
};

/**
 * Writes a sync's status at once, from outside the running Rosterdock and without yielding to its
 * event loop, as another node's commit would land while this one is still planning.
 */
function finishLatestElsewhere(rd: Rosterdock, status: string): number {
  const statement = `UPDATE syncs SET status = '${status}' WHERE id = (SELECT max(id) FROM syncs) RETURNING id`;
  if (rd.config.databaseUrl) {
    return Number(execFileSync("psql", [rd.config.databaseUrl, "-v", "ON_ERROR_STOP=1", "-qtAc", statement], { encoding: "utf8" }).trim());
  }
  const db = new Database(join(rd.config.dataDir, "rosterdock.sqlite"));
  try {
    db.pragma("busy_timeout = 10000");
    return (db.prepare(statement).get() as { id: number }).id;
  } finally {
    db.close();
  }
}

forEachBackend(selectedBackends(), "a sync's outcome is written once", () => {
  it("drops the outcome of a node that lost its job: the sync another node finished meanwhile keeps that node's outcome, and the roster is not applied twice", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd);
    assert.equal((await rd.syncs.ingest(slug, [await writeFiles(night(5))])).status, "applied");
    const before = await snapshot(rd, slug, { withSyncIds: true });

    // The next night: while this node plans it, another node records it as held (its own outcome).
    let syncId = 0;
    const outcome = await rd.syncs.ingest(slug, [await writeFiles(night(8))], {
      onProgress: () => {
        if (syncId === 0) syncId = finishLatestElsewhere(rd, "held");
      },
    });
    assert.notEqual(syncId, 0, "the sync reported its progress");
    assert.equal(outcome.syncId, syncId);
    assert.equal(outcome.alreadyDone, true);
    assert.equal(outcome.status, "held");
    assert.equal((await rd.syncs.show(syncId)).status, "held");
    assert.deepEqual(await snapshot(rd, slug, { withSyncIds: true }), before, "the roster stays as the other node left it");

    // Nothing else is stuck: the night after applies as usual.
    const next = await rd.syncs.ingest(slug, [await writeFiles(night(8))]);
    assert.equal(next.status, "applied");
    assert.equal(next.counts.users.created, 3);
  });
});
