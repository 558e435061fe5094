// The hub's console API (docs/console.md): JSON under /console/api/, the session in an
// HttpOnly cookie. Requests that change something carry X-Adit-Console: 1 (CSRF check).

const BASE = '/console/api/';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

let onUnauthorized = () => {};

/** Called whenever the hub answers 401 (not signed in, or the session ended). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/** "devices/" + the id, percent-encoded as one path segment. */
export function devicePath(id, rest = '') {
  return `devices/${encodeURIComponent(id)}${rest}`;
}

async function request(method, path, { body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-Adit-Console'] = '1';
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(BASE + path, init);
  if (!response.ok) {
    const message = await errorMessage(response);
    // A 401 from sign-in itself means wrong credentials: the form shows it.
    if (response.status === 401 && path !== 'sign-in') onUnauthorized(message);
    throw new ApiError(response.status, message);
  }
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') ?? '';
  return type.includes('json') ? response.json() : null;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && typeof body.message === 'string' && body.message) return body.message;
  } catch {
    // Not JSON: fall back to the status line.
  }
  return `${response.status} ${response.statusText || 'error'}`.trim();
}

export const api = {
  get: (path, options) => request('GET', path, options),
  post: (path, body, options) => request('POST', path, { ...options, body }),
  patch: (path, body, options) => request('PATCH', path, { ...options, body }),
  delete: (path, options) => request('DELETE', path, options),
};

/** True for errors a page should not show: aborted requests and 401 (the sign-in form shows). */
export function isQuiet(error) {
  return error?.name === 'AbortError' || error?.status === 401;
}
