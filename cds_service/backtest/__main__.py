"""``python -m cds_service.backtest DIR``: the same as ``psychopharm-cds backtest DIR``."""

from cds_service.backtest.run import main

raise SystemExit(main())
