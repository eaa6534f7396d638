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

/** `refused`: the server turned the upload down (a limit, a missing folder, a full disk); `reason` says why. */
export type UploadStatus = "accepted" | "partial" | "refused";

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

export type SyncStatus = "waiting" | "processing" | "applied" | "held" | "failed" | "discarded" | "rolled_back";

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
  /** The node running it (see jobs/node-id.ts), and until when its lease holds unless renewed (migration 0013). */
  locked_by: string | null;
  lease_until: string | null;
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
  /** Set for OAuth access tokens, which expire. */
  expires_at: string | null;
  client_id: number | null;
  /** JSON array of district slugs the token may read; null = all. */
  districts: string | null;
}

export interface AuditEventTable {
  id: Generated<number>;
  at: string;
  actor: string;
  action: string;
  district_id: number | null;
  details: string;
}

// ---- the live roster (migration 0002); every row scoped by district_id, last_sync_id = dateLastModified ----

export interface RosterSchoolTable {
  district_id: number;
  school_id: string;
  school_name: string;
  school_number: string | null;
  state_id: string | null;
  low_grade: string | null;
  high_grade: string | null;
  last_sync_id: number;
}

export interface RosterCourseTable {
  district_id: number;
  course_id: string;
  course_name: string;
  school_id: string | null;
  last_sync_id: number;
}

export interface RosterTermTable {
  district_id: number;
  term_id: string;
  /** '' for a district-wide term. */
  school_id: string;
  term_name: string;
  start_date: string;
  end_date: string;
  last_sync_id: number;
}

export interface RosterUserTable {
  district_id: number;
  /** The API's sourcedId: `student-<id>`, `staff-<teacher_number>` or `staff-id-<id>`. */
  user_key: string;
  scope: "student" | "staff";
  district_user_id: string;
  role: string;
  first_name: string;
  middle_name: string | null;
  last_name: string;
  email: string | null;
  username: string | null;
  school_id: string | null;
  /** JSON array of every school the person is listed at, sorted. */
  school_ids: string;
  grade: string | null;
  student_number: string | null;
  teacher_number: string | null;
  state_id: string | null;
  birth_date: string | null;
  /** `male`, `female`, `other` or `unspecified` (migration 0010). */
  gender: string | null;
  /** collationKey(last_name) and collationKey(first_name): what names sort by (migration 0010). */
  family_name_key: string;
  given_name_key: string;
  last_sync_id: number;
}

export interface RosterStaffIdTable {
  district_id: number;
  district_user_id: string;
  user_key: string;
  school_id: string | null;
  last_sync_id: number;
}

export interface RosterClassTable {
  district_id: number;
  class_id: string;
  class_name: string;
  school_id: string;
  course_id: string;
  teacher_id: string;
  teacher_key: string;
  term_id: string | null;
  section_number: string | null;
  period: string | null;
  room: string | null;
  last_sync_id: number;
}

export interface RosterEnrollmentTable {
  district_id: number;
  class_id: string;
  student_id: string;
  start_date: string | null;
  end_date: string | null;
  last_sync_id: number;
}

export interface RosterChangeTable {
  id: Generated<number>;
  sync_id: number;
  district_id: number;
  entity: string;
  /** JSON array of the natural key's values. */
  key: string;
  /** `load`: a first load of an entity, one marker standing for every row it created (docs/roster-model.md). */
  op: "create" | "update" | "delete" | "load";
  before_json: string | null;
  after_json: string | null;
}

export interface RosterChangesetTable {
  id: Generated<number>;
  sync_id: number;
  district_id: number;
  kind: "apply" | "rollback";
  first_change_id: number;
  last_change_id: number;
  created_at: string;
  rolled_back_at: string | null;
}

export interface SyncIssueTable {
  id: Generated<number>;
  sync_id: number;
  file: string;
  row: number | null;
  column: string | null;
  value: string | null;
  code: string;
  severity: "error" | "warning" | "info";
  message: string;
}

/** A ban of a client address (migration 0007); `account` '' bans the address for every account. */
export interface LoginBanTable {
  id: Generated<number>;
  address: string;
  account: string;
  reason: string;
  failures: number;
  strikes: number;
  banned_at: string;
  banned_until: string;
}

