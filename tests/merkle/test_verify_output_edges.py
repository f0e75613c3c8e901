"""The verifier's output when the proof or the terminal misbehaves, run in process.

Pinned by mutation testing: non-ASCII and control characters from the proof are escaped, a bug
of ours still ends in a verdict, and a reader that closes the pipe early gets no traceback.
"""

from __future__ import annotations

import io
import json
import os
import sys

from audits.core.verify import main

from .test_format_edges import bob_proof


def test_strings_from_the_proof_are_printed_as_ascii_json_literals(tmp_path, capsys):
    proof = bob_proof()
    proof["snapshot"] = 'snap\u202e\u00e9\n"VALID'
    proof["assets"][0]["code"] = "T\u00e9\x1b[2J"
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof, ensure_ascii=False), encoding="utf-8")
    main([str(path)])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'snapshot: "snap\\u202e\\u00e9\\n\\"VALID"'
    assert out[2] == 'balance:  0.000000000000000003 "T\\u00e9\\u001b[2J"'
    assert all(line.isascii() and line.isprintable() for line in out)


def test_a_bug_of_ours_still_ends_in_an_invalid_verdict(capsys):
    # A file name that is not a path at all makes open() raise TypeError, which no branch of
    # the reader expects: the guard turns it into a verdict.
    assert main([None]) == 1  # type: ignore[list-item]
    assert capsys.readouterr().out == (
        "INVALID: verifier error: TypeError: expected str, bytes or os.PathLike object, not "
        "NoneType\n"
    )


def test_a_reader_that_closes_the_pipe_early_gets_exit_1_and_stdout_goes_to_devnull(
    tmp_path, monkeypatch
):
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(bob_proof()), encoding="utf-8")
    read_end, write_end = os.pipe()
    os.close(read_end)  # `python -m audits.verify proof.json | head -0`
    stdout = io.TextIOWrapper(io.FileIO(write_end, "w"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        assert main([str(path)]) == 1
        # The descriptor now points at /dev/null, so the final flush cannot fail either.
        now, null = os.fstat(write_end), os.stat(os.devnull)
        assert (now.st_dev, now.st_ino) == (null.st_dev, null.st_ino)
        stdout.write("x\n")
        stdout.flush()
    finally:
        monkeypatch.undo()
        stdout.close()
