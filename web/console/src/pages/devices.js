// #/devices: the device table, live. A presence event updates its row in place; a devices
// event (or the event stream coming back) fetches the list again. With registryWrite: create,
// disable/enable and delete.

import { api, devicePath } from '../api.js';
import { connectionBadge, statusBadge } from '../badges.js';
import { h, select, table } from '../dom.js';
import { formatTime } from '../format.js';
import { coalesce } from '../live.js';
import { href } from '../router.js';

export function mountDevices(main, ctx) {
  const canWrite = ctx.can('registryWrite');
  const devices = new Map(); // deviceId → Device
  const rows = new Map(); // deviceId → <tr>
  let loading = false;
  let missed = []; // presence events that came while a list was on its way

  const search = h('input', {
    type: 'search', placeholder: 'Search devices', 'aria-label': 'Search devices',
    'data-testid': 'device-search', oninput: applyFilters,
  });
  const stateFilter = select({ 'aria-label': 'Connection state', 'data-testid': 'state-filter', onchange: applyFilters },
    [['all', 'All states'], ['Connected', 'Connected'], ['Disconnected', 'Disconnected']], 'all');
  const statusFilter = select({ 'aria-label': 'Status', 'data-testid': 'status-filter', onchange: applyFilters },
    [['all', 'All statuses'], ['enabled', 'Enabled'], ['disabled', 'Disabled']], 'all');
  const count = h('span', { class: 'count' });
  const headings = ['Device', 'Status', 'Connection', 'Last activity', 'Active streams'];
  const { el: tableEl, body } = table(canWrite ? [...headings, ''] : headings, { 'data-testid': 'devices' });
  const empty = h('p', { class: 'empty', hidden: true });

  main.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Devices'), canWrite && createForm()),
    h('div', { class: 'toolbar' }, search, stateFilter, statusFilter, count),
    tableEl,
    empty);

  const load = coalesce(async () => {
    loading = true;
    try {
      const { devices: list } = await api.get('devices', { signal: ctx.signal });
      devices.clear();
      for (const device of list) devices.set(device.deviceId, device);
      for (const event of missed) applyPresence(event);
      render();
    } catch (error) {
      ctx.report(error);
    } finally {
      loading = false;
      missed = [];
    }
  });

  function onPresence(event) {
    if (loading) missed.push(event);
    if (!applyPresence(event) && !loading) load();
  }

  /** Updates a known device's row in place; false if the device is not in the table. */
  function applyPresence({ deviceId, connectionState, lastActivityTime }) {
    const device = devices.get(deviceId);
    if (!device) return false;
    device.connectionState = connectionState;
    if (lastActivityTime !== undefined) device.lastActivityTime = lastActivityTime;
    const row = rows.get(deviceId);
    if (row) {
      fillRow(row, device);
      applyFilters();
    }
    return true;
  }

  function render() {
    const sorted = [...devices.values()].sort((a, b) => a.deviceId.localeCompare(b.deviceId));
    for (const device of sorted) {
      let row = rows.get(device.deviceId);
      if (!row) {
        row = h('tr', { 'data-testid': 'device-row', 'data-device-id': device.deviceId });
        rows.set(device.deviceId, row);
      }
      fillRow(row, device);
      body.append(row); // appends new rows, moves existing ones into order
    }
    for (const [id, row] of rows) {
      if (!devices.has(id)) {
        row.remove();
        rows.delete(id);
      }
    }
    applyFilters();
  }

  function fillRow(row, device) {
    row.dataset.state = device.connectionState;
    row.dataset.status = device.status;
    row.replaceChildren(
      h('td', null, h('a', { href: href.device(device.deviceId) }, device.deviceId)),
      h('td', null, statusBadge(device.status)),
      h('td', null, connectionBadge(device.connectionState)),
      h('td', { class: 'time', title: device.lastActivityTime ?? '' }, formatTime(device.lastActivityTime)),
      h('td', { class: 'num' }, String(device.activeStreams ?? 0)),
      canWrite && h('td', { class: 'actions' }, writeButtons(device)));
  }

  function applyFilters() {
    const text = search.value.trim().toLowerCase();
    let shown = 0;
    for (const [id, row] of rows) {
      const device = devices.get(id);
      const visible = (!text || id.toLowerCase().includes(text))
        && (stateFilter.value === 'all' || device.connectionState === stateFilter.value)
        && (statusFilter.value === 'all' || device.status === statusFilter.value);
      row.hidden = !visible;
      if (visible) shown += 1;
    }
    count.textContent = `${shown} of ${devices.size}`;
    empty.hidden = shown > 0;
    empty.textContent = devices.size === 0 ? 'No devices yet.' : 'No device matches.';
  }

  function writeButtons(device) {
    const enable = device.status !== 'enabled';
    const toggle = h('button', { type: 'button', class: 'secondary', 'data-testid': 'device-toggle' },
      enable ? 'Enable' : 'Disable');
    const remove = h('button', { type: 'button', class: 'danger', 'data-testid': 'device-delete' }, 'Delete');
    toggle.addEventListener('click', () => act(toggle, async () => {
      const updated = await api.patch(devicePath(device.deviceId), { status: enable ? 'enabled' : 'disabled' });
      devices.set(updated.deviceId, updated);
      render();
    }));
    remove.addEventListener('click', () => {
      if (!confirm(`Delete device "${device.deviceId}"? Its keys stop working.`)) return;
      act(remove, async () => {
        await api.delete(devicePath(device.deviceId));
        devices.delete(device.deviceId);
        render();
      });
    });
    return [toggle, ' ', remove];
  }

  function createForm() {
    const id = h('input', {
      type: 'text', required: true, placeholder: 'new-device-id', 'aria-label': 'New device id',
      autocomplete: 'off', spellcheck: 'false', 'data-testid': 'new-device-id',
    });
    const submit = h('button', { type: 'submit', 'data-testid': 'create-device' }, 'Create device');
    return h('form', {
      class: 'inline-form',
      onsubmit: (event) => {
        event.preventDefault();
        const deviceId = id.value.trim();
        if (!deviceId) return;
        act(submit, async () => {
          const created = await api.post('devices', { deviceId });
          devices.set(created.deviceId, created);
          render();
          id.value = '';
        });
      },
    }, id, submit);
  }

  async function act(button, work) {
    button.disabled = true;
    ctx.showError('');
    try {
      await work();
    } catch (error) {
      ctx.report(error);
    } finally {
      button.disabled = false;
    }
  }

  ctx.on('presence', onPresence);
  ctx.on('devices', load);
  ctx.on('reconnected', load);
  load();
}
