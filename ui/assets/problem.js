// Problems (RFC 9457) as the page shows them: title, detail, status and the
// trace id an operator finds in the server's logs. A 401 offers to send
// another token.

import { forgetToken } from './api.js';
import { h } from './format.js';

export function problemBox(err, { compact = false } = {}) {
  const p = err && err.title ? err : { title: 'Error', detail: String(err && err.message ? err.message : err) };
  const facts = [];
  if (p.status) facts.push(h('dt', null, 'Status'), h('dd', null, String(p.status)));
  if (p.instance) facts.push(h('dt', null, 'Request'), h('dd', null, p.instance));
  facts.push(h('dt', null, 'Trace id'), h('dd.trace-id', null, p.traceId || 'none'));
  const box = h('div.problem', { role: 'alert', 'data-status': p.status ? String(p.status) : '0' },
    h('h2', null, p.title),
    p.detail ? h('p.detail', null, p.detail) : null,
    compact ? null : h('dl', null, facts));
  if (compact && p.traceId) box.append(h('p', null, 'Trace id ', h('code.trace-id', null, p.traceId)));
  if (p.status === 401) {
    box.append(h('div.actions', null, h('button', {
      type: 'button',
      onclick: () => {
        forgetToken();
        location.reload();
      },
    }, 'Use another token')));
  }
  return box;
}
