#!/usr/bin/env node
// The command's entry point. It exists before the bundle is built, so npm can link the
// command on install; it then runs the bundled CLI (dist/, built by `npm run build:cli` and by
// the repository's postinstall).
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/gridlease.js', import.meta.url);
if (!existsSync(bundle)) {
  process.stderr.write('gridlease: not built yet; run `npm run build:cli`\n');
  process.exit(1);
}
await import(bundle.href);
