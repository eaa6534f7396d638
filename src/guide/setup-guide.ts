import type { HostKeyView } from "../districts/connection-details.ts";
import type { DateFormatSetting } from "../intake/date-format.ts";
import { powerSchoolFiles } from "../spec/roster-spec.ts";
import type { PowerSchoolFile } from "../spec/roster-spec.ts";

/**
 * A district's PowerSchool setup guide as data: prose in typed inline parts, so that every
 * renderer (HTML, Markdown) escapes district values its own way and none can inject markup.
 * Built from the roster spec and the district's own values; never from its password.
 */
export type Inline = string | { readonly code: string } | { readonly strong: string };
export type Text = readonly Inline[];

export type Block =
  | { readonly kind: "paragraph"; readonly text: Text }
  | { readonly kind: "steps"; readonly items: readonly Text[] }
  | { readonly kind: "list"; readonly items: readonly Text[] }
  | { readonly kind: "note"; readonly text: Text }
  /** `fingerprints`: cells hold host-key fingerprints, which must never wrap mid-string. */
  | { readonly kind: "table"; readonly head: readonly string[]; readonly rows: readonly (readonly Text[])[]; readonly fingerprints?: boolean };

export interface GuideSection {
  readonly id: string;
  readonly title: string;
  readonly blocks: readonly Block[];
  readonly subsections: readonly GuideSection[];
}

export interface SetupGuide {
  readonly title: string;
  readonly districtName: string;
  readonly districtSlug: string;
  readonly generatedAt: string;
  readonly sections: readonly GuideSection[];
}

/** What the guide is made of: the district's values, never its password. */
export interface SetupGuideInput {
  readonly district: { readonly slug: string; readonly name: string; readonly sftpUsername: string; readonly dateFormat: DateFormatSetting };
  readonly sftp: { readonly host: string; readonly port: number };
  readonly hostKeys: readonly HostKeyView[];
  /** A night's delivery closes after this many seconds without a new upload (ROSTERDOCK_QUIET_SECONDS). */
  readonly quietSeconds: number;
  readonly generatedAt: string;
}

/** The time every export is scheduled at. Not on the hour: AutoSend then waits for PowerSchool's hourly process. */
export const NIGHTLY_TIME = "3:10 AM";

export const GUIDE_FORMATS = ["html", "pdf", "md"] as const;
export type GuideFormat = (typeof GUIDE_FORMATS)[number];

export const RCM_PATH = "System > System Settings > Plugin Management Configuration > Remote Connection Manager";

const c = (code: string) => ({ code });
const b = (strong: string) => ({ strong });
const section = (id: string, title: string, blocks: Block[], subsections: GuideSection[] = []): GuideSection => ({ id, title, blocks, subsections });

export function buildSetupGuide(input: SetupGuideInput): SetupGuide {
  const files = powerSchoolFiles();
  return {
    title: `PowerSchool setup for ${input.district.name}`,
    districtName: input.district.name,
    districtSlug: input.district.slug,
    generatedAt: input.generatedAt,
    sections: [
      aboutSection(input, files),
      connectionSection(input),
      templatesSection(input, files),
      scheduleSection(input, files),
      testExportSection(input, files),
      troubleshootingSection(input),
    ],
  };
}

/** Spec prose marks code with backticks (as docs/file-format.md does): here it becomes code parts. */
export function codeSpans(text: string): Text {
  return text.split("`").flatMap((part, index): Inline[] => (part === "" ? [] : index % 2 === 1 ? [c(part)] : [part]));
}

/** `300` → "5 minutes", `90` → "90 seconds". */
export function describeSeconds(seconds: number): string {
  if (seconds >= 60 && seconds % 60 === 0) return seconds === 60 ? "1 minute" : `${seconds / 60} minutes`;
  return seconds === 1 ? "1 second" : `${seconds} seconds`;
}

