"""Tests of the guided demo (valori_store.demo, ``make demo``).

The demo's printed facts are parsed back and checked against an independent
recomputation (an in-memory store built from the corpus, the kept store on disk,
``verify``), not just against the demo's own claims.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import valori_store
from valori_store import ValoriStore, verify
from valori_store import demo
from valori_store.corpus import load_corpus
from valori_store.embedder import HashingEmbedder

HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
ROW = re.compile(r"^\s+(\d+)\s+(\S+)\s+(-?\d+\.\d{6})\s+(-?\d+)\s+(.*)$")
QUERY = re.compile(r"^\s+query (\d+): ('.*')\s+filter: (.*)$")
SUMMARY_ROW = re.compile(r"^\s+(\w+)\s+([0-9a-f]{16})\s+(yes|no)$")


@dataclass
class Query:
    text: str
    filter: dict | None
    rows: list[tuple[int, str, str, int, str]] = field(default_factory=list)


@dataclass
class Parsed:
    store_path: str
    sections: dict[str, list[str]]
    queries: list[Query]
    summary: dict[str, tuple[str, bool]]

    def hashes(self, section: str) -> list[str]:
        return [h for line in self.sections[section] for h in HEX64.findall(line)]

    def line(self, section: str, startswith: str) -> str:
        found = [ln.strip() for ln in self.sections[section] if ln.strip().startswith(startswith)]
        assert len(found) == 1, (section, startswith, self.sections[section])
        return found[0]


def parse(out: str) -> Parsed:
    lines = out.splitlines()
    store_lines = [ln for ln in lines if ln.startswith("store directory: ")]
    assert len(store_lines) == 1, out
    sections: dict[str, list[str]] = {}
    current = None
    queries: list[Query] = []
    summary: dict[str, tuple[str, bool]] = {}
    for ln in lines:
        m = re.match(r"^(\d)\. ", ln)
        if m:
            current = m.group(1)
            sections[current] = []
            continue
        if ln == "Summary":
            current = "summary"
            sections[current] = []
            continue
        if current is None or ln.startswith("#"):
            continue
        sections[current].append(ln)
        if current == "2":
            qm = QUERY.match(ln)
            if qm:
                assert int(qm.group(1)) == len(queries) + 1
                flt = qm.group(3).strip()
                queries.append(Query(ast.literal_eval(qm.group(2)), None if flt == "none" else json.loads(flt)))
                continue
            rm = ROW.match(ln)
            if rm:
                queries[-1].rows.append(
                    (int(rm.group(1)), rm.group(2), rm.group(3), int(rm.group(4)), rm.group(5))
                )
        if current == "summary":
            sm = SUMMARY_ROW.match(ln)
            if sm:
                summary[sm.group(1)] = (sm.group(2), sm.group(3) == "yes")
    return Parsed(store_lines[0].split(": ", 1)[1], sections, queries, summary)


def normalise(out: str, store_path: str) -> str:
    """The output minus '#' lines, with the store path replaced."""
    return "\n".join(ln for ln in out.replace(store_path, "<STORE>").splitlines() if not ln.startswith("#"))


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = demo.main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def reference() -> tuple[ValoriStore, HashingEmbedder]:
    """The corpus in an in-memory store, built independently of the demo."""
    docs = load_corpus()
    emb = HashingEmbedder(dim=384)
    store = ValoriStore(384, "cosine")
    store.upsert(emb.embed_many([d.text for d in docs]), ids=[d.id for d in docs],
                 texts=[d.text for d in docs], metadatas=[d.metadata for d in docs])
    return store, emb


@pytest.fixture(scope="module")
def first_run() -> tuple[str, str]:
    """One default run of main() (module-scoped: capture by hand)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = demo.main([])
    assert rc == 0, err.getvalue()
    return out.getvalue(), err.getvalue()


def test_runs_cleanly_and_removes_its_temp_dir(first_run: tuple[str, str]) -> None:
    out, err = first_run
    assert err == ""
    p = parse(out)
    assert "valori-demo-" in p.store_path
    assert not Path(p.store_path).exists()
    assert not Path(p.store_path).parent.exists()
    assert set(p.sections) == {"1", "2", "3", "4", "5", "6", "summary"}
    # no debug noise: every line is prose, a table row, blank, or a '#' timing line
    assert not any(w in out for w in ("Traceback", "Warning", "DEBUG", "array("))
    timing = [ln for ln in out.splitlines() if ln.startswith("#")]
    assert len(timing) == 1 and timing[0].startswith("# timings (s): ")


