import { configTableText, loadConfig } from './config.ts';
import { buildApp } from './app.ts';
import { tuneHeap } from './heap-policy.ts';

// A large old space (a million subscriptions) grows to twice what lives in it, not four times, and
// is compacted when a full GC leaves it mostly free space (issue 15; ARCHITECTURE, "A million
// subscriptions in memory").
tuneHeap({ execArgv: process.execArgv });

/** Process entry: the only file that reads process.env or exits. */
async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    process.stdout.write(`Usage: npm start -- [--flag value ...]   (flags win over environment variables)\n\n${configTableText()}\n`);
    return;
  }
  const config = loadConfig(process.argv.slice(2), process.env);
  const app = await buildApp(config);
  // A promise or callback that fails with nobody to handle it is a bug: say so, and exit non-zero
  // so that a supervisor restarts Herald, rather than go on in an unknown state or die silently.
  const fatal = (kind: string) => (err: unknown) => {
    app.log.fatal({ err }, `${kind}: exiting`);
    process.exit(70);
  };
  process.on('unhandledRejection', fatal('unhandled promise rejection'));
  process.on('uncaughtException', fatal('uncaught exception'));
  await app.listen({ port: config.port, host: config.host });
  app.log.info({ baseUrl: config.baseUrl, db: config.db, auth: config.auth ? 'bearer tokens' : 'open' }, 'Herald is ready');
  if (!config.auth) {
    app.log.warn('Open mode: no HERALD_AUTH_ISSUER or HERALD_AUTH_CLIENTS, so anyone who can reach this port may read and write everything');
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    app.log.info({ signal, graceMs: config.shutdownGraceMs }, 'stopping: finishing in-flight requests and deliveries');
    // Past the grace period, exit anyway: deliveries still in flight are sent again after the
    // restart (their cursor was not moved), so at-least-once holds.
    setTimeout(() => {
      app.log.error({ graceMs: config.shutdownGraceMs }, 'stop took longer than HERALD_SHUTDOWN_GRACE_S: exiting now');
      process.exit(1);
    }, config.shutdownGraceMs).unref();
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`Herald failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
