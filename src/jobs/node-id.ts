import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

/**
 * This process's name among the nodes sharing a database: host name, pid and a random part (a
 * restarted process, or a container that reuses pid 1, is a new node). Jobs it runs and failed
 * logins it counts carry it, and the server logs it at start.
 */
export function newNodeId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
}
