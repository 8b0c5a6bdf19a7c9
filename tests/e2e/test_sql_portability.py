"""Every SQL statement must also run on PostgreSQL 15 (DESIGN.md section 7).

This is a lint over the C sources, not a proof: it joins the adjacent string
literals of each statement and flags the SQLite-only forms we have used or
are likely to use. The proof is test_pg_prepare.py, which creates every
module's schema on a throwaway PostgreSQL 15 and PREPAREs every statement
found here; this lint still runs where PostgreSQL is not installed.
"""
import pathlib
import re

import pytest

SRC = pathlib.Path(__file__).resolve().parents[2] / "src"

# (pattern, why) - matched case-insensitively against each joined literal.
SQLITE_ONLY = [
    (r"\bINSERT\s+OR\s+(REPLACE|IGNORE|ABORT|FAIL|ROLLBACK)\b",
     "use INSERT ... ON CONFLICT (...) DO UPDATE/NOTHING"),
    (r"^\s*REPLACE\s+INTO\b", "use INSERT ... ON CONFLICT"),
    (r"\?\d", "numbered ?N parameters are SQLite-only"),
    (r"[:@$][A-Za-z_]\w*", "named parameters differ between backends"),
    (r"\bAUTOINCREMENT\b", "SQLite-only"),
    (r"\bGLOB\b", "SQLite-only operator"),
    (r"\bifnull\s*\(", "use coalesce()"),
    (r"\bstrftime\s*\(|\bdatetime\s*\(", "SQLite date functions"),
    (r"\blast_insert_rowid\s*\(", "use RETURNING"),
    (r"\bBEGIN\s+(DEFERRED|EXCLUSIVE)\b", "SQLite transaction modes"),
]
STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH)\b",
                       re.I)


def statements(text):
    """Joined adjacent string literals that start like a SQL statement."""
    out = []
    pos = 0
    while True:
        m = STRING.search(text, pos)
        if not m:
            return out
        parts = [m.group(1)]
        line = text.count("\n", 0, m.start()) + 1
        end = m.end()
        while True:
            # A macro between literals ("SELECT " CERT_COLS " FROM")
            # stands for a column list or a fragment: keep a placeholder.
            n = re.match(r'\s*(?:"((?:[^"\\\n]|\\.)*)"|([A-Z][A-Z0-9_]+)\b)',
                         text[end:])
            if not n:
                break
            parts.append(n.group(1) if n.group(1) is not None else "x")
            end += n.end()
        pos = end
        joined = "".join(parts)
        if SQL_START.match(joined):
            out.append((line, joined))


def all_statements():
    found = []
    for path in sorted(SRC.rglob("*.c")):
        text = path.read_text()
        for line, sql in statements(text):
            found.append((f"{path.relative_to(SRC)}:{line}", sql))
    return found


def test_statements_found():
    # The lint must see the module SQL, or it would pass vacuously.
    where = {w.split(":")[0].split("/")[0] for w, _ in all_statements()}
    assert {"store", "kb", "authz", "peer"} <= where


@pytest.mark.parametrize("pattern,why", SQLITE_ONLY)
def test_no_sqlite_only_syntax(pattern, why):
    bad = [f"{w}: {sql}" for w, sql in all_statements()
           if re.search(pattern, sql, re.I)]
    assert not bad, f"{why}:\n" + "\n".join(bad)


def test_lint_catches_known_forms():
    # The patterns themselves must fire on the forms they are for.
    samples = {
        SQLITE_ONLY[0][0]: "INSERT OR REPLACE INTO t VALUES (?)",
        SQLITE_ONLY[2][0]: "SELECT * FROM t WHERE a = ?1",
        SQLITE_ONLY[8][0]: "SELECT last_insert_rowid()",
    }
    for pat, sql in samples.items():
        assert re.search(pat, sql, re.I)
    text = 'x = "INSERT OR REPLACE INTO "\n    "t VALUES (?)";'
    assert statements(text) == [(1, "INSERT OR REPLACE INTO t VALUES (?)")]
    text = '[Q] = "SELECT " COLS " FROM t WHERE "\n    "(?1 = 0)",'
    assert statements(text) == [(1, "SELECT x FROM t WHERE (?1 = 0)")]
