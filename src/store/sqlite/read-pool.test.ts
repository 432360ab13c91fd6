import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { until } from '../../../test/helpers/until.ts';
import { FhirError } from '../../fhir/errors.ts';
import { ReadPool, type ReadPoolOptions } from './read-pool.ts';

/** A pool whose reads block their thread until their gate opens (like a statement that cannot be interrupted). */
function gatedPool(options: Omit<ReadPoolOptions, 'path' | 'thread'>): ReadPool {
  return new ReadPool({ path: 'unused', thread: new URL('../../../test/fixtures/sleeping-read-thread.ts', import.meta.url), ...options });
}

const dir = mkdtempSync(join(tmpdir(), 'herald-read-pool-'));
const made: Gate[] = [];
after(() => {
  // A test that failed half-way may leave threads blocked on their gates: they would keep the
  // process from ever exiting. Open every gate a thread is reading.
  for (const g of made) {
    try {
      closeSync(openSync(g.path, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: nobody reads it
    }
  }
  rmSync(dir, { recursive: true, force: true });
});
let gates = 0;

/** Holds a read in its thread until opened (a FIFO; see the thread). Open it only once its read runs. */
class Gate {
  readonly path = join(dir, `gate-${++gates}`);
  constructor() {
    execFileSync('mkfifo', [this.path]);
    made.push(this);
  }
  /** Waits until a thread has taken the read and is about to block on the gate (see the thread). */
  async reading(): Promise<void> {
    await until(`a read thread to reach ${this.path}`, () => existsSync(`${this.path}.reading`));
  }
  /**
   * Waits for the thread to be reading the FIFO (before that, a non-blocking open fails with ENXIO).
   * A read that never starts (it failed while queued) never reads its gate: that fails the test
   * when until() gives up (20 s) instead of waiting for ever.
   */
  async open(): Promise<void> {
    const opened = () => {
      try {
        closeSync(openSync(this.path, constants.O_WRONLY | constants.O_NONBLOCK));
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err;
        return false;
      }
    };
    await until(`a read thread to be reading ${this.path}`, opened, { intervalMs: 5 });
  }
}

const read = (pool: ReadPool, gate?: Gate) => pool.run<string>('search', [gate?.path ?? null]);

function isFhirError(status: number, code: string) {
  return (err: unknown): true => {
    assert.ok(err instanceof FhirError, String(err));
    assert.equal(err.status, status);
    assert.equal(err.issues[0]?.code, code);
    return true;
  };
}

describe('read pool', () => {
  it('runs reads on at most `size` threads at once; the rest wait their turn', async () => {
    const pool = gatedPool({ size: 2, timeoutMs: 30_000 });
    const gates = [new Gate(), new Gate(), new Gate()];
    const reads = gates.map((g) => read(pool, g));
    await until('two reads running', () => pool.stats().busy === 2);
    assert.deepEqual(pool.stats(), { threads: 2, busy: 2, queued: 1, abandoned: 0, abandonedTotal: 0 });
    await gates[0]!.open();
    await gates[1]!.open();
    await until('the third read running, none queued', () => pool.stats().queued === 0 && pool.stats().busy === 1);
    await gates[2]!.open();
    assert.deepEqual(await Promise.all(reads), ['done', 'done', 'done']);
    await pool.close();
  });

  it('fails a read over its deadline with 422 too-costly, abandons its thread and starts another at once', async () => {
    // The deadline leaves a thread on a slow machine ample time to take the read before it is abandoned.
    const pool = gatedPool({ size: 1, timeoutMs: 1_000 });
    const costly = new Gate();
    await assert.rejects(read(pool, costly), isFhirError(422, 'too-costly'));
    await costly.reading();
    assert.deepEqual(pool.stats(), { threads: 1, busy: 0, queued: 0, abandoned: 1, abandonedTotal: 1 });
    // The next read runs on the new thread while the abandoned one is still inside its "statement".
    assert.equal(await read(pool), 'done');
    assert.equal(pool.stats().abandoned, 1);
    await costly.open();
    await until('the abandoned thread to end', () => pool.stats().abandoned === 0);
    assert.deepEqual(pool.stats(), { threads: 1, busy: 0, queued: 0, abandoned: 0, abandonedTotal: 1 });
    await pool.close();
  });

  it('gives a read that has waited already (for the search index) only what is left of the wait (issue 15)', async () => {
    const pool = gatedPool({ size: 1, timeoutMs: 30_000 });
    const busy = new Gate();
    const running = read(pool, busy);
    await until('the read running', () => pool.stats().busy === 1);
    // 30 s is the pool's wait; this read has 200 ms of it left, so it gives up long before the test's timeout.
    await assert.rejects(pool.run('search', [null], 200), isFhirError(503, 'transient'));
    assert.equal(pool.stats().queued, 0);
    await busy.open();
    assert.equal(await running, 'done');
    await pool.close();
  });

  it('fails a read that waits past its deadline for a busy thread with 503 transient (waiting for a thread to start does not count)', async () => {
    // The margins are wide (CI machines are slow and shared): the second read starts about 1.5 s
    // into its 4 s wait, and its gate opens as soon as the third fails, 2.5 s before its own 4 s run ends.
    const pool = gatedPool({ size: 1, timeoutMs: 4_000 });
    const [a, b] = [new Gate(), new Gate()];
    // The first read waits for the thread to start (longer than the deadline on a busy machine): no 503 for that.
    const first = read(pool, a);
    await until('the first read running', () => pool.stats().busy === 1);
    const second = read(pool, b);
    const third = read(pool);
    // Each of the first two runs within its deadline, but the third waits for both.
    await sleep(1_500);
    await a.open();
    await assert.rejects(third, isFhirError(503, 'transient'));
    await b.open();
    assert.deepEqual(await Promise.all([first, second]), ['done', 'done']);
    await pool.close();
  });

  it('bounds live and abandoned threads together: at the bound an overrun thread is replaced only once an abandoned one ends', async () => {
    const pool = gatedPool({ size: 1, timeoutMs: 1_000, maxAbandoned: 1 });
    const [first, second] = [new Gate(), new Gate()];
    await assert.rejects(read(pool, first), isFhirError(422, 'too-costly'));
    await assert.rejects(read(pool, second), isFhirError(422, 'too-costly'));
    await Promise.all([first.reading(), second.reading()]);
    assert.deepEqual(pool.stats(), { threads: 0, busy: 0, queued: 0, abandoned: 2, abandonedTotal: 2 });
    // No thread to run it: the pool is busy for as long as the abandoned threads run.
    await assert.rejects(read(pool), isFhirError(503, 'transient'));
    await first.open();
    await until('one of the abandoned threads to end', () => pool.stats().abandoned === 1);
    assert.equal(await read(pool), 'done');
    await second.open();
    await until('the other abandoned thread to end', () => pool.stats().abandoned === 0);
    await pool.close();
  });

  it('fails what is queued or running when closed, without waiting for a running statement', async () => {
    const pool = gatedPool({ size: 1, timeoutMs: 30_000 });
    const gate = new Gate();
    const running = read(pool, gate);
    const queued = read(pool);
    await until('the read running', () => pool.stats().busy === 1);
    // Closed before the thread took the read, the thread would stop without ever reading its gate.
    await gate.reading();
    await pool.close();
    await assert.rejects(running, isFhirError(503, 'transient'));
    await assert.rejects(queued, isFhirError(503, 'transient'));
    await assert.rejects(read(pool), isFhirError(503, 'transient'));
    await gate.open();
  });
});
