// netpulse dashboard: charts drawn on <canvas> by hand (no libraries, nothing from the internet),
// history from /api/, live updates from /api/events (Server-Sent Events).
"use strict";

const token = new URLSearchParams(location.search).get("token");
const headers = token ? { Authorization: "Bearer " + token } : {};
const state = { range: "15m", series: new Map(), ifaces: new Map(), live: null };

async function api(path) {
  const r = await fetch(path, { headers });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function rangeSeconds(text) {
  const n = parseFloat(text);
  const unit = text.replace(/[0-9.]/g, "");
  return n * ({ s: 1, m: 60, h: 3600, d: 86400 }[unit] || 60);
}

function fmtMs(v) { return v == null ? "–" : v < 1 ? v.toFixed(3) + " ms" : v < 100 ? v.toFixed(2) + " ms" : v.toFixed(0) + " ms"; }
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

// One chart: time axis, y axis from 0, drawn lines/bands/bars given as layers.
function draw(canvas, fromS, toS, layers, yFmt) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const left = 64, right = 8, top = 8, bottom = 20;
  let ymax = 0;
  for (const l of layers) for (const p of l.points) for (const y of [p.y, p.y2]) if (y != null && isFinite(y)) ymax = Math.max(ymax, y);
  ymax = ymax > 0 ? ymax * 1.1 : 1;
  const x = (t) => left + (t - fromS) / Math.max(1, toS - fromS) * (w - left - right);
  const y = (v) => top + (1 - v / ymax) * (h - top - bottom);
  const css = getComputedStyle(document.documentElement);
  g.strokeStyle = css.getPropertyValue("--line"); g.fillStyle = css.getPropertyValue("--dim");
  g.font = "11px system-ui"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4, yy = y(v);
    g.beginPath(); g.moveTo(left, yy); g.lineTo(w - right, yy); g.stroke();
    g.fillText(yFmt(v), 2, yy + 4);
  }
  for (let i = 0; i <= 4; i++) {
    const t = fromS + (toS - fromS) * i / 4;
    const d = new Date(t * 1000);
    const label = toS - fromS > 2 * 86400 ? d.toLocaleDateString() : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    g.fillText(label, Math.min(x(t), w - 60), h - 4);
  }
  let drawn = 0;
  for (const l of layers) {
    const pts = l.points.filter((p) => p.t >= fromS && p.t <= toS);
    g.strokeStyle = l.color; g.fillStyle = l.color;
    if (l.kind === "shade") {
      for (const p of pts) { g.globalAlpha = 0.25; g.fillRect(x(p.t), top, Math.max(2, x(p.t2) - x(p.t)), h - top - bottom); }
      g.globalAlpha = 1;
    } else if (l.kind === "bars") {
      const bw = Math.max(1, (w - left - right) / Math.max(60, (toS - fromS) / l.step));
      for (const p of pts) if (p.y > 0) { g.globalAlpha = 0.7; g.fillRect(x(p.t), y(p.y), bw, y(0) - y(p.y)); }
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

function step() { return { "1s": 1, "1m": 60, "1h": 3600 }[state.resolution] || 1; }

function targetCard(label) {
  const id = "t-" + label.replace(/[^a-zA-Z0-9]/g, "_");
  let card = document.getElementById(id);
  if (!card) {
    card = el("section", { id, class: "target" });
    const h = el("h2");
    h.append(el("span", {}, label));
    const legend = el("span", { class: "legend" });
    legend.innerHTML = '<span><i style="background:var(--lat)"></i>avg</span><span><i style="background:var(--band)"></i>min–max</span><span><i style="background:var(--loss)"></i>loss / outage</span>';
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
    { kind: "band", color: "rgba(79,163,255,.18)", points: pts.map((p) => ({ t: p.t, y: p.min_ms, y2: p.max_ms })) },
    { kind: "bars", color: "#ff5d5d", step: s, points: pts.map((p) => ({ t: p.t, y: p.loss == null ? 0 : p.loss * (p.max_ms || 1) })) },
    { kind: "line", color: "#4fa3ff", step: s, points: pts.map((p) => ({ t: p.t, y: p.avg_ms })) },
  ], (v) => fmtMs(v));
}

function renderIfaces() {
  const body = document.querySelector("#ifaces tbody");
  body.innerHTML = "";
  const charts = document.getElementById("iface-charts");
  const now = Date.now() / 1000, from = now - rangeSeconds(state.range);
  if (!state.ifaces.size) body.append(emptyRow(6, "no interfaces watched"));
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

function renderLists() {
  const ob = document.querySelector("#outages tbody");
  ob.innerHTML = "";
  const outages = (state.outages || []).slice(-20).reverse();
  if (!outages.length) ob.append(emptyRow(4, "none in this range"));
  for (const o of outages) {
    const tr = el("tr");
    const dur = ((o.ongoing ? Date.now() : o.end_ms) - o.start_ms) / 1000;
    tr.append(el("td", {}, o.target), el("td", {}, fmtTime(o.start_ms)), el("td", { class: "num" }, dur.toFixed(1) + " s" + (o.ongoing ? " …" : "")),
      el("td", { class: "num" }, (o.sent - o.received) + "/" + o.sent));
    ob.append(tr);
  }
  const ab = document.querySelector("#alerts tbody");
  ab.innerHTML = "";
  const recent = ((state.alerts || {}).recent || []).slice(-20).reverse();
  if (!recent.length) ab.append(emptyRow(3, "no alerts"));
  for (const a of recent) {
    const tr = el("tr");
    tr.append(el("td", {}, fmtTime(a.at_ms)), el("td", a.kind === "resolved" ? {} : { class: "bad" }, a.kind), el("td", {}, a.text));
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

function showError(e) {
  document.getElementById("status").textContent = "error: " + e.message;
  console.error("netpulse dashboard:", e);
}

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
