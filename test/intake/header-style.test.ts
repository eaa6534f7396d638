import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { headerStyle } from "../../src/intake/header-style.ts";

describe("a file's header style", () => {
  it("tells AutoSend, Data Export Manager, Rosterdock and PowerSchool labels apart", () => {
    assert.equal(headerStyle(["Student_Number", "First_Name", "[05]TeacherNumber", "[39]Alternate_School_Number"], "users"), "autosend");
    assert.equal(headerStyle(["\uFEFFStudents.DCID", "Students.ID", "Students.First_Name"], "users"), "table-field");
    assert.equal(headerStyle(["district_user_id", "role", "first_name", "last_name", "school_id"], "users"), "rosterdock");
    assert.equal(headerStyle(["ID", "First_Name", "Last_Name", "SchoolID"], "users"), "powerschool");
    // A file mixing Rosterdock's names with another label reads as PowerSchool's.
    assert.equal(headerStyle(["district_user_id", "First_Name"], "users"), "powerschool");
    assert.equal(headerStyle([], "users"), "none");
    assert.equal(headerStyle([" ", ""], "schools"), "none");
  });
});
