"""The book machinery on top of the stages: profiles, the chapter context, provenance, runner and CLI."""
