"""Author-year labels ("Rönnberg et al., 2017") on the bibliography page: a pybtex style loaded by _config.yml."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from string import ascii_lowercase
from typing import Any

from pybtex.database import Entry
from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle

STYLE = "nsdebook_author_year"


def author_year(entry: Entry) -> str:
    """``A, year``, ``A and B, year`` or ``A et al., year`` (the organisation or key without authors)."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [" ".join(part.render_as("text") for part in person.rich_prelast_names + person.rich_last_names)
             for person in persons]
    if not names:
        who = entry.fields.get("organization") or entry.fields.get("publisher") or entry.key
    else:
        who = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    """Author-year labels, told apart by a, b, … after the year in the order the entries are sorted."""

    def format_labels(self, sorted_entries: Iterable[Entry]) -> Iterator[str]:
        labels = [author_year(entry) for entry in sorted_entries]
        repeated, seen = Counter(labels), Counter[str]()
        for label in labels:
            seen[label] += 1
            yield label + ascii_lowercase[seen[label] - 1] if repeated[label] > 1 else label


class AuthorYearStyle(PlainStyle):
    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def setup(app: Any) -> dict[str, bool]:
    """The Sphinx extension: register the style so that ``bibtex_default_style`` can name it."""
    register_plugin("pybtex.style.formatting", STYLE, AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
