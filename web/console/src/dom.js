// Building DOM nodes without innerHTML: every piece of data goes in as a text node or an
// attribute value, so nothing the hub or a device sends can become markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, props, children) {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value == null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** An HTML element: h('a', {href: '#/log', class: 'nav'}, 'Log'). */
export function h(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

/** An SVG element, same calling convention as h(). */
export function svg(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

/** A <select> with [value, label] options. */
export function select(props, options, selected) {
  return h('select', props, options.map(([value, label]) =>
    h('option', { value, selected: value === selected }, label)));
}

/** A table with a header row; rows are appended to the returned body. */
export function table(headings, props = {}) {
  const body = h('tbody');
  const el = h('table', { class: 'table', ...props },
    h('thead', null, h('tr', null, headings.map((text) => h('th', { scope: 'col' }, text)))),
    body);
  return { el, body };
}
