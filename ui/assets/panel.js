// The entry panel: every field of one entry (GET /layers/{id}/entries/
// {path}), its extended attributes decoded where they are printable, the
// link target, and for a regular file a preview of its first 64 KiB when
// it looks like text (GET /layers/{id}/files/{path} with Range) and a
// download.

import { apiFetch, download, encodePath, getJSON, layerURL } from './api.js';
import { baseName, dirName, fromBase64, h, hex, humanSize, icon, modeString, octal, printable } from './format.js';
import { problemBox } from './problem.js';

const PREVIEW_BYTES = 64 * 1024;

// The order fields are shown in; any other field follows.
const ORDER = ['path', 'path_b64', 'change', 'type', 'mode', 'uid', 'gid', 'size', 'mtime', 'atime',
  'ctime', 'btime', 'nlink', 'file_id', 'link_target', 'link_target_b64', 'rdev', 'opaque', 'xattrs'];

function xattrValue(b64) {
  let bytes;
  try {
    bytes = fromBase64(b64);
  } catch {
    return h('span.v', null, b64);
  }
  // a C string's final NUL is not part of the text
  const body = bytes.length && bytes[bytes.length - 1] === 0 ? bytes.subarray(0, bytes.length - 1) : bytes;
  const text = body.length ? printable(body) : null;
  if (text !== null) return h('span.v', { 'data-decoded': 'text' }, text);
  return h('span.v', { 'data-decoded': 'hex' }, `${hex(bytes)} (base64 ${b64})`);
}

function fieldValue(key, value, entry, links) {
  switch (key) {
    case 'mode':
      return `${modeString(value, entry.type)}  ${octal(value)}`;
    case 'size':
      return value < 1024 ? `${value} bytes` : `${humanSize(value)} (${value.toLocaleString('en-US')} bytes)`;
    case 'change':
      return h(`span.badge.${value}`, null, value);
    case 'link_target':
      if (entry.type === 'hardlink') {
        return h('span', null, 'same data as ',
          h('a', { href: links.entry(value), 'data-nav': true, class: 'link-target' }, value));
      }
      return h('span.link-target', null, value);
    case 'opaque':
      return value ? 'yes: the directory hides what its parents held' : 'no';
    default:
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
}

// Render the panel for entry `path` of layer `id` into el. links.entry(p)
// and links.dir(p) give the page URLs of an entry and a directory.
export function renderPanel(el, id, path, { links, onClose, signal }) {
  const close = h('button', { type: 'button', 'aria-label': 'Close the panel', onclick: onClose, id: 'panel-close' },
    icon('close'));
  el.replaceChildren(
    h('div.panel-head', null, h('h2', { id: 'panel-title' }, path), close),
    h('p.loading', null, 'Loading the entry…'));
  el.dataset.path = path;
  el.dataset.ready = 'false';
  const url = `${layerURL(id)}/entries/${encodePath(path)}`;
  getJSON(url, { signal }).then(async (entry) => {
    const parts = [h('div.panel-head', null, h('h2', { id: 'panel-title' }, baseName(entry.path) || entry.path), close)];
    const where = dirName(entry.path);
    parts.push(h('p.dirinfo', null, 'in ', h('a', { href: links.dir(where), 'data-nav': true }, where ? `/${where}` : '/'),
      ` · ${entry.change === 'delete' ? 'deleted by this layer' : entry.change === 'add' ? 'added by this layer' : 'modified by this layer'}`));
    const dl = h('dl.fields', { id: 'entry-fields' });
    const keys = [...ORDER.filter((k) => k in entry), ...Object.keys(entry).filter((k) => !ORDER.includes(k))];
    for (const key of keys) {
      if (key === 'xattrs') continue;
      dl.append(h('dt', null, key), h('dd', { 'data-field': key }, fieldValue(key, entry[key], entry, links)));
    }
    parts.push(dl);
    if (entry.xattrs) {
      const list = h('div.xattrs', { id: 'entry-xattrs' });
      for (const [name, b64] of Object.entries(entry.xattrs))
        list.append(h('div.xattr', null, h('div.k', null, name), xattrValue(b64)));
      parts.push(h('h2', null, 'Extended attributes'), list);
    }
    if (entry.type === 'file' && entry.change !== 'delete') {
      const fileURL = `${layerURL(id)}/files/${encodePath(entry.path)}`;
      const note = h('span.dirinfo');
      const dlButton = h('button', {
        type: 'button',
        id: 'entry-download',
        onclick: async () => {
          dlButton.disabled = true;
          note.textContent = 'Downloading…';
          try {
            const got = await download(fileURL, baseName(entry.path));
            note.textContent = `${humanSize(got.size)}${got.digest ? ` · ${got.digest}` : ''}`;
          } catch (err) {
            note.replaceChildren(problemBox(err, { compact: true }));
          } finally {
            dlButton.disabled = false;
          }
        },
      }, icon('download'), 'Download');
      parts.push(h('div.exports', null, dlButton, note));
      parts.push(h('h2', null, 'Preview'));
      const preview = h('div', { id: 'entry-preview' }, h('p.loading', null, 'Loading…'));
      parts.push(preview);
      loadPreview(preview, fileURL, entry.size, signal);
    }
    parts.push(h('details', null, h('summary', null, 'The entry as JSON'),
      h('pre.preview.raw', null, JSON.stringify(entry, null, 2))));
    el.replaceChildren(...parts);
    el.dataset.ready = 'true';
  }).catch((err) => {
    if (signal.aborted) return;
    el.replaceChildren(h('div.panel-head', null, h('h2', null, path), close), problemBox(err));
    el.dataset.ready = 'true';
  });
}

async function loadPreview(el, url, size, signal) {
  if (!size) {
    el.replaceChildren(h('p.empty', null, 'The file is empty.'));
    return;
  }
  try {
    const res = await apiFetch(url, { signal, headers: { Range: `bytes=0-${PREVIEW_BYTES - 1}` } });
    const bytes = new Uint8Array(await res.arrayBuffer());
    // a UTF-8 sequence cut at the end of the range is not binary
    let text = null;
    for (let cut = 0; cut < 4 && text === null && cut < bytes.length; cut++)
      text = printable(bytes.subarray(0, bytes.length - cut));
    if (text === null) {
      el.replaceChildren(h('p.empty', null, `Binary data, not shown: ${hex(bytes, 32)}`));
      return;
    }
    el.replaceChildren(h('pre.preview', { id: 'preview-text' }, text));
    if (size > bytes.length)
      el.append(h('p.dirinfo', null, `The first ${humanSize(bytes.length)} of ${humanSize(size)}.`));
  } catch (err) {
    if (signal.aborted) return;
    el.replaceChildren(problemBox(err, { compact: true }));
  }
}
