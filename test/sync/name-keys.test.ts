import { it } from "node:test";
import assert from "node:assert/strict";
import { collationKey } from "../../src/sync/collation-key.ts";
import { forEachBackend, newDistrict, snapshot, startRosterdock, writeFiles } from "./helpers.ts";
import { selectedBackends } from "../support/backends.ts";

const SCHOOLS = "school_id,school_name\r\n101,North\r\n";
const CLASSES = "class_id,school_id,course_id,teacher_id\r\nK1,101,C1,9\r\n";
const ENROLLMENTS = "class_id,student_id\r\nK1,1\r\n";
const users = (names: Array<[string, string]>) =>
  "district_user_id,role,first_name,last_name,school_id,gender\r\n" +
  names.map(([first, last], i) => `${i + 1},student,${first},${last},101,${i % 2 === 0 ? "F" : "m"}\r\n`).join("") +
  "9,teacher,Tess,Ångström,101,\r\n";

forEachBackend(selectedBackends(), "users' name keys and sex", (backend) => {
  it("are written with the names, follow a change, and come back with a rollback, even of a change logged before they existed", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd);
    const night = (names: Array<[string, string]>) => writeFiles({ "schools.csv": SCHOOLS, "users.csv": users(names), "classes.csv": CLASSES, "enrollments.csv": ENROLLMENTS });
    const keysOf = async () =>
      Object.fromEntries((await snapshot(rd, slug)).users!.map((u) => [u.user_key, [u.family_name_key, u.given_name_key, u.gender]]));

    assert.equal((await rd.syncs.ingest(slug, [await night([["Zoë", "Øster"], ["Łucja", "de la Cruz"]])])).status, "applied");
    const first = (await keysOf());
    assert.deepEqual(first, {
      "student-1": ["oster", "zoe", "female"],
      "student-2": ["de la cruz", "lucja", "male"],
      "staff-id-9": ["angstrom", "tess", null],
    });

    const second = await rd.syncs.ingest(slug, [await night([["Zoë", "Straße"], ["Łucja", "de la Cruz"]])]);
    assert.equal(second.status, "applied");
    assert.deepEqual((await keysOf())["student-1"], ["strasse", "zoe", "female"]);
    for (const row of (await snapshot(rd, slug)).users!) assert.equal(row.family_name_key, collationKey(String(row.last_name)));

    // The change as a SQLite server before name keys logged it: a rollback still restores the keys.
    // (PostgreSQL databases came after them: their change log always has the keys.)
    if (backend === "sqlite") {
      const stripped = rd.database
        .sqlite!.prepare("UPDATE roster_changes SET before_json = json_remove(before_json, '$.family_name_key', '$.given_name_key') WHERE sync_id = ? AND entity = 'users' AND before_json IS NOT NULL")
        .run(second.syncId).changes;
      assert.equal(stripped, 1);
    }
    await rd.syncs.rollback(second.syncId, "test");
    assert.deepEqual((await keysOf()), first);
  });
});
