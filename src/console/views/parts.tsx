import type { SyncStatus } from "../../db/schema.ts";

/** A sync's status in words, as operators say it. */
export const STATUS_WORDS: Record<SyncStatus, string> = {
  waiting: "waiting",
  processing: "processing",
  applied: "applied",
  held: "held",
  failed: "failed",
  discarded: "discarded",
  rolled_back: "rolled back",
};

export function StatusWord(props: { status: SyncStatus }): JSX.Element {
  return (
    <span class={`status status-${props.status}`} safe>
      {STATUS_WORDS[props.status]}
    </span>
  );
}

/** A moment, readable and exact: "2026-12-03 06:14 UTC" with the ISO time in `datetime`. */
export function When(props: { at: string | null }): JSX.Element {
  if (props.at === null) return "never";
  return (
    <time datetime={props.at} safe>
      {`${props.at.slice(0, 10)} ${props.at.slice(11, 16)} UTC`}
    </time>
  );
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
