import { CONFIG_HELP, loadConfig } from './config.ts';
import { buildApp } from './app.ts';

/** Process entry: the only file that reads process.env or exits. */
async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    process.stdout.write(`Usage: npm start -- [options]\n\nOption          Environment          \n${CONFIG_HELP}\n`);
    return;
  }
  const config = loadConfig(process.argv.slice(2), process.env);
  const app = await buildApp(config);
  await app.listen({ port: config.port, host: config.host });
  app.log.info({ baseUrl: config.baseUrl, db: config.db, auth: config.auth ? 'bearer tokens' : 'open' }, 'Herald is ready');
  if (!config.auth) {
    app.log.warn('Open mode: no HERALD_AUTH_ISSUER or HERALD_AUTH_CLIENTS, so anyone who can reach this port may read and write everything');
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'stopping: finishing in-flight requests');
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
