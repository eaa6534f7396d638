/** The roster tables PostgreSQL keeps as one partition per district (migration 0016). */
export const PARTITIONED_TABLES = ["roster_users", "roster_classes", "roster_enrollments"] as const;

/**
 * A district's partition of a roster table partitioned per district (PostgreSQL, migration 0016):
 * `<table>_d<district id>`, as the migration names those it makes and the sync engine those it
 * attaches.
 */
export function districtPartitionName(table: string, districtId: number): string {
  return `${table}_d${Math.trunc(districtId)}`;
}
