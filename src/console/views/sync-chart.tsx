import type { SyncStatus } from "../../db/schema.ts";
import { STATUS_WORDS } from "./parts.tsx";

export interface ChartSync {
  id: number;
  status: SyncStatus;
  createdAt: string;
  created: number;
  updated: number;
  deleted: number;
}

/** Colours with at least 3:1 contrast against the white background (WCAG 1.4.11). */
const STATUS_COLOURS: Record<SyncStatus, string> = {
  applied: "#1a7f37",
  held: "#9a6700",
  failed: "#cf222e",
  discarded: "#6e7781",
  rolled_back: "#8250df",
  waiting: "#0969da",
  processing: "#0969da",
};
const PART_COLOURS = { created: "#2da44e", updated: "#0969da", deleted: "#cf222e" } as const;

/**
 * The last syncs (oldest left) as stacked bars of rows created, updated and deleted, on a
 * square-root scale so a first load does not flatten every later night; a strip under each bar
 * shows its status by colour. The figure's caption and the table after it say the same in words.
 */
export function SyncChart(props: { syncs: ChartSync[] }): JSX.Element {
  const syncs = [...props.syncs].reverse();
  if (syncs.length === 0) return <p>No syncs yet.</p>;
  const width = 640;
  const height = 180;
  const plot = height - 30;
  const step = width / Math.max(syncs.length, 10);
  const bar = Math.max(4, step * 0.7);
  const max = Math.max(1, ...syncs.map((s) => s.created + s.updated + s.deleted));
  const scale = (n: number) => (Math.sqrt(n) / Math.sqrt(max)) * (plot - 10);
  const description = syncs
    .map((s) => `Sync ${s.id} (${STATUS_WORDS[s.status]}): ${s.created} created, ${s.updated} updated, ${s.deleted} deleted`)
    .join("; ");
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} width="100%" role="img" aria-labelledby="chart-title chart-desc">
        <title id="chart-title">Rows changed by the last {String(syncs.length)} syncs, oldest first</title>
        <desc id="chart-desc" safe>
          {description}
        </desc>
        <line x1="0" y1={String(plot)} x2={String(width)} y2={String(plot)} stroke="#57606a" />
        {syncs.map((s, i) => {
          const x = i * step + (step - bar) / 2;
          let y = plot;
          const parts = (["deleted", "updated", "created"] as const).map((part) => {
            const h = s[part] > 0 ? Math.max(1, scale(s[part])) : 0;
            y -= h;
            return <rect x={x.toFixed(1)} y={y.toFixed(1)} width={bar.toFixed(1)} height={h.toFixed(1)} fill={PART_COLOURS[part]} />;
          });
          return (
            <g>
              {parts}
              <rect x={x.toFixed(1)} y={String(plot + 4)} width={bar.toFixed(1)} height="10" fill={STATUS_COLOURS[s.status]} />
            </g>
          );
        })}
      </svg>
      <figcaption>
        Bars: rows <span class="key key-created">created</span>, <span class="key key-updated">updated</span> and <span class="key key-deleted">deleted</span> (square-root
        scale). Strip under each bar: status, <span class="key key-applied">applied</span>, <span class="key key-held">held</span>,{" "}
        <span class="key key-failed">failed</span>, <span class="key key-discarded">discarded</span>, <span class="key key-rolled_back">rolled back</span>.
      </figcaption>
    </figure>
  );
}
