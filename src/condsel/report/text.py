"""Plain-text renderings for the terminal, from the data the library returns."""

from __future__ import annotations


def format_latency(latency: dict) -> str:
    """Three lines for the terminal from :func:`condsel.pool.latency.measure_latency`'s result."""
    big, sel, fit = latency["largest"], latency["selector"], latency["overhead_fit"]
    return (
        f"latency ({latency['videos']} test videos, {latency['torch_threads']} torch thread(s), decoding included): "
        f"{big['model']} alone {1000 * big['seconds_per_video']:.1f} ms/video, "
        f"selector {1000 * sel['seconds_per_video']:.1f} ms/video at threshold {sel['threshold']:.3f}\n"
        f"  wall-clock speedup {latency['wall_speedup']:.2f}x for a GFLOPs speedup of {latency['gflops_speedup']:.2f}x "
        f"(ratio {latency['speedup_ratio']:.2f}); batched: {1000 * latency['largest_batched']['seconds_per_video']:.1f} vs "
        f"{1000 * latency['selector_batched']['seconds_per_video']:.1f} ms/video; "
        f"loading the chosen model per selection: {1000 * latency['selector_load_per_selection']['seconds_per_video']:.1f} ms/video\n"
        f"  fit over {len(latency['operating_points'])} operating point(s) and the largest model: "
        f"{1000 * fit['seconds_at_zero_gflops']:.1f} ms/video whatever runs (decoding, per-call overheads) "
        f"+ {1000 * fit['seconds_per_gflop']:.1f} ms per GFLOP"
    )


def format_columns(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    """Lines of a terminal table: each column as wide as its widest cell, two spaces apart; columns in ``right`` right-aligned.

    Widths come from the cells, so a long name (``bninception_flow``) never runs into the next column.
    """
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells) -> str:
        return "  ".join(f"{cell:>{w}}" if i in right else f"{cell:<{w}}" for i, (cell, w) in enumerate(zip(map(str, cells), widths))).rstrip()

    return [line(headers), *(line(r) for r in rows)]
