// Runs a local checkout of the Netscope CNN Analyzer (github dgschwend/netscope, gh-pages) on prototxt files,
// unmodified: its pegjs parser and graph builder (src/caffe/caffe.coffee), its analyzer (src/analyzer.coffee)
// and the TOTAL row of its summary table (Renderer.summarizeTable in src/renderer.coffee), which is what its
// website shows. Prints one JSON object per file on stdout; non-finite numbers are written as strings
// ("NaN", "Infinity"), as the website would show them.
//
//   node benchmarks/netscope_driver.js --netscope DIR [--phase train|test] [--layers] FILE...
//
// DIR needs CoffeeScript and lodash installed beside it: (cd DIR && npm install coffeescript lodash).
// Used by benchmarks/netscope_parity.py; nothing of Netscope is part of this project.
'use strict';
const fs = require('fs');
const path = require('path');
const Module = require('module');

const args = process.argv.slice(2);
let dir = null;
let phase;
let layers = false;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--netscope') dir = args[++i];
  else if (args[i] === '--phase') phase = args[++i];
  else if (args[i] === '--layers') layers = true;
  else files.push(args[i]);
}
if (!dir || !fs.existsSync(path.join(dir, 'src', 'analyzer.coffee'))) {
  process.stderr.write('netscope_driver: --netscope DIR must be a Netscope checkout (DIR/src/analyzer.coffee)\n');
  process.exit(2);
}
const fromNetscope = Module.createRequire(path.resolve(dir, 'package.json'));
try {
  fromNetscope('coffeescript/register');
  global._ = fromNetscope('lodash');
} catch (e) {
  process.stderr.write(`netscope_driver: ${e.message.split('\n')[0]}; run (cd ${dir} && npm install coffeescript lodash)\n`);
  process.exit(2);
}

// The browser globals Netscope's analysis and table code read; the renderer's DOM libraries are not needed.
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === 'tableify' || request === 'tablesorter') return () => {};
  return load.call(this, request, ...rest);
};
global.window = global;
global.do_variants_analysis = false;
global.$ = { inArray: (value, array) => array.indexOf(value) };
let errors = [];
global.onerror = (message) => { errors.push(String(message)); };  // Netscope shows these and goes on
const print = console.log;
console.log = () => {};  // the analyzer logs its nodes

const Caffe = fromNetscope(path.resolve(dir, 'src/caffe/caffe.coffee'));
const Renderer = fromNetscope(path.resolve(dir, 'src/renderer.coffee'));

const finite = (key, value) => (typeof value === 'number' && !Number.isFinite(value) ? String(value) : value);
for (const file of files) {
  errors = [];
  const out = { file };
  try {
    const net = Caffe.parse(fs.readFileSync(file, 'utf8'), phase);
    const table = Object.create(Renderer.prototype);
    table.net = net;
    table.toSuffixForm = (value) => value;  // the TOTAL row unrounded
    const detail = table.generateTable();
    const summary = table.summarizeTable(_.cloneDeep(detail));
    const total = summary[summary.length - 1];
    out.total = { ...total.ops, param: total.mem.param, activation: total.mem.activation };
    if (layers) {
      out.layers = detail.map((e) => ({ name: e.name, type: e.type, batch: e.batch, ch_in: e.ch_in,
        dim_in: e.dim_in, ch_out: e.ch_out, dim_out: e.dim_out, ops: e.ops_raw, mem: e.mem_raw }));
    }
  } catch (e) {
    out.exception = String((e && e.message) || e);
  }
  out.errors = errors;
  print(JSON.stringify(out, finite));
}
