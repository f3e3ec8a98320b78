// The streamer console: polls this worker's /api/v1/overview once a second and draws the
// app. No external asset: plain DOM and SVG. The bearer token, when the server needs one,
// is asked for once and kept in this tab's sessionStorage only.
"use strict";

const POLL_MS = 1000;
const RECORDS_MS = 2000;
const state = { token: sessionStorage.getItem("streamer-token"), last: null, graphKey: null,
  stores: [], topics: [] };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path) {
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  const response = await fetch(path, { headers });
  if (response.status === 401) {
    $("token-form").hidden = false;
    throw new Error("this server needs a bearer token");
  }
  const body = await response.json();
  if (!response.ok) {
    const retry = response.headers.get("Retry-After");
    const suffix = retry ? ` (retry after ${retry} s)` : "";
    throw new Error(`${response.status}: ${body.error || response.statusText}${suffix}`);
  }
  return body;
}

const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const fmtRate = (n) => (n === null ? "–" : n.toLocaleString("en-US", { maximumFractionDigits: 1 }));
function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  return s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`;
}

function setStatus(text, ok) {
  const node = $("status");
  node.textContent = text;
  node.className = `status ${ok ? "ok" : "bad"}`;
}

function setRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// --- flow ---------------------------------------------------------------------------------

function drawFlow(overview) {
  const workers = overview.workers.filter((w) => !w.error);
  const totals = {
    in: workers.reduce((a, w) => a + w.records_in, 0),
    out: workers.reduce((a, w) => a + w.records_out, 0),
    time: overview.time,
    members: workers.map((w) => w.url).sort().join(","),
  };
  const prev = state.last;
  if (prev && prev.members === totals.members && totals.time > prev.time) {
    const dt = totals.time - prev.time;
    $("rate-in").textContent = fmtRate(Math.max(0, totals.in - prev.in) / dt);
    $("rate-out").textContent = fmtRate(Math.max(0, totals.out - prev.out) / dt);
  }
  state.last = totals;
  const p50 = workers.map((w) => w.latency && w.latency.p50).filter((v) => v !== null && v !== undefined);
  const p99 = workers.map((w) => w.latency && w.latency.p99).filter((v) => v !== null && v !== undefined);
  $("lat-p50").textContent = p50.length ? fmtSeconds(Math.max(...p50)) : "–";
  $("lat-p99").textContent = p99.length ? fmtSeconds(Math.max(...p99)) : "–";
  $("dlq").textContent = fmt(workers.reduce((a, w) => a + w.dead_lettered, 0));
  $("total-lag").textContent = overview.lag.error ? "–" : fmt(overview.lag.total_lag);
}

// --- topology -------------------------------------------------------------------------------

function drawTopology(graph) {
  const key = JSON.stringify(graph.subtopologies);
  if (key === state.graphKey) return;
  state.graphKey = key;
  const boxW = 190, boxH = 30, gapX = 24, rowH = 62, storeW = 150, pad = 16;
  const svg = svgEl("svg", { id: "topology-graph", role: "img", "aria-label": "topology" });
  const defs = svgEl("defs");
  const marker = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svgEl("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a93ab" }));
  defs.append(marker);
  svg.append(defs);
  let x0 = pad, height = 0;
  for (const sub of graph.subtopologies) {
    const depth = {};
    for (const step of sub.steps) {
      const parents = step.parents.filter((p) => p in depth);
      depth[step.name] = parents.length ? Math.max(...parents.map((p) => depth[p])) + 1 : 0;
    }
    const rows = [];
    for (const step of sub.steps) (rows[depth[step.name]] = rows[depth[step.name]] || []).push(step);
    const perRow = Math.max(...rows.map((r) => r.length));
    const width = perRow * (boxW + gapX) + (sub.stores.length ? storeW + gapX : 0) + pad;
    const pos = {};
    rows.forEach((row, d) => row.forEach((step, i) => {
      pos[step.name] = { x: x0 + pad + i * (boxW + gapX), y: 40 + (d + 1) * rowH };
    }));
    const taken = new Set(Object.values(pos).map((q) => `${q.x},${q.y}`));
    const group = svgEl("g", { class: "subtopology", "data-id": sub.id });
    const frame = svgEl("rect", { class: "sub", x: x0, y: 10, width, rx: 8 });
    group.append(frame);
    group.append(svgEl("text", { x: x0 + 10, y: 28, class: "muted" }, `sub-topology ${sub.id}`));
    const edges = svgEl("g");
    group.append(edges);
    const line = (a, b, cls = "edge") => edges.append(svgEl("path", { class: cls,
      d: `M ${a.x} ${a.y} C ${a.x} ${(a.y + b.y) / 2}, ${b.x} ${(a.y + b.y) / 2}, ${b.x} ${b.y}` }));
    const storeY = {};
    let nextStoreY = 0;
    for (const step of sub.steps) {
      const p = pos[step.name];
      for (const parent of step.parents) {
        const q = pos[parent];
        if (q) line({ x: q.x + boxW / 2, y: q.y + boxH }, { x: p.x + boxW / 2, y: p.y });
      }
      const below = taken.has(`${p.x},${p.y + rowH}`);
      for (const topic of step.kind === "sink" && below ? [] : step.topics || []) {
        const above = step.kind === "source";
        const ty = above ? p.y - rowH + 6 : p.y + rowH - 6;
        group.append(svgEl("rect", { class: "topic", x: p.x, y: ty, width: boxW, height: boxH - 6, rx: 12 }));
        group.append(svgEl("text", { x: p.x + boxW / 2, y: ty + 16, "text-anchor": "middle" },
          clip(topic, 28)));
        if (above) line({ x: p.x + boxW / 2, y: ty + boxH - 6 }, { x: p.x + boxW / 2, y: p.y });
        else line({ x: p.x + boxW / 2, y: p.y + boxH }, { x: p.x + boxW / 2, y: ty });
      }
      for (const store of step.stores || []) {
        if (!(store in storeY)) {
          storeY[store] = Math.max(p.y, nextStoreY);
          nextStoreY = storeY[store] + boxH + 10;
        }
        const sx = x0 + pad + perRow * (boxW + gapX);
        line({ x: p.x + boxW, y: p.y + boxH / 2 }, { x: sx, y: storeY[store] + boxH / 2 }, "edge store-edge");
      }
      group.append(svgEl("rect", { class: `step ${step.kind}`, x: p.x, y: p.y, width: boxW, height: boxH, rx: 4 }));
      let label = step.kind === "processor" ? `${step.name} [${step.operation}]` : step.name;
      if (step.kind === "sink" && below) label = `${step.name} → ${step.topics[0]}`;
      group.append(svgEl("text", { x: p.x + 8, y: p.y + 19, class: "step-name" }, clip(label, 30)));
    }
    for (const [store, y] of Object.entries(storeY)) {
      const sx = x0 + pad + perRow * (boxW + gapX);
      group.append(svgEl("rect", { class: "store", x: sx, y, width: storeW, height: boxH, rx: 10 }));
      group.append(svgEl("text", { x: sx + 10, y: y + 19, class: "store-name" }, clip(`▤ ${store}`, 24)));
    }
    const bottom = Math.max(40 + (rows.length + 1) * rowH + boxH + 10, nextStoreY + 10);
    frame.setAttribute("height", bottom);
    height = Math.max(height, bottom + pad);
    svg.append(group);
    x0 += width + 20;
  }
  svg.setAttribute("width", x0);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${x0} ${height}`);
  $("topology").replaceChildren(svg);
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

