/**
 * Validate prober JSON documents against the shipped schema (src/probe/report.schema.json,
 * MEASUREMENT.md §3) with ajv; a failure names every violated path.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import AjvModule from 'ajv';
import { repoRoot } from '../helpers.js';

// ajv is CommonJS: its class is the default export's `default` under NodeNext.
const AjvClass = ((AjvModule as unknown as { default?: unknown }).default ?? AjvModule) as new (o: object) => {
  compile(schema: object): ((doc: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string }> | null };
};

/** The schema file as shipped. */
export const schemaFile = `${repoRoot}src/probe/report.schema.json`;

let validator: ReturnType<InstanceType<typeof AjvClass>['compile']> | null = null;

/** Assert `doc` is a valid report / stream line. */
export function assertValidReport(doc: unknown, what = 'report'): void {
  if (validator === null) validator = new AjvClass({ allErrors: true, strict: true, allowUnionTypes: true }).compile(JSON.parse(fs.readFileSync(schemaFile, 'utf8')));
  const ok = validator(doc);
  assert.ok(ok, `${what} does not match src/probe/report.schema.json: ${(validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ')}`);
}
