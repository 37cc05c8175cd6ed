"""Plain-text views of core results for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from paretolab.core.measure.evaluate import EvalResult
from paretolab.core.measure.profile import ProfileResult
from paretolab.core.measure.runtimes import BackendInfo
from paretolab.core.measure.scaling import ScalingResult
from paretolab.core.model.exits import exits_text
from paretolab.core.model.graph import LayerGraph
from paretolab.core.tensors import format_shape
from paretolab.core.units import percent, si, size


def table(rows: Sequence[Sequence[str]], right: set[int] = frozenset()) -> str:
    """Columns padded to fit; `right` holds the indices of numeric columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    )


def model_summary(handle, graph: LayerGraph) -> str:
    summary = graph.summary()
    macs = si(summary["macs"]) + ("" if summary["macs_complete"] else " (incomplete)")
    ops = ", ".join(f"{op} {n}" for op, n in list(summary["op_counts"].items())[:8])
    lines = [
        f"model    {handle.path}",
        f"format   {handle.format}   size {size(handle.size_bytes)}",
        *(f"input    {spec}" for spec in handle.inputs),
        *(f"output   {spec}" for spec in (handle.outputs or graph.outputs)),
        f"layers   {summary['layers']}   params {si(summary['params'])} ({summary['params']:,})   MACs {macs}",
        f"ops      {ops}",
        *(f"note     {note}" for note in graph.notes),
    ]
    return "\n".join(lines)


def layer_table(graph: LayerGraph, sort: str = "order") -> str:
    nodes = list(graph.nodes)
    if sort == "macs":
        nodes.sort(key=lambda n: n.macs or 0, reverse=True)
    elif sort == "params":
        nodes.sort(key=lambda n: n.params, reverse=True)
    total = graph.total_macs or 0
    rows = [("layer", "op", "output shape", "params", "MACs", "% MACs")]
    for n in nodes:
        share = f"{100 * n.macs / total:.1f}" if total and n.macs else ""
        shape = format_shape(n.output_shapes[0]) if n.output_shapes else ""
        rows.append((n.name, n.op, shape, f"{n.params:,}", f"{n.macs:,}" if n.macs is not None else "?", share))
    return table(rows, right={3, 4, 5})


def backends(found: Sequence[BackendInfo]) -> str:
    return table(
        [("backend", "device", "version", "detail"), *((b.backend, b.device, b.version.split("-")[0], b.detail) for b in found)]
    )


def evaluation(result: EvalResult) -> str:
    lines = [
        f"model     {result.model} on {result.backend}/{result.device}",
        f"data      {result.dataset}: {result.samples} samples in {result.seconds:.2f} s",
    ]
    if result.top1 is not None:
        lines.append(f"accuracy  top-1 {percent(result.top1)}   top-5 {percent(result.top5)}")
    if result.fidelity:
        lines.append(f"reference {result.reference}")
        rows = [("output", "kind", "agreement", "cosine", "mean |err|", "max |err|", "SQNR dB", "verdict")]
        for f in result.fidelity:
            sqnr = "identical" if f.max_abs_error == 0 else f"{f.sqnr_db:.1f}"
            verdict = f.verdict if f.verdict in ("faithful", "unknown") else f"{f.verdict}: {f.why}"
            rows.append((f.name, f.kind, percent(f.agreement), f"{f.cosine:.6f}", f"{f.mean_abs_error:.3g}",
                         f"{f.max_abs_error:.3g}", sqnr, verdict))
        lines.append(table(rows, right={2, 3, 4, 5, 6}))
        lines.append(f"verdict   {_verdict(result.verdict, result.verdict_why)}")
    if result.exits:
        lines.append(f"exits     {exits_text(result.exits)}")
    lines += [f"note      {n}" for n in result.notes]
    return "\n".join(lines)


def _verdict(verdict: str | None, why: str | None) -> str:
    """"faithful: ...", "BROKEN: output0 (detection): class scores collapsed: all zero", "unknown (random inputs): ..."."""
    if verdict == "unknown" and why and why.startswith("unknown"):
        return (f"{why}: nothing judged on random data is called faithful; the numbers above are information only. "
                "Give real inputs (--data) to judge the variant")
    return f"{'BROKEN' if verdict == 'broken' else verdict}" + (f": {why}" if why else "")


def over_data(model: str, dataset: str, where: str, t) -> str:  # noqa: ANN001 - a DataTiming
    """Batch-1 latency averaged over real samples (an input-dependent model's cost)."""
    return "\n".join([
        f"model     {model} on {where}, batch 1",
        f"data      {t.samples} samples of {dataset}, each timed alone ({t.passes} passes, the median per sample)",
        f"latency   average {t.mean_ms:.4f} ms ({t.low_ms:.4f}-{t.high_ms:.4f}, 95% interval)",
        f"spread    p50 {t.p50_ms:.4f}   p90 {t.p90_ms:.4f}   p99 {t.p99_ms:.4f} ms",
    ])


