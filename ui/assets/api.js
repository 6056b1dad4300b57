// Talking to layerd's API (openapi.yaml): every request of the page goes
// through apiFetch(), which
// - sends `Authorization: Bearer <token>` once the page has a token,
// - on a 401 without a token, asks for one once (a dialog shared by all
//   requests waiting at that moment), keeps it in sessionStorage and
//   retries the request,
// - turns every error answer into a ProblemError carrying the RFC 9457
//   problem's title, detail and trace id (or the traceparent's).
// Downloads go through the same function (fetch + Blob), so they carry the
// token too.

const TOKEN_KEY = 'layerd.token';

let tokenPrompt = null; // the dialog's promise while it is open

export function currentToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function forgetToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: nothing kept */
  }
}

function keepToken(token) {
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    /* storage disabled: this page's requests still send it */
  }
}

// Ask for a token with the page's dialog; resolves to the token or null.
function askToken() {
  if (tokenPrompt) return tokenPrompt;
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  tokenPrompt = new Promise((resolve) => {
    input.value = '';
    const done = () => {
      dialog.removeEventListener('close', done);
      const token = dialog.returnValue === 'ok' ? input.value.trim() : '';
      tokenPrompt = null;
      resolve(token || null);
    };
    dialog.addEventListener('close', done);
    dialog.showModal();
    input.focus();
  });
  return tokenPrompt;
}

// The trace id of a response: from its traceparent header.
export function traceIdOf(res) {
  const tp = res && res.headers.get('traceparent');
  const m = tp && /^00-([0-9a-f]{32})-/.exec(tp);
  return m ? m[1] : '';
}

export class ProblemError extends Error {
  constructor(p) {
    super(p.title || 'Error');
    this.name = 'ProblemError';
    this.status = p.status || 0;
    this.title = p.title || 'Error';
    this.detail = p.detail || '';
    this.traceId = p.trace_id || '';
    this.type = p.type || 'about:blank';
    this.instance = p.instance || '';
  }

  static async from(res) {
    let body = null;
    const ctype = res.headers.get('content-type') || '';
    if (/json/.test(ctype)) {
      try {
        body = await res.json();
      } catch {
        body = null;
      }
    }
    return new ProblemError({
      status: res.status,
      title: (body && body.title) || `${res.status} ${res.statusText || 'Error'}`.trim(),
      detail: (body && body.detail) || '',
      trace_id: (body && body.trace_id) || traceIdOf(res),
      type: body && body.type,
      instance: (body && body.instance) || new URL(res.url).pathname,
    });
  }
}

// A failure that is not an HTTP answer (the connection, a cut stream).
export function transportProblem(err, what, traceId = '') {
  if (err instanceof ProblemError) return err;
  return new ProblemError({
    status: 0,
    title: `${what} failed`,
    detail: err && err.message ? err.message : String(err),
    trace_id: traceId,
  });
}

// fetch() with the token, the 401 dialog and problems as exceptions.
export async function apiFetch(url, options = {}) {
  const headers = new Headers(options.headers || {});
  const token = currentToken();
  if (token) headers.set('Authorization', `Bearer ${token}`);
  const res = await fetch(url, { ...options, headers, credentials: 'same-origin' });
  if (res.status === 401 && !token && !options.noPrompt) {
    const t = await askToken();
    if (t) {
      keepToken(t);
      return apiFetch(url, { ...options, noPrompt: true });
    }
  }
  if (!res.ok) throw await ProblemError.from(res);
  return res;
}

export async function getJSON(url, options = {}) {
  const res = await apiFetch(url, {
    ...options,
    headers: { Accept: 'application/json', ...(options.headers || {}) },
  });
  return res.json();
}

// Percent-encode an entry path for a URL, keeping its '/'.
export function encodePath(path) {
  return path.split('/').map(encodeURIComponent).join('/');
}

export function layerURL(id) {
  return `/layers/${encodeURIComponent(id)}`;
}

// Every layer, following the list's cursor.
export async function listLayers(signal) {
  const all = [];
  let after = null;
  for (let page = 0; page < 1000; page++) {
    const q = new URLSearchParams({ limit: '1000' });
    if (after) q.set('after', after);
    const doc = await getJSON(`/layers?${q}`, { signal });
    all.push(...doc.layers);
    if (!doc.next) break;
    after = doc.next;
  }
  return all;
}

// Stream NDJSON entries: onEntry(obj) for each line as it arrives. Resolves
// to the number of entries when the stream ends cleanly; a cut stream (the
// server signals a failure by ending it without its last chunk) rejects
// with a problem carrying the response's trace id.
export async function streamEntries(url, onEntry, signal) {
  const res = await apiFetch(url, { signal, headers: { Accept: 'application/x-ndjson' } });
  const traceId = traceIdOf(res);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let rest = '';
  let n = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const text = rest + decoder.decode(value, { stream: true });
      let start = 0;
      for (;;) {
        const nl = text.indexOf('\n', start);
        if (nl < 0) break;
        if (nl > start) {
          onEntry(JSON.parse(text.slice(start, nl)));
          n++;
        }
        start = nl + 1;
      }
      rest = text.slice(start);
    }
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw transportProblem(err, 'Reading the entries', traceId);
  }
  if (rest.trim() !== '') throw transportProblem(new Error('the stream ended inside an entry'), 'Reading the entries', traceId);
  return n;
}

// Download url as a file named name (fetch + Blob, so the token goes too).
// Resolves to {size, digest}: the bytes' SHA-256 ("sha256:<hex>"), when the
// browser can compute it (a secure context).
export async function download(url, name) {
  const res = await apiFetch(url);
  const blob = await res.blob();
  let digest = '';
  if (globalThis.crypto && crypto.subtle) {
    const sum = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
    digest = 'sha256:' + [...new Uint8Array(sum)].map((b) => b.toString(16).padStart(2, '0')).join('');
  }
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60000);
  return { size: blob.size, digest };
}
