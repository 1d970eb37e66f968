"""`python -m mcp_clients.erp_server --tenant ID [--records N] [--seed S]`: serve a tenant's ERP over stdio."""

from __future__ import annotations

import argparse

from mcp_clients.erp_server.server import main


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tenantq erp-mcp", description=__doc__)
    parser.add_argument("--tenant", required=True, help="Tenant id; it also seeds the tenant's data set.")
    parser.add_argument("--records", type=int, default=10_000, help="About this many records (1,000-200,000).")
    parser.add_argument("--seed", type=int, default=None, help="Same seed and tenant, same data (default 1).")
    args = parser.parse_args(argv)
    main(args.tenant, args.records, args.seed)


if __name__ == "__main__":
    cli()
