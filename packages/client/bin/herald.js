#!/usr/bin/env node
// `herald` from the compiled client (dist/, built by `npm pack`'s prepack): plain Node, no
// TypeScript at run time. The `ws` package supplies the WebSocket that Node 20 lacks.
import WebSocket from 'ws';
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv.slice(2), { WebSocket });
