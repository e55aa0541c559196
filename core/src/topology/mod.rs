//! The topology: builds sources, plugins, journal, routes and destinations from the
//! configuration, wires them together, and shuts them down in order.

mod pipeline;

pub use pipeline::{Ingested, Pipeline, SourceCtx, Waker};
