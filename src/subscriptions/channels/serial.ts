/**
 * Runs `step` one call at a time: a kick while it runs makes it run once more afterwards, so work
 * that arrives mid-run is never missed and never done concurrently (which is what keeps a
 * subscription's notifications in eventNumber order). `idle()` resolves when no run is in flight,
 * so shutdown can wait for it before the store closes.
 */
export interface Serial {
  kick(): void;
  /** True while a run is in flight. */
  busy(): boolean;
  idle(): Promise<void>;
}

export function serial(step: () => Promise<void>, onError: (err: Error) => void, stopped: () => boolean = () => false): Serial {
  let running: Promise<void> | undefined;
  let again = false;
  return {
    kick() {
      if (stopped()) return;
      if (running) {
        again = true;
        return;
      }
      running = (async () => {
        try {
          do {
            again = false;
            await step();
          } while (again && !stopped());
        } catch (err) {
          onError(err as Error);
        } finally {
          running = undefined;
        }
      })();
    },
    busy: () => running !== undefined,
    idle: () => running ?? Promise.resolve(),
  };
}
