/** CPU accounting from /proc (Linux); elsewhere every figure is NaN. */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS = 100; // USER_HZ: /proc reports CPU time in 1/100 s on Linux

/** CPU seconds (user + system) process `pid` has used so far. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS; // utime, stime
  } catch {
    return NaN;
  }
}

/** CPU seconds the whole machine has been busy so far (all CPUs, everything but idle and iowait). */
export function machineBusySeconds(): number {
  try {
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = ticks;
    return (user + nice + system + irq + softirq + steal) / TICKS;
  } catch {
    return NaN;
  }
}

/**
 * CPU seconds used so far by each PostgreSQL backend serving database `db`, by pid. A backend's
 * process title names its database (`postgres: [<cluster>: ]<user> <db> <client> <state>`), so other databases'
 * backends (tests running beside the bench) are not counted; the server's shared processes
 * (WAL writer, checkpointer) are not counted either.
 */
export function databaseBackendsCpu(db: string): Map<number, number> {
  const out = new Map<number, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const title = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
      if (title.startsWith('postgres: ') && title.includes(` ${db} `)) out.set(Number(pid), processCpuSeconds(Number(pid)));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU seconds database `db`'s backends used between two databaseBackendsCpu readings (new backends count whole). */
export function backendsCpuSince(db: string, before: Map<number, number>): number {
  let sum = 0;
  for (const [pid, s] of databaseBackendsCpu(db)) sum += s - (before.get(pid) ?? 0);
  return sum;
}

/**
 * Cores busy while `fn` runs: the server, this process (the load generator), and everything else;
 * with `db`, also the PostgreSQL backends serving that database (then not counted in `other`).
 */
export async function measureCpu<T>(serverPid: number | undefined, fn: () => Promise<T>, db?: string): Promise<{ value: T; cpu: CpuShare }> {
  const t0 = process.hrtime.bigint();
  const backends0 = db ? databaseBackendsCpu(db) : undefined;
  const [server0, self0, machine0] = [serverPid ? processCpuSeconds(serverPid) : NaN, process.cpuUsage(), machineBusySeconds()];
  const value = await fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const selfUsage = process.cpuUsage(self0);
  const server = (processCpuSeconds(serverPid ?? 0) - server0) / wall;
  const load = (selfUsage.user + selfUsage.system) / 1e6 / wall;
  const machine = (machineBusySeconds() - machine0) / wall;
  const dbCores = db && backends0 ? backendsCpuSince(db, backends0) / wall : 0;
  const round = (n: number) => Math.round(n * 100) / 100;
  const cpu: CpuShare = { server: round(server), load: round(load), other: round(Math.max(0, machine - server - load - dbCores)) };
  if (db) cpu.db = round(dbCores);
  return { value, cpu };
}

/** In cores (1 = one core fully busy) over the measured run. */
export interface CpuShare {
  server: number;
  load: number;
  other: number;
  /** Herald on PostgreSQL: the backends serving its database (not counted in `other`). */
  db?: number;
}

/** The resident memory of process `pid` in kB (NaN off Linux). */
export function rssKb(pid: number | undefined, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
    return Number(line?.split(/\s+/)[1]);
  } catch {
    return NaN;
  }
}

/** The most resident memory the process has held since it started (the kernel's high-water mark). */
export const peakRssKb = (pid: number | undefined): number => rssKb(pid, 'VmHWM');
