import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { RosterdockError } from "../errors.ts";

export interface PathLimitSettings {
  maxFoldersPerDistrict: number;
  maxFolderDepth: number;
  maxNameBytes: number;
  maxPathBytes: number;
}

/** Characters of a refused name shown back: enough to recognise it, short enough for one line. */
const SHOWN_CHARS = 60;

/**
 * Refuses a path with a name or a whole too long, before the file system sees it: the file system's
 * own refusal (ENAMETOOLONG) reaches the client as a generic failure and the log as an error.
 */
export function assertPathFits(path: string, limits: PathLimitSettings): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > limits.maxPathBytes) {
    throw new RosterdockError("ERR_NAME_TOO_LONG", `Name too long: the path ${shorten(path)} is ${bytes} bytes; a path may be at most ${limits.maxPathBytes} bytes.`, { bytes });
  }
  for (const name of path.split("/")) {
    const nameBytes = Buffer.byteLength(name);
    if (nameBytes > limits.maxNameBytes) {
      throw new RosterdockError(
        "ERR_NAME_TOO_LONG",
        `Name too long: ${shorten(name)} is ${nameBytes} bytes; a file or folder name may be at most ${limits.maxNameBytes} bytes.`,
        { bytes: nameBytes },
      );
    }
  }
}

/** How many folders deep a path is: `/` 0, `/a` 1, `/a/b` 2. */
export function folderDepth(path: string): number {
  return path.split("/").filter(Boolean).length;
}

export function assertDepthFits(path: string, depth: number, limits: PathLimitSettings): void {
  if (depth <= limits.maxFolderDepth) return;
  throw new RosterdockError(
    "ERR_FOLDER_TOO_DEEP",
    limits.maxFolderDepth === 0
      ? `Folders are not allowed here: send files to /.`
      : `Too deep: ${shorten(path)} would be ${depth} folders deep; folders may be at most ${limits.maxFolderDepth} deep.`,
    { depth },
  );
}

/** Refuses a new folder when the district's space already holds the most allowed. */
export async function assertRoomForFolder(root: string, limits: PathLimitSettings): Promise<void> {
  const max = limits.maxFoldersPerDistrict;
  if ((await countFolders(root, max)) < max) return;
  throw new RosterdockError(
    "ERR_TOO_MANY_FOLDERS",
    max === 0
      ? "Folders are not allowed here: send files to /."
      : `Quota exceeded: the district's space already holds ${max} folders, the most allowed; remove folders it no longer needs.`,
  );
}

/**
 * Folders under `root`, counted up to `stopAt` (so at most that many are read): bounded even in a
 * space filled with folders before the limit existed.
 */
export async function countFolders(root: string, stopAt: number): Promise<number> {
  let count = 0;
  const pending = [root];
  while (pending.length > 0 && count < stopAt) {
    const dir = pending.pop()!;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      count++;
      if (count >= stopAt) break;
      pending.push(join(dir, entry.name));
    }
  }
  return count;
}

/** The deepest folder under `dir`, relative to it (0: no folders), looked for among at most `maxFolders`. */
export async function subtreeDepth(dir: string, maxFolders: number): Promise<number> {
  let deepest = 0;
  let seen = 0;
  const pending: Array<[string, number]> = [[dir, 0]];
  while (pending.length > 0 && seen <= maxFolders) {
    const [current, depth] = pending.pop()!;
    deepest = Math.max(deepest, depth);
    const entries = await readdir(current, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      seen++;
      pending.push([join(current, entry.name), depth + 1]);
    }
  }
  return deepest;
}

/** A client's path as it may be recorded, logged and shown: a very long one is cut, saying how long it was. */
export function shortPath(path: string, maxChars = 200): string {
  return path.length <= maxChars ? path : `${path.slice(0, maxChars)}… (${path.length} characters)`;
}

function shorten(name: string): string {
  return name.length <= SHOWN_CHARS ? `"${name}"` : `"${name.slice(0, SHOWN_CHARS)}…" (${name.length} characters)`;
}
