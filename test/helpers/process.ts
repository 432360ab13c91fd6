import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface HeraldProcess {
  child: ChildProcess;
  url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  exited: Promise<number | null>;
}

/**
 * A free port below the kernel's ephemeral range (32768 and up here), for a child to bind a moment
 * later. A port from `listen(0)` is in that range: released for the child, the kernel could hand
 * it to another test's server first, whose /healthz would then pass for the child's (a test once
 * read 401s from an auth-enabled server that way). Ports here are never handed out by `listen(0)`.
 */
async function spawnPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/**
 * Runs Herald as `npm start` does, in its own process, and waits until /healthz answers (for at
 * most `readyTimeoutMs`, default 30 s: a loaded machine starting several at once needs more).
 */
export async function spawnHerald(env: Record<string, string>, { readyTimeoutMs = 30_000 } = {}): Promise<HeraldProcess> {
  const port = env.PORT ? Number(env.PORT) : await spawnPort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const closed = once(child, 'close');
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      await closed; // all of its output read
      throw new Error(`Herald exited early with code ${child.exitCode}: ${out}`);
    }
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Herald did not become ready: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, url, output: () => out, exited };
}
