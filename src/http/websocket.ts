import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Dialect, WebsocketHub } from '../subscriptions/index.ts';
import type { BrowserGuard } from './browser.ts';

export interface WebsocketOptions {
  hub: WebsocketHub;
  /**
   * Path of the endpoint (D-4: `/ws`). The same endpoint answers on `{path}/subscriptions-r4` too,
   * the path `@medplum/core`'s client opens, and writes notifications there in its shape (issue 17).
   */
  path: string;
  /** Protocol ping interval; a peer that has not answered the previous ping is dropped (D-1). */
  pingIntervalMs: number;
  /** Open websockets in total (beyond: 503) and from one remote address (beyond: 429). */
  maxConnections: number;
  maxConnectionsPerAddress: number;
}

/**
 * The websocket edge: upgrades on the endpoint's path, adapts each `ws` socket to a hub session,
 * and keeps connections honest with protocol-level ping/pong. Frames are text; a client's frame
 * is at most 64 KiB (a bind message is tiny).
 */
export function attachWebsocket(
  server: { on(event: 'upgrade', fn: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): unknown },
  options: WebsocketOptions,
  browser: BrowserGuard,
) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const alive = new WeakMap<WebSocket, boolean>();
  const dialects = new Map<string, Dialect>([
    [options.path, 'ig'],
    [`${options.path}/subscriptions-r4`, 'medplum'],
  ]);
  // Sockets counted from the upgrade on (an upgrade in progress holds its place) until they close.
  let open = 0;
  const perAddress = new Map<string, number>();

  server.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '').split('?')[0];
    const dialect = dialects.get(path ?? '');
    // Not a websocket endpoint (a typo under /ws, or any other path): the 404 OperationOutcome
    // an HTTP request there gets, instead of an empty answer a client can only guess at.
    if (!dialect) return refuse(socket, 404, 'Not Found', `No websocket endpoint at ${(path ?? '').slice(0, 200)}: the endpoints are ${[...dialects.keys()].join(' and ')}`, 'not-found');
    // DNS rebinding and pages of other sites (issue 13): the same Host rule as HTTP, and Origin.
    if (!browser.hostAllowed(req.headers.host)) return refuse(socket, 421, 'Misdirected Request', `This server does not answer for the host '${String(req.headers.host ?? '').slice(0, 100)}'`);
    if (!browser.originAllowed(req.headers.origin)) return refuse(socket, 403, 'Forbidden', `Pages from ${String(req.headers.origin).slice(0, 100)} may not connect`);
    // Issue 14: bounded sockets, so that one client (or all together) cannot exhaust memory or descriptors.
    const address = req.socket.remoteAddress ?? 'unknown';
    if (open >= options.maxConnections) {
      return refuse(socket, 503, 'Service Unavailable', `This server has its maximum of ${options.maxConnections} websocket connections (HERALD_WS_MAX_CONNECTIONS): try again later`, 'throttled', { 'Retry-After': '10' });
    }
    if ((perAddress.get(address) ?? 0) >= options.maxConnectionsPerAddress) {
      return refuse(socket, 429, 'Too Many Requests', `Your address has its maximum of ${options.maxConnectionsPerAddress} websocket connections (HERALD_WS_MAX_CONNECTIONS_PER_ADDRESS): bind several subscriptions on one socket, or close some`, 'throttled', { 'Retry-After': '10' });
    }
    open += 1;
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    let counted = true;
    const release = () => {
      if (!counted) return;
      counted = false;
      open -= 1;
      const n = (perAddress.get(address) ?? 1) - 1;
      if (n > 0) perAddress.set(address, n);
      else perAddress.delete(address);
    };
    // Whether the upgrade succeeds or fails, the place is given back when the socket closes.
    socket.once('close', release);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, dialect, socket));
  });

  function refuse(socket: Duplex, status: number, reason: string, diagnostics: string, code = 'security', headers: Record<string, string> = {}): void {
    const body = JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] });
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\n${extra}Content-Type: application/fhir+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }

  wss.on('connection', (ws: WebSocket, dialect: Dialect, socket: Duplex) => {
    alive.set(ws, true);
    const session = options.hub.open(
      {
        send: (text) => ws.send(text, { binary: false }),
        // ws writes each frame with a cork of its own; an outer one makes several frames one write.
        corked: (fn) => {
          socket.cork();
          try {
            fn();
          } finally {
            socket.uncork();
          }
        },
        buffered: () => ws.bufferedAmount,
        close: (code, reason) => ws.close(code, reason),
      },
      dialect,
    );
    ws.on('pong', () => alive.set(ws, true));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return session.deliver('{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"Send text frames"}]}');
      void session.message(data.toString()).catch(() => undefined);
    });
    ws.on('close', () => session.close());
    ws.on('error', () => session.close());
  });

  const pinger = setInterval(() => {
    for (const ws of wss.clients) {
      if (alive.get(ws) === false) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, options.pingIntervalMs);
  pinger.unref();

  return {
    close(): Promise<void> {
      clearInterval(pinger);
      for (const ws of wss.clients) ws.close(1001, 'Server shutting down');
      return new Promise((resolve) => wss.close(() => resolve()));
    },
  };
}
