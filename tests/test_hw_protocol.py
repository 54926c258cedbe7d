"""Port protocols, reset and ready/valid dependencies, as docs/hardware.md states them.

Three kinds of evidence, each against the text of docs/hardware.md ("Clock and reset",
"Port protocol"):

- **structural**: Yosys (the Amaranth build that `amaranth.back.verilog` already uses)
  lists, for every output port, the input ports with a combinational path to it (the input
  cone of the output, not crossing a flip-flop), field by field for the stream payloads.
  For the tile this is compared with the dependency table of docs/hardware.md, parsed from
  the file, so a wrong table fails here. No path means *no* input can change the output
  within a cycle, in any state.
- **cycle models**: the PE and the tile's handshake written from the documented protocol
  (not from the generator), run in lockstep with the hardware on random traffic with
  random resets. In every cycle of the tile all 32 combinations of the five handshake
  inputs (cmd/act/wgt/rq valid, out ready) and random payloads are applied without a clock
  edge (an Amaranth 0.5 testbench's `ctx.set` settles the combinational logic before it
  returns) and every ready/valid is compared with the model: the inputs the table names do
  change them, as documented, and nothing else does.
- **reset**: one cycle of `rst` from an arbitrary state gives exactly the behaviour of a
  fresh (power-on) instance, cycle for cycle on every output; longer resets change
  nothing; what the outputs show during and right after reset.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from amaranth import Cat, ClockDomain, Module, Signal, Value
from amaranth._toolchain.yosys import find_yosys
from amaranth.back import rtlil
from amaranth.lib import data, wiring
from amaranth.sim import Simulator

from dqt_hw.hw import MACPE, NestedView, PEArray, Requantizer, RescaleUnit, ScalableMACPE, Tile
from dqt_hw.spec import code_range, nested_view, saturate, wrap

DOC = Path(__file__).resolve().parent.parent / "docs" / "hardware.md"


# ---------------------------------------------------------------------------------------
# structural: combinational input cones from Yosys

def _leaves(component):
    """(dotted name, flow, value) of every port, stream payload structs split by field."""
    for path, member, value in component.signature.flatten(component):
        name = ".".join(map(str, path))
        shape = member.shape
        if isinstance(shape, data.StructLayout):
            for fname, _ in shape:
                yield f"{name}.{fname}", member.flow, Value.cast(value[fname])
        else:
            yield name, member.flow, Value.cast(value)


def comb_cones(component) -> tuple[dict[str, set[str]], set[str]]:
    """({output: the inputs with a combinational path to it}, all inputs): the design
    after Yosys's ``proc; flatten`` (the Amaranth build of Yosys that
    `amaranth.back.verilog` runs),
    walked back from every bit of each output port through combinational cells only, up to
    input port bits; a flip-flop ends the walk. ``rst`` and ``clk`` are inputs too, so a
    reset acting combinationally would show."""
    m = Module()
    m.submodules.dut = component
    ports, outs = [], []
    for name, flow, value in _leaves(component):
        sig = Signal(len(value), name=name.replace(".", "__"))
        if flow == wiring.In:
            m.d.comb += value.eq(sig)
        else:
            m.d.comb += sig.eq(value)
            outs.append(name)
        ports.append(sig)
    text = rtlil.convert(m, name="top", ports=ports)
    script = "\n".join([f"read_rtlil <<rtlil\n{text}\nrtlil", "hierarchy -top top", "proc",
                        "flatten", "opt_clean", "write_json"])
    netlist = json.loads(find_yosys(lambda ver: ver >= (0, 40)).run(["-q", "-"], script,
                                                                   ignore_warnings=True))
    top = netlist["modules"]["top"]
    port_of = {}  # bit -> input port
    for name, port in top["ports"].items():
        if port["direction"] == "input":
            for bit in port["bits"]:
                port_of[bit] = name.replace("__", ".")
    driver = {}  # bit -> input bits of the combinational cell driving it
    for cell in top["cells"].values():
        if "dff" in cell["type"] or "dlatch" in cell["type"] or "$mem" in cell["type"]:
            continue  # a register: the cone stops here
        ins = [b for p, d in cell["port_directions"].items() if d == "input"
               for b in cell["connections"][p]]
        for p, d in cell["port_directions"].items():
            if d == "output":
                for b in cell["connections"][p]:
                    driver[b] = ins
    cones = {}
    for name, port in top["ports"].items():
        if port["direction"] != "output":
            continue
        seen, todo, found = set(), list(port["bits"]), set()
        while todo:
            b = todo.pop()
            if isinstance(b, str) or b in seen:
                continue  # a constant, or visited
            seen.add(b)
            if b in port_of:
                found.add(port_of[b])
            todo += driver.get(b, [])
        cones[name.replace("__", ".")] = found
    assert set(cones) == set(outs)
    return cones, set(port_of.values())


def doc_section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def doc_tile_table() -> dict[str, tuple[str, set[str], set[str], set[str]]]:
    """docs/hardware.md's tile dependency table: {signal: (kind, inputs, extra inputs at
    max_pack > 1, inputs not there at rq_stages > 0)}; signals written `a` / `b` on one
    row share it."""
    section = doc_section("### Tile: what each ready and valid depends on")
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        kind = cells[1].split()[0].lower()
        base, _, staged = cells[2].partition("rq_stages > 0:")
        base, _, packed = base.partition("max_pack > 1:")
        names = set(re.findall(r"`([^`]+)`", base))
        extra = set(re.findall(r"`([^`]+)`", packed))
        gone = set(re.findall(r"`([^`]+)`", staged))
        names.discard("none")
        for sig in re.findall(r"`([^`]+)`", cells[0]):
            rows[sig] = (kind, names, extra, gone)
    return rows


TILE_STREAM_OUTPUTS = {"cmd.ready", "act.ready", "wgt.ready", "rq.ready", "out.valid"}


@pytest.mark.parametrize("max_pack, rq_lanes, rq_stages",
                         [(1, None, 0), (4, None, 0), (1, 1, 0), (4, 1, 0), (1, None, 1),
                          (4, None, 2)])
def test_tile_dependency_table_is_the_hardware(max_pack, rq_lanes, rq_stages):
    """Every row of the documented table against the Yosys input cones; out.payload (no
    row: a register) must have no combinational input either. The same table holds with
    one requantizer lane for the three columns, and with pipelined lanes as it says."""
    table = doc_tile_table()
    assert set(table) == TILE_STREAM_OUTPUTS, "the table must cover every ready and valid"
    kw = dict(rows=2, cols=3, n=4, acc_width=12, depth_bits=3, kbits=6, ebits=2, sbits=3,
              rq_lanes=rq_lanes, rq_stages=rq_stages)
    tile = Tile(**kw, **({"max_pack": max_pack} if max_pack > 1 else {}))
    cones, inputs = comb_cones(tile)
    assert {"rst", "clk", "cmd.payload.b_a", "act.payload", "rq.payload.lanes"} <= inputs
    for sig, (kind, names, extra, gone) in table.items():
        expected = (names | (extra if max_pack > 1 else set())) - (gone if rq_stages else set())
        assert cones[sig] == expected, (sig, max_pack)
        assert kind in ("registered", "combinational")
        assert (kind == "registered") == (not cones[sig]), sig
    for o in ("out.payload.codes", "out.payload.row", "out.payload.last"):
        assert cones[o] == set(), o


def test_clocked_units_have_registered_outputs():
    """PE, scalable PE and array: no input (rst included) reaches acc / result / row_*
    within a cycle; the only combinational output is ``pack``, of the two width selects."""
    for dut in (MACPE(n=4, acc_width=9), MACPE(n=4, acc_width=9, views=False),
                ScalableMACPE(n=4, acc_width=9, max_pack=2),
                ScalableMACPE(n=4, acc_width=9, max_pack=4, views=False)):
        cones, inputs = comb_cones(dut)
        assert "rst" in inputs
        assert cones.pop("acc") == cones.pop("result") == set(), dut
        assert cones == ({"pack": {"b_a", "b_w"}} if "pack" in cones else {}), dut
    for P in (1, 2):
        cones, inputs = comb_cones(PEArray(rows=2, cols=2, n=4, acc_width=9, depth_bits=2,
                                           max_pack=P))
        assert "rst" in inputs
        if P > 1:
            assert cones.pop("pack") == {"b_a", "b_w"}
        assert set(cones) == {"row_valid", "row_index", "row_acc", "row_sum_a", "row_sum_w"}
        assert all(c == set() for c in cones.values()), cones


@pytest.mark.parametrize("make", [
    lambda: NestedView(n=4),
    lambda: Requantizer(n=4, acc_width=10, sum_width=7, kbits=4, ebits=2, sbits=3),
    lambda: RescaleUnit(n=4, mult_bits=4, sbits=2)], ids=["view", "requant", "rescale"])
def test_combinational_units(make):
    """View, requantizer lane, rescale unit: no clock, no reset, every output a function of
    every input in the same cycle."""
    clock_port = r"input \d+\s+\\(clk|rst)\b"
    assert not re.search(clock_port, rtlil.convert(make()))
    assert re.search(clock_port, rtlil.convert(MACPE(n=4, acc_width=9)))  # (the pattern works)
    dut = make()
    cones, inputs = comb_cones(dut)
    assert inputs == {name for name, flow, _ in _leaves(dut) if flow == wiring.In}
    assert all(c == inputs for c in cones.values()), cones


# ---------------------------------------------------------------------------------------
# the MAC PE: cycle model of the documented port protocol, with resets

def with_domain(dut):
    """The DUT under an explicit ``sync`` domain, so a testbench can drive its ``rst``."""
    m = Module()
    m.domains.sync = cd = ClockDomain("sync")
    m.submodules.dut = dut
    return m, cd


def pack_rule(n, b_a, b_w, max_pack):
    """Elements per transfer as docs/hardware.md defines it: the largest p in (4, 2) with
    p <= max_pack and max(b_a, b_w) <= n / p, else 1 (width values above n included)."""
    return next((p for p in (4, 2) if p <= max_pack and max(b_a, b_w) * p <= n), 1)


def hw_view(q, n, b, rounding, signed, widths):
    """The view a width register gives: the contract's view at a built width, else 0."""
    return nested_view(q, n, b, rounding, signed=signed) if b in widths else 0


