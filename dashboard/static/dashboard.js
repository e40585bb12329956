"use strict";
// The page keeps each node's last readings and derives rates from them; the
// node that serves the page sends totals only.
const HISTORY = 120;      // samples kept per node (4 minutes at 2 s)
const REFRESH_MS = 2000;
const samples = new Map(); // name -> [{t, req, calls, errors, load, mem, inflight}]
// #node=NAME in the address opens that node's detail (a link to share).
let selected = location.hash.startsWith("#node=") ? decodeURIComponent(location.hash.slice(6)) : null;

function fmtBytes(n) {
  if (n == null) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}
function fmtDuration(s) {
  if (s == null) return "–";
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + (s % 60) + "s";
  return s + "s";
}
function fmtRate(x) { return x == null ? "–" : x.toFixed(x < 10 ? 1 : 0); }
function td(text, cls) {
  const el = document.createElement("td");
  el.textContent = text;
  if (cls) el.className = cls;
  return el;
}

function record(node, now) {
  const info = node.info || {};
  const m = info.metrics || {};
  const h = samples.get(node.name) || [];
  const prev = h[h.length - 1];
  const s = {
    t: now, reqTotal: m.http_requests, callTotal: m.rpc_calls,
    errors: (m.http_errors || 0) + (m.rpc_errors || 0),
    load: info.load1, mem: info.memory_total != null ? info.memory_total - info.memory_available : null,
    rss: info.process_rss, inflight: m.http_in_flight, req: null, calls: null,
  };
  if (prev && node.up && prev.reqTotal != null && s.reqTotal != null && now > prev.t) {
    const dt = (now - prev.t) / 1000;
    s.req = Math.max(0, s.reqTotal - prev.reqTotal) / dt;
    s.calls = Math.max(0, s.callTotal - prev.callTotal) / dt;
  }
  if (node.up) {
    h.push(s);
    if (h.length > HISTORY) h.shift();
    samples.set(node.name, h);
  }
  return h[h.length - 1];
}

function render(view) {
  const now = Date.parse(view.time) || Date.now();
  const body = document.querySelector("#nodes tbody");
  body.replaceChildren();
  let up = 0;
  for (const node of view.nodes) {
    const info = node.info || {};
    const last = record(node, now) || {};
    if (node.up) up++;
    const tr = document.createElement("tr");
    tr.dataset.node = node.name;
    tr.dataset.status = node.up ? "up" : "down";
    tr.className = node.up ? "up" : "down";
    tr.append(td(node.name));
    const st = td("");
    const badge = document.createElement("span");
    badge.className = "badge " + (node.up ? "up" : "down");
    badge.textContent = node.up ? "up" : "down";
    st.append(badge);
    tr.append(st);
    tr.append(td((node.roles || []).join(", ") || "–"));
    const caps = [];
    const gpus = info.gpu_count != null ? info.gpu_count : (node.capabilities || {}).gpu;
    if (gpus) caps.push(gpus + " GPU" + (gpus > 1 ? "s" : ""));
    if (info.cpu_count) caps.push(info.cpu_count + " CPU");
    else if ((node.capabilities || {}).cpu) caps.push(node.capabilities.cpu + " CPU");
    tr.append(td(caps.join(", ") || "–"));
    tr.append(td(info.load1 != null ? info.load1.toFixed(2) : "–", "num"));
    tr.append(td(info.memory_total != null ? fmtBytes(info.memory_total - info.memory_available) + " / " + fmtBytes(info.memory_total) : "–"));
    tr.append(td(fmtDuration(info.uptime_s)));
    tr.append(td(node.up ? fmtRate(last.req) : "–", "num"));
    tr.append(td(node.up ? fmtRate(last.calls) : "–", "num"));
    tr.append(td(info.metrics ? String(last.errors) : "–", "num"));
    const hb = node.last_heartbeat ? Math.max(0, (now - Date.parse(node.last_heartbeat)) / 1000) : null;
    tr.append(td(hb == null ? "–" : hb < 1 ? "now" : fmtDuration(hb) + " ago"));
    if (node.error && node.up) tr.title = node.error;
    tr.addEventListener("click", () => {
      selected = node.name;
      window.history.replaceState(null, "", "#node=" + encodeURIComponent(node.name));
      renderDetail(view);
    });
    body.append(tr);
  }
  document.getElementById("summary").textContent =
    `${view.nodes.length} nodes: ${up} up, ${view.nodes.length - up} down · seen by ${view.node} · ${new Date(now).toLocaleTimeString()}`;
  renderDetail(view);
}

function sparkline(label, values, fmt) {
  const div = document.createElement("div");
  div.className = "chart";
  const pts = values.filter(v => v != null);
  const lastV = pts.length ? pts[pts.length - 1] : null;
  const l = document.createElement("div");
  l.className = "label";
  l.textContent = label + ": " + (lastV == null ? "–" : fmt(lastV));
  div.append(l);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 260 60");
  svg.setAttribute("preserveAspectRatio", "none");
  const max = Math.max(1e-9, ...pts);
  const line = document.createElementNS(ns, "polyline");
  // A minute's width at first, growing to the whole history.
  const step = 260 / (Math.max(values.length, 30) - 1);
  line.setAttribute("points", values.map((v, i) => v == null ? null : `${(i * step).toFixed(1)},${(58 - 56 * v / max).toFixed(1)}`).filter(Boolean).join(" "));
  svg.append(line);
  div.append(svg);
  return div;
}

function renderDetail(view) {
  const sec = document.getElementById("detail");
  const node = view.nodes.find(n => n.name === selected);
  if (!node) { sec.hidden = true; return; }
  sec.hidden = false;
  document.getElementById("detail-name").textContent = node.name + (node.up ? "" : " (down)");
  const info = node.info || {};
  document.getElementById("detail-info").textContent = [
    info.hostname && "host " + info.hostname, node.addr && "cluster " + node.addr,
    info.python && "Python " + info.python, info.go, info.process_rss && "RSS " + fmtBytes(info.process_rss),
    node.error && node.up && "error: " + node.error,
    ...(info.gpus || []).map(g => `GPU ${g.index} ${g.name}: ${fmtBytes(g.memory_used)} / ${fmtBytes(g.memory_total)}` +
      (g.utilization >= 0 ? `, ${g.utilization}%` : "")),
  ].filter(Boolean).join(" · ");
  const h = samples.get(node.name) || [];
  const charts = document.getElementById("charts");
  charts.replaceChildren(
    sparkline("requests/s", h.map(s => s.req), fmtRate),
    sparkline("calls/s", h.map(s => s.calls), fmtRate),
    sparkline("requests in flight", h.map(s => s.inflight), v => String(v)),
    sparkline("CPU load (1 min)", h.map(s => s.load), v => v.toFixed(2)),
    sparkline("memory used", h.map(s => s.mem), fmtBytes),
    sparkline("process RSS", h.map(s => s.rss), fmtBytes),
  );
}

async function refresh() {
  const err = document.getElementById("error");
  try {
    const r = await fetch("api/cluster", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    err.hidden = true;
  } catch (e) {
    err.textContent = "cannot reach the node: " + e.message;
    err.hidden = false;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
