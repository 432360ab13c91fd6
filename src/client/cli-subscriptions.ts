/**
 * `herald subscriptions`: the Subscriptions on a FHIR base with their status and event counts
 * (from `$status`, REQUIREMENTS §7.1), or deletes some (`--delete <id>`) or all (`--all`) of them.
 * Useful after `herald listen` without `--ephemeral`, which leaves its subscription in place.
 */
import { parseArgs } from 'node:util';
import { parseNotification } from './notifications.ts';
import { FhirRestClient } from './rest.ts';
import { type SubscriptionSummary, summarizeSubscription } from './subscriptions.ts';
import type { FetchLike, Resource } from './types.ts';

export const SUBSCRIPTIONS_USAGE = `herald subscriptions --base <fhir-base> [--json] [--delete <id> ... | --all]

Options:
  --base <url>         FHIR base, e.g. http://127.0.0.1:8080/fhir/R4
  --delete <id>        delete this Subscription, repeatable
  --all                delete every Subscription listed on the base (all you may see)
  --header <h>         extra HTTP header for REST calls, repeatable: 'Authorization: Bearer x'
  --json               one JSON object per subscription instead of a table
Without --delete or --all it lists: id, status, events so far (from $status), channel, and the
topic (or the criteria of an R4 classic subscription); errors from $status follow on their own line, and
the next delivery attempt of a subscription in error.
`;

export interface SubscriptionsIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** The whole usage text, printed on bad usage. */
  usage: string;
  fetch?: FetchLike;
}

interface Row extends SubscriptionSummary {
  events?: number;
  errors: string[];
  nextAttempt?: string;
  delivered?: { through: number; at?: string };
}

/** Runs `herald subscriptions`; resolves with the exit code (0 done, 1 a request failed, 2 bad usage). */
export async function subscriptionsCommand(args: string[], io: SubscriptionsIo): Promise<number> {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        base: { type: 'string' },
        delete: { type: 'string', multiple: true },
        all: { type: 'boolean' },
        header: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.err(`herald: ${(e as Error).message}\n\n${io.usage}`);
    return 2;
  }
  if (values.help) {
    io.out(io.usage);
    return 0;
  }
  const usage = (msg: string) => {
    io.err(`herald: ${msg}\n\n${io.usage}`);
    return 2;
  };
  const base = values.base as string | undefined;
  const toDelete = (values.delete as string[] | undefined) ?? [];
  if (!base) return usage('--base is required');
  if (!/^https?:\/\//.test(base)) return usage('--base must be an http(s) URL');
  if (values.all && toDelete.length) return usage('give --delete or --all, not both');
  const headers: Record<string, string> = {};
  for (const h of (values.header as string[] | undefined) ?? []) {
    const colon = h.indexOf(':');
    if (colon <= 0) return usage(`--header '${h}' is not 'Name: value'`);
    headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }
  const rest = new FhirRestClient({ baseUrl: base, ...(io.fetch ? { fetch: io.fetch } : {}), headers });

  try {
    if (toDelete.length) return await remove(rest, toDelete, io);
    const rows = await list(rest, io);
    if (values.all) return await remove(rest, rows.map((r) => r.id), io);
    print(rows, values.json === true, io);
    return 0;
  } catch (e) {
    io.err(`herald: error: ${(e as Error).message}`);
    return 1;
  }
}

async function list(rest: FhirRestClient, io: SubscriptionsIo): Promise<Row[]> {
  const rows: Row[] = (await rest.listSubscriptions())
    .map(summarizeSubscription)
    .filter((s): s is SubscriptionSummary => s !== undefined)
    .map((s) => ({ ...s, errors: [] }));
  if (rows.length === 0) return rows;
  let statuses: Resource[] = [];
  try {
    statuses = await rest.statuses(rows.map((r) => r.id));
  } catch (e) {
    io.err(`herald: $status failed, so no event counts: ${(e as Error).message}`);
  }
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const resource of statuses) {
    try {
      const status = parseNotification({ resourceType: 'Bundle', entry: [{ resource }] });
      const row = byId.get(status.subscriptionId);
      if (!row) continue;
      if (status.status) row.status = status.status;
      if (status.eventsSinceSubscriptionStart !== undefined) row.events = status.eventsSinceSubscriptionStart;
      row.errors = status.errors;
      if (status.nextAttempt) row.nextAttempt = status.nextAttempt;
      if (status.delivered) row.delivered = status.delivered;
    } catch {
      // a status resource we cannot read: that row keeps what the Subscription itself says
    }
  }
  return rows;
}

async function remove(rest: FhirRestClient, ids: string[], io: SubscriptionsIo): Promise<number> {
  let failed = 0;
  for (const id of ids) {
    try {
      await rest.deleteSubscription(id);
      io.out(`deleted Subscription/${id}`);
    } catch (e) {
      failed++;
      io.err(`herald: error: could not delete Subscription/${id}: ${(e as Error).message}`);
    }
  }
  if (ids.length === 0) io.out('no subscriptions to delete');
  return failed ? 1 : 0;
}

function print(rows: Row[], json: boolean, io: SubscriptionsIo): void {
  if (json) {
    for (const r of rows) {
      io.out(
        JSON.stringify({
          id: r.id,
          status: r.status,
          ...(r.events !== undefined ? { events: r.events } : {}),
          channel: r.channelType,
          ...(r.topic ? { topic: r.topic } : {}),
          ...(r.criteria ? { criteria: r.criteria } : {}),
          ...(r.endpoint ? { endpoint: r.endpoint } : {}),
          content: r.content,
          ...(r.reason ? { reason: r.reason } : {}),
          ...(r.errors.length ? { errors: r.errors } : {}),
          ...(r.nextAttempt ? { nextAttempt: r.nextAttempt } : {}),
          ...(r.delivered ? { delivered: r.delivered } : {}),
        }),
      );
    }
    return;
  }
  if (rows.length === 0) {
    io.out('no subscriptions');
    return;
  }
  const table = [['ID', 'STATUS', 'EVENTS', 'CHANNEL', 'TOPIC OR CRITERIA'], ...rows.map((r) => [r.id, r.status ?? '-', r.events === undefined ? '-' : String(r.events), r.channelType ?? '-', r.topic ?? r.criteria ?? '-'])];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 2 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  io.out(line(table[0]!));
  for (const [i, r] of rows.entries()) {
    io.out(line(table[i + 1]!));
    for (const e of r.errors) io.out(`    error: ${e}`);
    if (r.nextAttempt) io.out(`    next attempt: ${r.nextAttempt}`);
  }
}
