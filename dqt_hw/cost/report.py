"""The cost report of one configuration on one network: per-layer table and totals
(what ``dqt-hw cost`` prints and writes)."""

from __future__ import annotations

from .bitops import dynamic_bitops
from .cycles import layer_cycles
from .energy import ENERGY_PARTS, MemoryConfig, dynamic_energy, layer_energy, switch_energy_pj
from .switch import switch_cost
from .workload import WidthMix, load_network

from ..design import as_design

__all__ = ["cost_report", "format_table"]


def cost_report(network, tile, mix, *, tech="horowitz45", memory=None, dynamic=None,
                pe_mode="fixed", area_model=None, clock_mhz=None) -> dict:
    """Per-layer rows (MACs, widths, BitOPs, cycles and SCALE-Sim fields, energy by part)
    and totals, for ``tile`` running ``network`` at ``mix`` (and per-input widths
    ``dynamic``, a DynamicWidths, when given). With ``clock_mhz`` the cycles are also
    seconds: each row's ``time_us`` and ``per_s`` (1 / its time), the totals'
    ``seconds_per_inference`` and ``inferences_per_s`` (batch 1, layers one after the
    other, :func:`dqt_hw.cost.cycles.cycles_to_seconds`)."""
    from .cycles import cycles_to_seconds

    if clock_mhz is not None:
        cycles_to_seconds(1, clock_mhz)  # checks the clock before any work
    g = load_network(network)
    tile = as_design(tile, "tile")
    mix = WidthMix.parse(mix).check(g)
    if dynamic is not None:
        dynamic.check(tile)  # every width one the tile builds, as the static mix's
    mem = memory or MemoryConfig()
    rows = []
    for info in g.layer_table():
        b_a, b_w = mix.pair(info["name"])
        cyc = layer_cycles(info, tile, b_a=b_a, b_w=b_w, pe_mode=pe_mode)
        en = layer_energy(info, tile, b_a=b_a, b_w=b_w, tech=tech, memory=mem)
        rows.append({
            "layer": info["name"], "op": info["op"], "macs": info["macs"],
            "weights": info["weights"], "in_activations": info["in_activations"],
            "out_activations": info["out_activations"], "taps": info["taps"],
            "b_a": b_a, "b_w": b_w, "bitops": info["macs"] * b_a * b_w,
            "cycles": cyc["Total Cycles"], "stall_cycles": cyc["Stall Cycles"],
            "overall_util_pct": cyc["Overall Util %"],
            "mapping_efficiency_pct": cyc["Mapping Efficiency %"],
            "compute_util_pct": cyc["Compute Util %"], "tiles": cyc["tiles"],
            "fits_depth": cyc["fits_depth"],
            **{f"energy_{k}_pj": en[f"{k}_pj"] for k in (*ENERGY_PARTS, "total")},
        })
        if clock_mhz is not None:
            t = cycles_to_seconds(cyc["Total Cycles"], clock_mhz)
            rows[-1].update(time_us=t * 1e6, per_s=1.0 / t)
    tot = {
        "network": g.name, "layers": len(rows), "width_mix": mix.describe(),
        "macs": sum(r["macs"] for r in rows), "bitops": sum(r["bitops"] for r in rows),
        "cycles": sum(r["cycles"] for r in rows),
        **{f"energy_{k}_pj": sum(r[f"energy_{k}_pj"] for r in rows)
           for k in (*ENERGY_PARTS, "total")},
        "tile": tile.to_dict(),
        "tech": tech if isinstance(tech, str) else tech.name,
        "storage": mem.storage,
    }
    if mem.storage == "planes":
        tot["plane_word_bits"] = mem.plane_word_bits
    if clock_mhz is not None:
        t = cycles_to_seconds(tot["cycles"], clock_mhz)
        tot.update(clock_mhz=float(clock_mhz), seconds_per_inference=t,
                   inferences_per_s=1.0 / t)
    R, C = tile.rows, tile.cols
    tot["overall_util_pct"] = 100.0 * tot["macs"] / (R * C * tot["cycles"])
    too_deep = [r["layer"] for r in rows if not r["fits_depth"]]
    if too_deep:
        tot["layers_deeper_than_tile"] = too_deep
    _, sw = switch_cost(g)
    tot["switch"] = {
        "tensors": sw["tensors"], "elements": sw["elements"], "shifts": sw["shifts"],
        "fp_macs": sw["fp_macs"],
        "energy_shift_pj": sw["elements"] * switch_energy_pj(
            "shift" if tile.view_rounding == "floor" else "shift_half_up", design=tile,
            tech=tech),
        "energy_int_rescale_pj": sw["elements"] * switch_energy_pj("int_rescale", design=tile,
                                                                   tech=tech),
        "energy_float_pj": sw["elements"] * switch_energy_pj("float", design=tile, tech=tech),
    }
    try:
        from .area import component_breakdown, load_area_model

        am = area_model or load_area_model()
        tot["area"] = component_breakdown(tile, am)
    except ValueError as e:  # no fitted coefficients yet
        tot["area"] = {"error": str(e)}
    if dynamic is not None:
        tot["dynamic_bitops"] = dynamic_bitops(g, dynamic).summary()
        de = dynamic_energy(g, tile, dynamic, tech=tech, memory=mem)
        tot["dynamic_energy"] = {k: v for k, v in de.items() if k != "per_input_pj"}
    return {"rows": rows, "totals": tot}


