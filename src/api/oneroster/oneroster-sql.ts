import { RosterdockError } from "../../errors.ts";
import type { FilterExpression, FilterPredicate } from "./oneroster-filter.ts";
import { canonicalFieldName, type Arm, type FieldFilter, type Resource } from "./oneroster-resources.ts";

/** A nested route's restriction, as SQL over the child resource's logical columns. */
export interface Scope {
  sql: (col: (column: string) => string) => string;
  params: Record<string, unknown>;
}

export interface ListQuery {
  resource: Resource;
  scope?: Scope | undefined;
  filter?: FilterExpression | undefined;
  sort?: string | undefined;
  orderBy: "asc" | "desc";
  fields?: readonly string[] | undefined;
}

/** A list query as SQL for either dialect (roster-sql-dialect.ts). Parameters `@d` and `@slug` are added by the reader. */
export interface CompiledList {
  /** Fields of the response, in resource order. */
  fields: string[];
  /** Logical columns selected. */
  columns: string[];
  /** Logical columns of the ORDER BY (the sort, then the key). */
  order: string[];
  desc: boolean;
  params: Record<string, unknown>;
  countSql: string;
  /** `@limit`, `@offset`. */
  pageSql: string;
  /**
   * For arms whose order columns are never null: the page from a known position
   * (`@a0…` = the order columns of the row at that position, `@limit`, `@offset` from there) and
   * the step that finds the row `@skip` rows after one (`@a0…`) or from the start (`firstStepSql`).
   * `stepsSql`/`firstStepsSql`: many steps in one statement, the order columns of every `@step`-th
   * row of the `@span` rows after the anchor (or from the start, the first row not counted),
   * numbered by a window over the list's order: for one arm, its index order; for several (built
   * as subqueries, `compoundAsSubquery`), each arm's first `@span` rows in its index order, merged
   * by one sort of at most that many rows per arm.
   */
  seek: { pageSql: string; stepSql: string; firstStepSql: string; stepsSql?: string; firstStepsSql?: string; merged: boolean } | undefined;
}

const q = (name: string) => `"${name}"`;

/** Of the rows numbered (`rd_n`) after an anchor, every `@step`-th: the next anchors, in order. */
const EVERY_STEP = "WHERE rd_n % @step = 0 ORDER BY rd_n";
/** From the start of the list: the first row is not a step, so every `@step`-th after it. */
const EVERY_STEP_FROM_START = "WHERE rd_n > 1 AND (rd_n - 1) % @step = 0 ORDER BY rd_n";

export function selectedFields(resource: Resource, fields: readonly string[] | undefined): string[] {
  const shown = Object.keys(resource.fields).filter((f) => !resource.fields[f]!.hidden);
  if (fields === undefined || fields.length === 0) return shown;
  const unknown = fields.filter((f) => !shown.includes(f));
  if (unknown.length > 0) {
    throw new RosterdockError("ERR_ONEROSTER_INVALID_FIELDS", `Unknown field${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}; ${resource.plural} have ${shown.join(", ")}.`, {
      fields: unknown,
    });
  }
  return shown.filter((f) => fields.includes(f));
}

/**
 * `compoundAsSubquery`: order a query of several arms as a subquery (PostgreSQL merges the arms of
 * a UNION ALL in index order only when it is one; SQLite merges a compound SELECT as it is).
 */
