// ONNX Runtime side of tools/bench/compare_ort.py: creates one session, then serves timing
// requests on stdin so that the driver can alternate it with convoy runs.
//
//   node ort_bench.js MODEL THREADS SHAPE_JSON
//   stdin  "run W K"  -> stdout {"samples_ms": [...]}   (W untimed runs, then K timed ones)
//   stdin  "quit"     -> stdout {"peak_rss_bytes": N}, exit
// On start it prints {"load_ms": ..., "input": NAME} once the session exists.
'use strict';
const ort = require(process.env.HOME + '/.cache/convoy-ort/node_modules/onnxruntime-node');
const readline = require('readline');

async function main() {
  const [model, threads, shapeJson] = process.argv.slice(2);
  const shape = JSON.parse(shapeJson);
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: Number(threads),
    interOpNumThreads: 1,
  });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const name = session.inputNames[0];
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let seed = 12345;  // seeded uniform [-1, 1), like convoy bench
  for (let i = 0; i < n; ++i) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    data[i] = seed / 1073741824 - 1;
  }
  const feeds = {[name]: new ort.Tensor('float32', data, shape)};
  console.log(JSON.stringify({load_ms: loadMs, input: name}));

  const rl = readline.createInterface({input: process.stdin});
  for await (const line of rl) {
    const words = line.trim().split(/\s+/);
    if (words[0] === 'run') {
      const warmup = Number(words[1]), iters = Number(words[2]);
      for (let i = 0; i < warmup; ++i) await session.run(feeds);
      const samples = [];
      for (let i = 0; i < iters; ++i) {
        const s = process.hrtime.bigint();
        await session.run(feeds);
        samples.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
      console.log(JSON.stringify({samples_ms: samples}));
    } else if (words[0] === 'quit') {
      console.log(JSON.stringify({peak_rss_bytes: process.resourceUsage().maxRSS * 1024}));
      process.exit(0);
    }
  }
}

main().catch((e) => {
  console.error('ort_bench: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
