import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";
import type { HoldReason } from "./plan-sync.ts";

/**
 * Why a delivery must not be applied as if complete: each file of its night that the server
 * refused (a limit, a missing folder, a full disk) and that was not sent again successfully
 * before the delivery closed. A CLI ingest has no delivery, hence nothing refused.
 */
export async function refusedUploadHolds(db: Kysely<Database>, deliveryId: number | null): Promise<HoldReason[]> {
  if (deliveryId === null) return [];
  const uploads = await db
    .selectFrom("uploads")
    .select(["path", "status", "reason"])
    .where("delivery_id", "=", deliveryId)
    .where("status", "in", ["accepted", "refused"])
    .orderBy("id")
    .execute();
  // The latest try of each name decides: refused, then sent again whole, is not missing.
  const latest = new Map(uploads.map((u) => [u.path, u]));
  const reasons: HoldReason[] = [];
  for (const upload of latest.values()) {
    if (upload.status !== "refused") continue;
    const file = upload.path.replace(/^\/+/, "");
    reasons.push({
      code: "REFUSED_UPLOAD",
      entity: null,
      file,
      count: 0,
      live: 0,
      message: `${file} was sent with this delivery but refused: ${upload.reason ?? "no reason recorded."} The night is incomplete without it: approve to apply what arrived, or discard and have the district send the night again.`,
    });
  }
  return reasons;
}

/** For a sync that failed anyway: the refused files, so the operator sees the night was incomplete too. */
export function refusedUploadsError(holds: readonly HoldReason[]): { error?: string } {
  if (holds.length === 0) return {};
  return { error: `Refused at upload, so missing from this delivery: ${holds.map((h) => h.file).join(", ")}. \`rosterdock uploads\` says why.` };
}
