// gradlab live lab: talks to the server's /api, draws its own canvas charts.
'use strict';

const qs = new URLSearchParams(location.search);
const token = qs.get('token');
const $ = (id) => document.getElementById(id);

function withToken(path) {
  return token ? path + (path.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) : path;
}
async function api(path, opts = {}) {
  const r = await fetch(withToken('/api' + path), opts);
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}
const post = (path, body) => api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

// ---------- the experiment text: a few keys edited through the form ----------
function sectionRange(lines, section) {
  const start = lines.findIndex((l) => l.trim() === '[' + section + ']');
  if (start < 0) return null;
  let end = start + 1;
  while (end < lines.length && !/^\s*\[/.test(lines[end])) end++;
  return [start, end];
}
function getKey(text, section, key) {
  const lines = text.split('\n');
  const r = sectionRange(lines, section);
  if (!r) return null;
  for (let i = r[0] + 1; i < r[1]; i++) {
    const m = lines[i].match(new RegExp('^\\s*' + key + '\\s*=\\s*(.+?)\\s*(#.*)?$'));
    if (m) return m[1].replace(/^"(.*)"$/, '$1');
  }
  return null;
}
function setKey(text, section, key, value) {
  const lines = text.split('\n');
  const line = key + ' = ' + value;
  const r = sectionRange(lines, section);
  if (!r) return text.replace(/\s*$/, '') + '\n\n[' + section + ']\n' + line + '\n';
  for (let i = r[0] + 1; i < r[1]; i++) {
    if (new RegExp('^\\s*' + key + '\\s*=').test(lines[i])) {
      lines[i] = line;
      return lines.join('\n');
    }
  }
  lines.splice(r[0] + 1, 0, line);
  return lines.join('\n');
}
function firstActivation(text) {
  const at = text.indexOf('[network]');
  const m = at < 0 ? null : text.slice(at).match(/act\s*=\s*"([^"]*)"/);
  return m ? m[1] : '';
}
function setFirstActivation(text, act) {
  const at = text.indexOf('[network]');
  if (at < 0) return text;
  return text.slice(0, at) + text.slice(at).replace(/act\s*=\s*"[^"]*"/, 'act = "' + act + '"');
}
const fields = [
  ['f-seeds', 'train', 'seeds', false],
  ['f-iters', 'train', 'max_iters', false],
  ['f-optim', 'optim', 'name', true],
  ['f-lr', 'optim', 'lr', false],
  ['f-init', 'init', 'weights', true],
];
function formFromToml() {
  const t = $('toml').value;
  for (const [id, sec, key] of fields) {
    const v = getKey(t, sec, key);
    $(id).value = v ?? (id === 'f-seeds' ? '32' : id === 'f-optim' ? 'sgd' : '');
  }
  $('f-act').value = firstActivation(t);
}
function tomlFromForm(id) {
  let t = $('toml').value;
  if (id === 'f-act') {
    if ($('f-act').value) t = setFirstActivation(t, $('f-act').value);
  } else {
    const [, sec, key, quoted] = fields.find((f) => f[0] === id);
    const v = $(id).value.trim();
    if (v) t = setKey(t, sec, key, quoted ? '"' + v + '"' : v);
  }
  $('toml').value = t;
  saveHash();
}

// ---------- the experiment in the URL: a link reproduces it ----------
// `#preset=<name>&toml=<text>`: the text as edited (a preset's name alone when unedited).
function hashState() {
  const h = new URLSearchParams(location.hash.slice(1));
  return { preset: h.get('preset'), toml: h.get('toml'), pace: h.get('pace') };
}
let currentPreset = null;
function saveHash() {
  const h = new URLSearchParams();
  if (currentPreset) h.set('preset', currentPreset);
  const p = presets.find((x) => x.name === currentPreset);
  if (!p || p.toml !== $('toml').value) h.set('toml', $('toml').value);
  if ($('f-pace').value) h.set('pace', $('f-pace').value);
  history.replaceState(null, '', location.pathname + location.search + '#' + h.toString());
}

// ---------- state of the run on screen ----------
let presets = [];
let run = null; // { id, es, columns, seeds: [[it, values] by row index], probes, correct, preview, status }
const palette = ['#1f6feb', '#d1242f', '#2da44e', '#8250df', '#bf8700', '#0a7a8a'];

function setStatus(text) {
  $('status').textContent = text;
}
function showError(msg) {
  $('error').hidden = !msg;
  $('error').textContent = msg || '';
}
function buttons(state) {
  const live = state === 'running' || state === 'paused';
  $('run').disabled = live;
  $('pause').disabled = !live;
  $('step').disabled = !live;
  $('stop').disabled = !live;
  $('pause').textContent = state === 'paused' ? 'Resume' : 'Pause';
  document.body.dataset.state = state;
}

