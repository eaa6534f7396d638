import assert from "node:assert/strict";
import { join } from "node:path";
import { it } from "node:test";
import { STUDENTS } from "../../src/api/oneroster/oneroster-resources.ts";
import { RosterReader, SEEK_STEP, type RosterQueries, type RosterStore } from "../../src/api/oneroster/roster-reader.ts";
import { PostgresRosterStore } from "../../src/api/oneroster/postgres-roster-store.ts";
import { SqliteRosterStore } from "../../src/api/oneroster/sqlite-roster-store.ts";
import { forEachBackend, newDistrict, startRosterdock, writeFiles } from "../sync/helpers.ts";
import { selectedBackends } from "../support/backends.ts";

/**
 * The real store, with a count of the seek steps run through it: single-row statements, one a
 * step, and (where the store batches them, PostgreSQL) statements of many steps.
 */
function counting(store: RosterStore): { store: RosterStore; steps: () => number; batches: () => number } {
  let steps = 0;
  let batches = 0;
  return {
    steps: () => steps,
    batches: () => batches,
    store: {
      sql: store.sql,
      compoundAsSubquery: store.compoundAsSubquery,
      batchesSeekSteps: store.batchesSeekSteps,
      close: () => store.close(),
      read: (work) =>
        store.read((q) => {
          const counted: RosterQueries = {
            all: (sql, params) => {
              if ("span" in params) batches++;
              return q.all(sql, params);
            },
            get: (sql, params) => q.get(sql, params),
            readsInOrder: (sql, params) => q.readsInOrder(sql, params),
            values: (sql, params) => {
              steps++;
              return q.values(sql, params);
            },
          };
          return work(counted);
        }),
    },
  };
}

