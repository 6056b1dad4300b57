// A virtualised list: rows of one fixed height, of which only those in
// view (plus a few above and below) exist in the DOM, recycled as the list
// scrolls. The rows' content comes from render(rowElement, index), so a
// list of 200,000 entries costs a few dozen elements.
//
// Browsers cap an element's height (Chromium near 33.5 million px), so
// past MAX_HEIGHT the scrollbar maps proportionally onto the rows instead
// of one pixel to one pixel.
//
// Keyboard: the list is focusable; Up/Down move the selection, PageUp/
// PageDown/Home/End jump, Enter calls onOpen(index), Backspace onBack().

const MAX_HEIGHT = 8_000_000;
const OVERSCAN = 8;

export class VList {
  constructor(container, { rowHeight, create, render, onSelect, onOpen, onBack, label }) {
    this.el = container;
    this.rowHeight = rowHeight;
    this.create = create;
    this.renderRow = render;
    this.onSelect = onSelect || (() => {});
    this.onOpen = onOpen || (() => {});
    this.onBack = onBack || (() => {});
    this.count = 0;
    this.selected = -1;
    this.pool = [];
    this.frame = 0;
    this.el.classList.add('vlist');
    this.el.tabIndex = 0;
    this.el.setAttribute('role', 'listbox');
    if (label) this.el.setAttribute('aria-label', label);
    this.spacer = document.createElement('div');
    this.spacer.className = 'spacer';
    this.el.append(this.spacer);
    this.el.addEventListener('scroll', () => this.schedule(), { passive: true });
    this.el.addEventListener('keydown', (e) => this.key(e));
    this.el.addEventListener('click', (e) => {
      const row = e.target.closest('.row');
      if (!row || !this.el.contains(row)) return;
      const i = Number(row.dataset.index);
      if (e.target.closest('a')) return; // links do their own thing
      this.select(i, false);
      if (e.detail >= 2) this.onOpen(i);
    });
    this.resizer = new ResizeObserver(() => this.schedule());
    this.resizer.observe(this.el);
  }

  destroy() {
    this.resizer.disconnect();
    cancelAnimationFrame(this.frame);
  }

  setCount(n) {
    if (n === this.count) return;
    this.count = n;
    if (this.selected >= n) this.selected = n - 1;
    this.spacer.style.height = `${Math.min(n * this.rowHeight, MAX_HEIGHT)}px`;
    this.schedule();
  }

  // Re-render the rows in view (their data changed).
  refresh() {
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  // Where the rows start: the index of the first row in view and its top.
  geometry() {
    const view = this.el.clientHeight;
    const total = this.count * this.rowHeight;
    const top = this.el.scrollTop;
    if (total <= MAX_HEIGHT) {
      const first = Math.floor(top / this.rowHeight);
      return { first, offset: first * this.rowHeight, view };
    }
    const room = Math.max(1, MAX_HEIGHT - view);
    const virtual = (top / room) * (total - view);
    const first = Math.floor(virtual / this.rowHeight);
    return { first, offset: top - (virtual - first * this.rowHeight), view };
  }

  draw() {
    const { first, offset, view } = this.geometry();
    const start = Math.max(0, first - OVERSCAN);
    const visible = Math.ceil(view / this.rowHeight) + 1;
    const end = Math.min(this.count, first + visible + OVERSCAN);
    const needed = Math.max(0, end - start);
    while (this.pool.length < needed) {
      const row = this.create();
      row.classList.add('row');
      row.setAttribute('role', 'option');
      this.pool.push(row);
      this.el.append(row);
    }
    for (let k = 0; k < this.pool.length; k++) {
      const row = this.pool[k];
      const i = start + k;
      if (k >= needed) {
        row.hidden = true;
        continue;
      }
      row.hidden = false;
      row.dataset.index = String(i);
      row.style.transform = `translateY(${offset + (i - first) * this.rowHeight}px)`;
      row.setAttribute('aria-selected', i === this.selected ? 'true' : 'false');
      this.renderRow(row, i);
    }
  }

  rowsInView() {
    return Math.max(1, Math.floor(this.el.clientHeight / this.rowHeight) - 1);
  }

  // Bring row i into view.
  reveal(i) {
    const total = this.count * this.rowHeight;
    if (total > MAX_HEIGHT) {
      const view = this.el.clientHeight;
      const room = MAX_HEIGHT - view;
      this.el.scrollTop = (i * this.rowHeight / Math.max(1, total - view)) * room;
      return;
    }
    const top = i * this.rowHeight;
    if (top < this.el.scrollTop) this.el.scrollTop = top;
    else if (top + this.rowHeight > this.el.scrollTop + this.el.clientHeight)
      this.el.scrollTop = top + this.rowHeight - this.el.clientHeight;
  }

  select(i, reveal = true) {
    if (this.count === 0) return;
    i = Math.max(0, Math.min(this.count - 1, i));
    this.selected = i;
    if (reveal) this.reveal(i);
    this.schedule();
    this.onSelect(i);
  }

  key(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const cur = this.selected;
    let next = null;
    switch (e.key) {
      case 'ArrowDown': next = cur < 0 ? 0 : cur + 1; break;
      case 'ArrowUp': next = cur < 0 ? 0 : cur - 1; break;
      case 'PageDown': next = cur + this.rowsInView(); break;
      case 'PageUp': next = cur - this.rowsInView(); break;
      case 'Home': next = 0; break;
      case 'End': next = this.count - 1; break;
      case 'Enter':
        if (cur >= 0) this.onOpen(cur);
        e.preventDefault();
        return;
      case 'Backspace':
        this.onBack();
        e.preventDefault();
        return;
      default:
        return;
    }
    e.preventDefault();
    this.select(next);
  }
}
