/**
 * The load generator, run as its own process so it never shares the server's event loop:
 *   node --import tsx bench/load.ts '<LoadSpec as JSON>'
 * Runs a warm-up, then the measured run, and prints one LoadOutput as JSON on stdout.
 */
import autocannon from 'autocannon';
import type { Options, RequestStep } from 'autocannon';
import { measureCpu } from './cpu.ts';
import type { LoadOutput, LoadSpec, RunSummary } from './harness.ts';

/** Records every response time at full (sub-millisecond) resolution; autocannon's histogram keeps whole ms. */
async function runOnce(spec: LoadSpec, seconds: number, collectIds: number): Promise<{ summary: RunSummary; ids: string[] }> {
  const ids: string[] = [];
  const options: Options = {
    url: spec.url,
    connections: spec.connections,
    duration: seconds,
    timeout: 30,
    requests: [step(spec, ids, collectIds)],
  };
  const instance = autocannon(options);
  const times: number[] = [];
  let errorSample: string | undefined;
  instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => times.push(ms));
  instance.on('reqError', (err: Error) => (errorSample ??= err.message));
  const { value: result, cpu } = await measureCpu(spec.serverPid, async () => await instance, spec.serverDb);
  times.sort((a, b) => a - b);
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count]));
  const summary: RunSummary = {
    requests: result.requests.total,
    seconds: result.duration,
    rps: result.requests.total / result.duration,
    p50: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    ...(errorSample ? { errorSample } : {}),
    cpu,
  };
  return { summary, ids };
}

/** One request step: fixed, rotating through `paths`, and/or collecting created ids from 201 bodies. */
function step(spec: LoadSpec, ids: string[], collectIds: number): RequestStep {
  const { method, path, headers, body } = spec.request;
  const s: RequestStep = { method, path, headers, body };
  const paths = spec.paths;
  if (paths && paths.length > 0) {
    let next = 0;
    s.setupRequest = (request) => ({ ...request, path: paths[next++ % paths.length] });
  }
  if (collectIds > 0) {
    s.onResponse = (status, text) => {
      if (status === 201 && ids.length < collectIds) ids.push((JSON.parse(text) as { id: string }).id);
    };
  }
  return s;
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
  const warm = spec.warmupSeconds > 0 ? await runOnce(spec, spec.warmupSeconds, spec.collectIds ?? 0) : undefined;
  const measured = await runOnce(spec, spec.seconds, 0);
  const output: LoadOutput = { warmup: warm?.summary, measured: measured.summary, ids: warm?.ids ?? [] };
  process.stdout.write(JSON.stringify(output) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`load generator failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
