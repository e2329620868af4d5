"""PNG chart of the benchmark ratios (matplotlib, Agg backend)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# (key in ratios[size], label, target, lower_is_better)
LATENCY = [
    ("single_valori1t_over_faiss1t", "valori 1t / FAISS 1t", 1.5),
    ("single_valoriall_over_faissall", "valori all / FAISS all", None),
    ("single_valoriall_over_bound", "valori all / bandwidth bound", 1.5),
    ("single_valori1t_over_numpy", "valori 1t / numpy", None),
]
THROUGHPUT = [
    ("batch_valori_over_faiss", "batch qps valori / FAISS", 0.5),
    ("batch_valori_over_numpy", "batch qps valori / numpy", None),
    ("ingest_memory_over_target", "ingest in-mem / 100k vec/s", 1.0),
    ("ingest_durable_over_target", "ingest durable / 100k vec/s", 1.0),
]
MEMORY = [
    ("memory_ratio_inmemory", "RSS / (raw + meta), in-mem", 1.3),
    ("memory_ratio_durable", "RSS / (raw + meta), durable", 1.3),
]


def _panel(ax, ratios: dict, items, title, ylabel, better):
    sizes = list(ratios.keys())
    width = 0.8 / max(1, len(sizes))
    x = np.arange(len(items))
    for j, size in enumerate(sizes):
        vals = [ratios[size].get(key) for key, _, _ in items]
        vals = [np.nan if v is None else v for v in vals]
        bars = ax.bar(x + (j - (len(sizes) - 1) / 2) * width, vals, width, label=f"N={int(size):,}")
        for b, v in zip(bars, vals):
            if not np.isnan(v):
                ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                            ha="center", va="bottom", fontsize=7)
    for i, (_, _, tgt) in enumerate(items):
        if tgt is not None:
            ax.hlines(tgt, i - 0.45, i + 0.45, colors="red", linestyles="--", linewidth=1.2)
    ax.axhline(1.0, color="grey", linewidth=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels([lbl for _, lbl, _ in items], rotation=20, ha="right", fontsize=8)
    ax.set_title(f"{title}\n({better}; red dashes = target)", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.legend(fontsize=7)


def write_chart(result: dict, path: str) -> None:
    ratios = result.get("ratios", {}).get("per_size", {})
    if not ratios:
        return
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [4, 4, 2]})
    _panel(axes[0], ratios, LATENCY, "Single-query latency ratios", "ratio", "lower is better")
    _panel(axes[1], ratios, THROUGHPUT, "Throughput ratios", "ratio", "higher is better")
    _panel(axes[2], ratios, MEMORY, "Resident memory", "ratio", "lower is better")
    m = result.get("machine", {})
    fig.suptitle(
        f"valori-store benchmark, dim={result.get('args', {}).get('dim')} - "
        f"{m.get('cpu_model', '?')}, {m.get('logical_cpus', '?')} CPUs, "
        f"numpy {m.get('numpy', '?')}, numba {m.get('numba', '?')}, faiss {m.get('faiss', '?')}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
