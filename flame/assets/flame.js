// buildtape flamegraph viewer: details on hover, click to zoom, regex search, URL state.
// Data: FLAME_META, FLAME_NAMES and FLAME_FRAMES (rows of name, total, self, parent[, base,
// base self]) are written before this script; frame i is the i-th <g> under #frames.
(function () {
  "use strict";
  var M = FLAME_META, N = FLAME_NAMES, D = FLAME_FRAMES;
  var stride = M.differential ? 6 : 4;
  var svg = document.documentElement;
  var NS = "http://www.w3.org/2000/svg";
  var groups = document.getElementById("frames").children;
  var frames = [];
  for (var i = 0; i < groups.length; i++) {
    var g = groups[i], r = g.querySelector("rect"), t = g.querySelector("text");
    var o = i * stride;
    frames.push({
      g: g, rect: r, text: t, name: N[D[o]], total: D[o + 1], self: D[o + 2], parent: D[o + 3],
      base: M.differential ? D[o + 4] : 0, baseSelf: M.differential ? D[o + 5] : 0,
      x: +r.getAttribute("x"), w: +r.getAttribute("width"), fill: r.getAttribute("fill")
    });
    g.setAttribute("data-i", i);
  }
  var details = document.getElementById("details");
  var matchedText = document.getElementById("matched");
  var usable = M.width - 2 * M.padX;
  var zoomed = -1, hovered = -1;

  function el(tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    svg.appendChild(e);
    return e;
  }
  function fmt(x) { return Math.round(x * 1000) / 1000; }
  function describe(f) {
    var pct = M.total ? (100 * f.total / M.total).toFixed(2) + "%" : "";
    if (!M.differential)
      return M.nametype + " " + f.name + " (" + fmt(f.total) + " " + M.unit + ", " + pct +
        ", self " + fmt(f.self) + ")";
    if (f.total === 0) return M.nametype + " " + f.name + " (only in base: " + fmt(f.base) + " " + M.unit + ")";
    var d = f.total - f.base, rel = f.base ? " (" + (d >= 0 ? "+" : "") + (100 * d / f.base).toFixed(2) + "%)" : " (new)";
    return M.nametype + " " + f.name + " (" + fmt(f.total) + " " + M.unit + ", base " + fmt(f.base) +
      ", " + (d >= 0 ? "+" : "") + fmt(d) + rel + "; self " + fmt(f.self) + ", base self " + fmt(f.baseSelf) + ")";
  }
  function stackOf(i) {
    var names = [];
    for (var j = i; j > 0; j = frames[j].parent) names.unshift(frames[j].name);
    return names.join(";");
  }
  function label(f, width) {
    if (!f.text) {
      f.text = document.createElementNS(NS, "text");
      f.text.setAttribute("y", +f.rect.getAttribute("y") + (+f.rect.getAttribute("height")) - 3.5);
      f.g.appendChild(f.text);
    }
    var chars = Math.floor((width - 6) / (M.fontSize * M.charWidth));
    f.text.textContent = chars < 3 ? "" : (f.name.length <= chars ? f.name : f.name.slice(0, chars - 2) + "..");
  }
  function place(f, x, w) {
    f.rect.setAttribute("x", x.toFixed(1));
    f.rect.setAttribute("width", w.toFixed(1));
    label(f, w);
    f.text.setAttribute("x", (x + 3).toFixed(1));
  }
  function isAncestor(a, i) {
    for (var j = frames[i].parent; j >= 0; j = frames[j].parent) if (j === a) return true;
    return false;
  }

  // Zoom: the clicked frame fills the width, its ancestors stay (faded), the rest hides.
  function zoom(i) {
    zoomed = i;
    var z = frames[i], scale = usable / z.w;
    for (var j = 0; j < frames.length; j++) {
      var f = frames[j];
      f.g.classList.remove("hide", "parent");
      if (j === i || isAncestor(i, j)) {
        place(f, M.padX + (f.x - z.x) * scale, f.w * scale);
      } else if (isAncestor(j, i)) {
        f.g.classList.add("parent");
        place(f, M.padX, usable);
      } else {
        f.g.classList.add("hide");
      }
    }
    unzoomBtn.classList.remove("off");
    saveState();
  }
  function unzoom() {
    zoomed = -1;
    for (var j = 0; j < frames.length; j++) {
      var f = frames[j];
      f.g.classList.remove("hide", "parent");
      place(f, f.x, f.w);
    }
    unzoomBtn.classList.add("off");
    saveState();
  }

  // Search: matching frames turn magenta; "Matched" counts each stack once, even where a
  // match is nested inside another match.
  var term = "", ignoreCase = false;
  function search(text) {
    term = text || "";
    var re = null;
    if (term) {
      try { re = new RegExp(term, ignoreCase ? "i" : ""); } catch (e) { matchedText.textContent = "bad regex"; return; }
    }
    var isHit = new Array(frames.length), counted = 0;
    for (var j = 0; j < frames.length; j++) {
      var f = frames[j], hit = re !== null && j > 0 && re.test(f.name);
      f.rect.setAttribute("fill", hit ? "rgb(230,0,230)" : f.fill);
      isHit[j] = hit;
    }
    for (var h = 1; h < frames.length; h++) {
      if (!isHit[h]) continue;
      var nested = false;
      for (var a = frames[h].parent; a > 0; a = frames[a].parent)
        if (isHit[a]) { nested = true; break; }
      if (!nested) counted += frames[h].total;
    }
    matchedText.textContent = re ? "Matched: " + (M.total ? (100 * counted / M.total).toFixed(1) : "0") + "%" : " ";
    searchBox.value = term;
    saveState();
  }

  function saveState() {
    if (!window.history || !history.replaceState) return;
    var params = new URLSearchParams();
    if (zoomed > 0) params.set("zoom", zoomed);
    if (term) params.set("s", term);
    if (ignoreCase) params.set("i", "1");
    var q = params.toString();
    try { history.replaceState(null, "", q ? "?" + q : location.pathname); } catch (e) { /* file: URLs */ }
  }
  function copy(text) {
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).catch(function () { window.prompt("Copy:", text); });
    else window.prompt("Copy:", text);
    details.textContent = "copied: " + text;
  }

  // Controls, made here so that the no-script file carries none.
  var unzoomBtn = el("text", { x: M.padX, y: 24, "class": "ctl off", id: "unzoom" }, "Reset Zoom");
  unzoomBtn.addEventListener("click", unzoom);
  var fo = el("foreignObject", { x: M.width - 290, y: 6, width: 280, height: 26, id: "searchbox" });
  fo.innerHTML = '<div xmlns="http://www.w3.org/1999/xhtml" style="font:12px sans-serif;text-align:right">' +
    '<input id="search" placeholder="Search (regex)" style="width:160px"/> ' +
    '<label><input id="ignorecase" type="checkbox"/>ignore case</label></div>';
  var searchBox = fo.querySelector("#search"), caseBox = fo.querySelector("#ignorecase");
  searchBox.addEventListener("input", function () { search(searchBox.value); });
  caseBox.addEventListener("change", function () { ignoreCase = caseBox.checked; search(term); });

  document.getElementById("frames").addEventListener("click", function (e) {
    var g = e.target.closest("g[data-i]");
    if (!g) return;
    var i = +g.getAttribute("data-i");
    if (i === 0) unzoom(); else zoom(i);
  });
  document.getElementById("frames").addEventListener("mouseover", function (e) {
    var g = e.target.closest("g[data-i]");
    if (!g) return;
    hovered = +g.getAttribute("data-i");
    details.textContent = describe(frames[hovered]) + "   [c: copy name, s: copy stack]";
  });
  document.getElementById("frames").addEventListener("mouseout", function () {
    hovered = -1; details.textContent = " ";
  });
  window.addEventListener("keydown", function (e) {
    if (e.target === searchBox) { if (e.key === "Escape") search(""); return; }
    if (e.key === "Escape") unzoom();
    else if (e.key === "/" || (e.ctrlKey && e.key === "f")) { e.preventDefault(); searchBox.focus(); }
    else if (hovered >= 0 && e.key === "c") copy(frames[hovered].name);
    else if (hovered >= 0 && e.key === "s") copy(stackOf(hovered));
  });

  // Restore zoom and search from the URL.
  var params = new URLSearchParams(location.search);
  if (params.get("i") === "1") { ignoreCase = true; caseBox.checked = true; }
  if (params.get("s")) search(params.get("s"));
  var z = parseInt(params.get("zoom") || "", 10);
  if (z > 0 && z < frames.length) zoom(z);
  window.flamegraph = { zoom: zoom, unzoom: unzoom, search: search, frames: frames };
})();
