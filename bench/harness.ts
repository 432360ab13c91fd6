/**
 * What scenarios are given: start a target server in its own process, drive load at it from another
 * process, print. Plus the shared types of bench/load.ts's input and output.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CpuShare } from './cpu.ts';
import { createDatabase, dropDatabase, pgUnavailable } from './pg.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Settings from the environment (see bench/README.md). */
export const settings = {
  seconds: num('BENCH_SECONDS', 8),
  warmupSeconds: num('BENCH_WARMUP_SECONDS', 2),
  concurrency: concurrencyList(process.env.BENCH_CONCURRENCY || '1,16,64'),
  keep: process.env.BENCH_KEEP === '1',
  startTimeoutMs: num('BENCH_START_TIMEOUT', 120) * 1000,
  /** Herald's LOG_LEVEL; unset means Herald's default (info), as deployed. */
  heraldLogLevel: process.env.BENCH_LOG_LEVEL || undefined,
  /** The stores Herald is measured on (BENCH_STORES); set by chooseStores() before the scenarios run. */
  stores: [] as Store[],
};

/** Herald's stores, as BENCH_STORES names them, and the target that runs Herald on each. */
export type Store = 'sqlite' | 'postgres';
export const STORE_TARGET: Record<Store, 'herald' | 'heraldPg'> = { sqlite: 'herald', postgres: 'heraldPg' };

/**
 * BENCH_STORES (comma list of sqlite, postgres); unset: both when PostgreSQL answers (bench/pg.ts),
 * else SQLite only, with a printed note. PostgreSQL asked for by name must answer.
 */
export async function chooseStores(): Promise<Store[]> {
  const raw = process.env.BENCH_STORES;
  const down = await pgUnavailable();
  if (raw) {
    const list = raw.split(',').filter(Boolean);
    const bad = list.filter((s) => s !== 'sqlite' && s !== 'postgres');
    if (bad.length > 0 || list.length === 0) throw new Error(`BENCH_STORES must be a comma list of sqlite, postgres, not '${raw}'`);
    if (list.includes('postgres') && down) throw new Error(`BENCH_STORES names postgres, but PostgreSQL does not answer: ${down}`);
    settings.stores = list as Store[];
  } else {
    settings.stores = down ? ['sqlite'] : ['sqlite', 'postgres'];
    if (down) print(`note: PostgreSQL does not answer (${down}); measuring Herald on SQLite only (BENCH_PG names the server)`);
  }
  return settings.stores;
}

function concurrencyList(raw: string): number[] {
  const list = raw.split(',').map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_CONCURRENCY must be a comma list of positive integers, not '${raw}'`);
  return list;
}

function num(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, not '${raw}'`);
  return n;
}

// ---------------------------------------------------------------- targets

/** `herald`: Herald on a fresh SQLite file; `heraldPg`: Herald on a fresh PostgreSQL database. */
export type TargetName = 'herald' | 'heraldPg' | 'floor';
export const LABEL: Record<TargetName, string> = { herald: 'Herald', heraldPg: 'Herald on PostgreSQL', floor: 'floor' };

export interface Target {
  name: TargetName;
  /** e.g. http://127.0.0.1:40123 */
  url: string;
  pid: number;
  /** Herald on PostgreSQL: its database (URL, and name for the CPU of its backends). */
  db?: { url: string; name: string };
  /** SIGTERM, wait for exit, remove the temp dir (unless BENCH_KEEP=1) and a database made for it. */
  stop(): Promise<void>;
}

/**
 * Herald's limits (issue 14) raised past what the scenarios drive, all from one loopback address:
 * 10,000+ websockets, 100,000 subscriptions on one topic; keep-alive as long as the floors'; and no size prune of the event log
 * during a measurement (its deletes would run on the writer mid-run).
 */
const BENCH_LIMITS = {
  HERALD_MAX_CONNECTIONS: '100000',
  HERALD_WS_MAX_CONNECTIONS: '100000',
  HERALD_WS_MAX_CONNECTIONS_PER_ADDRESS: '100000',
  HERALD_WS_MAX_SUBSCRIPTIONS_PER_SOCKET: '100000',
  HERALD_MAX_SUBSCRIPTIONS_PER_TOPIC: '1000000',
  HERALD_MAX_SUBSCRIPTIONS_PER_TOKEN: '100000',
  HERALD_EVENT_LOG_MAX_PER_SUBSCRIPTION: '1000000000',
  // As the floors and the load clients keep theirs: a connection idle between runs stays usable.
  HERALD_KEEP_ALIVE_TIMEOUT_MS: '60000',
};

