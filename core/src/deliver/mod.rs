//! Destinations: file and HTTP, with outbox-driven retries.
