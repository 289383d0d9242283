"""`python -m citypulse ...`: the `citypulse` console script without installing it."""

from citypulse.cli import main

raise SystemExit(main())