@pytest.mark.parametrize("overflow,signed", [("wrap", False), ("saturate", True)])
def test_pe_port_protocol_cycle_model(overflow, signed):
    """docs/hardware.md, "MAC PE": at a rising edge with en high,
    acc <- ovf((0 if first else acc) + view(a, b_a) * view(w, b_w), W), and with last also
    result <- that value; en low holds both, whatever first/last/operands; acc and result
    are registers (the new value shows right after the edge: one edge from operand to
    accumulator); one edge with rst high sets both to 0 whatever the other inputs."""
    n, W = 4, 9 if not signed else 8
    dut = MACPE(n=n, acc_width=W, overflow=overflow, signed=signed, view_rounding="half_up")
    top, cd = with_domain(dut)
    ovf = wrap if overflow == "wrap" else saturate
    lo, hi = code_range(n, signed)
    rng = random.Random(f"pe-{overflow}-{signed}")
    stats = {"first": 0, "last": 0, "idle": 0, "reset": 0, "clip": 0}

    async def bench(ctx):
        acc = result = 0
        for cycle in range(1500):
            rst = rng.random() < 0.03
            i = dict(a=rng.randint(lo, hi), w=rng.randint(lo, hi),
                     # mostly full width (to overflow W); 0 (and 1, signed) are not built
                     b_a=rng.choice([n, n, n, rng.randint(0, n)]),
                     b_w=rng.choice([n, n, n, rng.randint(0, n)]),
                     en=rng.random() < 0.8, first=rng.random() < 0.1, last=rng.random() < 0.3)
            for k, v in i.items():
                ctx.set(getattr(dut, k), v)
            ctx.set(cd.rst, rst)
            # registered outputs: the current state, whatever the inputs (rst included)
            assert (ctx.get(dut.acc), ctx.get(dut.result)) == (acc, result), cycle

            def view(q, b):
                return hw_view(q, n, b, "half_up", signed, dut.widths)

            await ctx.tick()
            if rst:
                acc = result = 0
                stats["reset"] += 1
            elif i["en"]:
                exact = (0 if i["first"] else acc) + view(i["a"], i["b_a"]) * view(i["w"], i["b_w"])
                acc = ovf(exact, W)
                stats["clip"] += acc != exact
                stats["first"] += i["first"]
                if i["last"]:
                    result = acc
                    stats["last"] += 1
            else:
                stats["idle"] += 1
        assert (ctx.get(dut.acc), ctx.get(dut.result)) == (acc, result)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert min(stats.values()) > 10, stats


