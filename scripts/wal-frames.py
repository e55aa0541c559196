#!/usr/bin/env python3
"""Which b-trees the journal's commits write: WAL frames per commit, by table and index.

Usage: wal-frames.py JOURNAL_COPY.db

JOURNAL_COPY.db is a copy of a running daemon's `journal.db` taken together with its
`journal.db-wal` (copied beside it as JOURNAL_COPY.db-wal): docs/benchmarks.md section 12.
The WAL is read directly (frame headers: page number, and the database size, which is
non-zero on a transaction's last frame); pages are named with SQLite's `dbstat` table on a
second copy, which opening recovers from the WAL. Only the frames of the WAL's current
generation (its header's salts) are counted.
"""
import collections
import shutil
import sqlite3
import struct
import sys
import tempfile


def main():
    db = sys.argv[1]
    wal = open(db + "-wal", "rb").read()
    _magic, _version, page_size, _seq, salt1, salt2, _c1, _c2 = struct.unpack(">8I", wal[:32])
    commits, current = [], []
    offset = 32
    while offset + 24 + page_size <= len(wal):
        page, db_size, s1, s2 = struct.unpack(">4I", wal[offset : offset + 16])
        if (s1, s2) != (salt1, salt2):
            break
        current.append(page)
        if db_size:
            commits.append(current)
            current = []
        offset += 24 + page_size
    if not commits:
        sys.exit("no committed frame in this WAL generation")

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(db, f"{tmp}/j.db")
        shutil.copy(db + "-wal", f"{tmp}/j.db-wal")
        con = sqlite3.connect(f"{tmp}/j.db")
        names = dict(con.execute("SELECT pageno, name FROM dbstat"))
        messages = con.execute("SELECT count(*) FROM messages").fetchone()[0]
        con.close()

    frames = sum(map(len, commits))
    per_tree = collections.Counter(names.get(p, "?") for c in commits for p in c)
    print(f"{len(commits)} commits, {frames} frames: {frames / len(commits):.1f} per commit "
          f"({messages} messages in the journal)")
    for name, n in per_tree.most_common():
        print(f"  {name:32s} {n / len(commits):6.2f} frames per commit")


if __name__ == "__main__":
    main()
