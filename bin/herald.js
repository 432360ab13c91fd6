#!/usr/bin/env node
// Herald's command line. Runs the TypeScript source through tsx; the `ws` package supplies the
// WebSocket that Node 20 lacks (the client library itself takes it as an option).
import { register } from 'tsx/esm/api';

register();
const { default: WebSocket } = await import('ws');
const { main } = await import('../src/client/cli.ts');
process.exitCode = await main(process.argv.slice(2), { WebSocket });
