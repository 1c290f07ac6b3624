/*
 * neuron3d.js - a 3D neuron on a plain <canvas> (Canvas 2D + a small perspective projection; no WebGL, no libraries).
 *
 * Mimics the Unity neuron of "Learning to Spike" (section VII): a shaded soma whose colour follows the membrane
 * potential, 6 branching dendrites on one side, a myelinated axon leaving the other side as a smooth 3D curve that
 * ends in terminal branches with boutons, and one glowing particle running down the axon per spike.
 * The geometry is seeded (mulberry32), so the neuron looks the same on every load.
 *
 *   const n = new Neuron3D(canvas, {background: '#0b1020'});  // options: background, travelMs (800), fadeMs (320),
 *                                                              // autoRotate (true), autoRotateSpeed (rad/s), seed,
 *                                                              // maxFps (30: draws a second)
 *   n.setVoltage(v, low, high);   // mV; low -> cool dark blue, high -> bright yellow/white (clamped)
 *   n.spike();                    // one particle: hillock -> terminals in travelMs, then it fades (max 200 kept)
 *   n.setRotation(yaw, pitch);    // radians; n.rotation is {yaw, pitch}; pitch is clamped to +-1.4
 *   n.particles();                // live particles' progress along the axon, each in [0, 1]
 *   n.somaColor();                // the soma's current colour, 'rgb(r, g, b)'
 *   n.projectPoint(x, y, z);      // model point -> {x, y} in CSS pixels of the canvas (the soma is at 0, 0, 0)
 *   n.reset();                    // remove all particles
 *   n.destroy();                  // stop the animation loop, remove listeners
 *   n.stats                       // {frames, lastFrameMs}: frames drawn and the cost of the last one
 *
 * Drag rotates (yaw with x, pitch with y), double-click resets the view; otherwise the yaw turns slowly.
 * A classic script: it defines window.Neuron3D.
 */