def test_scalable_pe_port_protocol():
    """docs/hardware.md, "Scalable PE": ``pack`` follows b_a / b_w in the same cycle; at an
    edge with any en bit high the products of the enabled slots are added in slot order,
    each with the overflow rule (a slot at or above ``pack`` adds 0); acc / result as for
    the MAC PE, reset included."""
    n, W, P = 4, 9, 4
    dut = ScalableMACPE(n=n, acc_width=W, overflow="saturate", max_pack=P)
    top, cd = with_domain(dut)
    rng = random.Random("scalable")

    def pack_of(b_a, b_w):
        return pack_rule(n, b_a, b_w, P)

    async def bench(ctx):
        acc = result = 0
        seen = set()
        for cycle in range(1200):
            # every value of the 3-bit width fields: 0 and 5..7 are not built (views 0)
            b_a, b_w = rng.randrange(8), rng.randrange(8)
            ctx.set(dut.b_a, b_a)
            ctx.set(dut.b_w, b_w)
            assert ctx.get(dut.pack) == pack_of(b_a, b_w), (b_a, b_w)
            a = [rng.randint(0, 15) for _ in range(P)]
            w = [rng.randint(0, 15) for _ in range(P)]
            en, first, last = rng.randrange(1 << P), rng.random() < 0.2, rng.random() < 0.3
            if rng.random() < 0.2:
                en = 0
            rst = rng.random() < 0.03
            ctx.set(dut.a, a)
            ctx.set(dut.w, w)
            ctx.set(dut.en, en)
            ctx.set(dut.first, first)
            ctx.set(dut.last, last)
            ctx.set(cd.rst, rst)
            assert (ctx.get(dut.acc), ctx.get(dut.result)) == (acc, result), cycle
            await ctx.tick()
            if rst:
                acc = result = 0
                continue
            if not en:
                continue
            pk = pack_of(b_a, b_w)
            value = 0 if first else acc
            for s in range(P):
                if en >> s & 1:
                    prod = (hw_view(a[s], n, b_a, "floor", False, dut.widths)
                            * hw_view(w[s], n, b_w, "floor", False, dut.widths)
                            if s < pk else 0)
                    value = saturate(value + prod, W)
                    seen.add((pk, s))
            acc = value
            if last:
                result = acc
        assert {(p, s) for p in (1, 2, 4) for s in range(P)} <= seen

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


