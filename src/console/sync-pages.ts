import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Rosterdock } from "../service.ts";
import { RosterdockError } from "../errors.ts";
import { operatorActor } from "../operators/operator-service.ts";
import { issuesCsv } from "../sync/issues-csv.ts";
import { sendPage, viewer, type ConsoleContext } from "./console-app.ts";
import { ACTION_TEXT, ConfirmPage, ISSUES_PER_PAGE, SyncPage, type SyncAction } from "./views/sync-page.tsx";
import { STATUS_WORDS, formatSize } from "./views/parts.tsx";
import type { SyncDetail } from "../sync/sync-service.ts";
import type { SyncRunner } from "../api/sync-routes.ts";
import type { SyncStage } from "../jobs/sync-progress-board.ts";

type IdParams = { Params: { id: string } };
type ActionParams = { Params: { id: string; action: string } };
type IssueQuery = { Querystring: { severity?: string; file?: string; page?: string; done?: string } };

const ACTIONS = ["approve", "discard", "rollback"] as const;

function syncId(raw: string): number {
  const id = Number(raw);
  if (!Number.isSafeInteger(id) || id <= 0) throw new RosterdockError("ERR_SYNC_NOT_FOUND", `No sync has id ${raw}.`);
  return id;
}

function action(raw: string): SyncAction {
  if (!(ACTIONS as readonly string[]).includes(raw)) throw new RosterdockError("ERR_ROUTE_NOT_FOUND", "No such page.");
  return raw as SyncAction;
}

/** Whether an approval of the sync is queued for the worker and not yet done. */
async function approvalQueued(rd: Rosterdock, id: number): Promise<boolean> {
  const jobs = await rd.database.db.selectFrom("jobs").select("payload").where("kind", "=", "process-sync").where("status", "in", ["queued", "running"]).execute();
  return jobs.some((j) => {
    const payload = JSON.parse(j.payload) as { syncId?: number; approvedBy?: string };
    return payload.syncId === id && payload.approvedBy !== undefined;
  });
}

async function latestAppliedId(rd: Rosterdock, districtId: number): Promise<number | undefined> {
  const row = await rd.database.db
    .selectFrom("syncs")
    .select((eb) => eb.fn.max("id").as("id"))
    .where("district_id", "=", districtId)
    .where("status", "=", "applied")
    .executeTakeFirst();
  return row?.id ?? undefined;
}

const STAGE_TEXT: Record<SyncStage, string> = {
  reading: "Reading the files",
  planning: "Planning the changes",
  applying: "Applying the changes",
  holding: "Holding it for review",
};

export interface LiveProgress {
  stage: SyncStage | null;
  rows: number | null;
  elapsedSeconds: number | null;
  /** The sentence the page shows. */
  text: string;
}

/** Where a sync under way is: from the sync thread's reports when it runs, else from its status. */
export function liveProgress(rd: Rosterdock, runner: SyncRunner, sync: SyncDetail, approvalQueued: boolean): LiveProgress {
  const report = runner.progress?.(sync.id);
  const since = report ? report.startedAt : sync.status === "processing" || sync.status === "waiting" || approvalQueued ? Date.parse(sync.updatedAt) : null;
  const elapsedSeconds = since === null ? null : Math.max(0, Math.round((rd.clock.now().getTime() - since) / 1000));
  const elapsed = elapsedSeconds === null ? "" : `, for ${elapsedSeconds} s`;
  if (!report) {
    const text = approvalQueued ? `Approval queued: waiting for the worker${elapsed}.` : `The sync is ${STATUS_WORDS[sync.status]}${elapsed}.`;
    return { stage: null, rows: null, elapsedSeconds, text };
  }
  const rows = `${report.rows.toLocaleString("en-US")} rows read`;
  const where =
    report.stage === "reading" && report.file !== null
      ? `${STAGE_TEXT.reading}: ${report.file} (file ${(report.fileIndex ?? 0) + 1} of ${report.files ?? "?"}), ${rows}${report.size > 0 ? ` (${Math.floor((report.bytes / report.size) * 100)}% of ${formatSize(report.size)})` : ""}`
      : `${STAGE_TEXT[report.stage]}: ${rows}`;
  return { stage: report.stage, rows: report.rows, elapsedSeconds, text: `${where}${elapsed}.` };
}

