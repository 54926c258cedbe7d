"""Gate-level critical path of a CMOS-mapped netlist (the flat flow of ``synth.py``).

After ``abc -g cmos`` a design is a netlist of the gates NOT, NAND, NOR, AND-NOT, OR-NOT,
AOI3/OAI3, AOI4/OAI4, XOR, XNOR, (N)MUX and plain D flip-flops. Its Yosys JSON netlist
(``write_json``) is read here and the longest register-to-register (or port-to-register,
register-to-port, port-to-port) path is found, **each gate one gate delay** (the library
assumption: every cell of the set costs the same delay, wire delay nil; an XOR counts as
much as an inverter, so the figure is logic depth, a lower bound on the relative cycle
time, not a signed-off timing). The path is reported with its start (an input port or a
flip-flop's output) and end (a flip-flop's input or an output port), named by the Verilog
signal they belong to (``pe_0_0.acc[31]``: the PE of row 0, column 0), so the unit that
limits the clock is visible.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque

__all__ = ["critical_path", "TimingError", "GATE_DELAY_NOTE"]

GATE_DELAY_NOTE = ("unit gate delay: every cell of the abc -g cmos set (NOT, NAND, NOR, "
                   "ANDNOT, ORNOT, AOI3, OAI3, AOI4, OAI4, XOR, XNOR, MUX, NMUX) one delay, "
                   "wires none; flip-flops cut the paths")

_FF_TYPES = {"$_DFF_P_", "$_DFF_N_"}
_OUT_PORTS = {"Y", "Q"}


class TimingError(ValueError):
    pass


def _bit_names(mod: dict) -> dict:
    """{bit: 'signal[i]'}: a port's name first, then a register's (a visible name with an
    initial value: the Verilog ``reg``, not one of the wires that mirror it), then visible
    names, then the shortest."""
    names = {}
    for name, p in mod.get("ports", {}).items():
        for i, b in enumerate(p.get("bits", [])):
            if not isinstance(b, str):
                label = name if len(p["bits"]) == 1 else f"{name}[{i}]"
                names[b] = ((-1, 0, 0), label)
    for name, net in mod.get("netnames", {}).items():
        hidden = bool(net.get("hide_name", 0))
        bits = net.get("bits", [])
        for i, b in enumerate(bits):
            if isinstance(b, str):
                continue
            label = name if len(bits) == 1 else f"{name}[{i}]"
            key = (hidden, "init" not in net.get("attributes", {}), len(label))
            if b not in names or key < names[b][0]:
                names[b] = (key, label)
    return {b: label.lstrip("\\") for b, (_, label) in names.items()}


def critical_path(netlist, top: str) -> dict:
    """The longest combinational path of module ``top`` in a Yosys JSON netlist (text or
    parsed): ``{"gate_delays", "start", "end", "start_kind", "end_kind"}``, kinds "port"
    or "ff". TimingError when the netlist has no such module, a cell of an unknown
    direction or a combinational loop."""
    doc = json.loads(netlist) if isinstance(netlist, str) else netlist
    mods = doc.get("modules", {}) if isinstance(doc, dict) else {}
    mod = mods.get(top) or mods.get("\\" + top)
    if mod is None:
        raise TimingError(f"netlist has no module {top!r} (has {sorted(mods)})")
    names = _bit_names(mod)
    arrival, pred = {}, {}
    start_kind = {}
    for p in mod.get("ports", {}).values():
        if p.get("direction") == "input":
            for b in p["bits"]:
                if not isinstance(b, str):
                    arrival[b], start_kind[b] = 0, "port"
    ends = []  # (bit, kind, name)
    comb = []
    for cname, c in mod.get("cells", {}).items():
        conns, dirs = c.get("connections", {}), c.get("port_directions", {})
        if c.get("type") in _FF_TYPES:
            q, d = conns.get("Q", []), conns.get("D", [])
            for b in q:
                if not isinstance(b, str):
                    arrival[b], start_kind[b] = 0, "ff"
            for bd, bq in zip(d, q):
                if not isinstance(bd, str):
                    ends.append((bd, "ff", names.get(bq, cname)))
            continue
        ins = [b for pn, bits in conns.items() if dirs.get(pn, "input") == "input"
               for b in bits if not isinstance(b, str)]
        outs = [b for pn, bits in conns.items() if dirs.get(pn) == "output" for b in bits]
        if not outs:
            raise TimingError(f"cell {cname!r} of {top!r} ({c.get('type')}) has no output")
        comb.append((ins, [b for b in outs if not isinstance(b, str)]))
    for p, port in mod.get("ports", {}).items():
        if port.get("direction") == "output":
            for i, b in enumerate(port["bits"]):
                if not isinstance(b, str):
                    ends.append((b, "port", p if len(port["bits"]) == 1 else f"{p}[{i}]"))
    # Kahn's order over the combinational cells
    waiting = defaultdict(list)
    need = []
    ready = deque()
    for k, (ins, _) in enumerate(comb):
        missing = {b for b in ins if b not in arrival}
        need.append(len(missing))
        for b in missing:
            waiting[b].append(k)
        if not missing:
            ready.append(k)
    done = 0
    while ready:
        k = ready.popleft()
        done += 1
        ins, outs = comb[k]
        src = max(ins, key=lambda b: arrival[b], default=None)
        t = 1 + (arrival[src] if src is not None else 0)
        for b in outs:
            arrival[b], pred[b] = t, src
            for k2 in waiting.pop(b, ()):
                need[k2] -= 1
                if need[k2] == 0:
                    ready.append(k2)
    if done != len(comb):
        raise TimingError(f"netlist of {top!r} has a combinational loop or undriven nets "
                          f"({len(comb) - done} gates never reached)")
    best = max(((arrival.get(b, 0), b, kind, nm) for b, kind, nm in ends),
               key=lambda x: x[0], default=None)
    if best is None:
        raise TimingError(f"netlist of {top!r} has no path end (no flip-flop, no output)")
    t, b, kind, end_name = best
    while b in pred and pred[b] is not None:
        b = pred[b]
    return {"gate_delays": t, "start": names.get(b, str(b)),
            "start_kind": start_kind.get(b, "const"), "end": end_name, "end_kind": kind}
