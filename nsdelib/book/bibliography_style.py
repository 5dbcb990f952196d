"""Author-year labels on the bibliography page, matching the author-year citations of the text (a Sphinx extension).

pybtex's default labels ("[RonnbergBA+17]") clash with citations that read "Rönnberg et al. [2017]".
This style labels each entry "Rönnberg et al., 2017" (one author by name, two joined by "and", more as
"et al."), sorts by author and year, and tells apart works that would share a label with a letter
after the year ("Athalye et al., 2018a" and "2018b"). ``_config.yml`` loads it and names it as the
default style.
"""

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
    """``Surname, year``, ``A and B, year`` or ``A et al., year`` (the organisation or key without authors)."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [" ".join(part.render_as("text") for part in person.rich_prelast_names + person.rich_last_names)
             for person in persons]
    if not names:
        who = entry.fields.get("organization") or entry.fields.get("publisher") or entry.key
    else:
        who = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    """Author-year labels, made unique with a, b, … after the year in the order the entries are sorted."""

    def format_labels(self, sorted_entries: Iterable[Entry]) -> Iterator[str]:
        labels = [author_year(entry) for entry in sorted_entries]
        repeated, seen = Counter(labels), Counter[str]()
        for label in labels:
            seen[label] += 1
            yield label + ascii_lowercase[seen[label] - 1] if repeated[label] > 1 else label


class AuthorYearStyle(PlainStyle):
    """pybtex's plain style with author-year labels, sorted by author, year and title."""

    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def setup(app: Any) -> dict[str, bool]:
    """Register the style with pybtex so that ``bibtex_default_style`` can name it."""
    register_plugin("pybtex.style.formatting", STYLE, AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
