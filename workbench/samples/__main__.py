"""``python -m workbench.samples DEST``: write the sample cases under DEST."""

from workbench.samples.build import main

raise SystemExit(main())