/** A closed upload stored in the database (PostgreSQL, migration 0013): `stored_path` `pg:<id>`. */
export interface UploadBlobTable {
  id: Generated<number>;
  district_id: number;
  size: number;
  sha256: string;
  chunks: number;
  created_at: string;
}

/** One ~1 MiB piece of a stored upload, `seq` from 0. */
export interface UploadChunkTable {
  blob_id: number;
  seq: number;
  data: Buffer;
}

/** A failed login on some node, counted by all of them within the window (migration 0013); `account` '' for a protocol error. */
export interface LoginFailureTable {
  id: Generated<number>;
  address: string;
  account: string;
  node: string;
  failed_at: string;
}

export interface Database extends ClientAndWebhookTables {
  upload_blobs: UploadBlobTable;
  upload_chunks: UploadChunkTable;
  login_failures: LoginFailureTable;
  login_bans: LoginBanTable;
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
  roster_schools: RosterSchoolTable;
  roster_courses: RosterCourseTable;
  roster_terms: RosterTermTable;
  roster_users: RosterUserTable;
  roster_staff_ids: RosterStaffIdTable;
  roster_classes: RosterClassTable;
  roster_enrollments: RosterEnrollmentTable;
  roster_changes: RosterChangeTable;
  roster_changesets: RosterChangesetTable;
  sync_issues: SyncIssueTable;
  server_settings: ServerSettingTable;
  intake_journal_progress: IntakeJournalProgressTable;
  credential_handoffs: CredentialHandoffTable;
  operators: OperatorTable;
  console_sessions: ConsoleSessionTable;
}

/** Key-value facts the running server publishes about itself (migration 0006); values are JSON. */
export interface ServerSettingTable {
  key: string;
  value: string;
  updated_at: string;
}

/** How far an intake journal has been moved into the database (migration 0008). */
export interface IntakeJournalProgressTable {
  journal_id: string;
  moved_through: number;
}

/** Why a hand-off link stopped working before it was used or expired. */
export type HandoffEndReason = "revoked" | "replaced";

/**
 * A one-time credentials link (migration 0011). `lookup` is derived from the link's token, which
 * is never stored; `sealed_password` (AES-256-GCM under another key derived from the token) is
 * null once the link is revealed, ended or expired.
 */
export interface CredentialHandoffTable {
  id: Generated<number>;
  district_id: number;
  lookup: string;
  sealed_password: string | null;
  created_at: string;
  created_by: string;
  expires_at: string;
  revealed_at: string | null;
  /** The client address that revealed it. */
  revealed_from: string | null;
  ended_at: string | null;
  ended_reason: HandoffEndReason | null;
}

export type District = Selectable<DistrictTable>;
export type NewDistrict = Insertable<DistrictTable>;
export type DistrictUpdate = Updateable<DistrictTable>;
export type Upload = Selectable<UploadTable>;
export type Delivery = Selectable<DeliveryTable>;
export type Sync = Selectable<SyncTable>;
export type Job = Selectable<JobTable>;

// ---- OAuth clients and webhooks (migration 0003) ----

export interface OAuthClientTable {
  id: Generated<number>;
  client_id: string;
  secret_hash: string;
  name: string;
  scopes: string;
  districts: string | null;
  created_at: string;
  revoked_at: string | null;
}

export interface WebhookEndpointTable {
  id: Generated<number>;
  url: string;
  district_id: number | null;
  events: string;
  /** The HMAC signing key: kept in clear because signing needs it; shown to the operator once. */
  secret: string;
  created_at: string;
  disabled_at: string | null;
}

export interface WebhookDeliveryTable {
  id: Generated<number>;
  endpoint_id: number;
  event: string;
  payload: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface ClientAndWebhookTables {
  oauth_clients: OAuthClientTable;
  webhook_endpoints: WebhookEndpointTable;
  webhook_deliveries: WebhookDeliveryTable;
}

// ---- operators of the web console and their sessions (migration 0012) ----

/** Someone of the vendor's support staff; `email` is stored lower-cased. */
export interface OperatorTable {
  id: Generated<number>;
  email: string;
  password_hash: string;
  created_at: string;
  disabled_at: string | null;
  last_sign_in_at: string | null;
}

/** A console session (the cookie holds its id, signed); `data` is the session's JSON. */
export interface ConsoleSessionTable {
  id: string;
  operator_id: number | null;
  data: string;
  expires_at: string;
  updated_at: string;
}