def profile(result: ProfileResult) -> str:
    threads = result.threads or "default"
    lines = [
        f"model     {result.model} ({result.format}, {size(result.file_size_bytes)}) "
        f"on {result.backend}/{result.device}, threads {threads}",
        f"machine   {result.machine.get('cpu', '?')}, {result.machine.get('cores', '?')} cores, "
        f"features {' '.join(result.machine.get('cpu_features', [])) or 'none'}",
        f"memory    peak RSS {result.peak_rss_mib:.0f} MiB (+{result.rss_increase_mib:.1f} MiB while running)",
        "",
    ]
    rows = [("batch", "runs", "median ms", "p90 ms", "p99 ms", "mean ms", "std ms", "samples/s")]
    for s in result.latency:
        rows.append((str(s.batch), str(s.runs), f"{s.median_ms:.4f}", f"{s.p90_ms:.4f}", f"{s.p99_ms:.4f}",
                     f"{s.mean_ms:.4f}", f"{s.std_ms:.4f}", f"{s.throughput:,.0f}"))
    lines.append(table(rows, right=set(range(8))))
    if result.async_throughput is not None:
        lines.append(f"\nasync     {result.async_throughput:,.0f} samples/s with {result.async_requests} requests in flight")
    if result.layers:
        lines.append("")
        rows = [("layer", "runtime op", "ms / run", "share")]
        rows += [(t.layer, t.op, f"{t.ms:.4f}", f"{100 * t.share:.1f}%") for t in result.layers]
        lines.append(table(rows, right={2, 3}))
    lines += [f"note      {n}" for n in result.notes]
    return "\n".join(lines)


def scaling(result: ScalingResult) -> str:
    """Sequence length against MACs and latency, each also relative to the shortest length."""
    first = result.points[0]
    rows = [["sequence", "MACs", "x MACs", "median ms", "x time", "p90 ms", "ms / token"]]
    for p in result.points:
        macs_ratio = f"{p.macs / first.macs:.2f}" if p.macs and first.macs else "?"
        rows.append([str(p.sequence), si(p.macs) if p.macs is not None else "?", macs_ratio, f"{p.median_ms:.4f}",
                     f"{p.median_ms / first.median_ms:.2f}", f"{p.p90_ms:.4f}", f"{p.ms_per_token:.5f}"])
    head = f"model     {result.model} on {result.backend}/{result.device}, batch 1"
    return head + "\n\n" + table(rows, right={0, 1, 2, 3, 4, 5, 6})


def variant(v) -> str:
    split = v.measured.dataset or "test"
    rows = [("", f"top-1 ({split})", "fidelity to the original", "latency ms", "size", "params", "MACs", "measured on")]
    for label, x in (("original", v.baseline), (v.name, v.measured)):
        rows.append((label, percent(x.top1), x.fidelity_text(), f"{x.latency_ms:.4f}", size(x.size_bytes),
                     si(x.params), si(x.macs), x.where))
    lines = [
        f"recipe    {v.recipe.summary()}",
        f"artifact  {v.artifact}",
        "",
        table(rows, right={1, 3, 4, 5, 6}),
        "",
        f"speed-up  {v.speedup_text()} (95% interval, {'averages over the samples' if v.exits else 'alternating rounds'})"
        + (" against the original pinned to f32" if v.deployed_text() else ""),
        f"size      {v.size_ratio:.2f}x of the original",
    ]
    lines += [f"          {v.deployed_text()} (the original as OpenVINO runs it with no precision hint)"] \
        if v.deployed_text() else []
    lines += [f"busy      ⚠ {v.busy}"] if v.busy else []
    lines += [f"latency   {v.latency_text()}"] if v.latency_text() else []
    lines += [f"exits     {v.exits_text()}"] if v.exits else []
    validation = v.validation
    if validation:
        lines.append(f"chosen by {validation.dataset}: {v.metric} {percent(v.selection_score)} against "
                     f"{percent(v.baseline_selection_score)}")
    from paretolab.core.compress.variant import collapse_warning

    collapsed = collapse_warning(v)
    lines += [f"warning   {collapsed}"] if collapsed else []
    if v.measured.verdict:
        lines.append(f"verdict   {_verdict(v.measured.verdict, v.measured.verdict_why)}"
                     + (" — kept off the Pareto front" if v.measured.broken else ""))
    for report in v.reports:
        lines += _candidates(report)
        lines += _heads(report.get("heads") or {})
        lines += [f"warning   {w}" for w in report.get("warnings", [])]
        lines += [f"note      {n}" for n in report.get("notes", [])]
    lines += [f"note      {n}" for n in v.notes if n != v.busy]  # the busy line above says it
    return "\n".join(lines)