# ---------------------------------------------------------------------------------------
# the tile: the documented handshake as a cycle model

class TileHandshake:
    """The tile's control as docs/hardware.md ("Tile stream protocol", the dependency
    table, "Reset") states it, counted in steps (cycles in which the datapath advances).
    Row i of a tile whose last step is step s is due at step s + 1 + C + i (the PE array's
    drain timing); the last steps of two tiles are at least max(R, C) steps apart."""

    def __init__(self, R, C, n, depth_bits, max_pack, rq_lanes=None, rq_stages=0):
        self.R, self.C, self.n, self.db, self.P = R, C, n, depth_bits, max_pack
        self.period = max(R, C)
        self.G = C // (rq_lanes or C)  # cycles per emitted row (lane groups)
        self.S = rq_stages  # register ranks of the requantizer lanes
        self.reset()

    def reset(self):
        self.k, self.gap, self.step, self.due, self.out_full = 0, self.period, 0, {}, False
        self.group = 0
        self.pipe = [False] * self.S  # rq_stages > 0: is the row in each rank emitted?

    def comb(self, i):
        """Every ready / valid for the inputs ``i`` in the current state, and the
        internal terms (for the coverage counters)."""
        row = self.due.get(self.step)
        due = row is not None
        emit = due and row < i["m"]
        row_done = self.group == self.G - 1
        out_free = not self.out_full or i["out_ready"]
        if self.S:  # the row entering the lanes needs rq; the one leaving them, out
            leaving = self.pipe[-1]
            advance = (not due or i["rq_valid"]) and (not leaving or out_free)
        else:
            advance = not due or (i["rq_valid"] and (not emit or (row_done and out_free)))
        K = i["k"] or (1 << self.db)
        if self.P == 1:
            step_elems, is_last = 1, self.k == K - 1
        else:
            step_elems = pack_rule(self.n, i["b_a"], i["b_w"], self.P)
            is_last = K - self.k <= step_elems
        waits = is_last and self.gap != self.period
        fire = advance and i["cmd_valid"] and i["act_valid"] and i["wgt_valid"] and not waits
        out = {"cmd.ready": fire and is_last, "act.ready": fire, "wgt.ready": fire,
               "rq.ready": advance and due and row == self.R - 1, "out.valid": self.out_full}
        terms = dict(due=due, emit=emit, advance=advance, fire=fire, is_last=is_last,
                     waits=waits, step_elems=step_elems, row_done=row_done,
                     loads=advance and (self.pipe[-1] if self.S else due and emit))
        return out, terms

    def edge(self, i, rst):
        if rst:
            self.reset()
            return
        _, t = self.comb(i)
        self.out_full = (self.out_full and not i["out_ready"]) or t["loads"]
        if self.S and t["advance"]:
            self.pipe = [t["due"] and t["emit"]] + self.pipe[:-1]
        if t["advance"] and t["due"] and t["emit"]:
            self.group = 0
        elif t["due"] and t["emit"] and i["rq_valid"] and not t["row_done"]:
            self.group += 1  # a lane group of the row done, the array frozen
        if not t["advance"]:
            return  # frozen: nothing moves
        if t["fire"] and t["is_last"]:
            for r in range(self.R):
                self.due[self.step + 1 + self.C + r] = r
            self.k, self.gap = 0, 1
        else:
            if t["fire"]:
                self.k = (self.k + t["step_elems"]) % (1 << self.db)
            if self.gap != self.period:
                self.gap += 1
        self.due.pop(self.step, None)
        self.step += 1


