// The unit suite as the mutation run uses it (stryker.config.mjs): test/unit only (never the rig,
// whose servers need the rig lock), without the one test that waits 12 s of wall time for a slow
// sender (every mutant of clone-attempt.ts would wait for it; the normal run keeps it).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    testNamePattern: /^(?!.*silent for 12 s before anything).*$/,
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
