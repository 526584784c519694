// Bundles the runner into runner/dist/gridlease-runner.js (replaced by the esbuild build).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
const out = new URL('./dist/gridlease-runner.js', import.meta.url);
mkdirSync(new URL('./dist/', import.meta.url), { recursive: true });
writeFileSync(out, "#!/usr/bin/env node\nconsole.error('gridlease-runner: not built');\nprocess.exit(1);\n");
chmodSync(out, 0o755);
console.log('gridlease-runner: placeholder written');
