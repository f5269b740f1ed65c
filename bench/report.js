#!/usr/bin/env node
// The tables of bench/compose.sh.
//
//   node bench/report.js collect CRITERION_DIR MJML_JSON   one run's figures as JSON (stdout)
//   node bench/report.js table RUN_JSON...                 the Markdown tables: with several
//                                                           runs, the median of each figure
//
// lscp-mail's figures are criterion's median point estimates, read from
// CRITERION_DIR/<group>/<issue>/new/estimates.json (ns). A ratio is taken within each run (both
// sides measured minutes apart on the same machine), and the table gives the median over runs.
'use strict';

const fs = require('fs');
const path = require('path');

const TARGET_MS = 5;
const TARGET_RATIO = 30;
const GROUPS = [
  'all_variants',
  'mrml_full',
  'load',
  'stage_view',
  'stage_handlebars',
  'stage_mrml',
  'stage_text',
];
const STAGES = ['view', 'handlebars', 'mrml', 'text'];

function criterionMs(dir, group, id) {
  const file = path.join(dir, group, id, 'new', 'estimates.json');
  if (!fs.existsSync(file)) return null;
  return JSON.parse(fs.readFileSync(file, 'utf8')).median.point_estimate / 1e6;
}

function collect(critDir, mjmlJson) {
  const mjml = JSON.parse(fs.readFileSync(mjmlJson, 'utf8'));
  const issues = mjml.issues.map((m) => {
    const rs = Object.fromEntries(GROUPS.map((g) => [g, criterionMs(critDir, g, m.id)]));
    if (rs.all_variants == null || rs.mrml_full == null) {
      throw new Error(`no criterion figures for ${m.id} under ${critDir}: did it load?`);
    }
    return {
      id: m.id,
      emails: m.emails,
      rust: rs,
      mjml: { all_variants: m.all_variants_ms, full: m.full_ms },
      ratio_all: m.all_variants_ms / rs.all_variants,
      ratio_full: m.full_ms / rs.mrml_full,
      ratio_mrml_all: rs.stage_mrml == null ? null : m.all_variants_ms / rs.stage_mrml,
      mjml_validation_errors_soft: m.validation_errors_soft,
    };
  });
  return { mjml_version: mjml.mjml, node: mjml.node, mjml_options: mjml.options, reps: mjml.reps, issues };
}

function median(xs) {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const f2 = (x) => (x == null ? '–' : x < 1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(1));
const fr = (x) => `${x.toFixed(1)}×`;

function table(files) {
  const runs = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
  const ids = runs[0].issues.map((i) => i.id);
  const pick = (id, fn) => median(runs.map((r) => r.issues.find((i) => i.id === id)).filter(Boolean).map(fn));
  const rows = ids.map((id) => ({
    id,
    emails: runs[0].issues.find((i) => i.id === id).emails,
    all: pick(id, (i) => i.rust.all_variants),
    mjmlAll: pick(id, (i) => i.mjml.all_variants),
    ratioAll: pick(id, (i) => i.ratio_all),
    full: pick(id, (i) => i.rust.mrml_full),
    mjmlFull: pick(id, (i) => i.mjml.full),
    ratioFull: pick(id, (i) => i.ratio_full),
    mrmlAll: pick(id, (i) => i.rust.stage_mrml),
    ratioMrmlAll: pick(id, (i) => i.ratio_mrml_all),
    load: pick(id, (i) => i.rust.load),
    stages: STAGES.map((s) => pick(id, (i) => i.rust[`stage_${s}`])),
    errs: pick(id, (i) => i.mjml_validation_errors_soft),
  }));
  const out = [];
  out.push(
    `Median over ${runs.length} run(s); ratios are taken within each run, then the median. ` +
      `mjml ${runs[0].mjml_version} on node ${runs[0].node}, ${runs[0].reps} timed repetitions ` +
      `per run, options ${JSON.stringify(runs[0].mjml_options)}.`,
  );
  out.push('');
  out.push(
    '| issue | emails | lscp-mail, all variants (ms) | mjml2html, all variants (ms) | ratio | mrml alone, all variants (ms) | ratio | mrml alone, full issue (ms) | mjml2html, full issue (ms) | ratio | load (ms) |',
  );
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    out.push(
      `| ${r.id} | ${r.emails} | ${f2(r.all)} | ${f2(r.mjmlAll)} | ${fr(r.ratioAll)} | ${f2(r.mrmlAll)} | ${r.ratioMrmlAll == null ? '–' : fr(r.ratioMrmlAll)} | ${f2(r.full)} | ${f2(r.mjmlFull)} | ${fr(r.ratioFull)} | ${f2(r.load)} |`,
    );
  }
  out.push('');
  out.push('Where the all-variants time goes (each stage timed alone over every variant, ms, and its share of their sum):');
  out.push('');
  out.push('| issue | view (Markdown, template data) | handlebars → MJML | mrml → HTML | plain text | sum of stages |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    const sum = r.stages.reduce((a, b) => a + (b || 0), 0);
    const cell = (x) => (x == null ? '–' : `${f2(x)} (${Math.round((100 * x) / sum)} %)`);
    out.push(`| ${r.id} | ${r.stages.map(cell).join(' | ')} | ${f2(sum)} |`);
  }
  out.push('');
  const slow = rows.filter((r) => !(r.all < TARGET_MS));
  const lowRatio = rows.filter((r) => !(r.ratioAll >= TARGET_RATIO));
  out.push(
    `Target: every issue with all variants under ${TARGET_MS} ms: ` +
      (slow.length ? `MISSED by ${slow.map((r) => `${r.id} (${f2(r.all)} ms, ${fr(r.all / TARGET_MS)} the target)`).join(', ')}` : 'met') +
      '.',
  );
  out.push(
    `Target: at least ${TARGET_RATIO}× faster than mjml2html: ` +
      (lowRatio.length ? `MISSED by ${lowRatio.map((r) => `${r.id} (${fr(r.ratioAll)})`).join(', ')}` : 'met') +
      '.',
  );
  const errs = rows.filter((r) => r.errs);
  if (errs.length) {
    out.push(`Note: mjml's own validator ('soft') reports errors on the full issue of ${errs.map((r) => `${r.id} (${r.errs})`).join(', ')}.`);
  }
  return out.join('\n');
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'collect' && args.length === 2) {
  process.stdout.write(JSON.stringify(collect(args[0], args[1]), null, 2) + '\n');
} else if (cmd === 'table' && args.length >= 1) {
  process.stdout.write(table(args) + '\n');
} else {
  console.error('usage: report.js collect CRITERION_DIR MJML_JSON | report.js table RUN_JSON...');
  process.exit(2);
}