HANDSHAKE = ("cmd_valid", "act_valid", "wgt_valid", "rq_valid", "out_ready")


class Master:
    """An AXI-Stream-like source: raises valid at random, holds valid and payload until
    the transfer; ``draw`` gives a new payload (int of the payload's width)."""

    def __init__(self, rng, draw, p):
        self.rng, self.draw, self.p = rng, draw, p
        self.valid, self.payload = False, draw()

    def before(self):
        if not self.valid and self.rng.random() < self.p:
            self.valid = True

    def after(self, ready):
        if self.valid and ready:
            self.valid, self.payload = False, self.draw()


def _tile_ports(dut):
    hs = {"cmd_valid": dut.cmd.valid, "act_valid": dut.act.valid, "wgt_valid": dut.wgt.valid,
          "rq_valid": dut.rq.valid, "out_ready": dut.out.ready}
    outs = {"cmd.ready": dut.cmd.ready, "act.ready": dut.act.ready,
            "wgt.ready": dut.wgt.ready, "rq.ready": dut.rq.ready, "out.valid": dut.out.valid}
    return hs, outs


def _payload_int(rng, view):
    return rng.getrandbits(len(Value.cast(view)))


TILE_CONFIGS = [
    dict(rows=2, cols=3),
    dict(rows=3, cols=2),
    dict(rows=2, cols=2, max_pack=4),
    dict(rows=2, cols=4, rq_lanes=2),
    dict(rows=3, cols=2, rq_lanes=1),
    dict(rows=2, cols=3, rq_stages=1),
    dict(rows=3, cols=2, rq_stages=2, max_pack=4),
]


@pytest.mark.parametrize("params", TILE_CONFIGS, ids=lambda p: "-".join(
    f"{k}={v}" for k, v in p.items()))
