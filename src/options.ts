/**
 * Option validation shared by the engine and its policies (CONVENTIONS.md "Errors and
 * input": construction throws `TypeError`/`RangeError` naming the option).
 */

/**
 * `v` as an integer option in [min, max], or `dflt` when undefined. A non-number is a
 * `TypeError`, a number out of range or not an integer a `RangeError`; both name
 * `options.NAME` and the range.
 */
export function intOption(v: unknown, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw new TypeError(`options.${name} must be a number (an integer from ${min} to ${max})`);
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`options.${name} must be an integer from ${min} to ${max}`);
  return v;
}
