/**
 * What bench/scenarios/websocket.ts hands bench/ws/client.ts (a JSON `WsClientSpec` on argv) and what
 * the client prints back (one JSON `WsClientOutput` on stdout), and what bench/ws/floor.ts is given.
 */
import type { CpuShare } from '../cpu.ts';

export interface WsClientSpec {
  /** peer: one of several clients of one fan-out across server processes (see `WsPeerLine`); it makes no writes. */
  mode: 'latency' | 'fanout' | 'closed' | 'peer';
  /** ws://127.0.0.1:port/ws */
  wsUrl: string;
  /** The text frame each socket sends once open (`bind-with-token <token>`); it is bound once a frame containing `"handshake"` arrives. */
  bind: string;
  sockets: number;
  /** One bind frame per socket (each socket bound to its own subscription); overrides `bind`. */
  binds?: string[];
  /** closed: writers, each sending its next write as soon as the previous one answered (closed loop). */
  concurrency?: number;
  /** Sockets opened (and bound) at a time. */
  openBatch: number;
  /** The write that causes one event: a Patient create (Herald) or a poke (floor), same request either way. */
  trigger: { origin: string; path: string; headers: Record<string, string>; body: string };
  /** The server's pid, for CPU accounting over the measured part. */
  serverPid?: number;
  /** Herald on PostgreSQL: its database's name, to count its backends' CPU too (latency, closed). */
  serverDb?: string;
  /** latency: writes per second, open loop, paced by a timer. closed: warmupSeconds and seconds too. */
  rate?: number;
  warmupSeconds?: number;
  seconds?: number;
  /** fanout: measured writes, one at a time, each after the previous one reached every socket (plus one warm-up write). */
  repeats?: number;
  /** Keep a copy of the first handshake and event frames (for the floor to send the same bytes). */
  capture?: boolean;
  /** Herald on PostgreSQL: also LISTEN on its commit channel and time each create's announcement. */
  listen?: { url: string; channel: string };
}

/** Milliseconds; NaN when there was nothing to measure. */
export interface Spread {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export interface WsClientOutput {
  /** Sockets asked for, opened, and bound (handshake received). */
  sockets: number;
  opened: number;
  bound: number;
  /** Sockets that could not be opened or bound, and the first reason. */
  openFailures: number;
  openErrorSample?: string;
  /** Bound sockets closed by the server during the run (e.g. 1013 slow reader), by close code. */
  unexpectedCloses: Record<string, number>;
  /** Writes sent in the measured part, their status codes, transport errors. */
  writes: number;
  statusCodes: Record<string, number>;
  non201: number;
  errors: number;
  errorSample?: string;
  /** Write rate achieved over the measured part (writes started per second). */
  achievedRate: number;
  /** Response time of the write itself. */
  write: Spread;
  /** (socket, event) pairs expected in the measured part, and how many never arrived before the deadline. */
  pairs: number;
  missing: number;
  /** Frames that arrived twice on one socket for one event. */
  duplicates: number;
  /** latency: arrival − 201 received, and arrival − request start, over all (socket, event) pairs. */
  fromResponse: Spread;
  fromStart: Spread;
  /**
   * fanout: per measured write, last arrival − 201 received / − request start, first arrival − 201,
   * and the server's CPU time from the write's start to the last arrival (/proc, 10 ms ticks).
   */
  rounds: { lastFromResponse: number; lastFromStart: number; firstFromResponse: number; serverCpuMs: number }[];
  /** Wall seconds of the measured part (writes, and waiting for their frames). */
  measuredSeconds: number;
  /** Frames delivered per second over the measured part. */
  framesPerSecond: number;
  /** The server's resident memory (kB, /proc) before the sockets were opened and once all were bound. */
  serverRssKb: { before: number; bound: number };
  cpu: CpuShare;
  /** With `capture`: a handshake frame, an event frame, and the Patient id that event frame names. */
  captured?: { handshake: string; event: string; id: string };
  /**
   * With `listen`, over the measured writes: how many announcements never arrived, their arrival −
   * the create's 201, and the first socket's frame − the announcement (what the receiving node's
   * work after its own wake-up costs, for a socket on another node).
   */
  announcement?: { n: number; missing: number; fromResponse: Spread; toFrame: Spread };
}

/**
 * What a `peer` client prints on stdout, one JSON object a line, its times in milliseconds on the
 * machine's monotonic clock (`process.hrtime`), which every process on the machine shares:
 *   ready: once its sockets are open and bound (the server's RSS before and after, as in WsClientOutput);
 *   event: once an event has reached every one of its bound sockets (first and last arrival; with
 *          `capture`, the first event carries the frames);
 *   end:   after the line `end <id>,<id>,…` on its stdin: the (socket, event) pairs of those events
 *          that never arrived, and what else went wrong; then it exits.
 */
export type WsPeerLine =
  | { kind: 'ready'; sockets: number; opened: number; bound: number; openFailures: number; openErrorSample?: string; serverRssKb: { before: number; bound: number } }
  | { kind: 'event'; id: string; first: number; last: number; captured?: { handshake: string; event: string; id: string } }
  | { kind: 'end'; pairs: number; missing: number; duplicates: number; unexpectedCloses: Record<string, number> };

/** Given to bench/ws/floor.ts as JSON on argv. */
export interface WsFloorSpec {
  /** Sent to a socket when it sends anything (its "bind"). */
  handshake: string;
  /** The notification frame; every occurrence of `templateId` is replaced by the poke's new id. */
  event: string;
  templateId: string;
}

/** A poke to bench/ws/floor.ts may name the new id in this header (several floors sending one event); else each makes its own. */
export const FLOOR_ID_HEADER = 'x-bench-id';