async function startRun() {
  showError('');
  $('summary').hidden = true;
  try {
    const pace = $('f-pace').value ? Number($('f-pace').value) : null;
    const { id } = await post('/runs', { toml: $('toml').value, pace });
    if (run && run.es) run.es.close();
    $('confusion-fig').hidden = true;
    run = { id, columns: [], seeds: [], probes: [], correct: [], preview: null, status: 'running', iteration: 0, t0: performance.now() };
    buttons('running');
    listen(id);
    refreshRuns();
  } catch (e) {
    showError(e.message);
    buttons('idle');
  }
}

function listen(id) {
  const es = new EventSource(withToken('/api/runs/' + id + '/events'));
  run.es = es;
  es.addEventListener('start', (ev) => {
    const d = JSON.parse(ev.data);
    run.preview = d.preview;
    run.points = d.points;
    $('boundary-card').hidden = !d.points;
    drawSamples();
    drawBoundary();
  });
  const apply = (ev) => {
    const d = JSON.parse(ev.data);
    run.columns = d.columns;
    run.status = d.status;
    run.iteration = d.iteration;
    run.maxIters = d.max_iters;
    run.elapsed = d.elapsed;
    run.probes = d.probes;
    if (d.landscape) run.landscape = d.landscape;
    if (d.boundary) run.boundary = d.boundary;
    if (d.confusion) drawConfusion(d.confusion);
    run.correct = d.correct;
    for (const r of d.rows) {
      const [seed, it, index, ...values] = r;
      (run.seeds[seed] ||= [])[index] = [it, values];
      run.seeds[seed].length = index + 1; // a replaced row ends the seed's list
    }
    run.nSeeds = d.seeds;
    if (d.error) showError(d.error);
    schedule();
    return d;
  };
  es.addEventListener('update', (ev) => {
    const d = apply(ev);
    buttons(d.status);
  });
  es.addEventListener('end', async (ev) => {
    const d = apply(ev);
    es.close();
    buttons(d.status === 'failed' ? 'failed' : 'finished');
    await showSummary(id);
    document.body.dataset.state = d.status === 'failed' ? 'failed' : 'done';
    refreshRuns();
  });
  es.onerror = () => {
    if (run && run.status !== 'done') setStatus('connection lost; the run goes on in the server');
  };
}

async function showSummary(id) {
  const info = await api('/runs/' + id);
  $('command').hidden = false;
  $('command').textContent = 'reproduce from the command line:\n' + info.command;
  const c = info.summary && info.summary.cells && info.summary.cells[0];
  if (!c) return;
  const s = $('summary');
  const held = c.median_held_out_accuracy;
  s.dataset.seeds = c.seeds;
  s.dataset.converged = c.converged;
  s.dataset.diverged = c.diverged;
  s.dataset.medianIterations = c.median_iterations ?? '';
  s.dataset.heldOut = held ?? '';
  s.dataset.complete = info.summary.complete;
  s.textContent =
    `${info.summary.complete ? 'finished' : 'stopped (outputs marked incomplete)'}: ` +
    `${c.converged}/${c.seeds} seeds stopped by the rule, ${c.diverged} diverged · ` +
    `median iterations ${c.median_iterations ?? '—'}` +
    (held != null ? ` · median held-out accuracy ${(100 * held).toFixed(1)}%` : '') +
    (info.seconds != null ? ` · ${info.seconds.toFixed(1)} s` : '') +
    ` · ${info.id}`;
  s.hidden = false;
}

