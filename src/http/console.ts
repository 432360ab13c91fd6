import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Auth } from '../auth/index.ts';

/**
 * The Herald console (issue 18): a page at /console that shows and drives topics, subscriptions
 * and live events through the FHIR API it documents. Its files (src/console: index.html, the
 * stylesheet and console.js, the committed esbuild bundle of src/console/app with the client
 * library) are public and read once at start; everything the page shows comes from FHIR calls
 * that carry the caller's token in auth mode. Nothing is fetched from outside: the
 * Content-Security-Policy allows only this origin.
 */
const FILES: Record<string, { name: string; type: string }> = {
  '': { name: 'index.html', type: 'text/html; charset=utf-8' },
  'console.js': { name: 'console.js', type: 'text/javascript; charset=utf-8' },
  'console.css': { name: 'console.css', type: 'text/css; charset=utf-8' },
};

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  // the FHIR API, /auth/token and the websocket of this origin (ws: spelled out for older engines)
  "connect-src 'self' ws: wss:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** What the page needs to know before its first FHIR call: the bases and how to log in. */
export interface ConsoleSettings {
  bases: { version: string; path: string }[];
  auth?: Auth;
}

export function mountConsole(app: FastifyInstance, settings: ConsoleSettings): void {
  const dir = new URL('../console/', import.meta.url);
  const bodies = new Map(Object.entries(FILES).map(([path, f]) => [path, { body: readFileSync(new URL(f.name, dir)), type: f.type }]));
  const config = JSON.stringify({
    bases: settings.bases,
    // 'off': open mode; 'bearer': paste a token; 'issuer': client credentials at /auth/token (or a token)
    auth: settings.auth ? (settings.auth.issuer ? 'issuer' : 'bearer') : 'off',
    tokenUrl: settings.auth?.issuer ? '/auth/token' : undefined,
  });
  const send = (reply: FastifyReply, body: Buffer | string, type: string) =>
    reply
      .header('content-type', type)
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .send(body);
  app.get('/console', async (_req, reply) => reply.redirect('/console/'));
  app.get('/console/config.json', async (_req, reply) => send(reply, config, 'application/json; charset=utf-8'));
  app.get<{ Params: { file: string } }>('/console/:file', async (req, reply) => {
    const file = bodies.get(req.params.file);
    if (!file) return reply.callNotFound();
    return send(reply, file.body, file.type);
  });
  app.get('/console/', async (_req, reply) => send(reply, bodies.get('')!.body, bodies.get('')!.type));
}