def test_tile_handshake_matches_documented_model(params):
    """Random traffic with random resets; in every cycle the hardware's five ready/valid
    outputs equal the documented model for all 32 handshake input combinations and for
    random payloads (the payload fields the table names move them as documented, the others
    never); out.valid / out.payload stay stable while out is full and not ready."""
    dut = Tile(n=4, acc_width=12, depth_bits=3, kbits=6, ebits=2, sbits=3, **params)
    R, C, P, db = dut.rows, dut.cols, dut.max_pack, dut.depth_bits
    top, cd = with_domain(dut)
    model = TileHandshake(R, C, dut.n, db, P, dut.design.rq_lanes, dut.design.rq_stages)
    hs_sigs, out_sigs = _tile_ports(dut)
    hs_cat = Cat(*hs_sigs.values())
    rng = random.Random(f"handshake-{params}")
    cov = {k: 0 for k in ("row_frozen_rq", "row_frozen_out", "gap_wait", "skip_row",
                          "emit", "tile", "reset_midtile", "reset_out_full", "k0")}

    def draw_cmd():
        # short tiles (gap waits), K = 0 (= 2^depth_bits), widths of every pack factor
        k = rng.choice([1, 1, 2, 3, 0, rng.randrange(1 << db)])
        return dict(k=k, b_a=rng.randint(1, dut.n), b_w=rng.randint(1, dut.n))

    def draw_rq():
        return rng.getrandbits(len(Value.cast(dut.rq.payload)))

    masters = {
        "cmd": Master(rng, draw_cmd, 0.7),
        "act": Master(rng, lambda: _payload_int(rng, dut.act.payload), 0.8),
        "wgt": Master(rng, lambda: _payload_int(rng, dut.wgt.payload), 0.8),
        "rq": Master(rng, draw_rq, 0.6),
    }

    async def bench(ctx):
        reset_left = 0
        prev_out = None
        for cycle in range(500):
            p_reset = 0.03 if model.out_full else 0.01 if model.k else 0.003
            if reset_left == 0 and rng.random() < p_reset:
                reset_left = rng.randint(1, 3)
                cov["reset_midtile"] += model.k != 0
                cov["reset_out_full"] += model.out_full
            rst = reset_left > 0
            reset_left -= rst
            for s in masters.values():
                s.before()
            out_ready = rng.random() < 0.6
            ctx.set(cd.rst, rst)
            ctx.set(dut.cmd.payload, masters["cmd"].payload)
            for s in ("act", "wgt", "rq"):
                ctx.set(Value.cast(getattr(dut, s).payload), masters[s].payload)

            def inputs(hs_bits):
                i = {name: bool(hs_bits >> b & 1) for b, name in enumerate(HANDSHAKE)}
                i.update(k=ctx.get(dut.cmd.payload.k), b_a=ctx.get(dut.cmd.payload.b_a),
                         b_w=ctx.get(dut.cmd.payload.b_w), m=ctx.get(dut.rq.payload.m))
                return i

            def check(hs_bits, what):
                ctx.set(hs_cat, hs_bits)
                want, _ = model.comb(inputs(hs_bits))
                got = {k: bool(ctx.get(s)) for k, s in out_sigs.items()}
                assert got == want, (cycle, what, inputs(hs_bits))

            # every handshake combination, with the masters' payloads
            for hs_bits in range(32):
                check(hs_bits, "handshake")
            # random payloads on every stream (cmd: any k / widths, rq: any m / lanes)
            # (a cmd whose K is below the elements already taken is outside the protocol:
            # cmd is held unchanged for its whole tile)
            for _ in range(3):
                for s in ("act", "wgt", "rq"):
                    ctx.set(Value.cast(getattr(dut, s).payload),
                            _payload_int(rng, getattr(dut, s).payload))
                k = rng.choice([k for k in range(1 << db) if (k or 1 << db) > model.k])
                ctx.set(dut.cmd.payload, dict(k=k, b_a=rng.randrange(8), b_w=rng.randrange(8)))
                check(rng.randrange(32), "payload")
            # the cycle's real inputs
            ctx.set(dut.cmd.payload, masters["cmd"].payload)
            for s in ("act", "wgt", "rq"):
                ctx.set(Value.cast(getattr(dut, s).payload), masters[s].payload)
            hs_bits = sum(v << b for b, v in enumerate(
                [masters["cmd"].valid, masters["act"].valid, masters["wgt"].valid,
                 masters["rq"].valid, out_ready]))
            check(hs_bits, "real")
            i = inputs(hs_bits)
            want, t = model.comb(i)
            # AXI-Stream source rule for out: held until taken, payload stable meanwhile
            out_payload = ctx.get(Value.cast(dut.out.payload))
            if prev_out is not None:
                assert want["out.valid"] and out_payload == prev_out, cycle
            prev_out = out_payload if (want["out.valid"] and not out_ready and not rst) else None
            if not rst:
                cov["row_frozen_rq"] += t["due"] and not i["rq_valid"]
                cov["row_frozen_out"] += (
                    (model.pipe[-1] if model.S else t["due"] and t["emit"] and i["rq_valid"]
                     and t["row_done"]) and model.out_full and not out_ready)
                if model.G > 1:  # frozen while a lane group of the row is requantized
                    cov["lane_group"] = cov.get("lane_group", 0) + (
                        t["due"] and t["emit"] and i["rq_valid"] and not t["row_done"])
                cov["gap_wait"] += (t["waits"] and i["cmd_valid"] and i["act_valid"]
                                    and i["wgt_valid"])
                cov["skip_row"] += t["due"] and not t["emit"] and t["advance"]
                cov["emit"] += t["loads"]
                cov["tile"] += want["cmd.ready"]
                cov["k0"] += want["cmd.ready"] and i["k"] == 0
            await ctx.tick()
            model.edge(i, rst)
            for s, m_ in masters.items():
                m_.after(want[f"{s}.ready"])

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert min(cov.values()) >= 2, cov


