// Per-node times of ONNX Runtime on one model, from its own profiler, to set beside
// `convoy bench MODEL --per-op` (same session options as ort_bench.js).
//
//   node tools/bench/ort_profile.js MODEL THREADS SHAPE_JSON [RUNS] [WARMUP]
//   e.g. node tools/bench/ort_profile.js resnet50_op13.onnx 1 '[1,3,224,224]' 13 3
// Prints one line per node in execution order: the median over the timed runs of its kernel
// time in ms, then the node's name (ORT names fused NCHWc nodes after their output), and the sum.
'use strict';
const ort = require(process.env.HOME + '/.cache/convoy-ort/node_modules/onnxruntime-node');
const fs = require('fs');
const os = require('os');
const path = require('path');

async function main() {
  const [model, threads, shapeJson, runsArg, warmupArg] = process.argv.slice(2);
  if (!model || !threads || !shapeJson) {
    console.error('usage: ort_profile.js MODEL THREADS SHAPE_JSON [RUNS=13] [WARMUP=3]');
    process.exit(2);
  }
  const runs = Number(runsArg || 13), warmup = Number(warmupArg || 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort-profile-'));
  const session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: Number(threads),
    interOpNumThreads: 1,
    enableProfiling: true,
    profileFilePrefix: path.join(dir, 'ort'),
  });
  const shape = JSON.parse(shapeJson);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let seed = 12345;  // seeded uniform [-1, 1), like convoy bench and ort_bench.js
  for (let i = 0; i < n; ++i) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    data[i] = seed / 1073741824 - 1;
  }
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, shape)};
  for (let i = 0; i < warmup + runs; ++i) await session.run(feeds);
  session.endProfiling();
  const file = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => path.join(dir, f))[0];
  const events = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.rmSync(dir, {recursive: true, force: true});
  const times = new Map();  // insertion order = execution order of the first run
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const name = e.name.slice(0, -'_kernel_time'.length);
    if (!times.has(name)) times.set(name, []);
    times.get(name).push(e.dur / 1000);
  }
  let total = 0;
  for (const [name, t] of times) {
    const s = t.slice(warmup).sort((a, b) => a - b);
    const med = s.length ? s[s.length >> 1] : 0;
    total += med;
    console.log(`${med.toFixed(3).padStart(8)}  ${name}`);
  }
  console.log(`${total.toFixed(3).padStart(8)}  sum (${runs} runs after ${warmup} warm-up)`);
}

main().catch((e) => {
  console.error('ort_profile: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
