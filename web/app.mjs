// The page: one photo in; the plain bilinear resize, the learned resize and the classifier's
// probabilities out, each computed by onnxruntime-web from the run's ONNX exports (served by
// learnresize serve with /config.json). window.learnresize holds the last result, for tests.
import * as ort from "/ort/ort.wasm.min.mjs";

ort.env.wasm.wasmPaths = "/ort/";
ort.env.wasm.numThreads = 1; // threads need cross-origin isolation; one is plenty for one photo

const $ = (id) => document.getElementById(id);
const status = (msg) => { $("status").textContent = msg; };

// Auto display mapping, as package plots' Auto (plots.Mapping.Resolve): the 0.5th and 99.5th
// percentiles of the values, widened to take in [0, 1], an end within 0.02 of 0 or 1 taken as it.
function autoMapping(values) {
  const v = Array.from(values).filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return { lo: 0, hi: 1 };
  const at = (p) => v[Math.round(p * (v.length - 1))];
  let lo = Math.min(at(0.005), 0), hi = Math.max(at(0.995), 1);
  if (lo > -0.02) lo = 0;
  if (hi < 1.02) hi = 1;
  return { lo, hi };
}

function mappingCaption({ lo, hi }) {
  if (lo === 0 && hi === 1) return "clipped to [0, 1]";
  return `mapped [${lo.toFixed(2)}, ${hi.toFixed(2)}] → [0, 1]`;
}

// draw puts a float [1, h, w, 3] tensor's values, mapped [lo, hi] -> [0, 255], on a canvas and
// returns the fraction of values clipped.
function draw(canvas, data, h, w, { lo, hi }) {
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  let clipped = 0;
  for (let i = 0; i < h * w; i++) {
    for (let c = 0; c < 3; c++) {
      let x = (data[3 * i + c] - lo) / (hi - lo);
      if (x < 0 || x > 1) clipped++;
      img.data[4 * i + c] = Math.round(255 * Math.min(1, Math.max(0, x)));
    }
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return clipped / (3 * h * w);
}

let config, classifier, resizer, bilinear;

async function load() {
  config = await (await fetch("/config.json")).json();
  const opts = { executionProviders: ["wasm"] };
  classifier = await ort.InferenceSession.create("/model.onnx", opts);
  bilinear = await ort.InferenceSession.create("/bilinear.onnx", opts);
  if (config.resizer) resizer = await ort.InferenceSession.create("/resizer.onnx", opts);
  $("model").textContent = `${config.title} (run ${config.run}): photos are brought to ${config.inputWidth}x${config.inputHeight}, ` +
    `then resized to ${config.targetWidth}x${config.targetHeight}.`;
  document.body.dataset.ready = "true";
}

async function classify(file) {
  status("");
  const bitmap = await createImageBitmap(file);
  const { inputHeight: h, inputWidth: w, targetHeight: th, targetWidth: tw } = config;
  const canvas = $("input");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0, w, h); // the browser's own scaling when the photo is not w x h
  $("input-caption").textContent = bitmap.width === w && bitmap.height === h ? `input ${w}x${h}` :
    `input ${bitmap.width}x${bitmap.height}, scaled to ${w}x${h} by the browser`;
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const pixels = new Uint8Array(h * w * 3), floats = new Float32Array(h * w * 3);
  for (let i = 0; i < h * w; i++) {
    for (let c = 0; c < 3; c++) {
      pixels[3 * i + c] = rgba[4 * i + c];
      floats[3 * i + c] = rgba[4 * i + c] / 255;
    }
  }
  const result = {};
  const probs = (await classifier.run({ images: new ort.Tensor("uint8", pixels, [1, h, w, 3]) })).probabilities.data;
  result.probabilities = Array.from(probs);
  const plain = (await bilinear.run({ images: new ort.Tensor("float32", floats, [1, h, w, 3]) })).resized.data;
  draw($("bilinear"), plain, th, tw, { lo: 0, hi: 1 });
  $("bilinear-caption").textContent = `plain bilinear resize to ${tw}x${th}`;
  if (resizer) {
    const learned = (await resizer.run({ images: new ort.Tensor("float32", floats, [1, h, w, 3]) })).resized.data;
    const m = autoMapping(learned);
    const clipped = draw($("learned"), learned, th, tw, m);
    result.mapping = m;
    $("learned-caption").textContent = `learned resize to ${tw}x${th}: output ${mappingCaption(m)} (${(100 * clipped).toFixed(1)}% clipped)`;
  } else {
    $("learned-caption").textContent = "no learned resize: this run is the plain-resize baseline";
  }
  $("probs").innerHTML = config.classes.map((name, i) =>
    `<div><span class="bar" style="width:${Math.round(200 * probs[i])}px"></span> ${name}: <span id="p-${name}">${(100 * probs[i]).toFixed(2)}%</span></div>`).join("");
  window.learnresize = result;
  document.body.dataset.done = String(Number(document.body.dataset.done || 0) + 1);
}

$("file").addEventListener("change", (e) => e.target.files[0] && classify(e.target.files[0]).catch((err) => status(String(err))));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files[0]) classify(e.dataTransfer.files[0]).catch((err) => status(String(err)));
});
load().catch((err) => status(`the models did not load: ${err}`));
