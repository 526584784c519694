import { defineConfig } from 'vitest/config';

// Pure modules, the local platform (libSQL server, launcher) and end-to-end tests, in Node.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    environment: 'node',
    setupFiles: ['test/support/fast-check-seed.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
