"""The migration scripts themselves, independent of any backend."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from conveyor.store._migrate import HEAD, alembic_config


def test_head_constant_names_the_newest_migration() -> None:
    # Opening a store skips Alembic when the database is stamped HEAD, so a new migration
    # that forgets to move HEAD would never run.
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD]


def test_migrations_form_one_linear_history() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(script.walk_revisions())
    assert all(len(rev.nextrev) <= 1 for rev in revisions)
    assert revisions[-1].down_revision is None
