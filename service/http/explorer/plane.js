// The 2-D view of the latent space: the latent plane itself when K = 2; for larger K, the two
// principal axes of the reference mu (about the prior's centre, so the prior's contours stay
// circles), with the other axes' coordinates set by sliders.

/** Eigenvectors of a symmetric K x K matrix (rows of the result), largest eigenvalue first (Jacobi). */
function eigenvectors(matrix, size) {
  const a = matrix.map((row) => row.slice());
  const v = Array.from({ length: size }, (_, i) => Array.from({ length: size }, (_, j) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < size; p++) for (let q = p + 1; q < size; q++) off += a[p][q] ** 2;
    if (off < 1e-18) break;
    for (let p = 0; p < size; p++) {
      for (let q = p + 1; q < size; q++) {
        if (Math.abs(a[p][q]) < 1e-30) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < size; k++) {
          const akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < size; k++) {
          const apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < size; k++) {
          const vkp = v[k][p], vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = [...Array(size).keys()].sort((i, j) => a[j][j] - a[i][i]);
  return order.map((column) => v.map((row) => row[column]));
}

export class Plane {
  /** mu: Float32Array of count * size reference means. */
  constructor(mu, size) {
    this.size = size;
    if (size === 2) {
      this.axes = [[1, 0], [0, 1]];
    } else {
      const moment = Array.from({ length: size }, () => new Array(size).fill(0));
      const count = mu.length / size;
      for (let n = 0; n < count; n++)
        for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) moment[i][j] += (mu[n * size + i] * mu[n * size + j]) / count;
      this.axes = eigenvectors(moment, size);
    }
    this.offsets = new Array(Math.max(size - 2, 0)).fill(0); // the sliders: coordinates along axes 3..K
  }

  /** Latent vector -> [u, v] on the plane. */
  project(z) {
    const dot = (axis) => axis.reduce((sum, value, k) => sum + value * z[k], 0);
    return [dot(this.axes[0]), dot(this.axes[1])];
  }

  /** [u, v] on the plane, with the sliders' coordinates -> latent vector. */
  lift(u, v) {
    const z = new Array(this.size).fill(0);
    const coefficients = [u, v, ...this.offsets];
    this.axes.forEach((axis, a) => axis.forEach((value, k) => { z[k] += coefficients[a] * value; }));
    return z;
  }

  /** The 2 x 2 covariance on the plane of a diagonal Gaussian: [[suu, suv], [suv, svv]]. */
  covariance(sigma) {
    const [a, b] = this.axes;
    let suu = 0, suv = 0, svv = 0;
    for (let k = 0; k < this.size; k++) {
      const variance = sigma[k] * sigma[k];
      suu += a[k] * a[k] * variance;
      suv += a[k] * b[k] * variance;
      svv += b[k] * b[k] * variance;
    }
    return [[suu, suv], [suv, svv]];
  }
}
