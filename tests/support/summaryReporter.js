// Ends every run with the plain line CI counts: "N passed, N failed". Before it, one short block
// per failure (file, test, the first lines of the message without colours), so the tail of a CI
// log, which is often all that is kept, says what failed and with which values.
const ANSI = /\u001b\[[0-9;]*m/g;
const MESSAGE_LINES = 8;

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failures = [];
    for (const file of results.testResults) {
      const where = file.testFilePath.replace(`${process.cwd()}/`, '');
      if (file.testExecError) failures.push(`${where}: ${brief(file.testExecError.message)}`);
      for (const test of file.testResults) {
        if (test.status === 'failed') failures.push(`${where} › ${test.fullName}\n${brief(test.failureMessages.join('\n'))}`);
      }
    }
    if (failures.length > 0) process.stdout.write(`\nFailures (${failures.length}):\n${failures.map((f) => `- ${f}`).join('\n')}\n`);
    process.stdout.write(`\n${results.numPassedTests} passed, ${results.numFailedTests + results.numRuntimeErrorTestSuites} failed\n`);
  }
}

function brief(message) {
  const lines = String(message).replace(ANSI, '').split('\n').map((line) => line.trimEnd()).filter((line) => line.trim() !== '' && !/^\s+at /.test(line));
  return lines.slice(0, MESSAGE_LINES).map((line) => `    ${line.trim()}`).join('\n');
}
module.exports = SummaryReporter;
