import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DateColumn, dateForms } from "../../src/intake/date-format.ts";
import type { DateColumnMemory } from "../../src/intake/date-format.ts";
import { INVALID } from "../../src/intake/normalise.ts";
import { brief, readContent } from "./helpers.ts";

const CC_HEADER = "StudentID,SectionID,DateEnrolled,DateLeft";

function cc(dates: Array<[string, string]>): string {
  return [CC_HEADER, ...dates.map(([start, end], i) => `${i + 1},10,${start},${end}`), ""].join("\n");
}

function starts(records: readonly unknown[]): Array<string | null> {
  return records.map((r) => (r as { start_date: string | null }).start_date);
}

describe("dateForms", () => {
  it("reads a slash date both ways, and only an ISO date's own way", () => {
    assert.deepEqual(dateForms("05/03/2010"), { mdy: "2010-05-03", dmy: "2010-03-05", firstOver12: false, secondOver12: false, isoLowDay: false });
    assert.deepEqual(dateForms("25/03/2010"), { mdy: INVALID, dmy: "2010-03-25", firstOver12: true, secondOver12: false, isoLowDay: false });
    assert.deepEqual(dateForms("03/25/10"), { mdy: "2010-03-25", dmy: INVALID, firstOver12: false, secondOver12: true, isoLowDay: false });
    assert.deepEqual(dateForms("2010-03-05"), { mdy: "2010-03-05", dmy: "2010-03-05", firstOver12: false, secondOver12: false, isoLowDay: true });
    assert.equal(dateForms("0/0/0").mdy, null);
    assert.equal(dateForms("01/01/1900").dmy, null);
  });
});

