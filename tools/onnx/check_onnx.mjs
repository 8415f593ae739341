// Runs a graph `saqhost export` wrote in ONNX Runtime (CPU) and compares it with saqhost's own eval of the same
// checkpoint (the `--reference` folder export writes beside it):
//   - every quantized input's integer codes on the first samples: where a sample's codes first differ, by one
//     level only (float rounding put a value on the other side of a rounding tie; counted);
//   - the logits: within 1e-4 relative (max |Δ| over a sample's logits / its largest |logit|) on every sample
//     whose codes all agree; the samples beyond the code batch that exceed it are counted as flips' effects;
//   - of the codes of samples whose earlier layers all agree, at most 1e-3 differ (ties are rare);
//   - top-1 accuracy over all samples (from 1000 on) within 0.1 points, as written and as deployed (the two
//     sessions below). Top-1 disagreements are counted; on a trained model they are as rare as flips near a
//     decision boundary, on an untrained deep one a flip's cascade through the layers changes many.
// usage: node check_onnx.mjs MODEL.onnx REFERENCE_DIR [saqhost's test top-1 from summary.json]
// Prints one JSON line with the measurements last; exit status 0 when all four hold, 1 otherwise.
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';

const [modelPath, refDir, summaryTop1] = process.argv.slice(2);
if (!modelPath || !refDir) {
  console.error('usage: node check_onnx.mjs MODEL.onnx REFERENCE_DIR [summary_top1]');
  process.exit(2);
}
const ref = JSON.parse(fs.readFileSync(path.join(refDir, 'reference.json'), 'utf8'));
const read = (name, Type) => {
  const b = fs.readFileSync(path.join(refDir, name));
  return new Type(b.buffer, b.byteOffset, b.byteLength / Type.BYTES_PER_ELEMENT);
};
const input = read('input.f32', Float32Array);
const labels = read('labels.i64', BigInt64Array);
const expected = read('logits.f32', Float32Array);
const n = ref.samples, k = ref.classes, m = ref.code_samples;
const per = ref.input_shape.reduce((a, b) => a * b, 1);
const argmax = (a, off) => {
  let best = 0;
  for (let j = 1; j < k; ++j) if (a[off + j] > a[off + best]) best = j;
  return best;
};

// Two sessions: the graph's own semantics (graph optimisations off: every node as written, float where the graph
// says float), held to the strict comparisons; and ONNX Runtime as deployed (all optimisations: it fuses QDQ into
// integer kernels and quantizes the float biases to int32, which moves values at rounding ties more often), held
// to the accuracy match.
const threads = Number(process.env.ORT_THREADS || 2);
const session = (level) => ort.InferenceSession.create(modelPath, { intraOpNumThreads: threads, graphOptimizationLevel: level });

// the code batch, through the graph with the codes as outputs
const check = await ort.InferenceSession.create(path.join(refDir, 'model.check.onnx'),
                                                { intraOpNumThreads: threads, graphOptimizationLevel: 'disabled' });
const first = await check.run({ input: new ort.Tensor('float32', input.subarray(0, m * per), [m, ...ref.input_shape]) });
// A sample's first layer with a differing code (the layers come in an order in which each layer's input depends
// on earlier layers only) differs by one level where float rounding fell on the other side of a tie; later
// layers inherit the difference and may differ by more.
const flipped = new Uint8Array(m);
const layers = [];
let codeFlips = 0, worstCode = 0, worstFirst = 0, firstFlips = 0, firstCodes = 0;
for (const c of ref.codes) {
  const mine = read(c.file, Int16Array), theirs = first[c.output].data;
  const each = mine.length / m;
  const divergedBefore = flipped.slice();
  let flips = 0;
  for (let i = 0; i < mine.length; ++i) {
    const d = Math.abs(Number(theirs[i]) - mine[i]);
    if (d === 0) continue;
    ++flips;
    worstCode = Math.max(worstCode, d);
    const sample = Math.floor(i / each);
    if (!divergedBefore[sample]) worstFirst = Math.max(worstFirst, d), ++firstFlips;
    flipped[sample] = 1;
  }
  firstCodes += (m - divergedBefore.reduce((a, b) => a + b, 0)) * each;  // codes of samples that agreed so far
  codeFlips += flips;
  layers.push({ layer: c.layer, codes: mine.length, flips });
}

