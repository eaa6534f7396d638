import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { RosterdockError } from "../../errors.ts";
import { issuesCsv } from "../../sync/issues-csv.ts";
import type { SyncDetail } from "../../sync/sync-service.ts";
import { emit, plain, table, type OutputOptions } from "../output.ts";

function syncId(raw: string): number {
  if (!/^\d+$/.test(raw)) throw new RosterdockError("ERR_INVALID_ARGUMENT", `A sync id is a number, got "${raw}".`);
  return Number(raw);
}

export function describeSync(s: SyncDetail): string {
  const lines = [
    `Sync       ${s.id} (${s.district}, ${s.source})`,
    `Status     ${s.status}`,
    `Created    ${s.createdAt}   updated ${s.updatedAt}`,
    `Files      ${s.files.map((f) => plain(f.name)).join(", ") || "-"}`,
  ];
  const entities = Object.entries(s.counts);
  if (entities.length > 0) {
    lines.push(
      "",
      table([
        ["ENTITY", "CREATED", "UPDATED", "DELETED", "UNCHANGED"],
        ...entities.map(([e, c]) => [e, String(c.created), String(c.updated), String(c.deleted), String(c.unchanged)]),
      ]),
    );
  }
  for (const reason of s.summary.holdReasons ?? []) lines.push("", `Held: ${plain(reason.message)}`);
  if (s.summary.error) lines.push("", `Error: ${plain(s.summary.error)}`);
  const t = s.issueTotals;
  lines.push("", `Issues     ${t.error} errors, ${t.warning} warnings, ${t.info} notes (${t.stored} stored; \`rosterdock sync issues ${s.id} --csv\` lists them)`);
  for (const issue of s.issues.slice(0, 20)) lines.push(`  ${issue.severity.padEnd(7)} ${issue.code}: ${plain(issue.message)}`);
  if (s.issues.length > 20) lines.push(`  … and more`);
  return lines.join("\n");
}

export function registerSyncCommands(program: Command, ctx: CliContext): void {
  const sync = program.command("sync").description("Inspect, approve, discard and roll back syncs");

  sync
    .command("show <id>")
    .description("A sync: status, counts, why it was held, its first issues")
    .option("--json", "print JSON only")
    .action(async (id: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const detail = await rd.syncs.show(syncId(id));
        emit(options, detail, () => describeSync(detail));
      });
    });

  sync
    .command("issues <id>")
    .description("Every stored issue of a sync (errors first)")
    .option("--csv", "CSV for a spreadsheet (UTF-8 with BOM)")
    .option("--json", "print JSON only")
    .action(async (id: string, options: OutputOptions & { csv?: boolean }) => {
      await ctx.with(async (rd) => {
        const issues = await rd.syncs.issues(syncId(id));
        if (options.csv) {
          process.stdout.write(issuesCsv(issues));
          return;
        }
        emit(options, issues, () =>
          issues.length === 0 ? `Sync ${id} has no issues.` : issues.map((i) => `${i.severity.padEnd(7)} ${i.code.padEnd(24)} ${i.message}`).join("\n"),
        );
      });
    });

  sync
    .command("approve <id>")
    .description("Apply a held sync, planned again against the roster as it is now")
    .option("--json", "print JSON only")
    .action(async (id: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        await rd.syncs.approve(syncId(id), ctx.actor);
        const detail = await rd.syncs.show(syncId(id));
        emit(options, detail, () => describeSync(detail));
      });
    });

  sync
    .command("discard <id>")
    .description("Drop a held sync; the roster stays as it is")
    .option("--json", "print JSON only")
    .action(async (id: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const detail = await rd.syncs.discard(syncId(id), ctx.actor);
        emit(options, detail, () => `Sync ${id} discarded; the roster was not changed.`);
      });
    });

  sync
    .command("rollback <id>")
    .description("Restore the roster as it was before an applied sync (the district's most recent one)")
    .option("--json", "print JSON only")
    .action(async (id: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const { sync: detail, changeset } = await rd.syncs.rollback(syncId(id), ctx.actor);
        emit(options, { ...detail, rollback: changeset }, () => `Sync ${id} rolled back: ${changeset.changes} changes undone.`);
      });
    });
}
