/* buildtape's HTML pages: a canvas flamegraph, an SVG timeline, sortable tables, searchable
   output and a step panel. No dependencies, no requests: the data is in #bt-data. */
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("bt-data").textContent);
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const bt = (window.buildtape = {});

  function fmtSeconds(s) {
    if (s === null || s === undefined) return "-";
    if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
    if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 0) + " ms";
    return s.toFixed(2) + " s";
  }

  function fmtWeight(w, unit) {
    if (unit === "microseconds") return fmtSeconds(w / 1e6);
    if (unit === "bytes") return w >= 1048576 ? (w / 1048576).toFixed(1) + " MiB" : w + " B";
    return w + " " + unit;
  }

  /* ---------- tooltips ---------- */
  function showTip(tip, html, ev) {
    tip.innerHTML = html;
    tip.hidden = false;
    const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y = ev.clientY + 16 + tip.offsetHeight > window.innerHeight ? ev.clientY - tip.offsetHeight - 8 : ev.clientY + 16;
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  /* ---------- sortable tables ---------- */
  function cellValue(td) {
    const v = td.getAttribute("data-v");
    return v !== null ? parseFloat(v) : td.textContent.trim().toLowerCase();
  }
  $$("table.sortable").forEach((table) => {
    $$("th", table).forEach((th, col) => {
      th.addEventListener("click", () => {
        const body = table.tBodies[0];
        const desc = !th.classList.contains("sorted-desc");
        $$("th", table).forEach((h) => h.classList.remove("sorted-asc", "sorted-desc"));
        th.classList.add(desc ? "sorted-desc" : "sorted-asc");
        const rows = Array.from(body.rows);
        rows.sort((a, b) => {
          const x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
          const c = x < y ? -1 : x > y ? 1 : 0;
          return desc ? -c : c;
        });
        rows.forEach((r) => body.appendChild(r));
      });
    });
  });

  /* ---------- flamegraph on a canvas ---------- */
  class Flame {
    constructor(data) {
      this.d = data;
      this.canvas = $("#flame-canvas");
      this.tip = $("#flame-tip");
      this.rowH = 17;
      const n = data.name.length;
      this.n = n;
      // Depths from the steps, then totals as subtree sums of self weights (children
      // follow their parent in pre-order, so one backward pass adds them up).
      const depth = (data.depth = new Int32Array(n));
      this.parent = new Int32Array(n);
      this.end = new Int32Array(n);
      const path = [];
      let d = -1, maxDepth = 0;
      for (let i = 0; i < n; i++) {
        d = d + 1 + data.step[i];
        depth[i] = d;
        while (path.length > d) this.end[path.pop()] = i;
        this.parent[i] = d === 0 ? -1 : path[d - 1];
        path.push(i);
        if (d > maxDepth) maxDepth = d;
      }
      while (path.length) this.end[path.pop()] = n;
      const sums = (selfs, rest) => {
        const t = Float64Array.from(selfs);
        if (rest) for (let i = 0; i < n; i++) t[i] += rest[i];
        for (let i = n - 1; i > 0; i--) t[this.parent[i]] += t[i];
        return t;
      };
      // ``rest``: weight of children left out of a pruned tree, so parents keep their width.
      data.total = sums(data.self, data.rest);
      if (data.differential) data.btotal = sums(data.bself);
      this.x = new Float64Array(n);
      const cursor = [];
      for (let i = 0; i < n; i++) {
        const dd = depth[i];
        const x = dd === 0 ? 0 : cursor[dd];
        this.x[i] = x;
        cursor[dd] = x + data.total[i];
        cursor[dd + 1] = x;
      }
      this.maxDepth = maxDepth;
      this.zoom = 0;
      this.icicle = false;
      this.matches = null;
      this.drawn = [];
      this.scale = 0;
      if (data.differential) {
        for (let i = 1; i < n; i++) this.scale = Math.max(this.scale, Math.abs(data.total[i] - data.btotal[i]));
      }
      this.bind();
      this.draw();
    }
    name(i) { return this.d.names[this.d.name[i]]; }
    color(i) {
      if (this.matches && this.matches[i]) return "rgb(230,0,230)";
      if (this.d.differential) {
        const delta = this.d.total[i] - this.d.btotal[i];
        if (!this.scale || !delta) return "rgb(255,255,255)";
        const fade = Math.round(255 * (1 - Math.min(1, Math.abs(delta) / this.scale) * 0.85));
        return delta > 0 ? `rgb(255,${fade},${fade})` : `rgb(${fade},${fade},255)`;
      }
      const key = this.name(i).split(" (")[0];
      let h = 2166136261;
      for (let k = 0; k < key.length; k++) { h ^= key.charCodeAt(k); h = Math.imul(h, 16777619); }
      const u = (s) => (((h >>> s) & 0xff) / 256);
      return `rgb(${205 + Math.floor(50 * u(0))},${Math.floor(230 * u(8))},${Math.floor(55 * u(16))})`;
    }
    rowY(depth) {
      return this.icicle ? depth * this.rowH : (this.maxDepth - depth) * this.rowH;
    }
    draw() {
      const c = this.canvas, d = this.d;
      const width = c.parentElement.clientWidth || 1000;
      const height = (this.maxDepth + 1) * this.rowH;
      const dpr = window.devicePixelRatio || 1;
      c.width = Math.round(width * dpr);
      c.height = Math.round(height * dpr);
      c.style.height = height + "px";
      const g = c.getContext("2d");
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, width, height);
      g.font = "11px ui-monospace, Menlo, Consolas, monospace";
      g.textBaseline = "middle";
      const z = this.zoom;
      const x0 = this.x[z], w0 = d.total[z] || 1;
      const k = width / w0;
      this.drawn = [];
      const put = (i, px, pw) => {
        const py = this.rowY(d.depth[i]);
        g.fillStyle = this.color(i);
        g.fillRect(px, py, Math.max(pw - 0.5, 0.5), this.rowH - 1);
        this.drawn.push([i, px, py, pw]);
        if (pw > 28) {
          g.fillStyle = "#000";
          let label = this.name(i);
          const fit = Math.floor((pw - 6) / 6.6);
          if (label.length > fit) label = fit > 2 ? label.slice(0, fit - 2) + ".." : "";
          if (label) g.fillText(label, px + 3, py + this.rowH / 2);
        }
      };
      // Ancestors of the zoomed frame span the width, faded.
      g.globalAlpha = 0.55;
      for (let a = this.parent[z]; a >= 0; a = this.parent[a]) put(a, 0, width);
      g.globalAlpha = 1;
      for (let i = z; i < this.end[z]; ) {
        const pw = d.total[i] * k;
        if (pw < 0.4) { i = this.end[i]; continue; }   // too thin: skip its whole subtree
        put(i, (this.x[i] - x0) * k, pw);
        i++;
      }
      $("#flame-crumb").textContent = z ? "zoomed: " + this.name(z) : "";
    }
    hit(ev) {
      const r = this.canvas.getBoundingClientRect();
      const mx = ev.clientX - r.left, my = ev.clientY - r.top;
      for (let j = this.drawn.length - 1; j >= 0; j--) {
        const [i, px, py, pw] = this.drawn[j];
        if (mx >= px && mx < px + pw && my >= py && my < py + this.rowH) return i;
      }
      return -1;
    }
    rectOf(name) {
      const r = this.canvas.getBoundingClientRect();
      for (const [i, px, py, pw] of this.drawn) {
        if (this.name(i) === name) return { x: r.left + px, y: r.top + py, width: pw, height: this.rowH, index: i };
      }
      return null;
    }
    describe(i) {
      const d = this.d, root = d.total[0] || 1;
      let html = `<b>${esc(this.name(i))}</b><br>${fmtWeight(d.total[i], d.unit)} (${(100 * d.total[i] / root).toFixed(2)}%), self ${fmtWeight(d.self[i], d.unit)}`;
      if (d.differential) {
        const delta = d.total[i] - d.btotal[i];
        html += `<br>before ${fmtWeight(d.btotal[i], d.unit)}, change ${delta >= 0 ? "+" : ""}${fmtWeight(delta, d.unit)}`;
      }
      return html;
    }
    zoomTo(i) { this.zoom = i; this.draw(); }
    reset() { this.zoom = 0; this.draw(); }
    search(text) {
      const out = $("#flame-match");
      if (!text) { this.matches = null; out.textContent = ""; this.draw(); return 0; }
      let re;
      try { re = new RegExp(text); } catch (e) { out.textContent = "not a valid regular expression"; return 0; }
      const m = new Uint8Array(this.n);
      const d = this.d;
      let sum = 0, until = -1;
      for (let i = 1; i < this.n; i++) {
        if (re.test(this.name(i))) {
          m[i] = 1;
          if (i >= until) { sum += d.total[i]; until = this.end[i]; }   // nested matches count once
        }
      }
      this.matches = m;
      const pct = d.total[0] ? (100 * sum) / d.total[0] : 0;
      out.textContent = `Matched: ${pct.toFixed(2)}%`;
      this.matchedPercent = pct;
      this.draw();
      return pct;
    }
    bind() {
      this.canvas.addEventListener("click", (ev) => { const i = this.hit(ev); if (i >= 0) this.zoomTo(i); });
      this.canvas.addEventListener("mousemove", (ev) => {
        const i = this.hit(ev);
        if (i < 0) { this.tip.hidden = true; return; }
        showTip(this.tip, this.describe(i), ev);
      });
      this.canvas.addEventListener("mouseleave", () => { this.tip.hidden = true; });
      $("#flame-reset").addEventListener("click", () => this.reset());
      $("#flame-icicle").addEventListener("change", (ev) => { this.icicle = ev.target.checked; this.draw(); });
      let pending = 0;
      $("#flame-search").addEventListener("input", (ev) => {
        clearTimeout(pending);
        pending = setTimeout(() => this.search(ev.target.value), 120);
      });
      let resize = 0;
      window.addEventListener("resize", () => { clearTimeout(resize); resize = setTimeout(() => this.draw(), 100); });
    }
  }
  if (DATA.flame && $("#flame-canvas")) bt.flame = new Flame(DATA.flame);

  /* ---------- the step panel ---------- */
  const P = DATA.processes;
  const rowOf = new Map();
  if (P) P.id.forEach((id, r) => rowOf.set(id, r));
  function openPanel(id) {
    const r = rowOf.get(id);
    if (r === undefined) return;
    const files = (list, count) => list.map((k) => `<li><code>${esc(DATA.paths[k])}</code></li>`).join("") +
      (count > list.length ? `<li class="muted">and ${count - list.length} more (all in the tape: buildtape show --json)</li>` : "");
    const exit = P.signal[r] ? `${P.exit[r] === null ? "-" : P.exit[r]} (${esc(P.signal[r])})` : P.exit[r] === null ? "-" : P.exit[r];
    const critical = DATA.critical.includes(id) ? ' <span class="critical-key">on the critical path</span>' : "";
    $("#panel-body").innerHTML =
      `<h2 id="panel-title">Process ${id}: ${esc(P.label[r])}</h2>${critical}` +
      `<pre class="argv">${esc(P.argv[r].join(" "))}</pre>` +
      `<dl class="facts"><div><dt>cwd</dt><dd><code>${esc(DATA.paths[P.cwd[r]])}</code></dd></div>` +
      `<div><dt>Duration</dt><dd>${fmtSeconds(P.end[r] - P.start[r])}</dd></div>` +
      `<div><dt>Started at</dt><dd>+${fmtSeconds(P.start[r])}</dd></div>` +
      `<div><dt>Exit</dt><dd id="panel-exit">${exit}</dd></div>` +
      `<div><dt>Parent</dt><dd>${P.parent[r] === null ? "-" : `<button class="step-link" data-process="${P.parent[r]}">${P.parent[r]}</button>`}</dd></div></dl>` +
      `<h3>Files read (${P.nreads[r]})</h3><ul>${files(P.reads[r], P.nreads[r])}</ul>` +
      `<h3>Files written (${P.nwrites[r]})</h3><ul>${files(P.writes[r], P.nwrites[r])}</ul>`;
    $("#panel").hidden = false;
    $$("#tl-svg .bar.selected").forEach((b) => b.classList.remove("selected"));
    const bar = $(`#tl-svg .bar[data-id="${id}"]`);
    if (bar) bar.classList.add("selected");
    bt.panelId = id;
  }
  bt.openPanel = openPanel;
  document.addEventListener("click", (ev) => {
    const link = ev.target.closest && ev.target.closest("[data-process]");
    if (link && !link.classList.contains("bar")) openPanel(parseInt(link.getAttribute("data-process"), 10));
  });
  $("#panel-close").addEventListener("click", () => { $("#panel").hidden = true; });
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") $("#panel").hidden = true; });

  /* ---------- the timeline ---------- */
  class Timeline {
    constructor() {
      this.svg = $("#tl-svg");
      this.axis = $("#tl-axis");
      this.par = $("#tl-par");
      this.tip = $("#tl-tip");
      this.laneH = 12;
      this.total = Math.max(DATA.build.duration_s, 1e-6);
      this.t0 = 0;
      this.t1 = this.total;
      const critical = new Set(DATA.critical);
      const lanes = Math.max(1, Math.max(...P.lane) + 1);
      this.svg.setAttribute("height", lanes * this.laneH);
      const NS = "http://www.w3.org/2000/svg";
      const frag = document.createDocumentFragment();
      this.bars = [];
      for (let r = 0; r < P.id.length; r++) {
        const rect = document.createElementNS(NS, "rect");
        let cls = "bar";
        if (!P.step[r]) cls += " driver";
        if ((P.exit[r] !== null && P.exit[r] !== 0) || P.signal[r]) cls += " failed";
        if (critical.has(P.id[r])) cls += " critical";
        rect.setAttribute("class", cls);
        rect.setAttribute("data-id", P.id[r]);
        rect.setAttribute("y", P.lane[r] * this.laneH + 1);
        rect.setAttribute("height", this.laneH - 2);
        frag.appendChild(rect);
        this.bars.push(rect);
      }
      this.svg.appendChild(frag);
      this.bind();
      this.layout();
    }
    width() { return this.svg.clientWidth || this.svg.parentElement.clientWidth || 1000; }
    layout() {
      const w = this.width(), k = w / (this.t1 - this.t0);
      for (let r = 0; r < this.bars.length; r++) {
        const x = (P.start[r] - this.t0) * k;
        this.bars[r].setAttribute("x", x.toFixed(2));
        this.bars[r].setAttribute("width", Math.max(1, (P.end[r] - P.start[r]) * k).toFixed(2));
      }
      this.drawAxis(w, k);
      this.drawParallelism(w, k);
      $("#tl-range").textContent = `${fmtSeconds(this.t0)} – ${fmtSeconds(this.t1)}`;
    }
    drawAxis(w, k) {
      const span = this.t1 - this.t0;
      const raw = span / 8, p = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
      let html = "";
      for (let t = Math.ceil(this.t0 / step) * step; t <= this.t1; t += step) {
        const x = (t - this.t0) * k;
        html += `<line x1="${x}" x2="${x}" y1="12" y2="18"></line><text x="${x + 2}" y="10">${fmtSeconds(t)}</text>`;
      }
      this.axis.innerHTML = html;
    }
    drawParallelism(w, k) {
      const pts = DATA.parallelism.points, h = 80;
      const cpus = DATA.parallelism.cpus || 1;
      const top = Math.max(DATA.parallelism.peak, cpus) * 1.15 || 1;
      const y = (n) => h - (n / top) * h;
      let d = `M0,${h}`, last = 0;
      for (const [t, n] of pts) {
        const x = (t - this.t0) * k;
        d += ` L${x.toFixed(1)},${y(last).toFixed(1)} L${x.toFixed(1)},${y(n).toFixed(1)}`;
        last = n;
      }
      d += ` L${w},${y(last).toFixed(1)} L${w},${h} Z`;
      this.par.innerHTML = `<path class="load" d="${d}"></path>` +
        `<line class="cpus" x1="0" x2="${w}" y1="${y(cpus)}" y2="${y(cpus)}"></line>` +
        `<text x="4" y="${y(cpus) - 3}">${cpus} CPUs</text>`;
    }
    zoomAt(factor, at) {
      const span = Math.min(this.total, Math.max((this.t1 - this.t0) * factor, this.total / 1e5));
      const frac = (at - this.t0) / (this.t1 - this.t0);
      this.t0 = Math.max(0, at - span * frac);
      this.t1 = Math.min(this.total, this.t0 + span);
      this.t0 = Math.max(0, this.t1 - span);
      this.layout();
    }
    reset() { this.t0 = 0; this.t1 = this.total; this.layout(); }
    timeAt(clientX) {
      const r = this.svg.getBoundingClientRect();
      return this.t0 + ((clientX - r.left) / r.width) * (this.t1 - this.t0);
    }
    bind() {
      const scroll = $("#tl-scroll");
      scroll.addEventListener("wheel", (ev) => {
        ev.preventDefault();
        this.zoomAt(ev.deltaY < 0 ? 0.8 : 1.25, this.timeAt(ev.clientX));
      }, { passive: false });
      let drag = null;
      scroll.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, t0: this.t0, t1: this.t1, moved: false }; });
      window.addEventListener("mousemove", (ev) => {
        if (!drag) return;
        const dx = ev.clientX - drag.x;
        if (Math.abs(dx) > 3) drag.moved = true;
        if (!drag.moved) return;
        const dt = (-dx / this.width()) * (drag.t1 - drag.t0);
        const span = drag.t1 - drag.t0;
        this.t0 = Math.min(Math.max(0, drag.t0 + dt), this.total - span);
        this.t1 = this.t0 + span;
        this.layout();
      });
      window.addEventListener("mouseup", (ev) => {
        const d = drag;
        drag = null;
        if (d && !d.moved && ev.target.classList && ev.target.classList.contains("bar")) {
          openPanel(parseInt(ev.target.getAttribute("data-id"), 10));
        }
      });
      this.svg.addEventListener("mousemove", (ev) => {
        const t = ev.target;
        if (!t.classList.contains("bar")) { this.tip.hidden = true; return; }
        const r = rowOf.get(parseInt(t.getAttribute("data-id"), 10));
        const exit = P.exit[r] === null ? "-" : P.exit[r];
        showTip(this.tip, `<b>${esc(P.label[r])}</b><br>process ${P.id[r]}, ${fmtSeconds(P.end[r] - P.start[r])} from +${fmtSeconds(P.start[r])}, exit ${exit}`, ev);
      });
      this.svg.addEventListener("mouseleave", () => { this.tip.hidden = true; });
      const mid = () => (this.t0 + this.t1) / 2;
      $("#tl-in").addEventListener("click", () => this.zoomAt(0.5, mid()));
      $("#tl-out").addEventListener("click", () => this.zoomAt(2, mid()));
      $("#tl-reset").addEventListener("click", () => this.reset());
      let resize = 0;
      window.addEventListener("resize", () => { clearTimeout(resize); resize = setTimeout(() => this.layout(), 100); });
    }
  }
  if (P && $("#tl-svg")) bt.timeline = new Timeline();

  /* ---------- output search ---------- */
  const streamSearch = $("#stream-search");
  if (streamSearch) {
    let pending = 0;
    streamSearch.addEventListener("input", () => {
      clearTimeout(pending);
      pending = setTimeout(() => {
        const q = streamSearch.value.toLowerCase();
        let hits = 0;
        $$(".stream .line").forEach((line) => {
          const hit = q && line.textContent.toLowerCase().includes(q);
          line.classList.toggle("hit", !!hit);
          line.classList.toggle("hidden", !!q && !hit);
          if (hit) hits++;
        });
        $("#stream-count").textContent = q ? `${hits} matching lines` : "";
      }, 120);
    });
  }
  bt.ready = true;
  // When the first frame with everything drawn has been painted (benchmarks read it).
  requestAnimationFrame(() => setTimeout(() => { bt.paintedAt = performance.now(); }, 0));
})();
