"""The streaming engine: the library the jobs in jobs/ are built on.

The batch function and what it calls (transforms, the Gold MERGE, the sinks that append
once per Kafka record, poison isolation, commit retries, in-job compaction), and what keeps
a job honest while it runs (the checkpoint lock, the writer lease, offset continuity,
progress, the supervisor). Entry points live in jobs/; docs/design.md §5 states the
guarantees these modules keep.
"""
