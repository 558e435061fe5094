// #/log: the stream log, searched by the hub (q matches device, stream name, outcome or reason).

import { api } from '../api.js';
import { h, select } from '../dom.js';
import { coalesce } from '../live.js';
import { recordsTable } from '../records.js';

export function mountLog(main, ctx) {
  const query = h('input', {
    type: 'search', placeholder: 'Device, stream name, outcome or reason', 'aria-label': 'Search the log',
    'data-testid': 'log-search',
  });
  const limit = select({ 'aria-label': 'How many records' },
    [['50', '50 records'], ['200', '200 records'], ['1000', '1000 records']], '200');
  const records = recordsTable({ 'data-testid': 'log' });
  const empty = h('p', { class: 'empty', hidden: true }, 'No records.');

  const load = coalesce(async () => {
    const params = new URLSearchParams({ limit: limit.value });
    const q = query.value.trim();
    if (q) params.set('q', q);
    try {
      const result = await api.get(`streams/log?${params}`, { signal: ctx.signal });
      records.show(result.records);
      empty.hidden = result.records.length > 0;
    } catch (error) {
      ctx.report(error);
    }
  });

  let typing = null;
  query.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(load, 300);
  });
  ctx.signal.addEventListener('abort', () => clearTimeout(typing));
  limit.addEventListener('change', load);

  main.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Stream log')),
    h('form', {
      class: 'toolbar',
      onsubmit: (event) => {
        event.preventDefault();
        load();
      },
    }, query, limit, h('button', { type: 'submit' }, 'Search')),
    records.el,
    empty);

  ctx.on('streams', load);
  ctx.on('reconnected', load);
  load();
}
