// Small shared pieces of the device views.

import { h } from './dom.js';

export function connectionBadge(state) {
  const connected = state === 'Connected';
  return h('span', { class: `badge ${connected ? 'ok' : 'off'}` }, connected ? 'Connected' : 'Disconnected');
}

export function statusBadge(status) {
  return h('span', { class: `badge ${status === 'enabled' ? 'plain' : 'warn'}` }, status);
}
