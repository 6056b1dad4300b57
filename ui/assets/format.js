// Small helpers: building DOM without HTML strings (no innerHTML with
// data, ever), and formatting modes, sizes and times.

// h('a.cls', {href}, child...): an element; strings become text nodes.
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

// An icon of the sprite ui/assets/icons.svg.
export function icon(name, cls = 'icon') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(SVG, 'use');
  use.setAttribute('href', `/ui/assets/icons.svg#${name}`);
  svg.append(use);
  return svg;
}

export function setIcon(svg, name) {
  const use = svg.firstChild;
  const href = `/ui/assets/icons.svg#${name}`;
  if (use.getAttribute('href') !== href) use.setAttribute('href', href);
}

const TYPE_CHAR = { file: '-', dir: 'd', symlink: 'l', hardlink: '-', char: 'c', block: 'b', fifo: 'p' };

// 0o4755 and "file" -> "-rwsr-xr-x".
export function modeString(mode, type) {
  if (mode === undefined || mode === null) return '';
  const rwx = (bits, special, ch) =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') +
    (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-');
  return (TYPE_CHAR[type] || '-') +
    rwx((mode >> 6) & 7, mode & 0o4000, 's') +
    rwx((mode >> 3) & 7, mode & 0o2000, 's') +
    rwx(mode & 7, mode & 0o1000, 't');
}

export function octal(mode) {
  return mode === undefined ? '' : '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function humanSize(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '';
  if (n < 1024) return `${n} B`;
  let u = 0;
  let v = n;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[u]}`;
}

export function count(n) {
  return n.toLocaleString('en-US');
}

// "2023-11-14T22:13:20.647821366Z" -> "2023-11-14 22:13:20" (UTC).
export function shortTime(iso) {
  if (!iso) return '';
  return iso.slice(0, 19).replace('T', ' ');
}

const RTF = typeof Intl !== 'undefined' && Intl.RelativeTimeFormat
  ? new Intl.RelativeTimeFormat('en', { numeric: 'auto' })
  : null;

// "3 days ago", from an RFC 3339 time.
export function relativeTime(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!iso || Number.isNaN(t)) return '';
  const s = Math.round((t - now) / 1000);
  const steps = [
    [60, 'second'], [60, 'minute'], [24, 'hour'], [30, 'day'], [12, 'month'], [Infinity, 'year'],
  ];
  let v = s;
  for (const [size, unit] of steps) {
    if (Math.abs(v) < size) return RTF ? RTF.format(Math.round(v), unit) : `${v} ${unit}s`;
    v /= size;
  }
  return '';
}

// The last component of a path, and its directory ('' at the top).
export function baseName(path) {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

export function dirName(path) {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

// Base64 to bytes.
export function fromBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// Text when the bytes are printable UTF-8 (tabs and newlines allowed),
// else null.
export function printable(bytes) {
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text) ? null : text;
}

export function hex(bytes, max = 64) {
  const part = [...bytes.slice(0, max)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return bytes.length > max ? `${part} … (${bytes.length} bytes)` : part;
}
