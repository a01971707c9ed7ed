"""The Parquet lake: where its files live (``store``), how its layers are laid out
(``layout``), and the job that compacts bronze into silver and gold (``compaction``)."""
