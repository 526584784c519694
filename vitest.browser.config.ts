import { defineConfig } from 'vitest/config';

// The price widget in Chromium (playwright-core driving /usr/bin/chromium) against the local platform.
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
