// netpulse dashboard: charts drawn on <canvas> by hand (no libraries, nothing from the internet),
// history from /api/, live updates from /api/events (Server-Sent Events).
"use strict";

const token = new URLSearchParams(location.search).get("token");
const headers = token ? { Authorization: "Bearer " + token } : {};
const state = { range: "15m", series: new Map(), ifaces: new Map(), live: null };

async function api(path) {
  const r = await fetch(path, { headers });
  if (!r.ok) {
    // The server says why in its body (a JSON {"error": …}, or text).
    let why = "";
    try { const b = await r.text(); try { why = JSON.parse(b).error || b; } catch { why = b; } } catch { /* none */ }
    throw new Error(path + ": HTTP " + r.status + (why ? " — " + why.slice(0, 200) : ""));
  }
  return r.json();
}

function rangeSeconds(text) {
  const n = parseFloat(text);
  const unit = text.replace(/[0-9.]/g, "");
  return n * ({ s: 1, m: 60, h: 3600, d: 86400 }[unit] || 60);
}

function fmtMs(v) { return v == null ? "–" : v === 0 ? "0 ms" : v < 1 ? v.toFixed(3) + " ms" : v < 100 ? v.toFixed(2) + " ms" : v.toFixed(0) + " ms"; }
function fmtPct(v) { return v == null ? "–" : (v * 100).toFixed(v > 0 && v < 0.01 ? 2 : 1) + " %"; }
function fmtBits(v) {
  if (v == null) return "–";
  const u = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"];
  let i = 0;
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return v.toFixed(v < 10 ? 2 : 1) + " " + u[i];
}
function fmtBytes(v) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return v.toFixed(i ? 1 : 0) + " " + u[i];
}
function fmtTime(ms) { return new Date(ms).toLocaleTimeString(); }
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

