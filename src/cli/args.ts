/**
 * Flag parsing shared by every command: node:util `parseArgs` (strict), then one-line
 * usage errors (exit 2) that name the flag and what it takes.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DtmeshError } from '../errors.js';

/**
 * The replay window every CLI command defaults to (`serve`, `probe`, `agent`): they carry
 * measurement traffic, and MEASUREMENT.md §1 "Reordered" has the prober and any
 * responder serving it verify in window mode (W ≥ 1024), so that reordering is never
 * loss. The engine API's own default stays strict (PROTOCOL.md §5); `--replay-window 0`
 * asks for strict here.
 */
export const CLI_REPLAY_WINDOW = 1024;

/** Option spec: every flag takes a string value unless `boolean`. */
export type Flags = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** Parse `argv` for a command; `--help` is always accepted. */
export function parseFlags(command: string, argv: string[], flags: Flags): Record<string, string | boolean | undefined> {
  const options: ParseArgsConfig['options'] = { help: { type: 'boolean', short: 'h' }, ...flags };
  // `--count -5`: parseArgs calls a value starting with '-' ambiguous; as `--count=-5` it
  // reaches the flag's own range check and its usual one-line error
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith('--') && !a.includes('=') && flags[a.slice(2)]?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      args.push(`${a}=${next}`);
      i++;
    } else args.push(a);
  }
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0]!.replace(/\. To specify a positional.*$/, '');
    throw new DtmeshError(`dtmesh ${command}: ${msg} (see 'dtmesh ${command} --help')`, 2);
  }
}

/** A usage error (exit 2) for `command`. */
export function usage(command: string, what: string): DtmeshError {
  return new DtmeshError(`dtmesh ${command}: ${what} (see 'dtmesh ${command} --help')`, 2);
}

/** The value of a required string flag. */
export function required(command: string, v: Record<string, unknown>, name: string): string {
  const x = v[name];
  if (typeof x !== 'string' || x === '') throw usage(command, `--${name} is required`);
  return x;
}

/** An optional integer flag in [min, max]: digits, or digits with a whole power of ten (`--count 1e9`, as users write large counts). */
export function intFlag(command: string, v: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const x = v[name];
  if (x === undefined) return undefined;
  const n = Number(x);
  if (typeof x !== 'string' || !/^-?\d+(e\+?\d+)?$/i.test(x) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw usage(command, `--${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/** An optional number flag in [min, max]. */
export function numFlag(command: string, v: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const x = v[name];
  if (x === undefined) return undefined;
  const n = Number(x);
  if (typeof x !== 'string' || x.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw usage(command, `--${name} must be a number from ${min} to ${max}`);
  }
  return n;
}

/** Option names of the API → the CLI flags that set them. */
const FLAG_OF: Record<string, string> = {
  tenant: '--tenant',
  agent: '--agent',
  peers: '--peers entry',
  listen: '--listen',
  workers: '--workers',
  batchSize: '--batch',
  replayWindow: '--replay-window',
  maxDatagram: '--max-datagram',
  clockWindowMs: '--clock-window-ms',
  recvBufferBytes: '--recv-buffer',
  lane: '--lane',
  ttl: '--ttl',
  dscp: '--dscp',
  gso: '--gso',
};

/** Turn an error from the API (TypeError/RangeError about `options.X`) into a usage error naming the flag. */
export function asUsage(command: string, e: unknown): unknown {
  if (e instanceof TypeError || e instanceof RangeError) {
    const msg = e.message
      .replace(/^options\.peers\[\d+\]/, '--peers entry')
      .replace(/^options\.(\w+)/, (_m, name: string) => FLAG_OF[name] ?? name)
      .replace(/^options\.peers\[\d+\]/, '--peers entry')
      .replace(/^peers\[\d+\]/, '--peers entry');
    return usage(command, msg);
  }
  return e;
}
