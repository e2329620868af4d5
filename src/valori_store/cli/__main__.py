"""``python -m valori_store.cli`` runs the ``valori-store`` command line."""

from valori_store.cli import main

raise SystemExit(main())
