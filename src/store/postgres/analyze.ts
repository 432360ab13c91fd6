/**
 * Table statistics for the planner. PostgreSQL gathers them in autovacuum, a minute or more after
 * a table fills (never when autovacuum is off); until then it plans as if each table held a row or
 * two, and a search over 10,000 freshly written Patients nested-looped over every pair of rows for
 * more than 10 s instead of taking a millisecond, and two `_has` conditions over 150 resources took
 * 8-18 s. So the store runs ANALYZE itself, in the background, once this node has written FIRST
 * versions, and again whenever it has written as many again as before the last run (at most every
 * MAX_STEP versions): a few runs while tables are young (each a few milliseconds then), rare ones
 * later. Several nodes each count their own writes.
 */
const FIRST = 50;
const MAX_STEP = 100_000;

/** The tables searches join (migration 1 and later), analyzed together. */
const TABLES = ['resources', 'resource_versions', 'sp_string', 'sp_token', 'sp_reference', 'sp_date', 'sp_number', 'sp_quantity', 'sp_uri', 'changes', 'subscription_events'];

export class Analyzer {
  #written = 0;
  #next = FIRST;
  #running: Promise<void> | undefined;

  constructor(
    private readonly run: (sql: string) => Promise<unknown>,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Counts committed versions; starts a run in the background when the next threshold is passed. */
  wrote(versions: number): void {
    this.#written += versions;
    if (this.#written < this.#next || this.#running) return;
    this.#next = this.#written + Math.min(this.#written, MAX_STEP);
    this.#running = this.run(`ANALYZE ${TABLES.join(', ')}`)
      .then(
        () => undefined,
        (err: Error) => this.onError(err),
      )
      .finally(() => (this.#running = undefined));
  }

  /** Waits for a run in progress (before the pool closes). */
  async idle(): Promise<void> {
    await this.#running;
  }
}
