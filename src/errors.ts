/**
 * Errors meant for a person: one line saying what is wrong and how to fix it. The CLI
 * prints `message` alone (no stack) and exits with `exitCode`. Messages never contain
 * key material.
 */
export class DtmeshError extends Error {
  /** 2 = usage (bad flag or value), 1 = runtime (file, key, socket). */
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'DtmeshError';
    this.exitCode = exitCode;
  }
}
