"""Python environment forensics: installed files against their RECORD, import-time hooks."""