def test_printed_hashes_are_consistent_and_true(first_run: tuple[str, str], reference) -> None:
    p = parse(first_run[0])
    ref, emb = reference
    (built,) = p.hashes("1")
    (checkpoint,) = p.hashes("3")
    (changed,) = p.hashes("4")
    (restored,) = p.hashes("5")
    (reopened,) = p.hashes("6")
    # the state hash depends on content only: the independent in-memory build must agree
    assert built == checkpoint == ref.state_hash()
    assert restored == checkpoint
    assert reopened == checkpoint
    assert changed != checkpoint
    assert p.line("3", "checkpoint 'after-ingest': seq ").startswith("checkpoint 'after-ingest': seq 2,")

    # the changed hash is the hash of the corpus minus the deleted docs plus the new one
    deleted = p.line("4", "deleted ").split("deleted ", 1)[1].split(" (")[0].split(", ")
    assert deleted == list(demo.DELETE_IDS)
    new_id, new_text, new_meta = demo.NEW_DOC
    assert f"upserted {new_id}:" in p.line("4", "deleted ")
    docs = [d for d in load_corpus() if d.id not in deleted]
    mod = ValoriStore(384, "cosine")
    mod.upsert(emb.embed_many([d.text for d in docs] + [new_text]), ids=[d.id for d in docs] + [new_id],
               texts=[d.text for d in docs] + [new_text], metadatas=[d.metadata for d in docs] + [new_meta])
    assert mod.state_hash() == changed
    assert p.line("4", "59 records;") == f"59 records; state hash {changed}"

    # the "equals checkpoint" claims are the truth, and the summary agrees with the full hashes
    assert p.line("5", "equals checkpoint:") == "equals checkpoint: yes"
    assert p.line("6", "equals checkpoint:").startswith("equals checkpoint: yes")
    assert p.line("4", "differs from checkpoint:") == "differs from checkpoint: yes"
    full = {"built": built, "checkpoint": checkpoint, "changed": changed, "restored": restored,
            "reopened": reopened}
    assert list(p.summary) == list(full)
    for step, (short, equal) in p.summary.items():
        assert short == full[step][:16]
        assert equal == (full[step] == checkpoint)


def test_verify_line_and_event_count(first_run: tuple[str, str]) -> None:
    p = parse(first_run[0])
    assert p.line("6", "verify: ") == f"verify: {p.store_path}: OK (directory)"
    # create, upsert, checkpoint, delete, upsert, restore
    assert p.line("6", "events replayed: ") == (
        "events replayed: 6 (checkpoint 1, create 1, delete 1, restore 1, upsert 2)"
    )
    assert p.line("6", "reopened with ") == "reopened with ValoriStore.open(path): 60 records, 6 log events"


def test_search_tables_match_an_independent_search(first_run: tuple[str, str], reference) -> None:
    p = parse(first_run[0])
    ref, emb = reference
    texts = {d.id: d.text for d in load_corpus()}
    assert 2 <= len(p.queries) <= 4
    filters = [q.filter for q in p.queries]
    assert {"topic": "cooking"} in filters and {"year": {"$gte": 2020}} in filters
    for q in p.queries:
        assert q.rows, q
        hits = ref.search(emb.embed(q.text), k=len(q.rows), filter=q.filter)
        assert [(r[0], r[1], r[2], r[3]) for r in q.rows] == [
            (n, h.id, f"{h.score:.6f}", h.raw) for n, h in enumerate(hits, 1)
        ]
        for _, rid, _, _, shown in q.rows:
            prefix = shown[:-3] if shown.endswith("...") else shown
            assert prefix and texts[rid].startswith(prefix)
        # the printed order is the store's total order: raw descending, then id ascending
        keys = [(-r[3], r[1].encode()) for r in q.rows]
        assert keys == sorted(keys)
    # the filters really applied
    by_id = {d.id: d.metadata for d in load_corpus()}
    for q in p.queries:
        if q.filter == {"topic": "cooking"}:
            assert all(by_id[r[1]]["topic"] == "cooking" for r in q.rows)
        if q.filter == {"year": {"$gte": 2020}}:
            assert all(by_id[r[1]]["year"] >= 2020 for r in q.rows)