export function compileList(query: ListQuery, options: { compoundAsSubquery?: boolean } = {}): CompiledList {
  const { resource } = query;
  const fields = selectedFields(resource, query.fields);
  let sortColumns: readonly string[] = [];
  if (query.sort !== undefined && query.sort !== "") {
    const name = canonicalFieldName(resource, query.sort);
    const sort = name === undefined ? undefined : resource.fields[name]!.sort;
    if (sort === undefined) {
      const sortable = Object.entries(resource.fields).filter(([, f]) => f.sort).map(([n]) => n);
      throw new RosterdockError("ERR_ONEROSTER_INVALID_SORT", `${resource.plural} cannot be sorted on ${query.sort}; sortable fields are ${sortable.join(", ")}.`, { sort: query.sort });
    }
    sortColumns = sort;
  }
  const order = [...new Set([...sortColumns, ...resource.key])];
  const columns = [...new Set([...fields.flatMap((f) => resource.fields[f]!.uses), ...order])];
  const desc = query.orderBy === "desc";
  const dir = desc ? "DESC" : "ASC";
  // Nulls sort low, as in SQLite (rd_nulls_low); the columns that cannot be null keep plain
  // ORDER BY terms, which PostgreSQL matches to its indexes.
  const direction = (c: string, expression: string) => (resource.nullable.has(c) ? `rd_nulls_low(${expression}, ${dir})` : `${expression} ${dir}`);
  const params: Record<string, unknown> = { ...(query.scope?.params ?? {}) };
  const filters = query.filter ? compileFilterValues(resource, query.filter, params) : undefined;

  const armWhere = (arm: Arm, col: (c: string) => string) =>
    [arm.where, query.scope ? `(${query.scope.sql(col)})` : undefined, filters ? `(${filters(col, arm)})` : undefined].filter(Boolean).join(" AND ");
  const columnOf = (arm: Arm) => (c: string) => {
    const expression = arm.columns[c];
    if (expression === undefined) throw new Error(`${resource.plural}: no column ${c} in an arm`);
    return expression;
  };
  // Seek steps name the order columns o0, o1…
  const stepColumns = order.map((_, i) => q(`o${i}`)).join(", ");

  if (resource.arms.length === 1) {
    const arm = resource.arms[0]!;
    const col = columnOf(arm);
    const where = armWhere(arm, col);
    const select = columns.map((c) => `${col(c)} AS ${q(c)}`).join(", ");
    // A column that is a constant in this arm ('active') orders nothing; PostgreSQL refuses it in ORDER BY.
    const orderBy = order
      .filter((c) => !/^'[^']*'$|^NULL$/.test(col(c)))
      .map((c) => direction(c, `rd_bytes(${col(c)})`))
      .join(", ");
    const base = `SELECT ${select} FROM ${arm.from} WHERE ${where}`;
    const seekable = order.every((c) => !resource.nullable.has(c));
    const tuple = order.length === 1 ? `rd_bytes(${col(order[0]!)})` : `(${order.map((c) => `rd_bytes(${col(c)})`).join(", ")})`;
    const anchor = order.length === 1 ? "@a0" : `(${order.map((_, i) => `@a${i}`).join(", ")})`;
    const stepSelect = order.map((c, i) => `${col(c)} AS ${q(`o${i}`)}`).join(", ");
    const numbered = (bound: string) =>
      `SELECT ${stepColumns} FROM (SELECT ${stepSelect}, row_number() OVER (ORDER BY ${orderBy}) AS rd_n FROM ${arm.from} WHERE ${where}${bound} ORDER BY ${orderBy} LIMIT @span) rd_steps`;
    return {
      fields,
      columns,
      order,
      desc,
      params,
      countSql: `SELECT count(*) AS n FROM ${arm.from} WHERE ${where}`,
      pageSql: `${base} ORDER BY ${orderBy} LIMIT @limit OFFSET @offset`,
      seek: seekable
        ? {
            pageSql: `${base} AND ${tuple} ${desc ? "<=" : ">="} ${anchor} ORDER BY ${orderBy} LIMIT @limit OFFSET @offset`,
            stepSql: `SELECT ${stepSelect} FROM ${arm.from} WHERE ${where} AND ${tuple} ${desc ? "<" : ">"} ${anchor} ORDER BY ${orderBy} LIMIT 1 OFFSET @skip`,
            firstStepSql: `SELECT ${stepSelect} FROM ${arm.from} WHERE ${where} ORDER BY ${orderBy} LIMIT 1 OFFSET @skip`,
            stepsSql: `${numbered(` AND ${tuple} ${desc ? "<" : ">"} ${anchor}`)} ${EVERY_STEP}`,
            firstStepsSql: `${numbered("")} ${EVERY_STEP_FROM_START}`,
            merged: false,
          }
        : undefined,
    };
  }

  // Several arms (live and removed records, students and teachers): one compound SELECT ordered
  // on its result columns, which SQLite runs as a merge of the arms, each read in index order
  // where an index has it. The seek statements bound every arm by the same anchor.
  const selects = resource.arms.map((arm) => {
    const col = columnOf(arm);
    return {
      from: arm.from,
      // The arm's own order, for PostgreSQL's per-arm top-N (see compound).
      orderBy: order
        .filter((c) => !/^'[^']*'$|^NULL$/.test(col(c)))
        .map((c) => direction(c, `rd_bytes(${col(c)})`))
        .join(", "),
      where: armWhere(arm, col),
      // Order columns carry their byte order (rd_bytes) out of the arms: the compound is ordered by name.
      select: columns.map((c) => `${order.includes(c) ? `rd_bytes(${col(c)})` : col(c)} AS ${q(c)}`).join(", "),
      stepSelect: order.map((c, i) => `rd_bytes(${col(c)}) AS ${q(`o${i}`)}`).join(", "),
      tuple: order.length === 1 ? `rd_bytes(${col(order[0]!)})` : `(${order.map((c) => `rd_bytes(${col(c)})`).join(", ")})`,
    };
  });
  type Select = (typeof selects)[number];
  /**
   * `rows`: how many rows of each arm the statement can need (its LIMIT plus OFFSET). PostgreSQL
   * does not merge a UNION ALL's arms in index order (it appends, then sorts them all), so each
   * arm is read as its own top-N, in its index order, and only those rows are sorted.
   */
  const compound = (select: (s: Select) => string, bound: (s: Select) => string, rows: string) => {
    if (!options.compoundAsSubquery) return selects.map((s) => `SELECT ${select(s)} FROM ${s.from} WHERE ${s.where}${bound(s)}`).join(" UNION ALL ");
    const arms = selects.map((s) => `(SELECT ${select(s)} FROM ${s.from} WHERE ${s.where}${bound(s)} ORDER BY ${s.orderBy} LIMIT ${rows})`);
    return `SELECT * FROM (${arms.join(" UNION ALL ")}) arms`;
  };
  const pageRows = "@limit + @offset";
  const stepRows = "@skip + 1";
  const anchor = order.length === 1 ? "@a0" : `(${order.map((_, i) => `@a${i}`).join(", ")})`;
  const byColumns = order.map((c) => direction(c, q(c))).join(", ");
  const bySteps = order.map((_, i) => `${q(`o${i}`)} ${dir}`).join(", ");
  const seekable = order.every((c) => !resource.nullable.has(c));
  // Only where each arm is its own top-N (compoundAsSubquery): a plain UNION ALL would be sorted whole.
  const numbered = (bound: (s: Select) => string) =>
    `SELECT ${stepColumns} FROM (SELECT ${stepColumns}, row_number() OVER (ORDER BY ${bySteps}) AS rd_n FROM (${compound((s) => s.stepSelect, bound, "@span")}) rd_arms ORDER BY ${bySteps} LIMIT @span) rd_steps`;
  const batched = options.compoundAsSubquery === true;
  return {
    fields,
    columns,
    order,
    desc,
    params,
    countSql: `SELECT ${selects.map((s) => `(SELECT count(*) FROM ${s.from} WHERE ${s.where})`).join(" + ")} AS n`,
    pageSql: `${compound((s) => s.select, () => "", pageRows)} ORDER BY ${byColumns} LIMIT @limit OFFSET @offset`,
    seek: seekable
      ? {
          pageSql: `${compound((s) => s.select, (s) => ` AND ${s.tuple} ${desc ? "<=" : ">="} ${anchor}`, pageRows)} ORDER BY ${byColumns} LIMIT @limit OFFSET @offset`,
          stepSql: `${compound((s) => s.stepSelect, (s) => ` AND ${s.tuple} ${desc ? "<" : ">"} ${anchor}`, stepRows)} ORDER BY ${bySteps} LIMIT 1 OFFSET @skip`,
          firstStepSql: `${compound((s) => s.stepSelect, () => "", stepRows)} ORDER BY ${bySteps} LIMIT 1 OFFSET @skip`,
          ...(batched
            ? {
                stepsSql: `${numbered((s) => ` AND ${s.tuple} ${desc ? "<" : ">"} ${anchor}`)} ${EVERY_STEP}`,
                firstStepsSql: `${numbered(() => "")} ${EVERY_STEP_FROM_START}`,
              }
            : {}),
          merged: true,
        }
      : undefined,
  };
}

