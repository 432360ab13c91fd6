import { once } from 'node:events';
import { type IncomingHttpHeaders, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Received {
  at: number;
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
  text: string;
  /** Who sent it, as `options.sender` named the connection (several Herald processes: which one). */
  from?: string;
}

/** Every attempt, answered with whatever status: when it arrived and was answered, and by whom. */
export interface Attempt extends Received {
  status: number;
  /** When the answer was sent (epoch ms). */
  answeredAt?: number;
}

export interface ReceiverOptions {
  /** Names the sender of each new connection (called once per connection, when it is accepted). */
  sender?: (socket: Socket) => string | undefined;
}

/**
 * A real rest-hook endpoint on loopback. It records every POST and answers with the status the
 * test sets (200 by default), after an optional delay.
 */
export interface Receiver {
  url: string;
  received: Received[];
  /** Every POST, failed ones included, in arrival order. */
  attempts: Attempt[];
  /** How many attempts were answered with a failure status (300 or more) so far. */
  failures(): number;
  /** Answer with this status from now on (e.g. 500 to fail, 200 to recover). */
  respond(status: number, delayMs?: number): void;
  /** Waits until `predicate` holds over what was received (or fails after `timeoutMs`). */
  waitFor(predicate: (r: Received[]) => boolean, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(options: ReceiverOptions = {}): Promise<Receiver> {
  const received: Received[] = [];
  const attempts: Attempt[] = [];
  const senders = new WeakMap<Socket, string | undefined>();
  let status = 200;
  let delay = 0;
  let failures = 0;
  const waiters = new Set<() => void>();
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      const answer = status;
      const wait = delay;
      const from = senders.get(req.socket);
      const r: Received = { at: Date.now(), path: req.url ?? '', headers: req.headers, body, text, ...(from !== undefined ? { from } : {}) };
      const attempt: Attempt = { ...r, status: answer };
      attempts.push(attempt);
      // Only successful deliveries count as received: a failed attempt will be retried.
      if (answer < 300) received.push(r);
      setTimeout(() => {
        attempt.answeredAt = Date.now();
        res.statusCode = answer;
        res.end();
        if (answer >= 300) failures++;
        for (const w of waiters) w();
      }, wait);
    });
  });
  if (options.sender) server.on('connection', (socket: Socket) => senders.set(socket, options.sender!(socket)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    attempts,
    failures: () => failures,
    respond(s, d = 0) {
      status = s;
      delay = d;
    },
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > deadline) throw new Error(`receiver: condition not met within ${timeoutMs} ms; got ${received.length} notifications`);
        await new Promise<void>((resolve) => {
          const done = () => {
            waiters.delete(done);
            resolve();
          };
          waiters.add(done);
          setTimeout(done, 50);
        });
      }
      return received;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
