import { RosterdockError } from "../../errors.ts";

/** OneRoster 1.2 filter operators; `~` is "contains". */
export const FILTER_OPERATORS = ["=", "!=", ">", ">=", "<", "<=", "~"] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];

export interface FilterPredicate {
  readonly kind: "predicate";
  readonly field: string;
  readonly op: FilterOperator;
  readonly value: string;
}

export interface FilterJunction {
  readonly kind: "and" | "or";
  readonly clauses: readonly FilterExpression[];
}

export type FilterExpression = FilterPredicate | FilterJunction;

/** More predicates than any real client sends; bounds the SQL a request can produce. */
export const MAX_FILTER_PREDICATES = 20;

/**
 * Parses `familyName='Peña' AND role!='student'`: predicates `field op 'value'` joined by `AND`
 * and `OR` (AND binds tighter; no parentheses, as in the specification). A quote inside a value
 * is written twice (`'O''Brien'`). Pure: throws ERR_ONEROSTER_INVALID_FILTER with the position.
 */
export function parseFilter(text: string): FilterExpression {
  const parser = new Parser(text);
  const expression = parser.parse();
  if (countPredicates(expression) > MAX_FILTER_PREDICATES) {
    throw filterError(`A filter may hold at most ${MAX_FILTER_PREDICATES} comparisons.`, text, 0);
  }
  return expression;
}

/** Every field a filter names, for validation against a resource's fields. */
export function filterFields(expression: FilterExpression): string[] {
  if (expression.kind === "predicate") return [expression.field];
  return expression.clauses.flatMap(filterFields);
}

function countPredicates(expression: FilterExpression): number {
  return expression.kind === "predicate" ? 1 : expression.clauses.reduce((n, c) => n + countPredicates(c), 0);
}

function filterError(message: string, text: string, position: number): RosterdockError {
  return new RosterdockError("ERR_ONEROSTER_INVALID_FILTER", `Invalid filter at character ${position + 1}: ${message}`, { filter: text, position });
}

class Parser {
  #pos = 0;

  constructor(private readonly text: string) {}

  parse(): FilterExpression {
    this.#skipSpace();
    if (this.#pos >= this.text.length) throw filterError("the filter is empty.", this.text, 0);
    const expression = this.#junction("or", () => this.#junction("and", () => this.#predicate()));
    this.#skipSpace();
    if (this.#pos < this.text.length) {
      throw filterError(`expected AND or OR, found "${this.text.slice(this.#pos, this.#pos + 10)}".`, this.text, this.#pos);
    }
    return expression;
  }

  #junction(kind: "and" | "or", operand: () => FilterExpression): FilterExpression {
    const clauses = [operand()];
    while (this.#keyword(kind === "and" ? "AND" : "OR")) clauses.push(operand());
    return clauses.length === 1 ? clauses[0]! : { kind, clauses };
  }

  /** Consumes ` AND ` / ` OR ` (any case, surrounded by spaces) when it comes next. */
  #keyword(word: string): boolean {
    const match = new RegExp(`^\\s+${word}\\s+`, "i").exec(this.text.slice(this.#pos));
    if (!match) return false;
    this.#pos += match[0].length;
    return true;
  }

  #predicate(): FilterPredicate {
    this.#skipSpace();
    const start = this.#pos;
    const field = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(this.text.slice(this.#pos))?.[0];
    if (field === undefined) {
      if (this.text[this.#pos] === "(") throw filterError("parentheses are not part of OneRoster filters.", this.text, start);
      throw filterError("expected a field name.", this.text, start);
    }
    this.#pos += field.length;
    this.#skipSpace();
    const op = /^(!=|>=|<=|=|>|<|~)/.exec(this.text.slice(this.#pos))?.[0] as FilterOperator | undefined;
    if (op === undefined) throw filterError(`expected an operator (${FILTER_OPERATORS.join(" ")}) after ${field}.`, this.text, this.#pos);
    this.#pos += op.length;
    this.#skipSpace();
    return { kind: "predicate", field, op, value: this.#quoted(field) };
  }

  #quoted(field: string): string {
    if (this.text[this.#pos] !== "'") throw filterError(`the value for ${field} must be in single quotes.`, this.text, this.#pos);
    const open = this.#pos++;
    let value = "";
    for (;;) {
      const close = this.text.indexOf("'", this.#pos);
      if (close === -1) throw filterError("the quoted value is not closed.", this.text, open);
      value += this.text.slice(this.#pos, close);
      this.#pos = close + 1;
      if (this.text[this.#pos] !== "'") return value;
      value += "'";
      this.#pos++;
    }
  }

  #skipSpace(): void {
    while (this.#pos < this.text.length && /\s/.test(this.text[this.#pos]!)) this.#pos++;
  }
}
