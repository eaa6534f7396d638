/** Returned by a value parser for a value that does not have the column's type. */
export const INVALID: unique symbol = Symbol("invalid");
