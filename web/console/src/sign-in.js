// The sign-in form: a shared access policy's connection string, exchanged for the session
// cookie. The string is only ever in the form field and the one request; the field is
// emptied as soon as it is read.

import { api } from './api.js';
import { h } from './dom.js';

export function signInView({ onSignedIn, showError }) {
  const input = h('input', {
    id: 'connection-string',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    placeholder: 'HostName=…;SharedAccessKeyName=…;SharedAccessKey=…',
    'data-testid': 'connection-string',
  });
  const submit = h('button', { type: 'submit', 'data-testid': 'sign-in-submit' }, 'Sign in');

  async function onSubmit(event) {
    event.preventDefault();
    const connectionString = input.value.trim();
    input.value = '';
    if (!connectionString) return;
    submit.disabled = true;
    showError('');
    try {
      await api.post('sign-in', { connectionString });
      await onSignedIn();
    } catch (error) {
      showError(error.status === 401 ? `Sign-in refused: ${error.message}` : error.message);
      input.focus();
    } finally {
      submit.disabled = false;
    }
  }

  const form = h('form', { class: 'sign-in', 'data-testid': 'sign-in-form', onsubmit: onSubmit },
    h('h1', null, 'Adit console'),
    h('label', { for: 'connection-string' }, 'Connection string of a shared access policy'),
    input,
    h('p', { class: 'hint' },
      'It is exchanged for a session cookie and not stored. ',
      h('code', null, 'adit console'), ' prints a one-time sign-in link for the owner policy.'),
    submit);
  queueMicrotask(() => input.focus());
  return form;
}
