"""The status page's charts, drawn on the server as inline SVG by pygal.

No JavaScript and nothing loaded from elsewhere (pygal's default tooltip script comes from the
internet, so ``js`` is emptied): values are printed on the charts instead of shown on hover.
pygal builds the SVG as an XML tree, so labels (pid types, buckets) are escaped.
"""

from __future__ import annotations

import pygal
from pygal.style import Style

STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#333",
    foreground_strong="#111",
    foreground_subtle="#bbb",
    colors=("#2f6fab", "#e08a1e", "#3a9b5c", "#c0392b", "#7d5ba6", "#888"),
    font_family="system-ui, sans-serif",
    value_font_size=13,
    label_font_size=12,
    major_label_font_size=12,
    title_font_size=16,
    legend_font_size=13,
)
COMMON = {
    "style": STYLE,
    "js": [],
    "disable_xml_declaration": True,
    "explicit_size": True,
    "width": 560,
    "height": 320,
    "print_values": True,
    "show_legend": False,
}
TOP = 15  # bars shown per chart; the rest are summed into one "others" bar


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"


def top(items: list[tuple[str, float]]) -> list[tuple[str, float]]:
    if len(items) <= TOP:
        return items
    rest = sum(value for _, value in items[TOP - 1 :])
    return [*items[: TOP - 1], (f"{len(items) - TOP + 1} others", rest)]


def render(chart) -> str:
    return chart.render(is_unicode=True)


def by_status(counts: dict[str, int]) -> str:
    chart = pygal.Pie(**{**COMMON, "show_legend": True, "inner_radius": 0.45}, title="Media by status")
    for status, count in counts.items():
        chart.add(status, count)
    return render(chart)


def horizontal(title: str, items: list[tuple[str, float]], formatter=None) -> str:
    items = top(items)
    options = {**COMMON, "height": max(160, 60 + 34 * len(items)), "show_x_labels": False}
    if formatter is not None:
        options["value_formatter"] = formatter
    chart = pygal.HorizontalBar(**options, title=title)
    chart.x_labels = [label for label, _ in items]
    chart.add(title, [value for _, value in items])
    return render(chart)


def created_per_day(days: list[dict]) -> str:
    chart = pygal.Bar(
        **{**COMMON, "width": 1140, "print_values": False, "x_label_rotation": 40},
        title="Media created per day (last 30 days, UTC)",
    )
    chart.x_labels = [day["day"].strftime("%m-%d") for day in days]
    chart.add("created", [day["count"] for day in days])
    return render(chart)


def store_latency(stores: list[dict]) -> str:
    """Latency of each store's last probe; a store that failed it gets a red bar at 0 labelled with
    why, one never probed a grey one."""
    chart = pygal.HorizontalBar(
        **{**COMMON, "height": max(160, 60 + 34 * len(stores)), "show_x_labels": False},
        title="Store health: last probe's latency (ms); red = not writable",
    )
    chart.x_labels = [store["label"] for store in stores]
    values = []
    for store in stores:
        health = store["health"]
        if health is None:
            values.append({"value": 0, "color": "#999999", "formatter": lambda _v: "not probed yet"})
        elif health.get("writable"):
            values.append({"value": health["latency_ms"], "color": "#3a9b5c"})
        else:
            why = "unreachable" if not health.get("reachable") else "not writable"
            values.append({"value": 0, "color": "#c0392b", "formatter": lambda _v, why=why: why})
    chart.add("latency", values)
    return render(chart)


def quota_use(quotas: list[dict]) -> str:
    """Each quota's use as a share of its tightest limit (bytes or media), labelled with both;
    orange from 90% (where ``quota.warning`` is sent), red when full."""
    chart = pygal.HorizontalBar(
        **{**COMMON, "height": max(160, 60 + 34 * len(quotas)), "show_x_labels": False, "range": (0, 100)},
        title="Quotas: use of the tightest limit (%)",
    )
    chart.x_labels = [quota["label"] for quota in quotas]
    values = []
    for quota in quotas:
        share = quota["percent"]
        color = "#c0392b" if share >= 100 else "#e08a1e" if share >= 90 else "#2f6fab"
        values.append({"value": share, "color": color, "formatter": lambda _v, text=quota["text"]: text})
    chart.add("use", values)
    return render(chart)


def all_charts(figures: dict) -> dict[str, str]:
    stores = figures["stores"]
    return {
        "by_status": by_status(figures["by_status"]),
        "by_pid_type": horizontal("Media by pid type", list(figures["by_pid_type"].items())),
        "store_bytes": horizontal(
            "Bytes per store", [(s["label"], s["bytes"]) for s in stores], formatter=human_bytes
        ),
        "store_objects": horizontal("Objects per store", [(s["label"], s["objects"]) for s in stores]),
        "per_day": created_per_day(figures["created_per_day"]),
        "health": store_latency(stores),
        "owner_bytes": horizontal(
            "Bytes per owner (primary copies)",
            [(row["owner"], row["bytes"]) for row in figures["usage"]["owners"]],
            formatter=human_bytes,
        ),
        "quota_use": quota_use(figures["usage"]["quotas"]),
    }
