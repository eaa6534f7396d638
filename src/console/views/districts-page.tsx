import { HEALTH_MARKS, HEALTH_TEXT, type DistrictOverview, type HealthMark, type OverviewSort } from "../district-overview.ts";
import { Page, html, type Viewer } from "./layout.tsx";
import { StatusWord, When } from "./parts.tsx";

const COLUMNS: { sort: OverviewSort | null; label: string }[] = [
  { sort: "name", label: "Name" },
  { sort: "slug", label: "Slug" },
  { sort: "delivery", label: "Last delivery" },
  { sort: "sync", label: "Last sync" },
  { sort: null, label: "Roster" },
  { sort: "health", label: "Health" },
];

export interface DistrictsQuery {
  sort: OverviewSort;
  descending: boolean;
  health: HealthMark | undefined;
}

function query(q: DistrictsQuery, changes: Partial<DistrictsQuery>): string {
  const next = { ...q, ...changes };
  const params = new URLSearchParams({ sort: next.sort, order: next.descending ? "desc" : "asc" });
  if (next.health) params.set("health", next.health);
  return `/?${params.toString()}`;
}

export function HealthMarkText(props: { health: HealthMark }): JSX.Element {
  return (
    <span class={`health health-${props.health}`} safe>
      {HEALTH_TEXT[props.health]}
    </span>
  );
}

/** `/`: every district at a glance, sortable and filterable by health with plain links and a GET form. */
export function DistrictsPage(props: { viewer: Viewer; rows: DistrictOverview[]; total: number; query: DistrictsQuery }): string {
  const q = props.query;
  return html(
    <Page title="Districts" viewer={props.viewer}>
      <p class="actions">
        <a class="button" href="/districts/new">
          New district
        </a>
      </p>
      <form method="get" action="/" class="inline">
        <input type="hidden" name="sort" value={q.sort} />
        <input type="hidden" name="order" value={q.descending ? "desc" : "asc"} />
        <label for="health">Health</label>
        <select id="health" name="health">
          <option value="" selected={q.health === undefined}>
            any
          </option>
          {HEALTH_MARKS.map((mark) => (
            <option value={mark} selected={q.health === mark}>
              {HEALTH_TEXT[mark]}
            </option>
          ))}
        </select>
        <button type="submit" class="secondary">
          Filter
        </button>
      </form>
      <p role="status">
        {q.health
          ? `${props.rows.length} of ${props.total} ${props.total === 1 ? "district" : "districts"} ${props.rows.length === 1 ? "is" : "are"} ${HEALTH_TEXT[q.health]}.`
          : `${props.total} ${props.total === 1 ? "district" : "districts"}.`}
      </p>
      {props.rows.length === 0 ? (
        props.total === 0 ? (
          <p>No district yet: create the first with "New district".</p>
        ) : (
          <p>No district matches.</p>
        )
      ) : (
        <table>
          <caption class="visually-hidden">Districts; the column headings sort the table</caption>
          <thead>
            <tr>
              {COLUMNS.map((c) => {
                if (c.sort === null) return <th scope="col">{c.label}</th>;
                const active = q.sort === c.sort;
                const sortState = active ? (q.descending ? "descending" : "ascending") : "none";
                return (
                  <th scope="col" aria-sort={sortState}>
                    <a href={query(q, { sort: c.sort, descending: active ? !q.descending : false })}>
                      {c.label}
                      {active ? (q.descending ? " ▼" : " ▲") : ""}
                    </a>
                  </th>
                );
              })}
            </tr>
          </thead>
          <tbody>
            {props.rows.map((r) => (
              <tr>
                <td>
                  <a href={`/districts/${encodeURIComponent(r.district.slug)}`} safe>
                    {r.district.name}
                  </a>
                  {r.district.status === "disabled" ? " (disabled)" : ""}
                </td>
                <td>
                  <code safe>{r.district.slug}</code>
                </td>
                <td>
                  <When at={r.lastDeliveryAt} />
                </td>
                <td>
                  {r.lastSync ? (
                    <>
                      <a href={`/syncs/${r.lastSync.id}`}>#{r.lastSync.id}</a> <StatusWord status={r.lastSync.status} />, <When at={r.lastSync.at} />
                    </>
                  ) : (
                    "none"
                  )}
                </td>
                <td>
                  {`${r.counts.students} students, ${r.counts.staff} staff, ${r.counts.classes} classes, ${r.counts.enrollments} enrollments, ${r.counts.schools} schools`}
                </td>
                <td>
                  <HealthMarkText health={r.health} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>,
  );
}
