//! End-to-end tests, one module per concern.

mod sandbox;
