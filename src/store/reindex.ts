import { setTimeout as sleep } from 'node:timers/promises';
import type { FhirVersion, Resource } from '../fhir/types.ts';
import type { IndexRows } from '../search/types.ts';
import type { IndexBuild, IndexReplacement, IndexState, Store } from './store.ts';

/**
 * Rebuilds a FHIR version's search index from the stored bodies, when what is stored was built
 * otherwise than this Herald would build it: by an older extraction (INDEX_GENERATION, bumped by
 * any change to what extraction yields) or against another base URL (absolute references into the
 * server are indexed as `Type/id`). Without it, a fix to extraction would reach only resources
 * written after the upgrade, and search would disagree with the subscription matcher, which
 * extracts afresh, on everything older.
 *
 * The rebuild runs in the background while the server serves: a page of current versions is read
 * in (type, id) order, each body extracted on the event loop outside any transaction, and the
 * page's rows replace the old ones in one transaction that also records how far it got, so a
 * restart resumes there. A row set is written only if its version is still the current one (a
 * write since has indexed itself with this Herald's extraction). Until it ends, searches see old
 * rows for resources not reached yet: right for everything the extraction change did not touch.
 *
 * Several nodes on one database may run it at once: each page's transaction first checks that the
 * progress it read is still what is stored (compare and set), so two nodes never write the same
 * page twice in a row; the one that loses re-reads where the other got to and goes on from there.
 * A node older than the stored build leaves the index alone (a rolling upgrade must not undo it).
 * When only the base URL changed, only bodies that name either base are extracted (namesEither).
 */
export interface RebuildOptions {
  store: Store;
  fv: FhirVersion;
  /** What this Herald builds. */
  target: IndexBuild;
  /** The index rows a write of this resource stores (SubscriptionEngine.indexRows): the same function. */
  indexOf: (resource: Resource) => IndexRows;
  log: { info(fields: object, message: string): void; warn(fields: object, message: string): void };
  /** Resources per transaction (default 200). */
  batch?: number;
  /** Aborted: the rebuild stops after the page under way (a later start resumes it). */
  signal?: AbortSignal;
}

/** Milliseconds between a rebuild's progress lines. */
const PROGRESS_MS = 10_000;

export type RebuildOutcome =
  /** The stored index was built as this Herald builds it: nothing done. */
  | 'current'
  /** A newer Herald built (or is building) it: left alone. */
  | 'newer'
  /** Rebuilt, by this process or, for some pages, by another. */
  | 'rebuilt'
  /** Another process went on to build it otherwise (another base URL): this one stopped. */
  | 'superseded'
  | 'stopped';

/** Whether an index in `state` is what `target` builds, newer, or to be rebuilt. */
export function verdict(state: IndexState, target: IndexBuild): 'current' | 'newer' | 'rebuild' {
  if ((state.building?.generation ?? -1) > target.generation || (state.built?.generation ?? -1) > target.generation) return 'newer';
  if (state.building === undefined && state.built && same(state.built, target)) return 'current';
  return 'rebuild';
}

