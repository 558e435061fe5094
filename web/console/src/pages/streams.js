// #/streams: the streams open now (every 2 s and on streams events) and the last hour.

import { api } from '../api.js';
import { h, table } from '../dom.js';
import { formatBytes, formatDuration, formatRate, formatTime } from '../format.js';
import { coalesce } from '../live.js';
import { historyPlot } from '../plot.js';
import { href } from '../router.js';

const HEADINGS = ['Device', 'Stream', 'Opened by', 'Started', 'Duration',
  'Device → service', 'Rate', 'Service → device', 'Rate'];

export function mountStreams(main, ctx) {
  const live = table(HEADINGS, { 'data-testid': 'streams' });
  const empty = h('p', { class: 'empty', hidden: true }, 'No stream is open.');
  const incomplete = h('p', { class: 'note', hidden: true },
    'Not every hub node answered in time (or one had too many to list): some streams may be missing.');
  const plot = h('figure', { class: 'plot-box' });

  main.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Streams')),
    live.el,
    empty,
    incomplete,
    h('h2', null, 'The last hour'),
    plot);

  const loadLive = coalesce(async () => {
    try {
      const { streams, partial } = await api.get('streams', { signal: ctx.signal });
      incomplete.hidden = !partial;
      live.body.replaceChildren(...streams.map((s) => h('tr', {
        'data-testid': 'stream-row',
        'data-stream-id': s.streamId,
        'data-device-id': s.deviceId,
        'data-policy': s.policy ?? '',
        'data-bytes-device-to-service': String(s.bytesDeviceToService),
        'data-bytes-service-to-device': String(s.bytesServiceToDevice),
      },
        h('td', null, h('a', { href: href.device(s.deviceId) }, s.deviceId)),
        h('td', null, s.streamName),
        h('td', { title: s.caller ? `from ${s.caller}, relayed by ${s.node}` : `relayed by ${s.node}` },
          s.policy ?? '—'),
        h('td', { class: 'time', title: s.startedAt }, formatTime(s.startedAt)),
        h('td', { class: 'num' }, formatDuration(s.durationMs)),
        h('td', { class: 'num' }, formatBytes(s.bytesDeviceToService)),
        h('td', { class: 'num' }, formatRate(s.rateDeviceToService)),
        h('td', { class: 'num' }, formatBytes(s.bytesServiceToDevice)),
        h('td', { class: 'num' }, formatRate(s.rateServiceToDevice)))));
      empty.hidden = streams.length > 0;
    } catch (error) {
      ctx.report(error);
    }
  });

  const loadHistory = coalesce(async () => {
    try {
      const history = await api.get('streams/history', { signal: ctx.signal });
      plot.replaceChildren(historyPlot(history));
    } catch (error) {
      ctx.report(error);
    }
  });

  ctx.every(2000, loadLive);
  ctx.every(15000, loadHistory);
  ctx.on('streams', loadLive);
  ctx.on('reconnected', () => {
    loadLive();
    loadHistory();
  });
  loadLive();
  loadHistory();
}
