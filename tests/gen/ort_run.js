#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime (onnxruntime-node) on float32 .npy inputs: the independent
// reference for convoy's dense maps and `convoy convert` outputs.
//
//   node tests/gen/ort_run.js MODEL.onnx IN.npy OUT.npy [IN2.npy OUT2.npy ...]
//
// The session is created once and run on every input (single-input models; the first output is
// written). onnxruntime-node comes from $CONVOY_ORT_DIR (default ~/.cache/convoy-ort, installed
// by tools/setup_ort.sh). Exit 0 on success, 1 with one line on stderr otherwise.
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');

function fail(msg) {
  process.stderr.write(`ort_run: ${msg}\n`);
  process.exit(1);
}

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') fail(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  if (!/'descr':\s*'<f4'/.test(header)) fail(`${file}: dtype is not little-endian float32`);
  if (!/'fortran_order':\s*False/.test(header)) fail(`${file}: Fortran order is not supported`);
  const m = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!m) fail(`${file}: no shape in the header`);
  const dims = m[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const off = start + hlen;
  if (buf.length - off !== count * 4) fail(`${file}: data size does not match shape (${dims})`);
  const data = new Float32Array(count);
  Buffer.from(data.buffer).set(buf.subarray(off, off + count * 4));
  return { dims, data };
}

function writeNpy(file, dims, data) {
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(new Float32Array(data).buffer);
  const tmp = `${file}.tmp${process.pid}`;
  fs.writeFileSync(tmp, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
  fs.renameSync(tmp, file);
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 3 || args.length % 2 !== 1) fail('usage: ort_run.js MODEL.onnx IN.npy OUT.npy [IN.npy OUT.npy ...]');
  const dir = process.env.CONVOY_ORT_DIR || path.join(os.homedir(), '.cache', 'convoy-ort');
  let ort;
  try {
    ort = require(path.join(dir, 'node_modules', 'onnxruntime-node'));
  } catch (e) {
    fail(`cannot load onnxruntime-node from ${dir} (run tools/setup_ort.sh): ${e.message.split('\n')[0]}`);
  }
  const session = await ort.InferenceSession.create(args[0], { intraOpNumThreads: 2 });
  if (session.inputNames.length !== 1) fail(`${args[0]}: ${session.inputNames.length} inputs; this runner feeds one`);
  for (let i = 1; i < args.length; i += 2) {
    const x = readNpy(args[i]);
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x.data, x.dims) };
    const out = await session.run(feeds);
    const y = out[session.outputNames[0]];
    writeNpy(args[i + 1], y.dims.map(Number), y.data);
  }
}

main().catch((e) => fail(String(e && e.message ? e.message : e).split('\n')[0]));
