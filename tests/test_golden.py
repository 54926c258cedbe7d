"""Golden-vector sets: byte-identical regeneration, validation of untrusted files."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dqt_hw import golden
from dqt_hw.golden import GoldenArray, read_case, read_set, verify_case, write_case

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "README.md"}


def test_canonical_set_regenerates_byte_identically(tmp_path):
    golden.write_canonical(tmp_path)
    fresh, checked_in = _files(tmp_path), _files(GOLDEN)
    assert sorted(fresh) == sorted(checked_in), "golden/ holds other files than a fresh generation"
    changed = [name for name in fresh if fresh[name] != checked_in[name]]
    assert not changed, f"regenerate with `make golden`; these differ: {changed}"


def test_canonical_set_verifies_against_the_model():
    cases = read_set(GOLDEN)
    assert len(cases) >= 8
    for case in cases:
        assert verify_case(case) == [], case.path


def test_hex_files_hold_the_npy_values():
    case = read_case(GOLDEN / "gemm_8x48x8_w18_saturate")
    lines = (case.path / "acc.hex").read_text().split()
    vals = [int(s, 16) for s in lines]
    vals = [v - (1 << 18) if v >> 17 else v for v in vals]  # 18-bit two's complement
    assert vals == case["acc"].ravel().tolist()
    assert all(len(s) == 5 for s in lines)  # ceil(18 / 4) digits


GEMM = {"a_bits": 8, "a_signed": False, "w_bits": 8, "w_signed": False, "acc_width": 20,
        "overflow": "wrap", "seed": 0}


def small_gemm(v=0):
    """A 2x3 by 3x2 gemm case (its acc computed by the model)."""
    return golden.build_case("c", "gemm", {**GEMM, "seed": v},
                             {"a": np.arange(6).reshape(2, 3), "w": np.arange(6).reshape(3, 2)})


@pytest.fixture
def case_dir(tmp_path):
    return small_gemm().write(tmp_path)


def _edit_manifest(case_dir, fn):
    m = json.loads((case_dir / "manifest.json").read_text())
    fn(m)
    (case_dir / "manifest.json").write_text(json.dumps(m))


def test_reader_refuses_a_corrupt_array(case_dir):
    raw = bytearray((case_dir / "a.npy").read_bytes())
    raw[-1] ^= 1
    (case_dir / "a.npy").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"a\.npy: sha256 [0-9a-f]{64} does not match the manifest's"):
        read_case(case_dir)


def test_reader_refuses_an_unknown_contract_version(case_dir):
    _edit_manifest(case_dir, lambda m: m.update(contract_version="9.9"))
    with pytest.raises(ValueError, match=r"manifest\.json': contract_version: input should be "
                                         r"'1\.0', not '9\.9'$"):
        read_case(case_dir)


def test_reader_refuses_a_path_outside_the_case(case_dir):
    _edit_manifest(case_dir, lambda m: m["arrays"]["a"].update(file="../../etc/passwd"))
    with pytest.raises(ValueError, match=r"arrays\.a\.file: string should match pattern "
                                         r"'\^\[A-Za-z0-9_\]\[A-Za-z0-9_\.-\]\*\$', not "
                                         r"'\.\./\.\./etc/passwd'$"):
        read_case(case_dir)


def test_reader_refuses_a_pickled_array(case_dir):
    import hashlib
    import io

    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    raw = buf.getvalue()
    (case_dir / "a.npy").write_bytes(raw)
    _edit_manifest(case_dir, lambda m: m["arrays"]["a"].update(sha256=hashlib.sha256(raw).hexdigest()))
    with pytest.raises(ValueError, match=r"a\.npy is not a plain \.npy array: it holds Python "
                                         r"objects, which are never unpickled \(allow_pickle=False\)$"):
        read_case(case_dir)


def test_reader_refuses_a_shape_mismatch_and_bad_json(case_dir):
    _edit_manifest(case_dir, lambda m: m["arrays"]["a"].update(shape=[3, 2]))
    with pytest.raises(ValueError, match=r"a\.npy: holds int64 \[2, 3\], the manifest says "
                                         r"int64 \[3, 2\] \(little-endian, C order\)$"):
        read_case(case_dir)
    (case_dir / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"manifest\.json': not valid JSON: Expecting property "
                                         r"name enclosed in double quotes"):
        read_case(case_dir)


def test_writer_refuses_values_outside_their_bits(tmp_path):
    with pytest.raises(ValueError, match=r"values in \[0, 256\] do not fit unsigned 8 bits \(\[0, 255\]\)"):
        write_case(tmp_path, "c", kind="gemm", params=GEMM,
                   arrays={"a": GoldenArray(np.array([[0, 256]]), 8, False),
                           "w": GoldenArray(np.zeros((2, 1)), 8, False),
                           "acc": GoldenArray(np.zeros((1, 1)), 20, True)})
    assert not (tmp_path / "c").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no half-written temporary left


def test_interrupted_write_leaves_the_old_set(tmp_path, monkeypatch):
    small_gemm(1).write(tmp_path)
    before = _files(tmp_path)

    class Interrupted(BaseException):  # like a KeyboardInterrupt mid-write
        pass

    def boom(*a, **k):
        raise Interrupted

    monkeypatch.setattr(golden.io, "hex_text", boom)
    with pytest.raises(Interrupted):
        small_gemm(2).write(tmp_path)
    monkeypatch.undo()
    assert _files(tmp_path) == before
    assert read_case(tmp_path / "c").params["seed"] == 1


def test_verify_detects_a_wrong_output(tmp_path):
    name = "gemm_8x64x8_w20_wrap"
    shutil.copytree(GOLDEN / name, tmp_path / name)
    case = read_case(tmp_path / name)
    acc = case["acc"].copy()
    acc[0, 0] += 1
    write_case(tmp_path, name, kind=case.kind, params=case.params,
               arrays={"a": GoldenArray(case["a"], 8, False), "w": GoldenArray(case["w"], 8, False),
                       "acc": GoldenArray(acc, 20, True)},
               extra=case.manifest.get("extra"))
    assert verify_case(read_case(tmp_path / name)) == ["acc"]


def test_cli_verify_reports(capsys):
    from dqt_hw.cli import main

    assert main(["golden", "verify", str(GOLDEN)]) == 0
    out = capsys.readouterr().out
    assert "cases verified bit-exact" in out and "MISMATCH" not in out
