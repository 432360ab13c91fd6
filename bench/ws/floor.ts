/**
 * The websocket floor: a bare `ws` server that broadcasts the same bytes Herald sends, with nothing
 * else around it. Any text frame from a socket "binds" it (answered with Herald's captured handshake
 * frame); any POST (the same Patient create request Herald gets) is answered 201 with a new UUID in
 * `location` (or with the id its `x-bench-id` header names, so several floors can send one event), and then the captured event frame, with that id in place of Herald's Patient id, goes
 * to every bound socket: one `Buffer` made once, `ws.send(buffer, { binary: false })` per socket, the
 * broadcast idiom of ws's README.
 *   node --import tsx bench/ws/floor.ts '<WsFloorSpec as JSON>'   → prints {"port":N} once listening
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { FLOOR_ID_HEADER, type WsFloorSpec } from './protocol.ts';

const spec = JSON.parse(process.argv[2] ?? '') as WsFloorSpec;
const handshake = Buffer.from(spec.handshake);
const bound = new Set<WebSocket>();

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  req.resume(); // the body is not looked at
  req.on('end', () => {
    const asked = req.headers[FLOOR_ID_HEADER];
    const id = typeof asked === 'string' && /^[A-Za-z0-9.-]{1,64}$/.test(asked) ? asked : randomUUID();
    const frame = Buffer.from(spec.event.replaceAll(spec.templateId, id));
    res.writeHead(201, { 'content-type': 'application/fhir+json', location: `/fhir/R4/Patient/${id}/_history/1` });
    res.end(`{"resourceType":"Patient","id":"${id}"}`);
    for (const ws of bound) ws.send(frame, { binary: false });
  });
});
server.keepAliveTimeout = 60_000;

const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false, maxPayload: 64 * 1024 });
wss.on('connection', (ws) => {
  ws.on('message', () => {
    bound.add(ws);
    ws.send(handshake, { binary: false });
  });
  ws.on('close', () => bound.delete(ws));
  ws.on('error', () => bound.delete(ws));
});

const stop = () => {
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.listen(0, '127.0.0.1', 4096, () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(JSON.stringify({ port }) + '\n');
});