// ---------- bands over seeds ----------
function quantile(sorted, q) {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
// Median and IQR at up to `points` iterations; a stopped seed holds its last finite value.
function band(seeds, col, points = 240) {
  const its = new Set();
  for (const rows of seeds) if (rows) for (const r of rows) if (r) its.add(r[0]);
  const grid = [...its].sort((a, b) => a - b);
  const step = Math.max(1, Math.ceil(grid.length / points));
  const picks = grid.filter((_, i) => i % step === 0 || i === grid.length - 1);
  const next = seeds.map(() => 0), held = seeds.map(() => null);
  const out = { x: [], lo: [], mid: [], hi: [] };
  for (const it of picks) {
    const vals = [];
    seeds.forEach((rows, s) => {
      if (!rows) return;
      while (next[s] < rows.length && (!rows[next[s]] || rows[next[s]][0] <= it)) {
        const r = rows[next[s]];
        if (r && r[1][col] != null) held[s] = r[1][col];
        next[s]++;
      }
      if (held[s] != null) vals.push(held[s]);
    });
    if (!vals.length) continue;
    vals.sort((a, b) => a - b);
    out.x.push(it);
    out.lo.push(quantile(vals, 0.25));
    out.mid.push(quantile(vals, 0.5));
    out.hi.push(quantile(vals, 0.75));
  }
  return out;
}

// ---------- charts ----------
function sizeCanvas(c) {
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 300, h = c.clientHeight || 200;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const g = c.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  return [g, w, h];
}
function tick(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-2) return v.toExponential(0).replace('e+', 'e');
  return String(+v.toPrecision(3));
}
// series: [{ band, color, label, faint: [[x, y], ...][] }]
function lineChart(canvas, series, { log = false, yRange = null, xMax = null, empty = 'waiting for a run' } = {}) {
  const [g, w, h] = sizeCanvas(canvas);
  g.clearRect(0, 0, w, h);
  const L = 46, R = 8, T = 8, B = 22;
  const f = (y) => (log ? Math.log10(Math.max(y, 1e-12)) : y);
  let xs = [], ys = [];
  for (const s of series) {
    xs.push(...s.band.x);
    ys.push(...s.band.lo.map(f), ...s.band.hi.map(f));
  }
  ys = ys.filter(Number.isFinite);
  if (!xs.length || !ys.length) {
    g.fillStyle = '#98a2b3';
    g.font = '12px system-ui';
    g.fillText(empty, L, h / 2);
    return;
  }
  const x0 = 1, x1 = Math.max(xMax || 0, ...xs, 2);
  let [y0, y1] = yRange ? yRange.map(f) : [Math.min(...ys), Math.max(...ys)];
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (w - L - R);
  const Y = (y) => T + (1 - (f(y) - y0) / (y1 - y0)) * (h - T - B);
  g.strokeStyle = '#e4e7ec';
  g.fillStyle = '#667085';
  g.font = '11px system-ui';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + ((y1 - y0) * i) / 4;
    const py = T + (1 - i / 4) * (h - T - B);
    g.beginPath(); g.moveTo(L, py); g.lineTo(w - R, py); g.stroke();
    g.fillText(tick(log ? Math.pow(10, yv) : yv), 2, py + 4);
  }
  for (let i = 0; i <= 4; i++) {
    const xv = x0 + ((x1 - x0) * i) / 4;
    g.fillText(tick(Math.round(xv)), X(xv) - (i === 4 ? 24 : 6), h - 6);
  }
  for (const s of series) {
    g.strokeStyle = s.color;
    g.globalAlpha = Math.max(0.04, Math.min(0.25, 4 / Math.max(1, (s.faint || []).length)));
    for (const line of s.faint || []) {
      g.beginPath();
      line.forEach(([x, y], i) => (i ? g.lineTo(X(x), Y(y)) : g.moveTo(X(x), Y(y))));
      g.stroke();
    }
    const b = s.band;
    g.globalAlpha = 0.2;
    g.fillStyle = s.color;
    g.beginPath();
    b.x.forEach((x, i) => (i ? g.lineTo(X(x), Y(b.hi[i])) : g.moveTo(X(x), Y(b.hi[i]))));
    for (let i = b.x.length - 1; i >= 0; i--) g.lineTo(X(b.x[i]), Y(b.lo[i]));
    g.closePath();
    g.fill();
    g.globalAlpha = 1;
    g.lineWidth = 2;
    g.beginPath();
    b.x.forEach((x, i) => (i ? g.lineTo(X(x), Y(b.mid[i])) : g.moveTo(X(x), Y(b.mid[i]))));
    g.stroke();
    g.lineWidth = 1;
  }
  // Labels where curves are not: bottom right for rising curves (accuracy), top right else.
  const labelled = series.filter((s) => s.label);
  let ly = yRange ? h - B - 8 - 14 * (labelled.length - 1) : T + 12;
  for (const s of labelled) {
    g.fillStyle = s.color;
    g.fillText(s.label, w - R - g.measureText(s.label).width - 4, ly);
    ly += 14;
  }
}

function faintLines(seeds, col, perSeed = 120) {
  const lines = [];
  for (const rows of seeds) {
    if (!rows) continue;
    const pts = rows.filter((r) => r && r[1][col] != null).map((r) => [r[0], r[1][col]]);
    const step = Math.max(1, Math.ceil(pts.length / perSeed));
    lines.push(pts.filter((_, i) => i % step === 0 || i === pts.length - 1));
  }
  return lines;
}

