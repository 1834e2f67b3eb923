"""Pictures for ``sirnn infer --report --plot FILE`` and ``sirnn precision FUNCTION --plot FILE``
(PNG, or any format matplotlib knows from the file's extension). matplotlib is an optional
extra (``pip install 'sirnn[plot]'``); without it :func:`require_matplotlib` raises a one-line
:class:`~sirnn.errors.InputError` saying so."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["require_matplotlib", "plot_report", "plot_precision"]


def require_matplotlib():
    """matplotlib's pyplot on the non-interactive Agg backend, or a clear error."""
    try:
        import matplotlib
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'sirnn[plot]' (or matplotlib>=3.8)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    try:
        fig.savefig(path, dpi=100)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot write the plot {path}: {e}") from None
    finally:
        fig.clf()


def plot_report(report: dict, path, title: str | None = None) -> None:
    """A client report (``InferenceResult.report``: per-layer rows and the total) as three
    horizontal bar panels sharing the layer axis: time (s), bytes (MB, both directions), rounds."""
    plt = require_matplotlib()
    from ..compiler.session import format_bytes

    rows = report["layers"]
    names = [f"{r['layer']} ({r['op']})" if r["op"] != "-" else r["layer"] for r in rows]
    y = np.arange(len(rows))
    cols = (("seconds", "time (s)", 1.0, lambda v: f"{v:.2f} s" if v >= 1 else f"{v * 1e3:.1f} ms"),
            ("bytes", "communication (MB = 10^6 B, both directions)", 1e-6, format_bytes),
            ("rounds", "rounds", 1.0, lambda v: f"{int(v)}"))
    fig, axes = plt.subplots(1, 3, sharey=True, figsize=(13, 1.2 + 0.32 * len(rows)))
    for ax, (key, label, unit, fmt), color in zip(axes, cols, ("#4c72b0", "#dd8452", "#55a868")):
        vals = np.array([r[key] for r in rows], np.float64)
        ax.barh(y, vals * unit, color=color)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
        for yi, v in zip(y, vals):
            if v:
                ax.text(v * unit, yi, " " + fmt(v), va="center", fontsize=7)
        ax.set_xlim(0, max(vals.max() * unit * 1.3, 1e-9))
    axes[0].set_yticks(y, names, fontsize=8)
    axes[0].invert_yaxis()
    t = report["total"]
    fig.suptitle((title + ": " if title else "") + f"{t['seconds']:.2f} s, {format_bytes(t['bytes'])}, "
                 f"{t['rounds']} rounds in total (client view)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_precision(rep: dict, arrays: dict, path) -> None:
    """A precision result (:func:`sirnn.cli.precision.precision_report` with ``arrays``): the
    float64 reference and the cleartext fixed-point functionality (what the secure protocol
    outputs, bit for bit) over the input domain, and their difference in ULPs of the output."""
    plt = require_matplotlib()
    x, got, exact, ulp = (np.asarray(arrays[k]) for k in ("x", "got", "exact", "ulp"))
    order = np.argsort(x, kind="stable")
    x, got, exact, ulp = x[order], got[order], exact[order], ulp[order]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6), height_ratios=(1, 1.2))
    top.plot(x, exact, color="black", lw=1.0, label="float64 reference (saturated to the output range)")
    top.plot(x, got, color="#dd8452", lw=0.8, ls="--", label="cleartext fixed point (= secure output)")
    top.set_ylabel(rep["function"] + "(x)")
    top.legend(fontsize=8, loc="best")
    top.grid(alpha=0.3)
    bottom.plot(x, ulp, "," if len(x) > 5000 else ".", color="#4c72b0", ms=2)
    bottom.axhline(rep["max_ulp"], color="#c44e52", lw=0.8, ls=":", label=f"max {rep['max_ulp']:.2f} ULP")
    bottom.axhline(rep["mean_ulp"], color="#55a868", lw=0.8, ls=":", label=f"mean {rep['mean_ulp']:.3f} ULP")
    bottom.set_ylabel(f"|error| in ULP (2^-{rep['scale_out']})")
    bottom.set_xlabel("x")
    bottom.legend(fontsize=8, loc="upper right")
    bottom.grid(alpha=0.3)
    fig.suptitle(f"{rep['function']}: {rep['bw_in']}-bit input scale {rep['scale_in']} → {rep['bw_out']}-bit "
                 f"output scale {rep['scale_out']}; {rep['inputs']} ({rep['count']:,})", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
