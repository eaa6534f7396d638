import type { Kysely } from "kysely";
import type { Database, SyncStatus } from "../db/schema.ts";
import type { Clock } from "../clock.ts";
import type { DistrictView } from "../districts/district-service.ts";

/** A district's state at a glance, most urgent first in this order. */
export const HEALTH_MARKS = ["never", "failed", "held", "silent", "delivered"] as const;
export type HealthMark = (typeof HEALTH_MARKS)[number];

export const HEALTH_TEXT: Record<HealthMark, string> = {
  delivered: "delivered tonight",
  held: "held",
  failed: "failed",
  silent: "silent for more than a day",
  never: "never delivered",
};

/** A delivery older than this leaves its district silent. */
const SILENT_AFTER_MS = 24 * 60 * 60 * 1000;

export interface RosterCounts {
  schools: number;
  students: number;
  staff: number;
  classes: number;
  enrollments: number;
}

export interface DistrictOverview {
  district: DistrictView;
  lastDeliveryAt: string | null;
  lastSync: { id: number; status: SyncStatus; at: string } | null;
  counts: RosterCounts;
  health: HealthMark;
}

export const OVERVIEW_SORTS = ["name", "slug", "delivery", "sync", "health"] as const;
export type OverviewSort = (typeof OVERVIEW_SORTS)[number];

/**
 * The health mark: a district that never delivered, one whose last sync failed or is held (it
 * needs a person), one silent for more than a day, or one that delivered within the day.
 */
export function healthOf(lastDeliveryAt: string | null, lastSyncStatus: SyncStatus | null, now: Date): HealthMark {
  if (lastDeliveryAt === null && lastSyncStatus === null) return "never";
  if (lastSyncStatus === "failed") return "failed";
  if (lastSyncStatus === "held") return "held";
  if (lastDeliveryAt === null || now.getTime() - Date.parse(lastDeliveryAt) > SILENT_AFTER_MS) return "silent";
  return "delivered";
}

/** Every district with its last delivery, last sync, roster counts and health mark, read in a few grouped queries. */
export async function districtOverviews(db: Kysely<Database>, clock: Clock, districts: DistrictView[]): Promise<DistrictOverview[]> {
  const deliveries = await db.selectFrom("deliveries").select(["district_id", (eb) => eb.fn.max("last_upload_at").as("at")]).groupBy("district_id").execute();
  const latestSyncIds = db.selectFrom("syncs").select((eb) => eb.fn.max("id").as("id")).groupBy("district_id");
  const syncs = await db.selectFrom("syncs").select(["id", "district_id", "status", "created_at"]).where("id", "in", latestSyncIds).execute();
  const count = async (table: "roster_schools" | "roster_classes" | "roster_enrollments") =>
    new Map((await db.selectFrom(table).select(["district_id", (eb) => eb.fn.countAll<number>().as("n")]).groupBy("district_id").execute()).map((r) => [r.district_id, Number(r.n)]));
  const [schools, classes, enrollments] = [await count("roster_schools"), await count("roster_classes"), await count("roster_enrollments")];
  const users = await db.selectFrom("roster_users").select(["district_id", "scope", (eb) => eb.fn.countAll<number>().as("n")]).groupBy(["district_id", "scope"]).execute();
  const delivered = new Map(deliveries.map((d) => [d.district_id, d.at as string | null]));
  const lastSync = new Map(syncs.map((s) => [s.district_id, s]));
  const now = clock.now();
  return districts.map((district) => {
    const sync = lastSync.get(district.id);
    const lastDeliveryAt = delivered.get(district.id) ?? null;
    const userCount = (scope: "student" | "staff") => Number(users.find((u) => u.district_id === district.id && u.scope === scope)?.n ?? 0);
    return {
      district,
      lastDeliveryAt,
      lastSync: sync ? { id: sync.id, status: sync.status, at: sync.created_at } : null,
      counts: {
        schools: schools.get(district.id) ?? 0,
        students: userCount("student"),
        staff: userCount("staff"),
        classes: classes.get(district.id) ?? 0,
        enrollments: enrollments.get(district.id) ?? 0,
      },
      health: healthOf(lastDeliveryAt ?? (sync && sync.status !== "waiting" ? sync.created_at : null), sync?.status ?? null, now),
    };
  });
}

/** Sorted as asked (ties by name); `health` puts the most urgent first. */
export function sortOverviews(rows: DistrictOverview[], sort: OverviewSort, descending: boolean): DistrictOverview[] {
  const key = (r: DistrictOverview): string | number => {
    switch (sort) {
      case "name":
        return r.district.name.toLowerCase();
      case "slug":
        return r.district.slug;
      case "delivery":
        return r.lastDeliveryAt ?? "";
      case "sync":
        return r.lastSync?.at ?? "";
      case "health":
        return HEALTH_MARKS.indexOf(r.health);
    }
  };
  const sorted = [...rows].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    const order = x < y ? -1 : x > y ? 1 : 0;
    return order !== 0 ? order : a.district.name.localeCompare(b.district.name);
  });
  return descending ? sorted.reverse() : sorted;
}