function flowChart(canvas, probes) {
  const [g, w, h] = sizeCanvas(canvas);
  g.clearRect(0, 0, w, h);
  g.font = '11px system-ui';
  if (!probes || !probes.length) {
    g.fillStyle = '#98a2b3';
    g.fillText('probes appear at iteration 1, 2, 4, 8, … and every 100', 10, h / 2);
    return;
  }
  const L = 46, R = 30, T = 10, B = 34;
  const vals = probes.flatMap((p) => p.grad_rms).filter((v) => v != null && v > 0).map(Math.log10);
  let y0 = Math.floor(Math.min(...vals, -1)), y1 = Math.ceil(Math.max(...vals, 0));
  if (y1 === y0) y1 += 1;
  const Y = (v) => T + (1 - (Math.log10(Math.max(v, 1e-30)) - y0) / (y1 - y0)) * (h - T - B);
  const S = (v) => T + (1 - v) * (h - T - B);
  g.strokeStyle = '#e4e7ec';
  g.fillStyle = '#667085';
  for (let e = y0; e <= y1; e++) {
    g.beginPath(); g.moveTo(L, Y(10 ** e)); g.lineTo(w - R, Y(10 ** e)); g.stroke();
    g.fillText('1e' + e, 4, Y(10 ** e) + 4);
  }
  g.fillText('sat.', w - R + 4, T + 8);
  const slot = (w - L - R) / probes.length;
  probes.forEach((p, i) => {
    const cx = L + slot * (i + 0.5);
    const [lo, mid, hi] = p.grad_rms;
    if (mid != null && mid > 0) {
      g.fillStyle = '#1f6feb';
      g.globalAlpha = 0.75;
      g.fillRect(cx - slot * 0.3, Y(mid), slot * 0.6, h - B - Y(mid));
      g.globalAlpha = 1;
      g.strokeStyle = '#0b3d91';
      g.beginPath(); g.moveTo(cx, Y(lo)); g.lineTo(cx, Y(hi)); g.stroke();
    }
    const s = p.saturated[1];
    if (s != null) {
      g.fillStyle = '#d1242f';
      g.beginPath(); g.arc(cx + slot * 0.18, S(s), 4, 0, 7); g.fill();
    }
    g.fillStyle = '#344054';
    g.fillText(p.layer, cx - g.measureText(p.layer).width / 2, h - B + 14);
  });
}

// The loss over the plane of the first seed's path, the path drawn over it.
function pathPlane(canvas, land) {
  const [g, w, h] = sizeCanvas(canvas);
  g.clearRect(0, 0, w, h);
  if (!land) {
    g.fillStyle = '#98a2b3';
    g.font = '12px system-ui';
    g.fillText('computed when the run ends', 10, h / 2);
    return;
  }
  const n = land.axis.length, lo = land.axis[0], hi = land.axis[n - 1];
  const side = Math.min(w, h);
  const ox = (w - side) / 2;
  const logs = land.loss.map((v) => (v == null ? null : Math.log10(Math.max(v, 1e-12))));
  const finite = logs.filter((v) => v != null);
  const a = Math.min(...finite), b = Math.max(...finite);
  const img = g.createImageData(n, n);
  logs.forEach((v, k) => {
    const row = n - 1 - Math.floor(k / n), col = k % n;
    img.data.set(v == null ? [255, 255, 255, 255] : [...colour((v - a) / (b - a || 1)), 255], 4 * (row * n + col));
  });
  const off = document.createElement('canvas');
  off.width = off.height = n;
  off.getContext('2d').putImageData(img, 0, 0);
  g.imageSmoothingEnabled = true;
  g.drawImage(off, ox, 0, side, side);
  const X = (x) => ox + ((x - lo) / (hi - lo)) * side, Y = (y) => (1 - (y - lo) / (hi - lo)) * side;
  g.strokeStyle = '#fff';
  g.lineWidth = 2;
  g.beginPath();
  land.path.forEach(([x, y], i) => (i ? g.lineTo(X(x), Y(y)) : g.moveTo(X(x), Y(y))));
  g.stroke();
  const [s0, s1] = [land.path[0], land.path[land.path.length - 1]];
  g.beginPath(); g.arc(X(s0[0]), Y(s0[1]), 5, 0, 7); g.stroke();
  g.fillStyle = '#fff';
  g.beginPath(); g.arc(X(s1[0]), Y(s1[1]), 5, 0, 7); g.fill();
  $('land-cap').textContent =
    `loss (log) in the plane of the first seed's path: PC1 ${(100 * land.explained[0]).toFixed(0)}%, ` +
    `PC2 ${(100 * land.explained[1]).toFixed(0)}% of its variance; ${land.path.length} checkpoints, ○ start, ● end`;
}

