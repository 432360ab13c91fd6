import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { call, useServer } from '../helpers/server.ts';
import { WebSocket } from 'ws';

/** A raw GET (node:http does not decompress), returning the headers and the bytes as sent. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const DECODE: Record<string, (b: Buffer) => Buffer> = { gzip: gunzipSync, deflate: inflateSync, br: brotliDecompressSync };

describe('compression (Accept-Encoding)', () => {
  const server = useServer();

  for (const encoding of ['gzip', 'deflate', 'br']) {
    it(`sends the R4 CapabilityStatement ${encoding}-encoded when asked, the same JSON once decoded`, async () => {
      const plain = await rawGet(`${server.fhir('R4')}/metadata`, { 'accept-encoding': 'identity' });
      assert.equal(plain.headers['content-encoding'], undefined);
      const packed = await rawGet(`${server.fhir('R4')}/metadata`, { 'accept-encoding': encoding });
      assert.equal(packed.status, 200);
      assert.equal(packed.headers['content-encoding'], encoding);
      assert.match(String(packed.headers.vary), /accept-encoding/i);
      assert.ok(packed.body.length * 5 < plain.body.length, `${encoding}: ${packed.body.length} bytes vs ${plain.body.length}`);
      const decoded = JSON.parse(DECODE[encoding]!(packed.body).toString('utf8'));
      const original = JSON.parse(plain.body.toString('utf8'));
      // The date is the only thing that may differ between two requests.
      assert.deepEqual({ ...decoded, date: undefined }, { ...original, date: undefined });
    });
  }

  it('prefers br when the client takes several; sends small answers and errors as they are', async () => {
    const packed = await rawGet(`${server.fhir('R4')}/metadata`, { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(packed.headers['content-encoding'], 'br');
    const small = await rawGet(`${server.url}/healthz`, { 'accept-encoding': 'gzip' });
    assert.equal(small.headers['content-encoding'], undefined);
    assert.deepEqual(JSON.parse(small.body.toString('utf8')), { status: 'ok' });
  });

  it('fetch (undici, which asks for compression by default) reads compressed answers transparently', async () => {
    const res = await call('GET', `${server.fhir('R5')}/metadata`, undefined, { 'accept-encoding': 'gzip, br' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-encoding'), 'br');
    assert.equal(res.body.resourceType, 'CapabilityStatement');
  });

  it('leaves the websocket alone: a client asking for compression still gets plain text frames', async () => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws`, { headers: { 'accept-encoding': 'gzip, br' } });
    try {
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      const frame = new Promise<{ data: Buffer; binary: boolean }>((resolve) => ws.once('message', (data: Buffer, binary) => resolve({ data, binary })));
      ws.send('{"type":"ping"}');
      const { data, binary } = await frame;
      assert.equal(binary, false);
      assert.deepEqual(JSON.parse(data.toString('utf8')), { type: 'pong' });
    } finally {
      ws.close();
    }
  });
});