// A "nice" axis step (1, 2 or 5 × 10^k) giving about `n` ticks up to `max`.
function niceStep(max, n) {
  const raw = max / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

// One chart: time axis, y axis from 0 with nice ticks, layers drawn in order. A "loss" layer
// gets a strip of its own at the bottom with a 0–100 % scale on the right, so loss never
// hides latency. With no data in the range: says so, draws no axis.
function draw(canvas, fromS, toS, layers, yFmt) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const hasLoss = layers.some((l) => l.kind === "loss");
  const left = 64, right = hasLoss ? 44 : 8, top = 8, bottom = 20;
  const inRange = (p) => p.t >= fromS - 1 && p.t <= toS;
  const data = layers.some((l) => l.kind !== "shade" && l.points.some((p) => inRange(p) && (p.y != null || p.y2 != null || p.bands)));
  canvas.dataset.points = "0";
  if (!data) {
    g.fillStyle = css.getPropertyValue("--dim"); g.font = "13px system-ui";
    g.fillText("no data in this range", w / 2 - 60, h / 2);
    return;
  }
  const lossH = hasLoss ? Math.round((h - top - bottom) * 0.22) : 0;
  const plotBottom = h - bottom - lossH - (hasLoss ? 6 : 0);
  let ymax = 0;
  for (const l of layers) {
    if (l.kind === "loss") continue;
    for (const p of l.points) {
      if (!inRange(p)) continue;
      for (const y of [p.y, p.y2]) if (y != null && isFinite(y)) ymax = Math.max(ymax, y);
      for (const b of p.bands || []) if (isFinite(b[1])) ymax = Math.max(ymax, b[1]);
    }
  }
  const stepY = niceStep(ymax > 0 ? ymax : 1, 4);
  const yTop = Math.max(stepY, Math.ceil((ymax > 0 ? ymax * 1.05 : 1) / stepY) * stepY);
  const x = (t) => left + (t - fromS) / Math.max(1, toS - fromS) * (w - left - right);
  const y = (v) => top + (1 - v / yTop) * (plotBottom - top);
  g.strokeStyle = css.getPropertyValue("--line"); g.fillStyle = css.getPropertyValue("--dim");
  g.font = "11px system-ui"; g.lineWidth = 1;
  for (let v = 0; v <= yTop + stepY / 2; v += stepY) {
    const yy = y(v);
    g.beginPath(); g.moveTo(left, yy); g.lineTo(w - right, yy); g.stroke();
    g.fillText(yFmt(v), 2, yy + 4);
  }
  for (let i = 0; i <= 4; i++) {
    const t = fromS + (toS - fromS) * i / 4;
    const d = new Date(t * 1000);
    const label = toS - fromS > 2 * 86400 ? d.toLocaleDateString() : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    g.fillText(label, Math.min(x(t), w - right - 40), h - 4);
  }
  if (hasLoss) {
    const y0 = h - bottom, y1 = h - bottom - lossH;
    g.strokeStyle = css.getPropertyValue("--line");
    g.beginPath(); g.moveTo(left, y1); g.lineTo(w - right, y1); g.moveTo(left, y0); g.lineTo(w - right, y0); g.stroke();
    g.fillStyle = css.getPropertyValue("--loss");
    g.fillText("100 %", w - right + 4, y1 + 8); g.fillText("loss", w - right + 4, (y0 + y1) / 2 + 4); g.fillText("0", w - right + 4, y0);
  }
  let drawn = 0;
  for (const l of layers) {
    const pts = l.points.filter(inRange);
    g.strokeStyle = l.color; g.fillStyle = l.color;
    if (l.kind === "shade") {
      for (const p of l.points) {
        if (p.t2 < fromS || p.t > toS) continue;
        g.globalAlpha = 0.22;
        const x0 = x(Math.max(p.t, fromS));
        g.fillRect(x0, top, Math.max(2, x(Math.min(p.t2, toS)) - x0), h - top - bottom);
      }
      g.globalAlpha = 1;
    } else if (l.kind === "loss") {
      const y0 = h - bottom;
      const bw = Math.max(1, (w - left - right) * l.step / Math.max(1, toS - fromS));
      for (const p of pts) if (p.y > 0) { g.globalAlpha = 0.75; g.fillRect(x(p.t), y0 - p.y * lossH, bw, p.y * lossH); }
      g.globalAlpha = 1;
    } else if (l.kind === "smoke") {
      // SmokePing's smoke: per bucket, the spread of its RTTs — the outer band lighter,
      // the inner darker — and the median as a short dash.
      for (const p of pts) {
        const x0 = x(p.t), bw = Math.max(1, x(p.t + p.width) - x0);
        (p.bands || []).forEach((b, i) => {
          g.globalAlpha = l.alphas[i] || 0.3;
          g.fillRect(x0, y(b[1]), bw, Math.max(1, y(b[0]) - y(b[1])));
        });
        if (p.median != null) { g.globalAlpha = 1; g.fillRect(x0, y(p.median) - 1, bw, 2); drawn++; }
      }
      g.globalAlpha = 1;
    } else if (l.kind === "band") {
      g.globalAlpha = 1; g.beginPath();
      const ok = pts.filter((p) => p.y != null && p.y2 != null);
      ok.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p.y2)) : g.moveTo(x(p.t), y(p.y2))));
      for (let i = ok.length - 1; i >= 0; i--) g.lineTo(x(ok[i].t), y(ok[i].y));
      if (ok.length) g.fill();
    } else {
      g.lineWidth = 1.5; g.beginPath();
      let pen = false, prev = null;
      for (const p of pts) {
        if (p.y == null) { pen = false; continue; }
        // A gap longer than a few steps is a gap, not a line.
        if (pen && prev && p.t - prev > 3 * l.step) pen = false;
        pen ? g.lineTo(x(p.t), y(p.y)) : g.moveTo(x(p.t), y(p.y));
        pen = true; prev = p.t; drawn++;
      }
      g.stroke();
    }
  }
  canvas.dataset.points = String(drawn);
}

// Weighted quantile of (value, weight) pairs sorted by value.
function quantile(sorted, q) {
  const total = sorted.reduce((s, p) => s + p[1], 0);
  let acc = 0;
  for (const [v, wgt] of sorted) { acc += wgt; if (acc >= q * total) return v; }
  return sorted.length ? sorted[sorted.length - 1][0] : null;
}