// every sample, through the deployable graph
async function compare(level) {
  const s = await session(level);
  const logits = new Float32Array(n * k);
  const batch = 500;
  for (let b0 = 0; b0 < n; b0 += batch) {
    const b = Math.min(batch, n - b0);
    const out = await s.run({ input: new ort.Tensor('float32', input.subarray(b0 * per, (b0 + b) * per), [b, ...ref.input_shape]) });
    logits.set(out.logits.data, b0 * k);
  }
  const r = { worst_relative_error_without_flips: 0, samples_beyond_1e4: 0, top1_disagreements: 0,
              top1_disagreements_in_code_batch: 0, top1: 0 };
  let correct = 0;
  for (let i = 0; i < n; ++i) {
    let dmax = 0, scale = 0;
    for (let j = 0; j < k; ++j) {
      dmax = Math.max(dmax, Math.abs(logits[i * k + j] - expected[i * k + j]));
      scale = Math.max(scale, Math.abs(expected[i * k + j]));
    }
    const rel = dmax / Math.max(scale, 1e-12);
    if (i < m && !flipped[i]) r.worst_relative_error_without_flips = Math.max(r.worst_relative_error_without_flips, rel);
    if (rel > 1e-4) ++r.samples_beyond_1e4;
    const a = argmax(logits, i * k), e = argmax(expected, i * k);
    if (a !== e) ++r.top1_disagreements, r.top1_disagreements_in_code_batch += i < m;
    correct += BigInt(a) === labels[i];
  }
  r.top1 = (100 * correct) / n;
  return r;
}
let correctSaq = 0;
for (let i = 0; i < n; ++i) correctSaq += BigInt(argmax(expected, i * k)) === labels[i];
const top1Saq = (100 * correctSaq) / n;
const graph = await compare('disabled'), deployed = await compare('all');
const result = {
  onnxruntime: ort.env.versions?.common ?? null, samples: n, code_samples: m, code_flips: codeFlips,
  samples_with_flips: flipped.reduce((a, b) => a + b, 0), worst_code_difference: worstCode,
  worst_first_code_difference: worstFirst, first_flip_rate: firstCodes ? firstFlips / firstCodes : 0,
  top1_saqhost: top1Saq, top1_saqhost_summary: summaryTop1 ? Number(summaryTop1) : null, graph, deployed, layers,
};
// Ties are rare: of the codes of samples that agreed on every earlier layer, at most 1e-3 differ (a wrong scale, clip or
// zero point moves many at once; in a deep ResNet the float residual stream's rounding drift reaches ~3e-4). Top-1 accuracy is compared from 1000 samples on: on fewer, one sample that a
// flip pushed across a decision boundary (an untrained net has many near-ties) moves it by more than 0.1 points.
const accuracy = n >= 1000;
const ok = worstFirst <= 1 && result.first_flip_rate <= 1e-3 && graph.worst_relative_error_without_flips <= 1e-4 &&
           (!accuracy || (Math.abs(graph.top1 - top1Saq) <= 0.1 && Math.abs(deployed.top1 - top1Saq) <= 0.1));
const pct = (x) => x.toFixed(2) + '%';
console.log(`ONNX Runtime ${result.onnxruntime}, ${n} test samples: saqhost top-1 ${pct(top1Saq)}` +
            (summaryTop1 ? ` (its run measured ${pct(Number(summaryTop1))})` : '') +
            `; the graph as written ${pct(graph.top1)} (${graph.top1_disagreements} top-1 disagreements), as deployed ` +
            `(all optimisations) ${pct(deployed.top1)} (${deployed.top1_disagreements}); input codes of the first ${m}: ` +
            `${codeFlips} differ in ${result.samples_with_flips} samples (first differences ${worstFirst} level, ` +
            `${(result.first_flip_rate * 1e6).toFixed(1)} per million), the others' logits within ` +
            `${graph.worst_relative_error_without_flips.toExponential(2)} relative: ${ok ? 'PASS' : 'FAIL'}`);
console.log(JSON.stringify(result));
process.exit(ok ? 0 : 1);
