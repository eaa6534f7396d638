import type { Stats } from "node:fs";
import type { Attributes } from "ssh2";

export function toAttributes(stats: Stats): Attributes {
  return {
    mode: stats.mode,
    uid: 0,
    gid: 0,
    size: stats.size,
    atime: Math.floor(stats.atimeMs / 1000),
    mtime: Math.floor(stats.mtimeMs / 1000),
  };
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The `ls -l` style line SFTP v3 clients print for a directory entry. */
export function longName(name: string, stats: Stats): string {
  const type = stats.isDirectory() ? "d" : "-";
  const bits = stats.mode & 0o777;
  let perms = "";
  for (let shift = 6; shift >= 0; shift -= 3) {
    const triple = (bits >> shift) & 7;
    perms += (triple & 4 ? "r" : "-") + (triple & 2 ? "w" : "-") + (triple & 1 ? "x" : "-");
  }
  const m = stats.mtime;
  const date = `${MONTHS[m.getUTCMonth()]} ${String(m.getUTCDate()).padStart(2)} ${String(m.getUTCHours()).padStart(2, "0")}:${String(m.getUTCMinutes()).padStart(2, "0")}`;
  return `${type}${perms}    1 district district ${String(stats.size).padStart(12)} ${date} ${name}`;
}
