"""The layer graph: published totals, shape inference, and refusals of bad graphs."""

import pytest

from dqt_hw.net import Graph, Node, resnet18_cifar, resnet50_imagenet


def test_resnet50_totals_match_the_published_figures():
    g = resnet50_imagenet()
    # published: ~4.09 G MACs, 25.5 M weights (conv + fc, no BN/bias) for ResNet-50
    assert g.total_macs() == 4_089_184_256
    assert g.total_weights() == 25_502_912
    assert len(g.compute_layers()) == 54  # 53 conv + fc
    assert g["layer4.2.add"].shape == (2048, 7, 7)


def test_resnet18_cifar_totals():
    g = resnet18_cifar()
    # published: ~0.56 G MACs, 11.2 M weights for ResNet-18 with the CIFAR stem
    assert g.total_macs() == 555_422_720
    assert g.total_weights() == 11_164_352
    info = g.layer_info(g["layer1.0.conv1"])
    assert info["macs"] == 64 * 32 * 32 * 64 * 9 and info["taps"] == 576
    assert "layer4.1.conv2" in g.summary()


def test_hand_checked_small_graph():
    g = Graph([
        Node("in", "input", (), {"shape": (2, 5, 5)}),
        Node("c", "conv", ("in",), {"out_channels": 4, "kernel": 3, "stride": 2, "padding": 1}),
        Node("p", "avgpool", ("c",), {"kernel": 3}),
        Node("f", "flatten", ("p",)),
        Node("fc", "fc", ("f",), {"out_features": 3}),
    ])
    assert g["c"].shape == (4, 3, 3)
    assert g["p"].shape == (4, 1, 1)
    rows = g.layer_table()
    assert [r["macs"] for r in rows] == [4 * 9 * 18, 3 * 4]


def test_dangling_edge_is_refused():
    with pytest.raises(ValueError, match=r"^layer 'c': input 'x' is not a layer defined before it \(dangling edge\)$"):
        Graph([Node("in", "input", (), {"shape": (1, 4, 4)}),
               Node("c", "conv", ("x",), {"out_channels": 1, "kernel": 1})])


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match=r"^layer 'a': shape mismatch: 'c1' is \(2, 4, 4\), 'c2' is \(3, 4, 4\)$"):
        Graph([Node("in", "input", (), {"shape": (1, 4, 4)}),
               Node("c1", "conv", ("in",), {"out_channels": 2, "kernel": 1}),
               Node("c2", "conv", ("in",), {"out_channels": 3, "kernel": 1}),
               Node("a", "add", ("c1", "c2"))])
    with pytest.raises(ValueError, match=r"^layer 'fc': fc takes a flat \(C, 1, 1\) input, not \(1, 4, 4\)"):
        Graph([Node("in", "input", (), {"shape": (1, 4, 4)}),
               Node("fc", "fc", ("in",), {"out_features": 2})])
    with pytest.raises(ValueError, match=r"^layer 'c': kernel 5 with padding 0 does not fit its 4x4 input$"):
        Graph([Node("in", "input", (), {"shape": (1, 4, 4)}),
               Node("c", "conv", ("in",), {"out_channels": 2, "kernel": 5})])
    with pytest.raises(ValueError, match=r"^layer 'c': unknown op 'deconv'"):
        Graph([Node("in", "input", (), {"shape": (1, 4, 4)}), Node("c", "deconv", ("in",))])
