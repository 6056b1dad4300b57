// One layer: its facts (GET /layers/{id}, /summary), export downloads, and
// two views of its changeset, both virtualised (ui/assets/vlist.js):
//
// - the directory view lists one directory at a time with
//   /entries?prefix=<dir>&depth=1, a page of PAGE entries at a time with
//   the `after` cursor, the next page fetched when the list is scrolled
//   near the end of what it has; never the whole layer.
// - the flat view streams /entries (NDJSON) and shows rows as they
//   arrive, with a live count, a cancel button, and filters: change kinds
//   (on the page) and a path prefix (the API's `prefix`).
//
// Entries are kept in columns (EntryTable) rather than as objects, so a
// layer of 200,000 entries costs a few megabytes; the panel fetches the
// whole entry of the one selected.

import { download, getJSON, layerURL, streamEntries } from './api.js';
import { baseName, count, dirName, h, humanSize, icon, modeString, relativeTime, setIcon, shortTime } from './format.js';
import { layerHref } from './layers.js';
import { renderPanel } from './panel.js';
import { problemBox } from './problem.js';
import { VList } from './vlist.js';

const PAGE = 1000;
const ROW_HEIGHT = 30;
const CHANGES = ['add', 'modify', 'delete'];
const TYPES = ['', 'file', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo'];
const EXPORTS = [
  { compression: 'none', label: 'tar', ext: '.tar' },
  { compression: 'gzip', label: 'tar.gz', ext: '.tar.gz' },
  { compression: 'zstd', label: 'tar.zst', ext: '.tar.zst' },
];

// The entries of a listing, by column.
class EntryTable {
  constructor() {
    this.n = 0;
    this.paths = [];
    this.targets = new Map(); // index -> link target
    this.grow(1024);
  }

  grow(cap) {
    const copy = (Old, a) => {
      const b = new Old(cap);
      if (a) b.set(a.subarray(0, this.n));
      return b;
    };
    this.change = copy(Uint8Array, this.change);
    this.type = copy(Uint8Array, this.type);
    this.mode = copy(Uint16Array, this.mode);
    this.uid = copy(Uint32Array, this.uid);
    this.gid = copy(Uint32Array, this.gid);
    this.size = copy(Float64Array, this.size);
    this.mtime = copy(Float64Array, this.mtime);
    this.cap = cap;
  }

  push(e) {
    if (this.n === this.cap) this.grow(this.cap * 2);
    const i = this.n++;
    this.paths.push(e.path);
    this.change[i] = CHANGES.indexOf(e.change);
    this.type[i] = e.type ? TYPES.indexOf(e.type) : 0;
    this.mode[i] = e.mode || 0;
    this.uid[i] = e.uid || 0;
    this.gid[i] = e.gid || 0;
    this.size[i] = e.size === undefined ? -1 : e.size;
    this.mtime[i] = e.mtime ? Date.parse(`${e.mtime.slice(0, 19)}Z`) : NaN;
    if (e.link_target !== undefined) this.targets.set(i, e.link_target);
    return i;
  }
}

function fileName(id, ext) {
  return `${id.replace(/[^A-Za-z0-9._-]/g, '_')}${ext}`;
}

export function renderLayer(root, id, url, nav) {
  const abort = new AbortController(); // the whole view's requests
  let info = null;
  let summary = null;
  let listing = null; // the directory or flat view in place
  let panelAbort = null;

  // ---- the page's URLs ----

  const params = () => new URL(location.href).searchParams;
  const viewOf = (p) => (p.get('view') === 'flat' ? 'flat' : 'dir');
  function href(changes) {
    const q = new URLSearchParams(params());
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === undefined || v === '') q.delete(k);
      else q.set(k, v);
    }
    return layerHref(id, q);
  }
  const links = {
    dir: (p) => href({ view: null, path: p || null, entry: null, change: null, prefix: null }),
    entry: (p) => href({ view: null, path: dirName(p) || null, entry: p, change: null, prefix: null }),
  };

  // ---- the head ----

  const head = h('section.card.layer-head', { id: 'layer-head' }, h('p.loading', null, 'Loading the layer…'));
  const tabs = h('nav.tabs', { 'aria-label': 'Views' });
  const listingEl = h('section.card.listing', { id: 'listing' });
  const panel = h('aside.card.panel', { id: 'panel', hidden: true, 'aria-label': 'Entry' });
  const browser = h('div.browser', null, listingEl, panel);
  root.append(head, tabs, browser);

  nav.setCrumbs([
    h('a', { href: '/ui/', 'data-nav': true }, 'Layers'),
    h('span.sep', null, '/'),
    h('span', null, id),
  ]);

  // The export buttons and their note are made once: the head is drawn
  // again when the counts come, and a download under way (its button
  // disabled, its note to fill) must outlive that.
  const exportNote = h('span.note', { id: 'export-note' });
  const exportButtons = EXPORTS.map((x) => h('button', {
    type: 'button',
    'data-compression': x.compression,
    onclick: async (e) => {
      const b = e.currentTarget;
      b.disabled = true;
      exportNote.textContent = `Exporting ${x.label}…`;
      try {
        const got = await download(`${layerURL(id)}/export?compression=${x.compression}`, fileName(id, x.ext));
        exportNote.replaceChildren(`${fileName(id, x.ext)}: ${humanSize(got.size)}`,
          ...(got.digest ? [' · digest ', h('code', { id: 'export-digest' }, got.digest)] : []));
      } catch (err) {
        exportNote.replaceChildren(problemBox(err, { compact: true }));
      } finally {
        b.disabled = false;
      }
    },
  }, icon('download'), x.label));

  function drawHead() {
    if (!info) return;
    const chain = [...info.parents].reverse();
    const facts = [
      ['Created', info.created ? h('span', { title: info.created }, `${relativeTime(info.created)} · ${info.created}`) : 'unknown'],
      ['Store', info.store || ''],
      ['Diff digest', info.diff_digest ? h('code', { id: 'diff-digest' }, info.diff_digest) : 'not recorded by the store'],
      ['Entries', summary ? summaryText(summary) : '…'],
      ['File data', summary ? humanSize(summary.size) : '…'],
    ];
    head.replaceChildren(
      h('div.layer-title', null,
        h('h1', null, id),
        h('span.badge.kind', null, info.kind),
        info.mutable ? h('span.badge.mutable', null, 'mutable') : null),
      h('nav.chain', { 'aria-label': 'Parent chain', id: 'chain' },
        chain.length === 0 ? h('span', null, 'a base layer: every entry is an addition') : null,
        ...chain.flatMap((p) => [h('a', { href: layerHref(p), 'data-nav': true }, p), h('span.sep', null, '›')]),
        chain.length ? h('span.here', null, id) : null),
      h('dl.facts', null, facts.map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, v)))),
      h('div.exports', null, h('span.dirinfo', null, 'Export'), exportButtons, exportNote));
  }

  function summaryText(s) {
    const c = s.changes;
    return `${count(s.entries)}: ${count(c.add)} added, ${count(c.modify)} modified, ${count(c.delete)} deleted`;
  }

  function drawTabs() {
    const v = viewOf(params());
    tabs.replaceChildren(
      h('a', { href: href({ view: null, entry: null, change: null, prefix: null }), 'data-nav': true, 'aria-current': v === 'dir' ? 'page' : null, id: 'tab-dir' }, 'Directories'),
      h('a', { href: href({ view: 'flat', path: null, entry: null }), 'data-nav': true, 'aria-current': v === 'flat' ? 'page' : null, id: 'tab-flat' }, 'All changes'));
  }

  // ---- rows, shared by both views ----

  function makeRow() {
    const badge = h('span.badge');
    const ty = h('span.ty', null, icon('file'));
    const name = h('span.name');
    const mode = h('span.mode');
    const owner = h('span.owner');
    const size = h('span.size.num');
    const time = h('span.time');
    const row = h('div', null, badge, ty, name, mode, owner, size, time);
    row.parts = { badge, ty, name, mode, owner, size, time };
    return row;
  }

  function fillRow(row, t, i, display) {
    const p = row.parts;
    const change = CHANGES[t.change[i]] || '';
    const type = TYPES[t.type[i]];
    const path = t.paths[i];
    row.dataset.path = path;
    row.dataset.change = change;
    row.classList.toggle('tomb', change === 'delete');
    p.badge.className = `badge ${change}`;
    p.badge.textContent = change;
    p.ty.className = `ty ${change === 'delete' ? 'delete' : type}`;
    setIcon(p.ty.firstChild, change === 'delete' ? 'deleted' : type || 'file');
    p.ty.title = change === 'delete' ? 'deleted' : type;
    const label = display(path);
    const target = t.targets.get(i);
    const nodes = [];
    if (type === 'dir' && change !== 'delete') {
      nodes.push(h('a.dirname', { href: links.dir(path), 'data-nav': true }, `${label}/`));
    } else {
      nodes.push(h('a', { href: links.entry(path), 'data-nav': true }, label));
    }
    if (target !== undefined) {
      nodes.push(h('span.target', null, ' → '));
      nodes.push(type === 'hardlink'
        ? h('a.target', { href: links.entry(target), 'data-nav': true, title: 'the first name of this hard link' }, target)
        : h('span.target', null, target));
    }
    p.name.replaceChildren(...nodes);
    p.name.title = path;
    if (change === 'delete') {
      p.mode.textContent = '';
      p.owner.textContent = '';
      p.size.textContent = '';
      p.time.textContent = '';
      return;
    }
    p.mode.textContent = modeString(t.mode[i], type);
    p.owner.textContent = `${t.uid[i]}:${t.gid[i]}`;
    p.size.textContent = type === 'file' ? humanSize(t.size[i]) : '';
    p.time.textContent = Number.isNaN(t.mtime[i]) ? '' : shortTime(new Date(t.mtime[i]).toISOString());
  }

  function columns() {
    return h('div.cols', { 'aria-hidden': 'true' },
      h('span', null, 'Change'), h('span'), h('span', null, 'Name'),
      h('span.mode', null, 'Mode'), h('span.owner', null, 'Owner'),
      h('span.num', null, 'Size'), h('span.time', null, 'Modified (UTC)'));
  }

  // ---- the directory view ----

  function dirView(dir) {
    const vabort = new AbortController();
    const signal = AbortSignal.any([abort.signal, vabort.signal]);
    const t = new EntryTable();
    let self = null; // the directory's own entry, when the layer changes it
    let after = null;
    let more = true;
    let loading = false;
    let scoped = null; // entries in /summary?prefix=<dir>&depth=1
    let counting = false;
    const dirInfo = h('span.dirinfo', { id: 'dir-info' });
    const status = h('div.status-line', { id: 'status' });
    const list = h('div', { id: 'rows', 'data-view': 'dir' });
    const up = h('button', {
      type: 'button', 'aria-label': 'Up one directory', title: 'Up (Backspace)', disabled: dir === '',
      onclick: () => goUp(),
    }, icon('up'));
    const parts = dir === '' ? [] : dir.split('/');
    const pathbar = h('nav.pathbar', { 'aria-label': 'Directory', id: 'pathbar' },
      h('a', { href: links.dir(''), 'data-nav': true }, '/'),
      ...parts.flatMap((name, k) => {
        const p = parts.slice(0, k + 1).join('/');
        return [k ? h('span.sep', null, '/') : null,
          k === parts.length - 1 ? h('span', null, name) : h('a', { href: links.dir(p), 'data-nav': true }, name)];
      }));
    listingEl.replaceChildren(
      h('div.toolbar', null, up, pathbar, h('span.grow'), dirInfo),
      columns(), list, status);
    const vl = new VList(list, {
      rowHeight: ROW_HEIGHT,
      label: `Entries of /${dir}`,
      create: makeRow,
      render: (row, i) => {
        fillRow(row, t, i, baseName);
        if (i >= t.n - 100) loadMore();
      },
      onOpen: (i) => open(t, i),
      onBack: () => goUp(),
    });

    function goUp() {
      if (dir !== '') nav.go(links.dir(dirName(dir)));
    }

    function drawStatus(problem) {
      const n = t.n;
      const children = scoped === null ? null : scoped - (self ? 1 : 0);
      const facts = [];
      if (children !== null) facts.push(`${count(children)} ${children === 1 ? 'entry' : 'entries'} here`);
      if (self) {
        facts.push(`this directory: ${self.change === 'add' ? 'added' : self.change === 'modify' ? 'modified' : 'deleted'}${self.opaque ? ', opaque' : ''}`);
      }
      dirInfo.textContent = facts.join(' · ');
      if (children !== null) dirInfo.dataset.counted = 'true';
      if (problem) {
        status.replaceChildren(problemBox(problem, { compact: true }));
        status.dataset.state = 'error';
        return;
      }
      status.dataset.state = loading ? 'loading' : more ? 'partial' : 'complete';
      status.replaceChildren(
        h('span.grow', null, loading
          ? `Loading… ${count(n)} so far`
          : more ? `${count(n)} loaded, more on scrolling` : n === 0 ? 'The layer changes nothing in this directory.' : `${count(n)} shown`));
    }

    async function loadMore() {
      if (loading || !more) return;
      loading = true;
      drawStatus();
      const q = new URLSearchParams({ depth: '1', limit: String(PAGE) });
      if (dir) q.set('prefix', dir);
      if (after !== null) q.set('after', after);
      let got = 0;
      try {
        await streamEntries(`${layerURL(id)}/entries?${q}`, (e) => {
          got++;
          after = e.path;
          if (e.path === dir) {
            self = e;
            return;
          }
          t.push(e);
          vl.setCount(t.n);
        }, signal);
        more = got === PAGE;
        loading = false;
        if (scoped === null && !counting) {
          counting = true;
          countLater();
        }
        firstRows();
        drawStatus();
        vl.refresh();
        selectFromURL();
      } catch (err) {
        if (signal.aborted) return;
        loading = false;
        more = false;
        drawStatus(err);
      }
    }

    function selectFromURL() {
      const e = params().get('entry');
      if (!e || dirName(e) !== dir) return;
      const i = t.paths.indexOf(e);
      if (i >= 0 && vl.selected !== i) vl.select(i);
    }

    // The count of the directory's entries: the summary of the same scope
    // counts the directory's own entry too, when the layer changes it.
    function countLater() {
      const q = new URLSearchParams({ depth: '1' });
      if (dir) q.set('prefix', dir);
      getJSON(`${layerURL(id)}/summary?${q}`, { signal }).then((s) => {
        scoped = s.entries;
        drawStatus();
      }).catch(() => {});
    }

    loadMore();
    drawStatus();
    list.focus({ preventScroll: true });
    return {
      kind: 'dir',
      dir,
      selectFromURL,
      focus: () => list.focus({ preventScroll: true }),
      destroy: () => {
        vabort.abort();
        vl.destroy();
      },
    };
  }

  // ---- the flat view ----

  function flatView(prefix) {
    const vabort = new AbortController();
    const signal = AbortSignal.any([abort.signal, vabort.signal]);
    const t = new EntryTable();
    let shown = new Uint32Array(1024); // indexes of t that pass the filter
    let nshown = 0;
    let state = 'streaming';
    let problem = null;
    let wanted = kindsFromURL();
    const status = h('div.status-line', { id: 'status' });
    const live = h('span.grow', { id: 'live-count', 'aria-live': 'polite' });
    const cancel = h('button', { type: 'button', id: 'cancel', onclick: () => stop() }, 'Cancel');
    const list = h('div', { id: 'rows', 'data-view': 'flat' });
    const boxes = CHANGES.map((c) => {
      const box = h('input', { type: 'checkbox', value: c, id: `kind-${c}` });
      box.checked = wanted.has(c);
      box.addEventListener('change', () => {
        const on = CHANGES.filter((k) => document.getElementById(`kind-${k}`).checked);
        nav.go(href({ change: on.length === 3 ? null : on.join(',') || 'none', entry: null }), { replace: true });
      });
      return h('label', null, box, h(`span.badge.${c}`, null, c));
    });
    const prefixBox = h('input', {
      type: 'text', id: 'prefix', placeholder: 'path prefix, e.g. usr/lib', 'aria-label': 'Path prefix',
      spellcheck: 'false', autocomplete: 'off',
    });
    prefixBox.value = prefix;
    let typing = 0;
    prefixBox.addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => nav.go(href({ prefix: prefixBox.value.trim().replace(/^\/+|\/+$/g, '') || null, entry: null }), { replace: true }), 400);
    });
    prefixBox.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        clearTimeout(typing);
        nav.go(href({ prefix: prefixBox.value.trim().replace(/^\/+|\/+$/g, '') || null, entry: null }), { replace: true });
      }
    });
    listingEl.replaceChildren(
      h('div.toolbar.filters', null, ...boxes, prefixBox),
      columns(), list, status);
    status.append(live, cancel);
    const vl = new VList(list, {
      rowHeight: ROW_HEIGHT,
      label: 'All changes',
      create: makeRow,
      render: (row, k) => fillRow(row, t, shown[k], (p) => p),
      onOpen: (k) => open(t, shown[k]),
    });

    function kindsFromURL() {
      const v = params().get('change');
      if (v === null) return new Set(CHANGES);
      return new Set(v.split(',').filter((c) => CHANGES.includes(c)));
    }

    function keep(i) {
      if (nshown === shown.length) {
        const b = new Uint32Array(shown.length * 2);
        b.set(shown);
        shown = b;
      }
      shown[nshown++] = i;
    }

    function refilter() {
      wanted = kindsFromURL();
      for (const c of CHANGES) document.getElementById(`kind-${c}`).checked = wanted.has(c);
      nshown = 0;
      for (let i = 0; i < t.n; i++) if (wanted.has(CHANGES[t.change[i]])) keep(i);
      vl.selected = -1;
      vl.setCount(nshown);
      vl.refresh();
      drawStatus();
    }

    let frame = 0;
    function drawStatus() {
      frame = 0;
      const total = summary && !prefix ? summary.entries : null;
      const filtered = nshown !== t.n ? ` (${count(nshown)} shown)` : '';
      status.dataset.state = state;
      cancel.hidden = state !== 'streaming';
      if (problem) {
        live.replaceChildren(problemBox(problem, { compact: true }));
        return;
      }
      live.textContent = state === 'streaming'
        ? `${count(t.n)}${total !== null ? ` of ${count(total)}` : ''} entries, streaming…${filtered}`
        : state === 'cancelled'
          ? `Cancelled after ${count(t.n)} entries${filtered}`
          : `${count(t.n)} ${t.n === 1 ? 'entry' : 'entries'}${prefix ? ` under ${prefix}` : ''}${filtered}`;
    }

    function stop() {
      if (state !== 'streaming') return;
      state = 'cancelled';
      vabort.abort();
      drawStatus();
    }

    function selectFromURL() {
      const e = params().get('entry');
      if (!e) return;
      const i = t.paths.indexOf(e);
      if (i < 0) return;
      for (let k = 0; k < nshown; k++) {
        if (shown[k] === i) {
          if (vl.selected !== k) vl.select(k);
          return;
        }
      }
    }

    const q = new URLSearchParams();
    if (prefix) q.set('prefix', prefix);
    streamEntries(`${layerURL(id)}/entries${prefix ? `?${q}` : ''}`, (e) => {
      if (t.n === 0) setTimeout(firstRows, 200);
      const i = t.push(e);
      if (wanted.has(e.change)) keep(i);
      vl.setCount(nshown);
      if (!frame) frame = requestAnimationFrame(drawStatus);
    }, signal).then(() => {
      firstRows();
      state = 'complete';
      vl.setCount(nshown);
      vl.refresh();
      drawStatus();
      selectFromURL();
    }).catch((err) => {
      if (signal.aborted) return;
      state = 'failed';
      problem = err;
      drawStatus();
    });
    drawStatus();
    list.focus({ preventScroll: true });
    return {
      kind: 'flat',
      prefix,
      refilter,
      drawStatus,
      selectFromURL,
      focus: () => list.focus({ preventScroll: true }),
      destroy: () => {
        clearTimeout(typing);
        vabort.abort();
        vl.destroy();
        cancelAnimationFrame(frame);
      },
    };
  }

  // Enter on a row: into a directory, else the entry's panel.
  function open(t, i) {
    const path = t.paths[i];
    if (TYPES[t.type[i]] === 'dir' && CHANGES[t.change[i]] !== 'delete' && viewOf(params()) === 'dir')
      nav.go(links.dir(path));
    else nav.go(href({ entry: path }));
  }

  // ---- the panel ----

  function drawPanel() {
    const entry = params().get('entry');
    if (panelAbort) panelAbort.abort();
    panelAbort = null;
    if (!entry) {
      panel.hidden = true;
      panel.replaceChildren();
      delete panel.dataset.path;
      return;
    }
    if (panel.dataset.path === entry && !panel.hidden) return;
    panel.hidden = false;
    panelAbort = new AbortController();
    renderPanel(panel, id, entry, {
      links,
      signal: AbortSignal.any([abort.signal, panelAbort.signal]),
      onClose: () => {
        nav.go(href({ entry: null }));
        if (listing) listing.focus();
      },
    });
  }

  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') nav.go(href({ entry: null }));
  });

  // ---- putting it together ----

  function update() {
    if (failed) return;
    const p = params();
    const v = viewOf(p);
    drawTabs();
    if (v === 'dir') {
      const dir = (p.get('path') || '').replace(/^\/+|\/+$/g, '');
      if (!listing || listing.kind !== 'dir' || listing.dir !== dir) {
        if (listing) listing.destroy();
        listing = dirView(dir);
      } else {
        listing.selectFromURL();
      }
    } else {
      const prefix = (p.get('prefix') || '').replace(/^\/+|\/+$/g, '');
      if (!listing || listing.kind !== 'flat' || listing.prefix !== prefix) {
        if (listing) listing.destroy();
        listing = flatView(prefix);
      } else {
        listing.refilter();
        listing.selectFromURL();
      }
    }
    drawPanel();
  }

  // The listing starts at once, beside the layer's facts: a layer that
  // turns out not to exist replaces the whole view with its problem.
  // The counts (/summary walks the whole layer) are asked for once the
  // listing has its first rows, so that they do not compete with them.
  let failed = false;
  let firstRows = null;
  const rowsIn = new Promise((resolve) => { firstRows = resolve; });
  const notLater = setTimeout(() => firstRows(), 1500); // however the listing fares
  update();
  getJSON(layerURL(id), { signal: abort.signal }).then(async (l) => {
    info = l;
    drawHead();
    root.dataset.ready = 'true';
    await rowsIn;
    const s = await getJSON(`${layerURL(id)}/summary`, { signal: abort.signal });
    summary = s;
    drawHead();
    head.dataset.counted = 'true';
    if (listing && listing.kind === 'flat') listing.drawStatus();
  }).catch((err) => {
    if (abort.signal.aborted || info) return;
    failed = true;
    if (listing) listing.destroy();
    listing = null;
    root.replaceChildren(problemBox(err));
    root.dataset.ready = 'true';
  });

  return {
    update,
    destroy: () => {
      clearTimeout(notLater);
      abort.abort();
      if (listing) listing.destroy();
    },
  };
}