// The smoke of a series: buckets of about 1/120 of the range, each with its 10–90 % and
// 25–75 % bands and median. Rollup points (minutes, hours) carry their own percentiles (`p`,
// from their histograms); per-second points are grouped, their RTTs weighted by replies.
function smoke(pts, fromS, toS, s) {
  if (pts.some((p) => p.p)) {
    return pts.filter((p) => p.p).map((p) => ({ t: p.t, width: s, bands: [[p.p[0], p.p[4]], [p.p[1], p.p[3]]], median: p.p[2] }));
  }
  const width = Math.max(s, Math.ceil((toS - fromS) / 120));
  const groups = new Map();
  for (const p of pts) {
    if (p.avg_ms == null || !p.received) continue;
    const b = p.t - (p.t % width);
    if (!groups.has(b)) groups.set(b, []);
    groups.get(b).push([p.avg_ms, p.received]);
    if (p.min_ms != null) groups.get(b).push([p.min_ms, 0.001]);
    if (p.max_ms != null) groups.get(b).push([p.max_ms, 0.001]);
  }
  const out = [];
  for (const [t, g] of groups) {
    g.sort((a, b) => a[0] - b[0]);
    out.push({ t, width, bands: [[quantile(g, 0.1), quantile(g, 0.9)], [quantile(g, 0.25), quantile(g, 0.75)]], median: quantile(g, 0.5) });
  }
  return out;
}

function step() { return { "1s": 1, "1m": 60, "1h": 3600 }[state.resolution] || 1; }

function targetCard(label) {
  const id = "t-" + label.replace(/[^a-zA-Z0-9]/g, "_");
  let card = document.getElementById(id);
  if (!card) {
    card = el("section", { id, class: "target" });
    const h = el("h2");
    h.append(el("span", {}, label));
    const legend = el("span", { class: "legend" });
    legend.innerHTML = '<span><i style="background:var(--lat)"></i>avg</span><span><i style="background:var(--band)"></i>min–max</span><span><i style="background:var(--smoke)"></i>10–90 / 25–75 %, median</span><span><i style="background:var(--loss)"></i>loss / outage</span>';
    h.append(legend);
    card.append(h, el("div", { class: "stats" }), el("canvas", { "data-target": label, "data-points": "0" }));
    document.getElementById("targets").append(card);
  }
  return card;
}

function renderTarget(label) {
  const card = targetCard(label);
  const pts = state.series.get(label) || [];
  const info = (state.targets || []).find((t) => t.label === label) || {};
  const now = Date.now() / 1000, from = now - rangeSeconds(state.range);
  const lm = info.last_minute || {};
  const stats = card.querySelector(".stats");
  stats.innerHTML = "";
  const parts = [["last", fmtMs(info.last_rtt_ms)], ["min/avg/max (1 min)", fmtMs(lm.min_ms) + " / " + fmtMs(lm.avg_ms) + " / " + fmtMs(lm.max_ms)],
    ["loss", fmtPct(info.loss)], ["sent", String(info.sent ?? "–")],
    ["late sends", String(info.late_sends ?? 0) + (info.late_sends ? " (max " + fmtMs(info.max_send_delay_ms) + ")" : "")]];
  for (const [k, v] of parts) { stats.append(k + " "); stats.append(el("b", k === "loss" && info.loss > 0 ? { class: "bad" } : {}, v)); stats.append("  "); }
  if (info.in_outage) stats.append(el("b", { class: "bad" }, " OUTAGE"));
  stats.querySelector("b:nth-of-type(4)")?.setAttribute("data-sent", String(info.sent ?? 0));
  const outages = (state.outages || []).filter((o) => o.target === label)
    .map((o) => ({ t: o.start_ms / 1000, t2: (o.ongoing ? Date.now() : o.end_ms) / 1000 }));
  const s = step();
  draw(card.querySelector("canvas"), from, now, [
    { kind: "shade", color: "#ff5d5d", points: outages },
    { kind: "band", color: "rgba(79,163,255,.30)", points: pts.map((p) => ({ t: p.t, y: p.min_ms, y2: p.max_ms })) },
    { kind: "smoke", color: "#c9d1d9", alphas: [0.22, 0.45], points: smoke(pts, from, now, s) },
    { kind: "loss", color: "#ff5d5d", step: s, points: pts.map((p) => ({ t: p.t, y: p.loss == null ? 0 : p.loss })) },
    { kind: "line", color: "#4fa3ff", step: s, points: pts.map((p) => ({ t: p.t, y: p.avg_ms })) },
  ], (v) => fmtMs(v));
}