(function (global) {
  'use strict';

  var AXON_TRAVEL_MS = 800;
  var FADE_MS = 320;
  var MAX_PARTICLES = 200;
  var PITCH_LIMIT = 1.4;
  var DEFAULT_YAW = -0.5;
  var DEFAULT_PITCH = 0.3;
  var AUTO_ROTATE_SPEED = 0.15;   // rad/s
  var AUTO_RESUME_MS = 1500;      // auto-rotation pauses this long after a drag
  var DRAG_SPEED = 0.01;          // rad per CSS pixel
  var SOMA_R = 1;
  var AXON_SEGMENTS = 96;
  var HILLOCK = 8, SHEATH_PERIOD = 10, BARE_END = 8;   // in axon segments
  var SHEATH_W = 0.27;
  var FOG_LEVELS = 12;
  var HI_LEVELS = 4;
  var TAIL = 3;                   // tail sprites behind each particle

  // Segment kinds (MYELIN and BOUTON only pick palette entries: sheaths and boutons are drawn separately).
  var DENDRITE = 0, AXON = 1, MYELIN = 2, TERMINAL = 3, BOUTON = 4;
  // outline colour, core (highlight) colour
  var KIND_COLOURS = [
    [[46, 78, 150], [126, 172, 245]],    // dendrite
    [[50, 84, 150], [128, 176, 240]],    // bare axon
    [[96, 100, 150], [222, 226, 248]],   // myelin sheath
    [[50, 90, 156], [136, 190, 250]],    // terminal branch
    [[52, 118, 190], [170, 230, 255]]    // bouton
  ];
  var HOT = [255, 226, 140];

  // Soma colour map, cool dark blue -> violet -> magenta -> orange -> pale yellow; luminance rises at every stop.
  var SOMA_STOPS = [[22, 40, 112], [72, 58, 176], [190, 70, 150], [255, 160, 48], [255, 246, 200]];

  function mulberry32(a) {
    return function () {
      a |= 0; a = (a + 0x6D2B79F5) | 0;
      var t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function clamp(x, lo, hi) { return x < lo ? lo : (x > hi ? hi : x); }

  function norm(v) {
    var l = Math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) || 1;
    return [v[0] / l, v[1] / l, v[2] / l];
  }

  // Two unit vectors perpendicular to d (and to each other).
  function perps(d) {
    var a = Math.abs(d[0]) < 0.9 ? [1, 0, 0] : [0, 1, 0];
    var u = norm([d[1] * a[2] - d[2] * a[1], d[2] * a[0] - d[0] * a[2], d[0] * a[1] - d[1] * a[0]]);
    var w = [d[1] * u[2] - d[2] * u[1], d[2] * u[0] - d[0] * u[2], d[0] * u[1] - d[1] * u[0]];
    return [u, w];
  }

  function parseColour(css) {
    var m, s = String(css).trim();
    if ((m = /^#([0-9a-f]{3})$/i.exec(s))) {
      return [0, 1, 2].map(function (i) { return parseInt(m[1][i] + m[1][i], 16); });
    }
    if ((m = /^#([0-9a-f]{6})$/i.exec(s))) {
      return [0, 2, 4].map(function (i) { return parseInt(m[1].substr(i, 2), 16); });
    }
    if ((m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/i.exec(s))) {
      return [+m[1], +m[2], +m[3]];
    }
    return [0, 0, 0];
  }

  function mix(a, b, t) {
    return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
  }

  function rgb(c) {
    return 'rgb(' + Math.round(clamp(c[0], 0, 255)) + ', ' + Math.round(clamp(c[1], 0, 255)) + ', ' +
      Math.round(clamp(c[2], 0, 255)) + ')';
  }

  // ---------------------------------------------------------------- geometry (model units, soma radius 1)
  function buildGeometry(seed) {
    var rnd = mulberry32(seed);
    var pts = [], segA = [], segB = [], segW = [], segKind = [], segAxon = [], segChain = [], boutons = [];
    var runFirst = [], runCount = [], runSheath = [], chain = -1;

    function point(p) { pts.push(p[0], p[1], p[2]); return pts.length / 3 - 1; }
    function seg(a, b, w, kind, axonIndex) {
      segA.push(a); segB.push(b); segW.push(w); segKind.push(kind); segAxon.push(axonIndex); segChain.push(chain);
    }
    // Runs: a few consecutive segments of one chain, the unit of depth sorting.
    function runs(first, count, size) {
      for (var r = first; r < first + count; r += size) {
        runFirst.push(r); runCount.push(Math.min(size, first + count - r)); runSheath.push(-1);
      }
    }
    function rvec(s) { return [(rnd() * 2 - 1) * s, (rnd() * 2 - 1) * s, (rnd() * 2 - 1) * s]; }

    // A wiggly tapered branch; returns the list of its points' positions and their indices and widths.
    function branch(start, startIdx, dir, length, steps, w0, w1, wiggle, kind) {
      var p = start.slice(), d = dir.slice(), prev = startIdx, out = [], first = segA.length;
      var bend = rvec(wiggle * 0.55);                    // a steady curvature plus a little noise
      chain++;
      for (var i = 1; i <= steps; i++) {
        var r = rvec(wiggle * 0.45);
        d = norm([d[0] + bend[0] + r[0], d[1] + bend[1] + r[1], d[2] + bend[2] + r[2]]);
        var step = length / steps;
        p = [p[0] + d[0] * step, p[1] + d[1] * step, p[2] + d[2] * step];
        var idx = point(p);
        var s = (i - 0.5) / steps;
        var w = w0 + (w1 - w0) * Math.pow(s, 0.8);
        seg(prev, idx, w, kind, -1);
        out.push({p: p, idx: idx, d: d, w: w});
        prev = idx;
      }
      runs(first, steps, 4);
      return out;
    }

    // Dendrites: 6 around the -x axis.
    var nDend = 6;
    for (var k = 0; k < nDend; k++) {
      var phi = (k / nDend) * Math.PI * 2 + (rnd() - 0.5) * 0.7;
      var theta = 0.55 + rnd() * 0.8;                    // angle away from -x
      var dir = norm([-Math.cos(theta), Math.sin(theta) * Math.cos(phi), Math.sin(theta) * Math.sin(phi)]);
      var start = [dir[0] * 0.7 * SOMA_R, dir[1] * 0.7 * SOMA_R, dir[2] * 0.7 * SOMA_R];
      var length = 3.2 + rnd() * 1.8;
      var main = branch(start, point(start), dir, length, 8, 0.44, 0.045, 0.26, DENDRITE);
      var nSub = 2 + (rnd() < 0.4 ? 1 : 0);
      for (var s = 0; s < nSub; s++) {
        var at = main[1 + Math.floor(rnd() * 5)];
        var pp = perps(at.d), ang = rnd() * Math.PI * 2, spread = 0.75 + rnd() * 0.4;
        var sd = norm([
          at.d[0] + spread * (Math.cos(ang) * pp[0][0] + Math.sin(ang) * pp[1][0]),
          at.d[1] + spread * (Math.cos(ang) * pp[0][1] + Math.sin(ang) * pp[1][1]),
          at.d[2] + spread * (Math.cos(ang) * pp[0][2] + Math.sin(ang) * pp[1][2])]);
        branch(at.p, at.idx, sd, 1.3 + rnd() * 1.1, 4, at.w * 0.7, 0.035, 0.3, DENDRITE);
      }
    }

    // Axon: a cubic Bezier along +x with a gentle helical twist, resampled at equal arc length.
    var P0 = [0.85, 0, 0], P1 = [3.6, 1.7, -1.1], P2 = [5.8, -1.9, 1.3], P3 = [8.7, 0.2, 0.3];
    function axonAt(t) {
      var u = 1 - t, b0 = u * u * u, b1 = 3 * u * u * t, b2 = 3 * u * t * t, b3 = t * t * t;
      var env = Math.sin(Math.PI * t) * 0.28;
      return [
        b0 * P0[0] + b1 * P1[0] + b2 * P2[0] + b3 * P3[0],
        b0 * P0[1] + b1 * P1[1] + b2 * P2[1] + b3 * P3[1] + env * Math.sin(t * Math.PI * 4),
        b0 * P0[2] + b1 * P1[2] + b2 * P2[2] + b3 * P3[2] + env * Math.cos(t * Math.PI * 4)];
    }
    var fine = 600, cum = [0], prevP = axonAt(0), samples = [prevP];
    for (var i = 1; i <= fine; i++) {
      var q = axonAt(i / fine);
      cum.push(cum[i - 1] + Math.hypot(q[0] - prevP[0], q[1] - prevP[1], q[2] - prevP[2]));
      samples.push(q); prevP = q;
    }
    var total = cum[fine], axonIdx = [], j = 0;
    for (var n = 0; n <= AXON_SEGMENTS; n++) {
      var target = total * n / AXON_SEGMENTS;
      while (j < fine - 1 && cum[j + 1] < target) j++;
      var f = (target - cum[j]) / ((cum[j + 1] - cum[j]) || 1);
      axonIdx.push(point(mix(samples[j], samples[j + 1], clamp(f, 0, 1))));
    }
    // Hillock (a tapering cone), then myelin sheaths separated by bare nodes of Ranvier, then a bare end.
    chain++;
    var s0 = segA.length;                                // the axon's first segment
    for (n = 0; n < AXON_SEGMENTS; n++) {
      var w = n < HILLOCK ? 0.5 - (0.5 - 0.11) * Math.pow(n / HILLOCK, 0.7) : 0.11;
      seg(axonIdx[n], axonIdx[n + 1], w, AXON, n);
    }
    runs(s0, HILLOCK, HILLOCK);
    for (n = HILLOCK; n + SHEATH_PERIOD <= AXON_SEGMENTS - BARE_END; n += SHEATH_PERIOD) {
      runFirst.push(s0 + n); runCount.push(SHEATH_PERIOD); runSheath.push(n);   // runSheath: axon-local index
    }
    runs(s0 + n, AXON_SEGMENTS - n, 4);

    // Terminal branches from the axon's end, each with a bouton.
    var endP = samples[fine], endD = norm([
      samples[fine][0] - samples[fine - 4][0], samples[fine][1] - samples[fine - 4][1],
      samples[fine][2] - samples[fine - 4][2]]);
    var tp = perps(endD), terminals = [], nTerm = 4;
    for (k = 0; k < nTerm; k++) {
      var a = (k / nTerm) * Math.PI * 2 + 0.4 + (rnd() - 0.5) * 0.5, spr = 0.8 + rnd() * 0.3;
      var td = norm([
        endD[0] + spr * (Math.cos(a) * tp[0][0] + Math.sin(a) * tp[1][0]),
        endD[1] + spr * (Math.cos(a) * tp[0][1] + Math.sin(a) * tp[1][1]),
        endD[2] + spr * (Math.cos(a) * tp[0][2] + Math.sin(a) * tp[1][2])]);
      var tb = branch(endP, axonIdx[AXON_SEGMENTS], td, 1.0 + rnd() * 0.6, 4, 0.11, 0.06, 0.2, TERMINAL);
      var path = [axonIdx[AXON_SEGMENTS]];
      for (var m = 0; m < tb.length; m++) path.push(tb[m].idx);
      terminals.push(path);
      boutons.push(tb[tb.length - 1].idx);
    }

    // Centre and bounding radius (rotation is about the centre so the whole cell stays in view).
    var lo = [1e9, 1e9, 1e9], hi = [-1e9, -1e9, -1e9];
    for (i = 0; i < pts.length; i += 3) {
      for (var e = 0; e < 3; e++) { lo[e] = Math.min(lo[e], pts[i + e]); hi[e] = Math.max(hi[e], pts[i + e]); }
    }
    var centre = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2], radius = 0;
    for (i = 0; i < pts.length; i += 3) {
      radius = Math.max(radius, Math.hypot(pts[i] - centre[0], pts[i + 1] - centre[1], pts[i + 2] - centre[2]));
    }
    // Cores are drawn one segment beyond a run (within its chain) so that run joints show no seams.
    var runLo = [], runHi = [];
    for (i = 0; i < runFirst.length; i++) {
      var f0 = runFirst[i], f1 = f0 + runCount[i];
      runLo.push(f0 > 0 && segChain[f0 - 1] === segChain[f0] ? f0 - 1 : f0);
      runHi.push(f1 < segA.length && segChain[f1] === segChain[f0] ? f1 + 1 : f1);
    }
    return {
      runFirst: new Uint16Array(runFirst), runCount: new Uint16Array(runCount), runSheath: new Int16Array(runSheath),
      runLo: new Uint16Array(runLo), runHi: new Uint16Array(runHi),
      pts: new Float64Array(pts), segA: new Uint16Array(segA), segB: new Uint16Array(segB),
      segW: new Float32Array(segW), segKind: new Uint8Array(segKind), segAxon: new Int16Array(segAxon),
      axonIdx: new Uint16Array(axonIdx), boutons: new Uint16Array(boutons),
      terminals: terminals.map(function (t) { return new Uint16Array(t); }),
      centre: centre, radius: radius
    };
  }

  // A glow: white-hot core, yellow, orange halo, transparent edge; radius r device pixels (canvas 2r x 2r).
  function makeGlowSprite(doc, r) {
    var size = 2 * r, c = doc.createElement('canvas');
    c.width = c.height = size;
    var g = c.getContext('2d');
    var grad = g.createRadialGradient(r, r, 0, r, r, r);
    grad.addColorStop(0.0, 'rgba(255, 255, 245, 1)');
    grad.addColorStop(0.12, 'rgba(255, 250, 205, 0.95)');
    grad.addColorStop(0.3, 'rgba(255, 205, 90, 0.5)');
    grad.addColorStop(0.6, 'rgba(255, 140, 40, 0.14)');
    grad.addColorStop(1.0, 'rgba(255, 110, 20, 0)');
    g.fillStyle = grad;
    g.fillRect(0, 0, size, size);
    return c;
  }

  // ---------------------------------------------------------------- the component
  function Neuron3D(canvas, options) {
    if (!(this instanceof Neuron3D)) return new Neuron3D(canvas, options);
    options = options || {};
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.background = options.background || '#0b1020';
    this.travelMs = options.travelMs > 0 ? +options.travelMs : AXON_TRAVEL_MS;
    this.fadeMs = options.fadeMs > 0 ? +options.fadeMs : FADE_MS;
    this.autoRotate = options.autoRotate !== false;
    this.autoRotateSpeed = typeof options.autoRotateSpeed === 'number' ? options.autoRotateSpeed : AUTO_ROTATE_SPEED;
    this.maxParticles = MAX_PARTICLES;
    this.maxFps = options.maxFps > 0 ? +options.maxFps : 30;
    this.rotation = {yaw: DEFAULT_YAW, pitch: DEFAULT_PITCH};
    this.stats = {frames: 0, lastFrameMs: 0};

    var g = this._geo = buildGeometry(options.seed >>> 0 || 7);
    var nPts = g.pts.length / 3;
    this._sx = new Float32Array(nPts);
    this._sy = new Float32Array(nPts);
    this._sz = new Float32Array(nPts);
    this._sc = new Float32Array(nPts);
    this._nItems = g.runFirst.length + g.boutons.length + 1;   // runs of segments, boutons, soma
    this._depth = new Float32Array(this._nItems);
    this._order = new Int32Array(this._nItems);
    for (var i = 0; i < this._nItems; i++) this._order[i] = i;
    this._axonHi = new Float32Array(AXON_SEGMENTS);
    this._boutonHi = new Float32Array(g.boutons.length);
    this._born = new Float64Array(MAX_PARTICLES);       // ring buffer of spike times
    this._head = 0;                                      // index of the oldest particle
    this._count = 0;

    this._bg = parseColour(this.background);
    this._buildPalette();
    this._doc = canvas.ownerDocument || document;
    this._glow = makeGlowSprite(this._doc, 32);
    this._sprites = [];                                  // glows pre-scaled to integer radii (device px)
    this.setVoltage(-70, -80, 40);

    this._cssW = -1; this._cssH = -1; this._dpr = -1; this._sizeDirty = true;
    this._drag = null;
    this._resumeAt = 0;
    this._lastNow = 0;
    this._raf = 0;
    this._alive = true;

    var self = this;
    this._onDown = function (e) {
      if (e.button !== undefined && e.button !== 0) return;
      self._drag = {id: e.pointerId, x: e.clientX, y: e.clientY};
      if (e.preventDefault) e.preventDefault();
    };
    this._onMove = function (e) {
      var d = self._drag;
      if (!d || (d.id !== undefined && e.pointerId !== d.id)) return;
      self.setRotation(self.rotation.yaw + (e.clientX - d.x) * DRAG_SPEED,
        self.rotation.pitch + (e.clientY - d.y) * DRAG_SPEED);
      d.x = e.clientX; d.y = e.clientY;
    };
    this._onUp = function (e) {
      var d = self._drag;
      if (!d || (d.id !== undefined && e.pointerId !== d.id)) return;
      self._drag = null;
      self._resumeAt = performance.now() + AUTO_RESUME_MS;
    };
    this._onDbl = function (e) {
      self.setRotation(DEFAULT_YAW, DEFAULT_PITCH);
      if (e && e.preventDefault) e.preventDefault();
    };
    canvas.addEventListener('pointerdown', this._onDown);
    global.addEventListener('pointermove', this._onMove);
    global.addEventListener('pointerup', this._onUp);
    global.addEventListener('pointercancel', this._onUp);
    canvas.addEventListener('dblclick', this._onDbl);
    if (canvas.style) canvas.style.touchAction = 'none';

    if (typeof global.ResizeObserver === 'function') {
      this._ro = new global.ResizeObserver(function () { self._sizeDirty = true; });
      this._ro.observe(canvas);
    }

    this._frame = function (now) { self._tick(now); };
    this._raf = global.requestAnimationFrame(this._frame);
  }

  var proto = Neuron3D.prototype;

  proto._buildPalette = function () {
    // strings indexed by ((kind * HI_LEVELS + hi) * FOG_LEVELS + fog) * 2 + (0 outline | 1 core)
    var bg = this._bg, pal = [];
    for (var k = 0; k < KIND_COLOURS.length; k++) {
      for (var h = 0; h < HI_LEVELS; h++) {
        for (var f = 0; f < FOG_LEVELS; f++) {
          var hot = h / (HI_LEVELS - 1), fog = 0.62 * f / (FOG_LEVELS - 1);
          var out = mix(mix(KIND_COLOURS[k][0], HOT, hot * 0.55), bg, fog);
          var core = mix(mix(KIND_COLOURS[k][1], [255, 250, 225], hot * 0.8), bg, fog);
          pal.push(rgb(out), rgb(core));
        }
      }
    }
    this._pal = pal;
  };

  proto.setVoltage = function (v, low, high) {
    if (low === undefined || low === null) low = -80;
    if (high === undefined || high === null) high = 40;
    v = +v;
    if (!isFinite(v)) return;
    var t = high > low ? clamp((v - low) / (high - low), 0, 1) : (v >= high ? 1 : 0);
    var x = t * (SOMA_STOPS.length - 1), i = Math.min(SOMA_STOPS.length - 2, Math.floor(x));
    var c = mix(SOMA_STOPS[i], SOMA_STOPS[i + 1], x - i);
    this._level = t;
    this._soma = [Math.round(c[0]), Math.round(c[1]), Math.round(c[2])];
    this._somaCss = rgb(this._soma);
    this._somaHi = rgb(mix(this._soma, [255, 255, 255], 0.55));
    this._somaDark = rgb(mix(mix(c, [0, 0, 0], 0.7), this._bg, 0.2));
  };

  proto.somaColor = function () { return this._somaCss; };

  proto.spike = function () {
    var now = performance.now();
    this._expire(now);
    if (this._count === MAX_PARTICLES) {             // drop the oldest
      this._head = (this._head + 1) % MAX_PARTICLES;
      this._count--;
    }
    this._born[(this._head + this._count) % MAX_PARTICLES] = now;
    this._count++;
  };

  proto._expire = function (now) {
    var life = this.travelMs + this.fadeMs;
    while (this._count > 0 && now - this._born[this._head] >= life) {
      this._head = (this._head + 1) % MAX_PARTICLES;
      this._count--;
    }
  };

  proto.particles = function () {
    var now = performance.now(), out = [];
    this._expire(now);
    for (var i = 0; i < this._count; i++) {
      var age = now - this._born[(this._head + i) % MAX_PARTICLES];
      out.push(clamp(age / this.travelMs, 0, 1));
    }
    return out;
  };

  proto.reset = function () { this._count = 0; this._head = 0; };

  proto.setRotation = function (yaw, pitch) {
    if (isFinite(yaw)) this.rotation.yaw = +yaw;
    if (isFinite(pitch)) this.rotation.pitch = clamp(+pitch, -PITCH_LIMIT, PITCH_LIMIT);
  };

  proto.destroy = function () {
    this._alive = false;
    if (this._raf) global.cancelAnimationFrame(this._raf);
    this._raf = 0;
    this.canvas.removeEventListener('pointerdown', this._onDown);
    global.removeEventListener('pointermove', this._onMove);
    global.removeEventListener('pointerup', this._onUp);
    global.removeEventListener('pointercancel', this._onUp);
    this.canvas.removeEventListener('dblclick', this._onDbl);
    if (this._ro) this._ro.disconnect();
    this._ro = null;
    this._drag = null;
  };

  // Camera: rotation about the cell's centre, perspective with the eye at distance _camD.
  proto._updateCamera = function () {
    var r = this.rotation;
    this._cy = Math.cos(r.yaw); this._syw = Math.sin(r.yaw);
    this._cp = Math.cos(r.pitch); this._sp = Math.sin(r.pitch);
  };

  proto.projectPoint = function (x, y, z) {
    this._ensureSize();
    this._updateCamera();
    var c = this._geo.centre;
    x -= c[0]; y -= c[1]; z -= c[2];
    var x1 = x * this._cy - z * this._syw, z1 = x * this._syw + z * this._cy;
    var y2 = y * this._cp + z1 * this._sp, z2 = -y * this._sp + z1 * this._cp;
    var s = this._k * this._camD / (z2 + this._camD);
    return {x: this._cssW / 2 + x1 * s, y: this._cssH / 2 - y2 * s};
  };

  proto._ensureSize = function () {
    var dpr = global.devicePixelRatio || 1;
    if (!this._sizeDirty && dpr === this._dpr && this._ro) return;
    var cw = this.canvas.clientWidth, ch = this.canvas.clientHeight;
    this._sizeDirty = false;
    if (cw === this._cssW && ch === this._cssH && dpr === this._dpr) return;
    this._cssW = cw; this._cssH = ch; this._dpr = dpr;
    this.canvas.width = Math.max(1, Math.round(cw * dpr));
    this.canvas.height = Math.max(1, Math.round(ch * dpr));
    var R = this._geo.radius;
    this._camD = R * 4.2;
    // px per model unit at the centre's depth: the cell's long axis fits the width, its height the height.
    this._k = Math.max(1e-3, Math.min(cw / (2 * R * 0.96), ch / (2 * R * 0.7)));
    var ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    var bg = this._bg, m = Math.max(cw, ch);
    var grad = ctx.createRadialGradient(cw * 0.5, ch * 0.45, 0, cw * 0.5, ch * 0.45, m * 0.75);
    grad.addColorStop(0, rgb(mix(bg, [60, 80, 150], 0.16)));
    grad.addColorStop(1, rgb(mix(bg, [0, 0, 0], 0.25)));
    this._bgFill = grad;
  };

  proto._tick = function (now) {
    if (!this._alive) return;
    this._raf = global.requestAnimationFrame(this._frame);
    // at most maxFps draws a second: the glows are painted in software without a GPU, and the page's traces
    // need the main thread more than the neuron needs 60 frames
    if (this._lastNow && now - this._lastNow < 1000 / this.maxFps - 2) return;
    var t0 = performance.now();
    var dt = this._lastNow ? Math.min(100, Math.max(0, now - this._lastNow)) : 0;
    this._lastNow = now;
    if (this.autoRotate && !this._drag && t0 >= this._resumeAt) {
      this.rotation.yaw += dt * 0.001 * this.autoRotateSpeed;
    }
    this._ensureSize();
    if (this._cssW > 0 && this._cssH > 0) this._draw(t0);
    this.stats.frames++;
    this.stats.lastFrameMs = performance.now() - t0;
  };

  proto._project = function () {
    this._updateCamera();
    var g = this._geo, P = g.pts, c = g.centre, n = P.length / 3;
    var cy = this._cy, sy = this._syw, cp = this._cp, sp = this._sp;
    var D = this._camD, kD = this._k * D, hw = this._cssW / 2, hh = this._cssH / 2;
    var SX = this._sx, SY = this._sy, SZ = this._sz, SC = this._sc;
    for (var i = 0, j = 0; i < n; i++, j += 3) {
      var x = P[j] - c[0], y = P[j + 1] - c[1], z = P[j + 2] - c[2];
      var x1 = x * cy - z * sy, z1 = x * sy + z * cy;
      var y2 = y * cp + z1 * sp, z2 = -y * sp + z1 * cp;
      var s = kD / (z2 + D);
      SX[i] = hw + x1 * s; SY[i] = hh - y2 * s; SZ[i] = z2; SC[i] = s;
    }
    // the soma's centre (origin)
    var x0 = -c[0], y0 = -c[1], z0 = -c[2];
    var xs = x0 * cy - z0 * sy, zs = x0 * sy + z0 * cy;
    var ys = y0 * cp + zs * sp, zz = -y0 * sp + zs * cp, ss = kD / (zz + D);
    this._somaX = hw + xs * ss; this._somaY = hh - ys * ss; this._somaZ = zz; this._somaS = ss;
  };

  // Progress p in [0, 1] along the axon -> screen position (out[0], out[1]) and scale out[2].
  proto._axonPos = function (p, out) {
    var A = this._geo.axonIdx, x = p * AXON_SEGMENTS, i = Math.min(AXON_SEGMENTS - 1, Math.floor(x)), f = x - i;
    var a = A[i], b = A[i + 1];
    out[0] = this._sx[a] + (this._sx[b] - this._sx[a]) * f;
    out[1] = this._sy[a] + (this._sy[b] - this._sy[a]) * f;
    out[2] = this._sc[a] + (this._sc[b] - this._sc[a]) * f;
    out[3] = this._sz[a] + (this._sz[b] - this._sz[a]) * f;
  };

  // 1, or a small value when the screen point (x, y) at depth z lies behind the soma.
  proto._somaShade = function (x, y, z) {
    if (z <= this._somaZ) return 1;
    var dx = x - this._somaX, dy = y - this._somaY, r = SOMA_R * this._somaS;
    return dx * dx + dy * dy < r * r ? 0.12 : 1;
  };

  proto._draw = function (now) {
    var ctx = this.ctx, g = this._geo, W = this._cssW, H = this._cssH;
    this._expire(now);
    this._project();

    // Highlights: axon segments near a particle, boutons reached by fading particles.
    var hiA = this._axonHi, hiB = this._boutonHi, i, k;
    hiA.fill(0); hiB.fill(0);
    var travel = this.travelMs, fade = this.fadeMs;
    for (i = 0; i < this._count; i++) {
      var age = now - this._born[(this._head + i) % MAX_PARTICLES];
      if (age < travel) {
        var x = age / travel * AXON_SEGMENTS, c0 = Math.floor(x);
        for (k = c0 - 3; k <= c0 + 3; k++) {
          if (k < 0 || k >= AXON_SEGMENTS) continue;
          var d = Math.abs(k + 0.5 - x);
          if (d < 3.5) hiA[k] += 1 - d / 3.5;
        }
      } else {
        var q = (age - travel) / fade;
        for (k = 0; k < hiB.length; k++) hiB[k] += q < 0.5 ? 1 : 2 * (1 - q);
      }
    }

    // Depth of every item, then sort far -> near (insertion sort: the order barely changes between frames).
    var SZ = this._sz, A = g.segA, B = g.segB, nRun = g.runFirst.length, nB = g.boutons.length;
    var RF = g.runFirst, RC = g.runCount;
    var depth = this._depth, order = this._order, n = this._nItems;
    for (i = 0; i < nRun; i++) {
      var s0 = RF[i], s1 = s0 + RC[i], z = 0;
      for (k = s0; k < s1; k++) z += SZ[A[k]] + SZ[B[k]];
      depth[i] = z / (2 * (s1 - s0));
    }
    for (i = 0; i < nB; i++) depth[nRun + i] = SZ[g.boutons[i]];
    depth[n - 1] = this._somaZ;
    for (i = 1; i < n; i++) {
      var item = order[i], di = depth[item], j = i - 1;
      while (j >= 0 && depth[order[j]] < di) { order[j + 1] = order[j]; j--; }
      order[j + 1] = item;
    }

    ctx.globalCompositeOperation = 'source-over';
    ctx.globalAlpha = 1;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.fillStyle = this._bgFill;
    ctx.fillRect(0, 0, W, H);

    var SC = this._sc, R = g.radius, fogScale = (FOG_LEVELS - 1) / (2 * R);
    for (var o = 0; o < n; o++) {
      item = order[o];
      var fog = Math.round(clamp((depth[item] + R) * fogScale, 0, FOG_LEVELS - 1));
      if (item < nRun) {
        this._drawRun(ctx, item, fog);
      } else if (item < nRun + nB) {
        var bi = item - nRun, p = g.boutons[bi], r = 0.17 * SC[p];
        var hl = Math.min(HI_LEVELS - 1, Math.round(Math.min(1, hiB[bi]) * (HI_LEVELS - 1)));
        var base = ((BOUTON * HI_LEVELS + hl) * FOG_LEVELS + fog) * 2;
        ctx.fillStyle = this._pal[base];
        ctx.beginPath(); ctx.arc(this._sx[p], this._sy[p], r, 0, 6.2832); ctx.fill();
        ctx.fillStyle = this._pal[base + 1];
        ctx.beginPath(); ctx.arc(this._sx[p] - r * 0.3, this._sy[p] - r * 0.3, r * 0.45, 0, 6.2832); ctx.fill();
        if (hiB[bi] > 0.02) {                              // a bouton flashes as the spike arrives
          var gs = r * 3.2;
          ctx.globalCompositeOperation = 'lighter';
          ctx.globalAlpha = Math.min(1, hiB[bi]) * 0.8;
          ctx.drawImage(this._glow, this._sx[p] - gs, this._sy[p] - gs, 2 * gs, 2 * gs);
          ctx.globalAlpha = 1;
          ctx.globalCompositeOperation = 'source-over';
        }
      } else {
        this._drawSoma(ctx);
      }
    }

    this._drawParticles(ctx, now);
  };

  // Segment i's palette index (outline; +1 is the core) at a fog level.
  proto._segPal = function (i, fog) {
    var g = this._geo, ax = g.segAxon[i], hl = 0;
    if (ax >= 0) hl = Math.min(HI_LEVELS - 1, Math.round(Math.min(1, this._axonHi[ax]) * (HI_LEVELS - 1)));
    return ((g.segKind[i] * HI_LEVELS + hl) * FOG_LEVELS + fog) * 2;
  };

  // A run: tapered outlines of its segments, then their lit cores (offset towards the upper-left light), then for
  // a myelinated stretch the sheath as one rounded tube over the middle of the run.
  proto._drawRun = function (ctx, r, fog) {
    var g = this._geo, A = g.segA, B = g.segB, Wd = g.segW, SX = this._sx, SY = this._sy, SC = this._sc;
    var pal = this._pal, s0 = g.runFirst[r], s1 = s0 + g.runCount[r], i, a, b, w, off;
    var sh = g.runSheath[r], hid0 = sh < 0 ? s1 : s0 + 1, hid1 = sh < 0 ? s1 : s1 - 1;   // bare axon under a sheath
    for (i = s0; i < s1; i++) {
      if (i >= hid0 && i < hid1) continue;
      a = A[i]; b = B[i];
      w = Wd[i] * (SC[a] + SC[b]) * 0.5;
      ctx.strokeStyle = pal[this._segPal(i, fog)];
      ctx.lineWidth = w < 0.7 ? 0.7 : w;
      ctx.beginPath(); ctx.moveTo(SX[a], SY[a]); ctx.lineTo(SX[b], SY[b]); ctx.stroke();
    }
    for (i = g.runLo[r]; i < g.runHi[r]; i++) {
      if (i >= hid0 && i < hid1) continue;
      a = A[i]; b = B[i];
      w = Wd[i] * (SC[a] + SC[b]) * 0.5;
      if (w < 1.8) continue;
      off = w * 0.13;
      ctx.strokeStyle = pal[this._segPal(i, fog) + 1];
      ctx.lineWidth = w * 0.42;
      ctx.beginPath(); ctx.moveTo(SX[a] - off, SY[a] - off); ctx.lineTo(SX[b] - off, SY[b] - off); ctx.stroke();
    }
    if (sh < 0) return;
    var P = g.axonIdx, first = sh + 2, last = sh + SHEATH_PERIOD - 2, hot = 0;
    for (i = sh; i < sh + SHEATH_PERIOD; i++) if (this._axonHi[i] > hot) hot = this._axonHi[i];
    var base = ((MYELIN * HI_LEVELS + Math.min(HI_LEVELS - 1, Math.round(Math.min(1, hot) * (HI_LEVELS - 1)))) *
      FOG_LEVELS + fog) * 2;
    w = SHEATH_W * SC[P[(first + last) >> 1]];
    for (var pass = 0; pass < 2; pass++) {
      off = pass ? w * 0.13 : 0;
      ctx.strokeStyle = pal[base + pass];
      ctx.lineWidth = pass ? w * 0.42 : w;
      if (pass && w < 1.8) break;
      ctx.beginPath();
      ctx.moveTo(SX[P[first]] - off, SY[P[first]] - off);
      for (i = first + 1; i <= last; i++) ctx.lineTo(SX[P[i]] - off, SY[P[i]] - off);
      ctx.stroke();
    }
  };

  proto._drawSoma = function (ctx) {
    var cx = this._somaX, cy = this._somaY, r = SOMA_R * this._somaS;
    var grad = ctx.createRadialGradient(cx - r * 0.38, cy - r * 0.42, r * 0.04, cx, cy, r);
    grad.addColorStop(0, this._somaHi);
    grad.addColorStop(0.5, this._somaCss);
    grad.addColorStop(1, this._somaDark);
    ctx.fillStyle = grad;
    ctx.beginPath(); ctx.arc(cx, cy, r, 0, 6.2832); ctx.fill();
    ctx.strokeStyle = 'rgba(150, 185, 255, 0.22)';      // a faint rim light
    ctx.lineWidth = Math.max(1, r * 0.05);
    ctx.beginPath(); ctx.arc(cx, cy, r * 0.98, 0, 6.2832); ctx.stroke();
    var t = this._level;
    if (t > 0.45) {                                      // a depolarised soma glows
      var s = r * (2.2 + 0.6 * t);
      ctx.globalCompositeOperation = 'lighter';
      ctx.globalAlpha = Math.min(1, (t - 0.45) * 1.3);
      ctx.drawImage(this._glow, cx - s, cy - s, 2 * s, 2 * s);
      ctx.globalAlpha = 1;
      ctx.globalCompositeOperation = 'source-over';
    }
  };

  var POS = new Float32Array(4);
  var MAX_SPRITE_R = 160;

  // The glow pre-scaled to radius r (device px): blitting it unscaled is much cheaper than scaling 64 px each time.
  proto._sprite = function (r) {
    r = r < 2 ? 2 : (r > MAX_SPRITE_R ? MAX_SPRITE_R : r);
    return this._sprites[r] || (this._sprites[r] = makeGlowSprite(this._doc, r));
  };

  // One glow at CSS position (x, y) with CSS radius rad, in device pixels with an identity transform.
  proto._blit = function (ctx, x, y, rad, alpha) {
    if (alpha <= 0.01) return;
    var dpr = this._dpr, r = Math.round(rad * dpr);
    ctx.globalAlpha = alpha > 1 ? 1 : alpha;
    ctx.drawImage(this._sprite(r), Math.round(x * dpr) - r, Math.round(y * dpr) - r);
  };

  proto._drawParticles = function (ctx, now) {
    if (this._count === 0) return;
    var travel = this.travelMs, fade = this.fadeMs, g = this._geo;
    var SX = this._sx, SY = this._sy, SC = this._sc, T = g.terminals;
    // bounded cost with many particles (each glow is a 'lighter' blit, painted in software without a GPU): tails
    // shorten and the spread into the terminals becomes one fading glow at the axon's end
    var tail = this._count > 40 ? 0 : (this._count > 15 ? 1 : TAIL), spread = this._count <= 40;
    var end = g.axonIdx[g.axonIdx.length - 1];
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.globalCompositeOperation = 'lighter';
    for (var i = 0; i < this._count; i++) {
      var age = now - this._born[(this._head + i) % MAX_PARTICLES];
      if (age < travel) {
        var p = age / travel;
        for (var t = tail; t >= 1; t--) {                // a short fading tail
          var pt = p - t * 0.016;
          if (pt < 0) continue;
          this._axonPos(pt, POS);
          this._blit(ctx, POS[0], POS[1], 0.42 * POS[2] * (1 - t * 0.17),
            0.5 * (1 - t / (TAIL + 1)) * this._somaShade(POS[0], POS[1], POS[3]));
        }
        this._axonPos(p, POS);                           // fades in at the hillock, hidden behind the soma
        this._blit(ctx, POS[0], POS[1], 0.6 * POS[2],
          Math.min(1, 0.35 + p * 4) * this._somaShade(POS[0], POS[1], POS[3]));
      } else {
        // spreads into the terminal branches and fades
        var q = (age - travel) / fade, alpha = (1 - q) * (1 - q);
        if (!spread) {
          this._blit(ctx, SX[end], SY[end], 0.6 * SC[end], alpha);
          continue;
        }
        for (var k = 0; k < T.length; k++) {
          var path = T[k], x = q * (path.length - 1), j = Math.min(path.length - 2, Math.floor(x)), f = x - j;
          var a = path[j], b = path[j + 1];
          this._blit(ctx, SX[a] + (SX[b] - SX[a]) * f, SY[a] + (SY[b] - SY[a]) * f,
            0.42 * (SC[a] + (SC[b] - SC[a]) * f), alpha);
        }
      }
    }
    ctx.globalAlpha = 1;
    ctx.globalCompositeOperation = 'source-over';
    ctx.setTransform(this._dpr, 0, 0, this._dpr, 0, 0);
  };

  Neuron3D.AXON_TRAVEL_MS = AXON_TRAVEL_MS;
  Neuron3D.FADE_MS = FADE_MS;
  Neuron3D.MAX_PARTICLES = MAX_PARTICLES;
  Neuron3D.PITCH_LIMIT = PITCH_LIMIT;
  Neuron3D.DEFAULT_ROTATION = {yaw: DEFAULT_YAW, pitch: DEFAULT_PITCH};
  global.Neuron3D = Neuron3D;
})(typeof window !== 'undefined' ? window : this);
