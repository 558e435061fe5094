// #/devices/{id}/terminal: an SSH shell on the device, run by the hub and shown by xterm.js.
// The WebSocket protocol is in docs/console.md: credentials first (one text message), then
// hostKey (a key seen for the first time waits for the user's trustHostKey, as OpenSSH asks
// before it goes on), ready | error, then the terminal's bytes as binary messages both ways,
// resize as text, and closed at the shell's end.

import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { devicePath } from '../api.js';
import { h } from '../dom.js';
import { href } from '../router.js';

const THEME = { background: '#111418', foreground: '#e6e6e6', cursor: '#e6e6e6' };

function terminalUrl(id) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/console/api/${devicePath(id, '/terminal')}`;
}

export function mountTerminal(main, ctx, { id }) {
  main.append(
    h('p', { class: 'crumbs' }, h('a', { href: href.devices() }, 'Devices'), ' / ',
      h('a', { href: href.device(id) }, id), ' / '),
    h('h1', null, `Terminal on ${id}`));
  if (!ctx.can('serviceConnect')) {
    main.append(h('p', { class: 'note', 'data-testid': 'no-terminal-permission' },
      'No terminal: this policy lacks ServiceConnect.'));
    return;
  }

  const username = h('input', { id: 'ssh-username', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false', 'data-testid': 'ssh-username' });
  const password = h('input', { id: 'ssh-password', type: 'password', autocomplete: 'off', 'data-testid': 'ssh-password' });
  const privateKey = h('textarea', { id: 'ssh-private-key', rows: 6, spellcheck: 'false', autocomplete: 'off', placeholder: '-----BEGIN OPENSSH PRIVATE KEY-----', 'data-testid': 'ssh-private-key' });
  const passphrase = h('input', { id: 'ssh-passphrase', type: 'password', autocomplete: 'off', 'data-testid': 'ssh-passphrase' });
  const connect = h('button', { type: 'submit', 'data-testid': 'ssh-connect' }, 'Connect');
  const form = h('form', { class: 'ssh-form', onsubmit: onConnect },
    h('label', { for: 'ssh-username' }, 'Username'), username,
    h('label', { for: 'ssh-password' }, 'Password'), password,
    h('details', null, h('summary', null, 'Use a private key instead'),
      h('label', { for: 'ssh-private-key' }, 'Private key'), privateKey,
      h('label', { for: 'ssh-passphrase' }, 'Passphrase (if the key has one)'), passphrase),
    h('div', null, connect),
    h('p', { class: 'hint' }, 'Sent once to the hub, which signs in to the device; never stored.'));
  const status = h('p', { class: 'terminal-status', role: 'status', 'data-testid': 'terminal-status', 'data-state': 'idle' }, 'Not connected.');
  const hostKey = h('div', { class: 'host-key', 'data-testid': 'host-key', hidden: true });
  const close = h('button', { type: 'button', class: 'secondary', hidden: true, 'data-testid': 'terminal-close', onclick: () => session?.close() }, 'Close');
  const box = h('div', { class: 'terminal', hidden: true, 'data-testid': 'terminal' });
  main.append(form, h('div', { class: 'terminal-bar' }, status, close), hostKey, box);

  let session = null;

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
    const active = state === 'connecting' || state === 'ready';
    form.hidden = active;
    close.hidden = !active;
  }

  function onConnect(event) {
    event.preventDefault();
    const credentials = { username: username.value.trim() };
    if (privateKey.value.trim()) {
      credentials.privateKey = privateKey.value;
      if (passphrase.value) credentials.passphrase = passphrase.value;
    } else {
      credentials.password = password.value;
    }
    // Out of the DOM now; the only copy left is the message about to be sent.
    password.value = '';
    privateKey.value = '';
    passphrase.value = '';
    session?.dispose();
    session = openSession(credentials);
  }

  function openSession(credentials) {
    let pending = credentials;
    let state = 'connecting';
    let ended = false; // the hub said error or closed
    let sentSize = null;
    const encoder = new TextEncoder();

    box.hidden = false;
    box.replaceChildren();
    hostKey.hidden = true;
    const term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000, theme: THEME });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box);
    fit.fit();
    showSize(term.cols, term.rows);

    const socket = new WebSocket(terminalUrl(id));
    socket.binaryType = 'arraybuffer';
    const update = (next, text) => {
      state = next;
      setStatus(next, text);
    };
    update('connecting', `Connecting to ${id}…`);

    const send = (data) => {
      if (state === 'ready' && socket.readyState === WebSocket.OPEN) socket.send(data);
    };
    const sendSize = () => {
      const size = `${term.cols}x${term.rows}`;
      if (size === sentSize) return;
      sentSize = size;
      send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
    };

    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ ...pending, cols: term.cols, rows: term.rows }));
      sentSize = `${term.cols}x${term.rows}`;
      pending = null;
    });
    socket.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') {
        term.write(new Uint8Array(event.data));
        return;
      }
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === 'hostKey') {
        showHostKey(message);
      } else if (message.type === 'ready') {
        update('ready', `Connected to ${id}.`);
        sendSize(); // the window may have changed while signing in
        term.focus();
      } else if (message.type === 'error') {
        ended = true;
        hostKey.querySelectorAll('button').forEach((b) => b.remove());
        update('error', `Error: ${message.message}`);
      } else if (message.type === 'closed') {
        ended = true;
        update('closed', message.message ? `Closed: ${message.message}` : 'Closed.');
      }
    });
    socket.addEventListener('close', (event) => {
      pending = null;
      hostKey.querySelectorAll('button').forEach((b) => b.remove());
      term.options.disableStdin = true;
      if (ended) return;
      if (state === 'ready' || state === 'closing') {
        update('closed', 'Closed.');
      } else {
        update('error', `The hub closed the connection${event.reason ? `: ${event.reason}` : ` (code ${event.code})`}.`);
      }
    });

    // A key the hub keeps for the device was shown already: it goes on by itself. A new one
    // goes on only when the user trusts it; nothing of theirs reaches the device before.
    function showHostKey({ fingerprint, firstUse }) {
      hostKey.dataset.firstUse = String(Boolean(firstUse));
      hostKey.hidden = false;
      if (!firstUse) {
        hostKey.replaceChildren(h('p', null, `Host key ${fingerprint}: known.`));
        return;
      }
      const answered = () => {
        trust.remove();
        decline.remove();
      };
      const trust = h('button', { type: 'button', 'data-testid': 'host-key-trust', onclick: () => {
        answered();
        hostKey.dataset.trusted = 'true';
        socket.send(JSON.stringify({ type: 'trustHostKey' }));
        update('connecting', `Signing in to ${id}…`);
      } }, 'Trust and connect');
      const decline = h('button', { type: 'button', class: 'secondary', 'data-testid': 'host-key-decline', onclick: () => {
        answered();
        ended = true;
        update('closed', 'Not connected: the host key was not trusted.');
        socket.close(1000, 'host key not trusted');
      } }, 'Cancel');
      hostKey.replaceChildren(
        h('p', null, `This is the first connection to ${id} from this hub. Its SSH host key is `,
          h('code', { 'data-testid': 'host-key-fingerprint' }, fingerprint),
          '. Check it on the device (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); once trusted the hub keeps it and refuses any other.'),
        h('div', null, trust, ' ', decline));
      update('connecting', 'Check the device\'s host key.');
    }

    term.onData((data) => send(encoder.encode(data)));
    term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
    term.onResize(({ cols, rows }) => {
      showSize(cols, rows);
      sendSize();
    });

    // Fit to the box when the window (or the box) changes size; onResize sends it.
    let frame = 0;
    const refit = () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => fit.fit());
    };
    const observer = new ResizeObserver(refit);
    observer.observe(box);
    window.addEventListener('resize', refit);

    return {
      close() {
        if (state === 'connecting' || state === 'ready') state = 'closing';
        socket.close(1000, 'closed by the user');
      },
      dispose() {
        ended = true;
        socket.close(1000, 'closed by the user');
        observer.disconnect();
        window.removeEventListener('resize', refit);
        cancelAnimationFrame(frame);
        term.dispose();
      },
    };
  }

  function showSize(cols, rows) {
    box.dataset.cols = String(cols);
    box.dataset.rows = String(rows);
  }

  ctx.signal.addEventListener('abort', () => session?.dispose());
  username.focus();
}
