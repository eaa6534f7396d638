import assert from "node:assert/strict";
import { describe, it } from "node:test";
import yazl from "yazl";
import { MemoryIssueSink } from "../../src/intake/issue.ts";
import { unpackDelivery } from "../../src/intake/unpack.ts";
import type { UnpackLimits } from "../../src/intake/unpack.ts";
import { brief, readSource, writeTemp } from "./helpers.ts";

interface Entry {
  name: string;
  content: string | Buffer;
  mode?: number;
}

async function zipBytes(entries: Entry[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const entry of entries) {
    const content = typeof entry.content === "string" ? Buffer.from(entry.content) : entry.content;
    zip.addBuffer(content, entry.name, entry.mode === undefined ? {} : { mode: entry.mode });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** yazl refuses unsafe names, so write a same-length safe one and patch the bytes. */
function renameInZip(zip: Buffer, from: string, to: string): Buffer {
  assert.equal(from.length, to.length);
  const patched = Buffer.from(zip.toString("latin1").replaceAll(from, to), "latin1");
  assert.notDeepEqual(patched, zip);
  return patched;
}

async function unpack(name: string, bytes: Buffer, limits: Partial<UnpackLimits> = {}) {
  const path = await writeTemp(name, bytes);
  const sink = new MemoryIssueSink();
  const result = await unpackDelivery([{ name, path }], sink, limits);
  return { ...result, sink, issues: brief(sink.kept), messages: sink.kept.map((i) => i.message) };
}

const STUDENTS = "ID,First_Name,Last_Name\n1001,José,Peña\n";

describe("unpackDelivery", () => {
  it("expands a zip found by its bytes, skipping folders and macOS junk, and reads entries twice", async () => {
    const zip = await zipBytes([
      { name: "night/students.csv", content: STUDENTS },
      { name: "__MACOSX/night/._students.csv", content: "junk" },
      { name: "night/.DS_Store", content: "junk" },
    ]);
    const { sources, issues, close, sink } = await unpack("upload.bin", zip);
    try {
      assert.deepEqual(issues, []);
      assert.deepEqual(sources.map((s) => [s.name, s.size]), [["upload.bin/night/students.csv", Buffer.byteLength(STUDENTS)]]);
      const result = await readSource(sources[0]!, {}, sink);
      assert.deepEqual(result.rows, [2]);
      assert.equal((result.records[0] as { last_name: string }).last_name, "Peña");
    } finally {
      await close();
    }
  });

  it("passes other files through", async () => {
    const { sources, issues } = await unpack("students.csv", Buffer.from(STUDENTS));
    assert.deepEqual(issues, []);
    assert.deepEqual(sources.map((s) => [s.name, s.size]), [["students.csv", Buffer.byteLength(STUDENTS)]]);
  });

  it("rejects a zip with a ../ entry", async () => {
    const zip = renameInZip(await zipBytes([{ name: "aa/aa/evil.csv", content: STUDENTS }, { name: "students.csv", content: STUDENTS }]), "aa/aa/", "../../");
    const { sources, issues, messages } = await unpack("roster.zip", zip);
    assert.deepEqual(sources, []);
    assert.deepEqual(issues, ["error UNSAFE_ZIP_ENTRY@-:-=../../evil.csv"]);
    assert.match(messages[0]!, /roster\.zip contains an entry named "\.\.\/\.\.\/evil\.csv" that contains "\.\." and points outside the archive\. For safety the whole zip was rejected/);
  });

  it("rejects a zip with an absolute entry and one with a drive letter", async () => {
    const absolute = renameInZip(await zipBytes([{ name: "_etc/students.csv", content: STUDENTS }]), "_etc/", "/etc/");
    assert.deepEqual((await unpack("a.zip", absolute)).issues, ["error UNSAFE_ZIP_ENTRY@-:-=/etc/students.csv"]);
    const drive = renameInZip(await zipBytes([{ name: "C_/students.csv", content: STUDENTS }]), "C_/", "C:/");
    assert.deepEqual((await unpack("b.zip", drive)).issues, ["error UNSAFE_ZIP_ENTRY@-:-=C:/students.csv"]);
  });

  it("rejects a symbolic link entry", async () => {
    const zip = await zipBytes([{ name: "students.csv", content: "/etc/passwd", mode: 0o120777 }]);
    const { issues, messages } = await unpack("link.zip", zip);
    assert.deepEqual(issues, ["error UNSAFE_ZIP_ENTRY@-:-=students.csv"]);
    assert.match(messages[0]!, /is a symbolic link/);
  });

  it("rejects a zip bomb (compression ratio over the limit)", async () => {
    const zip = await zipBytes([{ name: "students.csv", content: Buffer.alloc(4 * 1024 * 1024, 0x61) }]);
    const { sources, issues, messages } = await unpack("bomb.zip", zip);
    assert.deepEqual(sources, []);
    assert.deepEqual(issues, ["error ZIP_BOMB@-:-=students.csv"]);
    assert.match(messages[0]!, /entry "students\.csv" expands \d+ times its compressed size \(the limit is 200\)/);
  });

  it("rejects entries over the size limits", async () => {
    const zip = await zipBytes([{ name: "students.csv", content: STUDENTS.repeat(50) }, { name: "teachers.csv", content: STUDENTS.repeat(50) }]);
    const perEntry = await unpack("big.zip", zip, { maxEntryBytes: 1000 });
    assert.deepEqual(perEntry.issues, ["error ZIP_TOO_LARGE@-:-=students.csv", "error ZIP_TOO_LARGE@-:-=teachers.csv"]);
    assert.match(perEntry.messages[0]!, /entry students\.csv would be 2\.0 KiB uncompressed, over the limit of 1000 bytes/);
    const total = await unpack("big2.zip", zip, { maxTotalBytes: 3000 });
    assert.deepEqual(total.issues, ["error ZIP_TOO_LARGE@-:-=-"]);
    assert.deepEqual(total.sources, []);
  });

  it("rejects a zip with too many entries", async () => {
    const zip = await zipBytes(Array.from({ length: 5 }, (_, i) => ({ name: `f${i}.csv`, content: "x" })));
    const { issues, messages } = await unpack("many.zip", zip, { maxEntries: 4 });
    assert.deepEqual(issues, ["error TOO_MANY_ZIP_ENTRIES@-:-=-"]);
    assert.match(messages[0]!, /holds more than 4 entries/);
  });

  it("recognises an Excel workbook saved as students.csv", async () => {
    const zip = await zipBytes([{ name: "[Content_Types].xml", content: "<Types/>" }, { name: "xl/workbook.xml", content: "<workbook/>" }]);
    const { issues, messages } = await unpack("students.csv", zip);
    assert.deepEqual(issues, ["error SPREADSHEET_FILE@-:-=-"]);
    assert.match(messages[0]!, /students\.csv is an Excel workbook/);
  });

  it("ignores a zip inside the zip with a warning", async () => {
    const inner = await zipBytes([{ name: "students.csv", content: STUDENTS }]);
    const { sources, issues } = await unpack("outer.zip", await zipBytes([{ name: "old.zip", content: inner }, { name: "cc.csv", content: "a" }]));
    assert.deepEqual(issues, ["warning NESTED_ARCHIVE@-:-=-"]);
    assert.deepEqual(sources.map((s) => s.name), ["outer.zip/cc.csv"]);
  });

  it("reports a damaged zip", async () => {
    const zip = await zipBytes([{ name: "students.csv", content: STUDENTS }]);
    const { issues } = await unpack("broken.zip", zip.subarray(0, zip.length - 10));
    assert.deepEqual(issues, ["error BAD_ZIP@-:-=-"]);
  });
});
