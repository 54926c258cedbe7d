"""DQT training (short, from a fixed seed): it learns, exports a network file that loads
and runs, and the exported integer network agrees with the PyTorch fake-quant model.

Float training is not bit-reproducible across machines (hence an accuracy floor, not an
exact figure); everything after the export is bit-exact (tests/test_net_shipped.py)."""

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dqt_hw.net import network as nw  # noqa: E402
from dqt_hw.net.executor import execute, input_codes  # noqa: E402
from dqt_hw.train import data  # noqa: E402
from dqt_hw.train.trainer import train_and_export  # noqa: E402

SHORT = dict(data="digits", stages=(8, 16), widths=(4, 8), epochs=6, ctrl_epochs=2, lr=1e-2,
             seed=0, threads=1)
ACCURACY_FLOOR = 0.85  # digits test set; the short run reaches ~0.94, chance is 0.10


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "short.json"
    path, prov, model, ds = train_and_export(out, log=lambda *a: None, command="test", **SHORT)
    return path, prov, model, ds


def test_short_training_learns_and_exports(trained):
    path, prov, model, ds = trained
    acc = prov["float_fake_quant_test_accuracy"]
    assert acc["static_8"] >= ACCURACY_FLOOR, acc
    assert acc["dynamic"] >= ACCURACY_FLOOR, acc
    net = nw.load(path)
    assert net.controller is not None and net.controller.hidden == 64
    assert net.provenance["seed"] == 0
    r = execute(net, input_codes(net, ds.x_test), widths=8)
    assert r.accuracy(ds.y_test) >= ACCURACY_FLOOR


def test_integer_network_agrees_with_fake_quant(trained):
    """The one place a tolerance belongs: the float fake-quant model against the integer
    network. Required: the same argmax on >= 99 % of test inputs at every static width in
    K' (and for the controller), and logits within 2 output LSBs on >= 99 % of inputs.
    (Measured: identical argmax and logits on every input; float64 fake-quant differs from
    the exact integers only where a value lands within float error of a rounding tie.)"""
    path, prov, model, ds = trained
    net = nw.load(path)
    m = model.double().eval()
    xq = input_codes(net, ds.x_test)
    x = torch.as_tensor(ds.x_test, dtype=torch.float64)
    lsb = net.layers[net.output_node()].fmt.delta
    for w in (*SHORT["widths"], "dynamic"):
        r = execute(net, xq, widths=w)
        with torch.no_grad():
            out = m(x, w)[0].numpy()
        same = np.mean(out.argmax(1) == r.pred)
        assert same >= 0.99, (w, same)
        err = np.abs(out - r.logits).max(axis=1) / lsb
        assert np.mean(err <= 2.0) >= 0.99, (w, np.quantile(err, [0.5, 0.99, 1.0]))


