#!/usr/bin/env node
// Summarise a V8 .cpuprofile (node --cpu-prof): busy time by package, and the
// top functions by self and by inclusive time. Used by run.js with
// BENCH_PROFILE=1; also runs on its own:
//
//   node bench/ingest/profile-summary.js bench/results/profile-<ts>/relay-dispatch.cpuprofile [top]
'use strict';

const path = require('node:path');
const { fileURLToPath } = require('node:url');

const SPECIAL = {
  '(garbage collector)': 'gc',
  '(program)': 'native (program)',
  '(idle)': 'idle',
  '(root)': 'root',
};

function filePath(url) {
  if (url.startsWith('file://')) {
    try {
      return fileURLToPath(url);
    } catch {
      return url;
    }
  }
  return url;
}

/** Which package a frame belongs to, and a location without machine paths. */
function classify(frame, root) {
  const special = SPECIAL[frame.functionName];
  if (special && !frame.url) return { category: special, where: '' };
  const url = frame.url || '';
  if (!url) return { category: 'native/builtin', where: '' };
  if (url.startsWith('node:')) return { category: 'node core', where: url };
  // run.js rewrites the repository's files relative to its root.
  const absolute = path.isAbsolute(filePath(url));
  const file = (absolute ? filePath(url) : path.join(root, url)).split(path.sep).join('/');
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = file.slice(nm + '/node_modules/'.length);
    const parts = rest.split('/');
    const pkg = parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
    return { category: pkg, where: rest };
  }
  const rel = path.relative(root, file).split(path.sep).join('/');
  if (!rel.startsWith('..')) {
    const m = /^packages\/([^/]+)\//.exec(rel);
    return { category: m ? `@plugboard/${m[1]}` : rel.split('/')[0], where: rel };
  }
  return { category: 'other', where: path.basename(file) };
}

function summariseProfile(profile, root) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    // A sample lasts until the next one.
    const us = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    self.set(samples[i], (self.get(samples[i]) || 0) + Math.max(0, us));
  }
  const info = new Map();
  const keyOf = (node) => {
    let v = info.get(node.id);
    if (!v) {
      const f = node.callFrame;
      const c = classify(f, root);
      const name = f.functionName || '(anonymous)';
      const where = c.where ? `${c.where}:${f.lineNumber + 1}` : '';
      v = { key: `${name} ${where}`.trim(), name, where, category: c.category };
      info.set(node.id, v);
    }
    return v;
  };
  let totalUs = 0;
  let idleUs = 0;
  const categories = new Map();
  const selfByKey = new Map();
  const inclusiveByKey = new Map();
  // Walk the tree once; each node's self time counts once for every distinct
  // function on its stack (recursion is not double counted).
  const rootNode = profile.nodes[0];
  const stack = [[rootNode, []]];
  while (stack.length > 0) {
    const [node, ancestors] = stack.pop();
    const k = keyOf(node);
    const us = self.get(node.id) || 0;
    const path_ = k.category === 'root' ? ancestors : [...ancestors, k.key];
    if (us > 0) {
      totalUs += us;
      if (k.category === 'idle') idleUs += us;
      categories.set(k.category, (categories.get(k.category) || 0) + us);
      const s = selfByKey.get(k.key) || { ...k, us: 0 };
      s.us += us;
      selfByKey.set(k.key, s);
      for (const key of new Set(path_))
        inclusiveByKey.set(key, (inclusiveByKey.get(key) || 0) + us);
    }
    for (const child of node.children || []) stack.push([byId.get(child), path_]);
  }
  const busyUs = totalUs - idleUs;
  const ms = (us) => Math.round(us / 100) / 10;
  const pct = (us) => (busyUs > 0 ? Math.round((us / busyUs) * 1000) / 10 : 0);
  return {
    sampledMs: ms(totalUs),
    busyMs: ms(busyUs),
    idleMs: ms(idleUs),
    byCategory: [...categories.entries()]
      .filter(([c]) => c !== 'idle')
      .sort((a, b) => b[1] - a[1])
      .map(([category, us]) => ({ category, ms: ms(us), busyPercent: pct(us) })),
    topSelf: [...selfByKey.values()]
      .filter((s) => s.category !== 'idle')
      .sort((a, b) => b.us - a.us)
      .slice(0, 40)
      .map((s) => ({
        function: s.name,
        where: s.where,
        category: s.category,
        ms: ms(s.us),
        busyPercent: pct(s.us),
      })),
    topInclusive: [...inclusiveByKey.entries()]
      .filter(([key]) => !key.startsWith('(idle)') && !key.startsWith('(program)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 60)
      .map(([key, us]) => ({ function: key, ms: ms(us), busyPercent: pct(us) })),
  };
}

function formatProfileSummary(s, top = 20) {
  const lines = [];
  lines.push(`  sampled ${s.sampledMs} ms, busy ${s.busyMs} ms, idle ${s.idleMs} ms`);
  lines.push('  busy time by package:');
  for (const c of s.byCategory.slice(0, 12)) {
    lines.push(`    ${String(c.busyPercent).padStart(5)}%  ${c.category}`);
  }
  lines.push(`  top ${top} functions by self time:`);
  for (const f of s.topSelf.slice(0, top)) {
    lines.push(
      `    ${String(f.busyPercent).padStart(5)}%  ${f.function}  ${f.where || `(${f.category})`}`,
    );
  }
  lines.push(`  top ${top} functions by inclusive time:`);
  for (const f of s.topInclusive.slice(0, top)) {
    lines.push(`    ${String(f.busyPercent).padStart(5)}%  ${f.function}`);
  }
  return lines.join('\n');
}

module.exports = { summariseProfile, formatProfileSummary };

if (require.main === module) {
  const fs = require('node:fs');
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/ingest/profile-summary.js <file.cpuprofile> [top]');
    process.exit(2);
  }
  const root = path.join(__dirname, '..', '..');
  const summary = summariseProfile(JSON.parse(fs.readFileSync(file, 'utf8')), root);
  console.log(formatProfileSummary(summary, Number(process.argv[3]) || 25));
}
