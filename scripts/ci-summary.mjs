// The last line of .ci/run: "N passed, N failed" over its vitest passes.
// Usage: node scripts/ci-summary.mjs EXTRA_FAILURES REPORT_1 EXIT_1 [REPORT_2 EXIT_2 ...]
// Each REPORT is a vitest JSON report and EXIT the exit status of the vitest that wrote it.
// - A pass without a report (missing or empty) counts as one failure.
// - A suite that failed to load (failed, with no test results) counts as one failure.
// - A pass whose vitest failed while its report lists no failed test counts as one failure: an
//   unhandled error, or a test file whose worker crashed. vitest reports such a file's tests as
//   skipped and calls the run a success, so only the exit status tells.
import { existsSync, readFileSync, statSync } from 'node:fs';

const [extra, ...passes] = process.argv.slice(2);
if (extra === undefined || passes.length % 2 !== 0) {
  console.error('usage: node scripts/ci-summary.mjs EXTRA_FAILURES REPORT EXIT [REPORT EXIT ...]');
  process.exit(2);
}
let passed = 0;
let failed = Number(extra);
for (let i = 0; i < passes.length; i += 2) {
  const [file, rc] = [passes[i], Number(passes[i + 1])];
  if (!existsSync(file) || statSync(file).size === 0) {
    console.log(`no vitest report at ${file}: counted as one failure`);
    failed += 1;
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  const broken = r.testResults.filter((f) => f.status === 'failed' && f.assertionResults.length === 0).length;
  passed += r.numPassedTests;
  failed += r.numFailedTests + broken;
  if (rc !== 0 && r.numFailedTests + broken === 0) {
    console.log(`vitest exited with ${rc} but ${file} lists no failed test: an unhandled error or a crashed test file (see "Unhandled Errors" above); counted as one failure`);
    failed += 1;
  }
}
console.log(`${passed} passed, ${failed} failed`);
