import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    // Child processes, real sockets and signal handlers: isolate test files in processes.
    pool: 'forks',
  },
});
