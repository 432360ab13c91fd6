/**
 * Criteria that could not be evaluated (REQUIREMENTS D-20): a topic's FHIRPath that throws or
 * exceeds its budget, queryCriteria or a subscription filter that fails. The change does not
 * trigger and the write goes on; the fault is kept against the topic, shown to its subscribers
 * as an error of their SubscriptionStatus (`$status` and every notification), and logged at most
 * once per topic per minute (with how many were not logged meanwhile), so a topic that fails on
 * every write cannot flood the log. Faults live in memory: replacing or removing the topic, or a
 * restart, clears them.
 */

/** What is known of a topic's faults. */
export interface TopicFault {
  /** The element that failed last, e.g. `resourceTrigger[0].fhirPathCriteria`. */
  element: string;
  message: string;
  count: number;
  /** ISO instants of the first and the last fault. */
  first: string;
  last: string;
}

/** A criterion that failed for one change, naming the element that holds it. */
export class CriterionFault extends Error {
  constructor(
    readonly element: string,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/** Shortest interval between two log lines about one topic. */
const LOG_EVERY_MS = 60_000;

const warn = (text: string) => process.emitWarning(text, { code: 'HERALD_TOPIC_FAULT' });

export class TopicFaults {
  private readonly faults = new Map<string, TopicFault & { loggedAt: number; unlogged: number }>();

  constructor(
    /** The server's clock (epoch ms): the `first` and `last` instants shown in SubscriptionStatus. */
    private readonly now: () => number,
    private readonly log: (text: string) => void = warn,
    /** Elapsed time for the once-a-minute log limit: monotonic, so a clock step cannot silence it. */
    private readonly elapsed: () => number = () => performance.now(),
  ) {}

  record(topicUrl: string, err: unknown): void {
    const element = err instanceof CriterionFault ? err.element : 'resourceTrigger';
    const message = (err instanceof Error ? err.message : String(err)).slice(0, 300);
    const at = new Date(this.now()).toISOString();
    const now = this.elapsed();
    const f = this.faults.get(topicUrl) ?? { element, message, count: 0, first: at, last: at, loggedAt: -Infinity, unlogged: 0 };
    Object.assign(f, { element, message, last: at, count: f.count + 1 });
    this.faults.set(topicUrl, f);
    if (now - f.loggedAt < LOG_EVERY_MS) {
      f.unlogged++;
      return;
    }
    const more = f.unlogged > 0 ? ` (and ${f.unlogged} more since the last report)` : '';
    this.log(`topic ${topicUrl}: ${element} could not be evaluated, so the change did not trigger: ${message}${more}`);
    f.loggedAt = now;
    f.unlogged = 0;
  }

  of(topicUrl: string): TopicFault | undefined {
    const f = this.faults.get(topicUrl);
    return f && { element: f.element, message: f.message, count: f.count, first: f.first, last: f.last };
  }

  /** The faults of a topic as SubscriptionStatus errors (uncoded: the error codes are about delivery). */
  statusErrors(topicUrl: string): { text: string }[] {
    const f = this.of(topicUrl);
    if (!f) return [];
    const times = f.count === 1 ? `at ${f.last}` : `${f.count} times since ${f.first}, last at ${f.last}`;
    // Without the topic's URL: an `empty` notification leaves the topic out (SEC-7).
    return [{ text: `the topic's ${f.element} could not be evaluated ${times}; those changes did not trigger: ${f.message}` }];
  }

  clear(topicUrl: string): void {
    this.faults.delete(topicUrl);
  }
}
