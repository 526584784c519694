// Bundles the renter CLI (src/cli.ts, the SDK and openapi-fetch) into ONE dependency-free file,
// cli/dist/gridlease.js, for Node 18+. Run by the root postinstall and `npm run
// build:cli`; `--outfile PATH` writes elsewhere (tests). Prints one line.
import { bundleCli } from '../local/bundle-cli.ts';

await bundleCli({ name: 'gridlease', description: 'the Gridlease renter CLI', base: import.meta.url, entry: './src/cli.ts', outfile: './dist/gridlease.js' });