describe("a file's date column is read one way", () => {
  it("reads values that fit both ways month first, as PowerSchool's US exports write them, without a word", async () => {
    const result = await readContent("cc.csv", cc([["05/03/2010", "12/01/2010"], ["1/2/2010", ""]]));
    assert.deepEqual(starts(result.records), ["2010-05-03", "2010-01-02"]);
    assert.deepEqual(brief(result.issues), []);
    assert.deepEqual(
      result.stats.dateColumns.map((c) => [c.column, c.reading, c.swap, c.settled]),
      [["start_date", "mdy", false, true], ["end_date", "mdy", false, true]],
    );
  });

  it("reads a column day first when one of its values can only be read so, and says so once, with an example", async () => {
    const result = await readContent("cc.csv", cc([["05/03/2010", "12/01/2010"], ["25/03/2010", "06/30/2010"], ["07/04/2010", ""]]));
    // Values that fit both ways stay read month first until the file ends: the sync swaps them (settleDateColumns).
    assert.deepEqual(starts(result.records), ["2010-05-03", "2010-03-25", "2010-07-04"]);
    const [start, end] = result.stats.dateColumns;
    assert.deepEqual([start!.reading, start!.swap, start!.examples.dayFirst], ["dmy", true, { row: 3, value: "25/03/2010" }]);
    assert.deepEqual([end!.reading, end!.swap], ["mdy", false], "each column on its own");
    assert.deepEqual(brief(result.issues), ["info DATE_FORMAT_DAY_FIRST@-:DateEnrolled=-"]);
    assert.match(result.issues[0]!.message, /column DateEnrolled was read as DD\/MM\/YYYY \(day first\) throughout.*for example 25\/03\/2010 in row 3/);
    assert.equal(result.stats.badRows, 0);
  });

  it("finds a column holding both kinds ambiguous, naming a row of each and what to do", async () => {
    const result = await readContent("cc.csv", cc([["05/03/2010", ""], ["25/03/2010", ""], ["03/26/2010", ""]]));
    assert.deepEqual(brief(result.issues), ["warning AMBIGUOUS_DATE_FORMAT@-:DateEnrolled=-"]);
    const message = result.issues[0]!.message;
    assert.match(message, /25\/03\/2010 in row 3 can only be day first \(DD\/MM\/YYYY\), 03\/26\/2010 in row 4 only month first \(MM\/DD\/YYYY\)/);
    assert.match(message, /each row kept yesterday's value/);
    assert.match(message, /rosterdock district settings <district> --date-format mdy/);
    assert.deepEqual(result.stats.dateColumns.map((c) => [c.reading, c.swap]), [["ambiguous", false], ["mdy", false]]);
    // Not bad rows: the column's values are simply not taken tonight.
    assert.equal(result.stats.badRows, 0);
  });

  it("counts the rows an ambiguous required column leaves out", async () => {
    const result = await readContent("terms.csv", "ID,Name,FirstDay,LastDay\n1,Fall,25/08/2026,12/20/2026\n2,Spring,01/25/2027,06/30/2027\n");
    assert.deepEqual(brief(result.issues), ["warning AMBIGUOUS_DATE_FORMAT@-:FirstDay=-"]);
    assert.match(result.issues[0]!.message, /2 rows were left out of tonight's sync; those records stay as they were/);
    assert.deepEqual(result.stats.dateColumns.map((c) => [c.column, c.reading, c.required]), [["start_date", "ambiguous", true], ["end_date", "mdy", true]]);
  });

  it("takes ISO dates among day-first ones as ambiguous: once read, they could not be told from the dates to swap", async () => {
    const result = await readContent("cc.csv", cc([["2010-03-05", ""], ["25/03/2010", ""]]));
    assert.equal(result.stats.dateColumns[0]!.reading, "ambiguous");
    assert.match(result.issues[0]!.message, /2010-03-05 in row 2 is written year first/);
    // ISO dates with a day over 12 cannot be mistaken.
    const fine = await readContent("cc.csv", cc([["2010-03-25", ""], ["25/03/2010", ""]]));
    assert.equal(fine.stats.dateColumns[0]!.reading, "dmy");
  });

  it("with the district's format set, reads that way from the first row; the other kind is a bad date", async () => {
    const text = cc([["05/03/2010", ""], ["25/03/2010", ""], ["03/26/2010", ""]]);
    const mdy = await readContent("cc.csv", text, { dateFormat: "mdy" });
    assert.deepEqual(brief(mdy.issues), ["warning BAD_DATE@3:DateEnrolled=25/03/2010"]);
    assert.match(mdy.issues[0]!.message, /Use MM\/DD\/YYYY \(for example 08\/24\/2026\), the date format set for this district, or YYYY-MM-DD/);
    assert.deepEqual(starts(mdy.records).slice(0, 1).concat(starts(mdy.records).slice(2)), ["2010-05-03", "2010-03-26"]);
    const dmy = await readContent("cc.csv", text, { dateFormat: "dmy" });
    assert.deepEqual(brief(dmy.issues), ["warning BAD_DATE@4:DateEnrolled=03/26/2010"]);
    assert.deepEqual(starts(dmy.records).slice(0, 2), ["2010-03-05", "2010-03-25"]);
    assert.deepEqual(dmy.stats.dateColumns.map((c) => [c.reading, c.swap]), [["dmy", false], ["dmy", false]], "nothing to swap: read day first at once");
  });
});

describe("a date column read against last night's digest", () => {
  const lastNight = (reading: DateColumnMemory["reading"], dayFirst: number, monthFirst = 0): DateColumnMemory => ({
    reading,
    rows: 100,
    lines: { dayFirst: [dayFirst, dayFirst], monthFirst: [monthFirst, monthFirst], isoLowDay: [0, 0] },
    examples: dayFirst > 0 ? { dayFirst: { row: 9, value: "25/03/2010" } } : {},
  });

  it("keeps last night's day-first reading while the lines skipped must still hold a day-first date", () => {
    const column = new DateColumn("start_date", false, "auto", lastNight("dmy", 5));
    assert.equal(column.read("05/03/2010", 2), "2010-05-03");
    // 96 of last night's 100 lines skipped: at least one of its 5 day-first lines is among them.
    const outcome = column.finish(100, 96);
    assert.deepEqual([outcome.reading, outcome.swap, outcome.settled], ["dmy", true, true]);
    assert.deepEqual(outcome.lines.dayFirst, [1, 5]);
    assert.deepEqual(outcome.examples.dayFirst, { row: 9, value: "25/03/2010" });
  });

  it("is not settled when the lines skipped may have lost every day-first date, or tonight's lines read another way", () => {
    assert.equal(new DateColumn("start_date", false, "auto", lastNight("dmy", 5)).finish(100, 90).settled, false);
    const firstDayFirst = new DateColumn("start_date", false, "auto", lastNight("mdy", 0));
    firstDayFirst.read("25/03/2010", 2);
    assert.deepEqual([firstDayFirst.finish(100, 99).reading, firstDayFirst.finish(100, 99).settled], ["dmy", false]);
    const nowBoth = new DateColumn("start_date", false, "auto", lastNight("dmy", 50));
    nowBoth.read("03/25/2010", 2);
    assert.deepEqual([nowBoth.finish(100, 99).reading, nowBoth.finish(100, 99).settled], ["ambiguous", false]);
  });

  it("is settled when the unknown cannot change the reading: month-first lines may have gone, there was never a day-first one", () => {
    const outcome = new DateColumn("start_date", false, "auto", lastNight("mdy", 0, 3)).finish(100, 10);
    assert.deepEqual([outcome.reading, outcome.settled], ["mdy", true]);
    assert.deepEqual(outcome.lines.monthFirst, [0, 3]);
  });
});
