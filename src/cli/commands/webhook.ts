import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { emit, table, type OutputOptions } from "../output.ts";

const collect = (v: string, acc: string[]) => [...acc, v];

export function registerWebhookCommands(program: Command, ctx: CliContext): void {
  const webhook = program.command("webhook").description("Signed webhooks for sync.applied, sync.held, sync.failed and district.under_attack");

  webhook
    .command("add <url>")
    .description("Register an endpoint; its signing secret is shown once")
    .option("--district <slug>", "only this district's events (default: every district)")
    .option("--event <event>", "sync.applied, sync.held, sync.failed or district.under_attack (repeatable; default all)", collect, [] as string[])
    .option("--json", "print JSON only")
    .action(async (url: string, options: OutputOptions & { district?: string; event: string[] }) => {
      await ctx.with(async (rd) => {
        const added = await rd.webhooks.addEndpoint({ url, district: options.district, events: options.event }, ctx.actor);
        emit(options, added, () =>
          [`Webhook ${added.endpoint.id} → ${added.endpoint.url} for ${added.endpoint.events.join(", ")}.`, `Signing secret (shown only now): ${added.secret}`].join("\n"),
        );
      });
    });

  webhook
    .command("list")
    .description("Registered endpoints")
    .option("--json", "print JSON only")
    .action(async (options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const endpoints = await rd.webhooks.listEndpoints();
        emit(options, endpoints, () =>
          table([["ID", "URL", "DISTRICT", "EVENTS", "STATE"], ...endpoints.map((e) => [String(e.id), e.url, e.district ?? "all", e.events.join(","), e.disabled ? "removed" : "active"])]),
        );
      });
    });

  webhook
    .command("remove <id>")
    .description("Stop sending to an endpoint")
    .option("--json", "print JSON only")
    .action(async (id: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        await rd.webhooks.removeEndpoint(Number(id), ctx.actor);
        emit(options, { id: Number(id), removed: true }, () => `Webhook ${id} removed.`);
      });
    });

  webhook
    .command("deliveries")
    .description("The delivery log, newest first")
    .option("--endpoint <id>", "only this endpoint's deliveries")
    .option("--limit <n>", "how many", "50")
    .option("--json", "print JSON only")
    .action(async (options: OutputOptions & { endpoint?: string; limit: string }) => {
      await ctx.with(async (rd) => {
        const deliveries = await rd.webhooks.listDeliveries({ endpointId: options.endpoint ? Number(options.endpoint) : undefined, limit: Number(options.limit) || 50 });
        emit(options, deliveries, () =>
          table([
            ["ID", "ENDPOINT", "EVENT", "STATUS", "ATTEMPTS", "LAST"],
            ...deliveries.map((d) => [String(d.id), String(d.endpointId), d.event, d.status, String(d.attempts), d.lastError ?? String(d.lastStatusCode ?? "")]),
          ]),
        );
      });
    });

  webhook
    .command("resend <delivery-id>")
    .description("Send a delivery again (the running server's worker sends it)")
    .option("--json", "print JSON only")
    .action(async (id: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        await rd.webhooks.resend(Number(id), ctx.actor);
        emit(options, { id: Number(id), queued: true }, () => `Delivery ${id} queued again.`);
      });
    });
}
