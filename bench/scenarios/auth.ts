/**
 * Auth (issue 13): what bearer-token checking costs. Two Heralds side by side, one in open mode and
 * one with the embedded issuer (HERALD_AUTH_CLIENTS); the latter's client gets one token from
 * `POST /auth/token` and sends it with every request, as a real client does until it expires.
 *
 * - Creates (`POST /fhir/R4/Patient`) at c16 on each, measured alternately (off, on, off, on) so that
 *   slow drift of the machine or the databases does not pass for the cost of auth.
 * - Write → rest-hook notification latency at a steady rate on each (the receiver is on loopback,
 *   which auth mode allows through HERALD_ENDPOINT_ALLOW).
 * - The cost of one uncached verification (jose, ES256), in this process: Herald verifies a token
 *   once and then remembers it by its exact text for up to 60 s, so the create figures show the
 *   cached path; this shows what a client sending a new token every time would add.
 *
 * Goal: auth on keeps at least 90% of the create rate of auth off (token checking < 10%).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import { request } from 'undici';
import { TokenVerifier } from '../../src/auth/index.ts';
import { ms, type Check, type Helpers, type Row, type RunSummary, type ScenarioResult } from '../harness.ts';
import { startReceiver, type Receiver } from '../receiver.ts';
import { PATIENT } from './crud.ts';
import { type Pct, pct, setup, summary } from './subscriptions.ts';

const BASE = '/fhir/R4';
const CONC = 16;
const ROUNDS = 3;
/** Writes per second in the latency runs. */
const RATE = 100;
const GOAL = 0.9;
const SECRET = 'bench-secret-0123456789';
const JSON_TYPE = { 'content-type': 'application/fhir+json' };

const withAuth = (dir: string) => {
  const clients = join(dir, 'clients.json');
  writeFileSync(clients, JSON.stringify({ clients: [{ id: 'bench', secret: SECRET, scope: 'system/*.cruds' }] }));
  return { HERALD_AUTH_CLIENTS: clients, HERALD_AUTH_TOKEN_TTL_S: '86400', HERALD_ENDPOINT_ALLOW: '127.0.0.1/32' };
};

export default async function auth(h: Helpers): Promise<ScenarioResult> {
  const { seconds, warmupSeconds } = h.settings;
  h.print('Herald, auth off and auth on (embedded issuer): starting');
  const off = await h.startTarget('herald');
  const on = await h.startTarget('herald', withAuth).catch(async (err: unknown) => (await off.stop(), Promise.reject(err)));
  const receiver = await startReceiver();
  const rows: Row[] = [];
  const latency: { label: string; l: Latency }[] = [];
  const rps: Record<'off' | 'on', number[]> = { off: [], on: [] };
  try {
    const token = await getToken(on.url);
    const headers = { off: JSON_TYPE, on: { ...JSON_TYPE, authorization: `Bearer ${token}` } };
    h.print(`  token from POST /auth/token: ${token.length} characters`);
    for (const [t, hd] of [[off, headers.off], [on, headers.on]] as const) await setup(`${t.url}${BASE}`, receiver, hd);
    h.print('  topic and rest-hook subscription active on both');

    const body = JSON.stringify(PATIENT);
    for (let round = 1; round <= ROUNDS; round++) {
      const row: Row = { scenario: `creates, round ${round}`, conc: CONC, results: {} };
      for (const [mode, t, slot] of [['off', off, 'floor'], ['on', on, 'herald']] as const) {
        const out = await h.runLoad(`auth ${mode} creates c${CONC}`, {
          url: t.url, connections: CONC, warmupSeconds, seconds, serverPid: t.pid,
          request: { method: 'POST', path: `${BASE}/Patient`, headers: headers[mode], body },
        });
        row.results[slot] = out.measured;
        rps[mode].push(out.measured.rps);
        h.print(`  round ${round}, auth ${mode}: ${out.measured.rps.toFixed(0)} creates/s, p50 ${ms(out.measured.p50)} ms`);
      }
      rows.push(row);
    }
    for (const [mode, t] of [['off', off], ['on', on]] as const) {
      const l = await paced(`${t.url}${BASE}`, receiver, headers[mode], RATE, seconds);
      latency.push({ label: `auth ${mode}`, l });
      h.print(`  delivery at ${RATE} writes/s, auth ${mode}: p50 ${ms(l.after201.p50)} ms after the 201 (${l.received}/${l.sent} notified)`);
    }
  } finally {
    await receiver.close();
    await on.stop();
    await off.stop();
  }
  const verify = await verifyCost(seconds);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

  h.print('');
  const cpuMs = (r: RunSummary) => (r.cpu.server / r.rps) * 1000;
  h.printColumns(
    ['Patient creates', 'conc', 'auth off req/s', 'p50 ms', 'p99 ms', 'CPU ms/create', 'auth on req/s', 'p50 ms', 'p99 ms', 'CPU ms/create', 'on ÷ off', 'cores busy elsewhere'],
    rows.map((r) => {
      const a = r.results.floor!;
      const b = r.results.herald!;
      return [r.scenario, String(r.conc), a.rps.toFixed(0), ms(a.p50), ms(a.p99), cpuMs(a).toFixed(3), b.rps.toFixed(0), ms(b.p50), ms(b.p99), cpuMs(b).toFixed(3), (b.rps / a.rps).toFixed(2), `${a.cpu.other.toFixed(2)} / ${b.cpu.other.toFixed(2)}`];
    }),
  );
  const cpuRatio = mean(rows.map((r) => cpuMs(r.results.herald!))) / mean(rows.map((r) => cpuMs(r.results.floor!)));
  h.print(`Herald's CPU time per create, auth on ÷ auth off: ${cpuRatio.toFixed(2)} (less disturbed by other processes than req/s)`);
  h.print('');
  h.print(`write → rest-hook notification at ${RATE} writes/s (ms after the create's 201)`);
  h.printColumns(
    ['delivery', 'notified', 'p50', 'p99', 'write p50', 'write p99'],
    latency.map(({ label, l }) => [label, `${l.received}/${l.sent}`, ms(l.after201.p50), ms(l.after201.p99), ms(l.write.p50), ms(l.write.p99)]),
  );
  h.print('');
  h.print(`one uncached token verification (jose, ES256, in the bench process): ${verify.perSecond.toFixed(0)}/s on one core, ${(1000 / verify.perSecond).toFixed(3)} ms each`);
  h.print('(Herald remembers a verified token by its exact text for up to 60 s: a client reusing its token pays this once a minute)');
  const ratio = mean(rps.on) / mean(rps.off);
  const checks: Check[] = [h.checkValue(`auth on ÷ auth off creates/s at c${CONC} (token checking < 10% of the create rate: >= ${GOAL})`, ratio, GOAL, false)];
  for (const { label, l } of latency) rows.push({ scenario: `rest-hook latency after 201, ${label}`, conc: RATE, results: { herald: summary(l.received, l.after201) } });
  return { name: 'auth', rows, checks };
}

