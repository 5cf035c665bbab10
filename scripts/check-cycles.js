#!/usr/bin/env node
// Fails when any package's sources import each other in a cycle.
const path = require('node:path');
const fs = require('node:fs');
const madge = require('madge');

async function main() {
  const root = path.join(__dirname, '..');
  const pkgs = fs
    .readdirSync(path.join(root, 'packages'))
    .map((p) => path.join(root, 'packages', p, 'src'))
    .filter((p) => fs.existsSync(p));
  let failed = false;
  for (const src of pkgs) {
    const res = await madge(src, {
      fileExtensions: ['ts'],
      tsConfig: path.join(root, 'tsconfig.base.json'),
      detectiveOptions: { ts: { skipTypeImports: true } },
    });
    const cycles = res.circular();
    if (cycles.length > 0) {
      failed = true;
      console.error(`Import cycles in ${path.relative(root, src)}:`);
      for (const c of cycles) console.error('  ' + c.join(' -> '));
    }
  }
  if (failed) process.exit(1);
  console.log(`check-cycles: no import cycles in ${pkgs.length} packages`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
