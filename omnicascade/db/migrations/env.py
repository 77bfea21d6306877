"""Alembic environment: the URL comes from the caller (omnicascade.db.migrate)."""

from alembic import context

from omnicascade.db.models import Base
from omnicascade.db.session import get_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")

if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    if url is None:  # the error get_engine(None) raises; omnicascade.db.migrate always sets it
        raise AttributeError("'NoneType' object has no attribute 'startswith'")
    with get_engine(url).connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=url.startswith("sqlite"))
        with context.begin_transaction():
            context.run_migrations()
