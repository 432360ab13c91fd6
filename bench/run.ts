/**
 * `npm run bench`: runs each scenario in bench/scenarios/, prints its table and its goals, and writes
 * everything to .bench/results.json. Exits 0 even when a goal fails; non-zero only if something crashed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { check, checkValue, chooseStores, print, printColumns, printTable, ROOT, runLoad, settings, startTarget, type Helpers, type Scenario, type ScenarioResult } from './harness.ts';

/** Every scenario, by name; `BENCH_ONLY=crud,…` picks some. Add a module and a line here. */
const SCENARIOS: Record<string, () => Promise<{ default: Scenario }>> = {
  crud: () => import('./scenarios/crud.ts'),
  search: () => import('./scenarios/search.ts'),
  subscriptions: () => import('./scenarios/subscriptions.ts'),
  websocket: () => import('./scenarios/websocket.ts'),
  isolation: () => import('./scenarios/isolation.ts'),
  eventpath: () => import('./scenarios/eventpath.ts'),
  auth: () => import('./scenarios/auth.ts'),
  nodes: () => import('./scenarios/nodes.ts'),
  'fanout-nodes': () => import('./scenarios/fanout-nodes.ts'),
};

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
  const unknown = only?.filter((n) => !(n in SCENARIOS)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  const names = only ?? Object.keys(SCENARIOS);

  const machine = { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, platform: process.platform };
  print(`bench: ${names.join(', ')}; ${settings.warmupSeconds}s warm-up + ${settings.seconds}s measured per point; ` +
    `concurrency ${settings.concurrency.join(',')}; ${machine.cpus} CPUs (${machine.cpuModel}), node ${machine.node}`);
  const stores = await chooseStores();
  print(`Herald's stores: ${stores.join(', ')} (BENCH_STORES)`);
  if (machine.cpus <= 2) print('note: load generator and server share the CPUs; figures are lower bounds on a bigger machine.');

  const helpers: Helpers = { settings, startTarget, runLoad, print, printTable, check, checkValue, printColumns };
  const results: ScenarioResult[] = [];
  for (const name of names) {
    print(`\n== ${name}`);
    const scenario = (await SCENARIOS[name]!()).default;
    results.push(await scenario(helpers));
  }

  const failed = results.flatMap((r) => r.rows).flatMap((row) =>
    Object.entries(row.results)
      .filter(([, r]) => r && (r.errors > 0 || r.non2xx > 0))
      .map(([target, r]) => `${row.scenario} c${row.conc} ${target}: ${r!.errors} errors, ${r!.non2xx} non-2xx`),
  );
  if (failed.length > 0) {
    print(`\n!!! THIS RUN HAD ERRORS OR NON-2xx RESPONSES; its figures are not trustworthy:\n!!!   ${failed.join('\n!!!   ')}`);
  }

  const dir = join(ROOT, '.bench');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'results.json');
  await writeFile(file, JSON.stringify({ date: new Date().toISOString(), machine, settings, scenarios: results }, null, 2) + '\n');
  print(`\nresults: ${file}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench crashed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
