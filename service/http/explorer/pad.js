// The drawing pad: white ink on black, as the digits were written, with a mouse, a pen or a finger.
// Each finished stroke hands the drawing over as a PNG.

export class DrawingPad {
  constructor(canvas, onStroke) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.onStroke = onStroke;
    this.empty = true;
    this.clear();
    let last = null;
    canvas.addEventListener("pointerdown", (event) => {
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      last = this._at(event);
      this._line(last, last, event.pressure);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!last) return;
      const point = this._at(event);
      this._line(last, point, event.pressure);
      last = point;
    });
    const finish = () => {
      if (!last) return;
      last = null;
      this.empty = false;
      canvas.toBlob((blob) => this.onStroke(blob), "image/png");
    };
    canvas.addEventListener("pointerup", finish);
    canvas.addEventListener("pointercancel", finish);
  }

  clear() {
    const g = this.context;
    g.fillStyle = "#000000";
    g.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.empty = true;
  }

  _at(event) {
    const rect = this.canvas.getBoundingClientRect();
    return [(event.clientX - rect.left) * (this.canvas.width / rect.width), (event.clientY - rect.top) * (this.canvas.height / rect.height)];
  }

  _line(from, to, pressure) {
    const g = this.context;
    // A pen's pressure thickens the stroke; a mouse reports 0.5 while pressed.
    g.lineWidth = (this.canvas.width / 14) * (0.6 + (pressure || 0.5) * 0.8);
    g.lineCap = "round";
    g.lineJoin = "round";
    g.strokeStyle = "#ffffff";
    g.beginPath();
    g.moveTo(...from);
    g.lineTo(...to);
    g.stroke();
  }
}
