// The table of stream records (LogRecord), shared by the device page and the log page.

import { h, table } from './dom.js';
import { formatBytes, formatDuration, formatTime } from './format.js';
import { href } from './router.js';

const HEADINGS = ['Time', 'Device', 'Stream', 'Outcome', 'Reason', 'Duration', 'Device → service', 'Service → device', 'Opened by'];

export function recordsTable(props) {
  const { el, body } = table(HEADINGS, props);
  function show(records) {
    body.replaceChildren(...records.map((record) => h('tr', { 'data-testid': 'record-row' },
      h('td', { class: 'time', title: record.time }, formatTime(record.time)),
      h('td', null, h('a', { href: href.device(record.deviceId) }, record.deviceId)),
      h('td', null, record.streamName),
      h('td', null, h('span', { class: 'badge plain' }, record.outcome)),
      h('td', { class: 'reason' }, record.reason ?? ''),
      h('td', { class: 'num' }, formatDuration(record.durationMs)),
      h('td', { class: 'num' }, formatBytes(record.bytesDeviceToService)),
      h('td', { class: 'num' }, formatBytes(record.bytesServiceToDevice)),
      h('td', { title: record.caller ? `from ${record.caller}` : '' }, record.policy ?? ''))));
  }
  return { el, show };
}