function aboutSection(input: SetupGuideInput, files: readonly PowerSchoolFile[]): GuideSection {
  return section("about", "1. What Rosterdock is", [
    {
      kind: "paragraph",
      text: [
        "Rosterdock is the service your vendor uses to receive ",
        b(input.district.name),
        "'s roster. Every night PowerSchool sends a few files over SFTP; Rosterdock checks them and keeps the roster (schools, students, staff, classes and enrollments) that your vendor's apps read. This guide was made for your district only: the host, port, username and host-key fingerprints below are yours.",
      ],
    },
    { kind: "paragraph", text: ["What your district sends, one file per PowerSchool table:"] },
    {
      kind: "table",
      head: ["file", "PowerSchool table", "what it holds"],
      rows: files.map((file) => [[c(file.export.fileNames.dem)], [file.export.table], [describeFile(file)]]),
    },
    {
      kind: "paragraph",
      text: [
        "What happens to it: the files of one night are read together, checked row by row and applied in one step, so the roster never shows half a night. A night that looks wrong (a file cut short, a column missing, far more deletions than usual) is held or refused and yesterday's roster stays as it was; your vendor then tells you what to fix. A file that does not come one night changes nothing.",
      ],
    },
  ]);
}

function describeFile(file: PowerSchoolFile): string {
  const what: Record<string, string> = {
    schools: "every school",
    students: "every student, inactive ones included",
    teachers: "every staff member, once per school",
    sections: "every section (class) with its teacher, course and term",
    cc: "every student's schedule: one row per student and section, drops included",
    courses: "the course catalogue, to name classes",
    terms: "every term of every school",
  };
  return what[file.stem] ?? file.export.table;
}

function connectionSection(input: SetupGuideInput): GuideSection {
  const { sftp, district } = input;
  return section("connection", "2. Remote Connection Manager", [
    {
      kind: "steps",
      items: [
        ["In PowerSchool, go to ", b(RCM_PATH), " and choose ", b("Create Connection"), "."],
        ["Fill in the connection as the table below says, then save it."],
        [
          "Choose ",
          b("Test Connection"),
          ". PowerSchool shows the server's host-key fingerprint and asks you to accept it. Compare it with the fingerprints in this guide, character by character: only when it is one of them, choose ",
          b("Yes, Accept Host Key"),
          ".",
        ],
      ],
    },
    {
      kind: "table",
      head: ["field", "value"],
      rows: [
        [["Name"], ["Rosterdock"]],
        [["Protocol"], [c("SFTP")]],
        [["Allow unsecure ciphers"], ["off"]],
        [["Host"], [c(sftp.host)]],
        [["Port"], [c(String(sftp.port))]],
        [["Authentication Type"], ["Password"]],
        [["Username"], [c(district.sftpUsername)]],
        [["Password and Confirm Password"], ["the password shown by the one-time link your vendor sent you (it is not in this guide)"]],
        [["Allow Download / Allow Upload"], ["both on (AutoSend lists only connections that allow download)"]],
      ],
    },
    {
      kind: "note",
      text: [
        "The one-time link shows the password once; open it when you are ready to type it in. If it was already used or has expired, ask your vendor for a new link: a new link also sets a new password.",
      ],
    },
    { kind: "paragraph", text: ["The server's host keys. PowerSchool shows one of them, as SHA256 or as MD5:"] },
    {
      kind: "table",
      head: ["key type", "SHA256 fingerprint", "MD5 fingerprint"],
      rows: input.hostKeys.map((key) => [[key.algorithm], [c(key.sha256)], [c(key.md5)]]),
      fingerprints: true,
    },
    {
      kind: "note",
      text: [
        "These keys never change. If PowerSchool ever says the host key has changed, do not accept the new one: call your vendor first (see Troubleshooting).",
      ],
    },
  ]);
}

interface ToolSettings {
  tool: "dem" | "autoSend";
  title: string;
  where: Text;
  settings: ReadonlyArray<readonly [string, Text]>;
}