// --- workers, tasks, lag ------------------------------------------------------------------

function slotOf(clientId) {
  const [id, url] = clientId.split("|");
  return url ? `${id} (${url})` : id;
}

function drawWorkers(overview) {
  const workers = overview.workers;
  setRows($("workers").tBodies[0], workers.map((w) => w.error
    ? el("tr", {}, el("td", {}, w.url || "?"), el("td", { colspan: 7 }, w.error))
    : el("tr", {}, el("td", {}, `${w.slot} · ${w.url}`), el("td", { class: "num" }, fmt(w.records_in)),
      el("td", { class: "num" }, fmt(w.records_out)), el("td", { class: "num" }, fmt(w.commits)),
      el("td", { class: "num" }, fmtSeconds(w.latency && w.latency.p50)),
      el("td", { class: "num" }, fmtSeconds(w.latency && w.latency.p99)),
      el("td", { class: "num" }, fmt(w.dead_lettered)), el("td", { class: "num" }, w.tasks.length))));
  const tasks = [];
  for (const w of workers.filter((x) => !x.error)) for (const t of w.tasks) tasks.push([t, w]);
  tasks.sort((a, b) => a[0].id.localeCompare(b[0].id, "en", { numeric: true }));
  setRows($("tasks").tBodies[0], tasks.map(([t, w]) => el("tr", { "data-task": t.id },
    el("td", {}, t.id), el("td", {}, w.slot),
    el("td", { class: `state-${t.state}` }, t.state),
    el("td", {}, restoreCell(t)),
    el("td", {}, t.inputs.map(([topic, p]) => `${topic}[${p}]`).join(", ")),
    storesCell(t.store_sizes))));
}

