#!/usr/bin/env node
// The reference compiler on the MJML that lscp-mail's templates produce: mjml@4's mjml2html in
// one warm node process. Usage: node bench/mjml-node.js DIR [REPS]
//
// DIR holds one folder per issue (written by `LSCP_BENCH_DUMP_MJML=DIR cargo bench --bench
// compose`), each with every variant's MJML, `everyone.mjml` being the full issue. mjml is
// loaded once and warmed up on every file; then, per issue, REPS timed repetitions of
// "compile every variant" and of "compile the full issue" each give a median.
//
// Options: validationLevel 'skip' (mrml validates nothing, and skipping makes mjml as fast as
// it goes, so the ratio is the conservative one), minify false, beautify false, keepComments
// false (lscp-mail renders with mrml's disable_comments). Prints JSON on stdout.
'use strict';

const fs = require('fs');
const path = require('path');
const mjml2html = require(path.join(__dirname, 'node_modules', 'mjml'));
const mjmlVersion = require(path.join(__dirname, 'node_modules', 'mjml', 'package.json')).version;

const dir = process.argv[2];
const reps = Number(process.argv[3] || 15);
if (!dir) {
  console.error('usage: node bench/mjml-node.js DIR [REPS]');
  process.exit(2);
}

const options = { validationLevel: 'skip', minify: false, beautify: false, keepComments: false };

const issues = fs
  .readdirSync(dir)
  .filter((d) => fs.statSync(path.join(dir, d)).isDirectory())
  .sort()
  .map((id) => {
    const files = fs.readdirSync(path.join(dir, id)).filter((f) => f.endsWith('.mjml')).sort();
    const mjml = Object.fromEntries(
      files.map((f) => [f, fs.readFileSync(path.join(dir, id, f), 'utf8')]),
    );
    if (!('everyone.mjml' in mjml)) throw new Error(`${id}: no everyone.mjml`);
    return { id, mjml };
  });

function compile(src) {
  const out = mjml2html(src, options);
  if (out.errors && out.errors.length) {
    throw new Error(`mjml2html errors: ${JSON.stringify(out.errors.slice(0, 3))}`);
  }
  return out.html;
}

function ms(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Warm-up: every file, several rounds, so the JIT has seen all of it.
const warmStart = process.hrtime.bigint();
for (let round = 0; round < 5; round++) {
  for (const { mjml } of issues) for (const src of Object.values(mjml)) compile(src);
}
const warmupMs = Number(process.hrtime.bigint() - warmStart) / 1e6;

// Once, untimed: how mjml's own validator judges this MJML, and the size of its HTML.
const checks = Object.fromEntries(
  issues.map(({ id, mjml }) => {
    const soft = mjml2html(mjml['everyone.mjml'], { ...options, validationLevel: 'soft' });
    return [
      id,
      {
        validation_errors_soft: soft.errors.length,
        validation_messages: soft.errors.slice(0, 5).map((e) => e.formattedMessage),
        html_bytes_full: soft.html.length,
      },
    ];
  }),
);

const results = issues.map(({ id, mjml }) => {
  const sources = Object.values(mjml);
  const all = [];
  const full = [];
  for (let r = 0; r < reps; r++) {
    all.push(ms(() => { for (const src of sources) compile(src); }));
    full.push(ms(() => compile(mjml['everyone.mjml'])));
  }
  return {
    id,
    emails: sources.length,
    all_variants_ms: median(all),
    full_ms: median(full),
    all_variants_min_ms: Math.min(...all),
    full_min_ms: Math.min(...full),
    ...checks[id],
  };
});

process.stdout.write(
  JSON.stringify(
    { node: process.version, mjml: mjmlVersion, options, reps, warmup_ms: warmupMs, issues: results },
    null,
    2,
  ) + '\n',
);
