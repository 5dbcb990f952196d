"""The bibliography page labels every work by author and year, and tells apart works that would share a label."""

from __future__ import annotations

from pathlib import Path

from pybtex.database import BibliographyData, Entry, Person, parse_file

from nsdelib.book.bibliography_style import AuthorYearStyle


def labels(entries: dict[str, Entry]) -> list[str]:
    return [entry.label for entry in AuthorYearStyle().format_entries(BibliographyData(entries).entries.values())]


def test_labels_read_author_and_year_with_a_letter_where_two_would_clash() -> None:
    def paper(authors: list[str], year: str, title: str) -> Entry:
        return Entry("article", fields={"year": year, "title": title, "journal": "J"},
                     persons={"author": [Person(name) for name in authors]})

    entries = {"a": paper(["Athalye, Anish", "Carlini, Nicholas", "Wagner, David"], "2018", "Obfuscated"),
               "b": paper(["Athalye, Anish", "Engstrom, Logan", "Ilyas, Andrew"], "2018", "Synthesizing"),
               "c": paper(["Croce, Francesco", "Hein, Matthias"], "2020", "Reliable"),
               "d": paper(["R{\\\"o}nnberg, Sarah"], "2017", "Supraharmonics")}
    assert labels(entries) == ["Athalye et al., 2018a", "Athalye et al., 2018b", "Croce and Hein, 2020", "Rönnberg, 2017"]


def test_every_work_the_book_cites_gets_a_unique_author_year_label(repo_root: Path) -> None:
    found = labels(dict(parse_file(repo_root / "references.bib").entries))
    assert len(set(found)) == len(found)
    assert "Brogan et al., 2024" in found and all(label.split(", ")[-1][:4].isdigit() for label in found)
