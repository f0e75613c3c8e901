from audits.schedules import ensure_default_schedules


def create_default_schedules(sender, **kwargs) -> None:
    """post_migrate: make sure the default periodic tasks exist."""
    ensure_default_schedules()