/** How each target is launched, given its port, a fresh temp dir and (heraldPg) its database's URL. */
const LAUNCH: Record<TargetName, (port: number, dir: string, dbUrl: string) => { script: string; env: Record<string, string> }> = {
  herald: (port, dir) => ({ script: 'src/main.ts', env: { ...BENCH_LIMITS, PORT: String(port), HOST: '127.0.0.1', HERALD_DB: `sqlite:${join(dir, 'herald.db')}` } }),
  heraldPg: (port, _dir, dbUrl) => ({ script: 'src/main.ts', env: { ...BENCH_LIMITS, PORT: String(port), HOST: '127.0.0.1', HERALD_DB: dbUrl } }),
  floor: (port, dir) => ({ script: 'bench/floor.ts', env: { PORT: String(port), HOST: '127.0.0.1', FLOOR_DB: join(dir, 'floor.db') } }),
};

/**
 * Starts a target on a free loopback port with a fresh SQLite file (or, for heraldPg, a fresh
 * PostgreSQL database, dropped when it stops); resolves once GET /healthz answers 200. `extraEnv`
 * adds settings (e.g. auth), given the target's temp dir. `db`: heraldPg on an existing database
 * (another node's), which its stop() leaves in place.
 */
export async function startTarget(name: TargetName, extraEnv?: (dir: string) => Record<string, string>, db?: Target['db']): Promise<Target> {
  const made = name === 'heraldPg' && !db ? await createDatabase() : undefined;
  const database = name === 'heraldPg' ? db ?? made : undefined;
  const dir = await mkdtemp(join(tmpdir(), `bench-${name}-`));
  const port = await freePort();
  const launch = LAUNCH[name](port, dir, database?.url ?? '');
  const script = launch.script;
  const env = { ...launch.env, ...extraEnv?.(dir) };
  const logPath = join(dir, 'server.log');
  const log = await open(logPath, 'w');
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.LOG_LEVEL; // Herald at its default log level, as deployed, unless BENCH_LOG_LEVEL says otherwise
  if (name === 'herald' && settings.heraldLogLevel) childEnv.LOG_LEVEL = settings.heraldLogLevel;
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, env: childEnv, stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  const url = `http://127.0.0.1:${port}`;
  const cleanup = async () => {
    if (settings.keep) print(`kept ${LABEL[name]}'s ${made ? `database ${made.name} and ` : database ? '' : 'database and '}server.log in ${dir}`);
    else {
      await rm(dir, { recursive: true, force: true });
      if (made) await dropDatabase(made.name);
    }
  };
  try {
    await waitReady(child, url);
  } catch (err) {
    child.kill('SIGKILL');
    const tail = (await readFile(logPath, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n');
    await cleanup();
    throw new Error(`${LABEL[name]} did not start: ${(err as Error).message}\n--- last log lines ---\n${tail}`);
  }
  return { name, url, pid: child.pid!, ...(database ? { db: database } : {}), stop: async () => (await stopChild(child), await cleanup()) };
}

async function waitReady(child: ChildProcess, url: string): Promise<void> {
  const deadline = Date.now() + settings.startTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited with ${child.exitCode ?? child.signalCode}`);
    const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no 200 from /healthz within ${settings.startTimeoutMs / 1000}s`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => (clearTimeout(kill), resolve()));
    child.kill('SIGTERM');
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------- load

export interface LoadSpec {
  url: string;
  connections: number;
  warmupSeconds: number;
  seconds: number;
  request: { method: string; path: string; headers?: Record<string, string>; body?: string };
  /** When set, each request's path is the next of these, round-robin across connections. */
  paths?: string[];
  /** During warm-up, keep the ids of up to this many created resources (from 201 bodies). */
  collectIds?: number;
  /** The server's pid, to report the CPU it used during the measured run. */
  serverPid?: number;
  /** Herald on PostgreSQL: its database's name, to report the CPU its backends used too. */
  serverDb?: string;
}

export interface RunSummary {
  requests: number;
  seconds: number;
  rps: number;
  /** Latency percentiles in ms (sub-millisecond resolution). */
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  errorSample?: string;
  /** Cores busy during the run: server, load generator, rest of the machine. */
  cpu: CpuShare;
}

export interface LoadOutput {
  warmup?: RunSummary;
  measured: RunSummary;
  ids: string[];
}

/**
 * Runs bench/load.ts in its own process against a server (its pid is in the spec, for CPU accounting).
 * Errors and non-2xx answers (warm-up or measured) are printed at once, loudly, under `label`.
 */
export async function runLoad(label: string, spec: LoadSpec): Promise<LoadOutput> {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', 'bench/load.ts', JSON.stringify(spec)], { cwd: ROOT, maxBuffer: 64 << 20 }, (err, out, errOut) =>
      err ? reject(new Error(`load generator failed: ${errOut || err.message}`)) : resolve(out),
    );
  });
  const output = JSON.parse(stdout) as LoadOutput;
  for (const [phase, r] of [['warm-up', output.warmup], ['measured', output.measured]] as const) {
    if (r && (r.errors > 0 || r.non2xx > 0)) {
      print(`!!! ${label} (${phase}): ${r.errors} errors (${r.timeouts} timeouts), ${r.non2xx} non-2xx of ${r.requests}; ` +
        `status codes ${JSON.stringify(r.statusCodes)}${r.errorSample ? `; first error: ${r.errorSample}` : ''}`);
    }
  }
  const other = output.measured.cpu.other;
  if (typeof other === 'number' && other > 0.25) {
    print(`!!! ${label}: other processes kept ${other.toFixed(2)} cores busy during this point; its figures are disturbed, re-run on a quiet machine`);
  }
  return output;
}

