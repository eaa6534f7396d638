import type { Generated, Insertable, Selectable, Updateable } from "kysely";

/** Timestamps are ISO-8601 UTC strings in both dialects; JSON columns are text. */
export interface DistrictTable {
  id: Generated<number>;
  slug: string;
  name: string;
  status: "active" | "disabled";
  allow_ips: string;
  settings: string;
  created_at: string;
  updated_at: string;
}

export interface CredentialTable {
  id: Generated<number>;
  district_id: number;
  kind: "password" | "public_key";
  username: string;
  secret_hash: string | null;
  public_key: string | null;
  created_at: string;
  revoked_at: string | null;
}

export interface HostKeyTable {
  algorithm: string;
  private_key: string;
  created_at: string;
}

export type UploadStatus = "accepted" | "partial";

export interface UploadTable {
  id: Generated<number>;
  district_id: number;
  delivery_id: number | null;
  path: string;
  size: number;
  sha256: string | null;
  status: UploadStatus;
  stored_path: string | null;
  client_ip: string;
  client_version: string;
  started_at: string;
  finished_at: string;
  reason: string | null;
}

export interface DeliveryTable {
  id: Generated<number>;
  district_id: number;
  status: "open" | "closed";
  opened_at: string;
  last_upload_at: string;
  closed_at: string | null;
}

export type SyncStatus = "waiting" | "processing" | "applied" | "held" | "failed" | "discarded";

export interface SyncTable {
  id: Generated<number>;
  district_id: number;
  delivery_id: number | null;
  source: "sftp" | "cli";
  status: SyncStatus;
  created_at: string;
  updated_at: string;
  counts: string;
  summary: string;
}

export interface SyncFileTable {
  id: Generated<number>;
  sync_id: number;
  name: string;
  size: number;
  sha256: string;
  stored_path: string;
}

export interface JobTable {
  id: Generated<number>;
  kind: string;
  payload: string;
  status: "queued" | "running" | "done" | "failed";
  attempts: number;
  run_after: string;
  locked_at: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface ApiTokenTable {
  id: Generated<number>;
  name: string;
  lookup: string;
  secret_hash: string;
  scopes: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface AuditEventTable {
  id: Generated<number>;
  at: string;
  actor: string;
  action: string;
  district_id: number | null;
  details: string;
}

export interface Database {
  districts: DistrictTable;
  credentials: CredentialTable;
  host_keys: HostKeyTable;
  uploads: UploadTable;
  deliveries: DeliveryTable;
  syncs: SyncTable;
  sync_files: SyncFileTable;
  jobs: JobTable;
  api_tokens: ApiTokenTable;
  audit_events: AuditEventTable;
}

export type District = Selectable<DistrictTable>;
export type NewDistrict = Insertable<DistrictTable>;
export type DistrictUpdate = Updateable<DistrictTable>;
export type Upload = Selectable<UploadTable>;
export type Delivery = Selectable<DeliveryTable>;
export type Sync = Selectable<SyncTable>;
export type Job = Selectable<JobTable>;
