import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import type { DistrictView } from "../../districts/district-service.ts";
import type { DateFormatSetting } from "../../intake/date-format.ts";
import type { Rosterdock } from "../../service.ts";
import { emit, table, type OutputOptions } from "../output.ts";
import { connectionDetails, credentialsView, type ConnectionDetails } from "../../districts/connection-details.ts";
import type { LinkStatus } from "../../handoffs/handoff-service.ts";
import { minuteUtc as moment } from "../../handoffs/handoff-page.ts";
import { addressNote } from "./hostkey.ts";
import { formatBytes } from "../../intake/issue.ts";

const DATE_FORMAT_TEXT: Record<DateFormatSetting, string> = {
  auto: "auto (each date column read one way, day first when its values show it, else month first)",
  mdy: "mdy (MM/DD/YYYY)",
  dmy: "dmy (DD/MM/YYYY)",
};

async function connection(rd: Rosterdock): Promise<ConnectionDetails & { note: string; publicUrl: string }> {
  const address = await rd.settings.address(rd.config);
  return { ...connectionDetails(address, await rd.hostKeys()), note: addressNote(address, rd.config), publicUrl: address.publicUrl };
}

function linkText(link: string, expiresAt: string): string {
  return [
    `One-time link for the district's PowerSchool administrator (works once, until ${moment(expiresAt)}):`,
    `  ${link}`,
    "  It shows the host, port, username, password and host-key fingerprints once. Send the link rather than the password;",
    "  `rosterdock district revoke-link` ends it, `district new-link` replaces it (and the password).",
  ].join("\n");
}

function guideText(slug: string): string {
  return `Their setup guide (PowerSchool steps with this district's host, username and fingerprints, no password):\n  rosterdock guide ${slug} --format pdf --out ${slug}-setup.pdf`;
}

const LINK_STATES: Record<LinkStatus["state"], string> = {
  open: "not used yet",
  used: "used",
  expired: "expired unused",
  revoked: "revoked unused",
  replaced: "replaced by a newer link",
};

function linkStatusText(status: LinkStatus): string {
  const when = status.state === "used" ? ` ${moment(status.revealedAt!)}` : status.endedAt ? ` ${moment(status.endedAt)}` : "";
  return `${LINK_STATES[status.state]}${when} (made ${moment(status.createdAt)}, ${status.state === "open" ? "expires" : "expiry"} ${moment(status.expiresAt)})`;
}

function describe(d: DistrictView): string {
  return [
    `District   ${d.name} (${d.slug})`,
    `Status     ${d.status}`,
    `Username   ${d.sftpUsername}`,
    `Allowed    ${d.allowIps.length ? d.allowIps.join(", ") : "any address"}`,
    `Created    ${d.createdAt}`,
  ].join("\n");
}

function credentialsText(c: ConnectionDetails & { note: string }, username: string, password: string): string {
  return [
    "SFTP connection for the district's PowerSchool Remote Connection Manager:",
    `  Host      ${c.host}`,
    `  Port      ${c.port}`,
    `  (${c.note})`,
    `  Username  ${username}`,
    `  Password  ${password}`,
    "  (The password is shown only now. Hand it over securely; rotate it if it leaks.)",
    "Host key fingerprints (what PowerSchool shows at \"Yes, Accept Host Key\"):",
    ...c.hostKeys.map((k) => `  ${k.algorithm.padEnd(20)} ${k.sha256}\n  ${"".padEnd(20)} ${k.md5}`),
  ].join("\n");
}

