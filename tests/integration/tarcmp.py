#!/usr/bin/env python3
"""Compare layer tars by their entries, whatever their whiteout form.

    tarcmp.py tars TAR REF [--lower LOWER]...
        TAR (e.g. a layerd export) against REF (the engine's own tar of
        the same layer), given the tars of the layers below it, base
        first. The two must hold the same entries other than whiteouts,
        with the same type, mode (permission and setuid/setgid/sticky
        bits), uid, gid, mtime (seconds), size, content, link target,
        device numbers and SCHILY.xattr records (user and group names are
        not compared: Go fills them in, layerd leaves them empty). Their
        whiteouts may differ in form (one `.wh..wh..opq` marker against
        explicit `.wh.<name>` entries for what the lower layers held, and
        any header fields) but must delete the same lower paths: applied
        to the lower layers, both give the same set of paths. A directory
        entry that restates the lower layers' directory (type, mode, uid,
        gid, xattrs; its mtime may differ) may be in one tar only: the
        engines tar every directory of an overlay upper directory, while
        layerd, like continuity's double walk (sameFile), does not count a
        directory's mtime as a change. Such entries are listed as notes.

    tarcmp.py entries ENTRIES.ndjson REF [--lower LOWER]...
        `layerd entries` output against REF the same way: the non-delete
        entries are REF's non-whiteout members (type, mode, uid, gid, size,
        link target), and the deletions leave the same paths.

Exit status 0 when equal, 1 with one line per difference otherwise.
"""

import base64
import hashlib
import json
import stat
import sys
import tarfile

MAX_REPORT = 60
OPAQUE = ".wh..wh..opq"
WH = ".wh."

TYPES = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


def norm(name):
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def split(path):
    i = path.rfind("/")
    return (path[:i], path[i + 1 :]) if i >= 0 else ("", path)


class Layer:
    """The members of one layer tar: regular entries and deletions."""

    def __init__(self, path, rep):
        self.entries = {}  # path -> metadata
        self.deleted = set()  # paths named by .wh.<name>
        self.opaque = set()  # directories marked opaque
        with tarfile.open(
            path, "r:", encoding="utf-8", errors="surrogateescape"
        ) as t:
            for m in t:
                p = norm(m.name)
                d, base = split(p)
                if base == OPAQUE:
                    self.opaque.add(d)
                    continue
                if base.startswith(WH):
                    self.deleted.add((d + "/" if d else "") + base[len(WH) :])
                    continue
                if p in self.entries:
                    rep.add("%s: %s twice in %s" % (path, p, path))
                self.entries[p] = self.meta(t, m)

    @staticmethod
    def meta(t, m):
        kind = TYPES.get(m.type, "other:%r" % m.type)
        md = {
            "type": kind,
            "mode": oct(stat.S_IMODE(m.mode)),
            "uid": m.uid,
            "gid": m.gid,
            "mtime": int(m.mtime),
        }
        if kind == "file":
            h = hashlib.sha256()
            f = t.extractfile(m)
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
            md["size"] = m.size
            md["sha256"] = h.hexdigest()
        elif kind in ("symlink", "hardlink"):
            md["link"] = norm(m.linkname) if kind == "hardlink" else m.linkname
        elif kind in ("char", "block"):
            md["rdev"] = "%d:%d" % (m.devmajor, m.devminor)
        for k, v in sorted(m.pax_headers.items()):
            if k.startswith("SCHILY.xattr."):
                md["xattr:" + k[13:]] = v
        return md


def below(tree, d):
    pre = d + "/" if d else ""
    return [p for p in tree if p.startswith(pre) and p != d]


def apply(tree, entries, deleted, opaque):
    """The tree (path -> metadata) after a layer: the lower paths minus
    what it deletes, plus its entries (OCI image-spec layer.md: whiteouts
    apply to the lower layers only)."""
    out = dict(tree)
    for d in opaque:
        for p in below(out, d):
            del out[p]
    for p in deleted:
        for q in below(out, p) + [p]:
            out.pop(q, None)
    for p, md in entries.items():
        if md["type"] != "dir" and p in out:
            for q in below(out, p):
                del out[q]
        out[p] = md
        d = split(p)[0]
        while d and d not in out:
            out[d] = {"type": "dir"}
            d = split(d)[0]
    return out


def lower_tree(paths, rep):
    tree = {}
    for p in paths:
        lay = Layer(p, rep)
        tree = apply(tree, lay.entries, lay.deleted, lay.opaque)
    return tree


def drop_noop_dirs(entries, tree, label, notes):
    """entries without the directories that equal the lower tree's but for
    their mtime."""

    def bare(md):
        return {k: v for k, v in md.items() if k != "mtime"}

    out = {}
    for p, md in entries.items():
        low = tree.get(p)
        if md["type"] == "dir" and low is not None and bare(low) == bare(md):
            notes.append(
                "%r: unchanged directory%s, only in %s"
                % (p, "" if low == md else " (but for its mtime)", label)
            )
            continue
        out[p] = md
    return out


