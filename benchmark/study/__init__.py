"""The study built on the library: run specs and their typed records, the run store, execution,
the paper's artefacts (Tables 1-3, Figures 2-4, reports), tuning, estimates and the paper's own
numbers. `definition` says what the paper's study compares; nothing in the library imports this
package."""
