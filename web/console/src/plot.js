// The streams-over-time plot: an inline SVG drawn here, no chart library. Bars are the bytes
// carried in each bucket (right axis), the line the streams (left axis).

import { svg } from './dom.js';
import { formatBytes, formatClock } from './format.js';

const W = 720;
const H = 220;
const M = { top: 40, right: 64, bottom: 28, left: 44 };
const PLOT_W = W - M.left - M.right;
const PLOT_H = H - M.top - M.bottom;

/** The smallest 1, 2 or 5 times a power of ten at or above v (at least 1). */
function niceCeil(v) {
  if (v <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= v) return step * power;
  }
  return 10 * power;
}

function niceBytes(v) {
  // At least 1 KiB, so an idle hour's axis reads 0 B, 512 B, 1.0 KiB rather than rounded halves.
  if (v <= 1024) return 1024;
  const power = 1024 ** Math.floor(Math.log(v) / Math.log(1024));
  return niceCeil(v / power) * power;
}

export function historyPlot({ bucketSeconds, buckets }) {
  const n = Math.max(buckets.length, 1);
  const slot = PLOT_W / n;
  const maxStreams = niceCeil(Math.max(0, ...buckets.map((b) => b.streams)));
  const maxBytes = niceBytes(Math.max(0, ...buckets.map((b) => b.bytes)));
  const x = (i) => M.left + i * slot;
  const yStreams = (v) => M.top + PLOT_H - (v / maxStreams) * PLOT_H;
  const yBytes = (v) => M.top + PLOT_H - (v / maxBytes) * PLOT_H;

  const parts = [];
  // Grid and both axes' labels at 0, half and the top.
  for (const f of [0, 0.5, 1]) {
    const y = M.top + PLOT_H - f * PLOT_H;
    parts.push(
      svg('line', { class: 'grid', x1: M.left, x2: M.left + PLOT_W, y1: y, y2: y }),
      svg('text', { class: 'tick', x: M.left - 6, y: y + 4, 'text-anchor': 'end' },
        String(Math.round(f * maxStreams * 10) / 10)),
      svg('text', { class: 'tick', x: M.left + PLOT_W + 6, y: y + 4 }, formatBytes(Math.round(f * maxBytes))));
  }
  // Bars: bytes.
  buckets.forEach((bucket, i) => {
    const y = yBytes(bucket.bytes);
    parts.push(svg('rect', {
      class: 'bar', x: x(i) + slot * 0.15, y, width: Math.max(slot * 0.7, 1), height: M.top + PLOT_H - y,
    }, svg('title', null, `${formatClock(bucket.time)}: ${bucket.streams} streams, ${formatBytes(bucket.bytes)}`)));
  });
  // Line: streams.
  if (buckets.length > 0) {
    const points = buckets.map((b, i) => `${(x(i) + slot / 2).toFixed(1)},${yStreams(b.streams).toFixed(1)}`);
    parts.push(svg('polyline', { class: 'line', points: points.join(' ') }));
  }
  // Time labels, about every 10 minutes' worth of buckets.
  const every = Math.max(1, Math.round(600 / (bucketSeconds || 60)));
  buckets.forEach((bucket, i) => {
    if (i % every === 0) {
      parts.push(svg('text', { class: 'tick', x: x(i) + slot / 2, y: H - 8, 'text-anchor': 'middle' }, formatClock(bucket.time)));
    }
  });
  // Axes, their names and the legend.
  parts.push(
    svg('line', { class: 'axis', x1: M.left, x2: M.left + PLOT_W, y1: M.top + PLOT_H, y2: M.top + PLOT_H }),
    svg('text', { class: 'axis-name', x: 4, y: M.top - 14 }, 'streams'),
    svg('text', { class: 'axis-name', x: W - 4, y: M.top - 14, 'text-anchor': 'end' }, 'bytes'),
    svg('rect', { class: 'bar', x: M.left + 60, y: 4, width: 10, height: 10 }),
    svg('text', { class: 'legend', x: M.left + 74, y: 13 }, `bytes per ${bucketSeconds || 60} s`),
    svg('line', { class: 'line', x1: M.left + 190, x2: M.left + 206, y1: 9, y2: 9 }),
    svg('text', { class: 'legend', x: M.left + 210, y: 13 }, 'streams'));
  if (buckets.length === 0) {
    parts.push(svg('text', { class: 'legend', x: M.left + PLOT_W / 2, y: M.top + PLOT_H / 2, 'text-anchor': 'middle' }, 'No data'));
  }

  return svg('svg', {
    class: 'plot', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-testid': 'streams-plot',
    'aria-label': 'Streams and bytes over the last hour',
  }, parts);
}
