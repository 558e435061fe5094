// #/devices/{id}: one device's details, its latest stream records, and the way to its
// terminal (with serviceConnect).

import { api, devicePath } from '../api.js';
import { connectionBadge, statusBadge } from '../badges.js';
import { h } from '../dom.js';
import { formatTime } from '../format.js';
import { coalesce } from '../live.js';
import { recordsTable } from '../records.js';
import { href } from '../router.js';

export function mountDevice(main, ctx, { id }) {
  const details = h('dl', { class: 'details', 'data-testid': 'device-details', 'aria-busy': 'true' });
  const records = recordsTable({ 'data-testid': 'device-streams' });
  const empty = h('p', { class: 'empty', hidden: true }, 'No streams yet.');

  const terminal = ctx.can('serviceConnect')
    ? h('a', { class: 'button', href: href.terminal(id), 'data-testid': 'open-terminal' }, 'Open terminal')
    : h('p', { class: 'note', 'data-testid': 'no-terminal-permission' },
      'No terminal: this policy lacks ServiceConnect.');

  main.append(
    h('p', { class: 'crumbs' }, h('a', { href: href.devices() }, 'Devices'), ' / '),
    h('div', { class: 'page-head' }, h('h1', null, id), terminal),
    details,
    h('h2', null, 'Recent streams'),
    records.el,
    empty);

  const load = coalesce(async () => {
    try {
      const { device, streams } = await api.get(devicePath(id), { signal: ctx.signal });
      showDevice(device);
      records.show(streams);
      empty.hidden = streams.length > 0;
    } catch (error) {
      if (error.status === 404) {
        details.replaceChildren(h('p', { class: 'note' }, 'There is no such device.'));
        details.removeAttribute('aria-busy');
      } else {
        ctx.report(error);
      }
    }
  });

  function showDevice(device) {
    const item = (term, ...value) => [h('dt', null, term), h('dd', null, ...value)];
    details.replaceChildren(
      ...item('Device id', device.deviceId),
      ...item('Status', statusBadge(device.status)),
      ...item('Connection', connectionBadge(device.connectionState)),
      ...item('Last activity', formatTime(device.lastActivityTime)),
      ...item('Active streams', String(device.activeStreams ?? 0)));
    details.dataset.state = device.connectionState;
    details.removeAttribute('aria-busy');
  }

  ctx.on('presence', (event) => {
    if (event.deviceId === id) load();
  });
  ctx.on('devices', load);
  ctx.on('streams', load);
  ctx.on('reconnected', load);
  load();
}
