//! Routing rules (hot-reloaded).
