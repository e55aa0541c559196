//! HL7 v2 over MLLP: a TCP listener, the frame codec and original-mode ACKs.
//!
//! See [`listener`] for the connection rules and [`ack`] for the ACK format.

pub mod ack;
pub mod codec;
pub mod listener;

pub use ack::{AckCode, ErrInfo, InboundHeader, Sniffed};
pub use codec::{MllpCodec, MllpError};
pub use listener::MllpListener;
