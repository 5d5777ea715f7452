"""Storage: the only package with SQL. Repositories never commit; callers own transactions."""
