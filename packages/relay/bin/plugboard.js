#!/usr/bin/env node
// Kept outside dist/ so npm can link it before the first build.
require('../dist/cli.js');
