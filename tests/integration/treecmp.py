#!/usr/bin/env python3
"""Compare file trees for the export integration tests.

    treecmp.py trees A B [--xattr NAME]...
        Two trees (e.g. a GNU tar and a bsdtar extraction of one export)
        must hold the same paths with the same type, mode (permission and
        setuid/setgid/sticky bits), uid, gid, mtime (seconds), size and
        content, symlink target, device numbers, hard link grouping (which
        paths share an inode within the tree) and xattrs NAME (default
        security.capability). The roots themselves are not compared.

    treecmp.py entries ENTRIES.ndjson TREE [--no-mtime] [--xattr NAME]...
        TREE, an extraction of an export, against the `layerd entries`
        output for the same layer: every non-delete entry exists with the
        entry's type, mode, uid, gid, mtime (seconds), size, link target,
        device numbers and xattrs NAME; a "hardlink" entry shares its
        target's inode; every delete entry is a `.wh.<name>` regular file
        of size 0, mode 0, uid/gid 0, mtime 0; and TREE holds nothing else.

    treecmp.py merged ROOTFS LAYER... [--xattr NAME]...
        ROOTFS (e.g. umoci's unpacked bundle) against the union of diff
        layer directories LAYER (base first) merged the overlayfs way:
        a char device 0/0, or an empty file with trusted.overlay.whiteout
        or user.overlay.whiteout, deletes the path below; a directory with
        trusted.overlay.opaque or user.overlay.opaque equal to "y" (not
        "x") hides everything below it; otherwise upper replaces lower.

Exit status 0 when equal, 1 with one line per difference otherwise.
The kernel's overlayfs is not used for `merged`: one mount honours either
the trusted.* or the user.* xattrs (userxattr), and the demo layers mix
both forms.
"""

import base64
import hashlib
import json
import os
import stat
import sys
from datetime import datetime, timezone

MAX_REPORT = 60
WHITEOUT_XATTRS = ("trusted.overlay.whiteout", "user.overlay.whiteout")
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


