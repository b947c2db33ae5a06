"""``python -m cds_service.synthetic OUT --patients N --seed S``: write a synthetic population."""

from cds_service.synthetic.population import main

raise SystemExit(main())
