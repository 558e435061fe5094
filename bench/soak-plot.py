"""Draws the soak's four curves (hub RSS, open file descriptors, alive Tokio tasks, active
streams) from the CSV that adit-soak writes, one panel each, with warm-up shaded and the two
compared windows marked. Usage: soak-plot.py SOAK.CSV OUT.PNG"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CURVES = [
    ("rss_kib", "hub RSS (MiB)", 1 / 1024),
    ("open_fds", "open file descriptors", 1),
    ("alive_tasks", "alive Tokio tasks", 1),
    ("active_streams", "active streams", 1),
]


def main(src, dst):
    with open(src, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["phase"] != "after"]
    t = [float(r["t_s"]) / 60 for r in rows]
    fig, axes = plt.subplots(len(CURVES), 1, figsize=(10, 9), sharex=True)
    for ax, (column, label, scale) in zip(axes, CURVES):
        values = [float(r[column]) * scale for r in rows]
        ax.plot(t, values, lw=1.2, label="VmRSS" if column == "rss_kib" else None)
        if column == "rss_kib" and rows and rows[0].get("rss_anon_kib"):
            anon = [float(r["rss_anon_kib"]) * scale for r in rows]
            ax.plot(t, anon, lw=1.2, label="of which anonymous (RssAnon)")
            ax.legend(loc="lower right", fontsize=8)
        for phase, colour in (("warmup", "0.85"), ("first", "#cfe8cf"), ("last", "#cfe8cf")):
            span = [x for x, r in zip(t, rows) if r["phase"] == phase]
            if span:
                ax.axvspan(min(span), max(span), color=colour, lw=0)
        ax.set_ylabel(label)
        ax.set_ylim(0, max(values, default=1) * 1.2 or 1)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes (grey: warm-up; green: the windows compared for flatness)")
    opened = rows[-1]["streams_opened"] if rows else "0"
    lost = rows[-1]["bytes_lost"] if rows else "0"
    fig.suptitle(f"Adit soak: one hub, {opened} streams opened, {lost} bytes lost")
    fig.tight_layout()
    fig.savefig(dst, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
