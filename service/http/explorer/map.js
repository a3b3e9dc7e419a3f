// The latent map: the reference set as coloured points on the plane, the prior's contours behind,
// pan (drag) and zoom (wheel), markers for pinned points, drawings (with their 1- and 2-sigma
// ellipses), samples and walks, and the decoded manifold as an overlay.

const PRIOR_RADII = [1, 2, 3]; // standard deviations of N(0, I): circles on any orthonormal plane

export class LatentMap {
  constructor(canvas, { onHover, onClick, onLeave }) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.view = { cx: 0, cy: 0, scale: 60 }; // plane units at the centre, pixels per unit
    this.points = null; // {uv: Float32Array(2N), labels: Uint8Array}
    this.colours = [];
    this.hidden = new Set();
    this.markers = []; // {u, v, kind: "pin"|"drawing"|"digit"|"sample"|"walk", ellipse?: [[suu,suv],[suv,svv]], label?}
    this.manifold = null; // {cells: [{u, v, image}], size: plane units per cell}
    this.pending = false;
    this.painted = false;
    this._listen(onHover, onClick, onLeave);
    new ResizeObserver(() => this._resize()).observe(canvas);
    this._resize();
  }

  setPoints(uv, labels, colours) {
    this.points = { uv, labels };
    this.colours = colours;
    let radius = 0;
    for (let i = 0; i < uv.length; i++) radius = Math.max(radius, Math.abs(uv[i]));
    this.fit(Math.min(radius, 4) * 1.1 || 3);
  }

  /** Show [-radius, radius] in both directions. */
  fit(radius) {
    const side = Math.min(this.canvas.clientWidth, this.canvas.clientHeight) || 400;
    this.view = { cx: 0, cy: 0, scale: side / (2 * radius) };
    this.redraw();
  }

  toScreen(u, v) {
    const { cx, cy, scale } = this.view;
    return [this.canvas.clientWidth / 2 + (u - cx) * scale, this.canvas.clientHeight / 2 - (v - cy) * scale];
  }

  toPlane(x, y) {
    const { cx, cy, scale } = this.view;
    return [cx + (x - this.canvas.clientWidth / 2) / scale, cy - (y - this.canvas.clientHeight / 2) / scale];
  }

  /** The plane's visible extent: [uMin, vMin, uMax, vMax]. */
  extent() {
    const [uMin, vMax] = this.toPlane(0, 0);
    const [uMax, vMin] = this.toPlane(this.canvas.clientWidth, this.canvas.clientHeight);
    return [uMin, vMin, uMax, vMax];
  }

  redraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this._draw();
    });
  }

  _resize() {
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(this.canvas.clientWidth * ratio);
    this.canvas.height = Math.round(this.canvas.clientHeight * ratio);
    this.context.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.redraw();
  }

  _listen(onHover, onClick, onLeave) {
    let drag = null;
    const canvas = this.canvas;
    canvas.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX, y: event.clientY, cx: this.view.cx, cy: this.view.cy, moved: false };
      canvas.setPointerCapture(event.pointerId);
    });
    canvas.addEventListener("pointermove", (event) => {
      const rect = canvas.getBoundingClientRect();
      if (drag && event.buttons) {
        const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        this.view.cx = drag.cx - dx / this.view.scale;
        this.view.cy = drag.cy + dy / this.view.scale;
        this.redraw();
        return;
      }
      onHover(this.toPlane(event.clientX - rect.left, event.clientY - rect.top));
    });
    canvas.addEventListener("pointerup", (event) => {
      const rect = canvas.getBoundingClientRect();
      if (drag && !drag.moved) onClick(this.toPlane(event.clientX - rect.left, event.clientY - rect.top));
      drag = null;
    });
    canvas.addEventListener("pointerleave", () => onLeave());
    // By keyboard: arrows move a cursor (decoded as the pointer is), Enter pins, + and - zoom.
    canvas.addEventListener("keydown", (event) => {
      const step = 20 / this.view.scale;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      this.cursor = this.cursor || [this.view.cx, this.view.cy];
      if (moves[event.key]) {
        this.cursor = [this.cursor[0] + moves[event.key][0], this.cursor[1] + moves[event.key][1]];
        onHover(this.cursor);
      } else if (event.key === "Enter") {
        onClick(this.cursor);
      } else if (event.key === "+" || event.key === "-") {
        this.view.scale *= event.key === "+" ? 1.25 : 0.8;
      } else {
        return;
      }
      event.preventDefault();
      this.redraw();
    });
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      const rect = canvas.getBoundingClientRect();
      const [u, v] = this.toPlane(event.clientX - rect.left, event.clientY - rect.top);
      const factor = Math.exp(-event.deltaY * 0.0015);
      this.view.scale = Math.min(Math.max(this.view.scale * factor, 5), 5000);
      const [u2, v2] = this.toPlane(event.clientX - rect.left, event.clientY - rect.top);
      this.view.cx += u - u2;
      this.view.cy += v - v2;
      this.redraw();
    }, { passive: false });
  }

  _draw() {
    const g = this.context;
    const width = this.canvas.clientWidth, height = this.canvas.clientHeight;
    g.clearRect(0, 0, width, height);
    g.fillStyle = "#ffffff";
    g.fillRect(0, 0, width, height);
    this._drawPrior(g);
    if (this.manifold) this._drawManifold(g);
    if (this.points) this._drawPoints(g);
    for (const marker of this.markers) this._drawMarker(g, marker);
    if (this.cursor && document.activeElement === this.canvas) this._drawCursor(g);
    if (this.points && !this.painted) {
      this.painted = true;
      performance.mark("map-painted");
      this.canvas.dataset.painted = "true";
    }
  }

  _drawPrior(g) {
    const [x0, y0] = this.toScreen(0, 0);
    g.strokeStyle = "#c8c8c8";
    g.lineWidth = 1;
    g.setLineDash([4, 4]);
    for (const radius of PRIOR_RADII) {
      g.beginPath();
      g.arc(x0, y0, radius * this.view.scale, 0, 2 * Math.PI);
      g.stroke();
    }
    g.setLineDash([]);
    g.beginPath();
    g.moveTo(0, y0); g.lineTo(this.canvas.clientWidth, y0);
    g.moveTo(x0, 0); g.lineTo(x0, this.canvas.clientHeight);
    g.strokeStyle = "#e6e6e6";
    g.stroke();
  }

  _drawManifold(g) {
    const { cells, size } = this.manifold;
    const pixels = size * this.view.scale;
    g.globalAlpha = 0.85;
    for (const { u, v, image } of cells) {
      const [x, y] = this.toScreen(u, v);
      g.drawImage(image, x - pixels / 2, y - pixels / 2, pixels, pixels);
    }
    g.globalAlpha = 1;
  }

  _drawPoints(g) {
    const { uv, labels } = this.points;
    const radius = 1.6;
    for (let i = 0; i < labels.length; i++) {
      const label = labels[i];
      if (this.hidden.has(label)) continue;
      const [x, y] = this.toScreen(uv[2 * i], uv[2 * i + 1]);
      g.fillStyle = this.colours[label % this.colours.length];
      g.fillRect(x - radius, y - radius, 2 * radius, 2 * radius);
    }
  }

  _drawCursor(g) {
    const [x, y] = this.toScreen(...this.cursor);
    g.strokeStyle = "#1f4e9c";
    g.lineWidth = 2;
    g.beginPath();
    g.moveTo(x - 10, y); g.lineTo(x + 10, y);
    g.moveTo(x, y - 10); g.lineTo(x, y + 10);
    g.stroke();
  }

  _drawMarker(g, marker) {
    const [x, y] = this.toScreen(marker.u, marker.v);
    if (marker.ellipse) {
      const [[a, b], [, d]] = marker.ellipse;
      const spread = Math.sqrt(((a - d) / 2) ** 2 + b * b);
      const major = (a + d) / 2 + spread, minor = Math.max((a + d) / 2 - spread, 0);
      const angle = Math.atan2(major - a, b || 1e-12);
      g.strokeStyle = "#000000";
      for (const k of [1, 2]) {
        g.lineWidth = k === 1 ? 2 : 1;
        g.beginPath();
        g.ellipse(x, y, Math.max(k * Math.sqrt(major) * this.view.scale, 2), Math.max(k * Math.sqrt(minor) * this.view.scale, 2), -angle, 0, 2 * Math.PI);
        g.stroke();
      }
    }
    const style = { pin: ["#000000", 6], drawing: ["#d62728", 6], digit: ["#d62728", 5], sample: ["#1f4e9c", 4], walk: ["#555555", 3] }[marker.kind];
    g.fillStyle = style[0];
    g.strokeStyle = "#ffffff";
    g.lineWidth = 1.5;
    g.beginPath();
    if (marker.kind === "pin" || marker.kind === "drawing") {
      g.moveTo(x, y - style[1]); g.lineTo(x + style[1], y); g.lineTo(x, y + style[1]); g.lineTo(x - style[1], y); g.closePath();
    } else {
      g.arc(x, y, style[1], 0, 2 * Math.PI);
    }
    g.fill();
    g.stroke();
    if (marker.label) {
      g.font = "bold 13px system-ui, sans-serif";
      g.lineWidth = 3;
      g.strokeText(marker.label, x + style[1] + 2, y - style[1]);
      g.fillText(marker.label, x + style[1] + 2, y - style[1]);
    }
  }
}
