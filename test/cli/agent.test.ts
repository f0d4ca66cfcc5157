/** The agent's roster (src/cli/agent.ts parseRoster): `--peers` entries and `--peers-file` lines. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRoster } from '../../src/cli/agent.js';
import { DtmeshError } from '../../src/errors.js';

test('parseRoster: a # comment after whitespace ends a line (agent help: "# comments"); a # inside an entry is part of it', () => {
  const lines = ['# the roster', 'b', 'c@127.0.0.1:7103  # comment', 'd@[::1]:7104\t# tab', '   # indented', 'e#1', ''];
  assert.deepEqual(parseRoster('agent', lines, '--peers-file'), {
    peers: ['b', 'c', 'd', 'e#1'],
    addresses: [
      { agent: 'c', host: '127.0.0.1', port: 7103 },
      { agent: 'd', host: '::1', port: 7104 },
    ],
  });
  assert.throws(
    () => parseRoster('agent', ['c@127.0.0.1:7103#x'], '--peers-file'),
    (e: unknown) => e instanceof DtmeshError && e.exitCode === 2 && /^dtmesh agent: --peers-file entry 'c@127\.0\.0\.1:7103#x' must be HOST:PORT/.test(e.message),
  );
});
