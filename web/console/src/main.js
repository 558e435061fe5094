// The console's entry: signs in (form or one-time link), shows the header and the page the
// hash names, and goes back to the sign-in form whenever the hub answers 401.

import './app.css';
import { api, isQuiet, setUnauthorizedHandler } from './api.js';
import { h } from './dom.js';
import { on, startEvents, stopEvents } from './events.js';
import { headerView } from './header.js';
import { parseRoute, signInToken, href } from './router.js';
import { signInView } from './sign-in.js';
import { mountDevices } from './pages/devices.js';
import { mountDevice } from './pages/device.js';
import { mountTerminal } from './pages/terminal.js';
import { mountStreams } from './pages/streams.js';
import { mountLog } from './pages/log.js';

const PAGES = {
  devices: mountDevices,
  device: mountDevice,
  terminal: mountTerminal,
  streams: mountStreams,
  log: mountLog,
  'not-found': (main) => main.append(h('h1', null, 'Not found'),
    h('p', null, 'No such page. ', h('a', { href: href.devices() }, 'Devices'))),
};

const root = document.getElementById('app');
const errorBar = h('div', { class: 'error-bar', role: 'alert', 'data-testid': 'error', hidden: true });

let me = null; // GET me: {policy, permissions, hub, expiresAt}
let header = null;
let main = null;
let unmountPage = null;
let signInShown = false;

function showError(message) {
  errorBar.textContent = message ?? '';
  errorBar.hidden = !message;
}

function report(error) {
  if (!isQuiet(error)) showError(error?.message || String(error));
}

function leavePage() {
  unmountPage?.();
  unmountPage = null;
}

function showSignIn(message = '') {
  leavePage();
  stopEvents();
  me = null;
  if (!signInShown) {
    signInShown = true;
    root.replaceChildren(errorBar, signInView({ onSignedIn: enter, showError }));
    showError(message);
  } else if (message) {
    showError(message);
  }
}

/** Signed in (or maybe): fetch who we are, then show the page the address bar names. */
async function enter() {
  let who;
  try {
    who = await api.get('me');
  } catch (error) {
    if (!isQuiet(error)) {
      root.replaceChildren(errorBar,
        h('p', null, h('button', { type: 'button', onclick: enter }, 'Try again')));
      report(error);
    }
    return;
  }
  leavePage();
  stopEvents();
  me = who;
  signInShown = false;
  header = headerView(me, { onSignOut: signOut });
  main = h('main', { class: 'page' });
  root.replaceChildren(header.el, errorBar, main);
  showError('');
  startEvents();
  route();
}

async function signOut() {
  try {
    await api.post('sign-out');
  } catch (error) {
    if (!isQuiet(error)) {
      report(error);
      return;
    }
  }
  showSignIn();
}

async function useSignInToken(token) {
  // Out of the address bar (and history) before anything else.
  history.replaceState(null, '', href.devices());
  try {
    await api.post('sign-in', { signInToken: token });
  } catch (error) {
    showSignIn(error.status === 401
      ? `This sign-in link was refused (${error.message}): it works once and for a short time.`
      : error.message);
    return;
  }
  await enter();
}

function route() {
  const token = signInToken(location.hash);
  if (token) {
    useSignInToken(token);
    return;
  }
  if (!me) return;
  leavePage();
  showError('');
  const current = parseRoute(location.hash);
  header.setActive(current.name);
  main.replaceChildren();

  const controller = new AbortController();
  const cleanups = [];
  const ctx = {
    me,
    can: (permission) => me.permissions.includes(permission),
    signal: controller.signal,
    report,
    showError,
    // Subscriptions and timers that end with the page.
    on: (type, handler) => cleanups.push(on(type, handler)),
    every: (ms, fn) => {
      const timer = setInterval(fn, ms);
      cleanups.push(() => clearInterval(timer));
    },
  };
  unmountPage = () => {
    controller.abort();
    cleanups.forEach((cleanup) => cleanup());
  };
  PAGES[current.name](main, ctx, current);
}

setUnauthorizedHandler(() => {
  showSignIn(me ? 'The session has ended: sign in again.' : '');
});
window.addEventListener('hashchange', route);

const token = signInToken(location.hash);
if (token) useSignInToken(token);
else enter();