// ---------------------------------------------------------------- output

/** One line of a comparison table: one scenario at one concurrency, measured on each target. */
export interface Row {
  scenario: string;
  conc: number;
  results: Partial<Record<TargetName, RunSummary>>;
}

export interface Check {
  label: string;
  /** Herald/floor, or for an absolute goal (checkValue) how far the figure is on the good side of its limit (>= 1 passes). */
  ratio: number;
  min: number;
  pass: boolean;
  /** Absolute goals only: the measured figure and its limit. */
  value?: number;
  limit?: number;
}

export interface ScenarioResult {
  name: string;
  rows: Row[];
  checks: Check[];
}

/** What a scenario module receives. */
export interface Helpers {
  settings: typeof settings;
  startTarget: typeof startTarget;
  runLoad: typeof runLoad;
  print: (line: string) => void;
  /** Prints Herald vs floor as a table: scenario | conc | req/s p50 p99 per target | Herald/floor. */
  printTable: (rows: Row[]) => void;
  /** Herald/floor req/s of the row for (scenario, conc), compared with `min`; printed as PASS/FAIL. */
  check: (rows: Row[], scenario: string, conc: number, min: number) => Check;
  /** A goal on an absolute figure (ms, matches/s), printed as PASS/FAIL. */
  checkValue: typeof checkValue;
  /** Prints a plain table: the first column left-aligned, the others right-aligned. */
  printColumns: typeof printColumns;
}

export type Scenario = (h: Helpers) => Promise<ScenarioResult>;

export const print = (line: string) => process.stdout.write(line + '\n');

/** The middle item by `by` (the lower of the two middle ones for an even count); undefined when there is none. */
export function middle<T>(items: readonly T[], by: (item: T) => number): T | undefined {
  return [...items].sort((x, y) => by(x) - by(y))[Math.floor((items.length - 1) / 2)];
}

export function ratio(row: Row | undefined): number {
  const h = row?.results.herald?.rps;
  const f = row?.results.floor?.rps;
  return h !== undefined && f ? h / f : NaN;
}

export function printTable(rows: Row[]): void {
  const both = rows.some((r) => r.results.heraldPg) && rows.some((r) => r.results.herald);
  if (!rows.some((r) => r.results.heraldPg)) return printPair(rows);
  // Herald on each store beside the floor: ratios to the floor, and PostgreSQL ÷ SQLite.
  const names = (['herald', 'heraldPg', 'floor'] as TargetName[]).filter((n) => rows.some((r) => r.results[n]));
  const title: Record<TargetName, string> = { herald: 'SQLite', heraldPg: 'PostgreSQL', floor: 'floor' };
  const cells = (r: RunSummary | undefined) => (r ? [r.rps.toFixed(0), ms(r.p50), ms(r.p99)] : ['-', '-', '-']);
  const div = (a: RunSummary | undefined, b: RunSummary | undefined) => (a && b?.rps ? (a.rps / b.rps).toFixed(2) : '-');
  const hasFloor = names.includes('floor');
  const ratios: [string, TargetName, TargetName][] = [
    ...(hasFloor ? names.filter((n) => n !== 'floor').map((n): [string, TargetName, TargetName] => [`${title[n]}/floor`, n, 'floor']) : []),
    ...(both ? [['PostgreSQL/SQLite', 'heraldPg', 'herald'] as [string, TargetName, TargetName]] : []),
  ];
  printColumns(
    ['scenario', 'conc', ...names.flatMap((n) => [`${title[n]} req/s`, 'p50 ms', 'p99 ms']), ...ratios.map(([t]) => t)],
    rows.map((row) => [row.scenario, String(row.conc), ...names.flatMap((n) => cells(row.results[n])), ...ratios.map(([, a, b]) => div(row.results[a], row.results[b]))]),
  );
  print('cores busy while measured (server [+ its PostgreSQL backends] + load generator + rest of machine), and the server\'s CPU ms per request:');
  for (const row of rows) print(`  ${row.scenario} c${row.conc}: ${names.map((n) => `${title[n]} ${cpuLine(row.results[n])}`).join(', ')}`);
}

