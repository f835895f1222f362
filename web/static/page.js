// Sentinel's page script: the film viewer (window and level by drag or
// presets, heatmap toggle and opacity) and the keyboard-first worklist.
// Every form also works without it.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var main = document.getElementById("main");
  var csrf = main ? main.getAttribute("data-csrf") : "";

  // ---- film viewer -------------------------------------------------------
  var svgNS = "http://www.w3.org/2000/svg";
  var defs = null;
  var viewerCount = 0;

  function makeFilter() {
    if (!defs) {
      defs = document.createElementNS(svgNS, "svg");
      defs.setAttribute("class", "svgdefs");
      defs.setAttribute("aria-hidden", "true");
      document.body.appendChild(defs);
    }
    var id = "wl" + (viewerCount++);
    var f = document.createElementNS(svgNS, "filter");
    f.setAttribute("id", id);
    f.setAttribute("color-interpolation-filters", "sRGB");
    var ct = document.createElementNS(svgNS, "feComponentTransfer");
    var funcs = [];
    ["feFuncR", "feFuncG", "feFuncB"].forEach(function (n) {
      var fn = document.createElementNS(svgNS, n);
      fn.setAttribute("type", "linear");
      ct.appendChild(fn);
      funcs.push(fn);
    });
    f.appendChild(ct);
    defs.appendChild(f);
    return { id: id, funcs: funcs };
  }

  function Viewer(fig) {
    this.fig = fig;
    this.film = fig.querySelector("img.film");
    this.heat = fig.querySelector("img.heat");
    this.out = fig.querySelector("output.wl");
    this.w = 255;
    this.l = 128;
    this.filter = null;
    var self = this;
    var toggle = fig.querySelector(".heat-on");
    var opacity = fig.querySelector(".heat-opacity");
    if (toggle && this.heat) {
      toggle.addEventListener("change", function () { self.heat.classList.toggle("off", !toggle.checked); });
    }
    if (opacity && this.heat) {
      opacity.addEventListener("input", function () { self.heat.style.opacity = opacity.value / 100; });
    }
    fig.querySelectorAll(".presets button").forEach(function (b) {
      b.addEventListener("click", function () { self.set(+b.getAttribute("data-w"), +b.getAttribute("data-l")); });
    });
    var stage = fig.querySelector(".stage");
    var drag = null;
    stage.addEventListener("pointerdown", function (e) {
      drag = { x: e.clientX, y: e.clientY, w: self.w, l: self.l };
      stage.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    stage.addEventListener("pointermove", function (e) {
      if (!drag) { return; }
      self.set(drag.w + (e.clientX - drag.x), drag.l - (e.clientY - drag.y));
    });
    stage.addEventListener("pointerup", function () { drag = null; });
    stage.addEventListener("pointercancel", function () { drag = null; });
  }

  Viewer.prototype.load = function () {
    var self = this;
    if (!this.film.getAttribute("src")) {
      this.film.addEventListener("load", function () { self.fit(); });
    }
    [this.film, this.heat].forEach(function (img) {
      if (img && !img.getAttribute("src")) { img.setAttribute("src", img.getAttribute("data-src")); }
    });
    this.fit();
  };

  // fit scales the film to fill the stage's width or 68% of the window's
  // height, keeping its aspect, small films enlarged; the heatmap follows.
  Viewer.prototype.fit = function () {
    var nw = this.film.naturalWidth, nh = this.film.naturalHeight;
    var stage = this.fig.querySelector(".stage");
    var w = stage.clientWidth, h = window.innerHeight * 0.68;
    if (!nw || !nh || !w) { return; }
    var s = Math.min(w / nw, h / nh);
    this.film.style.width = Math.floor(nw * s) + "px";
    this.film.style.height = Math.floor(nh * s) + "px";
    this.film.style.maxWidth = "none";
    this.film.style.maxHeight = "none";
  };

  // set applies window w and level l, in the displayed image's 0-255 grey
  // levels: levels below l - w/2 show black, above l + w/2 white.
  Viewer.prototype.set = function (w, l) {
    this.w = Math.max(1, Math.min(510, Math.round(w)));
    this.l = Math.max(0, Math.min(255, Math.round(l)));
    if (!this.filter) {
      this.filter = makeFilter();
      this.film.style.filter = "url(#" + this.filter.id + ")";
    }
    var slope = 255 / this.w;
    var intercept = -(this.l - this.w / 2) / this.w;
    this.filter.funcs.forEach(function (fn) {
      fn.setAttribute("slope", slope.toFixed(4));
      fn.setAttribute("intercept", intercept.toFixed(4));
    });
    if (this.out) { this.out.textContent = "window " + this.w + ", level " + this.l; }
  };

  Viewer.prototype.toggleHeat = function () {
    var t = this.fig.querySelector(".heat-on");
    if (t) { t.checked = !t.checked; t.dispatchEvent(new Event("change")); }
  };

  var viewers = [];
  document.querySelectorAll("figure.viewer").forEach(function (fig) { viewers.push(new Viewer(fig)); });
  window.addEventListener("resize", function () { viewers.forEach(function (v) { v.fit(); }); });

  var sections = Array.prototype.slice.call(document.querySelectorAll("section.q"));
  if (sections.length === 0) {
    viewers.forEach(function (v) { v.load(); });
    return;
  }

  // ---- worklist ----------------------------------------------------------
  var current = 0;
  var answered = {}; // index -> label
  var history = []; // indices answered in this visit, for U
  var pendingAbnormal = false;

  function viewerOf(i) { return sections[i] ? viewers[viewers.indexOf(viewerFor(sections[i]))] : null; }
  function viewerFor(sec) {
    for (var k = 0; k < viewers.length; k++) { if (sec.contains(viewers[k].fig)) { return viewers[k]; } }
    return null;
  }

  function show(i) {
    if (i < 0 || i >= sections.length) { return; }
    closeFinding();
    sections[current].classList.remove("current");
    current = i;
    sections[i].classList.add("current");
    document.querySelectorAll(".queue a").forEach(function (a) {
      if (+a.getAttribute("data-index") === i) { a.setAttribute("aria-current", "true"); } else { a.removeAttribute("aria-current"); }
    });
    [i, i + 1].forEach(function (j) { var v = viewerOf(j); if (v) { v.load(); } });
    if (history.length || i > 0) { sections[i].querySelector("h2").focus({ preventScroll: true }); }
    window.scrollTo(0, 0);
  }

  function nextOpen(from) {
    for (var k = from + 1; k < sections.length; k++) { if (!answered[k]) { return k; } }
    for (k = 0; k <= from && k < sections.length; k++) { if (!answered[k]) { return k; } }
    return -1;
  }

  function say(i, text) {
    sections[i].querySelector(".result").textContent = text;
    var st = document.querySelector('.state[data-state="' + i + '"]');
    if (st) { st.textContent = text ? "· " + text : ""; }
  }

  function post(url, fields) {
    var body = new URLSearchParams();
    Object.keys(fields).forEach(function (k) { body.append(k, fields[k]); });
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json", "X-Requested-With": "fetch" }
    }).then(function (r) {
      if (r.status === 401) { window.location.href = "/signin?next=/worklist"; throw new Error("signed out"); }
      if (!r.ok) { return r.text().then(function (t) { throw new Error(t.trim() || r.statusText); }); }
      return r.json();
    });
  }

  function answer(i, label, finding, text) {
    var sec = sections[i];
    var inst = sec.getAttribute("data-instance");
    closeFinding();
    if (label === "skip") {
      say(i, "skipped");
      var n = nextOpen(i);
      if (n >= 0 && n !== i) { show(n); }
      return;
    }
    say(i, "saving…");
    post("/answer", { instance: inst, label: label, finding: finding || "", finding_text: text || "" }).then(function (res) {
      answered[i] = label;
      history.push(i);
      say(i, "stored: " + res.label + (res.finding ? ": " + res.finding : ""));
      var n = nextOpen(i);
      if (n >= 0) { show(n); } else { say(i, "stored: " + res.label + " — that was the last open question"); }
    }).catch(function (e) { say(i, "not stored: " + e.message); });
  }

  function undoLast() {
    var i = history.pop();
    if (i === undefined) { return; }
    post("/undo", { instance: sections[i].getAttribute("data-instance") }).then(function () {
      delete answered[i];
      say(i, "undone");
      show(i);
    }).catch(function (e) { history.push(i); say(i, "not undone: " + e.message); });
  }

  function findingBox(i) { return sections[i].querySelector(".finding"); }
  function openFinding() {
    pendingAbnormal = true;
    var box = findingBox(current);
    box.classList.add("open");
    say(current, "abnormal: press 1–6 for a finding, O to type one, Enter for none, Esc to cancel");
  }
  function closeFinding() {
    if (!pendingAbnormal) { return; }
    pendingAbnormal = false;
    findingBox(current).classList.remove("open");
  }

  sections.forEach(function (sec, i) {
    var form = sec.querySelector("form.answer");
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var label = e.submitter ? e.submitter.value : "abnormal";
      answer(i, label, form.elements.finding.value, form.elements.finding_text.value);
    });
    form.elements.finding_text.addEventListener("keydown", function (e) {
      if (e.key === "Enter") {
        e.preventDefault();
        answer(i, "abnormal", "other", form.elements.finding_text.value);
      } else if (e.key === "Escape") {
        e.target.blur();
        closeFinding();
      }
    });
    sec.querySelector("h2").setAttribute("tabindex", "-1");
  });

  document.querySelectorAll(".queue a").forEach(function (a) {
    a.addEventListener("click", function (e) { e.preventDefault(); show(+a.getAttribute("data-index")); });
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var tag = e.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") { return; }
    var k = e.key;
    if (pendingAbnormal) {
      var form = sections[current].querySelector("form.answer");
      if (k >= "1" && k <= "9") {
        var opt = form.elements.finding.options[+k];
        if (opt && opt.value !== "other") { e.preventDefault(); answer(current, "abnormal", opt.value, ""); }
        return;
      }
      if (k === "Enter") { e.preventDefault(); answer(current, "abnormal", "", ""); return; }
      if (k === "o" || k === "O") { e.preventDefault(); form.elements.finding_text.focus(); return; }
      if (k === "Escape") { e.preventDefault(); closeFinding(); say(current, ""); return; }
      return;
    }
    if (tag === "BUTTON" && (k === "Enter" || k === " ")) { return; }
    switch (k) {
      case "n": case "N": e.preventDefault(); answer(current, "normal"); break;
      case "a": case "A": e.preventDefault(); openFinding(); break;
      case "s": case "S": e.preventDefault(); answer(current, "skip"); break;
      case "u": case "U": e.preventDefault(); undoLast(); break;
      case "h": case "H": var v = viewerOf(current); if (v) { e.preventDefault(); v.toggleHeat(); } break;
      case "ArrowRight": case "ArrowDown": e.preventDefault(); show(Math.min(current + 1, sections.length - 1)); break;
      case "ArrowLeft": case "ArrowUp": e.preventDefault(); show(Math.max(current - 1, 0)); break;
    }
  });

  show(0);
})();