function renderIfaces() {
  const body = document.querySelector("#ifaces tbody");
  body.innerHTML = "";
  const charts = document.getElementById("iface-charts");
  const now = Date.now() / 1000, from = now - rangeSeconds(state.range);
  if (!state.ifaces.size) body.append(emptyRow(6, state.loaded ? "no interfaces watched" : "loading…"));
  for (const [name, i] of state.ifaces) {
    const tr = el("tr");
    tr.append(el("td", {}, name), el("td", { class: "num" }, fmtBits(i.rx_bps)), el("td", { class: "num" }, fmtBits(i.tx_bps)),
      el("td", { class: "num" }, fmtBytes(i.rx_bytes || 0)), el("td", { class: "num" }, fmtBytes(i.tx_bytes || 0)),
      el("td", { class: "num" }, String(i.errors || 0)));
    body.append(tr);
    const id = "if-" + name.replace(/[^a-zA-Z0-9]/g, "_");
    let c = document.getElementById(id);
    if (!c) { c = el("canvas", { id, "data-iface": name, "data-points": "0" }); charts.append(c); }
    draw(c, from, now, [
      { kind: "line", color: "#3ccf91", step: step(), points: (i.history || []).map((h) => ({ t: h.t, y: h.rx_bps })) },
      { kind: "line", color: "#f0b429", step: step(), points: (i.history || []).map((h) => ({ t: h.t, y: h.tx_bps })) },
    ], fmtBits);
  }
}

function emptyRow(cols, text) {
  const tr = el("tr");
  tr.append(el("td", { colspan: cols, class: "empty" }, text));
  return tr;
}

// Rows of the outage list at most (it scrolls).
const OUTAGES_LISTED = 500;

function renderLists() {
  const ob = document.querySelector("#outages tbody");
  ob.innerHTML = "";
  // Every outage in the range: those going on first, then the newest; the list scrolls.
  const all = (state.outages || []).slice().sort((a, b) => (b.ongoing - a.ongoing) || (b.start_ms - a.start_ms));
  const outages = all.slice(0, OUTAGES_LISTED);
  if (!outages.length) ob.append(emptyRow(4, state.loaded ? "none in this range" : "loading…"));
  for (const o of outages) {
    const tr = el("tr");
    const dur = ((o.ongoing ? Date.now() : o.end_ms) - o.start_ms) / 1000;
    tr.append(el("td", {}, o.target), el("td", {}, fmtTime(o.start_ms)), el("td", { class: "num" }, dur.toFixed(1) + " s" + (o.ongoing ? " …" : "")),
      el("td", { class: "num" }, (o.sent - o.received) + "/" + o.sent));
    ob.append(tr);
  }
  if (all.length > outages.length) ob.append(emptyRow(4, "… and " + (all.length - outages.length) + " older (netpulse report lists them all)"));
  const ab = document.querySelector("#alerts tbody");
  ab.innerHTML = "";
  const recent = ((state.alerts || {}).recent || []).slice(-20).reverse();
  if (!recent.length) ab.append(emptyRow(3, "no alerts"));
  for (const a of recent) {
    const tr = el("tr");
    const text = el("td", {}, a.text);
    // A trace taken when the alert fired: its hop table under the line.
    if (a.path) text.append(el("pre", { class: "trace" }, a.path));
    tr.append(el("td", {}, fmtTime(a.at_ms)), el("td", a.kind === "resolved" || a.kind === "trace" ? {} : { class: "bad" }, a.kind), text);
    ab.append(tr);
  }
}

function renderAll() {
  for (const t of state.targets || []) renderTarget(t.label);
  renderIfaces();
  renderLists();
}

