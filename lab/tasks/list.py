"""`task=list`: the registered variants that pass `list.*`'s filters, as one table.

Building a variant is the cost (GoogLeNet and VGG at 224x224), so `list.family` and `list.name`
select by the variant's name and its config file alone, and only the variants they select are
built; `list.max_params`, `list.max_macs` and `list.sort` act on the counted rows.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Dict, List, Optional, Sequence, Tuple

from lab.config import ListSort, ListTaskConfig, RunConfig
from lab.models.variants import VariantSummary, variant_family, variant_names

NOT_MEASURED = "—"


def selected_names(listing: ListTaskConfig) -> List[str]:
    """The variants whose name matches `list.name` (a glob) and whose family is `list.family`,
    before anything is built."""
    names = [
        name for name in variant_names() if listing.name is None or fnmatchcase(name, listing.name)
    ]
    return [
        name for name in names if listing.family is None or variant_family(name) == listing.family
    ]


def within_budgets(rows: List[VariantSummary], listing: ListTaskConfig) -> List[VariantSummary]:
    return [
        row
        for row in rows
        if (listing.max_params is None or row.params <= listing.max_params)
        and (listing.max_macs is None or row.macs <= listing.max_macs)
    ]


def in_order(rows: List[VariantSummary], sort: ListSort) -> List[VariantSummary]:
    """By name, or by parameters or MACs (smallest first, ties by name)."""
    if sort is ListSort.name:
        return sorted(rows, key=lambda row: row.name)
    return sorted(rows, key=lambda row: (getattr(row, sort.value), row.name))


def filters(listing: ListTaskConfig, keys: Sequence[str]) -> str:
    """The `list.KEY=VALUE` settings among `keys` that are set, for a message."""
    return " ".join(
        f"list.{key}={getattr(listing, key)}" for key in keys if getattr(listing, key) is not None
    )


def nothing_matched(listing: ListTaskConfig, selected: int) -> str:
    """One line naming the filters that left no row: the selection, or the budgets of the
    `selected` variants it kept."""
    selection = filters(listing, ("family", "name"))
    if not selected:
        return f"no variant matches {selection}"
    variants = "variant" if selected == 1 else "variants"
    return (
        f"none of the {selected} {variants} selected ({selection or 'all'}) is within "
        f"{filters(listing, ('max_params', 'max_macs'))}"
    )


def listed_rows(listing: ListTaskConfig) -> Tuple[List[VariantSummary], int]:
    """(rows, how many variants the family and name filters selected): the selected variants
    built and counted, within the budgets, in `list.sort` order."""
    from lab.models.variants import summarize_variants

    names = selected_names(listing)
    rows = summarize_variants(names) if names else []
    return in_order(within_budgets(rows, listing), listing.sort), len(names)


def render(rows: List[VariantSummary], measured: Optional[Dict[str, object]]) -> None:
    """The table; with `measured` ({variant: Measured}, `list.trained`), three more columns."""
    from rich.table import Table

    from lab.models.analysis import wide_console

    table = Table(title="Registered variants, built for their published input")
    numeric = ("classes", "total params", "MACs", "best test_accuracy", "runs")
    columns = [
        "family",
        "variant",
        "input",
        "classes",
        "total params",
        "MACs",
    ]  # total: trainable and not (BN statistics)
    columns += ["best test_accuracy", "runs", "best run"] if measured is not None else []
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left")
    for row in rows:
        cells = [
            row.family,
            row.name,
            "x".join(map(str, row.input_shape)),
            str(row.classes),
            f"{row.params:,}",
            f"{row.macs:,}",
        ]
        if measured is not None:
            best = measured.get(row.name)
            cells += (
                [f"{best.best:.4f}", str(best.runs), best.best_run_id]
                if best
                else [NOT_MEASURED] * 3
            )
        table.add_row(*cells)
    wide_console().print(table)


def run(cfg: RunConfig) -> None:
    """The variants `list.*` selects, built and counted; with `list.trained`, each one's best
    measured test accuracy in `tracking.uri`. A filter that leaves nothing prints one line."""
    from lab.tasks.list import listed_rows, nothing_matched, render

    rows, selected = listed_rows(cfg.list)
    if not rows:
        print(nothing_matched(cfg.list, selected))
        return
    measured = None
    if cfg.list.trained:
        from lab.tracking.measured import measured_variants

        measured = measured_variants(cfg.tracking.uri, [row.name for row in rows])
    render(rows, measured)