def ftype(mode):
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISCHR, "char"),
        (stat.S_ISBLK, "block"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "unknown"


def getxattr(path, name):
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def meta_of(path, xattrs):
    """The compared metadata of one path (lstat, never followed)."""
    st = os.lstat(path)
    t = ftype(st.st_mode)
    m = {
        "type": t,
        "mode": oct(stat.S_IMODE(st.st_mode)),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime": st.st_mtime_ns // 1_000_000_000,
    }
    if t == "file":
        m["size"] = st.st_size
        m["sha256"] = file_digest(path)
    elif t == "symlink":
        m["target"] = os.fsdecode(os.readlink(path))
    elif t in ("char", "block"):
        m["rdev"] = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    for name in xattrs:
        v = getxattr(path, name)
        if v is not None:
            m["xattr:" + name] = base64.b64encode(v).decode()
    return m, (st.st_dev, st.st_ino)


def walk(root):
    """Relative paths below root (root excluded), parents first, sorted."""
    out = []

    def rec(rel):
        d = os.path.join(root, rel) if rel else root
        for name in sorted(os.listdir(d)):
            p = rel + "/" + name if rel else name
            out.append(p)
            if stat.S_ISDIR(os.lstat(os.path.join(root, p)).st_mode):
                rec(p)

    rec("")
    return out


def link_groups(idents):
    """path -> sorted tuple of the paths sharing its identity (non-dirs
    with more than one name in the tree only)."""
    by_id = {}
    for p, ident in idents.items():
        if ident is not None:
            by_id.setdefault(ident, []).append(p)
    groups = {}
    for paths in by_id.values():
        if len(paths) > 1:
            g = tuple(sorted(paths))
            for p in paths:
                groups[p] = g
    return groups


def scan(root, xattrs):
    metas, idents = {}, {}
    for p in walk(root):
        m, ident = meta_of(os.path.join(root, p), xattrs)
        metas[p] = m
        idents[p] = ident if m["type"] != "dir" else None
    return metas, link_groups(idents)


class Report:
    def __init__(self):
        self.diffs = []

    def add(self, msg):
        self.diffs.append(msg)

    def finish(self, what, n):
        if not self.diffs:
            print("treecmp: %s: %d paths equal" % (what, n))
            return 0
        for d in self.diffs[:MAX_REPORT]:
            print("treecmp: %s" % d)
        if len(self.diffs) > MAX_REPORT:
            print("treecmp: ... %d more" % (len(self.diffs) - MAX_REPORT))
        print("treecmp: %s: %d differences" % (what, len(self.diffs)))
        return 1


def compare_scans(rep, a, b, la, lb):
    (ma, ga), (mb, gb) = a, b
    for p in sorted(set(ma) | set(mb)):
        if p not in mb:
            rep.add("%s: only in %s" % (p, la))
            continue
        if p not in ma:
            rep.add("%s: only in %s" % (p, lb))
            continue
        for k in sorted(set(ma[p]) | set(mb[p])):
            va, vb = ma[p].get(k), mb[p].get(k)
            if va != vb:
                rep.add("%s: %s: %s %r, %s %r" % (p, k, la, va, lb, vb))
        if ga.get(p) != gb.get(p):
            rep.add(
                "%s: hard links: %s %r, %s %r" % (p, la, ga.get(p), lb, gb.get(p))
            )
    return len(set(ma) | set(mb))


def cmd_trees(args, xattrs):
    a, b = args
    rep = Report()
    n = compare_scans(rep, scan(a, xattrs), scan(b, xattrs), a, b)
    return rep.finish("trees", n)


def rfc3339_seconds(s):
    # "2023-11-14T22:13:20.123456789Z": seconds, truncated
    base = s.split(".")[0].rstrip("Z")
    dt = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def entry_path(e, key="path"):
    if key + "_b64" in e:
        return os.fsdecode(base64.b64decode(e[key + "_b64"]))
    return e[key]


def cmd_entries(args, xattrs, check_mtime):
    ndjson, root = args
    rep = Report()
    with open(ndjson, encoding="utf-8") as f:
        entries = [json.loads(line) for line in f if line.strip()]
    metas, groups = scan(root, xattrs)
    expected = set()
    for e in entries:
        p = entry_path(e)
        if e.get("change") == "delete":
            d, base = os.path.split(p)
            w = os.path.join(d, ".wh." + base) if d else ".wh." + base
            expected.add(w)
            m = metas.get(w)
            if m is None:
                rep.add("%s: tombstone %s missing" % (p, w))
                continue
            want = {"type": "file", "mode": "0o0", "uid": 0, "gid": 0,
                    "mtime": 0, "size": 0}
            for k, v in want.items():
                if m.get(k) != v:
                    rep.add("%s: %s: want %r, got %r" % (w, k, v, m.get(k)))
            continue
        expected.add(p)
        m = metas.get(p)
        if m is None:
            rep.add("%s: missing from the tree" % p)
            continue
        t = e["type"]
        want = {
            "type": "file" if t == "hardlink" else t,
            "mode": oct(e["mode"]),
            "uid": e["uid"],
            "gid": e["gid"],
        }
        if check_mtime and t != "hardlink":
            want["mtime"] = rfc3339_seconds(e["mtime"])
        if t == "file":
            want["size"] = e["size"]
        if t == "symlink":
            want["target"] = entry_path(e, "link_target")
        if t in ("char", "block"):
            want["rdev"] = e["rdev"]
        for k, v in want.items():
            if m.get(k) != v:
                rep.add("%s: %s: entry %r, tree %r" % (p, k, v, m.get(k)))
        if t == "hardlink":
            target = entry_path(e, "link_target")
            if p not in groups.get(target, ()):
                rep.add("%s: not a hard link of %s in the tree" % (p, target))
        if t != "hardlink":
            ex = e.get("xattrs", {})
            for name in xattrs:
                want_x = ex.get(name)
                got_x = m.get("xattr:" + name)
                if want_x != got_x:
                    rep.add("%s: xattr %s: entry %r, tree %r"
                            % (p, name, want_x, got_x))
    for p in sorted(set(metas) - expected):
        rep.add("%s: in the tree but not in the entries" % p)
    return rep.finish("entries", len(entries))


def is_whiteout(path, st):
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        return any(getxattr(path, x) is not None for x in WHITEOUT_XATTRS)
    return False


def is_opaque(path):
    return any(getxattr(path, x) == b"y" for x in OPAQUE_XATTRS)


def overlay_merge(layers):
    """path -> (layer index, absolute path), overlayfs semantics."""
    merged = {}

    def drop(p, with_self):
        prefix = p + "/"
        for q in [q for q in merged if q.startswith(prefix)]:
            del merged[q]
        if with_self:
            merged.pop(p, None)

    for i, root in enumerate(layers):
        for p in walk(root):
            full = os.path.join(root, p)
            st = os.lstat(full)
            # a path below a directory that an upper entry of this layer
            # replaced is handled by walking parents first
            if is_whiteout(full, st):
                drop(p, True)
                continue
            if stat.S_ISDIR(st.st_mode):
                prev = merged.get(p)
                if prev is not None and not stat.S_ISDIR(os.lstat(prev[1]).st_mode):
                    drop(p, True)
                if is_opaque(full):
                    drop(p, False)
            else:
                drop(p, True)
            merged[p] = (i, full)
    return merged


def cmd_merged(args, xattrs):
    rootfs, layers = args[0], args[1:]
    rep = Report()
    merged = overlay_merge(layers)
    metas, idents = {}, {}
    for p, (i, full) in merged.items():
        m, (_, ino) = meta_of(full, xattrs)
        metas[p] = m
        idents[p] = (i, ino) if m["type"] != "dir" else None
    want = (metas, link_groups(idents))
    n = compare_scans(rep, want, scan(rootfs, xattrs), "merged layers", rootfs)
    return rep.finish("merged", n)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, rest = argv[1], argv[2:]
    xattrs, args, check_mtime = [], [], True
    i = 0
    while i < len(rest):
        if rest[i] == "--xattr" and i + 1 < len(rest):
            xattrs.append(rest[i + 1])
            i += 2
        elif rest[i] == "--no-mtime":
            check_mtime = False
            i += 1
        else:
            args.append(rest[i])
            i += 1
    if not xattrs:
        xattrs = ["security.capability"]
    if cmd == "trees" and len(args) == 2:
        return cmd_trees(args, xattrs)
    if cmd == "entries" and len(args) == 2:
        return cmd_entries(args, xattrs, check_mtime)
    if cmd == "merged" and len(args) >= 2:
        return cmd_merged(args, xattrs)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