def test_cifar10_pickle_layout(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 3)]:
        d = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [b"x.png"] * n}
        with open(tmp_path / name, "wb") as f:
            pickle.dump(d, f)
    ds = data.load(f"cifar10:{tmp_path}")
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    with open(tmp_path / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    np.testing.assert_array_equal(ds.x_test[1, 2].ravel() * 255,
                                  raw[b"data"][1, 2048:].astype(float))
    assert ds.y_test.tolist() == raw[b"labels"]
    (tmp_path / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"data_batch_3' is not a valid CIFAR-10 pickle"):
        data.load_cifar10(tmp_path)


def test_digits_split():
    ds = data.load_digits()
    assert ds.shape == (1, 8, 8) and ds.classes == 10
    assert len(ds.y_train) + len(ds.y_test) == 1797
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0


def test_cost_target_option():
    """``--cost-target T``: J_cost becomes |mean relative BitOPs of the batch - T| (a budget
    on the batch mean); the CLI passes it and the Gumbel temperatures through."""
    import argparse

    from dqt_hw.train.cli import add_train_args
    from dqt_hw.train.trainer import train

    p = argparse.ArgumentParser()
    add_train_args(p)
    a = p.parse_args(["--cost-target", "0.2", "--tau0", "1.5", "--tau1", "0.5"])
    assert (a.cost_target, a.tau0, a.tau1) == (0.2, 1.5, 0.5)
    assert p.parse_args([]).cost_target is None
    model, hist, ds = train(log=lambda *a: None, data="digits", stages=(8,), widths=(2, 8),
                            epochs=1, ctrl_epochs=0, seed=0, cost_target=1.0)
    # relative cost <= 1, so |c - 1| = 1 - c: the logged J_cost is 1 minus the mean cost
    assert 0.0 < hist[0]["cost"] < 1.0


def test_digits_contrast():
    """``digits-contrast``: the digits split, each input scaled by its own seeded contrast
    c in [1/16, 1] (log-uniform), the same on every load."""
    plain = data.load_digits()
    ds = data.load("digits-contrast")
    assert ds.name == "digits-contrast" and ds.shape == (1, 8, 8)
    np.testing.assert_array_equal(ds.y_train, plain.y_train)
    np.testing.assert_array_equal(ds.y_test, plain.y_test)
    for x, x0 in ((ds.x_train, plain.x_train), (ds.x_test, plain.x_test)):
        c = x.reshape(len(x), -1).max(1) / x0.reshape(len(x0), -1).max(1)
        want = x0 * c[:, None, None, None]  # float pixels: compared with a float tolerance
        np.testing.assert_allclose(x, want, rtol=0, atol=1e-12)  # float rounding only
        assert c.min() >= 1 / 16 - 1e-12 and c.max() <= 1.0
        assert c.min() < 0.1 and c.max() > 0.9 and 0.2 < np.median(c) < 0.3
    np.testing.assert_array_equal(data.load("digits-contrast").x_test, ds.x_test)
    half = data.load("digits-contrast:0.5")
    assert half.name == "digits-contrast:0.5" and half.x_test.max() > 0.5
    for bad, msg in (("digits-contrast:0", r"contrast minimum must be in \(0, 1\], not 0.0"),
                     ("digits-contrast:x", "digits-contrast:MIN needs a number, not 'x'"),
                     ("mnist", "data set must be")):
        with pytest.raises(ValueError, match=msg):
            data.load(bad)


@pytest.mark.parametrize("kw, msg", [
    (dict(widths=(2, 9)), r"widths \(K\) must be distinct integers in \[1, 8\], not \(2, 9\)"),
    (dict(widths=(4, 4)), r"widths \(K\) must be distinct integers"),
    (dict(kprime=(2, 3)), r"kprime \(K'\) must be a non-empty subset of the widths K = "
                          r"\(2, 4, 6, 8\), not \(2, 3\)"),
    (dict(epochs=0), r"epochs must be an integer in \[1, 100000\], not 0"),
    (dict(ctrl_epochs=-1), r"ctrl_epochs must be an integer in \[0, 100000\], not -1"),
    (dict(ctrl_holdout=1.0), r"ctrl_holdout must be a fraction in \[0, 1\), not 1.0"),
    (dict(ctrl_beta=-0.5), "ctrl_beta must be >= 0, not -0.5"),
    (dict(entropy=-1.0), "entropy must be >= 0, not -1.0"),
    (dict(ctrl_tau1=0.0), "ctrl_tau1 must be > 0, not 0.0"),
    (dict(ctrl_lr=0.0), "ctrl_lr must be > 0, not 0.0"),
])
def test_training_options_refused(kw, msg):
    from dqt_hw.train.trainer import train

    with pytest.raises(ValueError, match=msg):
        train(log=lambda *a: None, **kw)


def test_train_cli_options():
    """``python -m dqt_hw.train`` / ``dqt_hw.train.cli``: every option reaches the trainer's
    configuration; the defaults are ``DEFAULTS`` (the shipped network's); a bad value is
    refused before training."""
    import argparse

    from dqt_hw.train import cli
    from dqt_hw.train.__main__ import main
    from dqt_hw.train.trainer import DEFAULTS

    p = argparse.ArgumentParser()
    cli.add_train_args(p)
    cfg = cli.config_from_args(p.parse_args([]))
    assert cfg == {k: DEFAULTS[k] for k in cfg}
    assert DEFAULTS["data"] == "digits-contrast" and DEFAULTS["ctrl_epochs"] > 0
    a = p.parse_args(["--kprime", "4,8", "--ctrl-epochs", "3", "--ctrl-beta", "0.1",
                      "--ctrl-holdout", "0.5", "--ctrl-lr", "0.02", "--ctrl-tau0", "3",
                      "--ctrl-tau1", "1", "--entropy", "0.01", "--data", "digits"])
    cfg = cli.config_from_args(a)
    assert (cfg["kprime"], cfg["ctrl_epochs"], cfg["ctrl_beta"], cfg["ctrl_holdout"],
            cfg["ctrl_lr"], cfg["ctrl_tau0"], cfg["ctrl_tau1"], cfg["entropy"],
            cfg["data"]) == ((4, 8), 3, 0.1, 0.5, 0.02, 3.0, 1.0, 0.01, "digits")
    with pytest.raises(SystemExit):
        main(["--kprime", "2,5", "--out", "unused.json"])


@pytest.mark.parametrize("argv, msg", [
    (["--ctrl-holdout", "1.5"], r"ctrl_holdout must be a fraction in [0, 1), not 1.5"),
    (["--kprime", "2,5"], "kprime (K') must be a non-empty subset of the widths K = "
                          "(2, 4, 6, 8), not (2, 5)"),
    (["--widths", "2,x"], "expected comma-separated integers, not '2,x'"),
])
def test_dqt_hw_train_cli(argv, msg, tmp_path, capsys):
    """``dqt-hw train`` takes the options of ``python -m dqt_hw.train`` (one definition,
    ``dqt_hw.train.cli``); a value the trainer's checks refuse is a usage error: exit
    status 2, the check's message on stderr, nothing trained or written."""
    import argparse

    from dqt_hw.cli import build_parser, main
    from dqt_hw.train import cli

    train_parser = next(a for a in build_parser()._subparsers._group_actions
                        if isinstance(a, argparse._SubParsersAction)).choices["train"]
    ref = argparse.ArgumentParser()
    cli.add_train_args(ref)
    assert ({o for a in train_parser._actions for o in a.option_strings}
            == {o for a in ref._actions for o in a.option_strings})
    out = tmp_path / "net.json"
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", str(out), *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "dqt-hw train: error: " + msg in err, err
    assert not out.exists() and not out.with_suffix(".npz").exists()


def test_controller_finetuning_freezes_the_network():
    """``ctrl_epochs``: after the joint phase only the controller changes (its weights and
    logit range); the network's weights, biases, PACT clips and EMA ranges stay as the
    joint phase left them, and the fine-tuning epochs are logged as phase 2."""
    from dqt_hw.train.trainer import train

    kw = dict(log=lambda *a: None, data="digits", stages=(8,), widths=(2, 8), epochs=1,
              seed=0, ctrl_holdout=0.0)
    joint, _, _ = train(ctrl_epochs=0, **kw)
    tuned, hist, _ = train(ctrl_epochs=1, **kw)
    assert [h.get("phase", 1) for h in hist] == [1, 2]
    a, b = joint.state_dict(), tuned.state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.startswith("controller.") for k in changed), changed
    assert any(k.startswith("controller.w") for k in changed)


def test_controller_holdout_split():
    """``ctrl_holdout``: the joint phase trains on the other inputs only (fewer steps per
    epoch); without a fine-tuning phase nothing is held out."""
    from dqt_hw.train.trainer import train

    kw = dict(log=lambda *a: None, data="digits", stages=(8,), widths=(2, 8), epochs=1,
              seed=0, batch=256)
    m0, h0, ds = train(ctrl_epochs=0, ctrl_holdout=0.5, **kw)
    m1, h1, _ = train(ctrl_epochs=1, ctrl_holdout=0.0, **kw)
    assert torch.equal(m0.op("conv1").weight, m1.op("conv1").weight)  # same joint phase
    m2, h2, _ = train(ctrl_epochs=1, ctrl_holdout=0.5, **kw)
    assert not torch.equal(m0.op("conv1").weight, m2.op("conv1").weight)
