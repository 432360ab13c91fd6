/**
 * A rest-hook receiver for the subscriptions scenario: an HTTP server on loopback in the bench
 * process that answers 200 at once and records, per focus resource, when its notification arrived
 * (performance.now(), the clock the writer uses too). `POST /hook` takes Herald's notification
 * Bundles (R4 backport shape: entry[0] a Parameters whose `notification-event` parts hold `focus`);
 * `POST /direct` takes the floor's copy, naming its resource in `x-bench-id`.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Receiver {
  /** e.g. http://127.0.0.1:40123 */
  url: string;
  /** Arrival time of the first notification naming each Patient id, by path (`/hook`, `/direct`). */
  arrivals: { hook: Map<string, number>; direct: Map<string, number> };
  /** Notification types seen on /hook, e.g. { handshake: 1, 'event-notification': 1000 }. */
  types: Record<string, number>;
  /** The body of the last event notification, to replay as the floor. */
  lastBody?: string;
  close(): Promise<void>;
}

interface Param {
  name?: string;
  valueCode?: string;
  valueReference?: { reference?: string };
  part?: Param[];
}

export async function startReceiver(): Promise<Receiver> {
  const r: Omit<Receiver, 'url' | 'close'> = { arrivals: { hook: new Map(), direct: new Map() }, types: {} };
  const server = createServer((req, res) => {
    const at = performance.now();
    void body(req).then((text) => {
      res.writeHead(200).end();
      if (req.url === '/direct') {
        const id = req.headers['x-bench-id'];
        if (typeof id === 'string' && !r.arrivals.direct.has(id)) r.arrivals.direct.set(id, at);
        return;
      }
      const { type, foci } = parse(text);
      r.types[type] = (r.types[type] ?? 0) + 1;
      if (type !== 'event-notification') return;
      r.lastBody = text;
      for (const ref of foci) {
        const id = /Patient\/([^/]+)/.exec(ref)?.[1];
        if (id && !r.arrivals.hook.has(id)) r.arrivals.hook.set(id, at);
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(r, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  });
}

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** The notification type and the focus references of an R4 notification Bundle. */
function parse(text: string): { type: string; foci: string[] } {
  try {
    const bundle = JSON.parse(text) as { entry?: { fullUrl?: string; resource?: { parameter?: Param[] } }[] };
    const params = bundle.entry?.[0]?.resource?.parameter ?? [];
    const type = params.find((p) => p.name === 'type')?.valueCode ?? 'unknown';
    const foci = params
      .filter((p) => p.name === 'notification-event')
      .flatMap((p) => p.part ?? [])
      .filter((p) => p.name === 'focus')
      .map((p) => p.valueReference?.reference ?? '');
    // Fall back on the focus entries' fullUrls (id-only) when the status lists no focus.
    if (foci.length === 0) foci.push(...(bundle.entry ?? []).slice(1).map((e) => e.fullUrl ?? ''));
    return { type, foci };
  } catch {
    return { type: 'unparsable', foci: [] };
  }
}
