// Bundles the runner (src/cli.ts, the shared contracts and zod) into ONE dependency-free file,
// runner/dist/gridlease-runner.js, for Node 18+. Run by the root postinstall and `npm run
// build:runner`; `--outfile PATH` writes elsewhere (tests). Prints one line.
import { bundleCli } from '../local/bundle-cli.ts';

await bundleCli({ name: 'gridlease-runner', description: 'the Gridlease provider agent', base: import.meta.url, entry: './src/cli.ts', outfile: './dist/gridlease-runner.js' });
