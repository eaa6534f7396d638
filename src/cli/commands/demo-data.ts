import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { DEFAULT_DEMO_SIZE, DEMO_STYLES, generateDemoData } from "../../demo/generate-demo-data.ts";
import type { DemoDataOptions, DemoStyle } from "../../demo/generate-demo-data.ts";
import { RosterdockError } from "../../errors.ts";
import { emit, type OutputOptions } from "../output.ts";

function count(name: string) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw)) throw new RosterdockError("ERR_INVALID_ARGUMENT", `--${name} takes a whole number, got "${raw}".`);
    return Number(raw);
  };
}

export function registerDemoDataCommand(program: Command, _ctx: CliContext): void {
  program
    .command("demo-data <outdir>")
    .description("Write a realistic night of PowerSchool roster files for a synthetic district")
    .option("--students <n>", `students (default ${DEFAULT_DEMO_SIZE.students})`, count("students"))
    .option("--teachers <n>", `teachers (default ${DEFAULT_DEMO_SIZE.teachers})`, count("teachers"))
    .option("--schools <n>", `schools (default ${DEFAULT_DEMO_SIZE.schools})`, count("schools"))
    .option("--courses <n>", `courses (default ${DEFAULT_DEMO_SIZE.courses})`, count("courses"))
    .option("--sections-per-teacher <n>", `sections per teacher (default ${DEFAULT_DEMO_SIZE.sectionsPerTeacher})`, count("sections-per-teacher"))
    .option("--enrollments-per-student <n>", `classes per student (default ${DEFAULT_DEMO_SIZE.enrollmentsPerStudent})`, count("enrollments-per-student"))
    .option("--style <style>", `${DEMO_STYLES.join(", ")} (repeatable; default all)`, (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--night <n>", "1 = first night; each later night changes ~1%", count("night"))
    .option("--seed <n>", "another seed, another district", count("seed"))
    .option("--school-year <n>", "1 = 2026-2027; 2 = the next year, with new sections, terms and CC records", count("school-year"))
    .option("--first-night-date <date>", "date of night 1 (YYYY-MM-DD), used in DEM file names")
    .option("--json", "print JSON only")
    .action(async (outdir: string, options: OutputOptions & Omit<DemoDataOptions, "styles"> & { style: string[] }) => {
      const unknown = options.style.filter((s) => !(DEMO_STYLES as readonly string[]).includes(s));
      if (unknown.length > 0) throw new RosterdockError("ERR_INVALID_ARGUMENT", `Unknown style ${unknown.join(", ")}; use ${DEMO_STYLES.join(", ")}.`);
      const { style, json, ...rest } = options;
      const demo: DemoDataOptions = { ...rest, ...(style.length > 0 ? { styles: style as DemoStyle[] } : {}) };
      const result = await generateDemoData(outdir, demo);
      emit({ json: json ?? false }, result, () =>
        [
          ...Object.entries(result.files).flatMap(([s, files]) => (files.length ? [`${s}:`, ...files.map((f) => `  ${f}`)] : [])),
          `Expected: ${Object.entries(result.expected)
            .map(([k, v]) => `${k} ${v}`)
            .join(", ")}`,
        ].join("\n"),
      );
    });
}