let pending = false;
function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    draw();
  });
}
function draw() {
  if (!run || !run.columns.length) return;
  const col = (name) => run.columns.indexOf(name);
  const xMax = run.iteration;
  const one = (name, opts) => {
    const c = col(name);
    if (c < 0) return [];
    return [{ band: band(run.seeds, c), color: palette[0], faint: faintLines(run.seeds, c) }];
  };
  lineChart($('c-loss'), one('loss'), { log: true, xMax });
  lineChart($('c-acc'), one('accuracy'), { yRange: [0, 1.02], xMax });
  lineChart($('c-hacc'), one('held_out_accuracy'), {
    yRange: [0, 1.02],
    xMax,
    empty: 'no held-out curve: set train.held_out_every (and held-out data)',
  });
  flowChart($('c-flow'), run.probes);
  pathPlane($('c-land'), run.landscape);
  drawSamples();
  drawBoundary();
  const over = ['done', 'stopped', 'failed'].includes(run.status);
  const running = run.seeds.filter((r) => r && r.length && r[r.length - 1][0] >= run.iteration).length;
  setStatus(
    `${run.id} · ${run.status} · iteration ${run.iteration}/${run.maxIters ?? '?'} · ` +
      (over ? '' : `${running}/${run.nSeeds ?? run.seeds.length} seeds training · `) +
      `${(run.elapsed ?? 0).toFixed(1)} s`
  );
}

function drawSamples() {
  const box = $('samples');
  if (!run || !run.preview) {
    box.textContent = run ? 'this data is not images' : '';
    return;
  }
  const p = run.preview;
  if (box.childElementCount !== p.images.length) {
    box.textContent = '';
    for (const img of p.images) {
      const c = document.createElement('canvas');
      c.width = p.width;
      c.height = p.height;
      const g = c.getContext('2d');
      const d = g.createImageData(p.width, p.height);
      const lo = Math.min(...img), hi = Math.max(...img);
      img.forEach((v, i) => {
        const k = hi > lo ? Math.round((255 * (v - lo)) / (hi - lo)) : 128;
        d.data.set([k, k, k, 255], 4 * i);
      });
      g.putImageData(d, 0, 0);
      box.appendChild(c);
    }
  }
  [...box.children].forEach((c, i) => {
    c.className = run.correct.length > i ? (run.correct[i] ? 'ok' : 'bad') : '';
  });
}

// ---------- confusion matrix (multi-class heads, after training) ----------
function drawConfusion(c) {
  const k = c.classes, t = $('confusion');
  t.textContent = '';
  const head = t.insertRow();
  head.insertCell().textContent = 'true \\ predicted';
  for (let p = 0; p < k; p++) head.insertCell().textContent = p;
  for (let r = 0; r < k; r++) {
    const row = t.insertRow();
    row.insertCell().textContent = r;
    const counts = c.counts.slice(r * k, (r + 1) * k), total = counts.reduce((a, b) => a + b, 0) || 1;
    counts.forEach((n, p) => {
      const cell = row.insertCell();
      cell.textContent = n || '';
      const share = Math.sqrt(n / total), base = p === r ? [31, 119, 180] : [214, 39, 40];
      cell.style.background = `rgb(${base.map((x) => Math.round(255 - (255 - x) * share)).join(',')})`;
      if (share > 0.7) cell.style.color = '#fff';
    });
  }
  $('confusion-cap').textContent = `${c.set === 'held_out' ? 'held-out' : 'training'} confusion matrix after training, pooled over ${c.seeds} seeds (rows: true class); confusion.csv has each seed's`;
  $('confusion-fig').hidden = false;
}

