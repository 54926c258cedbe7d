"""Output-stationary R x C PE array with systolic skew, edge views and side sums.

Data flow, counted in *steps* (clock cycles with ``en`` high; ``en`` low freezes every
register of the array, which is how the tile applies back-pressure):

- At step t the edge takes one activation column ``a[0..R-1]`` (element k of every row) and
  one weight row ``w[0..C-1]`` (element k of every column) with the flags ``valid``,
  ``first`` (k = 0) and ``last`` (k = K - 1), views them once per row / column at the
  run-time widths ``b_a`` / ``b_w``, and registers them.
- Row i is delayed by i more registers, column j by j, and operands hop one PE per step
  (activations east, weights south, the flags with the activations), so PE(i, j) adds
  element k at step t_k + 1 + i + j. A width switch therefore needs nothing inside the
  array: the views happen at the edge, and every operand travels already viewed.
- Each PE accumulates one output (:class:`~dqt_hw.hw.pe.MACPE`); on ``last`` it copies the
  value into its result register, so the next tile starts at once (no drain).
- The side sums (sum of the viewed activations of row i, of the viewed weights of column
  j, over k) are exact accumulators at the array's west and north edges, on the same skew.
- Drain: row i of a tile whose last element entered at step t_L is presented on the
  ``row_*`` outputs at step D_i = t_L + 1 + C + i (``row_valid`` high, ``row_index`` = i),
  all C columns at once. Rows come out in order 0..R-1 at one per step.

Precondition (kept by the tile's input controller): the last elements of consecutive tiles
enter at least ``min_period`` = max(R, C) steps apart, so a result is read before the next
tile overwrites it and two tiles never drain in the same step.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth import signed as signed_shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..design import Design
from ..design.rules import check_bool, check_int, check_master_width, pack_modes, width_field_bits
from . import faults
from ._params import validated_init
from .pe import MACPE
from .scalable import ScalableMACPE
from .view import NestedView, code_shape

__all__ = ["PEArray", "SideSum"]


class SideSum(wiring.Component):
    """Exact accumulator of viewed codes: ``total`` = sum of x over one tile.

    Members: ``en``, ``first``, ``last``, ``x`` (In); ``total`` (Out, signed), updated on
    the ``last`` step and held until the next tile's ``last``. With ``terms`` > 1, ``x`` is
    the sum of up to ``terms`` codes of one step (a packed array's slots).
    """

    @validated_init
    def __init__(self, *, n, signed, width, terms=1):
        self._n = check_master_width(n)
        self._signed = check_bool("signed", signed)
        self._width = check_int("side-sum width", width, self._n + 1, 64)
        self._terms = check_int("side-sum terms", terms, 1, 4)
        if self._terms == 1:
            x_shape = code_shape(self._n, self._signed)
        else:
            xbits = self._n + (self._terms - 1).bit_length()
            x_shape = signed_shape(xbits) if self._signed else unsigned(xbits)
        super().__init__(
            {
                "en": In(1),
                "first": In(1),
                "last": In(1),
                "x": In(x_shape),
                "total": Out(signed_shape(self._width)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        run = Signal(signed_shape(self._width), name="running")
        new = Signal(signed_shape(self._width), name="next")
        m.d.comb += new.eq(Mux(self.first, 0, run) + self.x)
        with m.If(self.en):
            m.d.sync += run.eq(new)
            with m.If(self.last):
                m.d.sync += self.total.eq(new)
        return m


class PEArray(wiring.Component):
    """R x C output-stationary MAC array (see the module docstring for the timing).

    Parameters
    ----------
    design : dqt_hw.design.Design, optional
        Its ``rows`` and ``cols`` (R and C, 1..64), ``n``, ``acc_width``, ``overflow``,
        ``view_rounding``, ``signed``, ``widths`` (as for :class:`~dqt_hw.hw.pe.MACPE`),
        ``depth_bits`` (side sums are exact for tiles of up to 2^depth_bits elements)
        and ``max_pack``: 1, one element of K per step, :class:`~dqt_hw.hw.pe.MACPE` PEs;
        2 or 4, :class:`~dqt_hw.hw.scalable.ScalableMACPE` bricks, up to ``max_pack``
        elements per step when both views are narrow enough (``pack``).
    **params
        Keyword parameters on top of ``design`` (or of the defaults).

    Members
    -------
    en : In(1)                       advance one step
    valid, first, last : In(1)       edge flags of this step's element
    b_a, b_w : In(unsigned)          view widths of this step's element
    a : In(array of R codes); w : In(array of C codes)   master codes
    (with max_pack > 1: ``a[s][i]``, ``w[s][j]`` the codes of slot s = element k + s,
    ``valid`` : In(max_pack) the slots that carry an element, a prefix of ``pack``, and
    ``pack`` : Out(range) = pack_factor(n, b_a, b_w, max_pack) for this step's widths)
    row_valid : Out(1); row_index : Out(unsigned)
    row_acc : Out(array of C signed(W))
    row_sum_a : Out(signed); row_sum_w : Out(array of C signed)
    """

    @validated_init
    def __init__(self, design=None, /, **params):
        self.design = d = Design.of("array", design, params)
        self._R, self._C, self._n, self._signed = d.rows, d.cols, d.n, d.signed
        self._widths, self._W, self._overflow = d.widths, d.acc_width, d.overflow
        self._view_rounding, self._depth_bits, self._P = d.view_rounding, d.depth_bits, d.max_pack
        code = code_shape(self._n, self._signed)
        wbits = width_field_bits(self._n)
        sw = signed_shape(self.sum_width)
        P = self._P
        packed = {}
        if P > 1:
            packed = {"pack": Out(range(P + 1))}
        super().__init__(
            {
                "en": In(1),
                "valid": In(P),
                "first": In(1),
                "last": In(1),
                "b_a": In(unsigned(wbits)),
                "b_w": In(unsigned(wbits)),
                "a": In(data.ArrayLayout(code, self._R) if P == 1
                        else data.ArrayLayout(data.ArrayLayout(code, self._R), P)),
                "w": In(data.ArrayLayout(code, self._C) if P == 1
                        else data.ArrayLayout(data.ArrayLayout(code, self._C), P)),
                **packed,
                "row_valid": Out(1),
                "row_index": Out(unsigned(max(1, (self._R - 1).bit_length()))),
                "row_acc": Out(data.ArrayLayout(signed_shape(self._W), self._C)),
                "row_sum_a": Out(sw),
                "row_sum_w": Out(data.ArrayLayout(sw, self._C)),
            }
        )

    rows = property(lambda self: self._R)
    cols = property(lambda self: self._C)
    n = property(lambda self: self._n)
    acc_width = property(lambda self: self._W)
    overflow = property(lambda self: self._overflow)
    view_rounding = property(lambda self: self._view_rounding)
    signed = property(lambda self: self._signed)
    widths = property(lambda self: self._widths)
    depth_bits = property(lambda self: self._depth_bits)
    max_pack = property(lambda self: self._P)

    @property
    def sum_width(self) -> int:
        return self.design.side_sum_width

    @property
    def min_period(self) -> int:
        """Fewest steps between the last elements of consecutive tiles."""
        return self.design.min_period

    @property
    def latency(self) -> int:
        """Steps from a tile's last element at the edge to its row 0 on ``row_*``."""
        return self.design.array_latency

    def elaborate(self, platform):
        if self._P > 1:
            return self._elaborate_packed()
        m = Module()
        R, C, n = self._R, self._C, self._n
        code = code_shape(n, self._signed)
        en = self.en

        def reg(name, shape, src):
            r = Signal(shape, name=name)
            with m.If(en):
                m.d.sync += r.eq(src)
            return r

        # edge: one view unit per row and per column, then a register
        row_in, col_in = [], []
        ev = reg("edge_valid", 1, self.valid)
        ef = reg("edge_first", 1, self.first)
        el = reg("edge_last", 1, self.last)
        for i in range(R):
            u = NestedView(self.design)
            m.submodules[f"view_a{i}"] = u
            m.d.comb += [u.q.eq(self.a[i]), u.b.eq(self.b_a)]
            row_in.append(reg(f"edge_a{i}", code, u.v))
        for j in range(C):
            u = NestedView(self.design)
            m.submodules[f"view_w{j}"] = u
            m.d.comb += [u.q.eq(self.w[j]), u.b.eq(self.b_w)]
            col_in.append(reg(f"edge_w{j}", code, u.v))

        # skew: row i by i registers (its operand and flags), column j by j registers
        a_in = [[None] * (C + 1) for _ in range(R)]
        f_in = [[None] * (C + 1) for _ in range(R)]  # (valid, first, last)
        w_in = [[None] * C for _ in range(R + 1)]
        for i in range(R):
            a, f = row_in[i], (ev, ef, el)
            for s in range(i):
                a = reg(f"skew_a{i}_{s}", code, a)
                f = tuple(reg(f"skew_{nm}{i}_{s}", 1, x) for nm, x in zip("vfl", f))
            a_in[i][0], f_in[i][0] = a, f
        for j in range(C):
            w = col_in[j]
            for s in range(j):
                w = reg(f"skew_w{j}_{s}", code, w)
            w_in[0][j] = w

        # the PEs; operands and flags hop east / south one register per PE
        pe_design = self.design.sub("pe", views=False)
        pes = [[None] * C for _ in range(R)]
        for i in range(R):
            for j in range(C):
                pe = pes[i][j] = MACPE(pe_design)
                m.submodules[f"pe_{i}_{j}"] = pe
                v, fi, la = f_in[i][j]
                m.d.comb += [
                    pe.a.eq(a_in[i][j]),
                    pe.w.eq(w_in[i][j]),
                    pe.en.eq(en & v),
                    pe.first.eq(fi),
                    pe.last.eq(la),
                ]
                if j + 1 < C:
                    a_in[i][j + 1] = reg(f"a_{i}_{j}", code, a_in[i][j])
                f_in[i][j + 1] = tuple(
                    reg(f"{nm}_{i}_{j}", 1, x) for nm, x in zip("vfl", f_in[i][j])
                )
                if i + 1 < R:
                    w_in[i + 1][j] = reg(f"w_{i}_{j}", code, w_in[i][j])

        # side sums at the west edge (per row) and the north edge (per column)
        skw = dict(n=n, signed=self._signed, width=self.sum_width)
        sum_a, sum_w = [], []
        for i in range(R):
            s = SideSum(**skw)
            m.submodules[f"sum_a{i}"] = s
            v, fi, la = f_in[i][0]
            m.d.comb += [s.en.eq(en & v), s.first.eq(fi), s.last.eq(la), s.x.eq(a_in[i][0])]
            sum_a.append(s.total)
        for j in range(C):
            s = SideSum(**skw)
            m.submodules[f"sum_w{j}"] = s
            v, fi, la = f_in[0][j]
            m.d.comb += [s.en.eq(en & v), s.first.eq(fi), s.last.eq(la), s.x.eq(w_in[0][j])]
            sum_w.append(s.total)

        # drain: row i is read when its tile's last flag leaves PE(i, C-1)
        trig = [f_in[i][C][0] & f_in[i][C][2] for i in range(R)]
        any_trig = 0
        for t in trig:
            any_trig = any_trig | t
        m.d.comb += self.row_valid.eq(any_trig)
        idx = 0
        for i in range(1, R):
            idx = idx | Mux(trig[i], i, 0)
        m.d.comb += self.row_index.eq(idx)
        sa = 0
        wrong = faults.on("side_sum_row")
        for i in range(R):
            src = sum_a[i - 1] if wrong and i else sum_a[i]
            sa = sa | Mux(trig[i], src.as_unsigned(), 0)
        m.d.comb += self.row_sum_a.eq(sa)
        for j in range(C):
            acc = 0
            for i in range(R):
                acc = acc | Mux(trig[i], pes[i][j].result.as_unsigned(), 0)
            m.d.comb += self.row_acc[j].eq(acc)
            # row 0 reads the column sums directly and keeps a copy for rows 1..R-1
            copy = Signal(signed_shape(self.sum_width), name=f"held_sum_w{j}")
            with m.If(en & trig[0]):
                m.d.sync += copy.eq(sum_w[j])
            m.d.comb += self.row_sum_w[j].eq(Mux(trig[0], sum_w[j], copy))
        return m

    def _elaborate_packed(self):
        """max_pack > 1: the same array, with up to P elements per step.

        At the edge each slot is viewed, and the views of a row (column) are packed into
        one n-bit word by the packing mode of the step's widths (slot s of mode p in bits
        [s n/p, (s+1) n/p), as in :class:`~dqt_hw.hw.scalable.ScalableMACPE`). The words
        travel the array like the single codes of max_pack = 1, the mode bits and the slot
        mask with the flags, so a width switch still needs nothing inside the array. The
        side sums unpack the words at the array's edges.
        """
        m = Module()
        R, C, n, P, sgn = self._R, self._C, self._n, self._P, self._signed
        modes = pack_modes(P)
        nm = len(modes) - 1
        code = code_shape(n, sgn)
        en = self.en

        def reg(name, shape, src):
            r = Signal(shape, name=name)
            with m.If(en):
                m.d.sync += r.eq(src)
            return r

        # packing mode of this step: mode bit q <=> pack = modes[q + 1]
        bmax = Signal(range(n + 1), name="bmax")
        m.d.comb += bmax.eq(Mux(self.b_a > self.b_w, self.b_a, self.b_w))
        mode_now = Signal(nm, name="mode_now")
        pack = 1
        for q, p in enumerate(modes[1:]):
            cond = bmax <= n // p
            for p2 in modes[q + 2:]:
                cond = cond & ~(bmax <= n // p2)
            m.d.comb += mode_now[q].eq(cond)
            pack = Mux(mode_now[q], p, pack)
        m.d.comb += self.pack.eq(pack)

        def word(views, name):
            expr = views[0].as_unsigned()
            for q, p in enumerate(modes[1:]):
                packed = Cat(*[views[s].as_unsigned()[: n // p] for s in range(p)])
                expr = Mux(mode_now[q], packed, expr)
            wd = Signal(n, name=name)
            m.d.comb += wd.eq(expr)
            return wd

        ev = reg("edge_valid", P, self.valid)
        ef = reg("edge_first", 1, self.first)
        el = reg("edge_last", 1, self.last)
        em = reg("edge_mode", nm, mode_now)
        row_in, col_in = [], []
        for i in range(R):
            views = []
            for s in range(P):
                u = NestedView(self.design)
                m.submodules[f"view_a{i}_{s}"] = u
                m.d.comb += [u.q.eq(self.a[s][i]), u.b.eq(self.b_a)]
                views.append(u.v)
            row_in.append(reg(f"edge_a{i}", n, word(views, f"word_a{i}")))
        for j in range(C):
            views = []
            for s in range(P):
                u = NestedView(self.design)
                m.submodules[f"view_w{j}_{s}"] = u
                m.d.comb += [u.q.eq(self.w[s][j]), u.b.eq(self.b_w)]
                views.append(u.v)
            col_in.append(reg(f"edge_w{j}", n, word(views, f"word_w{j}")))

        # skew, as for max_pack = 1; flags are (valid mask, first, last, mode)
        flag_shapes = (P, 1, 1, nm)
        a_in = [[None] * (C + 1) for _ in range(R)]
        f_in = [[None] * (C + 1) for _ in range(R)]
        w_in = [[None] * C for _ in range(R + 1)]
        m_in = [[None] * C for _ in range(R + 1)]  # mode travelling with the weights
        for i in range(R):
            a, f = row_in[i], (ev, ef, el, em)
            for s in range(i):
                a = reg(f"skew_a{i}_{s}", n, a)
                f = tuple(reg(f"skew_{nm_}{i}_{s}", sh, x)
                          for nm_, sh, x in zip("vflm", flag_shapes, f))
            a_in[i][0], f_in[i][0] = a, f
        for j in range(C):
            w, md = col_in[j], em
            for s in range(j):
                w = reg(f"skew_w{j}_{s}", n, w)
                md = reg(f"skew_wm{j}_{s}", nm, md)
            w_in[0][j], m_in[0][j] = w, md

        pe_design = self.design.sub("scalable_pe", views=False)
        pes = [[None] * C for _ in range(R)]
        for i in range(R):
            for j in range(C):
                pe = pes[i][j] = ScalableMACPE(pe_design)
                m.submodules[f"pe_{i}_{j}"] = pe
                v, fi, la, md = f_in[i][j]
                m.d.comb += [
                    pe.a.eq(a_in[i][j]),
                    pe.w.eq(w_in[i][j]),
                    pe.mode.eq(md),
                    pe.en.eq(Mux(en, v, 0)),
                    pe.first.eq(fi),
                    pe.last.eq(la),
                ]
                if j + 1 < C:
                    a_in[i][j + 1] = reg(f"a_{i}_{j}", n, a_in[i][j])
                f_in[i][j + 1] = tuple(
                    reg(f"{nm_}_{i}_{j}", sh, x)
                    for nm_, sh, x in zip("vflm", flag_shapes, f_in[i][j]))
                if i + 1 < R:
                    w_in[i + 1][j] = reg(f"w_{i}_{j}", n, w_in[i][j])

        def slot_sum(wd, mask, md, name):
            """Sum of the viewed codes of the slots in ``mask``, unpacked from ``wd``."""
            total = 0
            for s in range(P):
                val = wd[:n].as_signed() if sgn else wd[:n]
                for q, p in enumerate(modes[1:]):
                    if s < p:
                        f = wd[s * n // p:(s + 1) * n // p]
                        val = Mux(md[q], f.as_signed() if sgn else f, val)
                    else:
                        val = Mux(md[q], 0, val)
                if s > 0:  # slot s > 0 is empty in mode 1
                    single = ~md.any()
                    val = Mux(single, 0, val)
                total = total + Mux(mask[s], val, 0)
            xbits = n + (P - 1).bit_length()
            x = Signal(signed_shape(xbits) if sgn else unsigned(xbits), name=name)
            m.d.comb += x.eq(total)
            return x

        skw = dict(n=n, signed=sgn, width=self.sum_width, terms=P)
        sum_a, sum_w = [], []
        for i in range(R):
            s_ = SideSum(**skw)
            m.submodules[f"sum_a{i}"] = s_
            v, fi, la, md = f_in[i][0]
            m.d.comb += [s_.en.eq(en & v.any()), s_.first.eq(fi), s_.last.eq(la),
                         s_.x.eq(slot_sum(a_in[i][0], v, md, f"slots_a{i}"))]
            sum_a.append(s_.total)
        for j in range(C):
            s_ = SideSum(**skw)
            m.submodules[f"sum_w{j}"] = s_
            v, fi, la, _ = f_in[0][j]
            m.d.comb += [s_.en.eq(en & v.any()), s_.first.eq(fi), s_.last.eq(la),
                         s_.x.eq(slot_sum(w_in[0][j], v, m_in[0][j], f"slots_w{j}"))]
            sum_w.append(s_.total)

        trig = [f_in[i][C][0].any() & f_in[i][C][2] for i in range(R)]
        self._drain(m, trig, pes, sum_a, sum_w)
        return m

    def _drain(self, m, trig, pes, sum_a, sum_w):
        """Row i is read when its tile's last flag leaves PE(i, C-1) (``trig[i]``)."""
        R, C, en = self._R, self._C, self.en
        any_trig = 0
        for t in trig:
            any_trig = any_trig | t
        m.d.comb += self.row_valid.eq(any_trig)
        idx = 0
        for i in range(1, R):
            idx = idx | Mux(trig[i], i, 0)
        m.d.comb += self.row_index.eq(idx)
        sa = 0
        wrong = faults.on("side_sum_row")
        for i in range(R):
            src = sum_a[i - 1] if wrong and i else sum_a[i]
            sa = sa | Mux(trig[i], src.as_unsigned(), 0)
        m.d.comb += self.row_sum_a.eq(sa)
        for j in range(C):
            acc = 0
            for i in range(R):
                acc = acc | Mux(trig[i], pes[i][j].result.as_unsigned(), 0)
            m.d.comb += self.row_acc[j].eq(acc)
            copy = Signal(signed_shape(self.sum_width), name=f"held_sum_w{j}")
            with m.If(en & trig[0]):
                m.d.sync += copy.eq(sum_w[j])
            m.d.comb += self.row_sum_w[j].eq(Mux(trig[0], sum_w[j], copy))
