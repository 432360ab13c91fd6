/**
 * The client library and CLI run from compiled JavaScript (issue 17): `npm pack` of
 * packages/client builds it (prepack: tsc) and packs bin/ and dist/; the tarball, unpacked into
 * a folder of its own with only its one dependency (`ws`) beside it, runs with plain `node`:
 * `herald --help`, and `herald listen` against a real Herald. No tsx, no TypeScript at run time.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, mkdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { call, startServer, type TestServer } from '../helpers/server.ts';
import { until } from '../helpers/until.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-created';

async function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const [code] = await once(child, 'exit');
  return { code: code as number, out, err };
}

/** How long the packed CLI in a child process gets to start or to print. */
const WAIT = { timeoutMs: 30_000 };

describe('@herald/client packed: plain JavaScript, no tsx', () => {
  let dir: string;
  let installed: string;
  let server: TestServer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'herald-client-'));
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR });
  });
  after(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('npm pack builds dist/ and packs bin/, dist/ and README.md, nothing else', { timeout: 300_000 }, async () => {
    const packed = await run('npm', ['pack', './packages/client', '--pack-destination', dir, '--json'], ROOT);
    assert.equal(packed.code, 0, packed.err);
    const [info] = JSON.parse(packed.out.slice(packed.out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    const files = info!.files.map((f) => f.path).sort();
    assert.ok(files.includes('bin/herald.js') && files.includes('dist/cli.js') && files.includes('dist/index.js') && files.includes('dist/index.d.ts'), files.join(' '));
    assert.deepEqual(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), [], 'no TypeScript sources');
    assert.deepEqual(files.filter((f) => f.includes('.test.')), [], 'no tests');
    assert.deepEqual([...new Set(files.map((f) => f.split('/')[0]))].sort(), ['README.md', 'bin', 'dist', 'package.json']);

    // Unpacked as npm would install it, with its one dependency beside it.
    installed = join(dir, 'node_modules', '@herald', 'client');
    await mkdir(installed, { recursive: true });
    const untar = await run('tar', ['-xzf', join(dir, info!.filename), '-C', installed, '--strip-components=1'], dir);
    assert.equal(untar.code, 0, untar.err);
    const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8'));
    assert.deepEqual(manifest.bin, { herald: 'bin/herald.js' });
    assert.deepEqual(Object.keys(manifest.dependencies), ['ws'], 'ws only: no tsx, no server packages');
    const ws = dirname(fileURLToPath(import.meta.resolve('ws/package.json')));
    await symlink(ws, join(dir, 'node_modules', 'ws'), 'dir');
    const tsx = await run(process.execPath, ['--input-type=module', '-e', "await import('tsx').then(() => process.exit(3), () => process.exit(0))"], dir);
    assert.equal(tsx.code, 0, 'tsx cannot be found from the install folder');
  });

  it('runs herald --help with plain node', { timeout: 60_000 }, async () => {
    assert.ok(installed, 'packed by the test before');
    const help = await run(process.execPath, [join(installed, 'bin', 'herald.js'), '--help'], dir);
    assert.equal(help.code, 0, help.err);
    assert.match(help.out, /herald listen --base/);
    assert.match(help.out, /herald subscriptions --base/);
  });

  it('runs herald listen --ephemeral against a real Herald, then exits 0 and deletes its subscription', { timeout: 120_000 }, async () => {
    assert.ok(installed, 'packed by the test before');
    const base = server.fhir('R4');
    const child = spawn(process.execPath, [join(installed, 'bin', 'herald.js'), 'listen', '--base', base, '--topic', TOPIC, '--ephemeral', '--json'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = once(child, 'exit');
    try {
      await until(`the packed listener to start (stderr: ${err})`, () => err.includes('listening to'), WAIT);
      const created = await call('POST', `${base}/Patient`, { resourceType: 'Patient' });
      await until(`an event (stdout: ${out})`, () => out.includes('"eventNumber":1'), WAIT);
      assert.equal(JSON.parse(out.trim().split('\n')[0]!).focus, `${base}/Patient/${created.body.id}`);
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await exited;
    assert.equal(code, 0, err);
    const id = /created Subscription\/([\w.-]+)/.exec(err)?.[1];
    assert.equal((await call('GET', `${base}/Subscription/${id}`)).status, 410, err);
  });
});