async function load() {
  const r = encodeURIComponent(state.range);
  const [targets, series, outages, alerts, ifaces] = await Promise.all([
    api("/api/targets"), api("/api/series?range=" + r), api("/api/outages?range=" + r),
    api("/api/alerts"), api("/api/interfaces?range=" + r),
  ]);
  state.targets = targets;
  state.resolution = series.resolution;
  state.series = new Map(series.series.map((s) => [s.target, s.points]));
  state.outages = outages;
  state.alerts = alerts;
  state.ifaces = new Map(ifaces.interfaces.map((i) => [i.name, i]));
  state.loaded = true;
  clearError();
  for (const card of document.querySelectorAll("section.target")) card.remove();
  renderAll();
}

// Live: merge each update's newest points into the series (only for ranges drawn at 1 s).
function onUpdate(u) {
  for (const t of u.targets) {
    const info = (state.targets || []).find((x) => x.label === t.label);
    if (info) { info.sent = t.sent; info.received = t.received; info.last_rtt_ms = t.last_rtt_ms; info.in_outage = t.in_outage;
      info.loss = t.sent ? 1 - t.received / t.sent : null;
      info.late_sends = t.late_sends; info.max_send_delay_ms = t.max_send_delay_ms; }
    if (state.resolution === "1s") {
      const pts = state.series.get(t.label) || [];
      for (const p of t.points) {
        const i = pts.findIndex((q) => q.t === p.t);
        if (i >= 0) pts[i] = p; else pts.push(p);
      }
      pts.sort((a, b) => a.t - b.t);
      const from = Date.now() / 1000 - rangeSeconds(state.range);
      while (pts.length && pts[0].t < from) pts.shift();
      state.series.set(t.label, pts);
    }
  }
  for (const i of u.interfaces) {
    const cur = state.ifaces.get(i.name);
    if (!cur) continue;
    cur.rx_bps = i.rx_bps; cur.tx_bps = i.tx_bps;
    if (state.resolution === "1s" && i.t != null && i.rx_bps != null) {
      const h = cur.history || (cur.history = []);
      if (!h.length || h[h.length - 1].t !== i.t) h.push({ t: i.t, rx_bps: i.rx_bps, tx_bps: i.tx_bps });
    }
  }
  if (u.targets.some((t) => !(state.targets || []).find((x) => x.label === t.label)) ||
      u.alerts !== ((state.alerts || {}).recent || []).length) {
    load().catch(showError);
    return;
  }
  renderAll();
}

// What the monitor lost (results dropped on the way) and how late its own sends were.
function renderHealth(h) {
  const box = document.getElementById("health");
  if (!box || !h) return;
  const dropped = (h.dropped.monitor || 0) + (h.dropped.recorder || 0);
  box.textContent = "dropped " + dropped + (dropped ? " (monitor " + h.dropped.monitor + ", recording " + h.dropped.recorder + ")" : "") +
    " · late sends " + h.late_sends + " of " + h.probes + (h.late_sends ? " (max " + fmtMs(h.max_send_delay_ms) + ")" : "");
  box.className = dropped ? "bad" : "";
}

// An API error is shown on the page until a load succeeds again, not only in the console.
function showError(e) {
  const box = document.getElementById("error");
  box.textContent = "netpulse could not load the dashboard's data: " + e.message;
  box.hidden = false;
  document.getElementById("status").textContent = "error";
  console.error("netpulse dashboard:", e);
}
function clearError() { document.getElementById("error").hidden = true; }

function connect() {
  const es = new EventSource("/api/events" + (token ? "?token=" + encodeURIComponent(token) : ""));
  const status = document.getElementById("status");
  es.addEventListener("update", (ev) => {
    status.textContent = "live · " + new Date().toLocaleTimeString();
    const u = JSON.parse(ev.data);
    renderHealth(u.health);
    onUpdate(u);
  });
  es.onerror = () => { status.textContent = "reconnecting…"; };
}

document.getElementById("range").addEventListener("change", (e) => {
  state.range = e.target.value;
  load().catch(showError);
});
window.addEventListener("resize", renderAll);
load().then(connect).catch(showError);
