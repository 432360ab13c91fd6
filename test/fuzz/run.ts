import fc from 'fast-check';
import { KNOWN_OPEN, startHarness } from './harness.ts';
import { PROPERTIES } from './properties.ts';

/**
 * `npm run fuzz`: the fuzz properties, long and with a random seed (FUZZ_SEED to replay one,
 * FUZZ_RUNS for runs per unit of weight, FUZZ_ONLY to pick properties by name). Prints the seed
 * and, for each failing property, its shrunk counterexample; exits 1 if any failed.
 */
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : (Date.now() ^ (Math.random() * 0x100000000)) >>> 0;
const runs = Number(process.env.FUZZ_RUNS ?? 500);
const only = process.env.FUZZ_ONLY?.toLowerCase();

console.log(`fuzz: FUZZ_SEED=${seed} FUZZ_RUNS=${runs}${only ? ` FUZZ_ONLY=${only}` : ''}`);
const h = await startHarness();
let failed = 0;
try {
  for (const p of PROPERTIES) {
    if (only && !p.name.toLowerCase().includes(only)) continue;
    const started = Date.now();
    const details = await fc.check(p.property(h), { seed, numRuns: p.weight * runs, includeErrorInReport: true }).catch((err: Error) => err);
    if (details instanceof Error || details.failed) {
      failed++;
      console.log(`\n✗ ${p.name}\n${details instanceof Error ? details.stack : fc.defaultReportMessage(details)}\n`);
    } else console.log(`✓ ${p.name}: ${details.numRuns} runs in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  await h.assertHealthyAndDelivering();
  console.log('✓ the server is healthy and delivering');
} catch (err) {
  failed++;
  console.log(`\n✗ after fuzzing: ${(err as Error).message}`);
} finally {
  for (const [key, n] of h.knownHits) console.log(`known open, tolerated (${KNOWN_OPEN[key]!.issue}): met ${n} times`);
  await h.close();
}
console.log(`\nfuzz: ${failed ? `${failed} failed` : 'all passed'}; replay with FUZZ_SEED=${seed} npm run fuzz`);
process.exitCode = failed ? 1 : 0;
