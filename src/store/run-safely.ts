/**
 * Runs work whose failure is only warned about: after-commit hooks (nothing may undo a commit, and
 * one failing hook must not keep the others from running) and the SQLite writer's own work around
 * its groups. Both stores use it.
 */
export function runSafely(fn: () => void, what = 'after-commit hook'): void {
  try {
    fn();
  } catch (err) {
    process.emitWarning(`${what} failed: ${(err as Error).message}`);
  }
}
