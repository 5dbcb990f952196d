"""No chapter from 3 on types a number that the build computes: percentages, points and ratios in the prose
are glued from the computation (myst-nb ``glue``), except the conventions listed in ``ALLOWED``."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

from nsdelib.report.stats import CONFIDENCE, POWER

#: The typed numbers a chapter may use, and why: conventions of the verdict rule, not results.
ALLOWED = {
    f"{CONFIDENCE:.0%}".replace("%", " %"): "the confidence level of every interval (report.stats.CONFIDENCE)",
    f"{POWER:.0%}".replace("%", " %"): "the power every minimum detectable effect is computed for (report.stats.POWER)",
    "2 × 2": "the name of chapter 4's design (two factors, two levels each)",
}
NUMBER = re.compile(r"(?<![\w.{`$/-])\d+(?:[.,]\d+)?\s*(?:%|×\s*\d+|percentage points|points?\b)")
CHAPTERS = sorted(Path(__file__).parent.parent.glob("chapters/ch0[3-8]_*.py")) + [
    Path(__file__).parent.parent / "chapters" / name for name in ("glance.py", "intro.py", "running_this_book.py")]


def typed_numbers(path: Path) -> list[str]:
    """Every number with a unit of the markdown of ``path`` outside glue roles, maths and code spans."""
    found = []
    for cell in jupytext.read(path).cells:
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"\{glue:\w+\}`[^`]*`|\$[^$]*\$|`[^`]*`", " ", cell.source)
        found += [match.group(0) for match in NUMBER.finditer(text) if match.group(0) not in ALLOWED]
    return found


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_prose_types_no_computed_number(path: Path) -> None:
    assert typed_numbers(path) == [], f"{path.name} types numbers the build should glue: {typed_numbers(path)}"


def test_the_check_finds_a_typed_percentage(tmp_path: Path) -> None:
    chapter = tmp_path / "ch09_example.py"
    chapter.write_text('# %% [markdown]\n# The NSDE keeps 87.5 % and leads by 3 points; {glue:text}`kept:.1f` % is '
                       'glued, a 95 % interval is a convention.\n')
    assert typed_numbers(chapter) == ["87.5 %", "3 points"]
