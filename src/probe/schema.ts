/**
 * The JSON Schema (draft-07) of every JSON document the prober writes (MEASUREMENT.md §3):
 * the `--json` report and each `--json-stream` line (`start`, `interval`, `end`). The
 * same schema ships as src/probe/report.schema.json (byte-equal to
 * `JSON.stringify(REPORT_SCHEMA, null, 2)`, checked by test/probe/schema.test.ts);
 * the tests validate every report they make against it (ajv).
 */
import { DROP_REASONS } from '../protocol/verdict.js';
import { SCHEMA_VERSION } from './context.js';

const uint = { type: 'integer', minimum: 0 } as const;
const num = { type: 'number' } as const;
const nonneg = { type: 'number', minimum: 0 } as const;

/** An object whose keys are exactly `props` (all required, no others). */
function exact(props: Record<string, unknown>): Record<string, unknown> {
  return { type: 'object', properties: props, required: Object.keys(props), additionalProperties: false };
}

const delay = exact({ count: uint, min: num, p50: num, p90: num, p99: num, max: num });
const threeQuantiles = exact({ p50: nonneg, p99: nonneg, max: nonneg });

const context = {
  schema_version: { const: SCHEMA_VERSION },
  version: { type: 'string', minLength: 1 },
  start_time: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$' },
  target: exact({ agent: { type: 'string', minLength: 1 }, host: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 1, maximum: 65535 } }),
  config: {
    type: 'object',
    properties: {
      count: { type: ['integer', 'null'], minimum: 1 },
      duration_s: { type: ['number', 'null'] },
      rate_pps: nonneg,
      size: { type: 'integer', minimum: 50, maximum: 65507 },
      grace_ms: { type: ['number', 'null'] },
      warmup_s: nonneg,
      interval_s: { type: ['number', 'null'] },
      pacing: { enum: ['yield', 'timer', 'spin'] },
      clock_synced: { type: 'boolean' },
      max_loss_pct: { type: ['number', 'null'] },
      max_p99_ms: { type: ['number', 'null'] },
      max_datagram: { type: 'integer', minimum: 50, maximum: 65507 },
      batch_size: { type: 'integer', minimum: 1 },
      workers: { type: 'integer', minimum: 1 },
    },
    required: ['count', 'duration_s', 'rate_pps', 'size', 'grace_ms', 'warmup_s', 'interval_s', 'pacing', 'clock_synced', 'max_loss_pct', 'max_p99_ms', 'max_datagram', 'batch_size', 'workers'],
    additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
  },
  lane: { type: 'string', minLength: 1 },
  timestamps: { enum: ['kernel', 'js'] },
  host: exact({ platform: { type: 'string' }, arch: { type: 'string' }, release: { type: 'string' }, cpus: { type: 'integer', minimum: 1 }, cpu_model: { type: 'string' }, node: { type: 'string' } }),
};

const interval = {
  index: uint,
  start_s: nonneg,
  duration_s: nonneg,
  sent: uint,
  received: uint,
  lost: uint,
  late: uint,
  duplicates: uint,
  reordered: uint,
  unmatched: uint,
  pps: nonneg,
  achieved_pps: nonneg,
  rtt_us: exact({ min: nonneg, mean: nonneg, p50: nonneg, p99: nonneg, max: nonneg }),
  jitter_us: nonneg,
};

const report = {
  interrupted: { type: ['string', 'null'], minLength: 1 },
  sent: uint,
  received: uint,
  lost: uint,
  duplicates: uint,
  reordered: uint,
  rtt_us: exact({ min: nonneg, mean: nonneg, stddev: nonneg, p50: nonneg, p90: nonneg, p99: nonneg, p999: nonneg, max: nonneg }),
  jitter_us: nonneg,
  offered_pps: nonneg,
  achieved_pps: nonneg,
  throughput_bps: nonneg,
  duration_s: nonneg,
  dropped: exact(Object.fromEntries(DROP_REASONS.map((r) => [r, uint]))),
  kernel_drops: { type: ['integer', 'null'], minimum: 0 },
  late: uint,
  in_flight: { const: 0 },
  send_errors: uint,
  grace_ms: nonneg,
  grace_rule: { type: 'string', minLength: 1 },
  unmatched: uint,
  loss_pct: { type: 'number', minimum: 0, maximum: 100 },
  ipdv_us: exact({ pairs: uint, mean: num, mean_abs: nonneg, min: num, max: num, abs_p50: nonneg, abs_p99: nonneg }),
  owd_us: exact({
    relative: exact({ forward: delay, reverse: delay }),
    absolute: { oneOf: [{ type: 'null' }, exact({ forward: delay, reverse: delay })] },
    note: { type: 'string' },
    out_of_range: exact({ forward: uint, reverse: uint }),
  }),
  warmup: exact({ duration_s: nonneg, probes: uint }),
  generator: exact({
    pacing: { enum: ['yield', 'timer', 'spin'] },
    requested_pps: { type: ['number', 'null'] },
    lateness_us: threeQuantiles,
    lateness_bound_us: nonneg,
    max_burst: uint,
    event_loop_delay_us: threeQuantiles,
    gc: exact({ count: uint, total_ms: nonneg, max_ms: nonneg }),
    cpu_cores: nonneg,
    host_steal_cores: { type: ['number', 'null'], minimum: 0 },
    generator_limited: { type: 'boolean' },
  }),
  histogram: exact({ encoding: { type: 'string' }, unit: { const: 'us' }, data: { type: 'string', pattern: '^[A-Za-z0-9+/]+=*$' } }),
  intervals: { type: 'array', items: exact(interval) },
  intervals_omitted: uint,
  memory: exact({ ring_entries: uint, ring_bytes: uint }),
  thresholds: exact({
    max_loss_pct: { type: ['number', 'null'] },
    max_p99_ms: { type: ['number', 'null'] },
    breached: { type: 'array', items: { enum: ['max_loss_pct', 'max_p99_ms'] }, uniqueItems: true },
  }),
};

/** The schema object (draft-07). */
export const REPORT_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://datastun.dev/dtmesh/probe-report.schema.json',
  title: 'dtmesh probe report and --json-stream lines',
  description: 'MEASUREMENT.md §1–3. type "end" is the --json report; a --json-stream is one "start", any "interval"s, one "end".',
  oneOf: [
    exact({ type: { const: 'start' }, ...context }),
    exact({ type: { const: 'interval' }, ...context, ...interval }),
    exact({ type: { const: 'end' }, ...context, ...report }),
  ],
};