def _heads(heads: dict) -> list[str]:
    """"heads     4 → 2 in 12 attention blocks" (or each block when they differ)."""
    if not heads:
        return []
    counts = {tuple(v) for v in heads.values()}
    if len(counts) == 1:
        (before, after), = counts
        return [f"heads     {before} → {after} in {len(heads)} attention blocks"]
    return [f"heads     {block}: {before} → {after}" for block, (before, after) in heads.items()]


def _candidates(report: dict) -> list[str]:
    """The int8 forms a quantization step built and timed, and which one it kept."""
    found = report.get("candidates") or []
    if not found:
        return []
    lines = [f"int8      {len(found)} forms timed side by side with FP32 ({report.get('baseline_ms') or 0:.4f} ms):"]
    for c in sorted(found, key=lambda c: c["median_ms"]):
        span = f" [{c['low_ms']:.4f}-{c['high_ms']:.4f}]" if c.get("low_ms") is not None else ""
        fidelity = (c["quality_text"] if c.get("quality_text")
                    else f"agrees with FP32 on {percent(c['agreement'])}" if c.get("agreement") is not None
                    else f"cosine to FP32 {c.get('cosine', 0.0):.4f}")
        kept = "  <- kept" if c.get("chosen") else ""
        lines.append(f"            {c['name']:<9} {c['median_ms']:.4f} ms{span}, {fidelity}{kept}")
    return lines


def _drop(metric: str, drop: float) -> str:
    """Points of accuracy, or (outputs that are not class scores) how much cosine to the original was lost."""
    return f"{drop:.4f}" if metric == "cosine" else f"{100 * drop:.1f} pts"


def importance(layers, scan=None, heads: dict[str, list[float]] | None = None) -> str:
    drops = scan.by_layer() if scan else {}
    header = ["layer", "op", "params", "mean |w|", "rms w", "taylor"] + ([f"worst {scan.metric} drop"] if scan else [])
    rows = [tuple(header)]
    for x in layers:
        row = [x.layer, x.op, f"{x.params:,}", f"{x.l1:.4g}", f"{x.l2:.4g}", "n/a" if x.taylor is None else f"{x.taylor:.3g}"]
        if scan:
            row.append(_drop(scan.metric, drops[x.layer]) if x.layer in drops else "")
        rows.append(tuple(row))
    text = table(rows, right=set(range(2, len(header))))
    if scan:
        baseline = f"{scan.baseline:.4f}" if scan.metric == "cosine" else f"{100 * scan.baseline:.2f}%"
        text += f"\n\nsensitivity: {scan.kind} one layer at a time; baseline {scan.metric} {baseline}"
    if heads:
        text += "\n\nattention heads, mean |w| of each head's query, key and value rows (the lowest are pruned first):\n"
        text += table([("block", "heads"), *((block, "  ".join(f"{v:.4g}" for v in values)) for block, values in heads.items())])
    return text


def sweep_summary(experiment, result) -> str:
    """The variants with the front chosen on the split the sweep selects by (validation), and the
    test accuracy reported beside it."""
    from paretolab.core.store.pareto import Point, pareto_front

    stored = experiment.variants()
    front = {p.key for p in pareto_front([Point(v.name, v.measured.latency_ms, v.selection_score, v.measured.broken)
                                          for v in stored])}
    chosen_by = stored[0].selection_split if stored else "validation"
    rows = [("", "variant", "recipe", f"{chosen_by} score", "test top-1", "latency ms", "speed-up (95%)", "measured on",
             "verdict")]
    for v in sorted(stored, key=lambda v: v.measured.latency_ms):
        m = v.measured
        mark = "*" if v.name in front else "!" if m.broken else ""
        verdict = "BROKEN" if m.broken else m.verdict_text()
        rows.append((mark, v.name, v.recipe.summary(), percent(v.selection_score), percent(m.top1),
                     f"{m.latency_ms:.4f}", v.speedup_text(with_basis=False) + (" ⚠ busy" if v.busy else ""), m.where,
                     verdict))
    unknown = any(v.measured.quality == "unknown" for v in stored)
    return (f"{result.note()}; experiment {experiment.folder} (* = Pareto front, chosen on {chosen_by}; ! = broken, "
            "kept off the front; speed-ups against the original on the same backend, device and threads, timed in the "
            "same rounds; ⚠ busy = the machine was busy while timing, see 'paretolab show')"
            + ("; judged on random inputs: quality unknown, give real data with --data" if unknown else "")
            + "\n\n" + table(rows, right={3, 4, 5}))