/** One record by sourcedId, as SQL with `@id` and lookup parameters. */
export function compileGet(resource: Resource, sourcedId: string, fields: readonly string[] | undefined): { fields: string[]; sql: string; params: Record<string, unknown> } {
  const selected = selectedFields(resource, fields);
  const columns = [...new Set(selected.flatMap((f) => resource.fields[f]!.uses))];
  const params: Record<string, unknown> = { id: sourcedId };
  const alternatives = resource.lookup(sourcedId);
  alternatives.forEach((alt, i) => Object.entries(alt).forEach(([c, v], j) => (params[`l${i}_${j}`] = v)));
  const arms = resource.arms.map((arm) => {
    const col = (c: string) => arm.columns[c]!;
    const lookup = alternatives.map((alt, i) => `(${Object.keys(alt).map((c, j) => `${col(c)} = @l${i}_${j}`).join(" AND ")})`).join(" OR ");
    const select = columns.length > 0 ? columns.map((c) => `${col(c)} AS ${q(c)}`).join(", ") : "1 AS one";
    return `SELECT ${select} FROM ${arm.from} WHERE ${arm.where} AND (${lookup}) AND ${col(resource.sourcedId)} = @id`;
  });
  return { fields: selected, sql: `${arms.join(" UNION ALL ")} LIMIT 1`, params };
}