def format_table(report: dict) -> str:
    rows, tot = report["rows"], report["totals"]
    timed = "clock_mhz" in tot
    head = (f"{'layer':24s} {'MACs':>11s} {'a/w':>5s} {'GBitOPs':>8s} {'cycles':>10s} "
            + (f"{'us':>9s} {'1/s':>9s} " if timed else "")
            + f"{'util%':>6s} {'compute':>9s} {'sram':>9s} {'dram':>9s} {'total uJ':>9s}")
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(
            f"{r['layer']:24s} {r['macs']:>11,d} {r['b_a']:>2d}/{r['b_w']:<2d} "
            f"{r['bitops'] / 1e9:>8.2f} {r['cycles']:>10,d} "
            + (f"{r['time_us']:>9.2f} {r['per_s']:>9.4g} " if timed else "")
            + f"{r['overall_util_pct']:>6.1f} "
            f"{r['energy_compute_pj'] / 1e6:>9.2f} {r['energy_sram_pj'] / 1e6:>9.2f} "
            f"{r['energy_dram_pj'] / 1e6:>9.2f} {r['energy_total_pj'] / 1e6:>9.2f}")
    out.append("-" * len(head))
    out.append(
        f"{'total':24s} {tot['macs']:>11,d} {'':>5s} {tot['bitops'] / 1e9:>8.2f} "
        f"{tot['cycles']:>10,d} "
        + (f"{tot['seconds_per_inference'] * 1e6:>9.1f} {tot['inferences_per_s']:>9.4g} "
           if timed else "")
        + f"{tot['overall_util_pct']:>6.1f} "
        f"{tot['energy_compute_pj'] / 1e6:>9.2f} {tot['energy_sram_pj'] / 1e6:>9.2f} "
        f"{tot['energy_dram_pj'] / 1e6:>9.2f} {tot['energy_total_pj'] / 1e6:>9.2f}")
    t = tot["tile"]
    out.append("")
    store = tot.get("storage", "master")
    if store == "planes":
        store += f", {tot['plane_word_bits']}-bit words"
    out.append(f"{tot['network']} on a {t['rows']}x{t['cols']} tile (n = {t['n']}, W = "
               f"{t['acc_width']} {t['overflow']}), widths {tot['width_mix']}, {tot['tech']}, "
               f"storage {store}:")
    out.append(f"  {tot['macs'] / 1e9:.3f} G MACs, {tot['bitops'] / 1e9:.2f} G BitOPs, "
               f"{tot['cycles']:,d} cycles ({tot['overall_util_pct']:.1f} % utilization), "
               f"{tot['energy_total_pj'] / 1e6:.1f} uJ per inference")
    if timed:
        out.append(f"  at {tot['clock_mhz']:g} MHz: {tot['seconds_per_inference'] * 1e3:.4g} ms "
                   f"per inference, {tot['inferences_per_s']:.4g} inferences/s (batch 1)")
    parts = ", ".join(f"{k} {tot[f'energy_{k}_pj'] / 1e6:.2f}" for k in ENERGY_PARTS)
    out.append(f"  energy (uJ): {parts}")
    sw = tot["switch"]
    out.append(f"  precision switch of every layer ({sw['tensors']}): {sw['shifts'] / 1e6:.2f} M "
               f"shifts ({sw['energy_shift_pj'] / 1e6:.3f} uJ) vs {sw['fp_macs'] / 1e6:.2f} M FP "
               f"MACs ({sw['energy_float_pj'] / 1e6:.1f} uJ) or integer rescale "
               f"({sw['energy_int_rescale_pj'] / 1e6:.2f} uJ)")
    a = tot.get("area", {})
    if "total_um2" in a:
        out.append(f"  tile area {a['total_um2'] / 1e6:.4f} mm^2 (PEs {a['pe_array_um2'] / 1e6:.4f}, "
                   f"requant lanes {a['requant_lanes_um2'] / 1e6:.4f}, edge views "
                   f"{a['edge_views_um2'] / 1e6:.5f}) from the synthesis-fitted model")
    if "dynamic_bitops" in tot:
        d = tot["dynamic_bitops"]
        out.append(f"  per-input widths ({d['inputs']} inputs): {d['bitops_mean'] / 1e9:.2f} "
                   f"+- {d['bitops_std'] / 1e9:.2f} G BitOPs (min {d['bitops_min'] / 1e9:.2f}, "
                   f"max {d['bitops_max'] / 1e9:.2f})")
        de = tot["dynamic_energy"]
        out.append(f"  per-input widths: {de['mean_pj'] / 1e6:.3f} +- {de['std_pj'] / 1e6:.3f} "
                   f"uJ per inference (min {de['min_pj'] / 1e6:.3f}, max "
                   f"{de['max_pj'] / 1e6:.3f}; SRAM {de['sram_pj'] / 1e6:.3f}, DRAM "
                   f"{de['dram_pj'] / 1e6:.3f})")
    if tot.get("layers_deeper_than_tile"):
        out.append(f"  note: {len(tot['layers_deeper_than_tile'])} layer(s) have more taps than "
                   f"the tile's depth (2^depth_bits): {tot['layers_deeper_than_tile'][:3]}")
    return "\n".join(out)
