#!/usr/bin/env node
// Kept outside dist/ so npm can link it before the first build.
require('../dist/cli.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
