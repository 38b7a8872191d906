/* NQP live dashboard: vanilla JavaScript, no build step, plotly.js from the server.
 *
 * Security: the API key lives in sessionStorage only (this tab; "Sign out" clears it) and
 * goes out only as "Authorization: Bearer" on fetch calls. The WebSocket, which a browser
 * cannot give headers, authenticates with a short-lived token from POST /api/v1/auth/token.
 * Nothing is written to the console.
 *
 * Live data: history from GET /api/v1/predictions (paged, oldest first), then WS
 * /ws/predictions ({"type":"subscription","sources":[...]}; the server sends "subscribed",
 * "prediction" and a "ping" every 20 s). Reconnects with exponential backoff and jitter;
 * after a reconnect the history is reloaded so gaps are filled. Predictions published just
 * before a subscription took effect but stored only after the history was read are in
 * neither: a live point that skips sequences reads the history once more (GAP_REFILL_MS
 * later, when the server has stored them). Buffers hold the last MAX_POINTS predictions of
 * the selected source; charts redraw at most every REDRAW_MS.
 */
"use strict";

(() => {
  const KEY_STORAGE = "nqp.apiKey";
  const RUNS_STORAGE = "nqp.validationRuns";
  const MAX_POINTS = 500;
  const HIT_WINDOW = 50;
  const REDRAW_MS = 250;
  const METRICS_MS = 2000;
  const SUMMARY_MS = 5000;
  const SOURCES_MS = 10000;
  const HISTORY_PAGE = 1000;
  const HISTORY_MAX_PAGES = 10;
  const GAP_REFILL_MS = 1000;
  const WS_IDLE_MS = 50000; // more than two server pings
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const METRICS_HISTORY = 150; // 5 minutes of 2 s polls
  const SOURCE_SUMMARIES = 25; // per-source summaries fetched for the sources table

  const COLORS = { up: "#1a9a5a", down: "#d2413a", hold: "#8a94a3", line: "#2f6fde", alt: "#8e44ad" };
  const PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  const $ = (id) => document.getElementById(id);

  class AuthError extends Error {}

  class ApiError extends Error {
    constructor(status, error) {
      super((error && error.message) || `HTTP ${status}`);
      this.status = status;
      this.code = error && error.code;
      this.field = error && error.field;
    }
  }

  const state = {
    key: null,
    view: "live",
    sources: [],
    source: null,
    preds: [], // predictions of the selected source, by sequence, at most MAX_POINTS
    seqs: new Set(),
    historyGen: 0,
    refillTimer: null,
    summary: null,
    ws: null,
    wsGen: 0,
    retries: 0,
    retryTimer: null,
    countdown: null,
    idleTimer: null,
    gapFill: false,
    drawTimer: null,
    lastDraw: 0,
    dirty: false,
    timers: [],
    metricsPrev: null,
    metricsHistory: [],
    validationTimer: null,
  };

  // ------------------------------------------------------------------ API

  async function api(path, { method = "GET", body } = {}) {
    if (!state.key) throw new AuthError("signed out");
    const headers = { Authorization: `Bearer ${state.key}`, Accept: "application/json" };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      let message = "";
      try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
      const why = message ? `: ${message.replace(/\.$/, "")}` : "";
      authLost(`The server rejected the API key (401${why}). Enter a valid key.`);
      throw new AuthError(message || "unauthorized");
    }
    if (!response.ok) {
      let error = null;
      try { error = (await response.json()).error; } catch (_) { /* not JSON */ }
      throw new ApiError(response.status, error);
    }
    const type = response.headers.get("content-type") || "";
    return type.includes("application/json") ? response.json() : response.text();
  }

  function every(fn, ms) {
    const run = () => { fn().catch(handleBackgroundError); };
    run();
    state.timers.push(setInterval(run, ms));
  }

  function handleBackgroundError(err) {
    if (err instanceof AuthError) return; // authLost already showed the form
    if (err instanceof TypeError) { // fetch failed: server down or restarting
      banner("The server is unreachable; retrying…");
      return;
    }
    banner(err.message);
  }

  function banner(text) {
    const el = $("banner");
    el.textContent = text || "";
    el.hidden = !text;
  }

  // ------------------------------------------------------------------ sign in / out

  function showLogin(message) {
    $("app").hidden = true;
    $("login").hidden = false;
    $("signout").hidden = true;
    $("who").hidden = true;
    $("login-error").textContent = message || "";
    setConn("offline", "signed out");
    $("api-key").focus();
  }

  async function signIn(key, restored) {
    state.key = key;
    let status;
    try {
      status = await api("/api/v1/status");
    } catch (err) {
      state.key = null;
      if (err instanceof AuthError) {
        showLogin(restored
          ? "The key of this session is no longer valid; enter a key."
          : "That API key was not accepted (401 unauthorized). Check it and try again.");
      } else {
        showLogin(`Could not sign in: ${err instanceof TypeError ? "the server is unreachable" : err.message}.`);
      }
      return;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    $("api-key").value = "";
    $("login").hidden = true;
    $("app").hidden = false;
    $("signout").hidden = false;
    $("who").hidden = false;
    $("who").textContent = `${status.role} · tenant ${String(status.tenant).slice(0, 8)}… · v${status.version}`;
    $("who").title = `tenant ${status.tenant}`;
    banner("");
    start();
  }

  function stop() {
    state.timers.forEach(clearInterval);
    state.timers = [];
    clearTimeout(state.retryTimer);
    clearInterval(state.countdown);
    clearTimeout(state.idleTimer);
    clearTimeout(state.drawTimer);
    clearTimeout(state.validationTimer);
    clearTimeout(state.refillTimer);
    state.refillTimer = null;
    state.drawTimer = null;
    state.wsGen += 1; // callbacks of the old socket are ignored from now on
    if (state.ws) { try { state.ws.close(1000, "signed out"); } catch (_) { /* closed */ } }
    state.ws = null;
    state.historyGen += 1;
    state.preds = [];
    state.seqs = new Set();
    state.sources = [];
    state.source = null;
    state.summary = null;
    state.metricsPrev = null;
    state.metricsHistory = [];
    for (const id of ["chart-series", "chart-confidence", "chart-patterns", "chart-quantum",
      "chart-throughput", "chart-convergence"]) {
      if (window.Plotly) window.Plotly.purge($(id));
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY_STORAGE);
    sessionStorage.removeItem(RUNS_STORAGE); // run ids belong to the tenant of the key
    state.key = null;
    stop();
    showLogin(message);
  }

  let authLostShown = false;
  function authLost(message) {
    if (!state.key || authLostShown) return;
    authLostShown = true;
    signOut(message);
    authLostShown = false;
  }

  function start() {
    showView(state.view);
    every(loadSources, SOURCES_MS);
    every(refreshSummary, SUMMARY_MS);
    every(pollMetrics, METRICS_MS);
    every(loadSourceTable, SOURCES_MS);
    loadValidation().catch(handleBackgroundError);
    connect();
  }

  // ------------------------------------------------------------------ views

  function showView(view) {
    state.view = view;
    for (const tab of document.querySelectorAll(".tabs [data-view]")) {
      const on = tab.dataset.view === view;
      tab.setAttribute("aria-selected", String(on));
      $(`view-${tab.dataset.view}`).hidden = !on;
    }
    // charts drawn while hidden have no width: resize what is now visible
    for (const el of document.querySelectorAll(`#view-${view} .js-plotly-plot`)) {
      window.Plotly.Plots.resize(el);
    }
    if (view === "live" && state.dirty) scheduleDraw();
    if (view === "platform") drawPlatformChart();
  }

  // ------------------------------------------------------------------ sources

  async function loadSources() {
    const data = await api("/api/v1/sources");
    setSources(data.sources);
  }

  function setSources(names) {
    state.sources = [...new Set(names)].sort();
    const select = $("source-select");
    const current = state.source;
    select.replaceChildren(...state.sources.map((s) => new Option(s, s, false, s === current)));
    if (!state.sources.length) {
      select.append(new Option("no sources yet", "", true, true));
      select.disabled = true;
      $("live-note").textContent = "Waiting for data: post points to POST /api/v1/process/realtime.";
      return;
    }
    select.disabled = false;
    if (current === null || !state.sources.includes(current)) selectSource(state.sources[0]);
    else if ($("live-note").textContent.startsWith("Waiting")) $("live-note").textContent = "";
  }

  function selectSource(name) {
    if (name === state.source) return;
    state.source = name;
    $("source-select").value = name;
    clearTimeout(state.refillTimer);
    state.refillTimer = null;
    state.preds = [];
    state.seqs = new Set();
    state.summary = null;
    $("live-note").textContent = "";
    sendSubscription();
    scheduleDraw();
    loadHistory(name).catch(handleBackgroundError);
    refreshSummary().catch(handleBackgroundError);
  }

  async function refreshSummary() {
    const source = state.source;
    if (!source) return;
    try {
      const summary = await api(`/api/v1/sources/${encodeURIComponent(source)}`);
      if (source === state.source) { state.summary = summary; drawCards(); }
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
  }

  // ------------------------------------------------------------------ history

  async function fetchRange(source, start, gen) {
    let out = [];
    let cursor = null;
    for (let page = 0; page < HISTORY_MAX_PAGES; page++) {
      const q = new URLSearchParams({ source, limit: String(HISTORY_PAGE) });
      if (start !== null) q.set("start", String(start));
      if (cursor) q.set("cursor", cursor);
      const data = await api(`/api/v1/predictions?${q}`);
      if (gen !== state.historyGen) return null;
      out = out.concat(data.predictions);
      if (out.length > MAX_POINTS) out = out.slice(-MAX_POINTS);
      cursor = data.next_cursor;
      if (!cursor) return { preds: out, complete: true };
    }
    return { preds: out, complete: false };
  }

  async function loadHistory(source, refill = false) {
    const gen = ++state.historyGen;
    let summary = null;
    try {
      summary = await api(`/api/v1/sources/${encodeURIComponent(source)}`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
    if (gen !== state.historyGen) return;
    // The predictions endpoint pages oldest first: for long sources start from a time
    // window estimated to hold the last MAX_POINTS points, widened once if it falls short.
    let result;
    if (summary && summary.points > MAX_POINTS && summary.last_timestamp !== null) {
      const dt = Math.max(1e-3, (summary.median_interarrival_ms || 1000) / 1000);
      for (const factor of [2, 20]) {
        result = await fetchRange(source, summary.last_timestamp - factor * MAX_POINTS * dt, gen);
        if (result === null || result.preds.length >= MAX_POINTS) break;
      }
    } else {
      result = await fetchRange(source, null, gen);
    }
    if (result === null || gen !== state.historyGen) return;
    if (!result.complete) $("live-note").textContent = "History truncated; showing the latest points.";
    for (const p of result.preds) addPrediction(p, false);
    scheduleDraw();
    // live points that came before the history may not follow it
    const last = result.preds.length ? result.preds[result.preds.length - 1].sequence : 0;
    if (!refill && skipsAfter(last)) scheduleRefill();
  }

  /** Whether the buffer skips a sequence after `seq` (the last of a history read). */
  function skipsAfter(seq) {
    let prev = seq;
    for (const p of state.preds) {
      if (p.sequence <= seq) continue;
      if (p.sequence !== prev + 1) return true;
      prev = p.sequence;
    }
    return false;
  }

  function scheduleRefill() {
    if (state.refillTimer) return;
    const source = state.source;
    state.refillTimer = setTimeout(() => {
      state.refillTimer = null;
      if (source === state.source) loadHistory(source, true).catch(handleBackgroundError);
    }, GAP_REFILL_MS);
  }

  function addPrediction(p, live) {
    if (p.source !== state.source || state.seqs.has(p.sequence)) return;
    state.seqs.add(p.sequence);
    const preds = state.preds;
    if (!preds.length || p.sequence > preds[preds.length - 1].sequence) {
      if (live && preds.length && p.sequence > preds[preds.length - 1].sequence + 1) scheduleRefill();
      preds.push(p);
    } else {
      let i = preds.length - 1;
      while (i >= 0 && preds[i].sequence > p.sequence) i--;
      preds.splice(i + 1, 0, p);
    }
    while (preds.length > MAX_POINTS) state.seqs.delete(preds.shift().sequence);
    if (live) scheduleDraw();
  }

  // ------------------------------------------------------------------ WebSocket

  function setConn(kind, text) {
    $("conn").dataset.state = kind;
    $("conn-text").textContent = text;
  }

  function sendSubscription() {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const msg = { type: "subscription" };
    if (state.source) msg.sources = [state.source]; // none selected yet: every source
    ws.send(JSON.stringify(msg));
  }

  function touch(gen) {
    clearTimeout(state.idleTimer);
    state.idleTimer = setTimeout(() => {
      if (gen === state.wsGen) dropSocket("no data or ping from the server");
    }, WS_IDLE_MS);
  }

  function dropSocket(reason) {
    const ws = state.ws;
    state.wsGen += 1;
    state.ws = null;
    clearTimeout(state.idleTimer);
    if (ws) { try { ws.close(); } catch (_) { /* closed */ } }
    state.gapFill = true;
    scheduleReconnect(reason);
  }

  function scheduleReconnect(reason) {
    if (!state.key) return;
    clearTimeout(state.retryTimer);
    clearInterval(state.countdown);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.retries);
    const delay = Math.round(base * (0.75 + 0.5 * Math.random()));
    state.retries += 1;
    const until = Date.now() + delay;
    const tick = () => {
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      setConn("reconnecting", `reconnecting in ${left} s${reason ? " (" + reason + ")" : ""}`);
    };
    tick();
    state.countdown = setInterval(tick, 1000);
    state.retryTimer = setTimeout(connect, delay);
  }

  async function connect() {
    if (!state.key) return;
    const gen = ++state.wsGen;
    clearTimeout(state.retryTimer);
    clearInterval(state.countdown);
    setConn("connecting", "connecting…");
    let token;
    try {
      token = (await api("/api/v1/auth/token", { method: "POST" })).access_token;
    } catch (err) {
      if (err instanceof AuthError || gen !== state.wsGen) return;
      state.gapFill = true;
      scheduleReconnect(err instanceof TypeError ? "server unreachable" : err.message);
      return;
    }
    if (gen !== state.wsGen || !state.key) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    // a short-lived token, not the API key, sent as the first message: browsers cannot send
    // headers on WebSockets, and a URL would carry it into access logs
    const ws = new WebSocket(`${scheme}//${location.host}/ws/predictions`);
    state.ws = ws;
    ws.onopen = () => {
      if (gen !== state.wsGen) return;
      ws.send(JSON.stringify({ type: "auth", token }));
      sendSubscription();
      touch(gen);
    };
    ws.onmessage = (event) => {
      if (gen !== state.wsGen) return;
      touch(gen);
      let msg;
      try { msg = JSON.parse(event.data); } catch (_) { return; }
      if (msg.type === "prediction") {
        onLivePrediction(msg.prediction);
      } else if (msg.type === "subscribed") {
        state.retries = 0;
        setConn("live", "live");
        banner("");
        if (state.gapFill && state.source) {
          state.gapFill = false;
          loadHistory(state.source).catch(handleBackgroundError);
          loadSources().catch(handleBackgroundError);
        }
      } else if (msg.type === "error") {
        $("live-note").textContent = `Subscription error: ${msg.message}`;
      }
    };
    ws.onclose = (event) => {
      if (gen !== state.wsGen) return;
      state.ws = null;
      clearTimeout(state.idleTimer);
      state.gapFill = true;
      const reason = event.code === 1013 ? "dropped: too slow for the stream"
        : event.code === 1008 ? "rejected" : event.code === 1012 || event.code === 1001 ? "server restarting" : "";
      scheduleReconnect(reason);
    };
  }

  function onLivePrediction(p) {
    if (!state.source) {
      setSources([...state.sources, p.source]); // selects it
    } else if (!state.sources.includes(p.source)) {
      setSources([...state.sources, p.source]);
    }
    addPrediction(p, true);
  }

  // ------------------------------------------------------------------ live charts

  function scheduleDraw() {
    state.dirty = true;
    if (state.drawTimer) return;
    const wait = Math.max(0, REDRAW_MS - (performance.now() - state.lastDraw));
    state.drawTimer = setTimeout(() => {
      state.drawTimer = null;
      requestAnimationFrame(drawLive);
    }, wait);
  }

  /** Realised hits: [{x, rate, n}] at each outcome, rolling over HIT_WINDOW scored predictions. */
  function realisedHitRate(preds) {
    const bySeq = new Map(preds.map((p) => [p.sequence, p]));
    const events = [];
    for (const p of preds) {
      if (p.warming_up || (p.direction !== "up" && p.direction !== "down")) continue;
      const later = bySeq.get(p.sequence + (p.horizon || 1));
      if (!later || typeof later.value !== "number" || typeof p.value !== "number") continue;
      const change = later.value - p.value;
      if (change === 0 || !Number.isFinite(change)) continue;
      events.push({ at: later, hit: (change > 0) === (p.direction === "up") });
    }
    events.sort((a, b) => a.at.sequence - b.at.sequence);
    const out = [];
    const window = [];
    let hits = 0;
    for (const e of events) {
      window.push(e.hit);
      hits += e.hit ? 1 : 0;
      if (window.length > HIT_WINDOW) hits -= window.shift() ? 1 : 0;
      out.push({ x: e.at.timestamp, rate: hits / window.length, n: window.length });
    }
    return out;
  }

  const toDate = (t) => new Date(t * 1000);
  const fmt = (v, digits = 3) => (v === null || v === undefined || !Number.isFinite(v) ? "—" : Number(v).toFixed(digits));
  const pct = (v) => (v === null || v === undefined || !Number.isFinite(v) ? "—" : `${(100 * v).toFixed(1)}%`);

  function baseLayout(extra) {
    return Object.assign({
      margin: { l: 48, r: 16, t: 8, b: 36 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { size: 11 },
      showlegend: true,
      legend: { orientation: "h", y: -0.2 },
      uirevision: "keep", // zoom and hidden traces survive redraws
    }, extra);
  }

  function drawLive() {
    if (state.view !== "live" || document.hidden || !window.Plotly || !state.key) return;
    state.dirty = false;
    state.lastDraw = performance.now();
    const preds = state.preds;
    const P = window.Plotly;
    const x = preds.map((p) => toDate(p.timestamp));
    const hover = preds.map((p) => `seq ${p.sequence} · ${p.direction} · conf ${fmt(p.confidence, 2)}`);
    const marked = (dir) => {
      const sel = preds.filter((p) => p.direction === dir && !p.warming_up);
      return {
        x: sel.map((p) => toDate(p.timestamp)),
        y: sel.map((p) => p.value),
        text: sel.map((p) => `seq ${p.sequence} · ${dir} · conf ${fmt(p.confidence, 2)}`),
      };
    };
    const up = marked("up");
    const down = marked("down");
    const hold = marked("hold");
    P.react($("chart-series"), [
      { x, y: preds.map((p) => p.value), text: hover, type: "scatter", mode: "lines", name: "value",
        line: { color: COLORS.line, width: 1.5 }, hovertemplate: "%{y:.4g}<br>%{text}<extra></extra>" },
      { ...up, type: "scatter", mode: "markers", name: "up", hovertemplate: "%{text}<extra></extra>",
        marker: { symbol: "triangle-up", size: 9, color: COLORS.up } },
      { ...down, type: "scatter", mode: "markers", name: "down", hovertemplate: "%{text}<extra></extra>",
        marker: { symbol: "triangle-down", size: 9, color: COLORS.down } },
      { ...hold, type: "scatter", mode: "markers", name: "hold", visible: "legendonly",
        hovertemplate: "%{text}<extra></extra>", marker: { symbol: "circle", size: 5, color: COLORS.hold } },
    ], baseLayout({ xaxis: { type: "date" }, yaxis: { title: { text: "value" } } }), PLOT_CONFIG);

    const hits = realisedHitRate(preds);
    P.react($("chart-confidence"), [
      { x, y: preds.map((p) => p.confidence), type: "scatter", mode: "lines", name: "confidence",
        line: { color: COLORS.alt, width: 1.2 } },
      { x: hits.map((h) => toDate(h.x)), y: hits.map((h) => h.rate), text: hits.map((h) => `${h.n} scored`),
        type: "scatter", mode: "lines", name: `hit rate (last ${HIT_WINDOW})`,
        line: { color: COLORS.up, width: 2 }, hovertemplate: "%{y:.1%} of %{text}<extra></extra>" },
    ], baseLayout({
      xaxis: { type: "date" },
      yaxis: { range: [0, 1.02], tickformat: ".0%" },
      shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 0.5, y1: 0.5,
        line: { color: COLORS.hold, dash: "dot", width: 1 } }],
    }), PLOT_CONFIG);

    let latestPatterns = null;
    for (let i = preds.length - 1; i >= 0 && !latestPatterns; i--) {
      const nr = preds[i].neuromorphic_results;
      if (nr && nr.patterns && Object.keys(nr.patterns).length) latestPatterns = nr.patterns;
    }
    const kinds = latestPatterns ? Object.keys(latestPatterns) : [];
    P.react($("chart-patterns"), [
      { x: kinds.map((k) => latestPatterns[k]), y: kinds, type: "bar", orientation: "h", name: "strength",
        marker: { color: "#4b7bec" }, hovertemplate: "%{y}: %{x:.3f}<extra></extra>" },
    ], baseLayout({ showlegend: false, margin: { l: 86, r: 16, t: 8, b: 30 },
      xaxis: { range: [0, 1] }, yaxis: { autorange: "reversed" } }), PLOT_CONFIG);

    const withQ = preds.filter((p) => p.quantum_results && Number.isFinite(p.quantum_results.energy));
    P.react($("chart-quantum"), [
      { x: withQ.map((p) => toDate(p.timestamp)), y: withQ.map((p) => p.quantum_results.energy),
        type: "scatter", mode: "lines", name: "energy", line: { color: "#e67e22", width: 1.5 } },
      { x: withQ.map((p) => toDate(p.timestamp)), y: withQ.map((p) => p.quantum_results.phase_coherence),
        type: "scatter", mode: "lines", name: "phase coherence", yaxis: "y2",
        line: { color: "#16a085", width: 1.5 } },
    ], baseLayout({
      margin: { l: 48, r: 48, t: 8, b: 36 },
      xaxis: { type: "date" },
      yaxis: { title: { text: "energy" } },
      yaxis2: { title: { text: "coherence" }, overlaying: "y", side: "right", range: [0, 1],
        tickmode: "linear", tick0: 0, dtick: 0.25, showgrid: false },
    }), PLOT_CONFIG);

    drawCards(hits);
  }

  function drawCards(hits) {
    const preds = state.preds;
    const last = preds[preds.length - 1];
    if (last) {
      $("c-value").textContent = fmt(last.value, 4);
      $("c-time").textContent = `seq ${last.sequence} · ${toDate(last.timestamp).toLocaleTimeString()}`;
      const arrow = { up: "▲ up", down: "▼ down", hold: "● hold" }[last.direction] || last.direction;
      $("c-direction").textContent = arrow;
      $("c-direction").className = `value dir-${last.direction}`;
      $("c-confidence").textContent = `confidence ${pct(last.confidence)} · horizon ${last.horizon}`;
      $("c-anomaly").textContent = fmt(last.anomaly_score, 3);
      $("c-latency").textContent = Number.isFinite(last.processing_time_ms) ? `${fmt(last.processing_time_ms, 2)} ms processing` : "";
    } else {
      for (const id of ["c-value", "c-direction", "c-anomaly"]) $(id).textContent = "—";
      for (const id of ["c-time", "c-confidence", "c-latency"]) $(id).textContent = "";
    }
    if (hits !== undefined) {
      const h = hits[hits.length - 1];
      $("c-hit").textContent = h ? pct(h.rate) : "—";
      $("c-hit-n").textContent = h ? `${h.n} scored · ${preds.length} points buffered` : "nothing scored yet";
    }
    $("c-hit-window").textContent = String(HIT_WINDOW);
    $("c-hit-card").title = $("hit-definition").textContent.replace(/\s+/g, " ").trim();
    const s = state.summary;
    if (s) {
      $("c-server-hit").textContent = `${pct(s.hit_rate)} / ${pct(s.rolling_hit_rate)}`;
      $("c-server-scored").textContent = `${s.scored} scored of ${s.outcomes} outcomes`;
      $("c-points").textContent = String(Math.max(s.points, last ? last.sequence : 0));
      $("c-warm").textContent = s.warming_up ? "warming up" : (s.in_memory ? "in memory" : "checkpointed");
    } else {
      $("c-server-hit").textContent = "—";
      $("c-server-scored").textContent = "";
      $("c-points").textContent = preds.length ? String(last.sequence) : "—";
      $("c-warm").textContent = "";
    }
  }

  // ------------------------------------------------------------------ platform metrics

  function samples(metrics, name, where = {}) {
    return (metrics[name] || []).filter((s) => Object.entries(where).every(([k, v]) => s.labels[k] === v));
  }

  function total(metrics, name, where) {
    return samples(metrics, name, where).reduce((acc, s) => acc + s.value, 0);
  }

  /** Cumulative buckets [{le, count}] of one histogram series, sorted by le. */
  function buckets(metrics, name, where) {
    return samples(metrics, `${name}_bucket`, where)
      .map((s) => ({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value }))
      .sort((a, b) => a.le - b.le);
  }

  function deltaBuckets(now, before) {
    if (!before || before.length !== now.length) return now;
    return now.map((b, i) => ({ le: b.le, count: b.count - before[i].count }));
  }

  /** The q-quantile of a cumulative histogram, interpolated linearly within the bucket
   *  (as Prometheus' histogram_quantile); beyond the last finite bound: that bound, flagged. */
  function quantile(q, bs) {
    if (!bs.length) return null;
    const n = bs[bs.length - 1].count;
    if (!(n > 0)) return null;
    const rank = q * n;
    let prevLe = 0;
    let prevCount = 0;
    for (const b of bs) {
      if (b.count >= rank) {
        if (b.le === Infinity) return { value: prevLe, over: true };
        const inBucket = b.count - prevCount;
        const frac = inBucket > 0 ? (rank - prevCount) / inBucket : 0;
        return { value: prevLe + (b.le - prevLe) * frac, over: false };
      }
      prevLe = b.le;
      prevCount = b.count;
    }
    return null;
  }

  const ms = (qv) => (qv === null ? "—" : `${qv.over ? ">" : ""}${(qv.value * 1000).toFixed(qv.value < 0.01 ? 2 : 1)} ms`);

  const STAGES = [
    ["request (queue + engine)", "nqp_stage_seconds", { stage: "request" }],
    ["engine (per batch)", "nqp_stage_seconds", { stage: "engine" }],
    ["storage", "nqp_stage_seconds", { stage: "storage" }],
    ["optimise", "nqp_stage_seconds", { stage: "optimize" }],
    ["HTTP realtime", "nqp_http_request_seconds", { route: "/api/v1/process/realtime" }],
  ];

  let metricsInFlight = false;
  async function pollMetrics() {
    if (state.view !== "platform" || document.hidden || metricsInFlight) return;
    metricsInFlight = true;
    let metrics;
    try { metrics = await api("/api/v1/metrics"); } finally { metricsInFlight = false; }
    if (!state.key) return;
    const now = performance.now();
    // rates need a recent previous poll (not one from before the view was hidden)
    const prev = state.metricsPrev && now - state.metricsPrev.t < 3 * METRICS_MS ? state.metricsPrev : null;
    const dt = prev ? (now - prev.t) / 1000 : null;
    const cur = { t: now, metrics, hist: {} };

    const predTotal = total(metrics, "nqp_predictions_total");
    const rate = prev ? Math.max(0, predTotal - prev.predTotal) / dt : null;
    cur.predTotal = predTotal;
    $("m-rate").textContent = rate === null ? "…" : rate.toFixed(rate < 10 ? 2 : 0);
    $("m-total").textContent = `${predTotal.toLocaleString()} predictions since start`;

    const tbody = $("stage-table").tBodies[0];
    tbody.replaceChildren();
    let requestQ = null;
    for (const [label, name, where] of STAGES) {
      const bs = buckets(metrics, name, where);
      cur.hist[label] = bs;
      if (!bs.length) continue;
      let window = deltaBuckets(bs, prev && prev.hist[label]);
      let windowed = true;
      if (!(window[window.length - 1].count > 0)) { window = bs; windowed = false; }
      const qs = [0.5, 0.95, 0.99].map((q) => quantile(q, window));
      if (label.startsWith("request")) requestQ = { qs, windowed };
      const row = tbody.insertRow();
      for (const text of [label, ...qs.map(ms), `${bs[bs.length - 1].count.toLocaleString()}${windowed ? "" : " (since start)"}`]) {
        row.insertCell().textContent = text;
      }
    }
    if (requestQ) {
      $("m-latency").textContent = requestQ.qs.map((q) => (q === null ? "—" : ms(q).replace(" ms", ""))).join(" / ") + " ms";
      $("m-latency-sub").textContent = requestQ.windowed ? "realtime requests, last poll" : "since start (idle now)";
    } else {
      $("m-latency").textContent = "—";
      $("m-latency-sub").textContent = "no realtime requests yet";
    }

    const bsBatch = buckets(metrics, "nqp_batch_size", {});
    const batchSum = total(metrics, "nqp_batch_size_sum");
    const batchCount = total(metrics, "nqp_batch_size_count");
    cur.batch = { sum: batchSum, count: batchCount, bs: bsBatch };
    if (prev && prev.batch && batchCount > prev.batch.count) {
      const mean = (batchSum - prev.batch.sum) / (batchCount - prev.batch.count);
      const p95 = quantile(0.95, deltaBuckets(bsBatch, prev.batch.bs));
      $("m-batch").textContent = `${mean.toFixed(1)} / ${p95 ? (p95.over ? ">" : "") + p95.value.toFixed(0) : "—"}`;
      $("m-batch-sub").textContent = `${Math.round((batchCount - prev.batch.count) / dt)} engine calls/s`;
    } else if (batchCount > 0) {
      $("m-batch").textContent = `${(batchSum / batchCount).toFixed(1)} / —`;
      $("m-batch-sub").textContent = `since start (${batchCount.toLocaleString()} engine calls)`;
    } else {
      $("m-batch").textContent = "—";
      $("m-batch-sub").textContent = "no engine calls yet";
    }

    const queue = total(metrics, "nqp_queue_depth");
    $("m-queue").textContent = String(Math.round(queue));
    $("m-ws").textContent = `${Math.round(total(metrics, "nqp_websocket_clients"))} WebSocket client(s)`;

    const errors = samples(metrics, "nqp_errors_total");
    const errTotal = errors.reduce((a, s) => a + s.value, 0);
    const prevErrors = new Map(prev ? samples(prev.metrics, "nqp_errors_total").map((s) => [s.labels.kind, s.value]) : []);
    const errDelta = prev ? errors.reduce((a, s) => a + s.value - (prevErrors.get(s.labels.kind) || 0), 0) : 0;
    $("m-errors").textContent = `${errDelta} / ${errTotal}`;
    $("m-errors").className = `value${errDelta > 0 ? " dir-down" : ""}`;
    const http = samples(metrics, "nqp_http_requests_total");
    const status5xx = http.filter((s) => s.labels.status.startsWith("5")).reduce((a, s) => a + s.value, 0);
    const status429 = http.filter((s) => s.labels.status === "429").reduce((a, s) => a + s.value, 0);
    $("m-http").textContent = `HTTP 5xx ${status5xx} · 429 ${status429}`;
    const errBody = $("error-table").tBodies[0];
    errBody.replaceChildren();
    if (!errors.length) {
      const cell = errBody.insertRow().insertCell();
      cell.colSpan = 3;
      cell.textContent = "no errors recorded";
    }
    for (const s of errors.sort((a, b) => b.value - a.value)) {
      const row = errBody.insertRow();
      const d = prev ? s.value - (prevErrors.get(s.labels.kind) || 0) : 0;
      for (const text of [s.labels.kind, String(d), String(s.value)]) row.insertCell().textContent = text;
    }

    state.metricsPrev = cur;
    if (rate !== null) {
      state.metricsHistory.push({
        t: new Date(), rate, queue,
        p95: requestQ && requestQ.windowed && requestQ.qs[1] ? requestQ.qs[1].value * 1000 : null,
      });
      if (state.metricsHistory.length > METRICS_HISTORY) state.metricsHistory.shift();
    }
    drawPlatformChart();
  }

  function drawPlatformChart() {
    if (state.view !== "platform" || !window.Plotly || !state.key) return;
    const h = state.metricsHistory;
    const t = h.map((m) => m.t);
    window.Plotly.react($("chart-throughput"), [
      { x: t, y: h.map((m) => m.rate), type: "scatter", mode: "lines", name: "predictions/s",
        line: { color: COLORS.line, width: 2 } },
      { x: t, y: h.map((m) => m.p95), type: "scatter", mode: "lines", name: "request p95 (ms)",
        yaxis: "y2", line: { color: "#e67e22", width: 1.5 }, connectgaps: false },
      { x: t, y: h.map((m) => m.queue), type: "scatter", mode: "lines", name: "queue depth",
        yaxis: "y2", line: { color: COLORS.hold, width: 1, dash: "dot" } },
    ], baseLayout({
      margin: { l: 48, r: 48, t: 8, b: 36 },
      xaxis: { type: "date" },
      yaxis: { title: { text: "predictions/s" }, rangemode: "tozero" },
      yaxis2: { title: { text: "ms / items" }, overlaying: "y", side: "right", rangemode: "tozero",
        tickmode: "auto", showgrid: false },
    }), PLOT_CONFIG);
  }

  async function loadSourceTable() {
    if (state.view !== "platform" || document.hidden) return;
    const { sources } = await api("/api/v1/sources");
    const shown = sources.slice(0, SOURCE_SUMMARIES);
    const summaries = await Promise.all(shown.map((s) =>
      api(`/api/v1/sources/${encodeURIComponent(s)}`).catch((err) => {
        if (err instanceof ApiError) return null;
        throw err;
      })));
    const tbody = $("sources-table").tBodies[0];
    tbody.replaceChildren();
    shown.forEach((name, i) => {
      const s = summaries[i];
      const row = tbody.insertRow();
      const cells = s
        ? [name, String(s.points), pct(s.hit_rate), pct(s.rolling_hit_rate), String(s.scored),
          s.warming_up ? "warming up" : s.in_memory ? "in memory" : "checkpointed"]
        : [name, "—", "—", "—", "—", "unavailable"];
      for (const text of cells) row.insertCell().textContent = text;
      row.addEventListener("click", () => { showView("live"); selectSource(name); });
    });
    $("sources-note").textContent = !sources.length ? "No sources yet."
      : sources.length > shown.length ? `Showing ${shown.length} of ${sources.length} sources.`
        : "Click a source to watch it live.";
  }

  // ------------------------------------------------------------------ validation

  function rememberedRuns() {
    try { return JSON.parse(sessionStorage.getItem(RUNS_STORAGE) || "[]"); } catch (_) { return []; }
  }

  function rememberRun(id) {
    const runs = [id, ...rememberedRuns().filter((r) => r !== id)].slice(0, 20);
    sessionStorage.setItem(RUNS_STORAGE, JSON.stringify(runs));
  }

  async function loadValidation() {
    // GET /api/v1/validation/runs (list, newest first) where the server has it; else the
    // runs started or looked up in this tab.
    let latest = null;
    try {
      const listed = await api("/api/v1/validation/runs?limit=1");
      const runs = Array.isArray(listed) ? listed : listed.runs;
      if (Array.isArray(runs) && runs.length) latest = runs[0];
    } catch (err) {
      if (!(err instanceof ApiError) || ![404, 405].includes(err.status)) throw err;
    }
    if (!latest) {
      const [id] = rememberedRuns();
      if (id) latest = await api(`/api/v1/validation/runs/${encodeURIComponent(id)}`).catch(() => null);
    }
    showRun(latest);
  }

  function showRun(run) {
    const box = $("validation-summary");
    clearTimeout(state.validationTimer);
    if (!run) {
      box.replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: "No validation run yet." }));
      return;
    }
    const dl = document.createElement("dl");
    dl.className = "facts";
    const add = (k, v, cls) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      if (cls) dd.className = cls;
      dl.append(dt, dd);
    };
    add("run", run.id);
    add("status", run.status, `status-${run.status}`);
    add("started", new Date(run.created_at).toLocaleString());
    const s = run.summary;
    if (s) {
      add("dataset", `${s.dataset} · ${s.points} points · horizon ${s.horizon}`);
      add("score", `${fmt(s.score, 1)} / 100`);
      add("hit rate", `${pct(s.hit_rate)} of ${s.directional_predictions} (p vs ½ = ${fmt(s.hit_rate_p_value, 4)})`);
      add("Brier skill", fmt(s.brier_skill, 3));
      add("NRMSE", fmt(s.nrmse, 3));
    } else if (run.request) {
      add("dataset", `${run.request.dataset || "csv"} · ${run.request.points} points · horizon ${run.request.horizon}`);
    }
    if (run.error) add("error", run.error, "status-failed");
    const children = [dl];
    if (run.report) {
      const open = document.createElement("button");
      open.type = "button";
      open.id = "v-open-report";
      open.textContent = "Open HTML report";
      open.addEventListener("click", () => openReport(run.report, run.id));
      children.push(open);
    }
    box.replaceChildren(...children);
    if (run.status === "queued" || run.status === "running") {
      state.validationTimer = setTimeout(() => {
        api(`/api/v1/validation/runs/${encodeURIComponent(run.id)}`).then(showRun).catch(handleBackgroundError);
      }, 2000);
    }
  }

  async function openReport(path, id) {
    // the report needs the Authorization header: fetch it, then show it from a blob: URL
    // (which inherits this page's Content-Security-Policy: no scripts run in it)
    const tab = window.open("", "_blank");
    try {
      const html = await api(path);
      const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
      if (tab) {
        tab.opener = null;
        tab.location = url;
      } else {
        const a = Object.assign(document.createElement("a"), { href: url, download: `validation-${id}.html` });
        a.click();
      }
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      if (tab) tab.close();
      $("v-error").textContent = err.message;
    }
  }

  async function startValidation(event) {
    event.preventDefault();
    $("v-error").textContent = "";
    const body = {
      dataset: $("v-dataset").value,
      points: Number($("v-points").value),
      horizon: Number($("v-horizon").value),
    };
    try {
      const run = await api("/api/v1/validation/runs", { method: "POST", body });
      rememberRun(run.id);
      showRun({ id: run.id, status: run.status, created_at: new Date().toISOString(), request: body });
    } catch (err) {
      if (err instanceof AuthError) return;
      $("v-error").textContent = err.field ? `${err.field}: ${err.message}` : err.message;
    }
  }

  async function lookupRun(event) {
    event.preventDefault();
    $("v-error").textContent = "";
    const id = $("v-run-id").value.trim();
    if (!id) { $("v-error").textContent = "Enter a run id."; return; }
    try {
      const run = await api(`/api/v1/validation/runs/${encodeURIComponent(id)}`);
      rememberRun(run.id);
      showRun(run);
    } catch (err) {
      if (!(err instanceof AuthError)) $("v-error").textContent = err.message;
    }
  }

  // ------------------------------------------------------------------ optimisation

  // A small valid example: six assets, volatilities v and constant correlation 0.2
  // (sigma_ij = 0.2 v_i v_j, sigma_ii = v_i^2: positive definite).
  function fillExample() {
    const names = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"];
    const mu = [0.12, 0.10, 0.07, 0.03, 0.15, 0.09];
    const vol = [0.20, 0.18, 0.12, 0.05, 0.25, 0.15];
    const sigma = vol.map((vi, i) => vol.map((vj, j) => Number((i === j ? vi * vi : 0.2 * vi * vj).toFixed(5))));
    $("pf-assets").value = names.join(", ");
    $("pf-mu").value = mu.join(", ");
    $("pf-sigma").value = sigma.map((row) => row.join(" ")).join("\n");
    $("pf-budget").value = "3";
    $("pf-risk").value = "1";
    $("pf-method").value = "anneal";
    $("pf-seed").value = "7";
    $("pf-sweeps").value = "500";
    $("pf-reads").value = "16";
    clearFieldErrors();
  }

  function clearFieldErrors() {
    for (const el of document.querySelectorAll("#portfolio-form [data-error-for]")) el.textContent = "";
    for (const el of document.querySelectorAll("#portfolio-form [aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  const FIELD_INPUT = {
    assets: "pf-assets", mu: "pf-mu", sigma: "pf-sigma", budget: "pf-budget", risk_aversion: "pf-risk",
    method: "pf-method", seed: "pf-seed", sweeps: "pf-sweeps", reads: "pf-reads",
  };

  function fieldError(field, message) {
    const key = field && FIELD_INPUT[field] ? field : "_form";
    const slot = document.querySelector(`#portfolio-form [data-error-for="${key}"]`);
    slot.textContent = message;
    if (key !== "_form") $(FIELD_INPUT[key]).setAttribute("aria-invalid", "true");
  }

  function parseNumbers(text) {
    const parts = text.split(/[\s,;]+/).filter(Boolean);
    const nums = parts.map(Number);
    const bad = parts.findIndex((p, i) => !Number.isFinite(nums[i]));
    return { nums, bad: bad >= 0 ? parts[bad] : null };
  }

  function readPortfolio() {
    const errors = [];
    const names = $("pf-assets").value.split(",").map((s) => s.trim()).filter(Boolean);
    const mu = parseNumbers($("pf-mu").value);
    if (mu.bad !== null) errors.push(["mu", `"${mu.bad}" is not a number.`]);
    else if (!mu.nums.length) errors.push(["mu", "Give one expected return per asset."]);
    const n = mu.nums.length;
    if (names.length && names.length !== n) errors.push(["assets", `${names.length} names for ${n} expected returns.`]);
    const rows = $("pf-sigma").value.split("\n").map((l) => l.trim()).filter(Boolean).map(parseNumbers);
    const badRow = rows.findIndex((r) => r.bad !== null);
    if (badRow >= 0) errors.push(["sigma", `Row ${badRow + 1}: "${rows[badRow].bad}" is not a number.`]);
    const integer = (id) => ($(id).value.trim() === "" ? null : Number($(id).value));
    const body = {
      mu: mu.nums,
      sigma: rows.map((r) => r.nums),
      budget: integer("pf-budget"),
      risk_aversion: integer("pf-risk"),
      method: $("pf-method").value,
      sweeps: integer("pf-sweeps"),
      reads: integer("pf-reads"),
    };
    const seed = integer("pf-seed");
    if (seed !== null) body.seed = seed;
    for (const k of ["budget", "risk_aversion", "sweeps", "reads"]) {
      if (body[k] === null || !Number.isFinite(body[k])) errors.push([k, "Required number."]);
    }
    return { body, names: names.length === n ? names : mu.nums.map((_, i) => `asset ${i}`), errors };
  }

  async function submitPortfolio(event) {
    event.preventDefault();
    clearFieldErrors();
    const { body, names, errors } = readPortfolio();
    if (errors.length) { errors.forEach(([f, m]) => fieldError(f, m)); return; }
    const button = $("pf-submit");
    button.disabled = true;
    button.textContent = "Solving…";
    $("pf-solution").hidden = true;
    $("pf-empty").hidden = false;
    $("pf-empty").textContent = "Solving…";
    try {
      const r = await api("/api/v1/optimize/portfolio", { method: "POST", body });
      showPortfolio(r, names);
    } catch (err) {
      $("pf-empty").textContent = "No solution: see the error in the form.";
      if (err instanceof AuthError) return;
      if (err instanceof ApiError) {
        const field = err.field ? err.field.split(/[.[]/)[0] : null;
        fieldError(field, `${err.message}${err.status === 403 ? " (this key's role cannot optimise)" : ""}`);
      } else {
        fieldError(null, "The server is unreachable.");
      }
    } finally {
      button.disabled = false;
      button.textContent = "Optimise";
    }
  }

  function showPortfolio(r, names) {
    $("pf-empty").hidden = true;
    $("pf-solution").hidden = false;
    $("pf-selected").replaceChildren(...r.selected.map((i) =>
      Object.assign(document.createElement("span"), { className: "chip", textContent: names[i] || `asset ${i}` })));
    const facts = [
      ["selected", `${r.selected.length} of ${r.assets} (budget ${r.budget}${r.budget_satisfied ? ", met" : ", NOT met"})`],
      ["expected return", fmt(r.expected_return, 4)],
      ["risk (variance)", fmt(r.risk, 4)],
      ["objective", fmt(r.objective, 4)],
      ["energy", fmt(r.energy, 6)],
      ["method", `${r.method}${r.optimal ? " (proven optimal)" : ""}${r.cached ? " · cached" : ""}`],
      ["reads", `${r.reads_completed} of ${r.reads}${r.sweeps ? ` × ${r.sweeps} sweeps` : ""}`],
      ["time", `${(r.time_s * 1000).toFixed(1)} ms`],
    ];
    $("pf-facts").replaceChildren(...facts.flatMap(([k, v]) => [
      Object.assign(document.createElement("dt"), { textContent: k }),
      Object.assign(document.createElement("dd"), { textContent: v }),
    ]));
    const trace = r.trace || { sweeps: [], energy: [] };
    const el = $("chart-convergence");
    if (trace.sweeps.length) {
      el.hidden = false;
      const finite = trace.energy.filter((e) => Number.isFinite(e));
      const lo = Math.min(...finite);
      const hi = Math.max(...finite);
      const pad = hi - lo > 1e-9 * Math.max(1, Math.abs(hi)) ? 0.05 * (hi - lo) : 0.05 * Math.max(1e-6, Math.abs(hi));
      const logX = trace.sweeps[trace.sweeps.length - 1] / Math.max(1, trace.sweeps[0]) > 50;
      window.Plotly.react(el, [
        { x: trace.sweeps, y: trace.energy, type: "scatter", mode: "lines", name: "best energy",
          line: { color: COLORS.line, width: 2, shape: "hv" }, hovertemplate: "%{x} sweeps: %{y:.6g}<extra></extra>" },
      ], baseLayout({
        showlegend: false,
        margin: { l: 64, r: 16, t: 8, b: 40 },
        xaxis: { title: { text: logX ? "sweeps (log)" : "sweeps" }, type: logX ? "log" : "linear" },
        yaxis: { title: { text: "best energy" }, range: [lo - pad, hi + pad], tickformat: ".4~g" },
      }), PLOT_CONFIG);
      $("pf-trace-note").textContent = "Convergence: best energy over all reads after each number of sweeps.";
    } else {
      window.Plotly.purge(el);
      el.hidden = true;
      $("pf-trace-note").textContent = "No convergence trace: exact enumeration (no annealing sweeps).";
    }
  }

  // ------------------------------------------------------------------ wiring

  function init() {
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (!key) { $("login-error").textContent = "Enter an API key."; return; }
      $("login-error").textContent = "";
      signIn(key, false);
    });
    $("signout").addEventListener("click", () => signOut("Signed out. The key was removed from this tab."));
    for (const tab of document.querySelectorAll(".tabs [data-view]")) {
      tab.addEventListener("click", () => {
        showView(tab.dataset.view);
        if (tab.dataset.view === "platform") {
          pollMetrics().catch(handleBackgroundError);
          loadSourceTable().catch(handleBackgroundError);
          loadValidation().catch(handleBackgroundError);
        }
      });
    }
    $("source-select").addEventListener("change", (e) => { if (e.target.value) selectSource(e.target.value); });
    $("source-refresh").addEventListener("click", () => loadSources().catch(handleBackgroundError));
    $("portfolio-form").addEventListener("submit", submitPortfolio);
    $("pf-example").addEventListener("click", fillExample);
    $("validation-form").addEventListener("submit", startValidation);
    $("validation-lookup").addEventListener("submit", lookupRun);
    document.addEventListener("visibilitychange", () => { if (!document.hidden && state.dirty) scheduleDraw(); });
    fillExample();
    const saved = sessionStorage.getItem(KEY_STORAGE);
    if (saved) signIn(saved, true);
    else showLogin("");
  }

  init();
})();
