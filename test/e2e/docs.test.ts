/**
 * What a newcomer reads first stays true (issue 17): the README's configuration table is the one
 * src/config.ts describes, `npm start -- --help` prints that same table (meaning included,
 * aligned), and the first command pair installs once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { configTableMarkdown } from '../../src/config.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

/** The README's configuration table: from its header row to the first line that is not a row. */
function readmeTable(): string[] {
  const lines = README.split('\n');
  const start = lines.indexOf('| flag | environment | default | meaning |');
  assert.ok(start >= 0, 'the README has a configuration table');
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
  return lines.slice(start, end);
}

/** A Markdown row's cells as a terminal shows them: no backticks, links reduced to their text. */
const cells = (row: string) =>
  row
    .slice(1, -1)
    .split(' | ')
    .map((c) => c.trim().replace(/`([^`]*)`/g, '$1').replace(/\[([^\]]+)\]\([^)]*\)/g, '$1'));

describe('README and --help', () => {
  it('the README configuration table is the one src/config.ts describes', () => {
    assert.equal(readmeTable().join('\n'), configTableMarkdown(), 'README differs from src/config.ts: `npm run config-table` prints the table to paste');
  });

  it('npm start -- --help prints the same table, meaning column included, aligned', { timeout: 60_000 }, async () => {
    assert.equal(PACKAGE.scripts.start, 'node --import tsx src/main.ts', 'the start script this test runs');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--help'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    const lines = out.split('\n');
    const header = lines.findIndex((l) => /^flag\s+environment\s+default\s+meaning$/.test(l));
    assert.ok(header >= 0, out);
    const rows = lines.slice(header).filter((l) => l.trim() !== '');
    const expected = readmeTable().filter((_, i) => i !== 1).map(cells); // without the |---| line
    assert.deepEqual(
      rows.map((l) => l.split(/ {2,}/)),
      expected,
    );
    const meaningAt = rows[0]!.indexOf('meaning');
    for (const [i, row] of rows.entries()) {
      assert.equal(row.indexOf(expected[i]![3]!, row.length - expected[i]![3]!.length), meaningAt, `meaning aligned in: ${row}`);
      assert.equal(row.indexOf(expected[i]![1]!), rows[0]!.indexOf('environment'), `environment aligned in: ${row}`);
    }
  });

  it('the first command pair installs once', () => {
    const block = /```sh\n([\s\S]*?)```/.exec(README)?.[1] ?? '';
    assert.equal(block.match(/npm ci/g)?.length, 1, `one npm ci in:\n${block}`);
    assert.match(block, /npm start/);
    assert.match(block, /npm test/);
  });
});
