/**
 * A district's partition of a roster table partitioned per district (PostgreSQL, migration 0016):
 * `<table>_d<district id>`, as the migration names those it makes and the sync engine those it
 * attaches.
 */
export function districtPartitionName(table: string, districtId: number): string {
  return `${table}_d${Math.trunc(districtId)}`;
}
