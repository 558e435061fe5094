// Hash routes (docs/console.md): #/devices (default), #/devices/{id},
// #/devices/{id}/terminal, #/streams, #/log. The one-time #sign-in=TOKEN is handled apart.

export function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decode);
  const [first, id, rest] = parts;
  if (parts.length === 0) return { name: 'devices' };
  if (first === 'devices') {
    if (parts.length === 1) return { name: 'devices' };
    if (parts.length === 2) return { name: 'device', id };
    if (parts.length === 3 && rest === 'terminal') return { name: 'terminal', id };
  }
  if (parts.length === 1 && (first === 'streams' || first === 'log')) return { name: first };
  return { name: 'not-found' };
}

function decode(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** The token of a one-time sign-in URL's fragment (#sign-in=TOKEN), or null. */
export function signInToken(hash) {
  const match = /^#sign-in=(.+)$/.exec(hash);
  return match ? decode(match[1]) : null;
}

export const href = {
  devices: () => '#/devices',
  device: (id) => `#/devices/${encodeURIComponent(id)}`,
  terminal: (id) => `#/devices/${encodeURIComponent(id)}/terminal`,
  streams: () => '#/streams',
  log: () => '#/log',
};