class Report:
    def __init__(self):
        self.diffs = []

    def add(self, msg):
        self.diffs.append(msg)

    def finish(self, what, n):
        if not self.diffs:
            print("tarcmp: %s: %d entries equal" % (what, n))
            return 0
        for d in self.diffs[:MAX_REPORT]:
            print("tarcmp: %s" % d)
        if len(self.diffs) > MAX_REPORT:
            print("tarcmp: ... %d more" % (len(self.diffs) - MAX_REPORT))
        print("tarcmp: %s: %d differences" % (what, len(self.diffs)))
        return 1


def compare(rep, a, b, la, lb, keys=None):
    for p in sorted(set(a) | set(b)):
        if p not in b:
            rep.add("%r: only in %s" % (p, la))
            continue
        if p not in a:
            rep.add("%r: only in %s" % (p, lb))
            continue
        for k in sorted(set(a[p]) | set(b[p])):
            if keys is not None and k not in keys:
                continue
            if a[p].get(k) != b[p].get(k):
                rep.add("%r: %s: %s %r, %s %r" % (p, k, la, a[p].get(k), lb, b[p].get(k)))


def compare_visible(rep, va, vb, la, lb):
    for p in sorted(set(va) - set(vb)):
        rep.add("%r: left by %s, deleted by %s" % (p, la, lb))
    for p in sorted(set(vb) - set(va)):
        rep.add("%r: deleted by %s, left by %s" % (p, la, lb))


def parse_lower(args):
    lower, rest = [], []
    i = 0
    while i < len(args):
        if args[i] == "--lower" and i + 1 < len(args):
            lower.append(args[i + 1])
            i += 2
        else:
            rest.append(args[i])
            i += 1
    return rest, lower


def without_common_noops(a, b, tree, la, lb):
    """a and b without the unchanged directories that only one holds."""
    notes = []
    a2 = drop_noop_dirs({p: m for p, m in a.items() if p not in b}, tree, la, notes)
    b2 = drop_noop_dirs({p: m for p, m in b.items() if p not in a}, tree, lb, notes)
    a2.update({p: m for p, m in a.items() if p in b})
    b2.update({p: m for p, m in b.items() if p in a})
    for n in notes:
        print("tarcmp: note: %s" % n)
    return a2, b2


def cmd_tars(args):
    (tar, ref), lower = parse_lower(args)
    rep = Report()
    tree = lower_tree(lower, rep)
    a, b = Layer(tar, rep), Layer(ref, rep)
    ea, eb = without_common_noops(a.entries, b.entries, tree, tar, ref)
    compare(rep, ea, eb, tar, ref)
    compare_visible(
        rep,
        apply(tree, ea, a.deleted, a.opaque),
        apply(tree, eb, b.deleted, b.opaque),
        tar,
        ref,
    )
    return rep.finish("%s vs %s" % (tar, ref), len(eb))


def entry_path(e, key):
    if key + "_b64" in e:
        return base64.b64decode(e[key + "_b64"]).decode("utf-8", "surrogateescape")
    return e.get(key)


def cmd_entries(args):
    (ndjson, ref), lower = parse_lower(args)
    rep = Report()
    tree = lower_tree(lower, rep)
    b = Layer(ref, rep)
    entries, deleted = {}, set()
    with open(ndjson, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            p = entry_path(e, "path")
            if e["change"] == "delete":
                deleted.add(p)
                continue
            md = {
                "type": e["type"],
                "mode": oct(e["mode"]),
                "uid": e["uid"],
                "gid": e["gid"],
            }
            if e["type"] == "file":
                md["size"] = e["size"]
            if e["type"] in ("symlink", "hardlink"):
                md["link"] = entry_path(e, "link_target")
            entries[p] = md
    keys = {"type", "mode", "uid", "gid", "size", "link"}
    tree_k = {p: {k: v for k, v in m.items() if k in keys} for p, m in tree.items()}
    ref_k = {p: {k: v for k, v in m.items() if k in keys} for p, m in b.entries.items()}
    ea, eb = without_common_noops(entries, ref_k, tree_k, ndjson, ref)
    compare(rep, ea, eb, ndjson, ref)
    compare_visible(
        rep,
        apply(tree_k, ea, deleted, set()),
        apply(tree_k, eb, b.deleted, b.opaque),
        ndjson,
        ref,
    )
    return rep.finish("%s vs %s" % (ndjson, ref), len(eb))


def main(argv):
    if len(argv) >= 3 and argv[0] == "tars":
        return cmd_tars(argv[1:])
    if len(argv) >= 3 and argv[0] == "entries":
        return cmd_entries(argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
