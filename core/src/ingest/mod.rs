//! Sources: MLLP, HTTP and directory ingest.
