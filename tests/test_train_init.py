"""``dqt-hw train --init NET.json``: DQT fine-tuning of an imported network from its own
weights (dqt_hw.train.init; docs/networks.md, "Training", Fine-tuning). Short runs (a
few steps): the twin starts where the network is, a fine-tuned file loads and runs
(static and dynamic), and what cannot be trained is refused in one line."""

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")

import onnx_models as om  # noqa: E402
from dqt_hw.cli import main  # noqa: E402
from dqt_hw.net import network as nw  # noqa: E402
from dqt_hw.net.executor import execute, input_codes  # noqa: E402
from dqt_hw.net.graph import Graph, Node  # noqa: E402
from dqt_hw.net.onnx_import import from_onnx  # noqa: E402
from dqt_hw.train.init import model_from_network  # noqa: E402
from dqt_hw.train.trainer import train_and_export  # noqa: E402

WIDTHS = (2, 4, 8)
SHORT = dict(widths=WIDTHS, epochs=1, ctrl_epochs=1, batch=32, lr=1e-3, seed=0, threads=1)


@pytest.fixture(scope="module", params=["resnet", "inception"])
def imported(request, tmp_path_factory):
    """An imported QDQ model (ResNet-like: add, max pool; Inception-like: concat), saved,
    and data labelled by its own predictions: x/y 32 test inputs, x_cal/y_cal 64."""
    d = tmp_path_factory.mktemp("init")
    cal = om.inputs(1, 64)
    build = {"resnet": om.resnet_like, "inception": om.inception_like}[request.param]
    f = d / "m.onnx"
    onnx.save(om.centered(build(seed=0, width=4), cal), f)
    net = from_onnx(om.quantize_qdq(f, d / "q.onnx", cal), widths=WIDTHS)
    x = om.inputs(5, 96)
    y = execute(net, input_codes(net, x), widths=8).pred
    data = d / "data.npz"
    np.savez(data, x=x[:32], y=y[:32], x_cal=x[32:], y_cal=y[32:])
    return net, net.save(d / "net.json"), data, x, y


def test_the_twin_starts_at_the_network(imported):
    net, _, _, x, y = imported
    model = model_from_network(net, widths=WIDTHS).double().eval()
    with torch.no_grad():
        out, _ = model(torch.from_numpy(x.astype(np.float64)), 8)
    # the weights are requantized over their [min, max] per channel (not the int8 grid),
    # so not code for code: the same argmax on nearly every input
    assert np.mean(out.numpy().argmax(axis=1) == y) >= 0.9


def test_fine_tuned_file_loads_and_runs(imported, tmp_path):
    net, path, data, x, _ = imported
    out, prov, _, ds = train_and_export(tmp_path / "ft.json", log=lambda *a: None,
                                        command="test", init=path, data=str(data), **SHORT)
    back = nw.load(out)
    assert prov["init"]["file"] == str(path) and back.provenance["data"] == "file:data.npz"
    assert [nd.name for nd in back.graph] == [nd.name for nd in net.graph]
    assert back.controller is not None and back.arith == net.arith
    inp = next(iter(net.graph)).name
    assert back.layers[inp].fmt == net.layers[inp].fmt  # the imported input format
    for w in (8, 2, "dynamic"):
        r = execute(back, input_codes(back, x), widths=w)
        assert r.codes.shape == (len(x), 10)
    assert prov["integer_test_accuracy"]["static_8"] >= 0.5  # labels: its own predictions


def test_cli_train_init_and_refusals(imported, tmp_path, capsys):
    _, path, data, _, _ = imported
    argv = ["train", "--init", str(path), "--widths", "2,4,8", "--epochs", "1",
            "--ctrl-epochs", "0", "--batch", "64", "--out", str(tmp_path / "ft.json")]
    assert main(argv + ["--data", str(data)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert nw.load(tmp_path / "ft.json").provenance["init"]["file"] == str(path)
    with pytest.raises(SystemExit) as e:  # the digits are 1x8x8, the network takes 3x8x8
        main(argv + ["--data", "digits"])
    assert e.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after argparse's usage
    assert last.startswith("dqt-hw train: error: data set 'digits' has inputs (1, 8, 8); "
                           "network file ") and last.endswith(" takes (3, 8, 8)")
    np.savez(tmp_path / "nocal.npz", x=np.zeros((4, 3, 8, 8)), y=np.zeros(4, np.int64))
    with pytest.raises(SystemExit):
        main(argv + ["--data", str(tmp_path / "nocal.npz")])
    assert "fine-tuning needs 'x_cal' and 'y_cal'" in capsys.readouterr().err


def test_labels_beyond_the_outputs_and_another_master_width_are_refused(imported, tmp_path):
    net, path, _, x, _ = imported
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=x[:4], y=np.full(4, 12), x_cal=x[4:8], y_cal=np.zeros(4, np.int64))
    with pytest.raises(ValueError, match=r"^data set 'file:bad.npz' has label 12; network "
                                         r"file '.*' has 10 outputs$"):
        train_and_export(tmp_path / "ft.json", log=lambda *a: None, init=path, data=str(bad),
                         **SHORT)
    six = nw.random_network(net.graph, arith=nw.Arith(n=6), widths=(2, 4, 6))
    with pytest.raises(ValueError, match=r"master width n = 6; the trainer trains at n = 8$"):
        model_from_network(six, widths=WIDTHS)


def test_a_non_square_controller_input_is_refused():
    g = Graph([Node("in", "input", (), {"shape": (1, 8, 6)}),
               Node("c1", "conv", ("in",), {"out_channels": 4, "kernel": 3, "relu": True}),
               Node("fl", "flatten", ("c1",)),
               Node("fc", "fc", ("fl",), {"out_features": 3})], name="wide")
    net = nw.random_network(g, seed=0)
    with pytest.raises(ValueError, match=r"^network 'wide': layer 'c1': the controller reads "
                                         r"the global average pool of the first conv/fc "
                                         r"layer's output, which is 6x4, not square$"):
        model_from_network(net, widths=WIDTHS)
