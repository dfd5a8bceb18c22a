"""The R2R mirror's admin API (``api.router``) and its standalone app (``standalone``)."""
