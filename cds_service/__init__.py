"""psychopharm-cds: a CDS Hooks 2.0 service. Importing this package does not import Flask."""

__version__ = "0.1.0"
