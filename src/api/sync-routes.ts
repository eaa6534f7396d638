import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Rosterdock } from "../service.ts";
import { RosterdockError } from "../errors.ts";
import { issuesCsv } from "../sync/issues-csv.ts";
import { apiErrors } from "./api-schemas.ts";
import { SyncSchema } from "./admin-routes.ts";
import type { SyncProgressReport } from "../jobs/sync-progress-board.ts";

/** What must run off the server's thread: undoing a big sync takes seconds to minutes. */
export interface SyncRunner {
  rollback(syncId: number, actor: string): Promise<number>;
  /** How a sync under way is going (stage, rows), when the runner runs the syncs and keeps track. */
  progress?(syncId: number): SyncProgressReport | undefined;
}

const IssueSchema = z.object({
  file: z.string(),
  row: z.number().int().nullable(),
  column: z.string().nullable(),
  value: z.string().nullable(),
  code: z.string(),
  severity: z.enum(["error", "warning", "info"]),
  message: z.string(),
});
const SyncDetailSchema = SyncSchema.extend({
  district: z.string(),
  source: z.enum(["sftp", "cli"]),
  updatedAt: z.string(),
  summary: z.record(z.string(), z.unknown()),
  issueTotals: z.object({ stored: z.number(), error: z.number(), warning: z.number(), info: z.number() }),
  issues: z.array(IssueSchema),
});
const IdParams = z.object({ id: z.coerce.number().int().describe("The sync's id") });

/** Show a sync, read its issues (JSON or CSV), approve, discard or roll it back. Scope `admin`. */
export function registerSyncRoutes(app: FastifyInstance, rd: Rosterdock, runner: SyncRunner): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const actor = (name?: string) => `api:${name ?? "unknown"}`;

  api.get("/api/v1/syncs/:id", { schema: { tags: ["syncs"], summary: "A sync with its summary, counts and first issues", params: IdParams, response: { 200: SyncDetailSchema, ...apiErrors } } }, async (request) =>
    rd.syncs.show(request.params.id),
  );

  api.get(
    "/api/v1/syncs/:id/issues",
    {
      schema: {
        tags: ["syncs"],
        summary: "Every stored issue of a sync, errors first; `format=csv` gives a file a district admin can open in a spreadsheet",
        params: IdParams,
        querystring: z.object({ format: z.enum(["json", "csv"]).default("json") }),
        response: { 200: z.union([z.array(IssueSchema), z.string()]), ...apiErrors },
      },
    },
    async (request, reply) => {
      await rd.syncs.show(request.params.id);
      const issues = await rd.syncs.issues(request.params.id);
      if (request.query.format === "json") return issues;
      return reply
        .type("text/csv; charset=utf-8")
        .header("content-disposition", `attachment; filename="sync-${request.params.id}-issues.csv"`)
        .serializer((payload: string) => payload)
        .send(issuesCsv(issues));
    },
  );

  api.post(
    "/api/v1/syncs/:id/approve",
    {
      schema: {
        tags: ["syncs"],
        summary: "Apply a held sync: queued for the worker, which plans it again against the live roster",
        params: IdParams,
        response: { 202: SyncDetailSchema, ...apiErrors },
      },
    },
    async (request, reply) => {
      const sync = await rd.syncs.show(request.params.id);
      if (sync.status !== "held") throw new RosterdockError("ERR_SYNC_STATE", `Sync ${sync.id} is ${sync.status}; only a held sync can be approved.`);
      const by = actor(request.principal?.name);
      await rd.jobs.enqueue("process-sync", { syncId: sync.id, approvedBy: by });
      await rd.audit.record({ actor: by, action: "sync.approval_queued", details: { syncId: sync.id } });
      return reply.code(202).send(sync);
    },
  );

  api.post("/api/v1/syncs/:id/discard", { schema: { tags: ["syncs"], summary: "Drop a held sync; the roster never saw it", params: IdParams, response: { 200: SyncDetailSchema, ...apiErrors } } }, async (request) =>
    rd.syncs.discard(request.params.id, actor(request.principal?.name)),
  );

  api.post(
    "/api/v1/syncs/:id/rollback",
    {
      schema: {
        tags: ["syncs"],
        summary: "Restore the roster as it was before this applied sync (the district's latest)",
        params: IdParams,
        response: { 200: z.object({ sync: SyncDetailSchema, changes: z.number().int() }), ...apiErrors },
      },
    },
    async (request) => {
      const changes = await runner.rollback(request.params.id, actor(request.principal?.name));
      return { sync: await rd.syncs.show(request.params.id), changes };
    },
  );
}
