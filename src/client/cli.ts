/**
 * The `herald` command line. bin/herald.js runs this with the `ws` package as the WebSocket
 * (Node 20 has no global one).
 *
 * `herald listen` prints the events of websocket Subscriptions as they happen:
 *
 *   herald listen --base http://127.0.0.1:8080/fhir/R4 --topic http://example.org/topics/patient-created
 *
 * Events go to stdout (one line each; `--json` for one JSON object per line), status and errors
 * to stderr. SIGINT/SIGTERM close the socket (and with `--ephemeral` delete the subscription it
 * created) and exit 0. `herald subscriptions` lists or deletes subscriptions (cli-subscriptions.ts).
 */
import { parseArgs } from 'node:util';
import { SUBSCRIPTIONS_USAGE, subscriptionsCommand } from './cli-subscriptions.ts';
import { createListener, type Listener } from './listener.ts';
import type { FetchLike, PayloadContent, SubscriptionEvent, WebSocketConstructor } from './types.ts';

export interface CliIo {
  WebSocket?: WebSocketConstructor;
  fetch?: FetchLike;
  stdout?: (line: string) => void;
  stderr?: (line: string) => void;
  /** Handle SIGINT/SIGTERM (default true). */
  signals?: boolean;
  /** Resolves when the CLI should stop, as a signal would (for embedding and tests). */
  stop?: Promise<unknown>;
}

export const USAGE = `Usage: herald <command> [options]

Commands:
  listen         Listen to FHIR topic-based Subscriptions over a websocket and print each event.
  subscriptions  List the Subscriptions on a FHIR base with their status and event counts, or delete them.

herald listen --base <fhir-base> (--topic <url> [--filter <f> ...] [--content <c>] | --id <subscription-id> ...)

Options:
  --base <url>         FHIR base, e.g. http://127.0.0.1:8080/fhir/R4 (R4, R4B or R5)
  --topic <url>        SubscriptionTopic canonical URL; reuses an active websocket Subscription
                       with the same topic, filters and content, or creates one
  --filter <f>         filter, repeatable (ANDed): 'Patient?identifier=x', 'Patient.identifier=x'
                       or 'identifier=x'
  --content <c>        payload content of a created subscription: empty | id-only | full-resource
                       (default id-only)
  --heartbeat <s>      heartbeat period (seconds) of a created subscription
  --no-reuse           always create a new subscription
  --ephemeral          create a new subscription and delete it when the listener stops
                       (without it, the listener says which subscription it leaves behind)
  --id <id>            listen to an existing websocket Subscription, repeatable
  --after <n>          start after event number n (for every subscription; missed events are
                       fetched with $events); default: a created subscription from its first
                       event, an existing one from now
  --header <h>         extra HTTP header for REST calls, repeatable: 'Authorization: Bearer x'
  --json               print one JSON object per event (default: one readable line)
  --bundle             with --json, include the whole notification Bundle
  --quiet              no status lines on stderr (errors are still printed)
  -h, --help           this help

Events are printed exactly once each, in event-number order per subscription; after a dropped
connection or a gap the missing events are fetched with $events before later ones.

${SUBSCRIPTIONS_USAGE}`;