/** Checks the filter's fields and values, stores values as `@f0…`, returns the per-arm SQL builder. */
function compileFilterValues(resource: Resource, filter: FilterExpression, params: Record<string, unknown>): (col: (c: string) => string, arm: Arm) => string {
  let next = 0;
  const resolved = new Map<FilterPredicate, { param: string; def: FieldFilter }>();
  const visit = (expression: FilterExpression): void => {
    if (expression.kind !== "predicate") return expression.clauses.forEach(visit);
    const name = canonicalFieldName(resource, expression.field);
    const def = resource.filters?.[expression.field] ?? (name === undefined ? undefined : resource.fields[name]!.filter);
    if (def === undefined) {
      const filterable = [...new Set([...Object.entries(resource.fields).filter(([, f]) => f.filter).map(([n]) => n), ...Object.keys(resource.filters ?? {})])];
      throw new RosterdockError("ERR_ONEROSTER_INVALID_FILTER", `${resource.plural} cannot be filtered on ${expression.field}; filterable fields are ${filterable.join(", ")}.`, {
        field: expression.field,
      });
    }
    let value: string = expression.value;
    if (def.type === "datetime") {
      const time = Date.parse(value);
      if (Number.isNaN(time)) throw new RosterdockError("ERR_ONEROSTER_INVALID_FILTER", `${expression.field} takes a date-time such as '2026-09-01T00:00:00Z'; got '${value}'.`, { field: expression.field });
      if (expression.op === "~") throw new RosterdockError("ERR_ONEROSTER_INVALID_FILTER", `${expression.field} cannot be compared with ~.`, { field: expression.field });
      value = new Date(time).toISOString();
    }
    const param = `f${next++}`;
    params[param] = value;
    resolved.set(expression, { param, def });
  };
  visit(filter);
  return (col) => {
    const render = (expression: FilterExpression): string => {
      if (expression.kind !== "predicate") return expression.clauses.map((c) => `(${render(c)})`).join(expression.kind === "and" ? " AND " : " OR ");
      const { param, def } = resolved.get(expression)!;
      const custom = def.compile?.(expression.op, `@${param}`, col, String(params[param]));
      if (custom !== undefined) return custom;
      const expr = col(def.column);
      switch (expression.op) {
        case "=":
          return `${expr} = @${param}`;
        case "!=":
          return `${expr} IS DISTINCT FROM @${param}`;
        case "~":
          return `rd_contains(${expr}, @${param})`;
        default:
          return `rd_bytes(${expr}) ${expression.op} @${param}`;
      }
    };
    return render(filter);
  };
}