// ---------- decision boundary (2D data), as TensorFlow Playground draws it ----------
const NEG = [245, 147, 34], POS = [8, 119, 189], CLASSES = ['#1f6feb', '#d1242f', '#2da44e', '#8250df', '#bf8700', '#0a7a8a', '#e16f24', '#6e7781', '#bc4c00', '#116329'];
function diverging(v) {
  const t = Math.max(-1, Math.min(1, v));
  const end = t < 0 ? NEG : POS, a = Math.abs(t);
  return end.map((c) => Math.round(255 + (c - 255) * a));
}
function hex(c) {
  const n = parseInt(c.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
// One map: values row-major from the top-left; `pale` (0..1 per cell) fades towards white.
function boundaryImage(values, n, classes, discrete, pale) {
  const img = new ImageData(n, n);
  values.forEach((v, k) => {
    let c;
    if (classes) c = hex(CLASSES[v % CLASSES.length]).map((x) => Math.round(255 + (x - 255) * 0.55));
    else c = diverging(discrete ? Math.sign(v) * 0.6 : v);
    if (pale) {
      const a = pale[k];
      c = c.map((x) => Math.round(255 + (x - 255) * a));
    }
    img.data.set([...c, 255], 4 * k);
  });
  const off = document.createElement('canvas');
  off.width = off.height = n;
  off.getContext('2d').putImageData(img, 0, 0);
  return off;
}
function drawPlane(canvas, values, pale) {
  const [g, w, h] = sizeCanvas(canvas);
  g.clearRect(0, 0, w, h);
  const b = run.boundary, pts = run.points;
  const side = Math.min(w, h);
  if (!b) {
    g.fillStyle = '#98a2b3';
    g.font = '12px system-ui';
    g.fillText('appears at the first evaluation', 10, side / 2);
  } else {
    g.imageSmoothingEnabled = !$('b-discrete').checked;
    g.drawImage(boundaryImage(values, b.n, b.classes, $('b-discrete').checked, pale), 0, 0, side, side);
  }
  if (!pts) return;
  const [x0, x1, y0, y1] = pts.extent;
  const X = (x) => ((x - x0) / (x1 - x0)) * side, Y = (y) => (1 - (y - y0) / (y1 - y0)) * side;
  const dot = (p, ring) => {
    const c = pts.classes ? hex(CLASSES[p[2] % CLASSES.length]) : diverging(p[2] === 0 ? 0 : Math.sign(p[2]) * Math.max(0.5, Math.abs(p[2])));
    g.fillStyle = `rgb(${c.join(',')})`;
    g.strokeStyle = ring ? '#000' : '#fff';
    g.lineWidth = 1;
    g.beginPath(); g.arc(X(p[0]), Y(p[1]), side < 260 ? 2.5 : 3.2, 0, 7); g.fill(); g.stroke();
  };
  pts.train.forEach((p) => dot(p, false));
  if ($('b-test').checked && pts.test) pts.test.forEach((p) => dot(p, true));
  g.strokeStyle = '#d9dee7';
  g.strokeRect(0.5, 0.5, side - 1, side - 1);
  g.fillStyle = '#667085';
  g.font = '10px system-ui';
  g.fillText(tick(x0), 3, side - 4);
  g.fillText(tick(x1), side - 18, side - 4);
  g.fillText(tick(y1), 3, 11);
}
function drawBoundary() {
  if (!run || !run.points) return;
  const b = run.boundary;
  drawPlane($('b-seed0'), b ? b.seed0 : [], null);
  // The median, fading where the seeds split: agreement ½ is white, 1 full colour.
  const pale = b ? b.agreement.map((a) => Math.max(0, Math.min(1, 2 * a - 1))) : null;
  drawPlane($('b-median'), b ? b.median : [], pale);
  $('b-cap0').textContent = b ? `seed 0 at iteration ${b.iteration}` : 'seed 0';
  $('b-capm').textContent = b ? `median over ${run.nSeeds ?? ''} seeds (pale where they disagree)` + (b.classes ? ': the most common class' : '') : 'median over seeds';
  const box = $('b-units');
  const units = b ? b.units : [];
  if (box.childElementCount !== units.length) {
    box.textContent = '';
    for (const u of units) {
      const f = document.createElement('figure');
      const c = document.createElement('canvas');
      const cap = document.createElement('figcaption');
      cap.textContent = `${u.layer} #${u.unit}`;
      f.append(c, cap);
      box.appendChild(f);
    }
  }
  units.forEach((u, i) => {
    const c = box.children[i].querySelector('canvas');
    const [g, w, h] = sizeCanvas(c);
    const n = Math.round(Math.sqrt(u.values.length));
    g.imageSmoothingEnabled = true;
    g.drawImage(boundaryImage(u.values, n, null, false, null), 0, 0, w, h);
  });
}

// ---------- Task 1's neuron ----------
let neuron = null;
function colour(t) {
  // viridis-like ramp, t in [0, 1]
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(0.9999, Math.max(0, t)) * (stops.length - 1);
  const i = Math.floor(x), f = x - i;
  return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
}
function heat(canvas, values, n) {
  const g = canvas.getContext('2d');
  const img = g.createImageData(n, n);
  const logs = values.map((v) => Math.log10(Math.max(v, 1e-9)));
  const lo = Math.min(...logs), hi = Math.max(...logs);
  logs.forEach((v, k) => {
    const ib = Math.floor(k / n), iw = k % n;
    const row = n - 1 - ib; // b grows upwards
    img.data.set([...colour((v - lo) / (hi - lo || 1)), 255], 4 * (row * n + iw));
  });
  const off = document.createElement('canvas');
  off.width = off.height = n;
  off.getContext('2d').putImageData(img, 0, 0);
  g.imageSmoothingEnabled = true;
  g.drawImage(off, 0, 0, canvas.width, canvas.height);
}
function drawNeuron() {
  if (!neuron) return;
  const n = neuron.ws.length;
  heat($('n-l2'), neuron.l2, n);
  if (neuron.ce) heat($('n-ce'), neuron.ce, n);
  const at = neuron.at;
  if (!at) return;
  for (const [id, q] of [['n-l2', at.l2], ['n-ce', at.ce]]) {
    if (!q) continue;
    const c = $(id), g = c.getContext('2d');
    const px = ((at.w + 6) / 12) * c.width, py = (1 - (at.b + 6) / 12) * c.height;
    const len = Math.hypot(q.dw, q.db) || 1;
    const k = 40 / len;
    g.strokeStyle = '#fff';
    g.lineWidth = 2;
    g.beginPath(); g.moveTo(px, py); g.lineTo(px - q.dw * k, py + q.db * k); g.stroke();
    g.fillStyle = '#ff4d4f';
    g.beginPath(); g.arc(px, py, 6, 0, 7); g.fill();
  }
  const f = (v) => (v == null ? '—' : v.toExponential(3));
  $('neuron-at').textContent =
    `w = ${at.w.toFixed(2)}, b = ${at.b.toFixed(2)}, ŷ = σ(w·1 + b) = ${at.output.toFixed(4)}, y = 0.5\n` +
    `L2: ${f(at.l2.loss)}   ∂L2/∂w = ${f(at.l2.dw)}   ∂L2/∂b = ${f(at.l2.db)}\n` +
    (at.ce ? `CE: ${f(at.ce.loss)}   ∂CE/∂w = ${f(at.ce.dw)}   ∂CE/∂b = ${f(at.ce.db)}\n` : '') +
    'white arrow: the step gradient descent takes (−gradient, scaled)';
}
let neuronBusy = false, neuronNext = null;
async function neuronAt(w, b) {
  neuronNext = [w, b];
  if (neuronBusy) return;
  neuronBusy = true;
  while (neuronNext) {
    const [x, y] = neuronNext;
    neuronNext = null;
    try {
      neuron = await api(`/neuron?w=${x}&b=${y}`);
      drawNeuron();
    } catch (e) {
      $('neuron-at').textContent = e.message;
    }
  }
  neuronBusy = false;
}
function neuronPointer(canvas) {
  let down = false;
  const at = (ev) => {
    const r = canvas.getBoundingClientRect();
    const w = ((ev.clientX - r.left) / r.width) * 12 - 6;
    const b = (1 - (ev.clientY - r.top) / r.height) * 12 - 6;
    neuronAt(Math.max(-6, Math.min(6, w)), Math.max(-6, Math.min(6, b)));
  };
  canvas.addEventListener('pointerdown', (ev) => { down = true; canvas.setPointerCapture(ev.pointerId); at(ev); });
  canvas.addEventListener('pointermove', (ev) => down && at(ev));
  canvas.addEventListener('pointerup', () => (down = false));
}

// ---------- past runs, and two compared ----------
let chosen = [];
async function refreshRuns() {
  let list = [];
  try {
    list = await api('/runs');
  } catch (e) {
    return;
  }
  const body = $('runs').querySelector('tbody');
  body.textContent = '';
  for (const r of list) {
    const s = r.summary || {};
    const tr = document.createElement('tr');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = chosen.includes(r.id);
    box.addEventListener('change', () => {
      chosen = box.checked ? [...chosen, r.id].slice(-2) : chosen.filter((x) => x !== r.id);
      refreshRuns();
      compare();
    });
    const td = document.createElement('td');
    td.appendChild(box);
    tr.appendChild(td);
    const cells = [
      r.id + (r.title ? ' — ' + r.title : ''),
      r.status,
      s.seeds ?? '',
      s.converged != null ? `${s.converged}/${s.seeds}` : '',
      s.median_iterations ?? '',
      s.median_held_out_accuracy != null ? (100 * s.median_held_out_accuracy).toFixed(1) + '%' : '',
    ];
    cells.forEach((text, i) => {
      const c = document.createElement('td');
      c.textContent = text;
      if (i === 0) c.className = 'id';
      tr.appendChild(c);
    });
    body.appendChild(tr);
  }
}
async function compare() {
  const fig = $('compare-fig');
  if (chosen.length !== 2) {
    fig.hidden = true;
    return;
  }
  try {
    const [a, b] = await Promise.all(chosen.map((id) => api('/runs/' + id + '/curves')));
    const series = (c, name, color) => {
      const x = c.iteration.map(Number);
      const mid = c[name + '_median'] || [], lo = c[name + '_p25'] || [], hi = c[name + '_p75'] || [];
      const keep = x.map((_, i) => mid[i] != null);
      const pick = (v) => v.filter((_, i) => keep[i]);
      return { band: { x: pick(x), mid: pick(mid), lo: pick(lo), hi: pick(hi) }, color };
    };
    fig.hidden = false;
    const metric = $('compare-metric').value;
    const sa = series(a, metric, palette[0]), sb = series(b, metric, palette[1]);
    sa.label = chosen[0];
    sb.label = chosen[1];
    const acc = metric.endsWith('accuracy');
    lineChart($('c-compare'), [sa, sb], { log: !acc, yRange: acc ? [0, 1.02] : null, empty: 'not measured in these runs' });
    const name = $('compare-metric').selectedOptions[0].textContent;
    $('compare-cap').textContent = `${name}, median and IQR over seeds: ${chosen[0]} (blue) against ${chosen[1]} (red)`;
  } catch (e) {
    showError(e.message);
  }
}

// ---------- wiring ----------
async function loadPreset(name) {
  const p = presets.find((x) => x.name === name);
  if (!p) return;
  $('toml').value = p.toml;
  currentPreset = name;
  // The Playground's sets train in a blink; watch them learn, as there.
  $('f-pace').value = name.startsWith('playground-') ? '500' : '';
  formFromToml();
  document.querySelectorAll('button.preset').forEach((b) => b.classList.toggle('on', b.textContent === name));
  saveHash();
}
async function init() {
  presets = await api('/presets');
  for (const p of presets) {
    const b = document.createElement('button');
    b.className = 'preset';
    b.textContent = p.name;
    b.addEventListener('click', () => loadPreset(p.name));
    $('presets').appendChild(b);
  }
  // The URL's experiment first (a shared link), then ?preset=, then fc73.
  const fromHash = hashState();
  await loadPreset(fromHash.preset || qs.get('preset') || 'fc73');
  if (fromHash.toml) {
    $('toml').value = fromHash.toml;
    formFromToml();
  }
  if (fromHash.pace != null) $('f-pace').value = fromHash.pace;
  saveHash();
  for (const [id, key] of [['seeds', 'f-seeds'], ['iters', 'f-iters']]) {
    if (qs.get(id)) {
      $(key).value = qs.get(id);
      tomlFromForm(key);
    }
  }
  for (const [id] of [...fields, ['f-act']]) $(id).addEventListener('change', () => tomlFromForm(id));
  $('toml').addEventListener('change', () => { formFromToml(); saveHash(); });
  $('toml').addEventListener('input', saveHash);
  for (const id of ['b-test', 'b-discrete']) $(id).addEventListener('change', drawBoundary);
  $('f-pace').addEventListener('change', () => {
    saveHash();
    if (run && ['running', 'paused'].includes(run.status)) {
      const v = $('f-pace').value;
      post('/runs/' + run.id + '/control', { action: 'pace', per_second: v ? Number(v) : null }).catch((e) => showError(e.message));
    }
  });
  $('run').addEventListener('click', startRun);
  $('pause').addEventListener('click', () => run && post('/runs/' + run.id + '/control', { action: run.status === 'paused' ? 'run' : 'pause' }).catch((e) => showError(e.message)));
  $('step').addEventListener('click', () => run && post('/runs/' + run.id + '/control', { action: 'step', steps: 1 }).catch((e) => showError(e.message)));
  $('stop').addEventListener('click', () => run && post('/runs/' + run.id + '/control', { action: 'stop' }).catch((e) => showError(e.message)));
  $('copy').addEventListener('click', async () => {
    const cmd = run ? (await api('/runs/' + run.id)).command : 'save the text as experiment.toml, then: gradlab run experiment.toml --out my-run';
    $('command').hidden = false;
    $('command').textContent = cmd;
    try { await navigator.clipboard.writeText(cmd); $('command').textContent += '\n(copied)'; } catch (e) { /* shown above */ }
  });
  $('compare-metric').addEventListener('change', compare);
  neuronPointer($('n-l2'));
  neuronPointer($('n-ce'));
  neuronAt(2, -1);
  refreshRuns();
  window.addEventListener('resize', () => { schedule(); compare(); });
  draw();
  lineChart($('c-loss'), []);
  lineChart($('c-acc'), []);
  lineChart($('c-hacc'), []);
  flowChart($('c-flow'), []);
  pathPlane($('c-land'), null);
  if (qs.get('autorun')) startRun();
}
init().catch((e) => showError(e.message));