const fixed = (n: number | null | undefined) => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(2) : '?'); // NaN arrives as null

/** `server [+ db] + load + other` cores, and the server's (and its backends') CPU ms per request. */
function cpuLine(r: RunSummary | undefined): string {
  if (!r) return '-';
  const perReq = (cores: number) => (r.rps ? ms((cores * 1000) / r.rps) : '?');
  const db = r.cpu.db !== undefined ? ` + ${fixed(r.cpu.db)}` : '';
  const cost = r.cpu.db !== undefined ? `${perReq(r.cpu.server)} + ${perReq(r.cpu.db)} ms` : `${perReq(r.cpu.server)} ms`;
  return `${fixed(r.cpu.server)}${db} + ${fixed(r.cpu.load)} + ${fixed(r.cpu.other)} (${cost}/req)`;
}

/** Herald (SQLite) vs floor, as every scenario printed it before PostgreSQL. */
function printPair(rows: Row[]): void {
  const head = ['scenario', 'conc', 'Herald req/s', 'p50 ms', 'p99 ms', 'floor req/s', 'p50 ms', 'p99 ms', 'Herald/floor'];
  const cells = (r: RunSummary | undefined) => (r ? [r.rps.toFixed(0), ms(r.p50), ms(r.p99)] : ['-', '-', '-']);
  const body = rows.map((row) => [row.scenario, String(row.conc), ...cells(row.results.herald), ...cells(row.results.floor), ratio(row).toFixed(2)]);
  printColumns(head, body);
  print('cores busy while measured (server + load generator + rest of machine):');
  const cpu = (r: RunSummary | undefined) => (r ? `${fixed(r.cpu.server)} + ${fixed(r.cpu.load)} + ${fixed(r.cpu.other)}` : '-');
  for (const row of rows) print(`  ${row.scenario} c${row.conc}: Herald ${cpu(row.results.herald)}, floor ${cpu(row.results.floor)}`);
}

export function printColumns(head: string[], body: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cols: string[]) => cols.map((c, i) => (i < 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ');
  print(line(head));
  print(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const b of body) print(line(b));
}

/** `value` against `limit`: below it when `atMost` (a latency), else at least it (a rate). */
export function checkValue(label: string, value: number, limit: number, atMost: boolean, unit = ''): Check {
  const pass = atMost ? value < limit : value >= limit;
  const r = atMost ? limit / value : value / limit;
  const c: Check = { label, ratio: r, min: 1, pass, value, limit };
  const shown = Number.isNaN(value) ? 'n/a' : value >= 1000 ? Math.round(value).toLocaleString('en-US') : ms(value);
  print(`target: ${label}: ${shown}${unit} ${pass ? 'PASS' : 'FAIL'}`);
  return c;
}

/** A figure in ms; '-' for none (NaN arrives from bench/load.ts's JSON as null). */
export function ms(v: number | null | undefined): string {
  if (typeof v !== 'number' || Number.isNaN(v)) return '-';
  return v < 10 ? v.toFixed(2) : v.toFixed(1);
}

export function check(rows: Row[], scenario: string, conc: number, min: number): Check {
  const r = ratio(rows.find((row) => row.scenario === scenario && row.conc === conc));
  const c: Check = { label: `${scenario} at c${conc} >= ${Math.round(min * 100)}% of floor`, ratio: r, min, pass: r >= min };
  print(`target: ${c.label}: ${Number.isNaN(r) ? 'n/a' : r.toFixed(2)} ${c.pass ? 'PASS' : 'FAIL'}`);
  return c;
}
