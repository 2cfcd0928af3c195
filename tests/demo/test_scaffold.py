"""A demo made again with ``force`` starts from nothing the earlier demo computed."""

from __future__ import annotations

import pytest

from microseg.errors import MicrosegError
from microseg.project import Project


def test_a_forced_demo_removes_the_earlier_results_and_lake(tmp_path):
    root = tmp_path / "shop"
    Project.create_demo(root, customers=100, years=1.0).close()
    with pytest.raises(MicrosegError, match="already exists; use --force"):
        Project.create_demo(root, customers=100, years=1.0)
    with open(root / "microseg.toml", "a") as config:
        config.write('\n[engine]\nstorage = "lake"\n')
    with Project(root) as project:
        project.import_sources()
        project.run()
    assert any((root / "lake").iterdir())
    outside = tmp_path / "shared-lake"  # a lake outside the folder may be shared: it stays
    outside.mkdir()
    (outside / "kept").write_text("")

    with Project.create_demo(root, customers=100, years=1.0, force=True) as project:
        assert not (root / "lake").exists() and not (root / "warehouse.duckdb.wal").exists()
        assert project.warehouse.count("events") == 0 and project.snapshots().empty
    with open(root / "microseg.toml", "a") as config:
        config.write(f'\n[engine]\nstorage = "lake"\nlake = "{outside}"\n')
    Project.create_demo(root, customers=100, years=1.0, force=True).close()
    assert (outside / "kept").exists()