export function registerDistrictCommands(program: Command, ctx: CliContext): void {
  const district = program.command("district").description("Create and manage districts and their SFTP accounts");

  district
    .command("create <slug>")
    .description("Create a district with its own SFTP username and password (shown once)")
    .requiredOption("--name <name>", "the district's display name")
    .option("--allow-ip <cidr>", "only accept SFTP logins from this address or range (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--json", "print JSON only")
    .action(async (slug: string, options: OutputOptions & { name: string; allowIp: string[] }) => {
      await ctx.with(async (rd) => {
        const created = await rd.districts.create({ slug, name: options.name, allowIps: options.allowIp }, ctx.actor);
        const details = await connection(rd);
        const view = credentialsView(created, details, details.publicUrl);
        emit(options, view, () =>
          [`Created district ${view.name} (${view.slug}).`, "", linkText(view.credentialsLink, view.credentialsLinkExpiresAt), "", guideText(view.slug), "", credentialsText(details, view.sftp.username, view.sftp.password)].join("\n"),
        );
      });
    });

  district
    .command("list")
    .description("List districts")
    .option("--json", "print JSON only")
    .action(async (options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const districts = await rd.districts.list();
        emit(options, districts, () =>
          districts.length === 0
            ? "No districts yet. Create one with: rosterdock district create SLUG --name NAME"
            : table([["SLUG", "NAME", "STATUS", "USERNAME"], ...districts.map((d) => [d.slug, d.name, d.status, d.sftpUsername])]),
        );
      });
    });

  district
    .command("show <slug>")
    .description("Show a district and how it connects")
    .option("--json", "print JSON only")
    .action(async (slug: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const d = await rd.districts.show(slug);
        const details = await connection(rd);
        const open = await rd.deliveries.openDelivery(d.id);
        const underAttack = await rd.defender.underAttack(d.sftpUsername);
        const sftp = { host: details.host, port: details.port, username: d.sftpUsername, source: details.source };
        // Measured here, once (the archive folder, or the uploads stored in PostgreSQL): the running server keeps its own total.
        const used = await rd.storage.archiveBytes(d.id);
        const archive = { usedBytes: used, quotaBytes: rd.config.archiveQuotaBytes, full: used >= rd.config.archiveQuotaBytes };
        const link = (await rd.handoffs.latest(d.id)) ?? null;
        const view = { ...d, sftp, hostKeys: details.hostKeys, credentialsLinkStatus: link, openDelivery: open ? { id: open.id, openedAt: open.opened_at, lastUploadAt: open.last_upload_at } : null, archive, archiveFull: archive.full, underAttack };
        emit(options, view, () =>
          [
            describe(d),
            `SFTP       ${details.host}:${details.port} (${details.note})`,
            `Link       ${link ? linkStatusText(link) : "none"}`,
            open ? `Receiving  a delivery since ${open.opened_at} (last upload ${open.last_upload_at})` : "",
            `Archive    ${formatBytes(used)} of its ${formatBytes(archive.quotaBytes)} quota${archive.full ? " — FULL: its uploads are refused until an operator prunes old nights" : ""}`,
            underAttack
              ? `ATTACKED   its account is banned from ${underAttack.addresses.join(", ")} after ${underAttack.failures} failed logins (since ${underAttack.since}, until ${underAttack.until}); \`rosterdock bans list\``
              : "",
          ]
            .filter(Boolean)
            .join("\n"),
        );
      });
    });

  district
    .command("rotate-password <slug>")
    .description("Replace the district's SFTP password (the old one stops working at once)")
    .option("--json", "print JSON only")
    .action(async (slug: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const rotated = await rd.districts.rotatePassword(slug, ctx.actor);
        const details = await connection(rd);
        const view = credentialsView(rotated, details, details.publicUrl);
        emit(options, view, () =>
          [
            `New password for ${view.slug}; the old one and any older link no longer work. Update the district's Remote Connection Manager entry.`,
            "",
            linkText(view.credentialsLink, view.credentialsLinkExpiresAt),
            "",
            credentialsText(details, view.sftp.username, view.sftp.password),
          ].join("\n"),
        );
      });
    });

  district
    .command("new-link <slug>")
    .description("A new one-time credentials link, with a new SFTP password (the old password and link stop working); the password itself is not printed")
    .option("--json", "print JSON only")
    .action(async (slug: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const rotated = await rd.districts.rotatePassword(slug, ctx.actor, "new-link");
        const details = await connection(rd);
        const { sftp: { password: _password, ...sftp }, ...view } = credentialsView(rotated, details, details.publicUrl);
        emit(options, { ...view, sftp }, () =>
          [
            `New link and password for ${view.slug}; the old password and any older link no longer work.`,
            "",
            linkText(view.credentialsLink, view.credentialsLinkExpiresAt),
          ].join("\n"),
        );
      });
    });

  district
    .command("revoke-link <slug>")
    .description("End the district's one-time credentials link if it has not been used (the password keeps working)")
    .option("--json", "print JSON only")
    .action(async (slug: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const { district: d, revoked } = await rd.districts.revokeCredentialsLink(slug, ctx.actor);
        emit(options, { slug: d.slug, revoked }, () =>
          revoked > 0
            ? `The credentials link of ${d.slug} no longer works. Its password still does: \`rosterdock district new-link ${d.slug}\` makes a new password and link.`
            : `${d.slug} has no credentials link that could still be used (none, or used, expired or already ended).`,
        );
      });
    });

  district
    .command("disable <slug>")
    .description("Refuse the district's SFTP logins from now on (its data stays)")
    .option("--json", "print JSON only")
    .action(async (slug: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const d = await rd.districts.disable(slug, ctx.actor);
        emit(options, d, () => `District ${d.slug} is disabled: its SFTP logins are refused.`);
      });
    });

  const percentOrRows = (v: string) => (v === "default" ? null : Number(v));
  district
    .command("safeguards <slug>")
    .description("Set the district's own hold thresholds (`default` returns one to the server's)")
    .option("--delete-percent <n|default>", "hold when a sync would delete more than this % of an entity's rows…", percentOrRows)
    .option("--delete-min-rows <n|default>", "…and at least this many rows", percentOrRows)
    .option("--change-percent <n|default>", "hold when a sync would update or delete more than this % …", percentOrRows)
    .option("--change-min-rows <n|default>", "…and at least this many rows", percentOrRows)
    .option("--json", "print JSON only")
    .action(async (slug: string, options: OutputOptions & { deletePercent?: number | null; deleteMinRows?: number | null; changePercent?: number | null; changeMinRows?: number | null }) => {
      await ctx.with(async (rd) => {
        const { json: _json, ...changes } = options;
        const d = await rd.districts.setSafeguards(slug, changes, ctx.actor);
        const c = rd.config;
        const effective = {
          deletePercent: d.safeguards.deletePercent ?? c.holdDeletePercent,
          deleteMinRows: d.safeguards.deleteMinRows ?? c.holdDeleteMinRows,
          changePercent: d.safeguards.changePercent ?? c.holdChangePercent,
          changeMinRows: d.safeguards.changeMinRows ?? c.holdChangeMinRows,
        };
        emit(options, { slug: d.slug, safeguards: d.safeguards, effective }, () =>
          `${d.slug} holds a sync that deletes more than ${effective.deletePercent}% (and at least ${effective.deleteMinRows} rows) or changes more than ${effective.changePercent}% (and at least ${effective.changeMinRows} rows) of an entity's live rows.`,
        );
      });
    });

  district
    .command("settings <slug>")
    .description("Show the district's settings, or set how its dates are read")
    .option("--date-format <auto|mdy|dmy>", "auto: each date column as its values show (the default); mdy: MM/DD/YYYY; dmy: DD/MM/YYYY")
    .option("--json", "print JSON only")
    .action(async (slug: string, options: OutputOptions & { dateFormat?: string }) => {
      await ctx.with(async (rd) => {
        const d = options.dateFormat === undefined ? await rd.districts.show(slug) : await rd.districts.setDateFormat(slug, options.dateFormat, ctx.actor);
        const safeguards = Object.entries(d.safeguards).map(([name, value]) => `${name} ${value}`);
        emit(options, { slug: d.slug, dateFormat: d.dateFormat, safeguards: d.safeguards }, () =>
          [
            `Settings of ${d.slug}:`,
            `  Date format  ${DATE_FORMAT_TEXT[d.dateFormat]}`,
            `  Safeguards   ${safeguards.length > 0 ? safeguards.join(", ") : "the server's (ROSTERDOCK_HOLD_*)"}`,
          ].join("\n"),
        );
      });
    });

  district
    .command("add-key <slug> <public-key>")
    .description("Let the district log in with an SSH public key (`ssh-ed25519 AAAA…`) besides its password")
    .option("--json", "print JSON only")
    .action(async (slug: string, publicKey: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        await rd.districts.addPublicKey(slug, publicKey, ctx.actor);
        emit(options, { slug, added: true }, () => `Public key added for ${slug}.`);
      });
    });
}
