/** Prints the README's configuration table from src/config.ts (the single source): `npm run config-table`. */
import { configTableMarkdown } from '../src/config.ts';

process.stdout.write(`${configTableMarkdown()}\n`);
