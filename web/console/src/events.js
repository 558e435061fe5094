// The hub's server-sent events (GET /console/api/events): presence, devices, streams.
// Pages subscribe with on(type, handler). After the stream was lost and is back, handlers of
// "reconnected" run, so pages fetch again what they may have missed.

import { api } from './api.js';

const TYPES = ['presence', 'devices', 'streams'];
const RETRY_MS = 3000;

const handlers = new Map();
let source = null;
let retryTimer = null;
let everOpened = false;

function emit(type, data) {
  for (const handler of handlers.get(type) ?? []) {
    try {
      handler(data);
    } catch (error) {
      console.error(error);
    }
  }
}

export function on(type, handler) {
  if (!handlers.has(type)) handlers.set(type, new Set());
  handlers.get(type).add(handler);
  return () => handlers.get(type).delete(handler);
}

export function startEvents() {
  if (source || retryTimer) return;
  source = new EventSource('/console/api/events');
  for (const type of TYPES) {
    source.addEventListener(type, (event) => {
      let data = {};
      try {
        data = JSON.parse(event.data || '{}');
      } catch {
        return;
      }
      emit(type, data);
    });
  }
  source.addEventListener('open', () => {
    if (everOpened) emit('reconnected', {});
    everOpened = true;
  });
  source.addEventListener('error', () => {
    // EventSource retries by itself after a network error (CONNECTING); it gives up (CLOSED)
    // on an HTTP error such as 401. Then ask the hub who we are: a 401 there shows the
    // sign-in form (and stops events); otherwise try again.
    if (source?.readyState !== EventSource.CLOSED) return;
    source = null;
    retryTimer = setTimeout(async () => {
      retryTimer = null;
      try {
        await api.get('me');
        startEvents();
      } catch (error) {
        if (error?.status !== 401) retryTimer = setTimeout(() => { retryTimer = null; startEvents(); }, RETRY_MS);
      }
    }, RETRY_MS);
  });
}

export function stopEvents() {
  source?.close();
  source = null;
  clearTimeout(retryTimer);
  retryTimer = null;
  everOpened = false;
}