def test_tie_rows_have_equal_raw_scores_and_are_ordered_by_id(first_run: tuple[str, str]) -> None:
    p = parse(first_run[0])
    tied = [q for q in p.queries if {"doc-016", "doc-024"} <= {r[1] for r in q.rows}]
    assert len(tied) == 1
    rows = {r[1]: r for r in tied[0].rows}
    a, b = rows["doc-016"], rows["doc-024"]
    assert a[3] == b[3] and a[2] == b[2]  # equal raw and equal score
    assert b[0] == a[0] + 1  # adjacent, doc-016 first
    tie_line = next(ln for ln in p.sections["2"] if ln.strip().startswith("tie: "))
    assert f"({a[3]})" in tie_line


def test_output_is_identical_across_runs(first_run: tuple[str, str], capsys) -> None:
    rc, out2, err2 = run_main(capsys)
    assert rc == 0 and err2 == ""
    out1 = first_run[0]
    p1, p2 = parse(out1), parse(out2)
    assert p1.store_path != p2.store_path  # a fresh temp dir each time...
    assert normalise(out1, p1.store_path) == normalise(out2, p2.store_path)  # ...and nothing else differs


def test_module_run_in_a_subprocess_prints_the_same(first_run: tuple[str, str], tmp_path: Path) -> None:
    src = str(Path(valori_store.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONHASHSEED="12345")
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
    proc = subprocess.run(
        [sys.executable, "-m", "valori_store.demo"], capture_output=True, text=True, encoding="utf-8",
        env=env, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    p = parse(proc.stdout)
    assert not Path(p.store_path).exists()
    out1 = first_run[0]
    assert normalise(proc.stdout, p.store_path) == normalise(out1, parse(out1).store_path)


def test_keep_builds_in_dir_and_keeps_a_valid_store(tmp_path: Path, capsys) -> None:
    keep = tmp_path / "kept"
    rc, out, err = run_main(capsys, "--keep", str(keep))
    assert rc == 0 and err == ""
    p = parse(out)
    assert p.store_path == str(keep / "store")
    (reopened_printed,) = p.hashes("6")
    with ValoriStore.open(keep / "store") as s:
        assert s.state_hash() == reopened_printed
        assert len(s) == 60 and "doc-061" not in s
        assert [c.label for c in s.history()] == ["after-ingest"]
    report = verify(keep / "store")
    assert report.ok and report.events == 6 and report.state_hash == reopened_printed

    # a second run refuses to reuse the store: non-zero, one line, nothing changed
    rc, out, err = run_main(capsys, "--keep", str(keep))
    assert rc != 0 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("valori-store demo failed: ") and "already exists" in err
    assert verify(keep / "store").events == 6


def test_quiet_prints_only_the_summary(tmp_path: Path, capsys, first_run: tuple[str, str]) -> None:
    rc, out, err = run_main(capsys, "--quiet")
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "Summary" and len(lines) == 7
    full = first_run[0].splitlines()
    assert lines == full[full.index("Summary"): full.index("Summary") + 7]


def test_failure_is_one_clear_line_and_nonzero(tmp_path: Path, capsys) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a directory")
    rc, out, err = run_main(capsys, "--keep", str(a_file))
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("valori-store demo failed: ") and "not a directory" in err

    rc, out, err = run_main(capsys, "--no-such-option")
    assert rc == 2 and out == ""


def test_a_failed_self_check_is_reported(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # if the store did not rank the duplicates as a tie the demo must fail, not print a false claim
    monkeypatch.setattr(demo, "TIE_IDS", ("doc-024", "doc-016"))
    rc, out, err = run_main(capsys)
    assert rc == 1
    assert err.count("\n") == 1 and "tie" in err
    assert "tie: " not in out
    store_path = parse(out).store_path
    assert not Path(store_path).parent.exists()  # cleaned up on failure too