forEachBackend(selectedBackends(), "seek anchors", () => {
it("takes each seek step of a new roster version once, however many deep pages of the list are asked at once", async () => {
  const rd = await startRosterdock();
  const slug = await newDistrict(rd);
  const students = 6 * SEEK_STEP;
  const users = ["district_user_id,role,first_name,last_name,school_id,teacher_number", "1,teacher,Ana,Núñez,101,T1"];
  for (let i = 1; i <= students; i++) users.push(`${100000 + i},student,Zoë,Student ${i},101,`);
  const night = await writeFiles({
    "schools.csv": "school_id,school_name\n101,Lincoln\n",
    "users.csv": `${users.join("\n")}\n`,
    "classes.csv": "class_id,class_name,school_id,course_id,teacher_id\nC1,Algebra,101,A,1\n",
    "enrollments.csv": "class_id,student_id,start_date,end_date\nC1,100001,08/24/2026,\n",
  });
  assert.equal((await rd.syncs.ingest(slug, [night])).status, "applied");

  // PostgreSQL reads from a pool, so the four requests really run at once; SQLite's one connection takes them in turn.
  const url = rd.config.databaseUrl;
  const { store, steps, batches } = counting(url ? await PostgresRosterStore.open(url) : SqliteRosterStore.open(join(rd.config.dataDir, "rosterdock.sqlite")));
  const reader = new RosterReader(store);
  try {
    const district = (await reader.district(slug))!;
    const offset = 5 * SEEK_STEP + 7;
    const query = { resource: STUDENTS, orderBy: "asc" as const };
    const pages = await Promise.all([1, 2, 3, 4].map(() => reader.list(district, query, 10, offset)));
    // Anchors at SEEK_STEP, 2 × SEEK_STEP, … 5 × SEEK_STEP: five steps in all, not five per request;
    // on PostgreSQL one statement for the five, each a round trip to the server.
    if (url) assert.deepEqual({ steps: steps(), batches: batches() }, { steps: 0, batches: 1 });
    else assert.deepEqual({ steps: steps(), batches: batches() }, { steps: 5, batches: 0 });
    for (const page of pages.slice(1)) assert.deepEqual(page.rows, pages[0]!.rows);

    // The same as one unpaged read would give.
    const whole = await reader.list(district, query, students, 0);
    assert.equal(pages[0]!.rows.length, 10);
    assert.deepEqual(pages[0]!.rows, whole.rows.slice(offset, offset + 10));

    // Steps taken from an anchor, not from the start: near pages first, then the deepest,
    // descending too (a seek index of its own). Each equals the unpaged read.
    const descending = await reader.list(district, { ...query, orderBy: "desc" as const }, students, 0);
    for (const [order, all] of [["asc", whole], ["desc", descending]] as const) {
      for (const at of [SEEK_STEP + 3, 2 * SEEK_STEP + 7, 4 * SEEK_STEP - 1, 6 * SEEK_STEP - 5, 6 * SEEK_STEP + 1]) {
        const page = await reader.list(district, { ...query, orderBy: order }, 10, at);
        assert.deepEqual(page.rows, all.rows.slice(at, at + 10), `${order} from ${at}`);
      }
    }
  } finally {
    await reader.close();
  }
});

it("batches the seek steps of a list merged with removed records, and pages it as one unpaged read would", async () => {
  const rd = await startRosterdock();
  const slug = await newDistrict(rd);
  const students = 6 * SEEK_STEP;
  const night = (removed: (i: number) => boolean) => {
    const users = ["district_user_id,role,first_name,last_name,school_id,teacher_number", "1,teacher,Ana,Núñez,101,T1"];
    for (let i = 1; i <= students; i++) if (!removed(i)) users.push(`${100000 + i},student,Zoë,Student ${i},101,`);
    return writeFiles({
      "schools.csv": "school_id,school_name\n101,Lincoln\n",
      "users.csv": `${users.join("\n")}\n`,
      "classes.csv": "class_id,class_name,school_id,course_id,teacher_id\nC1,Algebra,101,A,1\n",
      "enrollments.csv": "class_id,student_id,start_date,end_date\nC1,100001,08/24/2026,\n",
    });
  };
  assert.equal((await rd.syncs.ingest(slug, [await night(() => false)])).status, "applied");
  // Every 97th student leaves: removed records (tombstones) spread through the whole list.
  const second = await rd.syncs.ingest(slug, [await night((i) => i % 97 === 0)]);
  assert.equal(second.status, "applied", JSON.stringify(second.summary?.holdReasons));

  const url = rd.config.databaseUrl;
  const { store, steps, batches } = counting(url ? await PostgresRosterStore.open(url) : SqliteRosterStore.open(join(rd.config.dataDir, "rosterdock.sqlite")));
  const reader = new RosterReader(store);
  try {
    const district = (await reader.district(slug))!;
    const query = { resource: STUDENTS, orderBy: "asc" as const };
    const whole = await reader.list(district, query, students, 0);
    assert.equal(whole.rows.length, students, "live and removed students, merged");
    assert.equal(whole.rows.filter((r) => r.status === "tobedeleted").length, Math.floor(students / 97));
    const offset = 5 * SEEK_STEP + 7;
    const before = { steps: steps(), batches: batches() };
    const first = await reader.list(district, query, 10, offset);
    // Five anchors: on PostgreSQL one statement for the five, then one step from the last to the
    // page's first row (merged arms skip with the step); on SQLite five steps and that one.
    const taken = { steps: steps() - before.steps, batches: batches() - before.batches };
    if (url) assert.deepEqual(taken, { steps: 1, batches: 1 });
    else assert.deepEqual(taken, { steps: 6, batches: 0 });
    assert.deepEqual(first.rows, whole.rows.slice(offset, offset + 10));

    const descending = await reader.list(district, { ...query, orderBy: "desc" as const }, students, 0);
    for (const [order, all] of [["asc", whole], ["desc", descending]] as const) {
      for (const at of [SEEK_STEP - 1, SEEK_STEP, SEEK_STEP + 3, 2 * SEEK_STEP + 7, 4 * SEEK_STEP - 1, 6 * SEEK_STEP - 5, 6 * SEEK_STEP + 1]) {
        const page = await reader.list(district, { ...query, orderBy: order }, 10, at);
        assert.deepEqual(page.rows, all.rows.slice(at, at + 10), `${order} from ${at}`);
      }
    }
  } finally {
    await reader.close();
  }
});
});