# ---------------------------------------------------------------------------------------
# the tile's reset: one cycle from any state = power-on

def _trace(dut, cd, ctx_cycles, seed, *, dirty=0, reset_len=1):
    """Run ``dirty`` cycles of random traffic (then ``reset_len`` cycles of rst with every
    valid low), then ``ctx_cycles`` cycles of seeded traffic; return every output of every
    cycle of the last part (the traffic reacts to the readies, so the traces of two
    instances match only if they behave identically), and what the dirty part left:
    (a tile half taken, out.valid high)."""
    hs_sigs, out_sigs = _tile_ports(dut)
    trace = []
    left = {"midtile": False, "out_full": False}

    async def traffic(ctx, rng, cycles, record, p_ready):
        masters = {
            "cmd": Master(rng, lambda: dict(k=rng.choice([1, 2, 5, 0]),
                                            b_a=rng.randint(1, dut.n), b_w=rng.randint(1, dut.n)),
                          0.7),
            "act": Master(rng, lambda: _payload_int(rng, dut.act.payload), 0.8),
            "wgt": Master(rng, lambda: _payload_int(rng, dut.wgt.payload), 0.8),
            "rq": Master(rng, lambda: dict(m=rng.randint(0, dut.rows), ncols=dut.cols,
                                           b_out=dut.n, rounding=0,
                                           lanes=[dict(k1=1) for _ in range(dut.cols)]), 0.6),
        }
        for _ in range(cycles):
            for s in masters.values():
                s.before()
            for name, s in masters.items():
                ctx.set(getattr(dut, name).valid, s.valid)
                payload = getattr(dut, name).payload
                ctx.set(Value.cast(payload) if isinstance(s.payload, int) else payload,
                        s.payload)
            ctx.set(dut.out.ready, rng.random() < p_ready)
            readies = {k: ctx.get(v) for k, v in out_sigs.items()}
            if record:
                trace.append((readies, ctx.get(Value.cast(dut.out.payload))))
            await ctx.tick()
            if readies["act.ready"] and masters["act"].valid:
                left["midtile"] = not readies["cmd.ready"]
            for name, s in masters.items():
                s.after(readies[f"{name}.ready"])

    async def bench(ctx):
        if dirty:
            await traffic(ctx, random.Random(f"dirty-{seed}"), dirty, False, 0.2)
            left["out_full"] = bool(ctx.get(dut.out.valid))
            for sig in hs_sigs.values():
                ctx.set(sig, 0)
            ctx.set(cd.rst, 1)
            for _ in range(reset_len):
                await ctx.tick()
            ctx.set(cd.rst, 0)
        await traffic(ctx, random.Random(f"run-{seed}"), ctx_cycles, True, 0.6)

    top = Module()
    top.domains.sync = cd
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return trace, left


def _tile(**kw):
    return Tile(rows=2, cols=3, n=4, acc_width=12, depth_bits=3, kbits=6, ebits=2, sbits=3,
                **kw)


@pytest.mark.parametrize("max_pack, rq_lanes, rq_stages", [(1, None, 0), (4, None, 0), (1, 1, 0),
                                                          (1, None, 2)])
