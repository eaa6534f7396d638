import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";
import type { HoldReason } from "./plan-sync.ts";

/**
 * Why a delivery must not be applied as if complete: each file of its night that the server
 * refused (a limit, a missing folder, a full disk) or that was cut off mid-transfer (the connection
 * ended, the server stopped), and that was not sent again successfully before the delivery closed.
 * A CLI ingest has no delivery, hence nothing refused.
 */
export async function refusedUploadHolds(db: Kysely<Database>, deliveryId: number | null): Promise<HoldReason[]> {
  if (deliveryId === null) return [];
  const uploads = await db
    .selectFrom("uploads")
    .select(["path", "status", "reason"])
    .where("delivery_id", "=", deliveryId)
    .where("status", "in", ["accepted", "refused", "partial"])
    .orderBy("id")
    .execute();
  // The latest try of each name decides: refused or cut off, then sent again whole, is not missing.
  const latest = new Map(uploads.map((u) => [u.path, u]));
  const reasons: HoldReason[] = [];
  for (const upload of latest.values()) {
    if (upload.status === "accepted") continue;
    const file = upload.path.replace(/^\/+/, "");
    const what = upload.status === "refused" ? "refused" : "cut off during its transfer";
    reasons.push({
      code: upload.status === "refused" ? "REFUSED_UPLOAD" : "PARTIAL_UPLOAD",
      entity: null,
      file,
      count: 0,
      live: 0,
      message: `${file} was sent with this delivery but ${what}: ${upload.reason ?? "no reason recorded."} The night is incomplete without it: approve to apply what arrived, or discard and have the district send the night again.`,
    });
  }
  return reasons;
}

/** For a sync that failed anyway: the refused or cut-off files, so the operator sees the night was incomplete too. */
export function refusedUploadsError(holds: readonly HoldReason[]): { error?: string } {
  if (holds.length === 0) return {};
  const refused = holds.filter((h) => h.code === "REFUSED_UPLOAD").map((h) => h.file);
  const cut = holds.filter((h) => h.code === "PARTIAL_UPLOAD").map((h) => h.file);
  const parts = [
    ...(refused.length > 0 ? [`Refused at upload, so missing from this delivery: ${refused.join(", ")}.`] : []),
    ...(cut.length > 0 ? [`Cut off during transfer, so missing from this delivery: ${cut.join(", ")}.`] : []),
  ];
  return { error: `${parts.join(" ")} \`rosterdock uploads\` says why.` };
}
