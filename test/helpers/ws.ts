import { WebSocket } from 'ws';

/** A real websocket client that records every text frame it receives. */
export interface WsClient {
  ws: WebSocket;
  frames: any[];
  send(text: string | object): void;
  /** Waits for a frame (received since `from`, default: any time) matching the predicate. */
  next(predicate: (frame: any) => boolean, timeoutMs?: number): Promise<any>;
  waitCount(predicate: (frame: any) => boolean, n: number, timeoutMs?: number): Promise<any[]>;
  close(): Promise<void>;
}

export async function connectWs(url: string, options: { paused?: boolean } = {}): Promise<WsClient> {
  const ws = new WebSocket(url);
  const frames: any[] = [];
  ws.on('message', (data) => {
    const text = data.toString();
    try {
      frames.push(JSON.parse(text));
    } catch {
      frames.push(text);
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  if (options.paused) ws.pause();
  const waitCount = async (predicate: (f: any) => boolean, n: number, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = frames.filter(predicate);
      if (found.length >= n) return found;
      if (Date.now() > deadline) throw new Error(`websocket: ${found.length}/${n} matching frames within ${timeoutMs} ms (${frames.length} frames)`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return {
    ws,
    frames,
    send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)),
    next: async (predicate, timeoutMs) => (await waitCount(predicate, 1, timeoutMs))[0],
    waitCount,
    close: () =>
      new Promise<void>((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        ws.once('close', () => resolve());
        ws.close();
      }),
  };
}
