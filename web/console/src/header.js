// The header: the hub, the pages, who is signed in, sign-out.

import { h } from './dom.js';
import { formatTime } from './format.js';
import { href } from './router.js';

const LINKS = [
  ['devices', 'Devices', href.devices()],
  ['streams', 'Streams', href.streams()],
  ['log', 'Log', href.log()],
];

// Which nav link a route belongs to.
const SECTION = { devices: 'devices', device: 'devices', terminal: 'devices', streams: 'streams', log: 'log' };

export function headerView(me, { onSignOut }) {
  const links = LINKS.map(([name, label, target]) => h('a', { href: target, 'data-section': name }, label));
  const el = h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: href.devices() }, 'Adit'),
    h('span', { class: 'hub', title: 'Hub' }, me.hub),
    h('nav', { class: 'nav' }, links),
    h('span', { class: 'who', title: `Permissions: ${me.permissions.join(', ') || 'none'}\nSession until ${formatTime(me.expiresAt)}` },
      'Signed in as ', h('strong', { 'data-testid': 'signed-in-as' }, me.policy)),
    h('button', { type: 'button', class: 'secondary', 'data-testid': 'sign-out', onclick: onSignOut }, 'Sign out'));

  function setActive(routeName) {
    for (const link of links) {
      if (link.dataset.section === SECTION[routeName]) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }
  return { el, setActive };
}