const CONTENTS: readonly PayloadContent[] = ['empty', 'id-only', 'full-resource'];

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: string[], io: CliIo = {}): Promise<number> {
  const out = io.stdout ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = io.stderr ?? ((l: string) => process.stderr.write(`${l}\n`));
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    out(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'subscriptions') return subscriptionsCommand(rest, { out, err, usage: USAGE, ...(io.fetch ? { fetch: io.fetch } : {}) });
  if (command !== 'listen') {
    err(`herald: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }

  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        base: { type: 'string' },
        topic: { type: 'string' },
        filter: { type: 'string', multiple: true },
        content: { type: 'string' },
        heartbeat: { type: 'string' },
        'no-reuse': { type: 'boolean' },
        ephemeral: { type: 'boolean' },
        id: { type: 'string', multiple: true },
        after: { type: 'string' },
        header: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        bundle: { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    err(`herald: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    out(USAGE);
    return 0;
  }
  const usage = (msg: string) => {
    err(`herald: ${msg}\n\n${USAGE}`);
    return 2;
  };
  const base = values.base as string | undefined;
  const topic = values.topic as string | undefined;
  const ids = (values.id as string[] | undefined) ?? [];
  const content = values.content as string | undefined;
  if (!base) return usage('--base is required');
  if (!/^https?:\/\//.test(base)) return usage('--base must be an http(s) URL');
  if (!topic && ids.length === 0) return usage('give --topic or --id');
  if (topic && ids.length) return usage('give --topic or --id, not both');
  if (values.ephemeral && !topic) return usage('--ephemeral needs --topic: it deletes the subscription it creates');
  if (content !== undefined && !CONTENTS.includes(content as PayloadContent)) return usage(`--content must be one of ${CONTENTS.join(', ')}`);
  const heartbeat = values.heartbeat === undefined ? undefined : Number(values.heartbeat);
  if (heartbeat !== undefined && !(Number.isInteger(heartbeat) && heartbeat >= 0)) return usage('--heartbeat must be a whole number of seconds');
  const after = values.after === undefined ? undefined : Number(values.after);
  if (after !== undefined && !(Number.isInteger(after) && after >= 0)) return usage('--after must be a whole number');
  const headers: Record<string, string> = {};
  for (const h of (values.header as string[] | undefined) ?? []) {
    const colon = h.indexOf(':');
    if (colon <= 0) return usage(`--header '${h}' is not 'Name: value'`);
    headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }

  const json = values.json === true;
  const withBundle = values.bundle === true;
  const quiet = values.quiet === true;
  const baseUrl = base.replace(/\/+$/, '');

  let listener: Listener;
  try {
    listener = createListener({
      baseUrl,
      ...(topic ? { topic, filters: (values.filter as string[] | undefined) ?? [] } : { subscriptionIds: ids }),
      ...(content ? { content: content as PayloadContent } : {}),
      ...(heartbeat !== undefined ? { heartbeatPeriod: heartbeat } : {}),
      ...(values['no-reuse'] ? { reuse: false } : {}),
      ...(values.ephemeral ? { ephemeral: true } : {}),
      ...(after !== undefined && ids.length ? { resumeAfter: Object.fromEntries(ids.map((id) => [id, after])) } : {}),
      ...(Object.keys(headers).length ? { headers } : {}),
      ...(io.WebSocket ? { WebSocket: io.WebSocket } : {}),
      ...(io.fetch ? { fetch: io.fetch } : {}),
      onEvent: (e) => out(json ? JSON.stringify(jsonEvent(e, withBundle)) : humanEvent(e, baseUrl)),
      onStatus: (s) => {
        if (!quiet) err(`herald: ${s.message}`);
      },
      onError: (e) => err(`herald: error: ${e.message}`),
    });
  } catch (e) {
    err(`herald: ${(e as Error).message}`);
    return 1;
  }

  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    void listener.close();
  };
  const signals = io.signals !== false;
  // A second signal while stopping (e.g. --ephemeral's DELETE hanging on a dead server) exits at once.
  const onSignal = () => {
    if (!stopped) return stop();
    err('herald: second signal: exiting now');
    process.exit(1);
  };
  if (signals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  void io.stop?.then(stop);
  try {
    const ids = await listener.ready.catch(() => undefined);
    if (ids && !quiet) err(`herald: listening to ${ids.map((i) => `Subscription/${i}`).join(', ')} (Ctrl-C to stop)`);
    await listener.closed;
  } finally {
    if (signals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  // What stays on the server after we go: say so, whatever --quiet says, so that nothing is left unknowingly.
  const left = [...listener.subscriptionIds].filter((id) => !(values.ephemeral && id === listener.createdSubscriptionId));
  if (left.length) {
    const list = left.map((id) => `Subscription/${id}`).join(', ');
    err(`herald: left ${list} on ${baseUrl}: it keeps recording events (delete with: herald subscriptions --base ${baseUrl} --delete ${left.join(' --delete ')})`);
  }
  // Closed without being asked to: the listener could not start or lost every subscription.
  return stopped ? 0 : 1;
}

/** `2025-01-01T12:00:00Z  Subscription/abc  #3  create Patient/123` */
export function humanEvent(e: SubscriptionEvent, baseUrl: string): string {
  const short = (ref: string) => (ref.startsWith(`${baseUrl}/`) ? ref.slice(baseUrl.length + 1) : ref);
  const what = e.focus ? `${e.interaction ? `${e.interaction} ` : ''}${short(e.focus)}` : '(no focus: empty content)';
  const context = e.additionalContext.length ? `  (+ ${e.additionalContext.map(short).join(', ')})` : '';
  return `${e.timestamp ?? '-'}  Subscription/${e.subscriptionId}  #${e.eventNumber}  ${what}${context}`;
}

export function jsonEvent(e: SubscriptionEvent, withBundle: boolean): Record<string, unknown> {
  return {
    subscriptionId: e.subscriptionId,
    eventNumber: e.eventNumber,
    ...(e.timestamp ? { timestamp: e.timestamp } : {}),
    ...(e.topic ? { topic: e.topic } : {}),
    ...(e.focus ? { focus: e.focus } : {}),
    ...(e.interaction ? { interaction: e.interaction } : {}),
    ...(e.additionalContext.length ? { additionalContext: e.additionalContext } : {}),
    ...(e.resource ? { resource: e.resource } : {}),
    source: e.source,
    ...(withBundle ? { bundle: e.bundle } : {}),
  };
}
