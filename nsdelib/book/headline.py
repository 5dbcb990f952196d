"""The build's headline numbers per claim (``_build/book/headline.json``): each chapter adds its claim as it runs,
and the glance page (executed last) shows them beside the recorded ``paper`` results ("Running this book")."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from filelock import FileLock

from ..common.artifacts import atomic_write, content_digest
from ..report.stats import Verdict
from .profiles import Profile

if TYPE_CHECKING:
    from .context import Context

HEADLINE = "headline.json"
#: The environment variable through which the runner tells a chapter's kernel where this build's headline file is.
HEADLINE_ENV = "NSDEBOOK_HEADLINE"
NO_VERDICT = "no verdict"


def profile_digest(profile: Profile) -> str:
    """A short digest of a profile's settings: a headline file from other settings is stale."""
    return content_digest(profile.model_dump(mode="json"))


def record_headline(ctx: Context, claim: str, verdict: Verdict | None, figures: Mapping[str, Any] | None = None,
                    note: str = "") -> Path | None:
    """Add ``claim``'s primary verdict (None: no test point, ``note`` says why) and its ``figures`` to this build's
    headline file (a file of other settings replaced); nothing outside a build."""
    target = os.environ.get(HEADLINE_ENV)
    if not target:
        return None
    path, profile = Path(target), ctx.profile
    digest = profile_digest(profile)
    judged = {} if verdict is None else {
        "comparison": verdict.comparison, "value": _plain(verdict.effect),
        "interval": [_plain(verdict.low), _plain(verdict.high)], "label": verdict.label, "flags": verdict.flags}
    with FileLock(path.with_name(f".{path.name}.lock")):  # chapters of one build may run side by side
        headline = load_headline(path) if path.is_file() else {}
        if headline.get("profile_digest") != digest:
            headline = {"profile": profile.name, "profile_digest": digest, "claims": {}}
        headline["claims"][claim] = {
            "seeds": ctx.seeds, "comparison": "", "value": None, "interval": [None, None], "label": NO_VERDICT,
            "flags": NO_VERDICT, **judged, "note": note, "figures": _plain_figures(figures or {})}
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(headline, indent=1, allow_nan=False) + "\n"))
    return path


def _plain(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _plain_figures(node: Any) -> Any:
    """``node`` as strict JSON: mappings with string keys, floats with NaN as None."""
    if isinstance(node, Mapping):
        return {str(key): _plain_figures(value) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain_figures(value) for value in node]
    return node if isinstance(node, (str, bool)) or node is None else _plain(float(node))


def this_build_headline() -> dict[str, Any] | None:
    """The headline file of the build running now (None outside a build, or before any chapter wrote to it)."""
    target = os.environ.get(HEADLINE_ENV)
    return load_headline(Path(target)) if target and Path(target).is_file() else None


def load_headline(path: Path) -> dict[str, Any]:
    """A headline file, checked to name its profile and hold a mapping of claims."""
    try:
        headline = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"headline file {path} is unreadable: {exc}") from exc
    if not isinstance(headline, dict) or not isinstance(headline.get("claims"), dict) or "profile" not in headline:
        raise ValueError(f"headline file {path} does not name a profile and its claims")
    return headline


def _fresh_text(fresh: Mapping[str, Any] | None) -> str:
    """A headline entry's effect with its interval, the reason it has none, or a dash for a claim not reached."""
    if fresh is None:
        return "–"
    if fresh["value"] is None:
        return fresh["note"] or NO_VERDICT
    low, high = fresh["interval"]
    return f"{fresh['value']:+.3g}" + ("" if low is None else f" [{low:+.3g}, {high:+.3g}]")


def fresh_versus_recorded(ctx: Context, claim: str, verdict: Verdict | None) -> str:
    """One sentence for the chapter: this build's label for ``claim`` against the recorded ``paper`` one, and why."""
    from .adversarial_records import load_claim_record
    from .glance import SOURCES, claim_row

    source = next(plan for plan in SOURCES if plan.claim == claim)
    recorded = load_claim_record(source.result)
    fresh = NO_VERDICT if verdict is None else verdict.label
    if recorded is None:
        return f"No `paper` result of {claim} is recorded yet to set this build's label ({fresh}) beside."
    label = claim_row(source, recorded, [])["verdict"]
    if ctx.profile.record_results or fresh == label:
        return f"This `{ctx.profile.name}` build gives {claim} the label of the recorded `paper` run: {label}."
    name = ctx.profile.name
    return (f"This `{name}` build labels {claim} \"{fresh}\", the recorded `paper` run \"{label}\". The `{name}` "
            f"profile trains smaller models on fewer images over {ctx.profile.n_seeds} seeds, so its interval is wider "
            "and its models weaker: the recorded run is the book's answer, this build shows the same protocol at a "
            "scale that runs in minutes.")


def headline_beside_recorded(headline: Mapping[str, Any] | None, glance: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: this build's effect, interval and label beside the recorded ``paper`` ones, and whether the
    labels agree; a claim this build did not reach shows a dash."""
    claims = (headline or {}).get("claims", {})
    rows = []
    for claim, recorded in glance.iterrows():
        fresh = claims.get(claim)
        rows.append({"claim": claim, "this build (95 % interval)": _fresh_text(fresh),
                     "this build's verdict": "–" if fresh is None else fresh["flags"],
                     "recorded at paper (95 % interval)": recorded["this book (95 % interval)"],
                     "recorded verdict": recorded["verdict"],
                     "same label": "–" if fresh is None or not recorded["recorded"]
                     else ("yes" if fresh["label"] == recorded["verdict"] else "no")})
    return pd.DataFrame(rows).set_index("claim")
