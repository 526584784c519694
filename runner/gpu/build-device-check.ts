// Bundles runner/gpu/device-check.ts into one file, runner/dist/device-check.js, which Node runs
// on a GPU machine with nothing else installed (see the header of device-check.ts).
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
await build({ entryPoints: [here('./device-check.ts')], outfile: here('../dist/device-check.js'), bundle: true, platform: 'node', format: 'esm', target: 'node18', logLevel: 'warning' });
console.log(`built ${here('../dist/device-check.js')}`);
