"""`python -m tenantq` is the `tenantq` command."""

from tenantq.cli import main

main()
