/* neurospike live: the page's client. The simulation runs in the server (one WebSocket session per tab, protocol in
   neurospike/app/server.py); this file draws what it streams and sends the controls' values.

   Drawing: the traces (v, the other states, a spike raster over the chosen window of simulated time) on a canvas
   strip chart (stripchart.js) every frame; the phase plane with the model's nullclines in plotly.js (SVG: in
   software-rendered WebGL, as in headless Chromium, scattergl took 250-500 ms an update) at PHASE_FPS; the 3D
   neuron (neuron3d.js). Frames are drawn on requestAnimationFrame, at most one per chunk. window.neurospike
   exposes counters for tests and benchmarks: chunks received, frames drawn, acks received by message type, and each
   slider change's latency until a trace computed with it was drawn. */
(function () {
  "use strict";
  const KEPT_MS = 5000;           // simulated time kept for the traces (the longest window)
  const PHASE_TAIL = 600;         // samples of the moving trajectory in the phase plane
  const PHASE_FPS = 12;           // phase-plane updates a second
  const SLIDER_INTERVAL_MS = 50;  // at most 20 messages a second per slider while dragging
  const COLORS = ["#ffb347", "#6fd3ff", "#b48cff", "#7dffa1", "#ff7b9c"];
  const $ = (id) => document.getElementById(id);

  const stats = { chunks: 0, frames: 0, latencies: [], errors: [], acks: {}, connected: false, config: null };
  window.neurospike = stats;

  let socket = null, models = [], config = null, playing = false;
  let buffer = emptyBuffer([]), phase = null;
  const pendingInputs = [];   // times of slider inputs sent, waiting for their ack
  const awaitingFrame = [];   // {revision, since}: slider changes not yet visible in a drawn trace
  let dirty = false, phaseDirty = false, neuron = null, lastV = null;

  function emptyBuffer(states) {
    const b = { t: [], phaseY: [], spikes: [], states: {} };
    for (const s of states) b.states[s] = [];
    return b;
  }

  // ---- connection -------------------------------------------------------------------------------------------
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws`);
    socket.onopen = () => { stats.connected = true; status(""); };
    socket.onclose = () => { stats.connected = false; playing = false; status("disconnected: reload the page"); };
    socket.onmessage = (event) => receive(JSON.parse(event.data));
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function receive(message) {
    switch (message.type) {
      case "config": applyConfig(message); break;
      case "phase": phase = message.phase; phaseDirty = true; break;
      case "chunk": addChunk(message); break;
      case "ack":  // every chunk sent before it has been applied (the ack of pause: the stream has stopped)
        stats.acks[message.of] = (stats.acks[message.of] || 0) + 1;
        if (message.of === "set" && pendingInputs.length) {
          awaitingFrame.push({ revision: message.revision, since: pendingInputs.shift() });
        }
        break;
      case "error":  // a refused message gets no ack: forget the inputs waiting for one
        pendingInputs.length = 0;
        stats.errors.push(message.message);
        status(message.message);
        if (/non-finite|faster than|stopped/.test(message.message)) setPlaying(false);
        break;
    }
  }

  // ---- controls ---------------------------------------------------------------------------------------------
  function status(text) { $("status").textContent = text; }

  function fillSelect(select, entries, value) {
    select.replaceChildren(...entries.map(([v, label]) => new Option(label, v, false, v === value)));
    select.value = value;
  }

  function format(value) {
    const a = Math.abs(value);
    return a !== 0 && (a < 0.01 || a >= 1e4) ? value.toExponential(2) : (+value.toPrecision(4)).toString();
  }

  function applyConfig(message) {
    config = message;
    stats.config = message;
    const model = models.find((m) => m.name === message.model);
    fillSelect($("model"), models.flatMap((m) => [[m.name, m.title], [m.name + ":fractional",
      m.title + " — fractional (Caputo)"]]), message.model + (message.fractional ? ":fractional" : ""));
    if (model) {
      fillSelect($("preset"), Object.keys(model.presets).map((p) => [p, p.replaceAll("_", " ")]), message.preset);
      $("preset-description").textContent = model.presets[message.preset].description;
    }
    fillSelect($("solver"), message.methods.map((m) => [m, m]), message.method);
    $("dt").value = message.dt;
    $("model-title").textContent = message.title + (message.fractional ? " (fractional)" : "");
    buildSliders(message.controls);
    phase = message.phase;
    buffer = emptyBuffer(message.states);
    pendingInputs.length = 0;
    awaitingFrame.length = 0;
    updateReadout(message.sim_time, message.spike_count, 0);
    if (neuron) neuron.reset();
    setupPlots();
    dirty = phaseDirty = true;
  }

  function buildSliders(controls) {
    const holder = $("sliders");
    holder.replaceChildren();
    const names = ["I", "alpha", ...Object.keys(controls).filter((n) => n !== "I" && n !== "alpha")];
    for (const name of names) {
      const control = controls[name];
      if (!control) continue;
      const [low, high] = control.range || [control.value - 1, control.value + 1];
      const row = document.createElement("div");
      row.className = "slider";
      row.title = control.description;
      const label = document.createElement("div");
      label.className = "name";
      const title = document.createElement("span");
      title.innerHTML = `<b></b> <span class="muted"></span>`;
      title.querySelector("b").textContent = name === "alpha" ? "α" : name;
      title.querySelector(".muted").textContent = control.unit && control.unit !== "1" ? control.unit : "";
      const output = document.createElement("input");  // the value, shown and typed
      Object.assign(output, { type: "number", className: "value", value: format(control.value), min: low, max: high,
        step: "any" });
      output.dataset.testid = `value-${name}`;
      output.setAttribute("aria-label", `${name} value`);
      label.append(title, output);
      const input = document.createElement("input");
      // a decimal step (0.001, 0.01, ...) so preset values such as a = 0.02 or d = 6 lie on the slider's grid
      const step = Math.pow(10, Math.floor(Math.log10((high - low) / 500)));
      Object.assign(input, { type: "range", min: low, max: high, step, value: control.value });
      input.dataset.testid = `slider-${name}`;
      input.setAttribute("aria-label", name);
      let last = 0, timer = null, current = control.value;  // current: the value the server has
      const push = () => {
        timer = null;
        last = performance.now();
        current = parseFloat(input.value);
        pendingInputs.push(performance.now());
        send({ type: "set", name, value: current });
      };
      output.addEventListener("change", () => {
        const value = parseFloat(output.value);
        if (!(value >= low && value <= high)) {
          status(`${name}=${output.value}: choose a value in [${format(low)}, ${format(high)}]`);
          output.value = format(current);
          return;
        }
        input.value = current = value;
        pendingInputs.push(performance.now());
        send({ type: "set", name, value });
      });
      input.addEventListener("input", () => {
        output.value = format(parseFloat(input.value));
        const wait = SLIDER_INTERVAL_MS - (performance.now() - last);
        if (wait <= 0) push();
        else if (!timer) timer = setTimeout(push, wait);
      });
      row.append(label, input);
      holder.append(row);
    }
  }

  function setPlaying(on) {
    playing = on;
    $("play").disabled = on;
    $("pause").disabled = !on;
  }

  function speedValue() { return Math.pow(10, parseFloat($("speed").value)); }

  function windowMs() { return parseFloat($("window").value); }

  function wireControls() {
    $("play").onclick = () => { send({ type: "play" }); setPlaying(true); status(""); };
    $("pause").onclick = () => { send({ type: "pause" }); setPlaying(false); };
    $("reset").onclick = () => { send({ type: "reset" }); status(""); };
    $("model").onchange = () => {
      const [model, kind] = $("model").value.split(":");
      send({ type: "configure", model, fractional: kind === "fractional" });
    };
    $("preset").onchange = () => send({ type: "configure", preset: $("preset").value });
    $("restore").onclick = () => send({ type: "configure", preset: config.preset });
    $("solver").onchange = () => send({ type: "configure", method: $("solver").value });
    $("dt").onchange = () => {
      const dt = parseFloat($("dt").value);
      if (!(dt >= 0.001 && dt <= 0.5)) { status(`dt=${$("dt").value}: choose a step in [0.001, 0.5] ms`); return; }
      send({ type: "configure", dt });
    };
    $("speed").oninput = () => {
      const speed = speedValue();
      $("speed-value").textContent = `${format(speed)}×`;
      send({ type: "configure", speed: +speed.toPrecision(3) });
    };
    $("window").onchange = () => { dirty = true; };
    $("export-csv").onclick = exportCsv;
    $("export-png").onclick = exportPng;
    document.addEventListener("keydown", (event) => {
      if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
      if (event.key === " ") { event.preventDefault(); (playing ? $("pause") : $("play")).click(); }
      if (event.key === "r") $("reset").click();
    });
    setPlaying(false);
  }

  // ---- data -------------------------------------------------------------------------------------------------
  function addChunk(message) {
    stats.chunks += 1;
    const b = buffer;
    const n = message.t.length;
    for (let i = 0; i < n; i++) b.t.push(message.t[i]);
    for (const s of Object.keys(b.states)) { const src = message.states[s]; for (let i = 0; i < n; i++) b.states[s].push(src[i]); }
    for (let i = 0; i < n; i++) b.phaseY.push(message.phase_y[i]);
    for (const s of message.spikes) b.spikes.push(s);
    const start = message.sim_time - KEPT_MS;
    let cut = 0;
    while (cut < b.t.length && b.t[cut] < start) cut++;
    if (cut > 0) {
      b.t.splice(0, cut); b.phaseY.splice(0, cut);
      for (const s of Object.keys(b.states)) b.states[s].splice(0, cut);
    }
    let spikeCut = 0;
    while (spikeCut < b.spikes.length && b.spikes[spikeCut] < start) spikeCut++;
    if (spikeCut) b.spikes.splice(0, spikeCut);
    updateReadout(message.sim_time, message.spike_count, message.firing_rate);
    const actual = message.speed;
    $("actual-speed").textContent = actual < speedValue() * 0.99 ? `running at ${format(actual)}× (step limit)` : "";
    if (neuron && n) {
      const v = message.states[config.states[0]];
      lastV = message.spikes.length ? Math.max(...v) : v[n - 1];
      const first = message.t[0];
      for (const s of message.spikes.slice(-20)) {  // spread the chunk's spikes over the frame, as they happened
        setTimeout(() => neuron.spike(), Math.max(0, (s - first) / message.speed));
      }
    }
    for (const pending of awaitingFrame) if (message.revision >= pending.revision) pending.ready = true;
    dirty = true;
    phaseDirty = true;
  }

  function updateReadout(simTime, spikeCount, rate) {
    $("sim-time").textContent = simTime.toFixed(1);
    $("spike-count").textContent = String(spikeCount);
    $("firing-rate").textContent = rate.toFixed(1);
  }

  // ---- plots ------------------------------------------------------------------------------------------------
  const axisStyle = { gridcolor: "#26304f", zerolinecolor: "#33406a", color: "#8b96b5" };

  let chart = null;

  function setupPlots() {
    const states = config.states, units = config.state_units;
    const unit = (i) => units[i] && units[i] !== "1" ? ` (${units[i]})` : "";
    const others = states.length > 1 ? states.slice(1) : [phase.y];  // one state: its derivative
    chart = stats.chart = new window.StripChart($("trace-v"), { colors: COLORS, rows: [
      { series: [states[0]], label: `${states[0]}${unit(0)}`, weight: 3 },
      { series: others, label: others.join(", ") + (states.length > 1 ? unit(1) : ""), weight: 2,
        colors: COLORS.slice(1) },
      { raster: true, label: "spikes", weight: 0.45 }] });
    const phaseLayout = {
      paper_bgcolor: "#131a30", plot_bgcolor: "#0b1020", font: { color: "#dfe6f7", size: 11 },
      margin: { l: 56, r: 10, t: 26, b: 36 }, showlegend: true,
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 10 } },
      xaxis: { ...axisStyle, title: { text: `${phase.x}${unit(0)}` } },
      yaxis: { ...axisStyle, title: { text: phase.y } }, uirevision: "keep",
    };
    Plotly.newPlot($("phase-plane"), phaseData(), phaseLayout, { responsive: true, displaylogo: false,
      displayModeBar: false });
  }

  function phaseData() {
    const curves = phase.curves.map((c, i) => ({ type: "scatter", mode: "lines", name: c.name, x: phase.grid,
      y: c.y, line: { color: ["#6fd3ff", "#b48cff", "#33406a"][i % 3], width: 1.5, dash: i === 1 ? "dash" : "solid" } }));
    const b = buffer, start = Math.max(0, b.t.length - PHASE_TAIL);
    const x = b.states[config.states[0]].slice(start), y = b.phaseY.slice(start);
    curves.push({ type: "scatter", mode: "lines", name: "trajectory", x, y,
      line: { color: "rgba(255,179,71,0.55)", width: 1 } });
    curves.push({ type: "scatter", mode: "markers", name: "state", x: x.slice(-1), y: y.slice(-1),
      marker: { color: "#ffffff", size: 9, line: { color: COLORS[0], width: 2 } } });
    return curves;
  }

  function phaseRange() {
    const b = buffer, start = Math.max(0, b.t.length - PHASE_TAIL);
    let low = Infinity, high = -Infinity;
    for (let i = start; i < b.phaseY.length; i++) {
      const y = b.phaseY[i];
      if (y < low) low = y;
      if (y > high) high = y;
    }
    if (!isFinite(low)) return undefined;
    const pad = Math.max((high - low) * 0.15, Math.abs(high) * 0.05, 1e-3);
    return [low - pad, high + pad];
  }

  function chartData() {
    const b = buffer, states = config.states;
    const series = Object.assign({}, b.states);
    if (states.length === 1) series[phase.y] = b.phaseY;
    return { t: b.t, series, spikes: b.spikes };
  }

  let lastPhaseDraw = 0;

  function draw() {
    requestAnimationFrame(draw);
    if (!config || !chart) return;
    if (dirty) {
      dirty = false;
      const b = buffer;
      const now = b.t.length ? b.t[b.t.length - 1] : 0;
      const span = windowMs();
      chart.draw(chartData(), Math.max(0, now - span), Math.max(now, span));
      stats.traceMs = chart.stats.lastDrawMs;
      stats.frames += 1;
      const drawn = performance.now();
      for (let i = awaitingFrame.length - 1; i >= 0; i--) {
        if (awaitingFrame[i].ready) { stats.latencies.push(drawn - awaitingFrame[i].since); awaitingFrame.splice(i, 1); }
      }
      if (stats.latencies.length > 1000) stats.latencies.splice(0, stats.latencies.length - 1000);
      if (neuron && lastV !== null) neuron.setVoltage(lastV, phase.grid[0], phase.grid[phase.grid.length - 1]);
    }
    // the phase plane (plotly, SVG: ~15 ms an update) at most PHASE_FPS times a second
    if (phaseDirty && performance.now() - lastPhaseDraw > 1000 / PHASE_FPS) {
      phaseDirty = false;
      lastPhaseDraw = performance.now();
      const div = $("phase-plane");
      const layout = div.layout;
      layout.yaxis.range = phaseRange();
      layout.yaxis.autorange = layout.yaxis.range === undefined;
      layout.xaxis.range = [phase.grid[0], phase.grid[phase.grid.length - 1]];
      layout.datarevision = (layout.datarevision || 0) + 1;
      Plotly.react(div, phaseData(), layout);
      stats.phaseMs = performance.now() - lastPhaseDraw;
    }
  }

  // ---- export -----------------------------------------------------------------------------------------------
  function download(name, url) {
    const a = document.createElement("a");
    a.href = url; a.download = name;
    document.body.append(a); a.click(); a.remove();
  }

  function stamp() { return `${config.model}${config.fractional ? "_fractional" : ""}_${config.method}`; }

  function exportCsv() {
    if (!config) return;
    const states = config.states, units = config.state_units;
    const header = ["t (ms)", ...states.map((s, i) => units[i] && units[i] !== "1" ? `${s} (${units[i]})` : s)];
    const lines = [header.join(",")];
    const b = buffer, now = b.t.length ? b.t[b.t.length - 1] : 0;
    for (let i = 0; i < b.t.length; i++) {
      if (b.t[i] >= now - windowMs()) lines.push([b.t[i], ...states.map((s) => b.states[s][i])].join(","));
    }
    const url = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
    download(`neurospike_${stamp()}.csv`, url);
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  async function exportPng() {
    if (!config) return;
    const traces = $("trace-v"), phasePlot = $("phase-plane"), cube = $("neuron-3d");
    const image = await Plotly.toImage(phasePlot, { format: "png", width: phasePlot.clientWidth,
      height: phasePlot.clientHeight });
    const right = await new Promise((resolve) => { const img = new Image(); img.onload = () => resolve(img); img.src = image; });
    const [tw, th] = [traces.clientWidth, traces.clientHeight];
    const width = tw + Math.max(right.width, cube.clientWidth);
    const height = Math.max(th, right.height + cube.clientHeight) + 20;
    const canvas = document.createElement("canvas");
    canvas.width = width; canvas.height = height;
    const g = canvas.getContext("2d");
    g.fillStyle = "#0b1020"; g.fillRect(0, 0, width, height);
    g.drawImage(traces, 0, 0, tw, th);
    g.drawImage(right, tw, 0);
    g.drawImage(cube, tw, right.height, cube.clientWidth, cube.clientHeight);
    g.fillStyle = "#dfe6f7"; g.font = "12px sans-serif";
    g.fillText(`neurospike ${stamp()}  t = ${$("sim-time").textContent} ms`, 8, height - 6);
    download(`neurospike_${stamp()}.png`, canvas.toDataURL("image/png"));
  }

  // ---- start ------------------------------------------------------------------------------------------------
  async function start() {
    models = await (await fetch("/api/models")).json();
    wireControls();
    if (window.Neuron3D) neuron = stats.neuron = new window.Neuron3D($("neuron-3d"), { background: "#0b1020" });
    connect();
    requestAnimationFrame(draw);
  }

  start();
})();
