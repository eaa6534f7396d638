import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { formatBytes } from "../intake/issue.ts";

/** While a district's archive is over its quota, it is measured again at most this often (an operator may have pruned it). */
export const ARCHIVE_REMEASURE_MS = 30_000;

export interface ArchiveCheck {
  usedBytes: number;
  quotaBytes: number;
  full: boolean;
  /** The archive has just been found full (true once per crossing, for the log). */
  becameFull: boolean;
  /** The archive was full and is not any more (it was pruned). */
  freed: boolean;
}

interface Usage {
  bytes: number;
  measuredAt: number;
  full: boolean;
  /** Files archived while the folder was being measured: a listing taken before them does not count them. */
  addedDuringMeasure: Map<string, number> | undefined;
  measuring: Promise<void> | undefined;
}

/**
 * How many bytes each district's archive holds, measured once (when first needed) and then kept as
 * a running total that each archived upload adds to: an upload never costs a walk of the archive.
 */
export class ArchiveUsage {
  private readonly usage = new Map<number, Usage>();

  constructor(
    private readonly archiveDir: (districtId: number) => string,
    private readonly now: () => number = Date.now,
  ) {}

  /** The archive's size against `quotaBytes`; a full archive is measured again now and then, so pruning it takes effect. */
  async check(districtId: number, quotaBytes: number): Promise<ArchiveCheck> {
    let usage = this.usage.get(districtId);
    if (!usage) {
      usage = { bytes: 0, measuredAt: 0, full: false, addedDuringMeasure: undefined, measuring: undefined };
      this.usage.set(districtId, usage);
    }
    const stale = usage.measuredAt === 0 || (usage.bytes >= quotaBytes && this.now() - usage.measuredAt >= ARCHIVE_REMEASURE_MS);
    if (stale) await (usage.measuring ??= this.measure(districtId, usage).finally(() => (usage.measuring = undefined)));
    const full = usage.bytes >= quotaBytes;
    const result = { usedBytes: usage.bytes, quotaBytes, full, becameFull: full && !usage.full, freed: !full && usage.full };
    usage.full = full;
    return result;
  }

  /** A file was just archived (`name` inside the district's archive folder). */
  added(districtId: number, name: string, bytes: number): void {
    const usage = this.usage.get(districtId);
    if (!usage) return; // not measured yet: the measure will find it
    if (usage.addedDuringMeasure) usage.addedDuringMeasure.set(name, bytes);
    else usage.bytes += bytes;
  }

  private async measure(districtId: number, usage: Usage): Promise<void> {
    const added = new Map<string, number>();
    usage.addedDuringMeasure = added;
    try {
      const dir = this.archiveDir(districtId);
      const { bytes, names } = await measureFolder(dir);
      let total = bytes;
      for (const [name, size] of added) if (!names.has(name)) total += size;
      usage.bytes = total;
      usage.measuredAt = this.now();
    } finally {
      usage.addedDuringMeasure = undefined;
    }
  }
}

/** Bytes of the regular files in a district's archive folder (flat: `LocalStorage.archive` writes no subfolders). */
export async function measureFolder(dir: string): Promise<{ bytes: number; names: Set<string> }> {
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? [] : Promise.reject(error)));
  let bytes = 0;
  for (const name of names) {
    const stats = await stat(join(dir, name)).catch(() => undefined);
    if (stats?.isFile()) bytes += stats.size;
  }
  return { bytes, names: new Set(names) };
}

/** What a district is told when its archive has no room: it cannot fix this itself, so it says who can. */
export function archiveFullMessage(usedBytes: number, quotaBytes: number, uploadBytes?: number): string {
  const holds = `the district's archive holds ${formatBytes(usedBytes)} of its ${formatBytes(quotaBytes)} quota`;
  return uploadBytes === undefined
    ? `Quota exceeded: ${holds}; an operator must prune old nights before more files can be received.`
    : `Quota exceeded: ${holds}, and this file (${formatBytes(uploadBytes)} so far) would take it past; an operator must prune old nights before more files can be received.`;
}