export async function rebuildIndex(options: RebuildOptions): Promise<RebuildOutcome> {
  const { store, fv, target, indexOf, log } = options;
  const batch = options.batch ?? 200;
  let state = await store.indexState(fv);
  const first = verdict(state, target);
  if (first === 'newer') {
    log.warn({ stored: state.built ?? state.building, this: target }, 'the search index was built by a newer Herald: left as it is');
    return 'newer';
  }
  if (first === 'current') return 'current';
  const started = performance.now();
  let reported = started;
  let done = 0;
  let extracted = 0;
  log.info({ from: state.built ?? null, to: target, resumes: state.building && same(state.building, target) ? state.building.after ?? null : null }, 'rebuilding the search index');
  for (;;) {
    if (options.signal?.aborted) return 'stopped';
    // Where to go on from: this build's progress, or the start (recorded by the first page).
    const ours = state.building && same(state.building, target) ? state.building : undefined;
    const after = ours?.after;
    // Everything is extracted unless only the base URL changed since a complete build: a build for
    // another target left part-way holds rows of neither, so one that starts over it (and its
    // resumes: `full` is recorded) extracts everything.
    const full = ours ? ours.full === true : state.building !== undefined || state.built === undefined || state.built.generation !== target.generation;
    const affected = full || state.built === undefined ? () => true : namesEither(state.built.base, target.base);
    const page = await store.currentVersions(fv, after, batch);
    const entries: IndexReplacement[] = [];
    for (const v of page) {
      if (!affected(v.json!)) continue;
      try {
        entries.push({ type: v.type, id: v.id, versionId: v.versionId, index: indexOf(JSON.parse(v.json!) as Resource) });
      } catch (err) {
        // Over the index row limit (a limit lowered since it was written): it keeps its old rows.
        log.warn({ type: v.type, id: v.id, err }, 'a resource could not be indexed again: it keeps its rows');
      }
    }
    const last = page[page.length - 1];
    const next: IndexState =
      page.length < batch || !last
        ? { built: target }
        : { ...(state.built ? { built: state.built } : {}), building: { ...target, after: { type: last.type, id: last.id }, ...(full ? { full: true as const } : {}) } };
    const seen = state;
    const since = performance.now();
    const wrote = await store.transaction(async (tx) => {
      const now = await tx.indexState(fv);
      if (!sameState(now, seen)) return now;
      await tx.replaceIndex(fv, entries);
      await tx.setIndexState(fv, next);
      return undefined;
    });
    if (wrote === undefined) {
      done += page.length;
      extracted += entries.length;
      state = next;
    } else {
      // Another process moved the build on (or built it otherwise): go on from what it stored.
      state = wrote;
      const now = verdict(state, target);
      if (now === 'newer') return 'newer';
      if (now === 'current') return 'rebuilt';
      if (state.building && !same(state.building, target)) {
        log.warn({ stored: state.building, this: target }, 'another Herald is rebuilding the search index for another base URL: this one stops');
        return 'superseded';
      }
    }
    if (state.building === undefined && state.built && same(state.built, target)) {
      log.info({ resources: done, extracted, ms: Math.round(performance.now() - started) }, 'search index rebuilt');
      return 'rebuilt';
    }
    if (performance.now() - reported >= PROGRESS_MS) {
      reported = performance.now();
      log.info({ resources: done, extracted, at: state.building?.after ?? null }, 'rebuilding the search index');
    }
    // Live traffic goes first: after each page the rebuild waits as long as the page's transaction
    // took (its rows and its commit: on SQLite they are written in the page's own job), so it takes
    // at most about half of the writer while requests wait behind it.
    await sleep(Math.min(1000, performance.now() - since), undefined, options.signal ? { signal: options.signal } : {}).catch(() => undefined);
  }
}

/**
 * rebuildIndex until it ends: a failure (the database away, a read past its deadline) is logged
 * and the rebuild tried again, from where it got to, after a pause that doubles from `retryMs`
 * (default 1 s) up to a minute; undefined once the signal stops it.
 */
export async function keepRebuilding(options: RebuildOptions & { retryMs?: number; log: { error(fields: object, message: string): void } }): Promise<RebuildOutcome | undefined> {
  for (let attempt = 0; !options.signal?.aborted; attempt++) {
    try {
      return await rebuildIndex(options);
    } catch (err) {
      const ms = Math.min(60_000, (options.retryMs ?? 1000) * 2 ** attempt);
      options.log.error({ err, retryInMs: ms }, 'rebuilding the search index failed: it goes on from where it got to');
      await sleep(ms, undefined, options.signal ? { signal: options.signal } : {}).catch(() => undefined);
    }
  }
  return undefined;
}

/**
 * The stored bodies a rebuild must extract again when only the base URL changed: only a body that
 * names either base can yield other rows (extraction compares references with `${base}/` as
 * written, and stores write bodies with JSON.stringify, which leaves URLs unescaped). The others
 * are read and passed over, so a server started on another port without HERALD_BASE_URL scans its
 * data once and writes almost nothing.
 */
function namesEither(from: string, to: string): (json: string) => boolean {
  const [a, b] = [`${from}/`, `${to}/`];
  return (json) => json.includes(a) || json.includes(b);
}

function same(a: IndexBuild, b: IndexBuild): boolean {
  return a.generation === b.generation && a.base === b.base;
}

function sameState(a: IndexState, b: IndexState): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