def test_tile_one_reset_cycle_equals_power_on(max_pack, rq_lanes, rq_stages):
    """docs/hardware.md, "Reset": one rising edge with rst high, from any state, leaves the
    tile exactly as it powers up; a longer reset changes nothing. Compared cycle for cycle
    on every ready / valid and out.payload, from dirty states reached by random traffic
    (mid-tile, rows pending in the array, out full)."""
    kw = ({"max_pack": max_pack} if max_pack > 1 else {}) | {"rq_lanes": rq_lanes,
                                                             "rq_stages": rq_stages}
    fresh, _ = _trace(_tile(**kw), ClockDomain("sync"), 150, 0)
    assert sum(r["out.valid"] for r, _ in fresh) > 10
    states = []
    for dirty, reset_len in ((8, 1), (20, 1), (22, 1), (47, 1), (59, 1), (20, 3)):
        got, left = _trace(_tile(**kw), ClockDomain("sync"), 150, 0, dirty=dirty,
                           reset_len=reset_len)
        assert got == fresh, (dirty, reset_len)
        states.append(left)
    assert any(s["midtile"] for s in states) and any(s["out_full"] for s in states), states


def test_tile_outputs_during_and_after_reset():
    """What docs/hardware.md says the outputs show: during the cycle in which rst is first
    high, the old state (rst acts only at the edge and reaches no output combinationally);
    from its edge on, the power-on state: out.valid low, rq.ready low, and act/wgt.ready =
    cmd.valid & act.valid & wgt.valid in the very cycle after that edge (rst still high or
    not), cmd.ready too for a tile of K = 1 (no min_period wait after reset)."""
    dut = _tile()
    top, cd = with_domain(dut)
    seen = {}

    async def bench(ctx):
        # fill the out register: one tile of K = 1 with M = 2, out.ready low
        ctx.set(dut.cmd.payload, dict(k=1, b_a=4, b_w=4))
        ctx.set(dut.rq.payload, dict(m=2, ncols=3, b_out=4, rounding=0))
        ctx.set(dut.out.ready, 0)
        for s in (dut.cmd, dut.act, dut.wgt, dut.rq):
            ctx.set(s.valid, 1)
        for cycle in range(20):
            if ctx.get(dut.out.valid):
                break
            await ctx.tick()
            if cycle == 0:
                for s in (dut.cmd, dut.act, dut.wgt):
                    ctx.set(s.valid, 0)
        assert ctx.get(dut.out.valid)
        # a second tile of K = 1 now: not taken (frozen: row 1 is due while out is full)
        for s in (dut.cmd, dut.act, dut.wgt):
            ctx.set(s.valid, 1)
        seen["ready before reset"] = ctx.get(dut.act.ready)
        ctx.set(cd.rst, 1)
        # the cycle with rst high still shows the old state
        seen["out.valid in rst cycle"] = ctx.get(dut.out.valid)
        seen["act.ready in rst cycle"] = ctx.get(dut.act.ready)
        for n_reset in range(3):
            await ctx.tick()
            seen[f"after reset edge {n_reset}"] = (
                ctx.get(dut.out.valid), ctx.get(dut.rq.ready), ctx.get(dut.act.ready),
                ctx.get(dut.wgt.ready), ctx.get(dut.cmd.ready))
        seen["out.payload after reset"] = ctx.get(Value.cast(dut.out.payload))
        ctx.set(cd.rst, 0)
        seen["first cycle after reset"] = (
            ctx.get(dut.out.valid), ctx.get(dut.rq.ready), ctx.get(dut.act.ready),
            ctx.get(dut.wgt.ready), ctx.get(dut.cmd.ready))
        ctx.set(dut.act.valid, 0)
        seen["act.valid low"] = (ctx.get(dut.act.ready), ctx.get(dut.wgt.ready),
                                 ctx.get(dut.cmd.ready))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen["ready before reset"] == 0  # the out register is full and a row is due
    assert seen["out.valid in rst cycle"] == 1
    assert seen["act.ready in rst cycle"] == 0
    for n_reset in range(3):
        assert seen[f"after reset edge {n_reset}"] == (0, 0, 1, 1, 1)
    assert seen["first cycle after reset"] == (0, 0, 1, 1, 1)
    assert seen["out.payload after reset"] == 0
    assert seen["act.valid low"] == (0, 0, 0)
