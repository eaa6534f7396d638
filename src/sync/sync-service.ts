import type { Kysely } from "kysely";
import type { Database, SyncStatus } from "../db/schema.ts";
import type { DistrictService } from "../districts/district-service.ts";

export interface SyncView {
  id: number;
  status: SyncStatus;
  createdAt: string;
  files: { name: string; size: number; sha256: string }[];
  counts: Record<string, { created: number; updated: number; deleted: number; unchanged: number }>;
  issues: unknown[];
}

/** Reads syncs as operators and scripts see them. */
export class SyncService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly districts: DistrictService,
  ) {}

  /** The district's syncs, newest first. */
  async list(slug: string, limit = 100): Promise<SyncView[]> {
    const district = await this.districts.requireRow(slug);
    const syncs = await this.db.selectFrom("syncs").selectAll().where("district_id", "=", district.id).orderBy("id", "desc").limit(limit).execute();
    if (syncs.length === 0) return [];
    const files = await this.db
      .selectFrom("sync_files")
      .select(["sync_id", "name", "size", "sha256"])
      .where(
        "sync_id",
        "in",
        syncs.map((s) => s.id),
      )
      .orderBy("id")
      .execute();
    return syncs.map((s) => ({
      id: s.id,
      status: s.status,
      createdAt: s.created_at,
      files: files.filter((f) => f.sync_id === s.id).map((f) => ({ name: f.name, size: Number(f.size), sha256: f.sha256 })),
      counts: JSON.parse(s.counts) as SyncView["counts"],
      issues: [],
    }));
  }
}
