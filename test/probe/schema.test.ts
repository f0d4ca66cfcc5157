/**
 * The shipped JSON Schema (src/probe/report.schema.json) is the one the code exports
 * (src/probe/schema.ts) and compiles under ajv's strict mode.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { REPORT_SCHEMA } from '../../src/probe/schema.js';
import { assertValidReport, schemaFile } from './validate.js';

test('src/probe/report.schema.json is byte-equal to REPORT_SCHEMA (regenerate: node -e with JSON.stringify(REPORT_SCHEMA, null, 2))', () => {
  assert.equal(fs.readFileSync(schemaFile, 'utf8'), JSON.stringify(REPORT_SCHEMA, null, 2) + '\n');
});

test('the schema rejects a report missing a key or carrying an unknown one', () => {
  assert.throws(() => assertValidReport({ type: 'end', sent: 1 }), /does not match/);
  assert.throws(() => assertValidReport({ type: 'start', schema_version: 1, bogus: true }), /does not match/);
});
