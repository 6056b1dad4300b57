// The dashboard's entry point: a router over the page's own URL.
//
//   /ui/                         the layers (?q=filter&sort=created|-created|id|-id)
//   /ui/layers/<id>              a layer, its directory view (?path=usr/lib)
//   /ui/layers/<id>?view=flat    all its changes (&change=add,delete&prefix=usr)
//   ...&entry=<path>             with the entry panel open on that entry
//
// Every view is a URL: links and moves push history entries, filters
// replace the current one, and back/forward/reload render the URL again.
// The server answers every /ui/... path with this page.

import { renderLayers } from './layers.js';
import { renderLayer } from './layer.js';

const view = document.getElementById('view');
const crumbs = document.getElementById('crumbs');
let current = null; // the view in place: {key, update(url), destroy()}

function parse(url) {
  const path = url.pathname.replace(/^\/ui\/?/, '');
  const m = /^layers\/([^/]+)\/?$/.exec(path);
  if (m) {
    let id;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      id = m[1];
    }
    return { name: 'layer', id, key: `layer:${id}` };
  }
  return { name: 'layers', key: 'layers' };
}

const nav = {
  // Go to a URL of the page: a new history entry, or the current one
  // replaced (filters typed in a box).
  go(href, { replace = false } = {}) {
    const url = new URL(href, location.href);
    if (url.href === location.href) return;
    if (replace) history.replaceState(null, '', url);
    else history.pushState(null, '', url);
    render();
  },
  setCrumbs(nodes) {
    crumbs.replaceChildren(...nodes);
  },
};

function render() {
  const url = new URL(location.href);
  const route = parse(url);
  if (current && current.key === route.key) {
    current.update(url);
    return;
  }
  if (current) current.destroy();
  delete view.dataset.ready; // set again by the new view once it has data
  view.replaceChildren();
  crumbs.replaceChildren();
  current = route.name === 'layer'
    ? renderLayer(view, route.id, url, nav)
    : renderLayers(view, url, nav);
  current.key = route.key;
}

// Same-page links: <a data-nav href="/ui/..."> moves without a reload.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-nav]');
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  nav.go(a.href);
});

window.addEventListener('popstate', render);
render();
