import type { ServerAddress } from "../settings/server-settings.ts";
import type { HostKey } from "../sftp/host-keys.ts";
import type { CreatedDistrict } from "./district-service.ts";

export interface HostKeyView {
  algorithm: string;
  sha256: string;
  md5: string;
}

export interface ConnectionDetails {
  host: string;
  port: number;
  /** Whether host and port are what the server published at its start, or this process's configuration. */
  source: ServerAddress["source"];
  hostKeys: HostKeyView[];
}

/** What a district's SFTP client needs to connect, besides its credentials. */
export function connectionDetails(address: Pick<ServerAddress, "sftpHost" | "sftpPort" | "source">, hostKeys: readonly HostKey[]): ConnectionDetails {
  return {
    host: address.sftpHost,
    port: address.sftpPort,
    source: address.source,
    hostKeys: hostKeys.map((k) => ({ algorithm: k.algorithm, sha256: k.sha256, md5: k.md5 })),
  };
}

/** Where a credentials link's page is: under the URL users reach the server at. */
export function credentialsLinkUrl(publicUrl: string, token: string): string {
  return `${publicUrl.replace(/\/$/, "")}/handoff/${token}`;
}

/**
 * The contract of `district create --json`, `rotate-password --json` and `POST /api/v1/districts`:
 * the password appears only here, once, beside the one-time link that hands it to the district.
 */
export function credentialsView(created: CreatedDistrict, connection: ConnectionDetails, publicUrl: string) {
  return {
    slug: created.district.slug,
    name: created.district.name,
    sftp: { host: connection.host, port: connection.port, username: created.district.sftpUsername, password: created.password, source: connection.source },
    hostKeys: connection.hostKeys,
    credentialsLink: credentialsLinkUrl(publicUrl, created.credentialsLink.token),
    credentialsLinkExpiresAt: created.credentialsLink.expiresAt,
  };
}