async function getToken(url: string): Promise<string> {
  const res = await fetch(`${url}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`bench:${SECRET}`).toString('base64')}` },
    body: 'grant_type=client_credentials',
  });
  const body = (await res.json()) as { access_token?: string };
  if (res.status !== 200 || !body.access_token) throw new Error(`POST /auth/token answered ${res.status}: ${JSON.stringify(body)}`);
  return body.access_token;
}

interface Latency {
  sent: number;
  received: number;
  write: Pct;
  after201: Pct;
}

/** `rate` matching creates per second for `seconds` (open loop), then waits for their notifications. */
async function paced(base: string, receiver: Receiver, headers: Record<string, string>, rate: number, seconds: number): Promise<Latency> {
  const n = Math.max(1, Math.round(rate * seconds));
  const body = JSON.stringify({ ...PATIENT, identifier: [{ system: 'urn:bench', value: 'match' }] });
  const writes: { id: string; start: number; done: number }[] = [];
  let errors = 0;
  const write = async () => {
    const start = performance.now();
    const res = await request(`${base}/Patient`, { method: 'POST', headers, body });
    const done = performance.now();
    const text = await res.body.text();
    if (res.statusCode === 201) writes.push({ id: (JSON.parse(text) as { id: string }).id, start, done });
    else errors++;
  };
  const t0 = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(write().catch(() => void errors++));
  }
  await Promise.all(inflight);
  let seen = -1;
  for (let idle = 0; idle < 100 && writes.some((w) => !receiver.arrivals.hook.has(w.id)); ) {
    const now = receiver.arrivals.hook.size;
    idle = now === seen ? idle + 1 : 0;
    seen = now;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (errors > 0) process.stdout.write(`!!! auth latency on ${base}: ${errors} writes failed or were not 201\n`);
  const got = writes.filter((w) => receiver.arrivals.hook.has(w.id));
  return {
    sent: n,
    received: got.length,
    write: pct(writes.map((w) => w.done - w.start)),
    after201: pct(got.map((w) => receiver.arrivals.hook.get(w.id)! - w.done)),
  };
}

/** Verifications per second of distinct ES256 tokens (none cached), for up to `seconds`. */
async function verifyCost(seconds: number): Promise<{ perSecond: number }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' };
  const iss = 'https://bench.example';
  const verifier = new TokenVerifier([{ issuer: iss, audience: iss, keys: createLocalJWKSet({ keys: [jwk] }), algorithms: ['ES256'] }], 'herald/admin', () => new Date());
  const tokens = await Promise.all(
    Array.from({ length: 2000 }, (_, i) =>
      new SignJWT({ scope: 'system/*.cruds', n: i }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer(iss).setAudience(iss).setSubject('bench').setExpirationTime('1h').sign(privateKey),
    ),
  );
  const t0 = performance.now();
  let done = 0;
  for (const t of tokens) {
    await verifier.verify(t);
    done++;
    if (performance.now() - t0 > seconds * 1000) break;
  }
  return { perSecond: done / ((performance.now() - t0) / 1000) };
}
