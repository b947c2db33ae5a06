"""Card builders: Finding + wording/<pattern-id>.yaml -> CDS Hooks card dicts."""
