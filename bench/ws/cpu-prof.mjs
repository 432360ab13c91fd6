/**
 * Preloaded into Herald by bench/scenarios/websocket.ts when BENCH_WS_CPU_PROF=1
 * (NODE_OPTIONS=--import …; Node 20 refuses --cpu-prof there): samples the CPU from start to exit
 * and writes a .cpuprofile (open it in Chrome DevTools) to BENCH_WS_PROF_DIR.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_WS_PROF_DIR ?? '.';
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 1000 });
session.post('Profiler.start');
// An in-process session answers synchronously, so this works in 'exit'.
process.on('exit', () => {
  session.post('Profiler.stop', (err, result) => {
    if (!err) writeFileSync(join(dir, `herald-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
  });
});