function storesCell(sizes) {
  const entries = Object.entries(sizes);
  const total = entries.reduce((a, [, b]) => a + b, 0);
  const cell = el("td", { title: entries.map(([s, b]) => `${s}: ${fmt(b)} B`).join("\n") },
    `${entries.length} store${entries.length === 1 ? "" : "s"}, ${fmtBytes(total)}`);
  return cell;
}

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function restoreCell(task) {
  const r = task.restore;
  if (!r) return "–";
  if (r.done) return `restored ${fmt(r.restored)} in ${r.seconds.toFixed(1)} s`;
  const bar = el("span", { class: "bar" }, el("span", { style: `width:${(r.progress * 100).toFixed(0)}%` }));
  return el("span", {}, bar, ` ${(r.progress * 100).toFixed(0)}% · ${fmt(r.remaining)} left`);
}

function drawLag(lag) {
  const body = $("lag").tBodies[0];
  if (lag.error) { setRows(body, [el("tr", {}, el("td", { colspan: 6 }, lag.error))]); return; }
  setRows(body, lag.partitions.map((p) => el("tr", {},
    el("td", {}, p.topic), el("td", { class: "num" }, p.partition),
    el("td", { class: "num" }, fmt(p.committed)), el("td", { class: "num" }, fmt(p.end)),
    el("td", { class: "num" }, fmt(p.lag)), el("td", {}, p.owner ? slotOf(p.owner.client_id) : "–"))));
}

// --- lookup and records -------------------------------------------------------------------

function fillChoices(graph) {
  const stores = graph.stores.map((s) => `${s.name}:${s.kind}`).join();
  if (stores !== state.stores.join()) {
    state.stores = graph.stores.map((s) => `${s.name}:${s.kind}`);
    $("lookup-store").replaceChildren(...graph.stores.map((s) =>
      el("option", { value: s.name, "data-kind": s.kind }, `${s.name} (${s.kind})`)));
    showTimed();
  }
  const topics = [...graph.output_topics];
  if (topics.join() !== state.topics.join()) {
    state.topics = topics;
    $("records-topic").replaceChildren(...topics.map((t) => el("option", { value: t }, t)));
  }
}

function showTimed() {
  const option = $("lookup-store").selectedOptions[0];
  const timed = option && option.dataset.kind !== "key-value";
  for (const node of document.querySelectorAll(".timed")) node.hidden = !timed;
}

async function lookup(event) {
  event.preventDefault();
  const option = $("lookup-store").selectedOptions[0];
  if (!option) return;
  const store = encodeURIComponent(option.value);
  const params = new URLSearchParams({ key: $("lookup-key").value });
  let path = `/api/v1/stores/${store}/get`;
  if (option.dataset.kind !== "key-value") {
    path = `/api/v1/stores/${store}/${option.dataset.kind === "window" ? "windows" : "sessions"}`;
    params.set("from", $("lookup-from").value || "0");
    params.set("to", $("lookup-to").value || String(Date.now()));
  }
  const out = $("lookup-result");
  try {
    out.textContent = JSON.stringify(await api(`${path}?${params}`), null, 2);
  } catch (err) {
    out.textContent = String(err.message);
  }
}

function valueCell(value) {
  const text = JSON.stringify(value);
  return el("td", { class: "value", title: text }, clip(text, 220));
}

async function pollRecords() {
  const topic = $("records-topic").value;
  if (topic) {
    try {
      const body = await api(`/api/v1/topics/${encodeURIComponent(topic)}/last?limit=15`);
      setRows($("records").tBodies[0], body.records.slice().reverse().map((r) => el("tr", {},
        el("td", {}, new Date(r.timestamp).toISOString().slice(11, 23)),
        el("td", { class: "num" }, r.partition), el("td", { class: "num" }, r.offset),
        valueCell(r.key), valueCell(r.value))));
    } catch (err) {
      setRows($("records").tBodies[0], [el("tr", {}, el("td", { colspan: 5 }, err.message))]);
    }
  }
  setTimeout(pollRecords, RECORDS_MS);
}

// --- the loop -----------------------------------------------------------------------------

async function poll() {
  try {
    const overview = await api("/api/v1/overview");
    $("app-id").textContent = overview.app_id;
    document.title = `streamer ${overview.app_id}`;
    drawFlow(overview);
    drawTopology(overview.topology);
    drawWorkers(overview);
    drawLag(overview.lag);
    fillChoices(overview.topology);
    setStatus(`live · ${new Date(overview.time * 1000).toLocaleTimeString()} · via ${overview.served_by}`, true);
  } catch (err) {
    setStatus(err.message, false);
  }
  setTimeout(poll, POLL_MS);
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value;
  sessionStorage.setItem("streamer-token", state.token);
  $("token-form").hidden = true;
});
$("lookup").addEventListener("submit", lookup);
$("lookup-store").addEventListener("change", showTimed);
poll();
pollRecords();
