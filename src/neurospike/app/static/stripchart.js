/* A scrolling strip chart on a plain <canvas>: stacked rows sharing one time axis (a row of lines per group of
   series, and a spike raster row), nice 1-2-5 ticks, y ranges that follow the visible data. Drawing 10^4 points
   costs about a millisecond, where a plotly.js update of the same traces cost 30 ms (SVG) to 250-500 ms
   (WebGL in software) in headless Chromium: the traces are redrawn on every frame, so they are drawn here.

   const chart = new StripChart(canvas, {rows: [{series: ["v"], label: "v (mV)", weight: 3}, ...,
                                               {raster: true, label: "spikes", weight: 0.6}], colors: [...]});
   chart.draw({t: [...], series: {v: [...], ...}, spikes: [...]}, tStart, tEnd);   // ms */
(function () {
  "use strict";

  function niceStep(span, count) {
    const raw = span / Math.max(count, 1);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
    return 10 * power;
  }

  function label(value, step) {
    const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    return Math.abs(value) >= 1e5 ? value.toExponential(1) : value.toFixed(Math.min(digits, 6));
  }

  class StripChart {
    constructor(canvas, options) {
      this.canvas = canvas;
      this.rows = options.rows;
      this.colors = options.colors || ["#ffb347", "#6fd3ff", "#b48cff", "#7dffa1"];
      this.style = Object.assign({ background: "#0b1020", panel: "#131a30", grid: "#26304f", text: "#8b96b5",
        font: "11px system-ui, sans-serif" }, options.style || {});
      this.ranges = this.rows.map(() => null);
      this.stats = { draws: 0, lastDrawMs: 0 };
    }

    resize() {
      const ratio = window.devicePixelRatio || 1;
      const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
      const height = Math.max(1, Math.round(this.canvas.clientHeight * ratio));
      if (this.canvas.width !== width || this.canvas.height !== height) {
        this.canvas.width = width;
        this.canvas.height = height;
      }
      return ratio;
    }

    /* The y range of a row: the visible data padded by 8 %; it grows at once and shrinks gently, so the trace
       does not jump with every spike. */
    range(index, data, names, first) {
      let low = Infinity, high = -Infinity;
      for (const name of names) {
        const values = data.series[name] || [];
        for (let i = first; i < values.length; i++) {
          const v = values[i];
          if (v < low) low = v;
          if (v > high) high = v;
        }
      }
      if (!isFinite(low)) return this.ranges[index] || [0, 1];
      const pad = Math.max((high - low) * 0.08, Math.abs(high) * 1e-3, 1e-6);
      let target = [low - pad, high + pad];
      const old = this.ranges[index];
      if (old) {
        const grow = [Math.min(old[0], target[0]), Math.max(old[1], target[1])];
        target = [grow[0] + (target[0] - grow[0]) * 0.25, grow[1] + (target[1] - grow[1]) * 0.25];
      }
      this.ranges[index] = target;
      return target;
    }

    draw(data, tStart, tEnd) {
      const began = performance.now();
      const ratio = this.resize();
      const g = this.canvas.getContext("2d");
      const W = this.canvas.width / ratio, H = this.canvas.height / ratio;
      g.setTransform(ratio, 0, 0, ratio, 0, 0);
      g.fillStyle = this.style.panel;
      g.fillRect(0, 0, W, H);
      g.font = this.style.font;
      const left = 62, right = 10, top = 6, bottom = 30, gap = 8;
      const plotW = Math.max(10, W - left - right);
      const total = this.rows.reduce((s, r) => s + (r.weight || 1), 0);
      const available = H - top - bottom - gap * (this.rows.length - 1);
      const x = (t) => left + (t - tStart) / (tEnd - tStart) * plotW;
      let first = 0;
      const times = data.t;
      while (first < times.length && times[first] < tStart) first++;
      const xStep = niceStep(tEnd - tStart, plotW / 90);
      let y0 = top;
      this.rows.forEach((row, index) => {
        const h = available * (row.weight || 1) / total;
        g.fillStyle = this.style.background;
        g.fillRect(left, y0, plotW, h);
        g.strokeStyle = this.style.grid;
        g.lineWidth = 1;
        g.beginPath();
        for (let t = Math.ceil(tStart / xStep) * xStep; t <= tEnd; t += xStep) {
          g.moveTo(Math.round(x(t)) + 0.5, y0);
          g.lineTo(Math.round(x(t)) + 0.5, y0 + h);
        }
        g.stroke();
        g.save();
        g.fillStyle = this.style.text;
        g.translate(12, y0 + h / 2);
        g.rotate(-Math.PI / 2);
        g.textAlign = "center";
        g.fillText(row.label, 0, 0);
        g.restore();
        g.save();
        g.beginPath();
        g.rect(left, y0, plotW, h);
        g.clip();
        if (row.raster) {
          g.strokeStyle = this.colors[0];
          g.lineWidth = 1;
          g.beginPath();
          for (const s of data.spikes) {
            if (s < tStart) continue;
            const px = Math.round(x(s)) + 0.5;
            g.moveTo(px, y0 + 2);
            g.lineTo(px, y0 + h - 2);
          }
          g.stroke();
        } else {
          const [low, high] = this.range(index, data, row.series, first);
          const y = (v) => y0 + h - (v - low) / (high - low) * h;
          const yStep = niceStep(high - low, Math.max(2, h / 40));
          g.strokeStyle = this.style.grid;
          g.beginPath();
          const ticks = [];
          for (let v = Math.ceil(low / yStep) * yStep; v <= high; v += yStep) {
            g.moveTo(left, Math.round(y(v)) + 0.5);
            g.lineTo(left + plotW, Math.round(y(v)) + 0.5);
            ticks.push(v);
          }
          g.stroke();
          row.series.forEach((name, k) => {
            const values = data.series[name] || [];
            g.strokeStyle = (row.colors || this.colors)[k % this.colors.length];
            g.lineWidth = 1;  // a hairline: Skia rasterises it directly; a thicker stroke of ~10^3 segments cost ~15 ms a frame in software
            g.beginPath();
            // one pixel column at a time: its first, lowest, highest and last point (an oscilloscope's envelope),
            // so a dense window strokes ~4 points a pixel, not 10^4 segments (software raster in headless Chromium)
            let pen = false, column = NaN, firstY = 0, lowY = 0, highY = 0, lastY = 0;
            const flush = () => {
              if (isNaN(column)) return;
              if (pen) g.lineTo(column, firstY); else { g.moveTo(column, firstY); pen = true; }
              if (lowY !== firstY) g.lineTo(column, lowY);
              if (highY !== lowY) g.lineTo(column, highY);
              if (lastY !== highY) g.lineTo(column, lastY);
            };
            for (let i = Math.max(0, first - 1); i < values.length; i++) {
              const v = values[i];
              if (v === null || !isFinite(v)) { flush(); column = NaN; pen = false; continue; }
              const px = Math.round(x(times[i])), py = y(v);
              if (px !== column) {
                flush();
                column = px; firstY = lowY = highY = lastY = py;
              } else {
                if (py < lowY) lowY = py;
                if (py > highY) highY = py;
                lastY = py;
              }
            }
            flush();
            g.stroke();
          });
          g.restore();
          g.save();
          g.fillStyle = this.style.text;
          g.textAlign = "right";
          g.textBaseline = "middle";
          for (const v of ticks) g.fillText(label(v, yStep), left - 4, y(v));
          if (row.series.length > 1) {  // a small legend
            g.textAlign = "left";
            let lx = left + 6;
            row.series.forEach((name, k) => {
              g.fillStyle = (row.colors || this.colors)[k % this.colors.length];
              g.fillText(name, lx, y0 + 10);
              lx += g.measureText(name).width + 12;
            });
          }
        }
        g.restore();
        y0 += h + gap;
      });
      g.fillStyle = this.style.text;
      g.textAlign = "center";
      g.textBaseline = "top";
      for (let t = Math.ceil(tStart / xStep) * xStep; t <= tEnd; t += xStep) g.fillText(label(t, xStep), x(t), H - bottom + 4);
      g.fillText("t (ms)", left + plotW / 2, H - 13);
      this.stats.draws += 1;
      this.stats.lastDrawMs = performance.now() - began;
    }
  }

  window.StripChart = StripChart;
})();
