import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Pure modules, the local platform (libSQL server, launcher) and end-to-end tests, in Node.
export default defineConfig({
  // The fault simulators run the real Durable Object classes in Node (test/faults/do-host.ts).
  resolve: { alias: { 'cloudflare:workers': fileURLToPath(new URL('./test/faults/workers-shim.ts', import.meta.url)) } },
  test: {
    include: ['test/unit/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    environment: 'node',
    setupFiles: ['test/support/fast-check-seed.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