function templatesSection(input: SetupGuideInput, files: readonly PowerSchoolFile[]): GuideSection {
  const dateFormat: Record<DateFormatSetting, string> = {
    auto: "Dates are read as PowerSchool writes them (MM/DD/YYYY); a date column whose values can only be day first is read day first.",
    mdy: "Dates are read month first (MM/DD/YYYY), as set for your district.",
    dmy: "Dates are read day first (DD/MM/YYYY), as set for your district.",
  };
  const dem: ToolSettings = {
    tool: "dem",
    title: "3a. Data Export Manager templates",
    where: ["Create one Data Export Manager template per file, exporting from the table named, with exactly these fields in this order, and these options:"],
    settings: [
      ["Export File Name", ["the file name given for each template (no date needed; one with a date after ", c("_"), ", such as ", c("students_20261128.csv"), ", is read too)"]],
      ["Line Delimiter", [c("CR-LF")]],
      ["Field Delimiter", [c("Comma")]],
      ["Character Set", [c("UTF-8")]],
      ["Include Column Headers", ["on: the header row is required"]],
      ["Surround field values in quotes", ["on or off (on is safer for names holding commas)"]],
      ["Column labels", ["leave PowerSchool's own labels (", c("Students.First_Name"), "); labels without the table name are read too"]],
    ],
  };
  const autoSend: ToolSettings = {
    tool: "autoSend",
    title: "3b. AutoSend records",
    where: [
      "Or, with AutoSend (",
      b("System > AutoSend Setup"),
      ", under Data Management): one AutoSend record per file, with the Data to Send named, exactly these fields in this order, sent to the Rosterdock connection (",
      b("Send Output to: Managed Connection"),
      "). AutoSend has no Schools or Terms data: send those two files with the Data Export Manager templates of 3a.",
    ],
    settings: [
      ["File name", ["the file name given for each record"]],
      ["Line delimiter", [c("LF"), " (CR-LF works too)"]],
      ["Field delimiter", [c("Tab"), " (a delimiter at the end of each line is fine)"]],
      ["Character set", ["UTF-8 or Windows-1252: both are read"]],
      ["Column headers", ["on: the first line must hold the field names"]],
      ["Column labels", ["leave AutoSend's own labels (", c("First_Name"), ", ", c("[05]TeacherNumber"), ")"]],
    ],
  };
  return section(
    "templates",
    "3. Export templates, one per file",
    [
      {
        kind: "paragraph",
        text: [
          "Each file comes from one export. Use either Data Export Manager (3a) or AutoSend (3b) for each file; both are shown in full. Fields marked ",
          b("if listed"),
          " are optional: leave them out if your PowerSchool does not offer them.",
        ],
      },
      { kind: "note", text: [dateFormat[input.district.dateFormat]] },
    ],
    [dem, autoSend].map((tool) =>
      section(
        tool.tool === "dem" ? "dem" : "autosend",
        tool.title,
        [
          { kind: "paragraph", text: tool.where },
          { kind: "table", head: ["option", "value"], rows: tool.settings.map(([option, value]) => [[option], value]) },
        ],
        files.map((file) => templateSection(tool, file)),
      ),
    ),
  );
}

function templateSection(tool: ToolSettings, file: PowerSchoolFile): GuideSection {
  const ps = file.export;
  const viaAutoSend = tool.tool === "autoSend" && ps.autoSendData !== null;
  const fileName = viaAutoSend ? (ps.fileNames.autoSend ?? ps.fileNames.dem) : ps.fileNames.dem;
  const fields = ps.fields.flatMap((field) => ("dem" in field ? [field] : []));
  const source: Text = viaAutoSend
    ? ["AutoSend record, Data to Send ", b(ps.autoSendData ?? ""), ", file ", c(fileName)]
    : tool.tool === "autoSend"
      ? ["Data Export Manager template (AutoSend has no ", ps.table, " data), table ", b(ps.table), ", file ", c(fileName)]
      : ["Data Export Manager template, table ", b(ps.table), ", file ", c(fileName)];
  return section(`${tool.tool === "dem" ? "dem" : "autosend"}-${file.stem}`, `${fileName}: ${ps.table}`, [
    { kind: "paragraph", text: source },
    {
      kind: "table",
      head: ["#", viaAutoSend ? "AutoSend field (column label)" : "field (column label)", "Rosterdock reads it as", "note"],
      rows: fields.map((field, index) => [
        [String(index + 1)],
        [c(viaAutoSend ? (field.autoSend ?? field.dem) : field.dem)],
        [c(field.column)],
        [field.confidence === "unknown" ? "if listed" : ""],
      ]),
    },
    { kind: "note", text: codeSpans(ps.note) },
  ]);
}

