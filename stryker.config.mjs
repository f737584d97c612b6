// Mutation testing (`npm run mutate`): the pure core and the units whose tests must notice a
// change of behaviour; the floor is guarded by test/mutation/score.ts. See README, Development.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'test/mutation/vitest.config.ts', related: true },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  mutate: [
    'agent/core/**/*.ts',
    'agent/mysql/**/*.ts',
    // The connection and the plan command are effects at the edge; the rig tests cover them.
    '!agent/mysql/db.ts',
    '!agent/mysql/plan.ts',
    'agent/stream/**/*.ts',
    'agent/sidecar/replication.ts',
    'agent/sidecar/backup.ts',
    'agent/sidecar/http-server.ts',
    'agent/init/clone-attempt.ts',
  ],
  // Two cores: one type checker and two vitest workers (the unit tests wait on child processes
  // and loopback I/O much of the time).
  concurrency: 3,
  // A mutant of a module-level constant is reached by every test file, so it would run the whole
  // unit suite; they are left out (counted as Ignored) to keep a full run under an hour on two cores.
  ignoreStatic: true,
  timeoutMS: 10_000,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  incremental: true,
  // Committed: CI reruns only what changed since (test/mutation/run.sh).
  incrementalFile: 'test/mutation/stryker-incremental.json',
  ignorePatterns: ['.cache', 'dist', 'reports', '.rig', 'test/bench/results', 'test/mutation/stryker-incremental.json'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
