"""Great Expectations suites at the two boundaries: landing batches before dbt builds on
them, audience releases before they are published. Invariants inside the warehouse stay dbt
tests. GX validates pandas frames read from DuckDB (its SQL datasource on a DuckDB file is
not reliable in GX 1.x); importing GX is slow (about 5 s), so only task bodies import it.
"""
