import type { ClientHello, ClientOffer } from "./client-hello.ts";
import type { SshAlgorithms } from "./ssh-algorithms.ts";

export type HandshakeFailureReason =
  | "closed_before_identification"
  | "bad_identification"
  | "no_matching_kex"
  | "no_matching_host_key"
  | "no_matching_cipher"
  | "no_matching_mac"
  | "no_matching_compression"
  | "key_exchange_failed"
  | "client_disconnected"
  | "closed_during_handshake"
  | "protocol_error"
  | "proxy_untrusted"
  | "proxy_header_missing"
  | "proxy_header_malformed";

export interface HandshakeFailure {
  reason: HandshakeFailureReason;
  /** What ssh2 or the client said, when either said anything. */
  detail?: string;
  /** For a `no_matching_*` reason: the client's list and ours, side by side. */
  clientOffers?: readonly string[];
  serverOffers?: readonly string[];
}

/** One sentence per reason for the log line, saying what to look at. */
export const HANDSHAKE_FAILURE_MESSAGES: Record<HandshakeFailureReason, string> = {
  closed_before_identification: "SSH handshake failed: the connection closed before the client identified itself (a port check, a firewall or a client giving up)",
  bad_identification: "SSH handshake failed: the client did not open with an SSH-2.0 identification line (not an SSH client, or SSH protocol 1)",
  no_matching_kex: "SSH handshake failed: the client offers no key exchange method this server supports",
  no_matching_host_key: "SSH handshake failed: the client accepts no host key type this server has",
  no_matching_cipher: "SSH handshake failed: the client offers no cipher this server supports",
  no_matching_mac: "SSH handshake failed: the client offers no MAC this server supports",
  no_matching_compression: "SSH handshake failed: the client offers no compression this server supports",
  key_exchange_failed: "SSH handshake failed: the key exchange went wrong",
  client_disconnected: "SSH handshake failed: the client disconnected, saying why",
  closed_during_handshake: "SSH handshake failed: the connection ended before the keys were agreed (most often the client rejected the host key)",
  protocol_error: "SSH handshake failed: the client broke the SSH protocol",
  proxy_untrusted: "connection refused: PROXY protocol is on and this address is not a trusted proxy (ROSTERDOCK_SFTP_TRUSTED_PROXIES); clients must come through the load balancer",
  proxy_header_missing: "connection refused: a trusted proxy's connection did not begin with a PROXY protocol header (is `send-proxy-v2` on the load balancer's server lines?)",
  proxy_header_malformed: "connection refused: the PROXY protocol header is malformed",
};

const MISMATCHES: readonly { pattern: RegExp; reason: HandshakeFailureReason; list: keyof ClientOffer & keyof SshAlgorithms }[] = [
  { pattern: /no matching key exchange/i, reason: "no_matching_kex", list: "kex" },
  { pattern: /no matching host key/i, reason: "no_matching_host_key", list: "hostKey" },
  { pattern: /no matching .* cipher/i, reason: "no_matching_cipher", list: "cipher" },
  { pattern: /no matching .* MAC/i, reason: "no_matching_mac", list: "mac" },
  { pattern: /no matching .* compression/i, reason: "no_matching_compression", list: "compression" },
];

/** Why a handshake ssh2 reported as an error failed; `identified` once ssh2 accepted the client's identification. */
export function handshakeErrorFailure(error: Error & { level?: string; code?: unknown }, hello: ClientHello, identified: boolean, offered: SshAlgorithms): HandshakeFailure {
  const detail = error.message;
  // A client that drops the connection (ECONNRESET) is a hang-up like any other.
  if (error.level === "socket") return { ...handshakeCloseFailure(hello, identified), detail };
  for (const { pattern, reason, list } of MISMATCHES) {
    if (pattern.test(detail)) return { reason, detail, clientOffers: hello.offer?.[list] ?? [], serverOffers: offered[list] };
  }
  // ssh2 turns the client's DISCONNECT message into an error carrying its numeric reason code.
  if (typeof error.code === "number") return { reason: "client_disconnected", detail };
  if (error.level === "handshake") return { reason: "key_exchange_failed", detail };
  return { reason: "protocol_error", detail };
}

/** Why a connection that closed without a completed handshake (and without an error) failed. */
export function handshakeCloseFailure(hello: ClientHello, identified: boolean): HandshakeFailure {
  if (identified) return { reason: "closed_during_handshake" };
  if (hello.ident === undefined) return { reason: "closed_before_identification" };
  return { reason: "bad_identification" };
}
