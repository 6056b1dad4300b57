// The layers of the store (GET /layers, every page), with a filter box and
// sorting by id or creation time, both kept in the URL (?q=, ?sort=).
// Each layer's digest comes from GET /layers/{id}, fetched a few at a time
// after the list is shown.

import { getJSON, layerURL, listLayers } from './api.js';
import { count, h, relativeTime } from './format.js';
import { problemBox } from './problem.js';

const SORTS = {
  id: (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  created: (a, b) => (a.created || '').localeCompare(b.created || '') || SORTS.id(a, b),
};
const DETAIL_CONCURRENCY = 4;

export function layerHref(id, params) {
  const text = params ? String(new URLSearchParams(params)) : '';
  const q = text ? `?${text}` : '';
  return `/ui/layers/${encodeURIComponent(id)}${q}`;
}

export function renderLayers(root, url, nav) {
  const abort = new AbortController();
  let layers = null;
  let problem = null;
  const details = new Map(); // id -> GET /layers/{id}, once known

  const filter = h('input', {
    type: 'search',
    placeholder: 'Filter by id, parent or kind',
    'aria-label': 'Filter layers',
    id: 'layer-filter',
  });
  const sortSel = h('select', { 'aria-label': 'Sort layers', id: 'layer-sort' },
    h('option', { value: '-created', text: 'Newest first' }),
    h('option', { value: 'created', text: 'Oldest first' }),
    h('option', { value: 'id', text: 'Id, A to Z' }),
    h('option', { value: '-id', text: 'Id, Z to A' }));
  const shown = h('span.count', { id: 'layer-count' });
  const body = h('tbody');
  const table = h('table.layers', { id: 'layers' },
    h('thead', null, h('tr', null,
      h('th', null, sortButton('id', 'Layer')),
      h('th', null, 'Kind'),
      h('th.narrow-hide', null, 'Parent'),
      h('th', null, sortButton('created', 'Created')),
      h('th.narrow-hide', null, 'Diff digest'))),
    body);
  const status = h('div');
  root.append(
    h('div.toolbar', null, h('h1', null, 'Layers'), h('span.grow'), shown),
    h('div.toolbar', null, filter, sortSel),
    status,
    h('div.card.table-wrap', null, table));

  function sortButton(key, label) {
    return h('button', {
      type: 'button',
      onclick: () => {
        const cur = state().sort;
        const next = cur === key ? `-${key}` : cur === `-${key}` ? key : key === 'created' ? '-created' : 'id';
        setParam('sort', next, false);
      },
    }, label, h('span', { 'data-sort': key }));
  }

  function state() {
    const u = new URL(location.href);
    const sort = u.searchParams.get('sort') || '-created';
    return { q: u.searchParams.get('q') || '', sort: sort.replace(/^-/, '') in SORTS ? sort : '-created' };
  }

  function setParam(name, value, replace) {
    const u = new URL(location.href);
    if (value) u.searchParams.set(name, value);
    else u.searchParams.delete(name);
    nav.go(u, { replace });
  }

  filter.addEventListener('input', () => setParam('q', filter.value.trim(), true));
  sortSel.addEventListener('change', () => setParam('sort', sortSel.value, false));

  function draw() {
    const { q, sort } = state();
    if (filter.value.trim() !== q) filter.value = q;
    sortSel.value = sort;
    for (const s of table.querySelectorAll('[data-sort]')) {
      const key = s.dataset.sort;
      s.textContent = sort === key ? ' ↑' : sort === `-${key}` ? ' ↓' : '';
    }
    if (problem) {
      status.replaceChildren(problemBox(problem));
      return;
    }
    if (!layers) {
      status.replaceChildren(h('p.loading', null, 'Loading layers…'));
      return;
    }
    status.replaceChildren();
    const needle = q.toLowerCase();
    const list = layers.filter((l) => !needle ||
      [l.id, l.parent, l.kind, l.store].some((v) => v && v.toLowerCase().includes(needle)));
    const cmp = SORTS[sort.replace(/^-/, '')];
    list.sort(sort.startsWith('-') ? (a, b) => cmp(b, a) : cmp);
    shown.textContent = list.length === layers.length
      ? `${count(layers.length)} layers`
      : `${count(list.length)} of ${count(layers.length)} layers`;
    body.replaceChildren(...list.map(row));
    if (list.length === 0)
      body.append(h('tr', null, h('td.empty', { colspan: '5' }, 'No layer matches the filter.')));
  }

  function row(l) {
    const d = details.get(l.id);
    const created = l.created
      ? [relativeTime(l.created), h('span.sub', { title: l.created }, l.created)]
      : h('span.sub', null, 'unknown');
    return h('tr', { 'data-id': l.id },
      h('td.id', null,
        h('a', { href: layerHref(l.id), 'data-nav': true }, l.id),
        l.mutable ? [' ', h('span.badge.mutable', null, 'mutable')] : null,
        l.error ? h('span.sub', null, l.error) : null,
        l.parent
          ? h('span.sub.only-narrow', null, 'on ', h('a', { href: layerHref(l.parent), 'data-nav': true }, l.parent))
          : null),
      h('td', null, l.kind ? h('span.badge.kind', null, l.kind) : '', l.store ? h('span.sub', null, l.store) : null),
      h('td.narrow-hide', null, l.parent
        ? h('a', { href: layerHref(l.parent), 'data-nav': true }, l.parent)
        : h('span.sub', null, 'base layer')),
      h('td', null, created),
      h('td.narrow-hide.digest', null, d && d.diff_digest ? d.diff_digest : h('span.sub', null, d ? 'not recorded' : '…')));
  }

  async function loadDetails() {
    const queue = layers.filter((l) => !l.error).map((l) => l.id);
    const worker = async () => {
      while (queue.length && !abort.signal.aborted) {
        const id = queue.shift();
        try {
          details.set(id, await getJSON(layerURL(id), { signal: abort.signal }));
        } catch (err) {
          if (abort.signal.aborted) return;
          details.set(id, {});
        }
      }
    };
    await Promise.all(Array.from({ length: DETAIL_CONCURRENCY }, worker));
    if (!abort.signal.aborted) {
      draw();
      root.dataset.ready = 'true';
    }
  }

  nav.setCrumbs([h('span', null, 'Layers')]);
  draw();
  listLayers(abort.signal).then((ls) => {
    layers = ls;
    draw();
    return loadDetails();
  }).catch((err) => {
    if (abort.signal.aborted) return;
    problem = err;
    draw();
  });

  return {
    update: draw,
    destroy: () => abort.abort(),
  };
}