function scheduleSection(input: SetupGuideInput, files: readonly PowerSchoolFile[]): GuideSection {
  const quiet = describeSeconds(input.quietSeconds);
  return section("schedule", "4. The nightly schedule", [
    {
      kind: "paragraph",
      text: [
        "Schedule every export of 3a or 3b at the same time, every night: for example ",
        b(NIGHTLY_TIME),
        " (an AutoSend record set to minute 00 waits for PowerSchool's hourly process, so choose a few minutes past the hour). With AutoSend, set When to Execute to that time and Days to Execute to ",
        c("MTWHFSU"),
        ".",
      ],
    },
    {
      kind: "paragraph",
      text: [
        "Why one window: Rosterdock reads a night's files together. Your district's quiet period is ",
        b(quiet),
        ": once that long has passed without a new file, the night is closed and applied. A file that arrives later (a template scheduled an hour after the others) starts another night on its own, and its rows are checked against the roster as it stands instead of tonight's other files: enrollments in sections that have not arrived yet, for example, are left out.",
      ],
    },
    {
      kind: "list",
      items: [
        [`All ${files.length} files should arrive within a few minutes of each other; the order does not matter.`],
        [
          "If your PowerSchool cannot schedule Data Export Manager templates, schedule the AutoSend records of 3b and send ",
          c("schools.csv"),
          " and ",
          c("terms.csv"),
          " by hand when a school or term changes (each new school year): a night without them changes nothing.",
        ],
        ["Avoid times when PowerSchool is being changed in bulk (scheduling, year-end rollover): a night caught half-way through such work looks wrong and is held."],
      ],
    },
  ]);
}

function testExportSection(input: SetupGuideInput, files: readonly PowerSchoolFile[]): GuideSection {
  const quiet = describeSeconds(input.quietSeconds);
  return section("test-export", "5. A test export", [
    {
      kind: "steps",
      items: [
        [
          "Run every Data Export Manager template once by hand, one after the other, starting with ",
          c(files[0]?.export.fileNames.dem ?? "schools.csv"),
          ": rows pointing at a school that has not arrived are left out. For AutoSend records, set When to Execute a few minutes ahead, all to the same time.",
        ],
        ["Wait ", b(quiet), " after the last file: Rosterdock then reads the night."],
        [
          "Your vendor sees the result (",
          c(`rosterdock syncs ${input.district.slug}`),
          "): applied, held (waiting for a person to approve it) or failed, with every problem by file, row and column. They will tell you what to change; after a change, export again.",
        ],
      ],
    },
    {
      kind: "note",
      text: ["Each test sends real data: there is no test mode. Nothing is lost by sending the same night twice."],
    },
  ]);
}

function troubleshootingSection(input: SetupGuideInput): GuideSection {
  const rows: Array<[string, string, Text]> = [
    [
      "Host key changed",
      "PowerSchool reached a server whose key is not the one you accepted: the server was replaced, or something sits between PowerSchool and it.",
      ["Do not accept the new key. Compare it with the fingerprints in section 2 and call your vendor before going on."],
    ],
    [
      "Authentication failed",
      "The username or password is wrong, the password was changed, or this address was blocked for a while after repeated failed logins.",
      ["Check the username ", c(input.district.sftpUsername), ". Enter again the password the one-time link showed you; if nobody kept it, ask your vendor for a new link (it comes with a new password). Do not retry again and again: repeated failures block PowerSchool's address for a time."],
    ],
    [
      "Wrong delimiter",
      "A file uses a delimiter other than the one its header was written with, or a value holds the delimiter without quotes: its rows do not have the right number of values.",
      ["Set the Field Delimiter as in section 3 (Comma for Data Export Manager, Tab for AutoSend) and turn on quotes around values in Data Export Manager."],
    ],
    [
      "Missing column",
      "A required field is not in the template, or its column label was renamed: the file is refused and nothing of that night is applied.",
      ["Add the field named in the message to the template, in the order of section 3, and keep PowerSchool's label."],
    ],
    [
      "Dropped enrollments",
      "Schedule rows with a negative SectionID are students who dropped a section: PowerSchool keeps them, Rosterdock counts them and removes those students from the class. This is expected, not an error.",
      ["Nothing to do; keep them in the CC export. If a student still shows in a class they left, check the drop in PowerSchool and export again."],
    ],
  ];
  return section("troubleshooting", "6. Troubleshooting", [
    { kind: "table", head: ["problem", "what it means", "what to do"], rows: rows.map(([problem, meaning, action]) => [[b(problem)], [meaning], action]) },
    { kind: "paragraph", text: ["For anything else, send your vendor the date and time of the export and what PowerSchool showed."] },
  ]);
}
