import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { emit, table, type OutputOptions } from "../output.ts";

/** Exit code of `doctor` when it finds a dangling reference. */
export const DOCTOR_FOUND_PROBLEMS = 1;

export function registerDoctorCommand(program: Command, ctx: CliContext): void {
  program
    .command("doctor <slug>")
    .description("Check a district's live roster: every class, enrollment and role points at a live record (exit 1 if not)")
    .option("--json", "print JSON only")
    .action(async (slug: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const report = await rd.syncs.doctor(slug);
        const ok = report.dangling.length === 0;
        emit(options, { ...report, ok }, () =>
          ok
            ? `${report.district}: every reference of the live roster points at a live record.`
            : [
                `${report.district}: ${report.dangling.reduce((n, d) => n + d.count, 0)} references point at nothing.`,
                table([
                  ["ENTITY", "COLUMN", "POINTS AT", "ROWS", "EXAMPLES"],
                  ...report.dangling.map((d) => [d.entity, d.column, d.target, String(d.count), d.examples.map((e) => `${e.key.join("/")}→${e.value}`).join(", ")]),
                ]),
              ].join("\n"),
        );
        if (!ok) process.exitCode = DOCTOR_FOUND_PROBLEMS;
      });
    });
}