/** `/syncs/{id}`: the sync page, its issues as CSV, its progress as JSON, and approve, discard and roll back. */
export function registerSyncPages(web: FastifyInstance, { rd, runner }: ConsoleContext): void {
  const hide = { schema: { hide: true } };

  const syncPage = async (request: FastifyRequest<IdParams & IssueQuery>, reply: FastifyReply) => {
    const id = syncId(request.params.id);
    const sync = await rd.syncs.show(id);
    const district = await rd.districts.requireRow(sync.district);
    const severity = (["error", "warning", "info"] as const).find((s) => s === request.query.severity);
    const file = request.query.file ? request.query.file : undefined;
    const page = Math.max(1, Math.floor(Number(request.query.page ?? "1")) || 1);
    const { issues, matching } = await rd.syncs.issuesPage(id, { ...(severity ? { severity } : {}), ...(file !== undefined ? { file } : {}) }, { offset: (page - 1) * ISSUES_PER_PAGE, limit: ISSUES_PER_PAGE });
    const queued = await approvalQueued(rd, id);
    const done = (ACTIONS as readonly string[]).includes(request.query.done ?? "") ? ACTION_TEXT[request.query.done as SyncAction].done : undefined;
    return sendPage(
      reply,
      SyncPage({
        viewer: viewer(request, reply),
        sync,
        districtName: district.name,
        latestApplied: (await latestAppliedId(rd, district.id)) === id,
        approvalQueued: queued,
        progress: liveProgress(rd, runner, sync, queued).text,
        issues: { issues, matching, files: await rd.syncs.issueFiles(id), severity, file, page },
        ...(done ? { notice: done } : {}),
      }),
    );
  };

  web.get<IdParams & IssueQuery>("/syncs/:id", hide, syncPage);

  web.get<IdParams>("/syncs/:id/issues.csv", hide, async (request, reply) => {
    const id = syncId(request.params.id);
    await rd.syncs.show(id);
    return reply
      .type("text/csv; charset=utf-8")
      .header("content-disposition", `attachment; filename="sync-${id}-issues.csv"`)
      .header("cache-control", "no-store")
      .send(issuesCsv(await rd.syncs.issues(id)));
  });

  // What the page's script polls while a sync waits, runs or is being approved. Reads only: the
  // sync's row (SQLite readers never wait for a writer) and the sync thread's reports in memory.
  web.get<IdParams>("/syncs/:id/progress.json", hide, async (request, reply) => {
    const id = syncId(request.params.id);
    const sync = await rd.syncs.show(id);
    const queued = await approvalQueued(rd, id);
    return reply.header("cache-control", "no-store").send({
      id,
      status: sync.status,
      statusText: STATUS_WORDS[sync.status],
      approvalQueued: queued,
      ...liveProgress(rd, runner, sync, queued),
    });
  });

  web.get<ActionParams>("/syncs/:id/:action", hide, async (request, reply) => {
    const id = syncId(request.params.id);
    await rd.syncs.show(id);
    return sendPage(reply, ConfirmPage({ viewer: viewer(request, reply), syncId: id, action: action(request.params.action) }));
  });

  web.post<ActionParams>("/syncs/:id/:action", { ...hide, preValidation: web.csrfProtection }, async (request, reply) => {
    const id = syncId(request.params.id);
    const what = action(request.params.action);
    const actor = operatorActor(request.operator!.email);
    const sync = await rd.syncs.show(id);
    if (what === "approve") {
      if (sync.status !== "held") throw new RosterdockError("ERR_SYNC_STATE", `Sync ${id} is ${STATUS_WORDS[sync.status]}; only a held sync can be approved.`);
      // The worker applies it off this thread, as for `POST /api/v1/syncs/{id}/approve`.
      if (!(await approvalQueued(rd, id))) {
        await rd.jobs.enqueue("process-sync", { syncId: id, approvedBy: actor });
        await rd.audit.record({ actor, action: "sync.approval_queued", details: { syncId: id } });
      }
    } else if (what === "discard") {
      await rd.syncs.discard(id, actor);
    } else {
      await runner.rollback(id, actor);
    }
    return reply.redirect(`/syncs/${id}?done=${what}`, 303);
  });
}
